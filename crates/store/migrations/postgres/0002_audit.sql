-- The audit log (SPEC 3.9). Append-only: the triggers below refuse UPDATE, DELETE and TRUNCATE,
-- and the Merkle tree over the entries (audit_node) with signed checkpoints outside the database
-- makes any change that gets past them evident.
CREATE TABLE audit_entry (
    seq            BIGINT PRIMARY KEY NOT NULL,    -- position in the log, from 0, no gaps
    at             TIMESTAMPTZ NOT NULL,
    actor_kind     TEXT NOT NULL,
    actor_account  UUID,
    actor_role     TEXT,
    actor_hcp      UUID,
    actor_location UUID,
    sdm            UUID,
    recipient      UUID,
    action         TEXT NOT NULL,
    domains        JSONB NOT NULL,
    record_ids     JSONB NOT NULL,
    reason         TEXT,
    outcome        TEXT NOT NULL,
    denial_reason  TEXT,
    consent_id     UUID,
    episode_id     UUID,
    client_addr    TEXT,
    request_id     UUID
);

CREATE INDEX audit_entry_recipient ON audit_entry (recipient, seq) WHERE recipient IS NOT NULL;
CREATE INDEX audit_entry_hcp ON audit_entry (actor_hcp, seq) WHERE actor_hcp IS NOT NULL;

CREATE TABLE audit_node (
    idx  BIGINT PRIMARY KEY NOT NULL,
    hash BYTEA NOT NULL
);

CREATE FUNCTION ehrshare_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry
    FOR EACH ROW EXECUTE FUNCTION ehrshare_append_only();
CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry
    FOR EACH STATEMENT EXECUTE FUNCTION ehrshare_append_only();
CREATE TRIGGER audit_node_append_only BEFORE UPDATE OR DELETE ON audit_node
    FOR EACH ROW EXECUTE FUNCTION ehrshare_append_only();
CREATE TRIGGER audit_node_no_truncate BEFORE TRUNCATE ON audit_node
    FOR EACH STATEMENT EXECUTE FUNCTION ehrshare_append_only();
