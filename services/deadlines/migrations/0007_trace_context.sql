-- The W3C traceparent of the span that started the deadline (the handling of the case event that
-- started it, in the report's trace). The timer's warnings and breach, hours later, are each a trace
-- of their own whose first span links to this one (services/deadlines/adapters/repository.py), so
-- the operator goes from a breach to the report and back. Written once, when the row is inserted; an
-- opaque id; NULL for deadlines started before it existed (their firings link to nothing).
ALTER TABLE deadlines ADD COLUMN trace_context text;
