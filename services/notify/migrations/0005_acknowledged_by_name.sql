-- Who acknowledged, as people read it: the display name from the identity provider (a signed-in
-- officer) or from the roster (an ack link, a police system acting for a roster officer), beside the
-- person's stable id in acknowledged_by. Never typed text.
ALTER TABLE alerts ADD COLUMN acknowledged_by_name text;
