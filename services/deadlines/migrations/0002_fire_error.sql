-- A deadline the timer could not fire (e.g. a rule snapshot this version cannot read) is parked:
-- taken off the timer with the reason here, so one bad row cannot stop every other deadline.
ALTER TABLE deadlines ADD COLUMN fire_error text;
