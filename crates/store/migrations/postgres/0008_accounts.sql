-- Accounts and login (SPEC 4.2): providers' users and office staff, persons (recipients and
-- SDMs) who log in, server-side sessions, login throttling, OAuth clients and tokens for clinic
-- systems, OpenID Connect links. Every secret is stored as a hash (Argon2id for passwords,
-- SHA-256 hex for high-entropy random tokens), except TOTP seeds, which must be readable to
-- check a code.

CREATE TABLE account (
    account_id      UUID PRIMARY KEY NOT NULL,
    realm           TEXT NOT NULL,                 -- hcp | office
    hcp_id          UUID REFERENCES hcp (hcp_id),  -- set for realm hcp
    user_name       TEXT NOT NULL UNIQUE,          -- lower case
    name_en         TEXT NOT NULL,
    name_zh         TEXT,
    role            TEXT NOT NULL,                 -- core::profession::Role or core::account::OfficeRole code
    user_admin      BOOLEAN NOT NULL,
    prof_reg_no     TEXT,
    mobile          TEXT NOT NULL,
    email           TEXT,
    language        TEXT NOT NULL,
    status          TEXT NOT NULL,                 -- pending | active | suspended | terminated
    password_hash   TEXT NOT NULL,
    password_set_at TIMESTAMPTZ NOT NULL,
    must_change_password BOOLEAN NOT NULL,
    totp_secret     BYTEA,                       -- set once enrolled
    totp_pending    BYTEA,                       -- offered, not yet confirmed
    totp_last_step  BIGINT,
    last_login_at   TIMESTAMPTZ,
    demo            BOOLEAN NOT NULL,               -- created by `ehrshare demo`
    created_at      TIMESTAMPTZ NOT NULL,
    version         BIGINT NOT NULL
);

CREATE INDEX account_hcp ON account (hcp_id, user_name);

-- Earlier password hashes, newest first, for "not one of the last six".
CREATE TABLE account_password_history (
    account_id    UUID NOT NULL REFERENCES account (account_id),
    password_hash TEXT NOT NULL,
    set_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, password_hash)
);

-- A person who logs in to the patient portal: a recipient, an SDM, or both, by document.
CREATE TABLE person (
    person_id       UUID PRIMARY KEY NOT NULL,
    doc_type        TEXT NOT NULL,
    doc_issuer      TEXT NOT NULL,
    doc_number      TEXT NOT NULL,
    password_hash   TEXT,                          -- none: logs in only through OpenID Connect
    password_set_at TIMESTAMPTZ,
    otp_channel     TEXT NOT NULL,                 -- sms | email
    otp_address     TEXT NOT NULL,
    language        TEXT NOT NULL,
    status          TEXT NOT NULL,                 -- active | suspended
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (doc_type, doc_issuer, doc_number)
);

-- A one-time code sent to a person at login, and how often it was tried.
CREATE TABLE login_challenge (
    challenge_id UUID PRIMARY KEY NOT NULL,
    person_id    UUID NOT NULL REFERENCES person (person_id),
    code_hash    TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ
);

-- Consecutive login failures per key (`user:<name>`, `person:<document>`, `addr:<ip>`).
CREATE TABLE login_failure (
    key          TEXT PRIMARY KEY NOT NULL,
    count        BIGINT NOT NULL,
    last_at      TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ
);

-- Server-side sessions; the cookie holds the token, the table its SHA-256.
CREATE TABLE session (
    token_hash   TEXT PRIMARY KEY NOT NULL,
    account_id   UUID REFERENCES account (account_id),
    person_id    UUID REFERENCES person (person_id),
    stage        TEXT NOT NULL,                    -- ready | must-change-password | must-enrol-token
    csrf_token   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ,
    end_reason   TEXT,
    client_addr  TEXT
);

CREATE INDEX session_account ON session (account_id) WHERE ended_at IS NULL;
CREATE INDEX session_person ON session (person_id) WHERE ended_at IS NULL;

-- Clinic systems registered by a provider's user administrators.
CREATE TABLE oauth_client (
    client_id     TEXT PRIMARY KEY NOT NULL,
    hcp_id        UUID NOT NULL REFERENCES hcp (hcp_id),
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,                   -- JSON array of exact URIs
    scopes        TEXT NOT NULL,                   -- space-separated, the most it may be granted
    created_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ
);

CREATE INDEX oauth_client_hcp ON oauth_client (hcp_id);

-- Authorization codes (single use, a minute or two).
CREATE TABLE oauth_code (
    code_hash      TEXT PRIMARY KEY NOT NULL,
    client_id      TEXT NOT NULL REFERENCES oauth_client (client_id),
    account_id     UUID NOT NULL REFERENCES account (account_id),
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ
);

-- Access tokens (short-lived bearer tokens).
CREATE TABLE oauth_token (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    client_id   TEXT NOT NULL REFERENCES oauth_client (client_id),
    hcp_id      UUID NOT NULL REFERENCES hcp (hcp_id),
    account_id  UUID REFERENCES account (account_id),  -- set for a professional's token
    scopes      TEXT NOT NULL,
    issued_at   TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);

CREATE INDEX oauth_token_account ON oauth_token (account_id) WHERE revoked_at IS NULL;
CREATE INDEX oauth_token_client ON oauth_token (client_id) WHERE revoked_at IS NULL;

-- OpenID Connect logins under way (state, nonce and PKCE verifier), a few minutes each.
CREATE TABLE oidc_login (
    state_hash  TEXT PRIMARY KEY NOT NULL,
    nonce       TEXT NOT NULL,
    verifier    TEXT NOT NULL,
    purpose     TEXT NOT NULL,                     -- person-login | account-login | account-link
    account_id  UUID REFERENCES account (account_id),
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);

-- External identities linked to an account or a person.
CREATE TABLE oidc_link (
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    account_id  UUID REFERENCES account (account_id),
    person_id   UUID REFERENCES person (person_id),
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer, subject)
);
