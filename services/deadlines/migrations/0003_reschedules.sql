-- The generation of a deadline's window (how often its due time moved): part of the breach's and
-- warnings' event ids, so a breach after a reschedule is never taken for a copy of an earlier one.
ALTER TABLE deadlines ADD COLUMN reschedules integer NOT NULL DEFAULT 0 CHECK (reschedules >= 0);
