-- notify updates an alert in place (alert.updated): its severity is the latest word, and a supersede
-- (a breach replacing a warning) opens it again, so time to acknowledge is measured per stage: from
-- the stage's start to the first acknowledgement before the next stage. Stages and acks are sets of
-- facts (insert-only), which keeps every merge idempotent and order-independent.
ALTER TABLE alerts ADD COLUMN severity_as_of timestamptz;
UPDATE alerts SET severity_as_of = raised_at WHERE severity IS NOT NULL;
-- The case's category beside its focus area (copied from cases the same way): alert figures per category.
ALTER TABLE alerts ADD COLUMN category text;
UPDATE alerts SET category = c.category FROM cases c WHERE alerts.case_id = c.case_id;

CREATE TABLE alert_stages (
    alert_id    uuid NOT NULL,
    started_at  timestamptz NOT NULL,
    PRIMARY KEY (alert_id, started_at)
);
INSERT INTO alert_stages SELECT alert_id, raised_at FROM alerts WHERE raised_at IS NOT NULL;

CREATE TABLE alert_acks (
    alert_id         uuid NOT NULL,
    acknowledged_at  timestamptz NOT NULL,
    PRIMARY KEY (alert_id, acknowledged_at)
);
INSERT INTO alert_acks SELECT alert_id, acknowledged_at FROM alerts WHERE acknowledged_at IS NOT NULL;
ALTER TABLE alerts DROP COLUMN acknowledged_at;
