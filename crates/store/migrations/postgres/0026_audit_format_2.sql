-- What a read released, by reference to the record history (ADR 0023). A recipient's record
-- revision rises by one with every transaction that writes their records and is stamped on the
-- versions it writes, under the revision row's lock, so that a snapshot that saw revision W saw
-- exactly the versions stamped W or less. A read's audit entry names the revision its snapshot
-- saw, and the history, append-only from here on, gives back the records and versions that left.
CREATE TABLE record_rev (
    recipient_id UUID PRIMARY KEY NOT NULL,
    rev          BIGINT NOT NULL
);

-- Versions written before this migration have no revision (read as 0) and, but for each
-- record's latest, no domain: no reference can name those.
ALTER TABLE record_version ADD COLUMN rev BIGINT, ADD COLUMN domain TEXT;
UPDATE record_version v SET domain = r.domain
    FROM record r WHERE r.record_id = v.record_id AND r.version = v.version;

CREATE TRIGGER record_version_append_only BEFORE UPDATE OR DELETE ON record_version
    FOR EACH ROW EXECUTE FUNCTION ehrshare_append_only();
CREATE TRIGGER record_version_no_truncate BEFORE TRUNCATE ON record_version
    FOR EACH STATEMENT EXECUTE FUNCTION ehrshare_append_only();

-- The disclosure's stored form (core::audit::disclosed::Disclosed::to_stored); NULL for an
-- entry that has none (canonical encoding version 1).
ALTER TABLE audit_entry ADD COLUMN disclosed BYTEA;

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

-- The log's indexes grow at their right end (by sequence number, and by it within a recipient
-- or a provider) and are never updated: pages split there need no room kept free.
ALTER INDEX audit_entry_pkey SET (fillfactor = 100);
ALTER INDEX audit_entry_recipient SET (fillfactor = 100);
ALTER INDEX audit_entry_hcp SET (fillfactor = 100);
ALTER INDEX audit_node_pkey SET (fillfactor = 100);

-- The writer's batch (migration 24, ADR 0022) with the columns above.
DROP FUNCTION ehrshare_audit_batch(BIGINT, UUID[], UUID[], UUID[], TEXT[], BOOLEAN[], BIGINT[],
    TIMESTAMPTZ[], TEXT[], UUID[], TEXT[], UUID[], UUID[], UUID[], UUID[], TEXT[], TEXT[], TEXT[],
    TEXT[], TEXT[], TEXT[], UUID[], UUID[], TEXT[], UUID[], BIGINT[], BYTEA[]);
CREATE FUNCTION ehrshare_audit_batch(
    expected_size    BIGINT,
    consents         UUID[],
    notice_recipient UUID[],
    notice_hcp       UUID[],
    notice_day       TEXT[],
    notice_messages  BOOLEAN[],
    e_seq            BIGINT[],
    e_at             TIMESTAMPTZ[],
    e_actor_kind     TEXT[],
    e_actor_account  UUID[],
    e_actor_role     TEXT[],
    e_actor_hcp      UUID[],
    e_actor_location UUID[],
    e_sdm            UUID[],
    e_recipient      UUID[],
    e_action         TEXT[],
    e_domains        TEXT[],
    e_record_ids     TEXT[],
    e_reason         TEXT[],
    e_outcome        TEXT[],
    e_denial_reason  TEXT[],
    e_consent_id     UUID[],
    e_episode_id     UUID[],
    e_client_addr    TEXT[],
    e_request_id     UUID[],
    e_disclosed      BYTEA[],
    e_leaf_tag       INTEGER[],
    e_domain_bits    INTEGER[],
    e_entry_codes    INTEGER[],
    node_idx         BIGINT[],
    node_hash        BYTEA[]
) RETURNS TEXT LANGUAGE plpgsql AS $$
BEGIN
    -- The lock of every audit writer, in every process (store::audit::rows::PG_AUDIT_LOCK).
    PERFORM pg_advisory_xact_lock(7307216158315538804);
    IF (SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_entry) <> expected_size THEN
        RETURN 'stale';
    END IF;
    IF EXISTS (
        SELECT 1 FROM unnest(consents) AS c (id)
        WHERE NOT EXISTS (
            SELECT 1 FROM consent k WHERE k.consent_id = c.id AND k.revoked_at IS NULL
        )
    ) THEN
        RETURN 'revoked';
    END IF;
    IF EXISTS (
        SELECT 1 FROM unnest(notice_recipient, notice_hcp, notice_day, notice_messages)
            AS n (recipient_id, hcp_id, day, messages)
        WHERE n.messages AND NOT EXISTS (
            SELECT 1 FROM access_notice a
            WHERE a.recipient_id = n.recipient_id AND a.hcp_id = n.hcp_id AND a.day = n.day
        )
    ) THEN
        RETURN 'notices';
    END IF;
    INSERT INTO access_notice (recipient_id, hcp_id, day)
        SELECT * FROM unnest(notice_recipient, notice_hcp, notice_day)
        ON CONFLICT (recipient_id, hcp_id, day) DO NOTHING;
    INSERT INTO audit_entry (seq, at, actor_kind, actor_account, actor_role, actor_hcp,
            actor_location, sdm, recipient, action, domains, record_ids, reason, outcome,
            denial_reason, consent_id, episode_id, client_addr, request_id, disclosed, leaf_tag,
            domain_bits, entry_codes)
        SELECT t.seq, t.at, t.actor_kind, t.actor_account, t.actor_role, t.actor_hcp,
            t.actor_location, t.sdm, t.recipient, t.action, t.domains::jsonb,
            t.record_ids::jsonb, t.reason, t.outcome, t.denial_reason, t.consent_id,
            t.episode_id, t.client_addr, t.request_id, t.disclosed, t.leaf_tag, t.domain_bits,
            t.entry_codes
        FROM unnest(e_seq, e_at, e_actor_kind, e_actor_account, e_actor_role, e_actor_hcp,
            e_actor_location, e_sdm, e_recipient, e_action, e_domains, e_record_ids, e_reason,
            e_outcome, e_denial_reason, e_consent_id, e_episode_id, e_client_addr,
            e_request_id, e_disclosed, e_leaf_tag, e_domain_bits, e_entry_codes)
            AS t (seq, at, actor_kind, actor_account, actor_role, actor_hcp, actor_location,
            sdm, recipient, action, domains, record_ids, reason, outcome, denial_reason,
            consent_id, episode_id, client_addr, request_id, disclosed, leaf_tag, domain_bits,
            entry_codes);
    INSERT INTO audit_node (idx, hash) SELECT * FROM unnest(node_idx, node_hash);
    RETURN 'committed';
END;
$$;
