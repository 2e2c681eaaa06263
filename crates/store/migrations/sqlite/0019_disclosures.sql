-- The disclosure ledger (issue 26, SPEC 3.11): disclosures outside care, recorded by the
-- office's privacy officers. The recipient sees each in their access log unless it is
-- withheld, and then from withhold_until on.
CREATE TABLE disclosure (
    disclosure_id   BLOB PRIMARY KEY NOT NULL,
    recipient_id    BLOB NOT NULL REFERENCES recipient (recipient_id),
    legal_basis     TEXT NOT NULL,           -- court-order | police | coroner | research
    requesting_body TEXT NOT NULL,
    data_disclosed  TEXT NOT NULL,
    disclosed_on    TEXT NOT NULL,           -- YYYY-MM-DD, Hong Kong's date
    withhold_until  TEXT,
    recorded_by     BLOB NOT NULL,
    recorded_at     TEXT NOT NULL
) STRICT;

CREATE INDEX disclosure_recipient ON disclosure (recipient_id);
