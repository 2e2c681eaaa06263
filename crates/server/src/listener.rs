//! The listener: accepts client connections and serves HTTP/1.1 on them with limits that a
//! hostile client cannot get around (issue 22):
//! - a request's head (line and headers) must arrive within `header_read_timeout` of the
//!   connection opening or of its previous response, else the connection is closed (so a
//!   client that trickles headers, or sends nothing, holds a socket for seconds, not forever;
//!   this is also the keep-alive idle limit);
//! - at most `max_connections` at once: one beyond is answered 503 and closed at once, so the
//!   process never runs out of file descriptors;
//! - at shutdown it stops accepting, lets each connection finish the request in flight (idle
//!   ones close) and returns when all have closed, or after `drain_timeout` at the most.
//!
//! Why hyper directly and not `axum::serve`: axum's server sets no timer, without which hyper
//! silently drops its header-read timeout, and offers no connection cap.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt as _;

/// Limits on client connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A request's head must have arrived this long after the connection opened or after its
    /// previous response.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// At shutdown, how long requests in flight may take to finish; connections still open
    /// then are abandoned (a half-sent request is only closed by its header timeout, and a
    /// shutdown must not wait on a hostile client).
    pub drain_timeout: Duration,
}

/// What a connection beyond the cap is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
content-type: text/plain\r\ncontent-length: 12\r\n\r\nserver busy\n";

/// Serves `router` on `listener` until `shutdown` resolves, then drains (see the module doc).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut saturated = false;
    loop {
        let (stream, remote): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                ) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait for connections to close.
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            if !saturated {
                tracing::warn!(
                    max = limits.max_connections,
                    "connection limit reached: refusing connections"
                );
                saturated = true;
            }
            // Best effort, never waiting: the stream is closed when dropped here.
            let _ = stream.try_write(BUSY);
            continue;
        };
        saturated = false;
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                // What `into_make_service_with_connect_info` gave: the rate limit and the
                // audit read the client's address from here.
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(remote));
                router.clone().oneshot(request)
            },
        );
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %remote, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open at the end of the drain: abandoned");
    }
}
