//! `ehrshare bench`: performance workloads on a scratch database, never the configured one.
//!
//! `ehrshare bench audit` appends audit entries from C concurrent tasks for S seconds through
//! the application (validation, group commit, Merkle tree, durable commit before each caller
//! resumes) and prints entries/s and the p50/p99 wait, beside the same backend's raw
//! batched-insert rate, so that the ratio holds on a noisy machine.
//!
//! `ehrshare bench summary` reads eHR summaries as the demo doctor through the whole router in
//! process, first in a closed loop (each reader sends again as soon as it is answered: the
//! saturated rate, whose latency is the readers' count over the rate by Little's law), then
//! in an open loop at an offered rate (`--rate`, each reader on a fixed schedule, latency
//! counted from when a request was due, so that a slow answer also delays the measurement of
//! the requests queued behind it: the latency a client sees at that load), beside the same
//! router's trivial route. With `--http` the same readers go over TCP instead: the real
//! listener on a loopback port, each reader a keep-alive HTTP/1.1 connection of its own
//! (hyper's client), so that the figures include what a client's requests cost the server
//! on the way in and out (sockets, HTTP parsing), on the same two cores as the readers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use ehrshare_app::clock::SystemClock;
use ehrshare_app::delivery::{Adapters, LogAdapter};
use ehrshare_app::{App, Services, Settings};
use ehrshare_core::audit::{Actor, ActorKind, NewAuditEntry, Outcome};
use ehrshare_core::clock::Clock;
use ehrshare_store::audit::AuditStats;
use ehrshare_store::{Db, DbOptions};
use sqlx::Connection;

/// Options of `bench audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditBenchArgs {
    /// Concurrent appending tasks.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to append, in seconds.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Benchmark PostgreSQL: a server URL (any database on it); a scratch database is created
    /// there and dropped afterwards. Without it, a scratch SQLite file is used.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
}

/// `ehrshare bench alerts`.
#[derive(Debug, clap::Args)]
pub struct AlertsBenchArgs {
    /// The sizes of history to run, in decisions (one busy user, a decision every 10 ms, 5,000
    /// patients, one in seven refused).
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 1_000_000])]
    pub decisions: Vec<u64>,
}

/// Runs `bench alerts`: the alert rules (`core::alert::AlertWindow`) over each size of history;
/// prints the time and the elementary steps a decision took, and what was kept. Linear work is
/// the same per decision at both sizes.
pub fn alerts(args: &AlertsBenchArgs) -> anyhow::Result<()> {
    use ehrshare_core::alert::{AlertPolicy, AlertWindow, Seen};
    let policy = AlertPolicy::default();
    let start = time::macros::datetime!(2026-03-02 02:00 UTC);
    println!("alert rules over one busy user's history (decision every 10 ms)");
    for &n in &args.decisions {
        let mut window = AlertWindow::default();
        let mut flags = 0usize;
        let began = std::time::Instant::now();
        for i in 0..n {
            let seen = Seen {
                at: start + time::Duration::milliseconds(10 * i64::try_from(i).unwrap_or(i64::MAX)),
                account: uuid::Uuid::from_u128(1),
                recipient: Some(uuid::Uuid::from_u128(u128::from(i % 5_000))),
                denied: i % 7 == 0,
                relation: None,
            };
            flags += window.observe(seen, &policy).len();
        }
        let took = began.elapsed();
        let per = took.as_nanos() as f64 / n.max(1) as f64;
        println!(
            "  {n:>10} decisions: {:>8.1} ms, {per:>7.1} ns a decision, {:>5.2} steps a decision, {} kept, {flags} flags",
            took.as_secs_f64() * 1e3,
            window.work() as f64 / n.max(1) as f64,
            window.kept(),
        );
    }
    Ok(())
}

