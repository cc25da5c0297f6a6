-- The scheduler's wake-up now uses the shared trigger function (shared/sql/0002_notify_wakeup.sql).
DROP TRIGGER deadlines_notify_insert ON deadlines;
DROP TRIGGER deadlines_notify_update ON deadlines;
CREATE TRIGGER deadlines_notify_insert AFTER INSERT ON deadlines
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('deadlines');
CREATE TRIGGER deadlines_notify_update AFTER UPDATE OF next_fire_at ON deadlines
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('deadlines');
DROP FUNCTION deadlines_notify();
