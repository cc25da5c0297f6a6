-- The deadlines service's own tables (schema set by search_path; see shared/db.py).

-- One row per case seen on cases.v1: the lock the consumer takes before changing a case.
CREATE TABLE cases (
    case_id        uuid PRIMARY KEY,
    kommune        text        NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (case, rule): a guarantee's or local target's clock. Columns mirror
-- deadline_to_record() in services/deadlines/adapters/repository.py; `rule` is the snapshot of the terms the
-- deadline started under, so a rules-file change never rewrites a running promise.
CREATE TABLE deadlines (
    id                  uuid PRIMARY KEY,
    case_id             uuid        NOT NULL REFERENCES cases (case_id),
    rule_id             text        NOT NULL,
    rules_version       integer     NOT NULL,
    rule                jsonb       NOT NULL,
    basis               text        NOT NULL,
    kommune             text        NOT NULL,
    category            text        NOT NULL,
    focus_area          text        NOT NULL,
    started_at          timestamptz NOT NULL,
    due_at              timestamptz NOT NULL,
    state               text        NOT NULL CHECK (state IN ('pending', 'met', 'breached', 'cancelled')),
    warnings_sent       double precision[] NOT NULL DEFAULT '{}',
    warnings_skipped    double precision[] NOT NULL DEFAULT '{}',
    breached_at         timestamptz,
    met_at              timestamptz,
    met_action          text,
    cancelled_at        timestamptz,
    outcome             text,
    -- The timer: when this deadline next needs attention (a warning or the breach); NULL when never.
    next_fire_at        timestamptz,
    next_fire_fraction  double precision,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, rule_id)
);
-- Only deadlines with something left to fire are in the timer index.
CREATE INDEX deadlines_timer ON deadlines (next_fire_at) WHERE next_fire_at IS NOT NULL;
CREATE INDEX deadlines_listing ON deadlines (state, kommune, rule_id, due_at);

-- Police actions seen per case, also before the case's report (out-of-order delivery).
CREATE TABLE case_actions (
    case_id         uuid        NOT NULL,
    action_id       uuid        NOT NULL,
    action          text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    requested_time  timestamptz,
    outcome         text,
    PRIMARY KEY (case_id, action_id)
);

-- Every event a deadline emitted, kept for its timeline (the outbox is purged after a week).
CREATE TABLE deadline_timeline (
    event_id     uuid PRIMARY KEY,
    deadline_id  uuid        NOT NULL REFERENCES deadlines (id),
    type         text        NOT NULL,
    at           timestamptz NOT NULL,
    data         jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX deadline_timeline_by_deadline ON deadline_timeline (deadline_id, at);

-- Wakes schedulers (in every instance) when a deadline's next fire time is set or moved, so a
-- sleeping scheduler re-plans at once instead of at its next check (notify_wakeup: shared/sql/0001).
CREATE TRIGGER deadlines_notify_insert AFTER INSERT ON deadlines
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('deadlines');
CREATE TRIGGER deadlines_notify_update AFTER UPDATE OF next_fire_at ON deadlines
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('deadlines');
