//! `ehrshare serve` and `ehrshare migrate`: open the database, migrate, wire, listen.

use std::sync::Arc;

use anyhow::Context;
use ehrshare_app::audit::spawn_checkpointer;
use ehrshare_app::checkpoint::{CheckpointFile, CheckpointPolicy};
use ehrshare_app::clock::SystemClock;
use ehrshare_app::delivery::{Adapter, Adapters, LogAdapter, SmtpAdapter, WebhookAdapter};
use ehrshare_app::outbox::spawn_outbox_worker;
use ehrshare_app::settings::OutboxSettings;
use ehrshare_app::signer::{Ed25519Signer, Signer as _};
use ehrshare_app::{App, Services, Settings};
use ehrshare_store::{Db, DbOptions};
use ehrshare_web::WebSettings;

use crate::config::{Config, EmailAdapterKind, SmsAdapterKind};

/// Opens (creating the data folder and, for SQLite, the file) and migrates the database.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    let url = config.effective_database_url();
    let options = DbOptions {
        max_connections: config.db_max_connections,
        ..DbOptions::default()
    };
    let db = Db::connect(url.expose(), options)
        .await
        .with_context(|| format!("cannot open the database {url}"))?;
    let report = db
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the database {url}"))?;
    tracing::info!(
        backend = db.backend().name(),
        applied = ?report.applied,
        already_applied = report.already_applied,
        "database ready"
    );
    Ok(db)
}

/// The application settings a configuration implies.
pub fn app_settings(config: &Config) -> Settings {
    Settings {
        regime: config.consent_regime,
        outbox: OutboxSettings {
            max_attempts: config.outbox_max_attempts,
            retry_base: std::time::Duration::from_secs(config.outbox_retry_base_secs),
            ..OutboxSettings::default()
        },
        auth: ehrshare_app::settings::AuthSettings {
            session: ehrshare_core::login::SessionPolicy {
                idle: time::Duration::minutes(i64::from(config.session_idle_minutes)),
                absolute: time::Duration::hours(i64::from(config.session_absolute_hours)),
            },
            password_max_age: time::Duration::days(i64::from(config.password_max_age_days)),
            user_throttle: ehrshare_core::login::ThrottlePolicy {
                lock_after: config.login_lock_after,
                ..ehrshare_core::login::ThrottlePolicy::USER
            },
            // Checked when the configuration was loaded.
            registration_numbers: config.registration_patterns().unwrap_or_default(),
            ..ehrshare_app::settings::AuthSettings::default()
        },
        checkpoint_every: std::time::Duration::from_secs(config.audit_checkpoint_every_secs),
        care_window: ehrshare_core::episode::CareWindow {
            before: time::Duration::days(i64::from(config.care_window_before_days)),
            after: time::Duration::days(i64::from(config.care_window_after_days)),
            idle: time::Duration::days(i64::from(config.care_episode_idle_days)),
        },
        break_glass: ehrshare_app::settings::BreakGlassSettings {
            enabled: config.break_glass_enabled,
            repeat_per_week: config.break_glass_repeat_per_week,
        },
        // Checked when the configuration was loaded.
        access_profiles: config
            .access_profiles()
            .unwrap_or_else(|_| ehrshare_core::profile::spec_default()),
        #[cfg(feature = "oidc")]
        oidc: oidc_settings(config),
        ..Settings::default()
    }
}

/// The OpenID Connect provider, when configured (checked when the configuration was loaded).
#[cfg(feature = "oidc")]
fn oidc_settings(config: &Config) -> Option<ehrshare_app::settings::OidcSettings> {
    let (Some(issuer), Some(client_id), Some(secret)) = (
        &config.oidc_issuer,
        &config.oidc_client_id,
        &config.oidc_client_secret,
    ) else {
        return None;
    };
    let client =
        ehrshare_app::outbound::Outbound::new(std::time::Duration::from_secs(10), &[]).ok()?;
    Some(ehrshare_app::settings::OidcSettings {
        issuer: issuer.clone(),
        client_id: client_id.clone(),
        client_secret: secret.expose().to_owned(),
        redirect_uri: format!(
            "{}/auth/oidc/callback",
            config.effective_public_base_url().trim_end_matches('/')
        ),
        hkid_claim: config.oidc_hkid_claim.clone(),
        client,
    })
}

