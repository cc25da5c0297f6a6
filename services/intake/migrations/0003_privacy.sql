-- Reading a report's personal content for a purpose, on record; and erasing it on time (docs/privacy.md).

-- Erasure blanks the personal columns of case_details and keeps every row: the case's facts (kind,
-- category, kommune, times, actions) stay as they were, so deadlines and council figures never change.
ALTER TABLE case_details ALTER COLUMN description DROP NOT NULL;

-- When the case's personal data went, and what tells the erasure job when it is due. None of it is
-- personal. The deadlines are learnt from deadlines.v1 (case_deadlines below): `deadlines_open` while
-- any of them runs; `deadlines_settled_at` when the last of them concluded (met or cancelled).
ALTER TABLE cases
    ADD COLUMN contact_erased_at     timestamptz,
    ADD COLUMN details_erased_at     timestamptz,
    ADD COLUMN erased_because        text CHECK (erased_because IN ('retention', 'request')),
    ADD COLUMN deadlines_open        boolean NOT NULL DEFAULT false,
    ADD COLUMN deadlines_settled_at  timestamptz;
-- The erasure job's two queues, oldest first; an erased case leaves them.
CREATE INDEX cases_awaiting_report_erasure ON cases (received_at) WHERE details_erased_at IS NULL;
CREATE INDEX cases_awaiting_contact_erasure ON cases ((coalesce(deadlines_settled_at, received_at)))
    WHERE contact_erased_at IS NULL AND details_erased_at IS NULL AND NOT deadlines_open;

-- Each deadline of a case as deadlines.v1 tells it: concluded_at is set by deadline.met or
-- deadline.cancelled and never cleared; a breached deadline still runs (it may be met late).
-- Deleted with the rest when the case's report is erased.
CREATE TABLE case_deadlines (
    deadline_id   uuid PRIMARY KEY,
    case_id       uuid        NOT NULL,
    concluded_at  timestamptz
);
CREATE INDEX case_deadlines_by_case ON case_deadlines (case_id);

-- Every look at a report's personal content, and every erasure of it (retshåndhævelsesloven,
-- Directive (EU) 2016/680 art. 25): who, when, which case, which fields, why. Nothing the citizen
-- wrote is in it: `fields` names the fields, never their values. No API alters a row; UPDATE is
-- refused below, and the erasure job deletes rows older than INTAKE_ACCESS_LOG_RETENTION.
CREATE TABLE access_log (
    id           bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL,
    case_id      uuid        NOT NULL,  -- no foreign key: the record outlives nothing it records
    action       text        NOT NULL CHECK (action IN ('read', 'erase')),
    -- Who: the person's stable id (roster id, else the provider's subject) and display name; the
    -- erasure job names itself. via_key: the police system's API key that acted for the person.
    person_id    text        NOT NULL,
    person_name  text        NOT NULL,
    via          text        NOT NULL CHECK (via IN ('console', 'api', 'retention')),
    via_key      text,
    purpose      text        CHECK (purpose IN ('acute_response', 'followup', 'investigation', 'citizen_request')),
    reason       text,
    fields       text[]      NOT NULL,
    CHECK ((action = 'read') = (purpose IS NOT NULL)),
    CHECK ((action = 'erase') = (reason IS NOT NULL))
);
CREATE INDEX access_log_by_case ON access_log (case_id, id);
CREATE INDEX access_log_by_age ON access_log (at);

CREATE FUNCTION access_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log rows are never changed (they may only be deleted once past their retention)';
END
$$;
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_is_append_only();
