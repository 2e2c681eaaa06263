//! Log output: human-readable text or JSON lines on standard error.
//!
//! Logs are for operators. The audit log is a table with its own guarantees, never a log line;
//! patient identifiers and secrets are kept out of logs (request spans carry the path only).

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global subscriber. An invalid filter falls back to `info` with a warning.
pub fn init(format: LogFormat, filter: &str) {
    let (targets, bad_filter) = match Targets::from_str(filter) {
        Ok(t) => (t, false),
        Err(_) => (Targets::new().with_default(tracing::Level::INFO), true),
    };
    let registry = tracing_subscriber::registry().with(targets);
    let result = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if result.is_ok() && bad_filter {
        tracing::warn!(filter, "invalid log_level; using info");
    }
}
