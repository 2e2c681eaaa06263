//! `/healthz` on both backends, including the database going away and coming back.

use std::time::{Duration, Instant};

use ehrshare_app::Settings;
use ehrshare_store::{Backend, Db, DbOptions};
use ehrshare_testkit::{TEST_DATABASE_URL_VAR, TcpProxy, TestApp, TestDb};
use ehrshare_web::WebSettings;

#[tokio::test]
async fn healthz_names_the_backend_and_version() {
    let t = TestApp::spawn().await;
    let r = t.get("/healthz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["backend"], t.db.backend().name());
    assert_eq!(body["backend"], TestDb::configured_backend().name());
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r.header("cache-control"), "no-store");
}

#[tokio::test]
async fn healthz_is_503_when_the_database_is_gone() {
    let t = TestApp::spawn().await;
    t.app.close().await;
    let r = t.get("/healthz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), "5");
    let body = r.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["backend"], t.db.backend().name());
}

/// PostgreSQL stops under a running server: /healthz says 503 promptly (never hangs), and says
/// 200 again once PostgreSQL is back, with no restart. The outage is made by cutting a proxy in
/// front of the shared PostgreSQL server, which a stop of that server looks like to the pool.
#[tokio::test]
async fn healthz_follows_postgres_going_down_and_coming_back() {
    if TestDb::configured_backend() != Backend::Postgres {
        eprintln!("needs PostgreSQL: runs when {TEST_DATABASE_URL_VAR} is set (as .ci/run does)");
        return;
    }
    let db = TestDb::empty().await;
    db.migrated().await.close().await;
    let target = postgres_addr(db.url());
    let proxy = TcpProxy::start(target).await;
    let proxied = db
        .url()
        .replacen(&target.to_string(), &proxy.addr().to_string(), 1);
    assert_ne!(proxied, db.url(), "the URL must go through the proxy");
    let options = DbOptions {
        acquire_timeout: Duration::from_secs(1),
        ..DbOptions::default()
    };
    let pool = Db::connect(&proxied, options).await.unwrap();
    let t = TestApp::over(db, pool, Settings::default(), WebSettings::default()).await;

    assert_eq!(t.get("/healthz").await.status, 200);
    let office = t.office().await;

    proxy.stop().await;
    let started = Instant::now();
    let r = t.get("/healthz").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["backend"], "postgres");
    // A bound on correctness (no hang), far above the 2 s health timeout, not a speed test.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );

    // A write meanwhile: 503 store-unavailable with Retry-After, never a 500 (issue 22).
    let r = t
        .send_json(
            Some(&office),
            axum::http::Request::post("/api/v1/recipients"),
            &serde_json::json!({"channel": "in-person", "name_en": "CHAN Tai Man",
                "date_of_birth": "1980-03-02", "sex": "male",
                "document": {"type": "hkid", "number": "A123456(3)"},
                "phone": "9123 4567", "language": "en", "notify_channel": "sms"}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "store-unavailable");
    assert!(!r.header("retry-after").is_empty());
    let r = t.get("/readyz").await;
    assert_eq!(r.status, 503, "{}", r.text());

    proxy.resume().await;
    let r = t.get("/healthz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "ok");
    // Writes work again without a restart, on every pooled connection; readiness returns.
    for n in 0..12u32 {
        let hkid = ehrshare_core::identity::Hkid::from_parts("P", 200_000 + n).unwrap();
        let r = t
            .send_json(
                Some(&office),
                axum::http::Request::post("/api/v1/recipients"),
                &serde_json::json!({"channel": "in-person", "name_en": "CHAN Tai Man",
                    "date_of_birth": "1980-03-02", "sex": "male",
                    "document": {"type": "hkid", "number": hkid.as_str()},
                    "phone": "9123 4567", "language": "en", "notify_channel": "sms"}),
            )
            .await;
        assert_eq!(r.status, 201, "after the outage, write {n}: {}", r.text());
    }
    let started = Instant::now();
    while t.get("/readyz").await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not ready again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn postgres_addr(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let after_scheme = url.split_once("://").unwrap().1;
    let authority = after_scheme.split(['/', '?']).next().unwrap();
    let host_port = authority.rsplit('@').next().unwrap();
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    host_port.to_socket_addrs().unwrap().next().unwrap()
}

/// PostgreSQL over TLS: `sslmode=require` in the URL encrypts the connection (the binary is
/// built with rustls). Where the server has TLS off, the same URL is refused cleanly.
#[tokio::test]
async fn postgres_connections_can_require_tls() {
    if TestDb::configured_backend() != Backend::Postgres {
        eprintln!("needs PostgreSQL: runs when {TEST_DATABASE_URL_VAR} is set (as .ci/run does)");
        return;
    }
    let db = TestDb::empty().await;
    let plain = db.connect().await;
    let server_tls: String = ehrshare_store::on_pool!(&plain, p => {
        sqlx::query_scalar("SHOW ssl").fetch_one(p).await.unwrap()
    });
    let url = if db.url().contains('?') {
        format!("{}&sslmode=require", db.url())
    } else {
        format!("{}?sslmode=require", db.url())
    };
    let tls = Db::connect(&url, DbOptions::default()).await;
    if server_tls == "on" {
        let tls = tls.unwrap();
        let encrypted: bool = ehrshare_store::on_pool!(&tls, p => {
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(p)
                .await
                .unwrap()
        });
        assert!(encrypted, "the connection is encrypted");
    } else {
        assert!(
            tls.is_err(),
            "TLS required but the server has none: refused"
        );
    }
}

/// SQLite runs as configured: WAL, the memory map, and the compile-time options of
/// `.cargo/config.toml` (ADR 0013 has what they were measured to be worth).
#[tokio::test]
async fn sqlite_runs_with_the_settings_its_figures_were_measured_with() {
    let db = ehrshare_testkit::TestDb::empty().await;
    let pool = db.connect().await;
    let ehrshare_store::Pool::Sqlite(p) = pool.pool() else {
        return; // PostgreSQL: nothing of this applies.
    };
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let mmap: i64 = sqlx::query_scalar("PRAGMA mmap_size")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(mmap, 256 << 20);
    // The WAL is folded into the file every 100 pages, not SQLite's 1,000 (docs/adr/0007).
    let checkpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(p)
        .await
        .unwrap();
    assert_eq!(checkpoint, 100);
    let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
        .fetch_all(p)
        .await
        .unwrap();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
}
