-- A client's idempotency key for a deposit (issue 23, item 5): a retry with the same key and
-- the same content gets the first answer; the same key with other content is refused. Keys
-- are the provider's own, so they are unique per provider.
CREATE TABLE deposit_key (
    source_hcp   BLOB NOT NULL REFERENCES hcp (hcp_id),
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,                -- SHA-256 of the recipient and the request
    record_id    BLOB NOT NULL REFERENCES record (record_id),
    created      INTEGER NOT NULL,             -- 1 if the first answer created the record
    created_at   TEXT NOT NULL,
    PRIMARY KEY (source_hcp, idem_key)
) STRICT;
