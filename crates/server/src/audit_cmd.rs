//! `ehrshare audit verify`: recompute the audit log's Merkle tree and check it against the
//! signed checkpoints. Read-only: it neither migrates nor writes the database.

use std::path::PathBuf;

use anyhow::Context;
use ehrshare_app::checkpoint::CheckpointFile;
use ehrshare_app::signer::{public_key_path, read_public_key};
use ehrshare_app::verify::verify;
use ehrshare_core::audit::checkpoint::{hex, unhex};
use ehrshare_store::{Db, DbOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;

/// Options of `audit verify`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifyArgs {
    /// The public key (64 hex digits); default: the `.pub` file beside the signing key.
    #[arg(long, value_name = "HEX")]
    pub public_key: Option<String>,
    /// The checkpoint file; default: the configured one.
    #[arg(long, value_name = "FILE")]
    pub checkpoints: Option<PathBuf>,
}

/// Runs the verification; `Ok(true)` when the log is intact.
pub async fn verify_command(config: &Config, args: &VerifyArgs) -> anyhow::Result<bool> {
    let public_key = match &args.public_key {
        Some(text) => unhex::<32>(text).context("--public-key must be 64 hex digits")?,
        None => {
            let path = public_key_path(&config.effective_audit_key_file());
            read_public_key(&path)
                .with_context(|| format!("cannot read the public key {}", path.display()))?
        }
    };
    let checkpoints = CheckpointFile::new(
        args.checkpoints
            .clone()
            .unwrap_or_else(|| config.effective_audit_checkpoint_file()),
    );
    let url = config.effective_database_url();
    let db = Db::connect(url.expose(), DbOptions::default())
        .await
        .with_context(|| format!("cannot open the database {url}"))?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("verifying {bar:40} {pos}/{len} entries ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let result = verify(&db, &checkpoints, &public_key, &mut progress).await;
    bar.finish_and_clear();
    db.close().await;
    let report =
        result.map_err(|e| anyhow::Error::new(e).context("cannot verify the audit log"))?;
    for notice in &report.notices {
        println!("note: {notice}");
    }
    match &report.finding {
        None => {
            println!(
                "audit log OK: {} entries, {} checkpoints verified, root {}",
                report.entries,
                report.checkpoints,
                hex(&report.root)
            );
            Ok(true)
        }
        Some(finding) => {
            println!("audit log FAILED: {finding}");
            if let Some(seq) = finding.first_bad_seq() {
                println!("first bad sequence number: {seq}");
            }
            Ok(false)
        }
    }
}
