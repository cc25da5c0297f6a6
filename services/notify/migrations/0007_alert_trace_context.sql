-- The W3C traceparent of the span that raised the alert (the handling of the deadline event that raised
-- it: the report's trace, or a deadline warning's or breach's). The escalation timer's escalations and
-- reminders, later, are each a trace of their own whose first span links to this one (services/notify/
-- handlers.py, fire_due_alerts). Written once, when the row is inserted; an opaque id; NULL for alerts
-- raised before it existed.
ALTER TABLE alerts ADD COLUMN trace_context text;
