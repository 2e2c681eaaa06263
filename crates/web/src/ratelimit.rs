//! A per-client-address request limit (token bucket), on by default, so that no one address can
//! flood the public directory or hammer the API. The per-account attempt limits of logins and
//! access keys live in the database (accounts issue).
//!
//! One process keeps its buckets in memory. Several processes over one PostgreSQL database
//! share them (ADR 0024): the bucket of an address is kept in the database, refilled by its
//! clock, and a process reserves a part of it (what it holds divided by the processes alive,
//! at least one token) to admit on its own; when its reservation is spent it reserves again,
//! and refuses when the bucket is empty. What the processes admit together never exceeds the
//! bucket; a process may refuse while another still holds an unused part. The database is
//! asked once per reservation: rarely while an address is far from its limit, per request
//! near it. If it cannot be asked, the process's own bucket decides (a request is not refused
//! for the limiter's outage).
//!
//! `/healthz`, `/readyz` and `/static/` are exempt (load balancers, stylesheets). Requests without a known
//! peer address (in-process tests) are not limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ehrshare_app::App;

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

impl RateLimit {
    fn per_second(self) -> f64 {
        f64::from(self.per_minute.max(1)) / 60.0
    }

    fn capacity(self) -> f64 {
        f64::from(self.burst.max(1))
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
    shared: Option<Shared>,
}

/// How often a process says it is alive and forgets unused reservations (ADR 0024).
pub const ROUND_EVERY: Duration = Duration::from_millis(500);

/// A process not heard from for this long no longer counts among those sharing a bucket.
const ALIVE_WITHIN: Duration = Duration::from_secs(5);

/// Reservations unused this long are dropped (the bucket has refilled meanwhile).
const SHARE_IDLE: Duration = Duration::from_secs(60);

/// The shared mode: this process's reservations of the database's buckets.
#[derive(Debug)]
struct Shared {
    app: App,
    /// This process, among those counted alive.
    process: uuid::Uuid,
    /// The processes alive, at the last heartbeat (at least 1).
    processes: AtomicU32,
    /// Whether the database answered the last time it was asked.
    reachable: AtomicBool,
    shares: Mutex<HashMap<IpAddr, Share>>,
    /// One reservation at a time per stripe of addresses: requests of one address that find
    /// its reservation spent wait for the first of them to reserve, and then take from what
    /// it reserved, instead of each asking (the later ones would find the bucket emptied by
    /// the first and be refused).
    turns: Vec<tokio::sync::Mutex<()>>,
}

/// How many stripes of addresses reserve independently.
const TURNS: usize = 64;

/// The tokens this process reserved for an address, and spent of them.
#[derive(Debug, Clone, Copy)]
struct Share {
    reserved: f64,
    spent: f64,
    last: Instant,
    /// The bucket was empty: refused here, without asking, until then (a flood costs the
    /// database one statement per wait, not one per request).
    refused_until: Option<Instant>,
}

/// The longest a reservation may take before this process's own bucket decides.
const RESERVE_TIMEOUT: Duration = Duration::from_millis(250);

/// The address a bucket is kept for: an IPv6 client by its /64 (one subscriber's network,
/// which it may roam within at will), an IPv4 one by its address.
fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Addresses remembered before idle ones are swept out.
const SWEEP_ABOVE: usize = 100_000;

impl RateLimiter {
    /// A limiter with `limit`, its buckets in this process's memory.
    pub fn new(limit: RateLimit) -> Arc<RateLimiter> {
        Arc::new(RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
            shared: None,
        })
    }