/// The notification adapters a configuration names.
pub fn adapters(config: &Config) -> anyhow::Result<Adapters> {
    let timeout = std::time::Duration::from_secs(30);
    let log: Arc<dyn Adapter> = Arc::new(LogAdapter::new(config.message_log_file()));
    let email: Arc<dyn Adapter> = match config.notify_email {
        EmailAdapterKind::Log => Arc::clone(&log),
        EmailAdapterKind::Smtp => Arc::new(
            SmtpAdapter::new(
                &config.smtp_host,
                config.smtp_port,
                &config.smtp_from,
                timeout,
            )
            .map_err(anyhow::Error::msg)?,
        ),
    };
    let sms: Arc<dyn Adapter> = match (config.notify_sms, &config.sms_webhook_url) {
        (SmsAdapterKind::Webhook, Some(url)) => {
            Arc::new(WebhookAdapter::new(url, timeout).map_err(anyhow::Error::msg)?)
        }
        _ => Arc::clone(&log),
    };
    Ok(Adapters { email, sms })
}

/// The HTTP settings a configuration implies.
pub fn web_settings(config: &Config) -> WebSettings {
    WebSettings {
        body_limit: config.body_limit_bytes,
        request_timeout: config.request_timeout(),
        cookie_secure: config.cookie_secure,
        public_base_url: config.effective_public_base_url(),
        rate_limit: ehrshare_web::ratelimit::RateLimit {
            per_minute: config.rate_limit_per_minute,
            burst: config.rate_limit_burst,
        },
        // Checked when the configuration was loaded.
        trusted_proxies: ehrshare_web::client::TrustedProxies::parse(&config.trusted_proxies)
            .unwrap_or_default(),
    }
}

/// `ehrshare migrate`.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    println!(
        "ehrshare: database {} ({}) is up to date",
        config.effective_database_url(),
        db.backend().name()
    );
    db.close().await;
    Ok(())
}

/// Opens the database and starts the application as configured (audit signing key created
/// on first start).
pub async fn start_app(config: &Config) -> anyhow::Result<App> {
    start_app_with(config, false).await
}

/// The application refused to start: the database contradicts its signed audit checkpoints
/// (issue 22). `ehrshare` exits with 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartRefused(pub String);

