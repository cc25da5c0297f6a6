-- Council report deliveries (the delivery plan, services/reporting/README.md "Delivery before the meeting").
-- These tables are records, not read model: `rebuild` carries their rows into the rebuilt schema.
--
-- One row per plan entry and period: when it falls due (the durable timer's due time), and, once it
-- fired, the PDF and the e-mail text every recipient gets (the same bytes on every try, so a repeat
-- under the same Message-ID is the same message).
CREATE TABLE council_deliveries (
    entry_id         text        NOT NULL,
    period           text        NOT NULL,  -- 2026-Q3, 2026-03 or 2026
    scope            text        NOT NULL,  -- kreds or a kommunekode
    focus_area       text,
    due_at           timestamptz NOT NULL,
    state            text        NOT NULL DEFAULT 'scheduled'
                     CHECK (state IN ('scheduled', 'rendered', 'failed', 'cancelled')),
    planned_at       timestamptz NOT NULL,
    -- Rendering is claimed under a lease (Postgres's clock), done with no transaction open.
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_until      timestamptz,
    last_error       text,
    rendered_at      timestamptz,
    filename         text,
    subject          text,
    body             text,
    pdf              bytea,
    pdf_sha256       text,
    PRIMARY KEY (entry_id, period)
);
CREATE INDEX council_deliveries_due ON council_deliveries (next_attempt_at) WHERE state = 'scheduled';

-- One row per plan entry, period and recipient: what was sent to whom and when, under which
-- Message-ID. `data_started_at` is written (committed) just before the message's DATA goes to the
-- server: a row taken over with it set and `sent_at` empty was perhaps delivered (the server's 250
-- was not recorded) and is sent again with the same Message-ID (`in_doubt_resends` counts those).
CREATE TABLE council_delivery_sends (
    entry_id         text        NOT NULL,
    period           text        NOT NULL,
    recipient        text        NOT NULL,
    message_id       text        NOT NULL UNIQUE,
    state            text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    created_at       timestamptz NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_until      timestamptz,
    data_started_at  timestamptz,
    in_doubt_resends integer     NOT NULL DEFAULT 0,
    sent_at          timestamptz,
    smtp_reply       text,
    failed_at        timestamptz,
    last_error       text,
    PRIMARY KEY (entry_id, period, recipient),
    FOREIGN KEY (entry_id, period) REFERENCES council_deliveries (entry_id, period)
);
CREATE INDEX council_delivery_sends_due ON council_delivery_sends (next_attempt_at) WHERE state = 'pending';

-- A row written or handed back wakes the delivery timer of this schema (a hint; it also polls).
CREATE TRIGGER council_deliveries_wakeup AFTER INSERT OR UPDATE OF next_attempt_at, state ON council_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('council_delivery');
CREATE TRIGGER council_delivery_sends_wakeup AFTER INSERT OR UPDATE OF next_attempt_at, state ON council_delivery_sends
    FOR EACH STATEMENT EXECUTE FUNCTION notify_wakeup('council_delivery');
