//! `ehrshare import`, a clinic's history in bulk, against a real listening server (issue 28,
//! item 3; ADR 0025): 5,000 lines with three bad ones. Its connections are cut mid-request
//! (the server may have committed what it never answered), and then the importer itself is
//! killed with SIGKILL. With `--resume`, every good line is stored exactly once, each bad one
//! is refused alone with its code, and each line's answer is in the outcome file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod clinic;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ehrshare_testkit::TcpProxy;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ehrshare");

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

/// The outcome file's answers (a line cut by the kill is none), and the last by line number.
fn outcomes(path: &Path) -> (usize, BTreeMap<u64, Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut by = BTreeMap::new();
    let mut n = 0;
    for l in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        if let Some(line) = v["line"].as_u64() {
            n += 1;
            by.insert(line, v);
        }
    }
    (n, by)
}

fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

/// Waits for an import to finish within `secs`: its exit code and what it said on standard
/// error.
async fn run(mut child: std::process::Child, stderr: &Path, secs: u64) -> (Option<i32>, String) {
    let status = tokio::task::spawn_blocking(move || {
        clinic::wait_for(&mut child, Duration::from_secs(secs))
    })
    .await
    .unwrap()
    .and_then(|s| s.code());
    (status, std::fs::read_to_string(stderr).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_lines_arrive_once_through_cut_connections_and_a_killed_importer() {
    // The importer reaches the server through a proxy the test cuts.
    let server_port = clinic::free_port();
    let proxy = TcpProxy::start(([127, 0, 0, 1], server_port).into()).await;
    let port = proxy.addr().port();
    let t = clinic::server_at(port).await;
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
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", server_port))
        .await
        .unwrap();
    let server = tokio::spawn(axum::serve(listener, t.router()).into_future());

    let mut first = import(
        port,
        &client,
        &key,
        &file,
        &stderr,
        &["--chunk-lines", "250"],
    );
    // Once the first lines are answered, every connection is cut (requests in flight among
    // them) and none is taken for a second.
    let until = Instant::now() + Duration::from_secs(60);
    while lines_in(&outcome) < 2 {
        assert!(
            Instant::now() < until,
            "{}",
            std::fs::read_to_string(&stderr).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.resume().await;
    // Once more are answered, the importer is killed.
    let answered = lines_in(&outcome);
    while lines_in(&outcome) <= answered {
        assert!(
            Instant::now() < until,
            "{}",
            std::fs::read_to_string(&stderr).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        said.contains("trying again"),
        "the cut was met mid-import: {said}"
    );
    let (before, _) = outcomes(&outcome);
    assert!(before < 5000, "killed before the end: {before} answered");

    // Without --resume or --restart, the earlier answers are not thrown away.
    let (status, said) = run(
        import(port, &client, &key, &file, &stderr, &[]),
        &stderr,
        30,
    )
    .await;
    assert_eq!(status, Some(2), "{said}");
    assert!(said.contains("--resume"), "{said}");

    let (status, said) = run(
        import(port, &client, &key, &file, &stderr, &["--resume"]),
        &stderr,
        120,
    )
    .await;
    // Three lines refused: exit 1.
    assert_eq!(status, Some(1), "{said}");
    assert!(
        !said.contains('\u{1b}'),
        "no escape codes when standard error is not a terminal: {said:?}"
    );
    assert!(
        said.contains("stored by an earlier run, not sent"),
        "{said}"
    );
    assert!(said.contains("3 refused"), "{said}");
    assert_eq!(
        std::fs::read_to_string(stderr.with_extension("stdout")).unwrap(),
        "",
        "standard output stays empty"
    );

    // An answer for every line, and each bad line refused with its own code.
    let (_, by) = outcomes(&outcome);
    assert_eq!(by.len(), 5000, "{said}");
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
        by[&4000]["said"].as_str().unwrap().contains("Condition.id"),
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
    // Every record once, at version 1, whatever the cut and the kill left half done.
    assert_eq!(clinic::records(&t).await, (4997, 1), "{said}");

    // Again with --resume: only the three refused lines are sent, and refused again.
    let (written, _) = outcomes(&outcome);
    let (status, said) = run(
        import(port, &client, &key, &file, &stderr, &["--resume"]),
        &stderr,
        60,
    )
    .await;
    assert_eq!(status, Some(1), "{said}");
    assert!(
        said.contains("4997 stored by an earlier run, not sent"),
        "{said}"
    );
    assert_eq!(
        outcomes(&outcome).0,
        written + 3,
        "three lines answered again, nothing else sent"
    );
    assert_eq!(clinic::records(&t).await, (4997, 1));

    // The three lines mended: stored, and the import now exits 0.
    let mended = text
        .replace(
            "{\"resourceType\": \"Observation\", oops",
            &ehrshare_fhir::build::deposit_example(recipient, 0, 100),
        )
        .replace("{\"colour\":\"red\",", "{")
        .replace("{\"id\":\"twice\",", "{");
    std::fs::write(&file, mended).unwrap();
    let (status, said) = run(
        import(port, &client, &key, &file, &stderr, &["--resume"]),
        &stderr,
        60,
    )
    .await;
    assert_eq!(status, Some(0), "{said}");
    assert_eq!(clinic::records(&t).await, (5000, 1), "{said}");

    // The outcome file is this server's and this client's: another's is not gone on from.
    let (status, said) = run(
        import(port, "another-client", &key, &file, &stderr, &["--resume"]),
        &stderr,
        30,
    )
    .await;
    assert_eq!(status, Some(2), "{said}");
    assert!(said.contains("another server or client"), "{said}");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_that_cannot_run_sends_nothing_and_one_without_a_server_stops_to_resume() {
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

    // No server: it gives up after its patience, exit 4, having sent nothing.
    let (status, said) = run(
        import(
            port,
            &client,
            &key,
            &file,
            &stderr,
            &["--give-up-after-secs", "2"],
        ),
        &stderr,
        60,
    )
    .await;
    assert_eq!(status, Some(4), "{said}");

    // A .json file, or an outcome file, is refused before anything is sent: exit 2.
    let bundle = dir.path().join("visit.JSON");
    std::fs::write(&bundle, "{}").unwrap();
    let (status, said) = run(
        import(port, &client, &key, &bundle, &stderr, &[]),
        &stderr,
        30,
    )
    .await;
    assert_eq!(status, Some(2), "{said}");
    assert!(said.contains("ehrshare connect"), "{said}");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(axum::serve(listener, t.router()).into_future());
    // Credentials the server refuses: exit 2 at once, nothing sent.
    let (status, said) = run(
        import(port, "no-such-client", &key, &file, &stderr, &[]),
        &stderr,
        30,
    )
    .await;
    assert_eq!(status, Some(2), "{said}");
    assert!(said.contains("no token"), "{said}");
    assert_eq!(clinic::records(&t).await, (0, 0));

    // The server is up: all thirty.
    let (status, said) = run(
        import(port, &client, &key, &file, &stderr, &["--resume"]),
        &stderr,
        60,
    )
    .await;
    assert_eq!(status, Some(0), "{said}");
    assert_eq!(clinic::records(&t).await, (30, 1), "{said}");
    server.abort();
}
