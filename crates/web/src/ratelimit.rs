//! A per-client-address request limit (token bucket), on by default, so that no one address can
//! flood the public directory or hammer the API. It is a first line inside each process; the
//! per-account attempt limits of logins and access keys live in the database (accounts issue).
//!
//! `/healthz`, `/readyz` and `/static/` are exempt (load balancers, stylesheets). Requests without a known
//! peer address (in-process tests) are not limited.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Requests per minute per address, and the burst allowed on top of the steady rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_minute: 600,
            burst: 100,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets of every address seen recently.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// Addresses remembered before idle ones are swept out.
const SWEEP_ABOVE: usize = 100_000;

impl RateLimiter {
    /// A limiter with `limit`.
    pub fn new(limit: RateLimit) -> Arc<RateLimiter> {
        Arc::new(RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token for `ip` at `now`; `Err(wait)` when none is left.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(self.limit.per_minute.max(1)) / 60.0;
        let capacity = f64::from(self.limit.burst.max(1));
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > SWEEP_ABOVE {
            buckets.retain(|_, b| now.duration_since(b.last) < Duration::from_secs(600));
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// The Retry-After for a wait: whole seconds rounded up (a client that waits exactly that long
/// must find a token), at least one.
fn retry_after_secs(wait: Duration) -> u32 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

/// Middleware: 429 `rate-limited` with Retry-After over the limit.
pub async fn limit(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let exempt = path == "/healthz" || path == "/readyz" || path.starts_with("/static/");
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let (false, Some(ip)) = (exempt, peer)
        && let Err(wait) = limiter.check(ip, Instant::now())
    {
        tracing::warn!(%ip, "rate limited");
        let mut problem = crate::error::Problem::from_status(StatusCode::TOO_MANY_REQUESTS);
        problem.retry_after_secs = Some(retry_after_secs(wait));
        return crate::error::problem_response(problem).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 60,
            burst: 3,
        });
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(a, t0).is_ok());
        }
        let wait = limiter.check(a, t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(
            limiter.check(b, t0).is_ok(),
            "another address is not affected"
        );
        assert!(
            limiter.check(a, t0 + Duration::from_millis(1001)).is_ok(),
            "one token a second"
        );
        assert!(limiter.check(a, t0 + Duration::from_millis(1002)).is_err());
    }

    #[test]
    fn waiting_exactly_retry_after_finds_a_token() {
        // 40 a minute: a token every 1.5 s, so the wait has a fraction to round.
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 40,
            burst: 1,
        });
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(limiter.check(a, t0).is_ok());
        let wait = limiter.check(a, t0).unwrap_err();
        let secs = retry_after_secs(wait);
        assert_eq!(secs, 2, "{wait:?}");
        assert!(
            limiter
                .check(a, t0 + Duration::from_secs(u64::from(secs)))
                .is_ok()
        );
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