/// A scratch database that is removed afterwards.
struct Scratch {
    url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl Scratch {
    async fn create(postgres: Option<&str>) -> anyhow::Result<Scratch> {
        match postgres {
            None => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Ok(Scratch {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Some(server) => {
                let name = format!("ehrshare_bench_{}", uuid::Uuid::now_v7().simple());
                let mut admin = sqlx::PgConnection::connect(server)
                    .await
                    .context("cannot reach the PostgreSQL server")?;
                // `name` is a fixed prefix and hex digits.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                let url = replace_database(server, &name);
                Ok(Scratch {
                    url,
                    _dir: None,
                    postgres: Some((server.to_owned(), name)),
                })
            }
        }
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        if let Some((server, name)) = self.postgres {
            let mut admin = sqlx::PgConnection::connect(&server).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await?;
        }
        Ok(())
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &base[..path]);
    if let Some(q) = query {
        out = format!("{out}?{q}");
    }
    out
}

fn sample(clock: &dyn Clock, n: u64) -> NewAuditEntry {
    let mut e = NewAuditEntry::new(
        clock.now(),
        Actor {
            kind: ActorKind::HcpUser,
            account: Some(uuid::Uuid::from_u128(u128::from(n % 5000))),
            role: Some("doctor".to_owned()),
            hcp: Some(uuid::Uuid::from_u128(7)),
            location: Some(uuid::Uuid::from_u128(8)),
        },
        "summary.read",
        Outcome::Allowed,
    );
    e.recipient = Some(uuid::Uuid::from_u128(u128::from(n % 200_000)));
    e.domains = vec!["allergy".into(), "diagnosis".into(), "medication".into()];
    e.request_id = Some(uuid::Uuid::now_v7());
    e.consent_id = Some(uuid::Uuid::from_u128(9));
    e.episode_id = Some(uuid::Uuid::from_u128(10));
    e.client_addr = Some("127.0.0.1".into());
    e
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs `bench audit`.
pub async fn audit(args: &AuditBenchArgs) -> anyhow::Result<()> {
    let scratch = Scratch::create(args.postgres.as_deref()).await?;
    let options = DbOptions {
        max_connections: 4,
        ..DbOptions::default()
    };
    let db = Db::connect(&scratch.url, options).await?;
    db.migrate().await?;
    let backend = db.backend().name();
    let clock = Arc::new(SystemClock);
    let scratch_log = tempfile::tempdir()?;
    let services = Services {
        clock: clock.clone(),
        checkpoints: None,
        adapters: Adapters::all(Arc::new(LogAdapter::new(
            scratch_log.path().join("messages.log"),
        ))),
        seal: ehrshare_app::seal::SealKey::new(ehrshare_app::secret::random_bytes::<32>()?)?,
        receipt_key: Box::new(ehrshare_app::signer::Ed25519Signer::from_seed(
            ehrshare_app::secret::random_bytes::<32>()?,
        )),
    };
    let app = App::start(db.clone(), Settings::default(), services).await?;
    let duration = Duration::from_secs(args.seconds.max(1));
    let concurrency = args.concurrency.max(1);

    println!(
        "bench audit: backend {backend}, {concurrency} concurrent callers, {} s",
        duration.as_secs()
    );
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for t in 0..concurrency {
        let app = app.clone();
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            let mut waits = Vec::new();
            let mut n = t as u64;
            while started.elapsed() < duration {
                let entry = sample(clock.as_ref(), n);
                let sent = Instant::now();
                app.audit(entry).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                waits.push(sent.elapsed());
                n += concurrency as u64;
            }
            anyhow::Ok(waits)
        }));
    }
    let mut waits = Vec::new();
    for task in tasks {
        waits.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    waits.sort_unstable();
    let entries = waits.len() as f64;
    let stats = app.audit_log().stats();
    let batches = stats
        .batches
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1);
    let rate = entries / elapsed;
    println!(
        "audit append: {rate:.0} entries/s durable; wait p50 {:.2} ms, p99 {:.2} ms; {batches} transactions, {:.0} entries each on average",
        percentile(&waits, 50.0).as_secs_f64() * 1000.0,
        percentile(&waits, 99.0).as_secs_f64() * 1000.0,
        entries / batches as f64,
    );
    let samples: Vec<NewAuditEntry> = (0..1000)
        .map(|n| sample(clock.as_ref(), n).validated())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let raw = ehrshare_store::bench::raw_batched_insert_rate(&db, &samples, duration).await?;
    println!(
        "ceiling: raw batched insert of the same rows (same columns and indexes, {} rows per transaction, one task, no Merkle tree): {raw:.0} rows/s",
        ehrshare_store::bench::RAW_BATCH
    );
    println!("audit append / raw: {:.0} %", 100.0 * rate / raw);
    app.close().await;
    scratch.drop_database().await?;
    Ok(())
}

/// Options of `bench summary`.
#[derive(Debug, Clone, clap::Args)]
pub struct SummaryBenchArgs {
    /// Concurrent readers (connections).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to read, in seconds.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Recipients given consent, an episode and records (from the demo population).
    #[arg(long, default_value_t = 200)]
    pub recipients: usize,
    /// Records per recipient.
    #[arg(long, default_value_t = 50)]
    pub records: usize,
    /// Benchmark PostgreSQL (a server URL; a scratch database is made and dropped).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Database connections (the server's `db_max_connections`).
    #[arg(long, default_value_t = 8)]
    pub connections: u32,
    /// After the closed loop, an open loop: requests offered at this rate (a second, over all
    /// the readers), each reader on a fixed schedule, latency counted from when a request was
    /// due (0: no open loop).
    #[arg(long, value_name = "REQ_PER_S", default_value_t = 5000.0)]
    pub rate: f64,
    /// Before the runs, how long to measure the stalls the machine itself imposes on a
    /// spinning thread a core, which bound what a latency percentile can show (0: not at all).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub stall_probe: f64,
    /// Over TCP: the server's listener on a loopback port, each reader on a keep-alive
    /// HTTP/1.1 connection of its own (in the same process, on the same cores).
    #[arg(long)]
    pub http: bool,
}

/// Where a bench reader sends its requests.
#[derive(Clone)]
enum Target {
    /// Through the router in process.
    InProcess(axum::Router),
    /// To the listener at this address, over TCP.
    Tcp(std::net::SocketAddr),
}

/// One bench reader's way to the server: the router, or a connection of its own.
enum Client {
    InProcess(axum::Router),
    Tcp(hyper::client::conn::http1::SendRequest<axum::body::Body>),
}

impl Client {
    async fn connect(target: &Target) -> anyhow::Result<Client> {
        match target {
            Target::InProcess(router) => Ok(Client::InProcess(router.clone())),
            Target::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "a bench connection ended with an error");
                    }
                });
                Ok(Client::Tcp(sender))
            }
        }
    }

    /// Sends `request` and reads the whole answer; its status.
    async fn send(
        &mut self,
        request: axum::http::Request<axum::body::Body>,
    ) -> anyhow::Result<axum::http::StatusCode> {
        use tower::ServiceExt;
        let (status, body) = match self {
            Client::InProcess(router) => {
                let response = router.clone().oneshot(request).await?;
                (response.status(), response.into_body())
            }
            Client::Tcp(sender) => {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                (
                    response.status(),
                    axum::body::Body::new(response.into_body()),
                )
            }
        };
        axum::body::to_bytes(body, usize::MAX).await?;
        Ok(status)
    }
}

