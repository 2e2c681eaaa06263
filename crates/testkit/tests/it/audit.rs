//! The audit log through the application: group commit, fail closed, atomic changes, proofs.

use std::collections::BTreeSet;
use std::sync::Arc;

use ehrshare_core::audit::merkle::{self, Hash, leaf_hash, node_hash};
use ehrshare_core::audit::{AuditEntry, NewAuditEntry};
use ehrshare_store::ChangeFuture;
use ehrshare_store::{Backend, Conn, change};
use ehrshare_testkit::TestApp;
use ehrshare_testkit::audit::sample_entry;

fn entry(t: &TestApp, n: u64) -> NewAuditEntry {
    use ehrshare_core::clock::Clock;
    sample_entry(t.clock.now(), n)
}

async fn all_entries(t: &TestApp) -> Vec<AuditEntry> {
    let db = t.db.connect().await;
    db.audit_entries(0, 100_000).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_callers_share_a_few_transactions() {
    let t = TestApp::spawn().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = Vec::new();
    for n in 0..64 {
        let app = t.app.clone();
        let barrier = Arc::clone(&barrier);
        let e = entry(&t, n);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.audit(e).await.unwrap()
        }));
    }
    let mut seqs = BTreeSet::new();
    for task in tasks {
        let appended = task.await.unwrap();
        assert!(
            appended.head.size > appended.seq,
            "the head returned includes the entry"
        );
        seqs.insert(appended.seq);
    }
    assert_eq!(
        seqs,
        (0..64).collect::<BTreeSet<u64>>(),
        "gap-free, each once"
    );

    let stats = t.app.audit_log().stats();
    let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);
    let entries = stats.entries.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("64 entries committed in {batches} transactions");
    assert_eq!(entries, 64);
    assert!(
        batches < 64,
        "entries were batched ({batches} transactions)"
    );

    // Every committed entry is in the database, in order, with its leaf tag; the tree keeps
    // its subtrees of 32 and up, and no leaf (ADR 0023).
    let stored = all_entries(&t).await;
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..64).collect::<Vec<_>>()
    );
    let db = t.db.connect().await;
    let tags = db.audit_leaf_tags(0, 64).await.unwrap();
    for e in &stored {
        assert_eq!(tags[&e.seq], merkle::leaf_tag(&e.leaf_hash()));
    }
    let leaves: Vec<Hash> = stored.iter().map(|e| e.leaf_hash()).collect();
    let nodes = db.audit_nodes(&[0, 2, 31, 63, 95]).await.unwrap();
    assert_eq!(nodes.keys().copied().collect::<Vec<_>>(), vec![31, 63, 95]);
    assert_eq!(Some(nodes[&31]), merkle::subtree_hash(&leaves[..32]));
    assert_eq!(Some(nodes[&95]), merkle::subtree_hash(&leaves[32..]));
    assert_eq!(Some(nodes[&63]), merkle::subtree_hash(&leaves));
    assert_eq!(t.app.audit_head().size, 64);
}

#[tokio::test]
async fn stored_entries_read_back_exactly_as_written() {
    let t = TestApp::spawn().await;
    let written: Vec<NewAuditEntry> = (0..10).map(|n| entry(&t, n).validated().unwrap()).collect();
    for e in &written {
        t.app.audit(e.clone()).await.unwrap();
    }
    let stored = all_entries(&t).await;
    for (i, e) in stored.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
        assert_eq!(
            e.entry,
            written[i],
            "entry {i} round-trips on {:?}",
            t.db.backend()
        );
    }
}

