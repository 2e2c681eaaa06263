//! Faults a real deployment meets (issue 22): a full disk under a running server, and what it
//! answers meanwhile and after.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use ehrshare_app::Settings;
use ehrshare_core::audit::{Actor, NewAuditEntry, Outcome};
use ehrshare_store::Backend;
use ehrshare_testkit::tmpfs::Tmpfs;
use ehrshare_testkit::{SignedBy, TestApp, TestDb};
use ehrshare_web::WebSettings;
use serde_json::{Value, json};

fn registration(n: u32) -> Value {
    let hkid = ehrshare_core::identity::Hkid::from_parts("K", 100_000 + n).unwrap();
    json!({
        "channel": "in-person",
        "name_en": "CHAN Tai Man",
        "date_of_birth": "1980-03-02",
        "sex": "male",
        "document": {"type": "hkid", "number": hkid.as_str()},
        "phone": "9123 4567",
        "language": "zh-HK",
        "notify_channel": "sms"
    })
}

async fn register(
    t: &TestApp,
    office: &ehrshare_testkit::Agent,
    n: u32,
) -> ehrshare_testkit::TestResponse {
    t.send(
        Request::post("/api/v1/recipients")
            .header("content-type", "application/json")
            .signed_by(office)
            .body(Body::from(registration(n).to_string()))
            .unwrap(),
    )
    .await
}

/// SQLite on a real tmpfs that fills up (`mount -t tmpfs`, root only): writes answer 503
/// `store-unavailable` with Retry-After (never 500), `/readyz` fails with the cause while
/// `/healthz` stays 200 `degraded`; once space is freed, readiness comes back by itself and
/// every write succeeds again on every pooled connection, without a restart; nothing that was
/// acknowledged is missing and the audit log verifies.
#[tokio::test]
async fn a_full_disk_answers_503_and_heals_without_a_restart() {
    if TestDb::configured_backend() != Backend::Sqlite {
        eprintln!("a SQLite fault: runs on the SQLite pass");
        return;
    }
    let Some(disk) = Tmpfs::mount("24m") else {
        eprintln!("cannot mount a tmpfs (needs root, as .ci/run has): not run");
        return;
    };
    let db = TestDb::sqlite_in(disk.path());
    let pool = db.migrated().await;
    let t = TestApp::over(db, pool, Settings::default(), WebSettings::default()).await;
    let office = t.office().await;
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let r = register(&t, &office, n).await;
        assert_eq!(r.status, 201, "{}", r.text());
        acknowledged.push(r.json()["id"].as_str().unwrap().to_owned());
    }

    let filler = disk.fill();
    // Audit entries until the WAL has no more room (it may absorb a few commits first).
    let mut failure = None;
    for i in 0..5_000 {
        let mut e = NewAuditEntry::new(
            ehrshare_core::clock::Clock::now(&t.clock),
            Actor::system(),
            "test.fill",
            Outcome::Allowed,
        );
        e.reason = Some(format!("{i:0>400}"));
        if let Err(err) = t.app.audit(e).await {
            failure = Some(err);
            break;
        }
    }
    let failure = failure.expect("the disk never filled");
    assert_eq!(failure.code(), "store-unavailable", "{failure:?}");

    // A write through HTTP meanwhile: 503 with Retry-After, a problem, nothing stored.
    let r = register(&t, &office, 100).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "store-unavailable");
    let retry_after: u64 = r.header("retry-after").parse().unwrap();
    assert!(retry_after >= 1);
    let ready = t.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["cause"], "disk-full");
    assert_eq!(ready.header("retry-after"), "5");
    let health = t.get("/healthz").await;
    assert_eq!(health.status, 200, "no restart loop: {}", health.text());
    assert_eq!(health.json()["status"], "degraded");
    assert_eq!(health.json()["cause"], "disk-full");

    // Space freed: the first write sent once the last answer's Retry-After has passed
    // succeeds, and readiness returns by itself (the writer probes), within a bound far above
    // its 2 s probe interval.
    std::fs::remove_file(filler).unwrap();
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let r = register(&t, &office, 101).await;
    assert_eq!(
        r.status,
        201,
        "the first write after Retry-After: {}",
        r.text()
    );
    acknowledged.push(r.json()["id"].as_str().unwrap().to_owned());
    let started = Instant::now();
    loop {
        let r = t.get("/readyz").await;
        if r.status == 200 {
            assert_eq!(r.json()["status"], "ok");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not ready again: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every write succeeds again, more of them than the pool has connections.
    for n in 200..230 {
        let r = register(&t, &office, n).await;
        assert_eq!(r.status, 201, "after the disk was freed: {}", r.text());
        acknowledged.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    for id in &acknowledged {
        let r = t
            .send(
                Request::get(format!("/api/v1/recipients/{id}"))
                    .header("cookie", &office.cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, 200, "acknowledged {id} is missing: {}", r.text());
    }
    let db = t.db.connect().await;
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
    db.close().await;
    t.app.close().await;
}

/// A checkpoint written while the disk fills (issue 22): a write that fails halfway leaves no
/// half line behind, so the next checkpoint starts on a line of its own and the file reads
/// whole (it used to be appended onto the fragment, and verify then failed forever).
#[tokio::test]
async fn a_checkpoint_torn_by_a_full_disk_leaves_no_half_line() {
    use ehrshare_app::checkpoint::{CheckpointFile, CheckpointLine};
    let Some(disk) = Tmpfs::mount("1m") else {
        eprintln!("cannot mount a tmpfs (needs root, as .ci/run has): not run");
        return;
    };
    // A real signed line to write, from an application's own checkpoint.
    let t = TestApp::spawn().await;
    t.app
        .audit(NewAuditEntry::new(
            ehrshare_core::clock::Clock::now(&t.clock),
            Actor::system(),
            "test.entry",
            Outcome::Allowed,
        ))
        .await
        .unwrap();
    t.app.write_checkpoint().await.unwrap().unwrap();
    let text = std::fs::read_to_string(t.checkpoint_file().path()).unwrap();
    let line: CheckpointLine = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let one = serde_json::to_string(&line).unwrap().len() as u64 + 1;

    let file = CheckpointFile::new(disk.path().join("audit/checkpoints.jsonl"));
    file.append(&line).unwrap();
    // Blank lines (which readers pass over) until the page has less room than a line: the
    // next append can only be written in part.
    let pad = (4096 - std::fs::metadata(file.path()).unwrap().len() % 4096) - one / 2;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(file.path())
            .unwrap();
        f.write_all(&vec![b'\n'; usize::try_from(pad).unwrap()])
            .unwrap();
    }
    let filler = disk.fill();
    assert!(file.append(&line).is_err(), "the disk is full");
    let bytes = std::fs::read(file.path()).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'), "no half line is left");

    std::fs::remove_file(filler).unwrap();
    file.append(&line).unwrap();
    let read = file.read_all().unwrap();
    assert_eq!(read.lines.len(), 2);
    assert!(read.lines.iter().all(Result::is_ok), "{read:?}");
    assert_eq!(read.torn_tail, None);
    assert!(read.torn_prefixes.is_empty());
}