/// The time an otherwise idle machine takes from threads that want to run: one thread per
/// core spins reading the clock, and every gap between two readings longer than
/// [`Stalls::GAP`] is time the thread was not running. On a shared virtual machine these
/// are the neighbours' and the host's, and they bound what a latency percentile can show:
/// a request that meets a stall of 8 ms waits 8 ms more, whatever the server does
/// (ADR 0013).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stalls {
    /// The share of the probe's time lost in stalls.
    lost: f64,
    /// The longest stall.
    longest: Duration,
    /// How many stalls were longer than 1 ms.
    over_1ms: u64,
    /// How many threads spun (one a core).
    threads: usize,
}

impl Stalls {
    /// A gap between two clock readings longer than this is a stall (a reading takes tens
    /// of nanoseconds; the scheduler's tick is milliseconds).
    const GAP: Duration = Duration::from_micros(200);

    /// Spins for `duration`, reading the time with `now`.
    fn probe(duration: Duration, mut now: impl FnMut() -> std::time::Instant) -> Stalls {
        let start = now();
        let mut last = start;
        let mut lost = Duration::ZERO;
        let mut longest = Duration::ZERO;
        let mut over_1ms = 0;
        loop {
            let t = now();
            let gap = t.saturating_duration_since(last);
            last = t;
            if gap > Stalls::GAP {
                lost += gap;
                longest = longest.max(gap);
                over_1ms += u64::from(gap > Duration::from_millis(1));
            }
            if t.saturating_duration_since(start) >= duration {
                let whole = t.saturating_duration_since(start).as_secs_f64();
                return Stalls {
                    lost: if whole > 0.0 {
                        lost.as_secs_f64() / whole
                    } else {
                        0.0
                    },
                    longest,
                    over_1ms,
                    threads: 1,
                };
            }
        }
    }

    /// One probe a core at once, on threads of their own; the shares averaged, the rest
    /// the worst and the sum.
    fn of_machine(duration: Duration) -> Stalls {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let probes: Vec<Stalls> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..cores)
                .map(|_| s.spawn(|| Stalls::probe(duration, std::time::Instant::now)))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let n = probes.len().max(1) as f64;
        Stalls {
            lost: probes.iter().map(|p| p.lost).sum::<f64>() / n,
            longest: probes.iter().map(|p| p.longest).max().unwrap_or_default(),
            over_1ms: probes.iter().map(|p| p.over_1ms).sum(),
            threads: probes.len(),
        }
    }
}

/// How the readers send: each as soon as its last answer is in (a closed loop: the latency
/// of a saturated server, which by Little's law is the readers' count over the rate), or on
/// a fixed schedule at an offered rate (an open loop, as wrk2 does: the latency at that load).
#[derive(Debug, Clone, Copy)]
enum Load {
    Closed,
    Open { rate: f64 },
}

impl Load {
    /// In an open loop, when the `i`-th request overall is due, from the start, and which of
    /// `readers` sends it (in turn: one request every 1/rate, each reader every readers/rate);
    /// `None` in a closed loop.
    fn due(self, i: u64, readers: usize) -> Option<(Duration, usize)> {
        match self {
            Load::Closed => None,
            Load::Open { rate } => Some((
                Duration::from_secs_f64(i as f64 / rate),
                (i % readers as u64) as usize,
            )),
        }
    }
}

/// Hands each open-loop request to its reader when it is due, from a thread of its own:
/// tokio's timer fires on millisecond ticks, and up to a millisecond of lateness on every
/// request would be counted against the server; a thread's sleep is accurate to tens of
/// microseconds. A reader still busy with its last request finds the next one waiting, and
/// its latency is counted from when it was due all the same.
fn pace(
    load: Load,
    started: std::time::Instant,
    duration: Duration,
    readers: Vec<tokio::sync::mpsc::UnboundedSender<Duration>>,
) {
    for i in 0u64.. {
        let Some((due, reader)) = load.due(i, readers.len()) else {
            return;
        };
        if due >= duration {
            return;
        }
        if let Some(early) = (started + due).checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(early);
        }
        if readers[reader].send(due).is_err() {
            return;
        }
    }
}

/// What a run measured.
struct Run {
    /// Answers a second over the run, until the last answer.
    rate: f64,
    /// Each request's latency, sorted: from when it was sent (closed loop) or due (open loop,
    /// so that a late send counts against the server, not for it: no coordinated omission).
    waits: Vec<Duration>,
    /// The audit writer's transactions during the run, and how many of them it committed by
    /// the common batch's short path (ADR 0005, ADR 0022).
    commits: u64,
    common_path: u64,
    /// How many of those transactions took how long (`AuditStats::batch_time`), and the
    /// longest: every reader in a transaction waits for it.
    batch_times: [u64; AuditStats::BATCH_TIME_BOUNDS.len() + 1],
    batch_time_max: Duration,
    /// The whole process's CPU time over the run (user, system), where the OS tells it.
    cpu: Option<(Duration, Duration)>,
}

