-- Healthcare recipients (SPEC 3.2, 3.3). Everything a recipient owns is keyed by recipient_id
-- so that it can be distributed by recipient.
CREATE TABLE recipient (
    recipient_id       BLOB PRIMARY KEY NOT NULL,
    status             TEXT NOT NULL,      -- pending-verification | active | suspended | withdrawn
    channel            TEXT NOT NULL,      -- in-person | online | mail-fax | hcp
    name_en            TEXT NOT NULL,
    name_zh            TEXT,
    date_of_birth      TEXT NOT NULL,      -- YYYY-MM-DD
    sex                TEXT NOT NULL,      -- female | male | unknown
    capacity           TEXT NOT NULL,      -- able | unable
    doc_type           TEXT NOT NULL,
    doc_issuer         TEXT NOT NULL,
    doc_number         TEXT NOT NULL,
    phone              TEXT NOT NULL,
    phone2             TEXT,
    email              TEXT,
    address            TEXT,
    language           TEXT NOT NULL,      -- en | zh-HK
    notify_channel     TEXT NOT NULL,      -- sms | email | post | app
    refuses_access_notices INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    activated_at       TEXT
) STRICT;

-- One registration per document, unless withdrawn.
CREATE UNIQUE INDEX recipient_document ON recipient (doc_type, doc_issuer, doc_number)
    WHERE status <> 'withdrawn';

CREATE TABLE recipient_sdm (
    recipient_id        BLOB NOT NULL REFERENCES recipient (recipient_id),
    sdm_id              BLOB NOT NULL,
    name_en             TEXT NOT NULL,
    name_zh             TEXT,
    doc_type            TEXT NOT NULL,
    doc_issuer          TEXT NOT NULL,
    doc_number          TEXT NOT NULL,
    category            TEXT NOT NULL,
    no_higher_available INTEGER NOT NULL,
    relationship_proof  TEXT,
    phone               TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    PRIMARY KEY (recipient_id, sdm_id)
) STRICT;

-- The access key, as an Argon2id hash only.
CREATE TABLE recipient_access_key (
    recipient_id BLOB PRIMARY KEY NOT NULL REFERENCES recipient (recipient_id),
    key_hash     TEXT NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;
