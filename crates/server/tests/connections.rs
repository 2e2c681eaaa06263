//! The listener's limits over real sockets (issue 22): clients that never finish their
//! headers are closed after the header-read timeout, connections beyond the cap are refused
//! at once, and shutdown drains without waiting on half-sent requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ehrshare::listener::{ConnLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn router() -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        )
}

async fn start(
    limits: ConnLimits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router(), limits, async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// Reads until the server closes the connection (or 10 s pass); returns what came.
async fn read_to_close(s: &mut TcpStream) -> Option<String> {
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&all).into_owned()),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_to_close(&mut s).await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_and_the_cap_refuses_the_rest_at_once() {
    let limits = ConnLimits {
        header_read_timeout: Duration::from_millis(700),
        max_connections: 50,
        drain_timeout: Duration::from_secs(5),
    };
    let (addr, stop, task) = start(limits).await;
    assert!(get(addr, "/").await.starts_with("HTTP/1.1 200"));

    // 49 clients that send part of their headers, and one that sends nothing.
    let opened = Instant::now();
    let mut slow = Vec::new();
    for i in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i > 0 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
        }
        slow.push(s);
    }
    // The cap is reached: one more is told 503 and closed at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = Instant::now();
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let said = read_to_close(&mut extra).await.expect("closed at once");
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 503"),
        "{said}"
    );
    assert!(
        refused.elapsed() < Duration::from_secs(1),
        "{:?}",
        refused.elapsed()
    );

    // Every half-sent one is closed after the timeout, none before it.
    for s in &mut slow {
        assert!(read_to_close(s).await.is_some(), "still open after 10 s");
    }
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(600),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Their slots are free again.
    assert!(get(addr, "/").await.starts_with("HTTP/1.1 200"));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight_and_waits_no_longer_than_the_drain() {
    let limits = ConnLimits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 10,
        drain_timeout: Duration::from_secs(1),
    };
    let (addr, stop, task) = start(limits).await;
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = Instant::now();
    stop.send(()).unwrap();
    let answer = slow.await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("slow"),
        "{answer}"
    );
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("shutdown waited on a half-sent request")
        .unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}
