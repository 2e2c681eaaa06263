-- The audit writer's common batch in one round trip (ADR 0022). Through sqlx a batch of read
-- entries was eight statements (begin, lock, size, consents, notice days, entries, nodes,
-- commit), each a round trip that waited for a core behind the readers it was committing for;
-- under load a batch took tens of milliseconds and the writer, one at a time, capped every
-- audited read. This function does what that path does for a batch with no change, no alert
-- and no notice to send, inside the one statement that calls it: it takes the writers' lock,
-- and answers without writing anything when the batch is not for it ('stale': another
-- process appended; 'revoked': a consent a read rests on was revoked; 'notices': a day's first
-- access has a notice to queue). The caller then runs the batch on the general path.
--
-- In READ COMMITTED each statement below takes its own snapshot, after the lock is held: the
-- size, the consents and the notice days it reads are those every earlier writer committed.
CREATE OR REPLACE FUNCTION ehrshare_audit_batch(
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
            denial_reason, consent_id, episode_id, client_addr, request_id)
        SELECT t.seq, t.at, t.actor_kind, t.actor_account, t.actor_role, t.actor_hcp,
            t.actor_location, t.sdm, t.recipient, t.action, t.domains::jsonb,
            t.record_ids::jsonb, t.reason, t.outcome, t.denial_reason, t.consent_id,
            t.episode_id, t.client_addr, t.request_id
        FROM unnest(e_seq, e_at, e_actor_kind, e_actor_account, e_actor_role, e_actor_hcp,
            e_actor_location, e_sdm, e_recipient, e_action, e_domains, e_record_ids, e_reason,
            e_outcome, e_denial_reason, e_consent_id, e_episode_id, e_client_addr,
            e_request_id)
            AS t (seq, at, actor_kind, actor_account, actor_role, actor_hcp, actor_location,
            sdm, recipient, action, domains, record_ids, reason, outcome, denial_reason,
            consent_id, episode_id, client_addr, request_id);
    INSERT INTO audit_node (idx, hash) SELECT * FROM unnest(node_idx, node_hash);
    RETURN 'committed';
END;
$$;
