//! `ehrshare audit verify` as an auditor runs it, against logs written by the application and
//! then tampered with, one way per test. (It lives beside the binary, which Cargo builds only
//! for this package's tests.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use ehrshare_core::audit::checkpoint::hex;
use ehrshare_core::clock::Clock;
use ehrshare_testkit::audit::{allow_tampering, sample_entry, tamper};
use ehrshare_testkit::{TestApp, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_ehrshare");

/// A log of `n` entries with one signed checkpoint covering them all.
async fn log_of(n: u64) -> TestApp {
    let t = TestApp::spawn().await;
    for i in 0..n {
        t.app.audit(sample_entry(t.clock.now(), i)).await.unwrap();
    }
    t.app.write_checkpoint().await.unwrap().unwrap();
    t
}

struct Verdict {
    ok: bool,
    stdout: String,
}

fn verify_at(t: &TestApp, url: &str) -> Verdict {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EHRSHARE_DATA_DIR", data.path())
        .env("EHRSHARE_DATABASE_URL", url)
        .args([
            "audit",
            "verify",
            "--public-key",
            &hex(&TestApp::public_key()),
        ])
        .arg("--checkpoints")
        .arg(t.checkpoint_file().path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Verdict { ok: true, stdout },
        Some(1) => Verdict { ok: false, stdout },
        other => panic!("unexpected exit {other:?}: {stdout} {stderr}"),
    }
}

fn verify(t: &TestApp) -> Verdict {
    verify_at(t, t.db.url())
}

fn assert_fails(v: &Verdict, reason: &str, first_bad: u64) {
    assert!(!v.ok, "verify should fail: {}", v.stdout);
    assert!(
        v.stdout.contains(reason),
        "{:?} should say {reason:?}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains(&format!("first bad sequence number: {first_bad}\n")),
        "{:?} should name {first_bad}",
        v.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn passes_on_an_intact_log() {
    let t = log_of(20).await;
    let v = verify(&t);
    assert!(v.ok, "{}", v.stdout);
    assert!(
        v.stdout
            .contains("audit log OK: 20 entries, 2 checkpoints verified"),
        "{}",
        v.stdout
    );
    // More entries and a second checkpoint that extends the first.
    for i in 20..45 {
        t.app.audit(sample_entry(t.clock.now(), i)).await.unwrap();
    }
    t.app.write_checkpoint().await.unwrap().unwrap();
    let v = verify(&t);
    assert!(
        v.stdout
            .contains("audit log OK: 45 entries, 3 checkpoints verified"),
        "{}",
        v.stdout
    );
    // Entries after the last checkpoint are verified too.
    t.app.audit(sample_entry(t.clock.now(), 45)).await.unwrap();
    assert!(
        verify(&t)
            .stdout
            .contains("audit log OK: 46 entries, 3 checkpoints verified")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn names_an_edited_entry() {
    let t = log_of(20).await;
    let db = t.db.connect().await;
    allow_tampering(&db).await;
    tamper(
        &db,
        "UPDATE audit_entry SET reason = 'nothing to see' WHERE seq = 7",
    )
    .await;
    assert_fails(&verify(&t), "entry 7: edited", 7);
}

/// An entry edited so that it no longer decodes is named, not an "internal error" (issue 22).
#[tokio::test(flavor = "multi_thread")]
async fn names_an_entry_that_no_longer_decodes() {
    let t = log_of(20).await;
    let db = t.db.connect().await;
    allow_tampering(&db).await;
    tamper(
        &db,
        "UPDATE audit_entry SET entry_codes = 1 << 30 WHERE seq = 15",
    )
    .await;
    assert_fails(&verify(&t), "entry 15: cannot be decoded", 15);
    // The codes as text, as entries whose codes are not in the tables keep them.
    tamper(
        &db,
        "UPDATE audit_entry SET actor_kind = 'ghost', entry_codes = NULL WHERE seq = 12",
    )
    .await;
    let v = verify(&t);
    assert_fails(&v, "entry 12: cannot be decoded", 12);
    if db.backend() == ehrshare_store::Backend::Sqlite {
        // A timestamp that is no timestamp (TEXT on SQLite).
        tamper(
            &db,
            "UPDATE audit_entry SET at = 'last tuesday' WHERE seq = 7",
        )
        .await;
        assert_fails(&verify(&t), "entry 7: cannot be decoded", 7);
    }
}

/// What a failed append leaves (issue 22): an unfinished last line is no tamper, verify
/// passes and says so, and the next checkpoint removes it; a line that begins with such a
/// remnant and goes on with a whole checkpoint (files written before the fix) passes too.
#[tokio::test(flavor = "multi_thread")]
async fn passes_the_remains_of_a_failed_checkpoint_write_and_says_so() {
    let t = log_of(20).await;
    let path = t.checkpoint_file().path().to_owned();
    let whole = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{whole}{{\"instance\":\"")).unwrap();
    let v = verify(&t);
    assert!(v.ok, "{}", v.stdout);
    assert!(v.stdout.contains("20 entries"), "{}", v.stdout);
    assert!(
        v.stdout.contains("line 3: an unfinished write"),
        "{}",
        v.stdout
    );
    for i in 20..25 {
        t.app.audit(sample_entry(t.clock.now(), i)).await.unwrap();
    }
    t.app.write_checkpoint().await.unwrap().unwrap();
    let v = verify(&t);
    assert!(v.ok, "{}", v.stdout);
    assert!(v.stdout.contains("25 entries"), "{}", v.stdout);
    assert!(!v.stdout.contains("note:"), "{}", v.stdout);
    // The shape the bug left: a fragment, then a whole checkpoint on the same line.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.last().unwrap();
    let mangled = format!(
        "{}\n{}{}\n",
        lines[..lines.len() - 1].join("\n"),
        &last[..40],
        last
    );
    std::fs::write(&path, mangled).unwrap();
    let v = verify(&t);
    assert!(v.ok, "{}", v.stdout);
    assert!(
        v.stdout.contains("remains of a failed write"),
        "{}",
        v.stdout
    );
    // A garbled whole line is tamper all the same.
    std::fs::write(&path, format!("garbage\n{text}")).unwrap();
    let v = verify(&t);
    assert!(!v.ok, "{}", v.stdout);
    assert!(
        v.stdout.contains("checkpoint file line 1: unreadable"),
        "{}",
        v.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn names_a_deleted_entry() {
    let t = log_of(20).await;
    let db = t.db.connect().await;
    allow_tampering(&db).await;
    tamper(&db, "DELETE FROM audit_entry WHERE seq = 5").await;
    assert_fails(&verify(&t), "entry 5: missing", 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_swapped_entries() {
    let t = log_of(20).await;
    let db = t.db.connect().await;
    allow_tampering(&db).await;
    tamper(
        &db,
        "CREATE TEMP TABLE saved AS SELECT * FROM audit_entry WHERE seq IN (3, 9); \
         UPDATE audit_entry SET (at, actor_kind, actor_account, actor_role, actor_hcp, \
           actor_location, sdm, recipient, action, domains, record_ids, reason, outcome, \
           denial_reason, consent_id, episode_id, client_addr, request_id, disclosed, \
           domain_bits, entry_codes, actor_ref, client_ip) = \
           (SELECT at, actor_kind, actor_account, actor_role, actor_hcp, actor_location, sdm, \
            recipient, action, domains, record_ids, reason, outcome, denial_reason, consent_id, \
            episode_id, client_addr, request_id, disclosed, domain_bits, entry_codes, actor_ref, \
            client_ip \
            FROM saved WHERE saved.seq = 12 - audit_entry.seq) \
         WHERE seq IN (3, 9);",
    )
    .await;
    assert_fails(
        &verify(&t),
        "entry 3: reordered (it holds what was written as entry 9)",
        3,
    );
}

/// The tree keeps its subtrees of 32 entries and up (ADR 0023): a tail cut within the last
/// whole 32 is named by them; one cut after it, by the signed checkpoint.
#[tokio::test(flavor = "multi_thread")]
async fn names_a_truncated_tail() {
    let t = log_of(40).await;
    let db = t.db.connect().await;
    allow_tampering(&db).await;
    tamper(&db, "DELETE FROM audit_entry WHERE seq >= 35").await;
    assert_fails(
        &verify(&t),
        "entry 35: database older than the last checkpoint",
        35,
    );
    tamper(&db, "DELETE FROM audit_entry WHERE seq >= 15").await;
    assert_fails(&verify(&t), "entry 15: truncated tail", 15);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_a_restored_older_copy_of_the_database() {
    let t = log_of(20).await;
    let backup: TestDb = t.db.snapshot().await;
    for i in 20..30 {
        t.app.audit(sample_entry(t.clock.now(), i)).await.unwrap();
    }
    t.app.write_checkpoint().await.unwrap().unwrap();
    assert!(verify(&t).ok, "the live database is intact");
    let v = verify_at(&t, backup.url());
    assert_fails(&v, "entry 20: database older than the last checkpoint", 20);
    assert!(v.stdout.contains("checkpoint 3 signed 30"), "{}", v.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_entries_rewritten_together_with_their_tree() {
    let t = log_of(20).await;
    let db = t.db.connect().await;
    allow_tampering(&db).await;
    tamper(
        &db,
        "UPDATE audit_entry SET reason = 'rewritten' WHERE seq = 4",
    )
    .await;
    // The attacker also recomputes what the entry's row records of its leaf, so the entry
    // matches it; below the first 32 entries no stored subtree covers it, and only the signed
    // checkpoint, kept outside the database, shows the change.
    retag(&db, 4).await;
    let v = verify(&t);
    assert!(!v.ok);
    assert!(
        v.stdout
            .contains("checkpoint 2: the first 20 entries do not have the signed root"),
        "{}",
        v.stdout
    );
}

/// Sets entry `seq`'s leaf tag to what its content now hashes to, as an attacker would.
async fn retag(db: &ehrshare_store::Db, seq: u64) {
    let edited = db.audit_entries(seq, 1).await.unwrap().remove(0);
    let tag = ehrshare_core::audit::merkle::leaf_tag(&edited.leaf_hash());
    ehrshare_store::on_pool!(db, p => {
        sqlx::query("UPDATE audit_entry SET leaf_tag = $1 WHERE seq = $2")
            .bind(tag)
            .bind(i64::try_from(seq).unwrap())
            .execute(p)
            .await
            .unwrap();
    });
}

/// An entry rewritten together with what its row records of it, within the first 32: the
/// stored subtree over them names the block, without a checkpoint to compare with.
#[tokio::test(flavor = "multi_thread")]
async fn names_the_block_of_an_entry_rewritten_with_its_leaf_tag() {
    let t = TestApp::spawn().await;
    for i in 0..40 {
        t.app.audit(sample_entry(t.clock.now(), i)).await.unwrap();
    }
    let db = t.db.connect().await;
    allow_tampering(&db).await;
    tamper(
        &db,
        "UPDATE audit_entry SET reason = 'rewritten' WHERE seq = 4",
    )
    .await;
    retag(&db, 4).await;
    assert_fails(
        &verify(&t),
        "entries 0 to 31 do not match the tree's stored node over them",
        0,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_forged_checkpoint() {
    let t = log_of(20).await;
    let path = t.checkpoint_file().path().to_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"size\":20", "\"size\":19")).unwrap();
    let v = verify(&t);
    assert!(!v.ok);
    assert!(
        v.stdout.contains("checkpoint 2: bad signature"),
        "{}",
        v.stdout
    );
}

/// `ehrshare serve` over `url` with the test's signing key and checkpoint file; returns its
/// exit status and what it printed, once it has stopped by itself or been stopped with SIGTERM
/// after it listened.
fn serve_over(t: &TestApp, url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let key = data.path().join("signing-key");
    std::fs::write(&key, hex(&ehrshare_testkit::TEST_SIGNING_SEED)).unwrap();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EHRSHARE_DATA_DIR", data.path())
        .env("EHRSHARE_DATABASE_URL", url)
        .env("EHRSHARE_AUDIT_KEY_FILE", &key)
        .env("EHRSHARE_AUDIT_CHECKPOINT_FILE", t.checkpoint_file().path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut out = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("ehrshare listening on") {
            let pid = child.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        }
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), out, err)
}

/// `serve` refuses a restored older copy of the database (issue 22): it would use sequence
/// numbers again and sign a forked history. Exit 3, the checkpoint file untouched; with
/// `--accept-rollback` it starts, the rollback is signed into the file, and `audit verify`
/// passes and names it; the log then goes on from the restored head.
#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_a_restored_older_copy_unless_the_rollback_is_accepted() {
    let t = log_of(20).await;
    let backup: TestDb = t.db.snapshot().await;
    for i in 20..30 {
        t.app.audit(sample_entry(t.clock.now(), i)).await.unwrap();
    }
    t.app.write_checkpoint().await.unwrap().unwrap();
    let before = std::fs::read(t.checkpoint_file().path()).unwrap();
    let (code, _, err) = serve_over(&t, backup.url(), &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("holds 20 audit entries"), "{err}");
    assert!(err.contains("signed 30"), "{err}");
    assert!(err.contains("--accept-rollback"), "{err}");
    assert_eq!(std::fs::read(t.checkpoint_file().path()).unwrap(), before);
    assert!(!verify_at(&t, backup.url()).ok);

    let (code, out, err) = serve_over(&t, backup.url(), &["--accept-rollback"]);
    assert_eq!(code, Some(0), "{out} {err}");
    let text = std::fs::read_to_string(t.checkpoint_file().path()).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.contains("\"rollback_from\":30"), "{last}");
    assert!(last.contains("\"rollback_kept\":20"), "{last}");
    let v = verify_at(&t, backup.url());
    assert!(v.ok, "{}", v.stdout);
    assert!(v.stdout.contains("a rollback accepted"), "{}", v.stdout);
    assert!(v.stdout.contains("from 30 to 20 entries"), "{}", v.stdout);
    // A plain start now works, and the log goes on from the restored head.
    let (code, out, err) = serve_over(&t, backup.url(), &[]);
    assert_eq!(code, Some(0), "{out} {err}");
    // A copy written to since the restored head (another history of entries 20..) is a
    // divergence: refused in turn.
    let forked = backup.snapshot().await;
    {
        let db = forked.connect().await;
        let log =
            ehrshare_store::AuditLog::open(db.clone(), ehrshare_store::AuditOptions::default())
                .await
                .unwrap();
        for i in 100..105 {
            log.append(sample_entry(t.clock.now(), i)).await.unwrap();
        }
        drop(log);
        db.close().await;
    }
    let (code, out, err) = serve_over(&t, forked.url(), &[]);
    assert_eq!(code, Some(0), "it extends the restored head: {out} {err}");
    let (code, _, err) = serve_over(&t, t.db.url(), &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("does not begin with"), "{err}");
}

/// A database with audit entries but no checkpoint of them (the file lost or misplaced) is
/// refused too; one of another database is refused even with `--accept-rollback`.
#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_entries_without_checkpoints_and_another_databases_file() {
    let t = log_of(5).await;
    let other = log_of(3).await;
    std::fs::remove_file(t.checkpoint_file().path()).unwrap();
    let (code, _, err) = serve_over(&t, t.db.url(), &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("holds no checkpoint"), "{err}");
    let (code, out, err) = serve_over(&t, t.db.url(), &["--accept-rollback"]);
    assert_eq!(code, Some(0), "{out} {err}");
    assert!(verify(&t).ok);
    let (code, _, err) = serve_over(&other, t.db.url(), &["--accept-rollback"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("signed for database"), "{err}");
}
