-- An alert the escalation timer cannot fire (a row it cannot read, an event it cannot build, a write
-- Postgres refuses) is taken off the timer (next_timer_at NULL) with the reason here, for a person
-- to look at, so one bad alert never stops every other escalation. Counted by notify_timer_parked_total.
ALTER TABLE alerts ADD COLUMN timer_error text;
