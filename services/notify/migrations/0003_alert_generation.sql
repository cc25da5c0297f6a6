-- The deadline window (its reschedule count, `reschedules` on deadlines.v1) an alert's current
-- reason is about: a breach in a later window re-opens the alert and is told as a new breach.
ALTER TABLE alerts ADD COLUMN generation integer NOT NULL DEFAULT 0;
