//! `ehrshare connect`, the clinic's connection component, against a real listening server
//! (issue 25, item 7): 200 resources exported while the server is down wait in the durable
//! queue, arrive once the server is back, each exactly once; sent again, they change nothing.
//! The export is the CM clinic's example (`examples/cm-clinic/`), as 50 visits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod clinic;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ehrshare");

const EXAMPLE: &str = include_str!("../../../examples/cm-clinic/visit-20261201-0077.json");

/// Visit `n`: the example with its visit's ids made the visit's own (the Patient stays).
fn visit(n: usize) -> String {
    EXAMPLE.replace("20261201-0077", &format!("v{n:03}-0077"))
}

fn connect(port: u16, client: &str, key: &Path, queue: &Path, watch: &Path) -> std::process::Child {
    std::process::Command::new(BIN)
        .args(["connect", "--server", &format!("http://127.0.0.1:{port}")])
        .args([
            "--client-id",
            client,
            "--kid",
            "k1",
            "--once",
            "--max-backoff-secs",
            "1",
        ])
        .arg("--key")
        .arg(key)
        .arg("--queue")
        .arg(queue)
        .arg("--watch")
        .arg(watch)
        .env("EHRSHARE_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_resources_queued_while_the_server_is_down_arrive_exactly_once() {
    let (port, t) = clinic::server().await;
    let (_, client) = clinic::clinic_with_system(&t).await;

    let dir = tempfile::tempdir().unwrap();
    let (key, queue, watch) = (
        dir.path().join("key.pem"),
        dir.path().join("queue"),
        dir.path().join("export"),
    );
    std::fs::write(&key, clinic::KEY).unwrap();
    std::fs::create_dir_all(&watch).unwrap();
    for n in 0..50 {
        std::fs::write(watch.join(format!("visit-{n:03}.json")), visit(n)).unwrap();
    }

    // The server is down: everything waits in the queue.
    let mut first = connect(port, &client, &key, &queue, &watch);
    let until = Instant::now() + Duration::from_secs(30);
    let log = queue.join("connect.log");
    while !(files(&watch) == 0
        && files(&queue.join("pending")) == 50
        && std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("WAITING"))
    {
        assert!(
            Instant::now() < until,
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(clinic::records(&t).await.0, 0);

    // The server is back: everything arrives.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(axum::serve(listener, t.router()).into_future());
    let status =
        tokio::task::spawn_blocking(move || clinic::wait_for(&mut first, Duration::from_secs(40)))
            .await
            .unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(status.is_some_and(|s| s.success()), "{said}");
    assert_eq!(said.matches("STORED").count(), 50, "{said}");
    assert_eq!(files(&queue.join("pending")), 0);
    assert_eq!(files(&queue.join("refused")), 0, "{said}");
    // 200 visit resources, and the patient's demographics once; each stored once.
    assert_eq!(clinic::records(&t).await, (201, 1), "{said}");

    // The clinic's system exports the same visits again: nothing changes.
    for n in 0..50 {
        std::fs::write(watch.join(format!("visit-{n:03}.json")), visit(n)).unwrap();
    }
    let mut again = connect(port, &client, &key, &queue, &watch);
    let status =
        tokio::task::spawn_blocking(move || clinic::wait_for(&mut again, Duration::from_secs(20)))
            .await
            .unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(clinic::records(&t).await, (201, 1));
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(said.matches("STORED").count(), 100);
    assert!(said.contains("Condition/cmdx-v000-0077 200 OK"), "{said}");

    // An export the server refuses is kept aside, with the reason in the clinic's words.
    let mut wrong: Value = serde_json::from_str(&visit(99)).unwrap();
    wrong["entry"][2]["resource"]["subject"] = json!({"identifier": {"system": "https://ehrshare.example/fhir/NamingSystem/hkid", "value": "Z9999990"}});
    std::fs::write(watch.join("visit-099.json"), wrong.to_string()).unwrap();
    let mut refused = connect(port, &client, &key, &queue, &watch);
    let status = tokio::task::spawn_blocking(move || {
        clinic::wait_for(&mut refused, Duration::from_secs(20))
    })
    .await
    .unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(status.is_some_and(|s| s.success()), "{said}");
    assert!(said.contains("REFUSED"), "{said}");
    assert!(said.contains("subject"), "{said}");
    assert_eq!(files(&queue.join("refused")), 1);
    assert_eq!(
        clinic::records(&t).await,
        (201, 1),
        "nothing of it was stored"
    );
    server.abort();
}
