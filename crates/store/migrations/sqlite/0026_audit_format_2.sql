-- What a read released, by reference to the record history (ADR 0023). A recipient's record
-- revision rises by one with every transaction that writes their records and is stamped on the
-- versions it writes; a read's audit entry names the revision its snapshot saw, and the
-- history, append-only from here on, gives back the records and versions that left.
CREATE TABLE record_rev (
    recipient_id BLOB PRIMARY KEY NOT NULL,
    rev          INTEGER NOT NULL
) STRICT;

-- Versions written before this migration have no revision (read as 0) and, but for each
-- record's latest, no domain: no reference can name those.
ALTER TABLE record_version ADD COLUMN rev INTEGER;
ALTER TABLE record_version ADD COLUMN domain TEXT;
UPDATE record_version SET domain = (
    SELECT r.domain FROM record r
    WHERE r.record_id = record_version.record_id AND r.version = record_version.version
) WHERE EXISTS (
    SELECT 1 FROM record r
    WHERE r.record_id = record_version.record_id AND r.version = record_version.version
);

CREATE TRIGGER record_version_no_update BEFORE UPDATE ON record_version
BEGIN SELECT RAISE(ABORT, 'record versions are append-only'); END;
CREATE TRIGGER record_version_no_delete BEFORE DELETE ON record_version
BEGIN SELECT RAISE(ABORT, 'record versions are append-only'); END;

-- The disclosure's stored form (core::audit::disclosed::Disclosed::to_stored); NULL for an
-- entry that has none (canonical encoding version 1).
ALTER TABLE audit_entry ADD COLUMN disclosed BLOB;

-- The first four bytes of each entry's leaf hash (core::audit::merkle::leaf_tag): the tree now
-- keeps only its subtrees of 32 leaves and up (core::audit::merkle::STORED_FROM_LEVEL), and
-- `audit verify` names an entry changed without its tag. NULL in entries written before.
ALTER TABLE audit_entry ADD COLUMN leaf_tag INTEGER;

-- The entry's domains as bits (core::audit::disclosed::domain_bits), `domains` then '[]': a
-- storage encoding, used when it gives the same list back. A summary's fifteen codes as JSON
-- were about 200 bytes of every read's row.
ALTER TABLE audit_entry ADD COLUMN domain_bits INTEGER;

-- The actor kind, action and outcome as one number (store::audit::codes), the three text
-- columns then '': a storage encoding, used when all three are in its frozen tables.
ALTER TABLE audit_entry ADD COLUMN entry_codes INTEGER;

-- Who acted (account, role, location) once per distinct actor (store::audit::actors): an entry
-- names its actor by `actor_ref`, its three actor columns then NULL. Append-only, as the
-- entries that refer to it.
CREATE TABLE audit_actor (
    ref_id     INTEGER PRIMARY KEY NOT NULL,
    key        BLOB NOT NULL UNIQUE,
    a_account  BLOB,
    a_role     TEXT,
    a_location BLOB
) STRICT;
CREATE TRIGGER audit_actor_no_update BEFORE UPDATE ON audit_actor
BEGIN SELECT RAISE(ABORT, 'audit actors are append-only'); END;
CREATE TRIGGER audit_actor_no_delete BEFORE DELETE ON audit_actor
BEGIN SELECT RAISE(ABORT, 'audit actors are append-only'); END;
ALTER TABLE audit_entry ADD COLUMN actor_ref INTEGER REFERENCES audit_actor (ref_id);

-- The client's address as its 4 or 16 bytes (store::audit::rows::stored_client), `client_addr`
-- then NULL: used when the bytes give back the same text.
ALTER TABLE audit_entry ADD COLUMN client_ip BLOB;