/// [`start_app`], accepting a rollback of the audit log if told to.
pub async fn start_app_with(config: &Config, accept_rollback: bool) -> anyhow::Result<App> {
    let db = open_database(config).await?;
    let key_file = config.effective_audit_key_file();
    let signer = Ed25519Signer::load_or_create(&key_file)?;
    let checkpoints = CheckpointFile::new(config.effective_audit_checkpoint_file());
    let seal = ehrshare_app::seal::SealKey::load_or_create(&config.effective_totp_key_file())?;
    let receipt_key = Ed25519Signer::load_or_create(&config.effective_receipt_key_file())?;
    if receipt_key.public_key() == signer.public_key() {
        anyhow::bail!("the receipt key must not be the audit key (receipt_key_file)");
    }
    let services = Services {
        clock: Arc::new(SystemClock),
        checkpoints: Some((Box::new(signer), checkpoints)),
        adapters: adapters(config)?,
        seal,
        receipt_key: Box::new(receipt_key),
    };
    let settings = Settings {
        accept_rollback,
        ..app_settings(config)
    };
    match App::start(db, settings, services).await {
        Ok(app) => Ok(app),
        Err(ehrshare_app::AppError::Conflict { code, message }) if code.starts_with("audit-") => {
            Err(StartRefused(message).into())
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the application")),
    }
}

/// `ehrshare demo`: loads the demo population (once) and signs a checkpoint.
pub async fn demo(config: Config) -> anyhow::Result<()> {
    let app = start_app(&config).await?;
    let report = crate::demo::load(&app).await?;
    print_demo_report(&report);
    app.write_checkpoint()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    app.close().await;
    Ok(())
}

fn print_demo_report(report: &crate::demo::DemoReport) {
    if report.already_loaded {
        println!(
            "ehrshare: the demo population is already loaded (its logins were listed when it was)"
        );
        return;
    }
    println!(
        "ehrshare: demo population loaded: {} providers, {} recipients",
        report.providers, report.recipients
    );
    println!(
        "ehrshare: demo staff accounts (password {:?}; security code: `ehrshare demo code USER`):",
        crate::demo::DEMO_PASSWORD
    );
    for a in &report.accounts {
        println!("  {:<48} {:<32} {}", a.user, a.role, a.place);
    }
    println!(
        "ehrshare: demo patient logins (document number, password {:?}; the one-time code goes \
         to the outbox: outbox/messages.log in the data folder):",
        crate::demo::DEMO_PASSWORD
    );
    for p in &report.patients {
        println!("  {:<48} {:<32} {}", p.user, p.role, p.place);
    }
}

/// `ehrshare demo code USER`: a demo account's current security code. Exit 1 for an account
/// that is not a demo account (or does not exist).
pub async fn demo_code(config: Config, user: &str) -> anyhow::Result<bool> {
    let app = start_app(&config).await?;
    let result = app.demo_totp_code(user).await;
    app.close().await;
    match result {
        Ok(code) => {
            println!("{code}");
            Ok(true)
        }
        Err(ehrshare_app::AppError::NotFound) => {
            eprintln!("ehrshare: {user:?} is not a demo account");
            Ok(false)
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

/// `ehrshare office create-admin`: the bootstrap office system administrator.
pub async fn create_office_admin(
    config: Config,
    user_name: &str,
    name: &str,
    mobile: &str,
) -> anyhow::Result<()> {
    let app = start_app(&config).await?;
    let result = app.bootstrap_office_admin(user_name, name, mobile).await;
    app.close().await;
    let (account, password) = result.map_err(|e| match e {
        ehrshare_app::AppError::Invalid { fields, .. } => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.field.trim_start_matches('/'), f.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::anyhow!("{other}"),
    })?;
    println!(
        "ehrshare: office system administrator {} created. First password (shown once; it must \
         be changed at the first login, when the security token is enrolled): {password}",
        account.user_name
    );
    Ok(())
}

/// Options of `serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Load the demo population (with its accounts) first, once.
    #[arg(long)]
    pub demo: bool,
    /// Start although the database is behind its last signed audit checkpoint (a restored
    /// backup) or has entries its checkpoint file does not cover: the rollback is signed into
    /// the checkpoint file and named by `audit verify`. A flag only, never a setting, so that
    /// it cannot linger in a configuration.
    #[arg(long)]
    pub accept_rollback: bool,
}

/// `ehrshare serve`: runs until SIGINT or SIGTERM, then finishes the requests in flight. With
/// `demo`, the demo population (with its accounts) is loaded first, once.
pub async fn serve(config: Config, args: &ServeArgs) -> anyhow::Result<()> {
    let addr = config.listen_addr()?;
    // Before the database is opened: a refused second server migrates and signs nothing.
    let _alone = sole_server(&config)?;
    let app = start_app_with(&config, args.accept_rollback).await?;
    std::thread::spawn(ehrshare_app::deposit::warm_validation);
    let backend = app.backend();
    if args.demo {
        let report = crate::demo::load(&app).await?;
        print_demo_report(&report);
    }
    // The election first: the scanner and the checkpointer run only in the leader (ADR 0024).
    let (stop_leading, leading_stopped) = tokio::sync::oneshot::channel();
    let leader = ehrshare_app::leader::spawn_leader(app.clone(), leading_stopped).await;
    let (stop_outbox, outbox_stopped) = tokio::sync::oneshot::channel();
    let outbox_worker = spawn_outbox_worker(
        app.clone(),
        std::time::Duration::from_secs(1),
        outbox_stopped,
    );
    let (stop_alerts, alerts_stopped) = tokio::sync::oneshot::channel();
    let alert_scanner = ehrshare_app::alert::spawn_alert_scanner(
        app.clone(),
        std::time::Duration::from_secs(10),
        alerts_stopped,
    );
    let (stop_checkpoints, stopped) = tokio::sync::oneshot::channel();
    let checkpointer = spawn_checkpointer(
        app.clone(),
        CheckpointPolicy {
            every_entries: config.audit_checkpoint_every_entries,
            every: std::time::Duration::from_secs(config.audit_checkpoint_every_secs),
        },
        stopped,
    );
    let router = ehrshare_web::router(app.clone(), &web_settings(&config));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    let shutdown = shutdown_signal()?;
    // Operators' scripts and the README rely on this line on standard output.
    println!(
        "ehrshare listening on http://{bound} (database: {}, data folder: {})",
        backend.name(),
        config.data_dir.display()
    );
    if args.demo {
        println!("  directory:  http://{bound}/api/v1/directory?q=%E4%B8%AD%E9%86%AB  (中醫)");
        println!("  API:        http://{bound}/api/v1/openapi.json");
        println!(
            "  messages:   {} (access keys sent to demo patients)",
            config.message_log_file().display()
        );
    }
    tracing::info!(%bound, backend = backend.name(), "listening");
    crate::listener::serve(
        listener,
        router,
        crate::listener::ConnLimits {
            header_read_timeout: std::time::Duration::from_secs(config.header_read_timeout_secs),
            max_connections: usize::try_from(config.max_client_connections).unwrap_or(usize::MAX),
            // Requests in flight may finish; nothing waits longer than one could take.
            drain_timeout: config.request_timeout(),
        },
        shutdown,
    )
    .await;
    tracing::info!("shutting down");
    // Both stop between rounds (or pages); the checkpointer goes last, so that its final
    // checkpoint covers what they wrote.
    let _ = stop_outbox.send(());
    let _ = stop_alerts.send(());
    if let Err(err) = outbox_worker.await {
        tracing::error!(error = %err, "the outbox worker failed");
    }
    if let Err(err) = alert_scanner.await {
        tracing::error!(error = %err, "the alert scanner failed");
    }
    // The final checkpoint covers every entry written before the listener closed.
    let _ = stop_checkpoints.send(());
    if let Err(err) = checkpointer.await {
        tracing::error!(error = %err, "the checkpoint task failed");
    }
    // The lead is given up last, so that another process takes over only after the final
    // checkpoint.
    let _ = stop_leading.send(());
    if let Err(err) = leader.await {
        tracing::error!(error = %err, "the election task failed");
    }
    app.close().await;
    Ok(())
}

/// On SQLite, the lock that makes this process the file's only server, held while it runs: the
/// embedded database is one process's (its audit writer keeps the tree in memory, ADR 0005);
/// several processes share PostgreSQL (ADR 0024). A second `serve` on the same file is refused
/// with a message, not left to fail on its first write. Other commands (`demo code`,
/// `audit verify`) may still open the file beside it. None on PostgreSQL.
fn sole_server(config: &Config) -> anyhow::Result<Option<std::fs::File>> {
    let url = config.effective_database_url();
    let Some(file) = ehrshare_store::Db::sqlite_file(url.expose()) else {
        return Ok(None);
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    let mut path = file.into_os_string();
    path.push(".serve-lock");
    let path = std::path::PathBuf::from(path);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(std::fs::TryLockError::WouldBlock) => Err(anyhow::Error::new(StartRefused(format!(
            "another ehrshare process serves this SQLite database (it holds {}): one process serves a SQLite file; run several over PostgreSQL",
            path.display()
        )))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot lock {}", path.display())))
        }
    }
}

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed now, when
/// this is called, so that a signal arriving before the server is polled is not lost (nor
/// handled by the default action, which would kill the process without a final checkpoint).
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
    })
}

/// A future that resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    })
}
