-- The sharing core (SPEC 3.4-3.9): sharing consents, care episodes, records and their versions,
-- restricted control, alerts and the once-a-day access notices. Recipient-owned rows are keyed
-- by recipient_id first, so that they can be distributed by recipient.

CREATE TABLE consent (
    consent_id   UUID PRIMARY KEY NOT NULL,
    recipient_id UUID NOT NULL REFERENCES recipient (recipient_id),
    hcp_id       UUID NOT NULL REFERENCES hcp (hcp_id),
    kind         TEXT NOT NULL,                -- one-year | indefinite | untyped
    method       TEXT NOT NULL,                -- smart-id-card | access-key | app | form | phone
    method_ref   TEXT,                         -- form reference, card reader, ...
    given_at     TIMESTAMPTZ NOT NULL,                -- given, or last renewed
    revoked_at   TIMESTAMPTZ,
    sdm_id       UUID,                         -- the SDM who gave it, if one did
    account_id   UUID,                         -- the provider's or office's user who recorded it
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX consent_recipient ON consent (recipient_id, hcp_id);

CREATE TABLE care_episode (
    episode_id   UUID PRIMARY KEY NOT NULL,
    recipient_id UUID NOT NULL REFERENCES recipient (recipient_id),
    hcp_id       UUID NOT NULL REFERENCES hcp (hcp_id),
    location_id  UUID REFERENCES hcp_location (location_id),
    kind         TEXT NOT NULL,                -- attendance | admission | appointment | referral
    start_at     TIMESTAMPTZ NOT NULL,
    end_at       TIMESTAMPTZ,
    opened_by    UUID NOT NULL,
    closed_by    UUID,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX care_episode_recipient ON care_episode (recipient_id, hcp_id);

-- A record: the latest version's canonical JSON; earlier versions in record_version.
CREATE TABLE record (
    record_id     UUID PRIMARY KEY NOT NULL,
    recipient_id  UUID NOT NULL REFERENCES recipient (recipient_id),
    domain        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    source_hcp    UUID NOT NULL REFERENCES hcp (hcp_id),
    source_id     TEXT NOT NULL,
    version       BIGINT NOT NULL,
    status        TEXT NOT NULL,               -- current | entered-in-error
    body          TEXT NOT NULL,
    deposited_by  UUID,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (source_hcp, source_id)
);

CREATE INDEX record_recipient_domain ON record (recipient_id, domain, created_at);

CREATE TABLE record_version (
    record_id    UUID NOT NULL REFERENCES record (record_id),
    version      BIGINT NOT NULL,
    recipient_id UUID NOT NULL,
    status       TEXT NOT NULL,
    body         TEXT NOT NULL,
    account_id   UUID,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (record_id, version)
);

-- Restricted control: a record or a whole domain, until lifted.
CREATE TABLE restriction (
    restriction_id UUID PRIMARY KEY NOT NULL,
    recipient_id   UUID NOT NULL REFERENCES recipient (recipient_id),
    domain         TEXT,
    record_id      UUID,
    created_at     TIMESTAMPTZ NOT NULL,
    lifted_at      TIMESTAMPTZ
);

CREATE INDEX restriction_recipient ON restriction (recipient_id);

CREATE TABLE restriction_unlock (
    unlock_id      UUID PRIMARY KEY NOT NULL,
    restriction_id UUID NOT NULL REFERENCES restriction (restriction_id),
    recipient_id   UUID NOT NULL,
    hcp_id         UUID NOT NULL,
    episode_id     UUID NOT NULL,
    account_id     UUID NOT NULL,
    reason         TEXT NOT NULL,
    until_at       TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX restriction_unlock_recipient ON restriction_unlock (recipient_id);

-- Smart ID card readers issued to a provider's locations, with their Ed25519 public keys.
CREATE TABLE card_reader (
    reader_id    UUID PRIMARY KEY NOT NULL,
    hcp_id       UUID NOT NULL REFERENCES hcp (hcp_id),
    location_id  UUID NOT NULL REFERENCES hcp_location (location_id),
    public_key   TEXT NOT NULL,                 -- 64 hex digits
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);

-- Every card assertion's nonce, once: a replayed assertion is refused.
CREATE TABLE card_assertion (
    nonce        TEXT PRIMARY KEY NOT NULL,
    reader_id    UUID NOT NULL REFERENCES card_reader (reader_id),
    asserted_at  TIMESTAMPTZ NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL
);

-- A professional's request to unlock restricted items: a one-time code went to the recipient.
CREATE TABLE unlock_challenge (
    challenge_id    UUID PRIMARY KEY NOT NULL,
    recipient_id    UUID NOT NULL REFERENCES recipient (recipient_id),
    hcp_id          UUID NOT NULL,
    account_id      UUID NOT NULL,
    episode_id      UUID NOT NULL,
    restriction_ids TEXT NOT NULL,             -- JSON array
    reason          TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    used_at         TIMESTAMPTZ
);

-- Suspicious access flagged by a rule, with its review.
CREATE TABLE alert (
    alert_id     UUID PRIMARY KEY NOT NULL,
    rule         TEXT NOT NULL,
    hcp_id       UUID,
    account_id   UUID,
    recipient_id UUID,
    audit_seq    BIGINT,
    detail       TEXT,
    status       TEXT NOT NULL,                -- open | reviewed
    note         TEXT,
    reviewed_by  UUID,
    reviewed_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX alert_hcp ON alert (hcp_id, status);

-- Ordinary access notices go at most once per provider per Hong Kong day.
CREATE TABLE access_notice (
    recipient_id UUID NOT NULL,
    hcp_id       UUID NOT NULL,
    day          TEXT NOT NULL,
    PRIMARY KEY (recipient_id, hcp_id, day)
);