/// This process's CPU time so far, user and system, from `/proc/self/stat` (Linux; `None`
/// elsewhere). It counts every thread, those that ended too, in clock ticks of 10 ms
/// (`USER_HZ` is 100 on every Linux ABI), so a run of a few seconds on two cores reads it to
/// about 0.1 %. It is the instrument for a request's cost: throughput on a shared machine
/// moves with the neighbours, the CPU a request takes far less.
fn process_cpu() -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, field 2, is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let tick = |t: &str| t.parse::<u64>().ok().map(|t| Duration::from_millis(t * 10));
    Some((tick(fields.next()?)?, tick(fields.next()?)?))
}

impl Run {
    fn report(&self) -> String {
        let ms = |p: f64| percentile(&self.waits, p).as_secs_f64() * 1000.0;
        let mut line = format!(
            "{:.0} req/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.rate,
            ms(50.0),
            ms(90.0),
            ms(99.0),
            ms(99.9),
            ms(100.0)
        );
        if let Some((user, system)) = self.cpu
            && !self.waits.is_empty()
        {
            let us = |d: Duration| d.as_secs_f64() * 1e6 / self.waits.len() as f64;
            line += &format!(
                "; CPU {:.0} us a request ({:.0} user, {:.0} system)",
                us(user + system),
                us(user),
                us(system)
            );
        }
        if self.commits > 0 {
            line += &format!(
                "; audit: {} commits ({} by the common path), {:.1} requests each",
                self.commits,
                self.common_path,
                self.waits.len() as f64 / self.commits as f64
            );
            let bounds = AuditStats::BATCH_TIME_BOUNDS;
            let ms = |us: u64| us as f64 / 1000.0;
            for (i, n) in self.batch_times.iter().enumerate() {
                let lower = if i == 0 { 0 } else { bounds[i - 1] };
                line += &match bounds.get(i) {
                    Some(&upper) => format!(
                        "{} {}-{} ms {n}",
                        if i == 0 { ", taking" } else { "," },
                        ms(lower),
                        ms(upper)
                    ),
                    None => format!(", over {} ms {n}", ms(lower)),
                };
            }
            line += &format!(
                ", the longest {:.2} ms",
                self.batch_time_max.as_secs_f64() * 1000.0
            );
        }
        line
    }
}

/// What the HTTP benchmarks run against: a scratch database, the application on it with the
/// demo population, the router without rate limits, and the demo doctor logged in.
struct BenchWorld {
    scratch: Scratch,
    _log: tempfile::TempDir,
    app: App,
    /// The application's database, for what a benchmark measures of it (the audit's bytes).
    db: Db,
    backend: &'static str,
    router: axum::Router,
    login: ehrshare_app::login::LoggedIn,
}