#[tokio::test]
async fn an_entry_is_stored_alike_by_either_write_path() {
    // The writer commits a batch of plain entries by a short path (in place on SQLite, ADR
    // 0005; one statement on PostgreSQL, ADR 0022), and a batch with a change through the
    // pool: both must store the same
    // values with the same SQLite types, or readers and `audit verify` would see two logs.
    let t = TestApp::spawn().await;
    let mut e = entry(&t, 0).validated().unwrap();
    e.sdm = Some(uuid::Uuid::from_u128(0x8000));
    e.episode_id = Some(uuid::Uuid::from_u128(0x9000));
    e.reason = Some("覆診 \"quoted\" reason".to_owned());
    // A read's disclosure (ADR 0023), with no recipient: `verify` has no history to hold it to.
    e.recipient = None;
    e.record_ids = Vec::new();
    e.disclosed = Some(ehrshare_core::audit::Disclosed::Set(
        ehrshare_core::audit::SetRef::new(
            7,
            &[ehrshare_core::domain::Domain::Allergy],
            &[(uuid::Uuid::from_u128(1), 2), (uuid::Uuid::from_u128(2), 1)],
            &[uuid::Uuid::from_u128(2)],
        ),
    ));
    let e = e.validated().unwrap();
    t.app.audit(e.clone()).await.unwrap();
    t.app
        .audit_with(e.clone(), insert_meta("second path"))
        .await
        .unwrap();
    let stats = t.app.audit_log().stats();
    let common = stats.common_path.load(std::sync::atomic::Ordering::Relaxed);
    let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((common, batches), (1, 2), "one batch by each path");
    let stored = all_entries(&t).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].entry, e);
    assert_eq!(stored[1].entry, e);
    let db = t.db.connect().await;
    if db.backend() == Backend::Sqlite {
        let columns = [
            "at",
            "actor_kind",
            "actor_account",
            "actor_role",
            "actor_hcp",
            "actor_location",
            "sdm",
            "recipient",
            "action",
            "domains",
            "record_ids",
            "reason",
            "outcome",
            "denial_reason",
            "consent_id",
            "episode_id",
            "client_addr",
            "request_id",
            "disclosed",
            // Not the leaf tag: it is of the entry's sequence number too.
            "domain_bits",
            "entry_codes",
            "actor_ref",
            "client_ip",
        ];
        let select: Vec<String> = columns
            .iter()
            .map(|c| format!("typeof({c}) || ':' || quote({c})"))
            .collect();
        let ehrshare_store::Pool::Sqlite(pool) = db.pool() else {
            unreachable!()
        };
        let mut rows = Vec::new();
        for seq in 0..2_i64 {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM audit_entry WHERE seq = $1",
                select.join(", ")
            )))
            .bind(seq)
            .fetch_one(pool)
            .await
            .unwrap();
            let values: Vec<String> = (0..columns.len())
                .map(|i| sqlx::Row::get::<String, _>(&row, i))
                .collect();
            rows.push(values);
        }
        for (i, c) in columns.iter().enumerate() {
            assert_eq!(rows[0][i], rows[1][i], "column {c}");
        }
    }
    t.app.write_checkpoint().await.unwrap();
    let report = ehrshare_app::verify::verify(
        &db,
        &t.checkpoint_file(),
        &TestApp::public_key(),
        &mut |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(report.finding, None, "{report:?}");
    assert_eq!(report.entries, 2);
}

/// Makes every insert into audit_entry fail, as a read-only or broken audit table would.
async fn break_audit_table(t: &TestApp) {
    let db = t.db.connect().await;
    let sql = match db.backend() {
        Backend::Sqlite => {
            "CREATE TRIGGER audit_broken BEFORE INSERT ON audit_entry \
             BEGIN SELECT RAISE(ABORT, 'audit table is read-only'); END;"
        }
        Backend::Postgres => {
            "CREATE FUNCTION audit_broken() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit table is read-only'; END; $$; \
             CREATE TRIGGER audit_broken BEFORE INSERT ON audit_entry \
             FOR EACH ROW EXECUTE FUNCTION audit_broken();"
        }
    };
    ehrshare_testkit::audit::tamper(&db, sql).await;
}

async fn repair_audit_table(t: &TestApp) {
    let db = t.db.connect().await;
    let sql = match db.backend() {
        Backend::Sqlite => "DROP TRIGGER audit_broken;",
        Backend::Postgres => "DROP TRIGGER audit_broken ON audit_entry;",
    };
    ehrshare_testkit::audit::tamper(&db, sql).await;
}

