//! Several `ehrshare serve` processes over one PostgreSQL database, as a load balancer's
//! round-robin sends them requests (issue 28, item 6; ADR 0024): a session opened on one is
//! good on the other and ended on both; a security code is used once across both; failed
//! logins count together towards the lockout; the audit log stays gap-free and verifies; every
//! message is delivered once; one process leads (scans alerts, signs checkpoints) and the other
//! takes over when it is killed. On SQLite one process serves a file: a second is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use ehrshare_store::Backend;
use ehrshare_testkit::TestDb;
use support::{
    DEMO_PASSWORD, Server, demo_code, health, log_in, patient, request, request_with, try_log_in,
    verify,
};

/// Checkpoints every second, so that a takeover shows within the test; three failed logins
/// lock an account.
const ENV: &[(&str, &str)] = &[
    ("EHRSHARE_AUDIT_CHECKPOINT_EVERY_SECS", "1"),
    ("EHRSHARE_LOGIN_LOCK_AFTER", "3"),
    ("EHRSHARE_RATE_LIMIT_PER_MINUTE", "1000000"),
    ("EHRSHARE_RATE_LIMIT_BURST", "1000000"),
];

/// Waits until `ok` holds, for at most `within`.
fn eventually(within: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sizes of the checkpoint file's heads, in order.
fn checkpoint_sizes(data: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(data.join("audit").join("checkpoints.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["size"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_over_one_database_behave_as_one_server() {
    let db = TestDb::empty().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let url = db.url().to_owned();
    let a = Server::start(dir, &url, ENV, &["--demo"]);
    if TestDb::configured_backend() == Backend::Sqlite {
        // One process serves a SQLite file: a second is refused (exit 3, not restarted in a
        // loop), and the first serves on.
        let status = Server::try_start(dir, &url, ENV, &[])
            .err()
            .expect("a second server on the same SQLite file is refused");
        assert_eq!(status.code(), Some(3));
        assert!(health(&a.addr)["leader"].as_bool().unwrap());
        assert!(a.terminate().0.success());
        return;
    }
    let b = Server::start(dir, &url, ENV, &[]);
    let both = [a.addr.clone(), b.addr.clone()];

    // One leader, the first to start.
    eventually(Duration::from_secs(10), "one leader", || {
        let leaders: Vec<bool> = both
            .iter()
            .map(|addr| health(addr)["leader"].as_bool().unwrap())
            .collect();
        leaders == [true, false]
    });

    // A session opened on one process is good on the other.
    let session = log_in(dir, &url, &both[0], "sth.doctor");
    let recipient = patient(&both[1], &session);

    // A security code is used once, whichever process it is sent to.
    let code = demo_code(dir, &url, "tsc.doctor");
    let (first, body, _) = try_log_in(&both[0], "tsc.doctor", DEMO_PASSWORD, &code);
    assert_eq!(first, 201, "{body}");
    let (again, _, _) = try_log_in(&both[1], "tsc.doctor", DEMO_PASSWORD, &code);
    assert_eq!(again, 401, "a security code replayed on the other process");

    // Failed logins on both processes at once count together: six released together, half to
    // each, lock the account (three would), and the right password and code are then refused.
    let gate = std::sync::Arc::new(std::sync::Barrier::new(6));
    let wrong: Vec<_> = (0..6)
        .map(|i| {
            let (addr, gate) = (both[i % 2].clone(), std::sync::Arc::clone(&gate));
            std::thread::spawn(move || {
                gate.wait();
                try_log_in(&addr, "hvc.doctor", "not the password", "000000").0
            })
        })
        .collect();
    for w in wrong {
        let status = w.join().unwrap();
        assert!(status == 401 || status == 429, "a wrong password: {status}");
    }
    let code = demo_code(dir, &url, "hvc.doctor");
    let (status, body, _) = try_log_in(&both[1], "hvc.doctor", DEMO_PASSWORD, &code);
    assert_eq!(
        status, 401,
        "failures across two processes lock the account: {body}"
    );

    // Reads through both at once: the audit log stays gap-free (it verifies), and the access
    // notices they send are each delivered once.
    let readers: Vec<_> = (0..8)
        .map(|i| {
            let (addr, session, path) = (
                both[i % 2].clone(),
                session.clone(),
                format!("/api/v1/recipients/{recipient}/summary"),
            );
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let (status, _, body) =
                        request(&addr, "GET", &path, Some(&session), None).unwrap();
                    assert_eq!(status, 200, "{body}");
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    let messages = dir.join("outbox").join("messages.log");
    eventually(Duration::from_secs(15), "messages delivered", || {
        std::fs::read_to_string(&messages).is_ok_and(|m| !m.is_empty())
    });
    std::thread::sleep(Duration::from_secs(3));
    let log = std::fs::read_to_string(&messages).unwrap();
    let mut ids: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    let delivered = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), delivered, "a message delivered twice:\n{log}");

    // The leader alone signs: the heads only grow.
    eventually(Duration::from_secs(10), "a checkpoint", || {
        checkpoint_sizes(dir).len() >= 2
    });
    let before = checkpoint_sizes(dir);
    assert!(before.windows(2).all(|w| w[0] < w[1]), "{before:?}");

    // The leader falls silent (stopped, its sockets open): the database ends its session
    // after the lease, the other process takes over and signs what is written after.
    let summary = format!("/api/v1/recipients/{recipient}/summary");
    let read_on = |addr: &str| {
        for _ in 0..5 {
            let (status, _, body) = request(addr, "GET", &summary, Some(&session), None).unwrap();
            assert_eq!(status, 200, "{body}");
        }
    };
    let signal = |server: &Server, sig: &str| {
        let pid = server.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal(&a, "-STOP");
    eventually(
        Duration::from_secs(30),
        "the other process takes over",
        || health(&both[1])["leader"].as_bool().unwrap(),
    );
    read_on(&both[1]);
    let last_before = *before.last().unwrap();
    eventually(
        Duration::from_secs(10),
        "a checkpoint by the new leader",
        || {
            checkpoint_sizes(dir)
                .last()
                .is_some_and(|s| *s >= last_before + 5)
        },
    );
    // Woken, the old leader finds it leads no more; whatever it was about to sign, the heads
    // in the shared file still only grow.
    signal(&a, "-CONT");
    eventually(
        Duration::from_secs(10),
        "the old leader stands down",
        || !health(&both[0])["leader"].as_bool().unwrap(),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(health(&both[1])["leader"].as_bool().unwrap());

    // The leader is killed: the first takes over again.
    b.kill();
    eventually(
        Duration::from_secs(20),
        "the first process takes over",
        || health(&both[0])["leader"].as_bool().unwrap(),
    );
    read_on(&both[0]);
    let signed = *checkpoint_sizes(dir).last().unwrap();
    eventually(
        Duration::from_secs(10),
        "a checkpoint after the kill",
        || {
            checkpoint_sizes(dir)
                .last()
                .is_some_and(|s| *s >= signed + 5)
        },
    );
    let heads = checkpoint_sizes(dir);
    assert!(heads.windows(2).all(|w| w[0] < w[1]), "{heads:?}");

    // A session ended on one process is ended on the other; the killed process came back as
    // a follower.
    let b = Server::start(dir, &url, ENV, &[]);
    let (status, _, _) =
        request(&b.addr, "DELETE", "/api/v1/session", Some(&session), None).unwrap();
    assert!((200..300).contains(&status), "logout: {status}");
    let (status, _, _) = request(&both[0], "GET", &summary, Some(&session), None).unwrap();
    assert_eq!(
        status, 401,
        "a session ended on one process is ended on the other"
    );
    assert!(!health(&b.addr)["leader"].as_bool().unwrap());
    assert!(health(&both[0])["leader"].as_bool().unwrap());
    assert!(b.terminate().0.success());
    assert!(a.terminate().0.success());
    verify(dir, &url);
}

/// The request rate limit holds across processes: a burst of 20 a client spends through two
/// processes is 20 in all, not 20 on each (ADR 0024). On SQLite one process serves, and its
/// limiter is its own (`ratelimit::tests`).
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_holds_across_processes() {
    if TestDb::configured_backend() == Backend::Sqlite {
        return;
    }
    let db = TestDb::empty().await;
    let data = tempfile::tempdir().unwrap();
    let (dir, url) = (data.path(), db.url().to_owned());
    // A burst of 20, then one a minute: what the test's few seconds refill is at most one.
    let env = &[
        ("EHRSHARE_RATE_LIMIT_PER_MINUTE", "1"),
        ("EHRSHARE_RATE_LIMIT_BURST", "20"),
    ];
    let a = Server::start(dir, &url, env, &[]);
    let b = Server::start(dir, &url, env, &[]);
    // Each process has heard the other's heartbeat.
    std::thread::sleep(Duration::from_secs(2));
    let mut admitted = 0;
    let mut refused = 0;
    for i in 0..60 {
        let addr = if i % 2 == 0 { &a.addr } else { &b.addr };
        let (status, headers, body) =
            request(addr, "GET", "/api/v1/directory?q=x", None, None).unwrap();
        match status {
            429 => {
                refused += 1;
                assert!(
                    headers.to_ascii_lowercase().contains("retry-after:"),
                    "{headers}"
                );
            }
            s if s < 400 => admitted += 1,
            other => panic!("{other}: {body}"),
        }
    }
    assert!(
        (20..=21).contains(&admitted),
        "a burst of 20 across two processes: {admitted} admitted, {refused} refused"
    );
    assert!(a.terminate().0.success());
    assert!(b.terminate().0.success());
}

/// Behind a load balancer the operator names as a trusted proxy, the client is the address it
/// forwarded for: the rate limit counts each client apart, and a client's own
/// `X-Forwarded-For` entries are not believed. Without it, the header is ignored.
#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_proxy_names_the_client() {
    let db = TestDb::empty().await;
    let data = tempfile::tempdir().unwrap();
    let (dir, url) = (data.path(), db.url().to_owned());
    let limits = [
        ("EHRSHARE_RATE_LIMIT_PER_MINUTE", "1"),
        ("EHRSHARE_RATE_LIMIT_BURST", "3"),
    ];
    let get = |addr: &str, xff: &str| {
        request_with(
            addr,
            "GET",
            "/api/v1/directory?q=x",
            &[("X-Forwarded-For", xff)],
            None,
            None,
        )
        .unwrap()
        .0
    };
    let mut env = limits.to_vec();
    env.push(("EHRSHARE_TRUSTED_PROXIES", "127.0.0.1, ::1"));
    let proxied = Server::start(dir, &url, &env, &[]);
    for _ in 0..3 {
        assert_eq!(get(&proxied.addr, "203.0.113.1"), 200);
    }
    assert_eq!(
        get(&proxied.addr, "203.0.113.1"),
        429,
        "the client's burst is spent"
    );
    assert_eq!(
        get(&proxied.addr, "203.0.113.2"),
        200,
        "another client is not"
    );
    // What the client wrote itself (left of what the proxy added) is not believed.
    assert_eq!(get(&proxied.addr, "203.0.113.2, 203.0.113.1"), 429);
    assert!(proxied.terminate().0.success());

    let direct = Server::start(dir, &url, &limits, &[]);
    let statuses: Vec<u16> = (1..=4)
        .map(|i| get(&direct.addr, &format!("203.0.113.{i}")))
        .collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 429],
        "no trusted proxy: the header is ignored"
    );
    assert!(direct.terminate().0.success());
}

/// A client's first requests, sent at once, are all admitted under a generous limit: the
/// process reserves from the shared bucket once for them, rather than each request racing to
/// reserve and the later ones finding the bucket emptied by the first. Each round is a new
/// client (a trusted proxy names it), so a new bucket.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_first_requests_is_admitted_within_the_limit() {
    let db = TestDb::empty().await;
    let data = tempfile::tempdir().unwrap();
    let env = &[
        ("EHRSHARE_RATE_LIMIT_PER_MINUTE", "60000"),
        ("EHRSHARE_RATE_LIMIT_BURST", "1000"),
        ("EHRSHARE_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let server = Server::start(data.path(), db.url(), env, &[]);
    for round in 0..30 {
        let gate = std::sync::Arc::new(std::sync::Barrier::new(16));
        let senders: Vec<_> = (0..16)
            .map(|_| {
                let (addr, gate) = (server.addr.clone(), std::sync::Arc::clone(&gate));
                std::thread::spawn(move || {
                    let client = format!("198.51.100.{round}");
                    gate.wait();
                    request_with(
                        &addr,
                        "GET",
                        "/nothing-here",
                        &[("X-Forwarded-For", &client)],
                        None,
                        None,
                    )
                    .unwrap()
                    .0
                })
            })
            .collect();
        let statuses: Vec<u16> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        // Admitted: answered (404, no such page), not refused (429).
        assert!(
            statuses.iter().all(|s| *s == 404),
            "round {round}: {statuses:?}"
        );
    }
    assert!(server.terminate().0.success());
}
