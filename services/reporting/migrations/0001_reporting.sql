-- The reporting service's read model (schema set by search_path; see shared/db.py).
-- Facts per case, action, deadline and alert, never pre-aggregated counters: every upsert below
-- merges the way services.reporting.domain.facts merges (earliest first times, flags OR'ed), so a
-- redelivered event changes nothing and a rebuild from the topics gives the same rows.

CREATE TABLE cases (
    case_id            uuid PRIMARY KEY,
    kommune            text NOT NULL,
    kind               text CHECK (kind IN ('report', 'tip', 'request')),  -- NULL while only actions are known
    category           text,
    focus_area         text,
    received_at        timestamptz,
    first_on_scene_at  timestamptz
);
CREATE INDEX cases_received ON cases (received_at) INCLUDE (kind, kommune, category, focus_area);

CREATE TABLE case_actions (
    action_id    uuid PRIMARY KEY,
    case_id      uuid NOT NULL,
    kommune      text NOT NULL,
    action       text NOT NULL,
    category     text NOT NULL,
    focus_area   text NOT NULL,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX case_actions_occurred ON case_actions (occurred_at);

CREATE TABLE deadlines (
    deadline_id       uuid PRIMARY KEY,
    case_id           uuid NOT NULL,
    rule_id           text NOT NULL,
    title             text NOT NULL,
    basis             text NOT NULL CHECK (basis IN ('guarantee', 'local_target')),
    window_set_by     text NOT NULL,
    kommune           text NOT NULL,
    category          text NOT NULL,
    focus_area        text NOT NULL,
    started_at        timestamptz NOT NULL,
    due_at            timestamptz NOT NULL,
    due_as_of         timestamptz NOT NULL,
    window_seconds    double precision,
    met_at            timestamptz,
    met_late          boolean,
    met_action        text,
    response_seconds  double precision,
    breached_at       timestamptz,
    cancelled_at      timestamptz,
    outcome           text,
    rescheduled       boolean NOT NULL DEFAULT false
);
CREATE INDEX deadlines_started ON deadlines (started_at);
-- Open at a period's end: only deadlines not yet ended are scanned for the current period.
CREATE INDEX deadlines_unended ON deadlines (started_at) WHERE met_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX deadlines_breached ON deadlines (breached_at) WHERE breached_at IS NOT NULL;

CREATE TABLE alerts (
    alert_id            uuid PRIMARY KEY,
    case_id             uuid NOT NULL,
    kommune             text NOT NULL,
    deadline_id         uuid,
    rule_id             text,
    reason              text,
    severity            text,
    raised_at           timestamptz,
    first_delivered_at  timestamptz,
    acknowledged_at     timestamptz,
    escalation_level    integer NOT NULL DEFAULT 0,
    resolved_at         timestamptz
);
CREATE INDEX alerts_raised ON alerts (raised_at);

-- How fresh the figures are: the time of the newest event applied, per topic.
CREATE TABLE topic_freshness (
    topic          text PRIMARY KEY,
    last_event_at  timestamptz NOT NULL
);

-- The terms of each rule as its newest deadline.started stated them: for the method notes
-- (which windows are law, which local targets, what "at once" means in this district).
CREATE TABLE rules_seen (
    rule_id         text PRIMARY KEY,
    title           text NOT NULL,
    basis           text NOT NULL,
    window_set_by   text NOT NULL,
    window_seconds  double precision NOT NULL,
    seen_at         timestamptz NOT NULL
);
