-- The notify service's own tables (schema set by search_path; see shared/db.py).

-- What cases.v1 said about a case that an alert may show: its reference, category and kommune.
CREATE TABLE case_refs (
    case_id    uuid PRIMARY KEY,
    reference  text        NOT NULL,
    category   text        NOT NULL,
    kommune    text        NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- One alert per deadline: the id is derived from the dedup key (case + deadline rule).
-- Columns mirror services.notify.domain.alert.Alert; `chain` is the escalation chain the alert
-- runs under (a snapshot: a policy change never rewrites a running escalation).
CREATE TABLE alerts (
    id               uuid PRIMARY KEY,
    case_id          uuid        NOT NULL,
    deadline_id      uuid        NOT NULL,
    deadline_rule    text        NOT NULL,
    title            text        NOT NULL,
    category         text        NOT NULL,
    kommune          text        NOT NULL,
    due_at           timestamptz NOT NULL,
    policy_rule      text        NOT NULL,
    reason           text        NOT NULL,
    severity         text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('open', 'acknowledged', 'escalated', 'resolved')),
    chain            jsonb       NOT NULL,
    level            integer     NOT NULL DEFAULT 0,
    reminders        integer     NOT NULL DEFAULT 0,
    raised_at        timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    happened_at      timestamptz NOT NULL,
    notified         text[]      NOT NULL DEFAULT '{}',
    last_step        text[]      NOT NULL DEFAULT '{}',
    -- The escalation timer: when this alert next escalates or reminds; NULL when never.
    next_timer_at    timestamptz,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_at      timestamptz,
    resolved_reason  text,
    fraction         double precision,
    UNIQUE (case_id, deadline_rule)
);
CREATE INDEX alerts_timer ON alerts (next_timer_at) WHERE next_timer_at IS NOT NULL;
CREATE INDEX alerts_listing ON alerts (state, kommune, severity, raised_at DESC);

-- One row per (alert stage, recipient, channel): its own state, attempts and retry time, so a
-- failure on one channel never touches another. `id` is stable: the Standard Webhooks webhook-id
-- and the e-mail Message-ID. A worker claims a row by a lease (lease_until) in a short
-- transaction, sends with no transaction open, and records the result only while it holds the lease.
CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    alert_id         uuid        NOT NULL REFERENCES alerts (id),
    notice_id        uuid        NOT NULL,
    stage            text        NOT NULL,
    stoppable        boolean     NOT NULL DEFAULT true,
    recipient_id     text        NOT NULL,
    recipient_name   text        NOT NULL,
    channel_no       integer     NOT NULL,
    channel          text        NOT NULL CHECK (channel IN ('webhook', 'email', 'console')),
    target           text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_until      timestamptz,
    last_error       text,
    happened_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at     timestamptz,
    UNIQUE (notice_id, recipient_id, channel_no)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_alert ON deliveries (alert_id, created_at);

-- Webhook endpoints that answered 410 Gone: skipped from then on (straight to the next channel).
CREATE TABLE disabled_endpoints (
    target       text PRIMARY KEY,
    disabled_at  timestamptz NOT NULL DEFAULT now(),
    reason       text        NOT NULL
);

-- Ack links are single-use: the delivery id a link was issued for, once it has been used.
CREATE TABLE used_ack_links (
    delivery_id  uuid PRIMARY KEY,
    alert_id     uuid        NOT NULL,
    used_at      timestamptz NOT NULL DEFAULT now()
);

-- The audit trail: raised, every delivery attempt, ack, escalation, resolve.
CREATE TABLE audit (
    id        bigserial PRIMARY KEY,
    alert_id  uuid        NOT NULL,
    at        timestamptz NOT NULL,
    kind      text        NOT NULL,
    actor     text,
    detail    jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_by_alert ON audit (alert_id, id);

-- Wake-ups (hints; the loops also poll): the escalation timer when a timer is set, the delivery
-- worker when a delivery is due, and whoever watches alerts (the console) when one changes.
-- notify_wakeup(prefix) is the project's one wake-up trigger function (shared/sql/0001_outbox_inbox.sql).
CREATE TRIGGER alerts_timer_insert AFTER INSERT ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('notify_timers');
CREATE TRIGGER alerts_timer_update AFTER UPDATE OF next_timer_at ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('notify_timers');
CREATE TRIGGER deliveries_wake AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('notify_deliveries');
-- A retry scheduled sooner than the worker's planned wake-up.
CREATE TRIGGER deliveries_retry_wake AFTER UPDATE OF next_attempt_at ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('notify_deliveries');

CREATE FUNCTION notify_alert_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notify_alerts_' || TG_TABLE_SCHEMA, NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER alerts_changed AFTER INSERT OR UPDATE ON alerts FOR EACH ROW EXECUTE FUNCTION notify_alert_changed();

CREATE FUNCTION notify_delivery_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notify_alerts_' || TG_TABLE_SCHEMA, NEW.alert_id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_changed AFTER UPDATE OF state ON deliveries
    FOR EACH ROW EXECUTE FUNCTION notify_delivery_changed();
