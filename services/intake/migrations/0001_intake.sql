-- The intake service's own tables (schema set by search_path; see shared/db.py).

-- One row per case: what events, metrics and the citizen's status page are made of. Nothing
-- personal lives here; the citizen's words and contact details are in case_details.
CREATE TABLE cases (
    case_id       uuid PRIMARY KEY,
    reference     text        NOT NULL UNIQUE,
    kind          text        NOT NULL CHECK (kind IN ('report', 'tip', 'officer_request')),
    category      text        NOT NULL,
    focus_area    text        NOT NULL,
    kommune       text        NOT NULL,
    in_progress   boolean,
    acute         boolean,
    institution   text,
    request_type  text        CHECK (request_type IN ('traffic_control', 'talk')),
    anonymous     boolean     NOT NULL DEFAULT false,
    -- The citizen-facing status after the latest action (services.intake.domain.cases.CaseStatus).
    status        text        NOT NULL DEFAULT 'received',
    received_at   timestamptz NOT NULL,
    occurred_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX cases_by_kommune ON cases (kommune, received_at);

-- Personal data (docs/contract.md, Privacy), kept apart so that nothing which reads `cases` can leak
-- it. Police need the text of every report and tip, anonymous or not; an anonymous tip keeps no
-- contact details and no client address, and the database itself refuses them.
CREATE TABLE case_details (
    case_id         uuid PRIMARY KEY REFERENCES cases (case_id) ON DELETE CASCADE,
    anonymous       boolean NOT NULL DEFAULT false,
    description     text    NOT NULL,
    address         text,
    postcode        text,
    lat             double precision,
    lon             double precision,
    contact_name    text,
    contact_phone   text,
    contact_email   text,
    client_address  inet,
    CONSTRAINT anonymous_means_untraceable CHECK (
        NOT anonymous OR (contact_name IS NULL AND contact_phone IS NULL AND contact_email IS NULL
                          AND client_address IS NULL)
    )
);

-- Police actions on a case, in the order they were recorded (seq).
CREATE TABLE case_actions (
    seq             bigserial   UNIQUE,
    action_id       uuid PRIMARY KEY,
    case_id         uuid        NOT NULL REFERENCES cases (case_id) ON DELETE CASCADE,
    action          text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    requested_time  timestamptz,
    outcome         text,
    officer_id      text,
    recorded_by     text        NOT NULL
);
CREATE INDEX case_actions_by_case ON case_actions (case_id, seq);

-- Idempotency-Key per API client: the first answer to a key, replayed for every repeat. The
-- row is claimed first in the transaction that does the work, so a concurrent repeat waits for
-- that transaction and then reads its answer; status_code and response are NULL only inside it.
CREATE TABLE idempotency_keys (
    client        text        NOT NULL,
    key           text        NOT NULL,
    request_hash  text        NOT NULL,
    status_code   integer,
    response      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