impl BenchWorld {
    async fn start(postgres: Option<&str>, connections: u32) -> anyhow::Result<BenchWorld> {
        let scratch = Scratch::create(postgres).await?;
        let options = DbOptions {
            max_connections: connections.max(1),
            ..DbOptions::default()
        };
        let db = Db::connect(&scratch.url, options).await?;
        db.migrate().await?;
        let backend = db.backend().name();
        let log = tempfile::tempdir()?;
        let services = Services {
            clock: Arc::new(SystemClock),
            checkpoints: None,
            adapters: Adapters::all(Arc::new(LogAdapter::new(log.path().join("messages.log")))),
            seal: ehrshare_app::seal::SealKey::new(ehrshare_app::secret::random_bytes::<32>()?)?,
            receipt_key: Box::new(ehrshare_app::signer::Ed25519Signer::from_seed(
                ehrshare_app::secret::random_bytes::<32>()?,
            )),
        };
        let app = App::start(db.clone(), Settings::default(), services).await?;
        crate::demo::load(&app).await?;
        let web = ehrshare_web::WebSettings {
            rate_limit: ehrshare_web::ratelimit::RateLimit {
                per_minute: u32::MAX / 2,
                burst: u32::MAX / 2,
            },
            ..ehrshare_web::WebSettings::default()
        };
        let router = ehrshare_web::router(app.clone(), &web);
        let code = app
            .demo_totp_code("sth.doctor")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let caller = ehrshare_app::caller::Caller {
            actor: ehrshare_core::audit::Actor::system(),
            request_id: None,
            client_addr: None,
        };
        let login = app
            .log_in(
                &caller,
                ehrshare_app::login::LoginInput {
                    user_name: "sth.doctor".into(),
                    password: crate::demo::DEMO_PASSWORD.into(),
                    totp: Some(code),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(BenchWorld {
            scratch,
            _log: log,
            app,
            db,
            backend,
            router,
            login,
        })
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.app.close().await;
        self.scratch.drop_database().await
    }
}

/// Runs `bench summary`: concurrent authorised eHR-summary reads through the whole HTTP
/// stack in process (session, decision, audit entry durable before the reply, records from
/// the store), beside a trivial route of the same router.
pub async fn summary(args: &SummaryBenchArgs) -> anyhow::Result<()> {
    use tower::ServiceExt;

    let probe = Duration::try_from_secs_f64(args.stall_probe).map_err(|_| {
        anyhow::anyhow!(
            "--stall-probe must be a number of seconds, 0 or more (got {})",
            args.stall_probe
        )
    })?;
    eprintln!(
        "bench summary: loading the demo population and {} records each for {} recipients",
        args.records, args.recipients
    );
    let world = BenchWorld::start(args.postgres.as_deref(), args.connections).await?;
    let (app, backend, router, login) = (
        world.app.clone(),
        world.backend,
        world.router.clone(),
        &world.login,
    );
    let hcp = crate::demo::bench_provider(&app).await?;
    let recipients = crate::demo::bench_population(
        &app,
        hcp,
        args.recipients,
        args.records,
        ehrshare_fhir::build::bench_record,
    )
    .await?;
    let cookie = format!("__Host-ehrshare-session={}", login.token);

    let duration = Duration::from_secs(args.seconds.max(1));
    let concurrency = args.concurrency.max(1);
    // Over TCP: the server's own listener, with connections enough for every reader.
    let (target, host, listening) = if args.http {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = crate::listener::ConnLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: concurrency + 16,
            drain_timeout: Duration::from_secs(5),
        };
        let server = tokio::spawn(crate::listener::serve(
            listener,
            router.clone(),
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        (Target::Tcp(addr), addr.to_string(), Some((stop, server)))
    } else {
        (
            Target::InProcess(router.clone()),
            "localhost".to_owned(),
            None,
        )
    };
    let run = |path_of: Arc<dyn Fn(usize) -> String + Send + Sync>, load: Load| {
        let target = target.clone();
        let host = host.clone();
        let cookie = cookie.clone();
        let app = app.clone();
        async move {
            let counts = || {
                let stats = app.audit_log().stats();
                let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                (
                    load(&stats.batches),
                    load(&stats.common_path),
                    stats.batch_time.each_ref().map(load),
                )
            };
            app.audit_log()
                .stats()
                .batch_time_max
                .store(0, Ordering::Relaxed);
            // Connected before the clock starts.
            let mut clients = Vec::with_capacity(concurrency);
            for _ in 0..concurrency {
                clients.push(Client::connect(&target).await?);
            }
            let before = counts();
            let cpu_before = process_cpu();
            let started = std::time::Instant::now();
            let mut tasks = Vec::with_capacity(concurrency);
            let mut schedules = Vec::with_capacity(concurrency);
            for (t, mut client) in clients.into_iter().enumerate() {
                let (cookie, path_of, host) = (cookie.clone(), path_of.clone(), host.clone());
                let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
                schedules.push(due_tx);
                tasks.push(tokio::spawn(async move {
                    let mut waits = Vec::new();
                    let mut n = t;
                    loop {
                        // Latency from when the request was due (open) or sent (closed).
                        let from = match load {
                            Load::Closed if started.elapsed() < duration => Instant::now(),
                            Load::Closed => break,
                            Load::Open { .. } => match due_rx.recv().await {
                                Some(due) => started + due,
                                None => break,
                            },
                        };
                        let request = axum::http::Request::get(path_of(n))
                            .header("host", &host)
                            .header("cookie", &cookie)
                            .body(axum::body::Body::empty())?;
                        let status = client.send(request).await?;
                        anyhow::ensure!(status.is_success(), "answered {status}");
                        waits.push(from.elapsed());
                        n += concurrency;
                        // A request answered without waiting on anything (the trivial route)
                        // never gives its worker thread back, as a socket read would: two
                        // such readers would hold both threads, and a task the others need
                        // (one holding a pool connection, say) would starve. Seen: the
                        // session's touch every 30 s then held the pool for 10 s.
                        tokio::task::yield_now().await;
                    }
                    anyhow::Ok(waits)
                }));
            }
            let pacer = std::thread::Builder::new()
                .name("bench-pacer".into())
                .spawn(move || pace(load, started, duration, schedules))?;
            let mut waits = Vec::new();
            for task in tasks {
                waits.extend(task.await??);
            }
            pacer
                .join()
                .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
            let elapsed = started.elapsed().as_secs_f64();
            waits.sort_unstable();
            let after = counts();
            let cpu = process_cpu()
                .zip(cpu_before)
                .map(|((u1, s1), (u0, s0))| (u1.saturating_sub(u0), s1.saturating_sub(s0)));
            anyhow::Ok(Run {
                cpu,
                rate: waits.len() as f64 / elapsed,
                waits,
                commits: after.0 - before.0,
                common_path: after.1 - before.1,
                batch_times: std::array::from_fn(|i| after.2[i] - before.2[i]),
                batch_time_max: Duration::from_micros(
                    app.audit_log()
                        .stats()
                        .batch_time_max
                        .load(Ordering::Relaxed),
                ),
            })
        }
    };
    // Measured before the header is printed: `scripts/bench-instructions` starts counting
    // after the header, and the spinning must not be counted as a summary's work.
    let stalls = if probe.is_zero() {
        None
    } else {
        Some(tokio::task::spawn_blocking(move || Stalls::of_machine(probe)).await?)
    };
    println!(
        "bench summary: backend {backend}, {concurrency} concurrent readers {}, {} s, {} recipients with {} records each",
        match &target {
            Target::InProcess(_) => "in process (through the router)".to_owned(),
            Target::Tcp(addr) => format!(
                "over TCP (the listener on {addr}, a keep-alive connection a reader; CPU counts both ends)"
            ),
        },
        duration.as_secs(),
        recipients.len(),
        args.records
    );
    if let Some(stalls) = stalls {
        println!(
            "machine: {} spinning threads (one a core) lost {:.2} % of {:.1} s to stalls, the longest {:.2} ms, {} over 1 ms",
            stalls.threads,
            100.0 * stalls.lost,
            probe.as_secs_f64(),
            stalls.longest.as_secs_f64() * 1e3,
            stalls.over_1ms
        );
    }
    let ids = Arc::new(recipients);
    let summary_paths: Arc<dyn Fn(usize) -> String + Send + Sync> = {
        let ids = ids.clone();
        Arc::new(move |n| format!("/api/v1/recipients/{}/summary", ids[n % ids.len()]))
    };
    let size_before = world.db.audit_size().await?;
    let bytes_before = world.db.audit_bytes().await?;
    let closed = run(summary_paths.clone(), Load::Closed).await?;
    println!(
        "eHR summary, closed loop ({concurrency} readers, each sending as soon as answered): {}",
        closed.report()
    );
    // What the run's entries cost on disk (issue 28, item 5; ADR 0023): every entry it added
    // is a summary's, of `args.records` records.
    let added = world.db.audit_size().await?.saturating_sub(size_before);
    let bytes_after = world.db.audit_bytes().await?;
    if added > 0 {
        let parts: Vec<(String, f64)> = bytes_after
            .iter()
            .map(|(name, after)| {
                let before = bytes_before
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |(_, b)| *b);
                (
                    name.clone(),
                    after.saturating_sub(before) as f64 / added as f64,
                )
            })
            .collect();
        let total: f64 = parts.iter().map(|(_, b)| b).sum();
        let each: Vec<String> = parts
            .iter()
            .map(|(name, b)| format!("{name} {b:.1}"))
            .collect();
        println!(
            "audit on disk: {added} summary entries added, {total:.0} bytes each ({})",
            each.join(", ")
        );
    }
    if args.rate > 0.0 {
        let open = run(summary_paths, Load::Open { rate: args.rate }).await?;
        println!(
            "eHR summary, open loop ({:.0} req/s offered over {concurrency} readers, latency from when due): {}",
            args.rate,
            open.report()
        );
    }
    // FHIR read by id (issue 25): the records of the population, found through the summary
    // before the clock starts.
    let mut records = Vec::new();
    for id in ids.iter().take(100) {
        let request = axum::http::Request::get(format!("/api/v1/recipients/{id}/summary"))
            .header("cookie", &cookie)
            .body(axum::body::Body::empty())?;
        let response = router.clone().oneshot(request).await?;
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        let summary: serde_json::Value = serde_json::from_slice(&body)?;
        for domain in summary["domains"].as_array().into_iter().flatten() {
            for r in domain["records"].as_array().into_iter().flatten() {
                if let (Some(t), Some(id)) = (r["resource_type"].as_str(), r["id"].as_str()) {
                    records.push(format!("/fhir/{t}/{id}"));
                }
            }
        }
    }
    anyhow::ensure!(!records.is_empty(), "the population has no record to read");
    let records = Arc::new(records);
    let fhir_paths: Arc<dyn Fn(usize) -> String + Send + Sync> =
        Arc::new(move |n| records[n % records.len()].clone());
    let fhir = run(fhir_paths, Load::Closed).await?;
    println!(
        "FHIR read by id, closed loop ({concurrency} readers): {}",
        fhir.report()
    );
    let trivial: Arc<dyn Fn(usize) -> String + Send + Sync> =
        Arc::new(|_| "/static/site.css".to_owned());
    let trivial_run = run(trivial, Load::Closed).await?;
    println!(
        "ceiling: trivial route (a static stylesheet, same router and middleware), closed loop: {}",
        trivial_run.report()
    );
    println!(
        "summary / trivial: {:.0} %",
        100.0 * closed.rate / trivial_run.rate
    );
    println!(
        "FHIR read / trivial: {:.0} %",
        100.0 * fhir.rate / trivial_run.rate
    );
    if let Some((stop, server)) = listening {
        let _ = stop.send(());
        server.await?;
    }
    world.finish().await
}

/// `ehrshare bench deposit`.
#[derive(Debug, clap::Args)]
pub struct DepositBenchArgs {
    /// Concurrent depositors (each into its own recipient).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// How long to deposit, in seconds.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Benchmark PostgreSQL (a server URL; a scratch database is made and dropped).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Database connections (the server's `db_max_connections`).
    #[arg(long, default_value_t = 8)]
    pub connections: u32,
}

/// The entries of the transaction `bench deposit` times (issue 25: under 20 ms at p50).
const TRANSACTION_ENTRIES: usize = 50;

/// The lines of the import `bench deposit` times (issue 28, item 3; ADR 0025).
const IMPORT_LINES: usize = 1000;

/// Runs `bench deposit`: validated deposits through the whole HTTP stack in process
/// (session, CSRF, R4 validation, decision, record and audit entry committed together),
/// beside the trivial route; then the validation alone (parse, R4 definitions, our rules) on
/// the same resources, as a share of a deposit's time (issue 23: at most 20 %).
pub async fn deposit(args: &DepositBenchArgs) -> anyhow::Result<()> {
    use tower::ServiceExt;

    let concurrency = args.concurrency.max(1);
    let world = BenchWorld::start(args.postgres.as_deref(), args.connections).await?;
    let (app, backend, router, login) = (
        world.app.clone(),
        world.backend,
        world.router.clone(),
        &world.login,
    );
    let hcp = crate::demo::bench_provider(&app).await?;
    let recipients = crate::demo::bench_population(
        &app,
        hcp,
        concurrency,
        0,
        ehrshare_fhir::build::bench_record,
    )
    .await?;
    ehrshare_app::deposit::warm_validation();
    let cookie = format!("__Host-ehrshare-session={}", login.token);
    let csrf = login.csrf_token.clone();
    let duration = Duration::from_secs(args.seconds.max(1));
    // Closed loop: each worker sends `kind` again and again.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Deposit,
        /// Its ids in a space of its own (the number), so that every entry is a new record.
        Transaction(usize),
        /// `POST /fhir/$import` of new resources, in an id space of its own.
        Import(usize),
        Trivial,
    }
    let run = |kind: Kind, workers: usize| {
        let (router, cookie, csrf, recipients) = (
            router.clone(),
            cookie.clone(),
            csrf.clone(),
            recipients.clone(),
        );
        async move {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..workers {
                let (router, cookie, csrf) = (router.clone(), cookie.clone(), csrf.clone());
                let recipient = recipients[w % recipients.len()];
                tasks.push(tokio::spawn(async move {
                    let mut waits = Vec::new();
                    let mut n = 0;
                    while started.elapsed() < duration {
                        let request = match kind {
                            Kind::Deposit => axum::http::Request::post(format!(
                                "/api/v1/recipients/{recipient}/records"
                            ))
                            .header("cookie", &cookie)
                            .header("x-csrf-token", &csrf)
                            .header("content-type", "application/fhir+json")
                            .body(axum::body::Body::from(
                                ehrshare_fhir::build::deposit_example(recipient, w, n),
                            ))?,
                            Kind::Transaction(space) => axum::http::Request::post("/fhir")
                                .header("cookie", &cookie)
                                .header("x-csrf-token", &csrf)
                                .header("content-type", "application/fhir+json")
                                .header("prefer", "return=minimal")
                                .body(axum::body::Body::from(
                                    ehrshare_fhir::build::bench_transaction(
                                        recipient,
                                        space + w,
                                        n,
                                        TRANSACTION_ENTRIES,
                                    ),
                                ))?,
                            Kind::Import(space) => axum::http::Request::post("/fhir/$import")
                                .header("cookie", &cookie)
                                .header("x-csrf-token", &csrf)
                                .header("content-type", "application/fhir+ndjson")
                                .header("prefer", "return=minimal")
                                .body(axum::body::Body::from(
                                    ehrshare_fhir::build::bench_ndjson(
                                        recipient,
                                        space + w,
                                        n,
                                        IMPORT_LINES,
                                    ),
                                ))?,
                            Kind::Trivial => axum::http::Request::get("/static/site.css")
                                .header("cookie", &cookie)
                                .body(axum::body::Body::empty())?,
                        };
                        let from = Instant::now();
                        let response = router.clone().oneshot(request).await?;
                        let status = response.status();
                        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
                        anyhow::ensure!(
                            status.is_success(),
                            "answered {status}: {}",
                            String::from_utf8_lossy(&body)
                        );
                        let expected = match kind {
                            Kind::Transaction(_) => Some(TRANSACTION_ENTRIES),
                            Kind::Import(_) => Some(IMPORT_LINES),
                            Kind::Deposit | Kind::Trivial => None,
                        };
                        if let Some(expected) = expected {
                            let created = String::from_utf8_lossy(&body)
                                .matches("201 Created")
                                .count();
                            anyhow::ensure!(
                                created == expected,
                                "a transaction or an import created {created} of {expected}"
                            );
                        }
                        waits.push(from.elapsed());
                        n += 1;
                        tokio::task::yield_now().await;
                    }
                    anyhow::Ok(waits)
                }));
            }
            let mut waits = Vec::new();
            for t in tasks {
                waits.extend(t.await??);
            }
            let elapsed = started.elapsed().as_secs_f64();
            waits.sort_unstable();
            anyhow::Ok((waits.len() as f64 / elapsed, waits))
        }
    };
    println!(
        "bench deposit: backend {backend}, {concurrency} concurrent depositors, {} s",
        duration.as_secs()
    );
    let (rate, waits) = run(Kind::Deposit, concurrency).await?;
    println!(
        "validated deposits, closed loop: {rate:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        percentile(&waits, 50.0).as_secs_f64() * 1e3,
        percentile(&waits, 99.0).as_secs_f64() * 1e3
    );
    let (one_rate, one) = run(Kind::Deposit, 1).await?;
    let mean = one.iter().sum::<Duration>() / u32::try_from(one.len().max(1))?;
    println!(
        "one depositor: {one_rate:.0}/s, mean {:.3} ms a deposit",
        mean.as_secs_f64() * 1e3
    );
    let (tx_rate, tx) = run(Kind::Transaction(1_000), 1).await?;
    println!(
        "FHIR transaction of {TRANSACTION_ENTRIES} new resources, one client: p50 {:.2} ms, p99 {:.2} ms ({tx_rate:.1}/s, {:.0} resources/s)",
        percentile(&tx, 50.0).as_secs_f64() * 1e3,
        percentile(&tx, 99.0).as_secs_f64() * 1e3,
        tx_rate * TRANSACTION_ENTRIES as f64
    );
    let (txs_rate, txs) = run(Kind::Transaction(2_000), concurrency).await?;
    println!(
        "FHIR transactions, {concurrency} clients: p50 {:.2} ms, p99 {:.2} ms ({txs_rate:.1}/s, {:.0} resources/s)",
        percentile(&txs, 50.0).as_secs_f64() * 1e3,
        percentile(&txs, 99.0).as_secs_f64() * 1e3,
        txs_rate * TRANSACTION_ENTRIES as f64
    );
    let (im_rate, im) = run(Kind::Import(3_000), 1).await?;
    println!(
        "FHIR import ($import, NDJSON) of {IMPORT_LINES} new resources, one client: p50 {:.1} ms, p99 {:.1} ms ({:.0} resources/s)",
        percentile(&im, 50.0).as_secs_f64() * 1e3,
        percentile(&im, 99.0).as_secs_f64() * 1e3,
        im_rate * IMPORT_LINES as f64
    );
    let (ims_rate, ims) = run(Kind::Import(4_000), 2).await?;
    println!(
        "FHIR imports, 2 clients: p50 {:.1} ms, p99 {:.1} ms ({:.0} resources/s)",
        percentile(&ims, 50.0).as_secs_f64() * 1e3,
        percentile(&ims, 99.0).as_secs_f64() * 1e3,
        ims_rate * IMPORT_LINES as f64
    );
    let (trivial, _) = run(Kind::Trivial, concurrency).await?;
    println!(
        "ceiling: trivial route (a static stylesheet, same router and middleware): {trivial:.0}/s; deposits / trivial: {:.1} %",
        100.0 * rate / trivial
    );
    // The validation alone, on the same resources, on one thread.
    let terms = ehrshare_core::terminology::Terminology::shipped();
    let texts: Vec<String> = (0..1000)
        .map(|n| ehrshare_fhir::build::deposit_example(recipients[0], 0, n))
        .collect();
    let started = Instant::now();
    let mut rounds = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        for t in &texts {
            let v =
                ehrshare_fhir::json::parse(t.as_bytes()).map_err(|p| anyhow::anyhow!("{p:?}"))?;
            ehrshare_fhir::resource::check(&v, &terms).map_err(|p| anyhow::anyhow!("{p:?}"))?;
        }
        rounds += 1;
    }
    let per = started.elapsed() / (rounds * 1000);
    println!(
        "validation alone (parse with duplicate keys, R4 definitions, our rules): {:.3} ms a resource, {:.1} % of a deposit's mean time",
        per.as_secs_f64() * 1e3,
        100.0 * per.as_secs_f64() / mean.as_secs_f64()
    );
    world.finish().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Gaps over 0.2 ms are stalls, counted with the longest and those over 1 ms; shorter
    /// ones are the spinning itself.
    #[test]
    fn the_stall_probe_counts_the_gaps_in_its_clock() {
        let start = std::time::Instant::now();
        // Readings every 10 us, with a 5 ms and a 0.5 ms gap, for 100 ms.
        let mut t = Duration::ZERO;
        let clock = move || {
            let now = start + t;
            t += match t.as_micros() {
                20_000 => Duration::from_millis(5),
                50_000 => Duration::from_micros(500),
                _ => Duration::from_micros(10),
            };
            now
        };
        let s = Stalls::probe(Duration::from_millis(100), clock);
        assert_eq!(s.longest, Duration::from_millis(5));
        assert_eq!(s.over_1ms, 1);
        assert!((s.lost - 0.055).abs() < 0.001, "{s:?}");
        // A clock that never jumps: nothing lost.
        let mut t = Duration::ZERO;
        let s = Stalls::probe(Duration::from_millis(10), move || {
            t += Duration::from_micros(1);
            start + t
        });
        assert_eq!(
            (s.lost, s.longest, s.over_1ms, s.threads),
            (0.0, Duration::ZERO, 0, 1)
        );
    }