fn insert_meta(key: &'static str) -> ehrshare_store::Change {
    change(move |conn: Conn<'_>| -> ChangeFuture<'_> {
        Box::pin(async move {
            ehrshare_store::on_conn!(conn, c => {
                sqlx::query("INSERT INTO ehrshare_meta (key, value) VALUES ($1, 'x')")
                    .bind(key)
                    .execute(&mut *c)
                    .await?;
            });
            Ok(())
        })
    })
}

async fn meta_exists(t: &TestApp, key: &str) -> bool {
    let db = t.db.connect().await;
    let n: i64 = ehrshare_store::on_pool!(&db, p => {
        sqlx::query_scalar("SELECT COUNT(*) FROM ehrshare_meta WHERE key = $1")
            .bind(key)
            .fetch_one(p)
            .await
            .unwrap()
    });
    n == 1
}

#[tokio::test]
async fn when_the_audit_cannot_be_written_the_operation_fails_and_changes_nothing() {
    let t = TestApp::spawn().await;
    t.app.audit(entry(&t, 0)).await.unwrap();
    let head = t.app.audit_head();
    break_audit_table(&t).await;

    let err = t
        .app
        .audit_with(entry(&t, 1), insert_meta("change-under-broken-audit"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "internal", "{err:?}");
    assert!(
        !meta_exists(&t, "change-under-broken-audit").await,
        "the change was rolled back"
    );
    assert!(
        t.app.audit(entry(&t, 2)).await.is_err(),
        "a plain append fails too"
    );
    assert_eq!(t.app.audit_head(), head, "the tree did not move");

    // Once the table works again, the log continues without a gap.
    repair_audit_table(&t).await;
    let appended = t.app.audit(entry(&t, 3)).await.unwrap();
    assert_eq!(appended.seq, 1);
    let seqs: Vec<u64> = all_entries(&t).await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![0, 1]);
}

#[tokio::test]
async fn when_the_database_is_gone_the_audit_fails_closed_as_unavailable() {
    let t = TestApp::spawn().await;
    t.app.close().await;
    let err = t.app.audit(entry(&t, 0)).await.unwrap_err();
    assert_eq!(err.code(), "store-unavailable", "{err:?}");
}

#[tokio::test]
async fn a_change_commits_with_its_entry_and_a_failing_change_is_undone_alone() {
    let t = TestApp::spawn().await;
    let ok = t
        .app
        .audit_with(entry(&t, 0), insert_meta("first"))
        .await
        .unwrap();
    assert!(meta_exists(&t, "first").await);
    // `instance_id` exists already: this change fails with a conflict...
    let (dup, other) = tokio::join!(
        t.app.audit_with(entry(&t, 1), insert_meta("instance_id")),
        t.app.audit_with(entry(&t, 2), insert_meta("second")),
    );
    assert_eq!(dup.unwrap_err().code(), "conflict");
    // ...and the change beside it in the same batch is unaffected.
    let other = other.unwrap();
    assert!(meta_exists(&t, "second").await);
    assert_eq!(ok.seq, 0);
    assert_eq!(
        other.seq, 1,
        "the failed change's entry took no sequence number"
    );
    assert_eq!(all_entries(&t).await.len(), 2);
}

