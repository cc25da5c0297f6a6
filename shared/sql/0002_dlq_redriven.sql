-- Dead letters re-published by `python -m services.<name> dlq redrive` (shared/dlq_tool.py): one row per
-- DLQ message, so the tool never publishes one twice. The row is committed *before* the publish
-- (claimed_at), and redriven_at is set once Kafka confirmed it: a row without redriven_at is a
-- redrive that stopped in between, which the tool shows as "unconfirmed" and does not repeat by itself.
CREATE TABLE dlq_redriven (
    dlq_topic       text        NOT NULL,
    dlq_partition   integer     NOT NULL,
    dlq_offset      bigint      NOT NULL,
    original_topic  text        NOT NULL,
    event_id        text,
    redriven_by     text        NOT NULL,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    redriven_at     timestamptz,
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);