    #[test]
    fn an_open_loop_hands_one_request_every_one_over_the_rate_to_the_readers_in_turn() {
        let load = Load::Open { rate: 1000.0 };
        let close =
            |a: Duration, ms: u64| a.abs_diff(Duration::from_millis(ms)) < Duration::from_micros(1);
        for i in 0..12u64 {
            let (due, reader) = load.due(i, 4).unwrap();
            assert!(close(due, i), "{i}: {due:?}");
            assert_eq!(reader, (i % 4) as usize);
        }
    }

    #[test]
    fn a_closed_loop_has_no_schedule() {
        assert_eq!(Load::Closed.due(7, 64), None);
    }

    #[test]
    fn the_pacer_hands_out_every_request_due_within_the_run_and_no_more() {
        let (senders, mut receivers): (Vec<_>, Vec<_>) = (0..3)
            .map(|_| tokio::sync::mpsc::unbounded_channel::<Duration>())
            .unzip();
        let started = std::time::Instant::now();
        pace(
            Load::Open { rate: 200.0 },
            started,
            Duration::from_millis(100),
            senders,
        );
        // 20 requests due in 100 ms at 200 a second, handed out no earlier than due.
        assert!(started.elapsed() >= Duration::from_millis(95));
        let mut got: Vec<(usize, Duration)> = Vec::new();
        for (r, rx) in receivers.iter_mut().enumerate() {
            while let Ok(due) = rx.try_recv() {
                got.push((r, due));
            }
        }
        assert_eq!(got.len(), 20, "{got:?}");
        assert_eq!(got.iter().filter(|(r, _)| *r == 0).count(), 7);
        assert!(got.iter().all(|(_, due)| *due < Duration::from_millis(100)));
    }

    #[test]
    fn percentiles_of_sorted_waits() {
        let waits: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&waits, 50.0), Duration::from_millis(51));
        assert_eq!(percentile(&waits, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&waits, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn the_process_cpu_counts_the_work_of_every_thread() {
        let Some((user0, _)) = process_cpu() else {
            // Not Linux: the bench prints no CPU figure.
            return;
        };
        // Work on another thread, which then ends, until the count shows 50 ms (or 30 s
        // pass): still counted after the thread is gone.
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_secs(30)
                && process_cpu().is_some_and(|(u, _)| u < user0 + Duration::from_millis(50))
            {
                for _ in 0..100_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
        })
        .join()
        .unwrap();
        let (user1, _) = process_cpu().unwrap();
        let grew = user1.saturating_sub(user0);
        assert!(grew >= Duration::from_millis(50), "{grew:?}");
    }
}
