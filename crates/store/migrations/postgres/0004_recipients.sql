-- Healthcare recipients (SPEC 3.2, 3.3). Everything a recipient owns is keyed by recipient_id
-- so that it can be distributed by recipient.
CREATE TABLE recipient (
    recipient_id       UUID PRIMARY KEY NOT NULL,
    status             TEXT NOT NULL,
    channel            TEXT NOT NULL,
    name_en            TEXT NOT NULL,
    name_zh            TEXT,
    date_of_birth      TEXT NOT NULL,
    sex                TEXT NOT NULL,
    capacity           TEXT NOT NULL,
    doc_type           TEXT NOT NULL,
    doc_issuer         TEXT NOT NULL,
    doc_number         TEXT NOT NULL,
    phone              TEXT NOT NULL,
    phone2             TEXT,
    email              TEXT,
    address            TEXT,
    language           TEXT NOT NULL,
    notify_channel     TEXT NOT NULL,
    refuses_access_notices BOOLEAN NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    activated_at       TIMESTAMPTZ
);

CREATE UNIQUE INDEX recipient_document ON recipient (doc_type, doc_issuer, doc_number)
    WHERE status <> 'withdrawn';

CREATE TABLE recipient_sdm (
    recipient_id        UUID NOT NULL REFERENCES recipient (recipient_id),
    sdm_id              UUID NOT NULL,
    name_en             TEXT NOT NULL,
    name_zh             TEXT,
    doc_type            TEXT NOT NULL,
    doc_issuer          TEXT NOT NULL,
    doc_number          TEXT NOT NULL,
    category            TEXT NOT NULL,
    no_higher_available BOOLEAN NOT NULL,
    relationship_proof  TEXT,
    phone               TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (recipient_id, sdm_id)
);

CREATE TABLE recipient_access_key (
    recipient_id UUID PRIMARY KEY NOT NULL REFERENCES recipient (recipient_id),
    key_hash     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
