-- Most alerts have one stage (raised, never superseded). For them the time to acknowledge is the first
-- acknowledgement minus the raising, whatever came before or after: the per-stage window over
-- alert_stages and the join with alert_acks are needed only for alerts with two or more stages.
-- Each alert keeps how many stages it has and its first acknowledgement, kept by statement triggers on
-- the two insert-only sets in the transaction that adds to them (an alert's row is written before its
-- stages and acks: services.reporting.adapters.repository.save).
ALTER TABLE alerts ADD COLUMN stages integer NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN first_acknowledged_at timestamptz;

CREATE FUNCTION count_alert_stages() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE alerts a SET stages = a.stages + s.n
    FROM (SELECT alert_id, count(*) AS n FROM new_rows GROUP BY alert_id) s
    WHERE a.alert_id = s.alert_id;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION first_alert_ack() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE alerts a SET first_acknowledged_at = LEAST(a.first_acknowledged_at, k.first_at)
    FROM (SELECT alert_id, min(acknowledged_at) AS first_at FROM new_rows GROUP BY alert_id) k
    WHERE a.alert_id = k.alert_id AND (a.first_acknowledged_at IS NULL OR k.first_at < a.first_acknowledged_at);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER alert_stages_counted AFTER INSERT ON alert_stages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_alert_stages();
CREATE TRIGGER alert_acks_first AFTER INSERT ON alert_acks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION first_alert_ack();

UPDATE alerts a SET stages = s.n FROM (SELECT alert_id, count(*) AS n FROM alert_stages GROUP BY alert_id) s
WHERE a.alert_id = s.alert_id;
UPDATE alerts a SET first_acknowledged_at = k.first_at
FROM (SELECT alert_id, min(acknowledged_at) AS first_at FROM alert_acks GROUP BY alert_id) k
WHERE a.alert_id = k.alert_id;
