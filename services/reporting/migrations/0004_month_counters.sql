-- Counters per local month beside the facts, so a year's counts read a few thousand rows instead of
-- scanning every case, deadline and police action of the year (issue 10's benchmark).
--
-- Every period (month, quarter, year) is a whole number of months in Europe/Copenhagen, and so is the
-- trend's window: a counter per local month answers every count exactly. A deadline's counter row
-- also carries the months it was met, cancelled and breached, so "open at the period's end" and
-- "breached in the period" come from the counters too (t < a month boundary <=> its month < it).
--
-- Statement triggers keep the counters in the transaction that writes the facts: the live consumer's
-- one event, or a rebuild's batch (which thus builds them as it goes). A fact row whose counted key
-- changes (a deadline met, a case's kind arriving after its actions) moves from one counter row to
-- another: -1 for its old key, +1 for the new one. Counters never decide a figure's meaning: the key
-- expressions below are the filters of services.reporting.adapters.repository's fact queries, and
-- tests/integration/reporting/test_counters.py checks that counters equal a count of the facts.
-- Counter rows are hot (a month's counts): each trigger writes them in key order, and the repository
-- writes the tables in a fixed order, so two writers at once (the rebuild's last pass after its swap
-- and the live consumer) wait for each other instead of deadlocking.

CREATE TABLE case_counts (
    month       timestamptz NOT NULL,  -- local midnight starting the month of received_at
    kind        text NOT NULL,
    kommune     text NOT NULL,
    category    text,
    focus_area  text,
    n           integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (month, kind, kommune, category, focus_area)
);

CREATE TABLE action_counts (
    month    timestamptz NOT NULL,
    action   text NOT NULL,
    kommune  text NOT NULL,
    n        integer NOT NULL,
    UNIQUE (month, action, kommune)
);

CREATE TABLE deadline_counts (
    rule_id            text NOT NULL,
    title              text NOT NULL,
    basis              text NOT NULL,
    window_set_by      text NOT NULL,
    window_seconds     double precision,
    kommune            text NOT NULL,
    category           text NOT NULL,
    focus_area         text NOT NULL,
    started_month      timestamptz NOT NULL,
    met_month          timestamptz,
    cancelled_month    timestamptz,
    breached_month     timestamptz,
    met_on_time        boolean NOT NULL,
    met_late           boolean NOT NULL,
    missed             boolean NOT NULL,
    closed_before_met  boolean NOT NULL,
    rescheduled        boolean NOT NULL,
    pending            boolean NOT NULL,
    n                  integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (rule_id, title, basis, window_set_by, window_seconds, kommune, category, focus_area,
                               started_month, met_month, cancelled_month, breached_month, met_on_time, met_late,
                               missed, closed_before_met, rescheduled, pending)
);
CREATE INDEX deadline_counts_started ON deadline_counts (started_month);

-- The counted key of a row, one function per table: `rows` is the SQL of the rows with a column `d`
-- (+1 or -1). Dynamic SQL because a trigger's transition tables exist only for its own event.
CREATE FUNCTION count_cases() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($sql$
        INSERT INTO case_counts AS c (month, kind, kommune, category, focus_area, n)
        SELECT date_trunc('month', r.received_at, 'Europe/Copenhagen'), r.kind, r.kommune, r.category,
               r.focus_area, sum(r.d)
        FROM (%s) r
        WHERE r.kind IS NOT NULL AND r.received_at IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(r.d) <> 0
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (month, kind, kommune, category, focus_area) DO UPDATE SET n = c.n + EXCLUDED.n
    $sql$, CASE TG_OP WHEN 'INSERT' THEN 'SELECT *, 1 AS d FROM new_rows'
                      ELSE 'SELECT *, 1 AS d FROM new_rows UNION ALL SELECT *, -1 AS d FROM old_rows' END);
    RETURN NULL;
END
$fn$;

CREATE FUNCTION count_actions() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- Police actions are insert-only facts (ON CONFLICT DO NOTHING): new rows only.
    INSERT INTO action_counts AS c (month, action, kommune, n)
    SELECT date_trunc('month', r.occurred_at, 'Europe/Copenhagen'), r.action, r.kommune, count(*)
    FROM new_rows r
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (month, action, kommune) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION count_deadlines() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($sql$
        INSERT INTO deadline_counts AS c (rule_id, title, basis, window_set_by, window_seconds, kommune, category,
            focus_area, started_month, met_month, cancelled_month, breached_month, met_on_time, met_late, missed,
            closed_before_met, rescheduled, pending, n)
        SELECT r.rule_id, r.title, r.basis, r.window_set_by, r.window_seconds, r.kommune, r.category, r.focus_area,
            date_trunc('month', r.started_at, 'Europe/Copenhagen'),
            date_trunc('month', r.met_at, 'Europe/Copenhagen'),
            date_trunc('month', r.cancelled_at, 'Europe/Copenhagen'),
            date_trunc('month', r.breached_at, 'Europe/Copenhagen'),
            -- The outcome columns partition the deadlines as the fact query's FILTERs do.
            coalesce(r.met_at IS NOT NULL AND NOT r.met_late, false),
            coalesce(r.met_at IS NOT NULL AND r.met_late, false),
            r.met_at IS NULL AND r.breached_at IS NOT NULL
                AND (r.cancelled_at IS NULL OR r.cancelled_at >= r.breached_at),
            r.met_at IS NULL AND r.cancelled_at IS NOT NULL
                AND (r.breached_at IS NULL OR r.cancelled_at < r.breached_at),
            r.rescheduled,
            r.met_at IS NULL AND r.breached_at IS NULL AND r.cancelled_at IS NULL,
            sum(r.d)
        FROM (%s) r
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18 HAVING sum(r.d) <> 0
        ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18
        ON CONFLICT (rule_id, title, basis, window_set_by, window_seconds, kommune, category, focus_area,
                     started_month, met_month, cancelled_month, breached_month, met_on_time, met_late, missed,
                     closed_before_met, rescheduled, pending)
        DO UPDATE SET n = c.n + EXCLUDED.n
    $sql$, CASE TG_OP WHEN 'INSERT' THEN 'SELECT *, 1 AS d FROM new_rows'
                      ELSE 'SELECT *, 1 AS d FROM new_rows UNION ALL SELECT *, -1 AS d FROM old_rows' END);
    RETURN NULL;
END
$fn$;

-- A transition table belongs to one event, hence a trigger per event.
CREATE TRIGGER cases_counted_insert AFTER INSERT ON cases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_cases();
CREATE TRIGGER cases_counted_update AFTER UPDATE ON cases
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_cases();
CREATE TRIGGER case_actions_counted AFTER INSERT ON case_actions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_actions();
CREATE TRIGGER deadlines_counted_insert AFTER INSERT ON deadlines
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_deadlines();
CREATE TRIGGER deadlines_counted_update AFTER UPDATE ON deadlines
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_deadlines();

-- A schema migrated with facts in it gets its counters from them (a fresh one, such as a rebuild's,
-- fills them as it loads); the key expressions are those of the trigger functions above.
INSERT INTO case_counts (month, kind, kommune, category, focus_area, n)
SELECT date_trunc('month', received_at, 'Europe/Copenhagen'), kind, kommune, category, focus_area, count(*)
FROM cases WHERE kind IS NOT NULL AND received_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
INSERT INTO action_counts (month, action, kommune, n)
SELECT date_trunc('month', occurred_at, 'Europe/Copenhagen'), action, kommune, count(*)
FROM case_actions GROUP BY 1, 2, 3;
INSERT INTO deadline_counts (rule_id, title, basis, window_set_by, window_seconds, kommune, category, focus_area,
    started_month, met_month, cancelled_month, breached_month, met_on_time, met_late, missed, closed_before_met,
    rescheduled, pending, n)
SELECT rule_id, title, basis, window_set_by, window_seconds, kommune, category, focus_area,
    date_trunc('month', started_at, 'Europe/Copenhagen'),
    date_trunc('month', met_at, 'Europe/Copenhagen'),
    date_trunc('month', cancelled_at, 'Europe/Copenhagen'),
    date_trunc('month', breached_at, 'Europe/Copenhagen'),
    coalesce(met_at IS NOT NULL AND NOT met_late, false),
    coalesce(met_at IS NOT NULL AND met_late, false),
    met_at IS NULL AND breached_at IS NOT NULL AND (cancelled_at IS NULL OR cancelled_at >= breached_at),
    met_at IS NULL AND cancelled_at IS NOT NULL AND (breached_at IS NULL OR cancelled_at < breached_at),
    rescheduled,
    met_at IS NULL AND breached_at IS NULL AND cancelled_at IS NULL,
    count(*)
FROM deadlines GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18;

-- Reports at ten times the district's volume (bench/reporting.py): response times are read from this
-- index alone, never from the wide case rows.
CREATE INDEX cases_responded ON cases (received_at) INCLUDE (kommune, category, focus_area, first_on_scene_at)
    WHERE kind = 'report' AND first_on_scene_at IS NOT NULL;
