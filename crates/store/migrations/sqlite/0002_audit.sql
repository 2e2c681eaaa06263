-- The audit log (SPEC 3.9). Append-only: the triggers below refuse UPDATE and DELETE, and the
-- Merkle tree over the entries (audit_node) with signed checkpoints outside the database makes
-- any change that gets past them evident.
CREATE TABLE audit_entry (
    seq            INTEGER PRIMARY KEY NOT NULL,   -- position in the log, from 0, no gaps
    at             TEXT NOT NULL,                  -- UTC, microseconds
    actor_kind     TEXT NOT NULL,
    actor_account  BLOB,
    actor_role     TEXT,
    actor_hcp      BLOB,
    actor_location BLOB,
    sdm            BLOB,
    recipient      BLOB,
    action         TEXT NOT NULL,
    domains        TEXT NOT NULL,                  -- JSON array of domain codes
    record_ids     TEXT NOT NULL,                  -- JSON array of record ids
    reason         TEXT,
    outcome        TEXT NOT NULL,
    denial_reason  TEXT,
    consent_id     BLOB,
    episode_id     BLOB,
    client_addr    TEXT,
    request_id     BLOB
) STRICT;

CREATE INDEX audit_entry_recipient ON audit_entry (recipient, seq) WHERE recipient IS NOT NULL;
CREATE INDEX audit_entry_hcp ON audit_entry (actor_hcp, seq) WHERE actor_hcp IS NOT NULL;

-- Hashes of the perfect subtrees of the Merkle tree, keyed by in-order index (leaf i = 2i).
CREATE TABLE audit_node (
    idx  INTEGER PRIMARY KEY NOT NULL,
    hash BLOB NOT NULL
) STRICT;

CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_node_no_update BEFORE UPDATE ON audit_node
BEGIN SELECT RAISE(ABORT, 'audit nodes are append-only'); END;
CREATE TRIGGER audit_node_no_delete BEFORE DELETE ON audit_node
BEGIN SELECT RAISE(ABORT, 'audit nodes are append-only'); END;