#[tokio::test]
async fn a_second_writer_on_the_same_database_keeps_the_log_gap_free() {
    // Two server processes over one database: each batch re-reads the log's size.
    let t = TestApp::spawn().await;
    let other = ehrshare_store::AuditLog::open(t.db.connect().await, Default::default())
        .await
        .unwrap();
    for n in 0..6 {
        if n % 2 == 0 {
            t.app.audit(entry(&t, n)).await.unwrap();
        } else {
            other
                .append(entry(&t, n).validated().unwrap())
                .await
                .unwrap();
        }
    }
    let stored = all_entries(&t).await;
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    // Both writers' trees agree with a tree recomputed from the entries.
    let root = oracle_root(
        &stored
            .iter()
            .map(|e| e.canonical_bytes())
            .collect::<Vec<_>>(),
    );
    assert_eq!(other.head().root, root);
    t.app.audit(entry(&t, 6)).await.unwrap();
    let stored = all_entries(&t).await;
    let root = oracle_root(
        &stored
            .iter()
            .map(|e| e.canonical_bytes())
            .collect::<Vec<_>>(),
    );
    assert_eq!(t.app.audit_head().root, root);
    // Only the first batch found the log as its writer left it: every later one found it grown
    // by the other writer, and went through the general path, which restores the tree (the
    // short paths refuse a grown log: ADR 0005, ADR 0022).
    let stats = t.app.audit_log().stats();
    let common = stats.common_path.load(std::sync::atomic::Ordering::Relaxed);
    let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((common, batches), (1, 4));
}

// The independent RFC 6962 oracle (section 2.1), written from the RFC's text.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn oracle_root(d: &[Vec<u8>]) -> Hash {
    match d.len() {
        0 => merkle::empty_root(),
        1 => leaf_hash(&d[0]),
        n => node_hash(&oracle_root(&d[..split(n)]), &oracle_root(&d[split(n)..])),
    }
}

fn oracle_path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = split(n);
    let (mut p, sibling) = if m < k {
        (oracle_path(m, &d[..k]), oracle_root(&d[k..]))
    } else {
        (oracle_path(m - k, &d[k..]), oracle_root(&d[..k]))
    };
    p.push(sibling);
    p
}

