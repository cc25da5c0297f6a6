-- One wake-up trigger function for every durable timer (shared/timers.py), instead of one copy per table.
-- A trigger passes its channel prefix: EXECUTE FUNCTION notify_wakeup('outbox') notifies
-- 'outbox_<schema>', which the relay of that schema listens on. A hint, not a queue: the timers
-- keep a polling fallback. One per statement, and identical notifications within a transaction
-- are folded into one by Postgres.
CREATE FUNCTION notify_wakeup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0] || '_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END
$$;

DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('outbox');
DROP FUNCTION outbox_notify();
