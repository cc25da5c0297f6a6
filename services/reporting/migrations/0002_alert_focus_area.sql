-- An alert's focus area, copied from its case so that alert figures per focus area need no join
-- with every case of the period. Alerts and cases arrive on different topics in any order: the
-- upserts fill it from whichever side comes second (services.reporting.adapters.repository).
ALTER TABLE alerts ADD COLUMN focus_area text;
CREATE INDEX alerts_case ON alerts (case_id) WHERE focus_area IS NULL;
UPDATE alerts SET focus_area = c.focus_area FROM cases c WHERE alerts.case_id = c.case_id;
-- Police actions per period are counted from the index alone.
CREATE INDEX case_actions_counting ON case_actions (occurred_at) INCLUDE (action, kommune);
DROP INDEX case_actions_occurred;
