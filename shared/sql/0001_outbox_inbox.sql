-- Transactional outbox and inbox, created in every service's schema (search_path is that schema).

-- Outbox: an event row is written in the same transaction as the state change that caused it;
-- the relay claims pending rows with FOR UPDATE SKIP LOCKED, publishes, then marks them sent.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    event_id    uuid        NOT NULL UNIQUE,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    value       bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at     timestamptz,
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text
);
-- Only pending rows are ever scanned; sent rows stay a while for audit, then are purged.
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Wake-up hint for every durable timer (shared/timers.py): the one trigger function of the project.
-- A trigger passes its channel prefix: EXECUTE FUNCTION notify_wakeup('outbox') notifies
-- 'outbox_<schema>', which that schema's relay listens on. A hint, not a queue (polling stays the
-- fallback). One per statement, and identical notifications within a transaction are folded into
-- one by Postgres.
CREATE FUNCTION notify_wakeup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0] || '_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('outbox');

-- Inbox: ids of events a consumer has applied, inserted in the same transaction as the effect,
-- so a redelivered event is recognised and changes nothing.
CREATE TABLE processed_events (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
