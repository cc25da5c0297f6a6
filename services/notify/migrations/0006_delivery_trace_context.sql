-- The W3C traceparent of the span that wrote a delivery (the deadline event's handling, an escalation,
-- the failed send it takes over from): the send, later and in another task, continues that trace
-- (shared/tracing.py). An opaque id; NULL for deliveries written before it existed.
ALTER TABLE deliveries ADD COLUMN trace_context text;