    /// A limiter with `limit` for `app`: shared with the other processes over the same
    /// database when the app says it shares limits (PostgreSQL), with its rounds run on the
    /// current runtime; in memory otherwise.
    pub fn for_app(limit: RateLimit, app: &App) -> Arc<RateLimiter> {
        let runtime = tokio::runtime::Handle::try_current();
        let (true, Ok(runtime)) = (app.shares_limits(), runtime) else {
            return RateLimiter::new(limit);
        };
        let limiter = Arc::new(RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
            shared: Some(Shared {
                app: app.clone(),
                process: uuid::Uuid::new_v4(),
                processes: AtomicU32::new(1),
                reachable: AtomicBool::new(true),
                shares: Mutex::new(HashMap::new()),
                turns: (0..TURNS).map(|_| tokio::sync::Mutex::new(())).collect(),
            }),
        });
        runtime.spawn(rounds(Arc::downgrade(&limiter)));
        limiter
    }

    /// Takes one token for `ip` at `now` from this process's bucket; `Err(wait)` when none is
    /// left.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let ip = bucket_of(ip);
        let rate = self.limit.per_second();
        let capacity = self.limit.capacity();
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

    /// Takes one token for `ip`: from this process's reservation of the shared bucket, or a
    /// new reservation when it is spent ([`RateLimiter::check`] when not shared, or when the
    /// database does not answer); `Err(wait)` when none is left.
    pub async fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(shared) = &self.shared else {
            return self.check(ip, now);
        };
        if !shared.reachable.load(Ordering::Acquire) {
            return self.check(ip, now);
        }
        let key = bucket_of(ip);
        // From this process's reservation, if it has one left.
        let local = |now: Instant| -> Option<Result<(), Duration>> {
            let Ok(mut shares) = shared.shares.lock() else {
                return Some(Ok(()));
            };
            if shares.len() > SWEEP_ABOVE {
                shares.retain(|_, s| now.duration_since(s.last) < SHARE_IDLE);
            }
            let share = shares.get_mut(&key)?;
            share.last = now;
            if let Some(until) = share.refused_until.filter(|u| *u > now) {
                return Some(Err(until - now));
            }
            if share.spent + 1.0 <= share.reserved {
                share.spent += 1.0;
                return Some(Ok(()));
            }
            None
        };
        if let Some(decided) = local(now) {
            return decided;
        }
        let stripe = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            key.hash(&mut h);
            usize::try_from(h.finish() % TURNS as u64).unwrap_or(0)
        };
        let _turn = shared.turns[stripe].lock().await;
        // Another request of this address may have reserved while this one waited.
        if let Some(decided) = local(Instant::now()) {
            return decided;
        }
        let rate = self.limit.per_second();
        let processes = shared.processes.load(Ordering::Acquire);
        let answer = tokio::time::timeout(
            RESERVE_TIMEOUT,
            shared
                .app
                .reserve_tokens(&key.to_string(), self.limit.capacity(), rate, processes),
        )
        .await;
        let (granted, left) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                if shared.reachable.swap(false, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "rate limit: the shared buckets cannot be read; this process's own decide");
                }
                return self.check(ip, now);
            }
            // Slow, not down: this request is decided here, the next asks again.
            Err(_) => return self.check(ip, now),
        };
        let Ok(mut shares) = shared.shares.lock() else {
            return Ok(());
        };
        let share = shares.entry(key).or_insert(Share {
            reserved: 0.0,
            spent: 0.0,
            last: now,
            refused_until: None,
        });
        share.reserved += granted;
        share.last = now;
        if share.spent + 1.0 <= share.reserved {
            share.spent += 1.0;
            share.refused_until = None;
            Ok(())
        } else {
            let wait = Duration::from_secs_f64(((1.0 - left) / rate).max(0.001));
            share.refused_until = Some(now + wait);
            Err(wait)
        }
    }
}

/// The shared mode's rounds, every [`ROUND_EVERY`] while the limiter lives: the heartbeat that
/// counts the processes, the database's tidying once a minute, unused reservations dropped.
async fn rounds(limiter: Weak<RateLimiter>) {
    let mut round: u64 = 0;
    loop {
        tokio::time::sleep(ROUND_EVERY).await;
        let Some(limiter) = limiter.upgrade() else {
            return;
        };
        let Some(shared) = &limiter.shared else {
            return;
        };
        round += 1;
        let result = async {
            let processes = shared.app.heartbeat(shared.process, ALIVE_WITHIN).await?;
            shared.processes.store(processes.max(1), Ordering::Release);
            if round.is_multiple_of(120) {
                shared.app.tidy_shared_limits().await?;
            }
            Ok::<(), ehrshare_app::AppError>(())
        }
        .await;
        match result {
            Err(e) => {
                if shared.reachable.swap(false, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "rate limit: the shared buckets cannot be read; this process's own decide");
                }
            }
            Ok(()) => {
                if !shared.reachable.swap(true, Ordering::AcqRel) {
                    tracing::info!("rate limit: shared with the other processes again");
                }
            }
        }
        let now = Instant::now();
        if let Ok(mut shares) = shared.shares.lock() {
            shares.retain(|_, s| now.duration_since(s.last) < SHARE_IDLE);
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
        .get::<crate::client::ClientAddr>()
        .map(|c| c.0);
    if let (false, Some(ip)) = (exempt, peer)
        && let Err(wait) = limiter.admit(ip, Instant::now()).await
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
    fn an_ipv6_network_shares_one_bucket() {
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 60,
            burst: 2,
        });
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let t0 = Instant::now();
        assert!(limiter.check(ip("2001:db8::1"), t0).is_ok());
        assert!(limiter.check(ip("2001:db8::ffff:1"), t0).is_ok());
        assert!(
            limiter.check(ip("2001:db8::2"), t0).is_err(),
            "the same /64"
        );
        assert!(
            limiter.check(ip("2001:db8:0:1::1"), t0).is_ok(),
            "another /64"
        );
        assert!(limiter.check(ip("::ffff:203.0.113.1"), t0).is_ok());
        assert!(
            limiter.check(ip("203.0.113.1"), t0).is_ok(),
            "IPv4-mapped is IPv4"
        );
        assert!(limiter.check(ip("203.0.113.1"), t0).is_err());
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
