-- The sharing core (SPEC 3.4-3.9): sharing consents, care episodes, records and their versions,
-- restricted control, alerts and the once-a-day access notices. Recipient-owned rows are keyed
-- by recipient_id first, so that they can be distributed by recipient.

CREATE TABLE consent (
    consent_id   BLOB PRIMARY KEY NOT NULL,
    recipient_id BLOB NOT NULL REFERENCES recipient (recipient_id),
    hcp_id       BLOB NOT NULL REFERENCES hcp (hcp_id),
    kind         TEXT NOT NULL,                -- one-year | indefinite | untyped
    method       TEXT NOT NULL,                -- smart-id-card | access-key | app | form | phone
    method_ref   TEXT,                         -- form reference, card reader, ...
    given_at     TEXT NOT NULL,                -- given, or last renewed
    revoked_at   TEXT,
    sdm_id       BLOB,                         -- the SDM who gave it, if one did
    account_id   BLOB,                         -- the provider's or office's user who recorded it
    created_at   TEXT NOT NULL
) STRICT;

CREATE INDEX consent_recipient ON consent (recipient_id, hcp_id);

CREATE TABLE care_episode (
    episode_id   BLOB PRIMARY KEY NOT NULL,
    recipient_id BLOB NOT NULL REFERENCES recipient (recipient_id),
    hcp_id       BLOB NOT NULL REFERENCES hcp (hcp_id),
    location_id  BLOB REFERENCES hcp_location (location_id),
    kind         TEXT NOT NULL,                -- attendance | admission | appointment | referral
    start_at     TEXT NOT NULL,
    end_at       TEXT,
    opened_by    BLOB NOT NULL,
    closed_by    BLOB,
    created_at   TEXT NOT NULL
) STRICT;

CREATE INDEX care_episode_recipient ON care_episode (recipient_id, hcp_id);

-- A record: the latest version's canonical JSON; earlier versions in record_version.
CREATE TABLE record (
    record_id     BLOB PRIMARY KEY NOT NULL,
    recipient_id  BLOB NOT NULL REFERENCES recipient (recipient_id),
    domain        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    source_hcp    BLOB NOT NULL REFERENCES hcp (hcp_id),
    source_id     TEXT NOT NULL,
    version       INTEGER NOT NULL,
    status        TEXT NOT NULL,               -- current | entered-in-error
    body          TEXT NOT NULL,
    deposited_by  BLOB,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (source_hcp, source_id)
) STRICT;

CREATE INDEX record_recipient_domain ON record (recipient_id, domain, created_at);

CREATE TABLE record_version (
    record_id    BLOB NOT NULL REFERENCES record (record_id),
    version      INTEGER NOT NULL,
    recipient_id BLOB NOT NULL,
    status       TEXT NOT NULL,
    body         TEXT NOT NULL,
    account_id   BLOB,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (record_id, version)
) STRICT;

-- Restricted control: a record or a whole domain, until lifted.
CREATE TABLE restriction (
    restriction_id BLOB PRIMARY KEY NOT NULL,
    recipient_id   BLOB NOT NULL REFERENCES recipient (recipient_id),
    domain         TEXT,
    record_id      BLOB,
    created_at     TEXT NOT NULL,
    lifted_at      TEXT
) STRICT;

CREATE INDEX restriction_recipient ON restriction (recipient_id);

CREATE TABLE restriction_unlock (
    unlock_id      BLOB PRIMARY KEY NOT NULL,
    restriction_id BLOB NOT NULL REFERENCES restriction (restriction_id),
    recipient_id   BLOB NOT NULL,
    hcp_id         BLOB NOT NULL,
    episode_id     BLOB NOT NULL,
    account_id     BLOB NOT NULL,
    reason         TEXT NOT NULL,
    until_at       TEXT NOT NULL,
    created_at     TEXT NOT NULL
) STRICT;

CREATE INDEX restriction_unlock_recipient ON restriction_unlock (recipient_id);

-- Smart ID card readers issued to a provider's locations, with their Ed25519 public keys.
CREATE TABLE card_reader (
    reader_id    BLOB PRIMARY KEY NOT NULL,
    hcp_id       BLOB NOT NULL REFERENCES hcp (hcp_id),
    location_id  BLOB NOT NULL REFERENCES hcp_location (location_id),
    public_key   TEXT NOT NULL,                 -- 64 hex digits
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
) STRICT;

-- Every card assertion's nonce, once: a replayed assertion is refused.
CREATE TABLE card_assertion (
    nonce        TEXT PRIMARY KEY NOT NULL,
    reader_id    BLOB NOT NULL REFERENCES card_reader (reader_id),
    asserted_at  TEXT NOT NULL,
    received_at  TEXT NOT NULL
) STRICT;

-- A professional's request to unlock restricted items: a one-time code went to the recipient.
CREATE TABLE unlock_challenge (
    challenge_id    BLOB PRIMARY KEY NOT NULL,
    recipient_id    BLOB NOT NULL REFERENCES recipient (recipient_id),
    hcp_id          BLOB NOT NULL,
    account_id      BLOB NOT NULL,
    episode_id      BLOB NOT NULL,
    restriction_ids TEXT NOT NULL,             -- JSON array
    reason          TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT
) STRICT;

-- Suspicious access flagged by a rule, with its review.
CREATE TABLE alert (
    alert_id     BLOB PRIMARY KEY NOT NULL,
    rule         TEXT NOT NULL,
    hcp_id       BLOB,
    account_id   BLOB,
    recipient_id BLOB,
    audit_seq    INTEGER,
    detail       TEXT,
    status       TEXT NOT NULL,                -- open | reviewed
    note         TEXT,
    reviewed_by  BLOB,
    reviewed_at  TEXT,
    created_at   TEXT NOT NULL
) STRICT;

CREATE INDEX alert_hcp ON alert (hcp_id, status);

-- Ordinary access notices go at most once per provider per Hong Kong day.
CREATE TABLE access_notice (
    recipient_id BLOB NOT NULL,
    hcp_id       BLOB NOT NULL,
    day          TEXT NOT NULL,
    PRIMARY KEY (recipient_id, hcp_id, day)
) STRICT;
