//! Counters and the failure state of the audit writer, for readiness, tests and benchmarks.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::StoreError;

/// Counters for observing the writer (tests and benchmarks).
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Entries committed.
    pub entries: AtomicU64,
    /// Of the transactions, those committed by the common batch's short path: in place on
    /// SQLite (ADR 0005), in one statement on PostgreSQL (ADR 0022).
    pub common_path: AtomicU64,
    /// How long the writer took over each batch (committed or failed), from taking its
    /// jobs to answering them: a count for each bound of [`AuditStats::BATCH_TIME_BOUNDS`]
    /// (at most that many microseconds, above the bound before), and a last count for the
    /// longer ones. Every reader in a batch waits this long, so its tail is the read's tail
    /// (ADR 0005).
    pub batch_time: [AtomicU64; AuditStats::BATCH_TIME_BOUNDS.len() + 1],
    /// The longest of them, in microseconds.
    pub batch_time_max: AtomicU64,
    /// Set while the writer cannot commit (its last batch or probe failed); cleared by the
    /// next commit. Readiness (`/readyz`) reads it.
    failure: std::sync::Mutex<Option<WriterFailure>>,
}

/// Why, and since when, the audit writer cannot commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterFailure {
    /// The first failed attempt of the run.
    pub since: time::OffsetDateTime,
    /// Failed attempts in a row (batches and probes).
    pub attempts: u64,
    /// [`StoreError::unavailable_cause`], or `error` for anything else.
    pub cause: &'static str,
}

impl AuditStats {
    /// Why the writer cannot commit now, if it cannot.
    pub fn failure(&self) -> Option<WriterFailure> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    pub(super) fn is_failing(&self) -> bool {
        self.failure.lock().map(|f| f.is_some()).unwrap_or(false)
    }

    pub(super) fn note_success(&self) {
        if let Ok(mut f) = self.failure.lock()
            && let Some(was) = f.take()
        {
            tracing::info!(
                cause = was.cause,
                attempts = was.attempts,
                "audit writer commits again"
            );
        }
    }

    pub(super) fn note_failure(&self, err: &StoreError) {
        let cause = err.unavailable_cause().unwrap_or("error");
        if let Ok(mut f) = self.failure.lock() {
            match f.as_mut() {
                Some(was) => {
                    was.attempts += 1;
                    was.cause = cause;
                }
                None => {
                    // Logged once a run, not once a batch: a full disk would flood the log.
                    tracing::error!(error = %err, cause, "audit writer cannot commit");
                    *f = Some(WriterFailure {
                        since: time::OffsetDateTime::now_utc(),
                        attempts: 1,
                        cause,
                    });
                }
            }
        }
    }

    /// The upper bounds of [`AuditStats::batch_time`]'s counts, in microseconds.
    pub const BATCH_TIME_BOUNDS: [u64; 6] = [250, 500, 1_000, 2_000, 5_000, 10_000];

    /// Counts one batch that took `took`.
    pub(super) fn count_batch(&self, took: std::time::Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = Self::BATCH_TIME_BOUNDS
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(Self::BATCH_TIME_BOUNDS.len());
        self.batch_time[bucket].fetch_add(1, Ordering::Relaxed);
        self.batch_time_max.fetch_max(us, Ordering::Relaxed);
    }
}
