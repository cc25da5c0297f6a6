-- A breach withdrawn (dk.politi.deadline.breach_withdrawn): the alert is resolved with reason
-- 'breach_withdrawn', and its resolution message says which action was recorded at what time, before
-- the due time. Both are kept on the alert, since messages are written from its row when they are sent.
ALTER TABLE alerts ADD COLUMN resolved_action text;
ALTER TABLE alerts ADD COLUMN resolved_action_at timestamptz;
