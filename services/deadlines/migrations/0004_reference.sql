-- The case's reference (e.g. MV-7K3Q-9FX), from the case event that started the deadline, so every
-- deadline event carries it and notify can name the case in an alert before it has seen cases.v1.
-- NULL for deadlines started before this column: their events fall back to notify's own record.
ALTER TABLE deadlines ADD COLUMN reference text;
