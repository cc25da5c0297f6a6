-- People's sign-ins to a service's pages (shared/websession.py): the OpenID Connect code flow with PKCE.
-- A sign-in under way: what the callback must find (state), the browser it was started in (binding:
-- the SHA-256 of a cookie only that browser holds), the nonce the ID token must carry and the PKCE
-- verifier. Used once, within ten minutes.
CREATE TABLE web_sign_ins (
    state          text        PRIMARY KEY,
    binding_sha256 text        NOT NULL,
    nonce          text        NOT NULL,
    code_verifier  text        NOT NULL,
    return_to      text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- A signed-in person's session. The browser holds only an opaque random id; this table holds its
-- SHA-256, so a copy of the table is no key to anyone's session. Who the person is comes from the
-- provider's ID token; the refresh token lets the service ask the provider, every minute or so,
-- whether the person may still sign in (a disabled user, or a sign-out elsewhere, ends the session).
CREATE TABLE web_sessions (
    id_sha256         text        PRIMARY KEY,
    subject           text        NOT NULL,
    username          text        NOT NULL,
    name              text        NOT NULL,
    roles             text[]      NOT NULL,
    kommune           text,
    roster_id         text,
    csrf              text        NOT NULL,
    id_token          text        NOT NULL,
    refresh_token     text,
    access_token      text,
    access_expires_at timestamptz,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    checked_at        timestamptz NOT NULL,  -- the provider last asked
    vouched_at        timestamptz NOT NULL   -- the provider last answered yes
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
CREATE INDEX web_sessions_by_subject ON web_sessions (subject);