/// Verifies an inclusion proof the way RFC 9162 2.1.3.2 describes, independently of ct-merkle.
fn oracle_verify(leaf: &[u8], index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = leaf_hash(leaf);
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n % 2 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n % 2 == 0 {
                while f_n % 2 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && &r == root
}

#[tokio::test]
async fn inclusion_and_consistency_proofs_verify_independently() {
    let t = TestApp::spawn().await;
    for n in 0..37 {
        t.app.audit(entry(&t, n)).await.unwrap();
    }
    let stored = all_entries(&t).await;
    let bytes: Vec<Vec<u8>> = stored.iter().map(|e| e.canonical_bytes()).collect();
    let head = t.app.audit_head();
    assert_eq!(head.size, 37);
    assert_eq!(
        head.root,
        oracle_root(&bytes),
        "the head is the RFC 6962 root"
    );

    for seq in [0u64, 1, 17, 31, 32, 36] {
        let (e, proof, head) = t.app.audit_inclusion_proof(seq).await.unwrap();
        assert_eq!(e.seq, seq);
        assert_eq!(proof, oracle_path(seq as usize, &bytes), "proof for {seq}");
        assert!(oracle_verify(
            &e.canonical_bytes(),
            seq,
            head.size,
            &proof,
            &head.root
        ));
        assert!(
            merkle::verify_inclusion(&head.root, head.size, seq, &e.canonical_bytes(), &proof)
                .is_ok()
        );
        // A tampered leaf does not verify.
        let mut forged = e.clone();
        forged.entry.action = "record.delete".to_owned();
        assert!(!oracle_verify(
            &forged.canonical_bytes(),
            seq,
            head.size,
            &proof,
            &head.root
        ));
        assert!(
            merkle::verify_inclusion(
                &head.root,
                head.size,
                seq,
                &forged.canonical_bytes(),
                &proof
            )
            .is_err()
        );
    }
    assert_eq!(
        t.app.audit_inclusion_proof(37).await.unwrap_err().code(),
        "not-found"
    );

    for old in [1u64, 5, 16, 36, 37] {
        let (proof, head) = t.app.audit_consistency_proof(old).await.unwrap();
        let old_root = oracle_root(&bytes[..old as usize]);
        assert!(
            merkle::verify_consistency(&old_root, old, &head.root, head.size, &proof).is_ok(),
            "{old}"
        );
        let mut forged = bytes[..old as usize].to_vec();
        forged[0] = b"forged".to_vec();
        let wrong = oracle_root(&forged);
        assert!(merkle::verify_consistency(&wrong, old, &head.root, head.size, &proof).is_err());
    }
    assert_eq!(
        t.app.audit_consistency_proof(0).await.unwrap_err().code(),
        "bad-tree-size"
    );
}

#[tokio::test]
async fn there_is_no_way_to_update_or_delete_an_entry() {
    let t = TestApp::spawn().await;
    // 32 entries: the first stored tree node (ADR 0023).
    for n in 0..32 {
        t.app.audit(entry(&t, n)).await.unwrap();
    }
    let db = t.db.connect().await;
    for sql in [
        "UPDATE audit_entry SET action = 'x.y' WHERE seq = 0",
        "UPDATE audit_entry SET leaf_tag = 0 WHERE seq = 0",
        "DELETE FROM audit_entry WHERE seq = 0",
        "UPDATE audit_node SET hash = hash WHERE idx = 31",
        "DELETE FROM audit_node",
    ] {
        let result: Result<_, sqlx::Error> = ehrshare_store::on_pool!(&db, p => {
            sqlx::query(sql).execute(p).await.map(|_| ())
        });
        let err = result.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn the_checkpointer_signs_the_final_head_when_stopped() {
    use ehrshare_app::audit::spawn_checkpointer;
    use ehrshare_app::checkpoint::CheckpointPolicy;
    let t = TestApp::spawn().await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let policy = CheckpointPolicy {
        every_entries: 1_000_000,
        every: std::time::Duration::from_secs(3600),
    };
    let task = spawn_checkpointer(t.app.clone(), policy, stopped);
    for n in 0..5 {
        t.app.audit(entry(&t, n)).await.unwrap();
    }
    stop.send(()).unwrap();
    task.await.unwrap();
    let checkpoints: Vec<_> = t
        .checkpoint_file()
        .read()
        .unwrap()
        .into_iter()
        .map(|c| c.unwrap())
        .collect();
    let last = checkpoints.last().expect("a checkpoint was written");
    assert_eq!(last.size, 5);
    assert_eq!(last.root, t.app.audit_head().root);
    assert!(ehrshare_app::signer::verify_signature(
        &TestApp::public_key(),
        &last.message(),
        &last.signature
    ));
    // Nothing new: no new checkpoint.
    assert!(t.app.write_checkpoint().await.unwrap().is_none());
}

/// The alert scanner stops between pages when told to (at shutdown), writes where it stopped,
/// and the next scan goes on from there: nothing is scanned twice or skipped (issue 22).
#[tokio::test]
async fn the_alert_scanner_stops_between_pages_and_resumes_where_it_stopped() {
    let t = TestApp::spawn().await;
    let reader = uuid::Uuid::from_u128(0xA11CE);
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..1_500u128 {
        let app = t.app.clone();
        let mut e = ehrshare_core::audit::NewAuditEntry::new(
            ehrshare_core::clock::Clock::now(&t.clock),
            ehrshare_core::audit::Actor {
                kind: ehrshare_core::audit::ActorKind::HcpUser,
                account: Some(reader),
                role: Some("doctor".to_owned()),
                hcp: None,
                location: None,
            },
            "record.read",
            ehrshare_core::audit::Outcome::Allowed,
        );
        e.recipient = Some(uuid::Uuid::from_u128(1_000_000 + i));
        writes.spawn(async move { app.audit(e).await.unwrap() });
    }
    while let Some(w) = writes.join_next().await {
        w.unwrap();
    }
    // Told to stop after one page: one page scanned, its position written.
    let checks = std::sync::atomic::AtomicUsize::new(0);
    let raised = t
        .app
        .scan_alerts_until(|| checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1)
        .await
        .unwrap();
    assert_eq!(
        raised, 1,
        "30 recipients within the hour, in the first page"
    );
    let db = t.db.connect().await;
    let cursor: u64 = db
        .meta("alert_scan_next_seq")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1_000..1_500).contains(&cursor), "{cursor}");
    // The rest: nothing raised twice.
    assert_eq!(t.app.scan_alerts().await.unwrap(), 0);
    assert_eq!(db.open_alerts().await.unwrap().len(), 1);
}

/// A log written before the tree kept only its subtrees of 32 and up (ADR 0023) holds every
/// node and no leaf tags: it still verifies, proves and extends, and an edit in it is still
/// named by its stored leaf.
#[tokio::test]
async fn a_log_that_stored_every_node_verifies_proves_and_extends() {
    let t = TestApp::spawn().await;
    for n in 0..40 {
        t.app.audit(entry(&t, n)).await.unwrap();
    }
    // The old writer's log: every perfect subtree stored, leaves included; no tags.
    let db = t.db.connect().await;
    ehrshare_testkit::audit::allow_tampering(&db).await;
    let old = all_entries(&t).await;
    let mut frontier = merkle::Frontier::new();
    let mut low = Vec::new();
    for e in &old {
        low.extend(
            frontier
                .push(e.leaf_hash())
                .into_iter()
                .filter(|(i, _)| !merkle::is_stored(*i)),
        );
    }
    ehrshare_store::on_pool!(&db, p => {
        sqlx::query("UPDATE audit_entry SET leaf_tag = NULL")
            .execute(p)
            .await
            .unwrap();
        for (idx, hash) in &low {
            sqlx::query("INSERT INTO audit_node (idx, hash) VALUES ($1, $2)")
                .bind(i64::try_from(*idx).unwrap())
                .bind(hash.as_slice())
                .execute(p)
                .await
                .unwrap();
        }
    });
    for n in 40..70 {
        t.app.audit(entry(&t, n)).await.unwrap();
    }
    let stored = all_entries(&t).await;
    let bytes: Vec<Vec<u8>> = stored.iter().map(|e| e.canonical_bytes()).collect();
    let head = t.app.audit_head();
    assert_eq!((head.size, head.root), (70, oracle_root(&bytes)));
    for seq in [0u64, 5, 33, 39, 40, 63, 64, 69] {
        let (e, proof, head) = t.app.audit_inclusion_proof(seq).await.unwrap();
        assert_eq!(proof, oracle_path(seq as usize, &bytes), "proof for {seq}");
        assert!(
            merkle::verify_inclusion(&head.root, head.size, seq, &e.canonical_bytes(), &proof)
                .is_ok()
        );
    }
    let verify = || async {
        t.app.write_checkpoint().await.unwrap();
        ehrshare_app::verify::verify(
            &db,
            &t.checkpoint_file(),
            &TestApp::public_key(),
            &mut |_, _| {},
        )
        .await
        .unwrap()
    };
    let report = verify().await;
    assert_eq!((report.finding, report.entries), (None, 70));
    ehrshare_testkit::audit::tamper(
        &db,
        "UPDATE audit_entry SET reason = 'nothing to see' WHERE seq = 3",
    )
    .await;
    assert_eq!(
        verify().await.finding,
        Some(ehrshare_core::audit::checkpoint::Finding::Edited { seq: 3 })
    );
}

/// A tree node below 32 entries is computed from its entries, and only from those that agree
/// with what their rows recorded (ADR 0023): a proof over an entry changed since it was written
/// is refused, never computed from the changed content.
#[tokio::test]
async fn a_proof_over_a_changed_entry_is_refused() {
    let t = TestApp::spawn().await;
    for n in 0..40 {
        t.app.audit(entry(&t, n)).await.unwrap();
    }
    assert!(t.app.audit_inclusion_proof(36).await.is_ok());
    let db = t.db.connect().await;
    ehrshare_testkit::audit::allow_tampering(&db).await;
    ehrshare_testkit::audit::tamper(
        &db,
        "UPDATE audit_entry SET reason = 'nothing to see' WHERE seq = 35",
    )
    .await;
    assert!(t.app.audit_inclusion_proof(36).await.is_err());
}
