//! `ehrshare serve` and `ehrshare migrate`: open the database, migrate, wire, listen.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use ehrshare_app::audit::{CheckpointFile, CheckpointPolicy, spawn_checkpointer};
use ehrshare_app::clock::SystemClock;
use ehrshare_app::signer::Ed25519Signer;
use ehrshare_app::{App, Settings};
use ehrshare_store::{Db, DbOptions};
use ehrshare_web::WebSettings;

use crate::config::Config;

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
        ..Settings::default()
    }
}

/// The HTTP settings a configuration implies.
pub fn web_settings(config: &Config) -> WebSettings {
    WebSettings {
        body_limit: config.body_limit_bytes,
        request_timeout: config.request_timeout(),
        cookie_secure: config.cookie_secure,
        public_base_url: config.effective_public_base_url(),
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

/// `ehrshare serve`: runs until SIGINT or SIGTERM, then finishes the requests in flight.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.listen_addr()?;
    let db = open_database(&config).await?;
    let backend = db.backend();
    let key_file = config.effective_audit_key_file();
    let signer = Ed25519Signer::load_or_create(&key_file)?;
    let checkpoints = CheckpointFile::new(config.effective_audit_checkpoint_file());
    let app = App::start(
        db,
        Arc::new(SystemClock),
        app_settings(&config),
        Some((Box::new(signer), checkpoints)),
    )
    .await
    .context("cannot start the application")?;
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
    // Operators' scripts and the README rely on this line on standard output.
    println!(
        "ehrshare listening on http://{bound} (database: {}, data folder: {})",
        backend.name(),
        config.data_dir.display()
    );
    tracing::info!(%bound, backend = backend.name(), "listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("server error")?;
    tracing::info!("shutting down");
    // The final checkpoint covers every entry written before the listener closed.
    let _ = stop_checkpoints.send(());
    if let Err(err) = checkpointer.await {
        tracing::error!(error = %err, "the checkpoint task failed");
    }
    app.close().await;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
