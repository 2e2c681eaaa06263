//! `ehrshare import`, a clinic's history in bulk, against a real listening server (issue 28,
//! item 3; ADR 0025): 5,000 lines with three bad ones, the server stopped and started again
//! while they arrive. Every good line is stored exactly once, each bad one is refused alone
//! with its code, each line's answer is in the outcome file, and `--resume` sends only what
//! was not stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod clinic;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ehrshare_testkit::TestApp;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ehrshare");

async fn records(t: &TestApp) -> (i64, i64) {
    let db = t.db.connect().await;
    ehrshare_store::on_pool!(&db, p => {
        sqlx::query_as::<_, (i64, i64)>("SELECT COUNT(*), COALESCE(MAX(CAST(version AS BIGINT)), 0) FROM record")
            .fetch_one(p)
            .await
            .unwrap()
    })
}

fn import(
    port: u16,
    client: &str,
    key: &Path,
    file: &Path,
    stderr: &Path,
    more: &[&str],
) -> std::process::Child {
    std::process::Command::new(BIN)
        .args(["import", "--server", &format!("http://127.0.0.1:{port}")])
        .args([
            "--client-id",
            client,
            "--kid",
            "k1",
            "--max-backoff-secs",
            "1",
        ])
        .args(["--chunk-lines", "500"])
        .args(if more.contains(&"--give-up-after-secs") {
            &[][..]
        } else {
            &["--give-up-after-secs", "60"][..]
        })
        .args(more)
        .arg("--key")
        .arg(key)
        .arg(file)
        .env("EHRSHARE_LOG_LEVEL", "warn")
        .stdout(std::fs::File::create(stderr.with_extension("stdout")).unwrap())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

/// The outcome file's lines by line number (the last answer of each).
fn outcomes(path: &Path) -> (usize, BTreeMap<u64, Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut by = BTreeMap::new();
    let mut n = 0;
    for l in text.lines() {
        n += 1;
        let v: Value = serde_json::from_str(l).unwrap();
        by.insert(v["line"].as_u64().unwrap(), v);
    }
    (n, by)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_lines_arrive_once_across_a_server_restart_and_bad_ones_alone_are_refused() {
    let (port, t) = clinic::server().await;
    let (recipient, client) = clinic::clinic_with_system(&t).await;
    let recipient = recipient.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, clinic::KEY).unwrap();
    let file = dir.path().join("history.ndjson");
    let mut text = String::new();
    for n in 1..=5000 {
        let line = ehrshare_fhir::build::deposit_example(recipient, 0, n);
        let line = match n {
            100 => "{\"resourceType\": \"Observation\", oops".to_owned(),
            2000 => line.replacen('{', "{\"colour\":\"red\",", 1),
            4000 => line.replacen('{', "{\"id\":\"twice\",", 1),
            _ => line,
        };
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(&file, &text).unwrap();
    let outcome = dir.path().join("history.ndjson.outcome.ndjson");
    let stderr = dir.path().join("import.stderr");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(axum::serve(listener, t.router()).into_future());
    let mut first = import(port, &client, &key, &file, &stderr, &[]);
    // Once the first lines are answered, the server goes away for a second and comes back.
    let until = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&outcome)
        .unwrap_or_default()
        .lines()
        .count()
        == 0
    {
        assert!(
            Instant::now() < until,
            "{}",
            std::fs::read_to_string(&stderr).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.abort();
    let _ = server.await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(axum::serve(listener, t.router()).into_future());
    let status =
        tokio::task::spawn_blocking(move || clinic::wait_for(&mut first, Duration::from_secs(120)))
            .await
            .unwrap();
    let said = std::fs::read_to_string(&stderr).unwrap();
    // Three lines refused: exit 1.
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{said}");
    assert!(
        !said.contains('\u{1b}'),
        "no escape codes when standard error is not a terminal: {said:?}"
    );
    assert!(
        said.contains("4997 stored") && said.contains("3 refused"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(stderr.with_extension("stdout")).unwrap(),
        "",
        "standard output stays empty"
    );

    assert!(
        said.contains("trying again"),
        "the restart was met mid-import: {said}"
    );
    // One answer a line, and each bad line refused with its own code.
    let (written, by) = outcomes(&outcome);
    assert_eq!((written, by.len()), (5000, 5000), "{said}");
    let code = |n: u64| by[&n]["code"].as_str().unwrap_or("").to_owned();
    assert_eq!(
        (by[&100]["status"].as_u64(), code(100)),
        (Some(400), "not-json".to_owned())
    );
    assert_eq!(
        (by[&2000]["status"].as_u64(), code(2000)),
        (Some(422), "invalid-resource".to_owned()),
        "{}",
        by[&2000]
    );
    assert!(
        by[&2000]["said"]
            .as_str()
            .unwrap()
            .contains("Condition.colour"),
        "{}",
        by[&2000]
    );
    assert_eq!(
        (by[&4000]["status"].as_u64(), code(4000)),
        (Some(422), "invalid-resource".to_owned()),
        "{}",
        by[&4000]
    );
    assert!(
        by[&4000]["said"].as_str().unwrap().contains(".id"),
        "{}",
        by[&4000]
    );
    let stored = by.values().filter(|v| v["location"].is_string()).count();
    assert_eq!(stored, 4997);
    assert!(
        by[&1]["location"].as_str().unwrap().contains("/_history/1"),
        "{}",
        by[&1]
    );
    // Every record once, at version 1, whatever the restart cut off mid-request.
    assert_eq!(records(&t).await, (4997, 1), "{said}");

    // Again with --resume: only the three refused lines are sent, and refused again.
    let mut again = import(port, &client, &key, &file, &stderr, &["--resume"]);
    let status =
        tokio::task::spawn_blocking(move || clinic::wait_for(&mut again, Duration::from_secs(60)))
            .await
            .unwrap();
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{said}");
    assert!(
        said.contains("4997 stored by an earlier run, not sent"),
        "{said}"
    );
    let (written, by) = outcomes(&outcome);
    assert_eq!(
        written, 5003,
        "three lines answered again, nothing else sent"
    );
    assert_eq!(by.len(), 5000);
    assert_eq!(records(&t).await, (4997, 1));

    // The three lines mended: stored, and the import now exits 0.
    let mended = text
        .replace(
            "{\"resourceType\": \"Observation\", oops",
            &ehrshare_fhir::build::deposit_example(recipient, 0, 100),
        )
        .replace("{\"colour\":\"red\",", "{")
        .replace("{\"id\":\"twice\",", "{");
    std::fs::write(&file, mended).unwrap();
    let mut mended = import(port, &client, &key, &file, &stderr, &["--resume"]);
    let status =
        tokio::task::spawn_blocking(move || clinic::wait_for(&mut mended, Duration::from_secs(60)))
            .await
            .unwrap();
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{said}");
    assert_eq!(records(&t).await, (5000, 1), "{said}");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_the_server_never_answers_stops_with_exit_2_and_resumes() {
    let (port, t) = clinic::server().await;
    let (recipient, client) = clinic::clinic_with_system(&t).await;
    let recipient = recipient.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, clinic::KEY).unwrap();
    let file = dir.path().join("history.ndjson");
    let text: String = (1..=30)
        .map(|n| ehrshare_fhir::build::deposit_example(recipient, 1, n) + "\n")
        .collect();
    std::fs::write(&file, &text).unwrap();
    let stderr = dir.path().join("import.stderr");

    // No server: it gives up after its patience, with nothing stored.
    let mut first = import(
        port,
        &client,
        &key,
        &file,
        &stderr,
        &["--give-up-after-secs", "2"],
    );
    let status =
        tokio::task::spawn_blocking(move || clinic::wait_for(&mut first, Duration::from_secs(60)))
            .await
            .unwrap();
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{said}");
    assert!(said.contains("--resume"), "{said}");

    // A .json file is refused before anything is sent, naming the command that takes it.
    let bundle = dir.path().join("visit.json");
    std::fs::write(&bundle, "{}").unwrap();
    let mut wrong = import(port, &client, &key, &bundle, &stderr, &[]);
    let status =
        tokio::task::spawn_blocking(move || clinic::wait_for(&mut wrong, Duration::from_secs(30)))
            .await
            .unwrap();
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{said}");
    assert!(said.contains("ehrshare connect"), "{said}");

    // The server is up: --resume sends all thirty.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(axum::serve(listener, t.router()).into_future());
    let mut again = import(port, &client, &key, &file, &stderr, &["--resume"]);
    let status =
        tokio::task::spawn_blocking(move || clinic::wait_for(&mut again, Duration::from_secs(60)))
            .await
            .unwrap();
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{said}");
    assert_eq!(records(&t).await, (30, 1), "{said}");
    server.abort();
}
