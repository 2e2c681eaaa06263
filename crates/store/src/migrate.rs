//! Schema migrations, one folder per backend (`migrations/sqlite`, `migrations/postgres`).
//!
//! Each backend's list carries the same versions and names; a test checks it. The runner takes
//! the database's write lock (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock) so that
//! several servers starting at once apply each migration exactly once, runs every pending
//! migration in one transaction, and refuses to start when an applied migration's text has
//! changed since (its SHA-256 is recorded).

use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor};

use crate::db::{Backend, Db, Pool};
use crate::error::StoreError;

/// One migration as compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migrations {
    ($dir:literal: $(($version:literal, $name:literal, $file:literal)),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/", $dir, "/", $file)),
        }),*]
    };
}

static SQLITE: &[Migration] = migrations!("sqlite":
    (1, "foundation", "0001_foundation.sql"),
    (2, "audit", "0002_audit.sql"),
    (3, "outbox", "0003_outbox.sql"),
    (4, "recipients", "0004_recipients.sql"),
    (5, "providers", "0005_providers.sql"),
    (6, "hcp_staff", "0006_hcp_staff.sql"),
    (7, "hcp_documents", "0007_hcp_documents.sql"),
    (8, "accounts", "0008_accounts.sql"),
    (9, "sharing", "0009_sharing.sql"),
    (10, "account_document", "0010_account_document.sql"),
    (11, "record_order", "0011_record_order.sql"),
    (12, "record_listing", "0012_record_listing.sql"),
    (13, "token_code_and_registration_number", "0013_token_code_and_registration_number.sql"),
    (14, "record_source_type", "0014_record_source_type.sql"),
    (15, "deposit_key", "0015_deposit_key.sql"),
    (16, "client_keys", "0016_client_keys.sql"),
    (17, "care_that_ends", "0017_care_that_ends.sql"),
    (18, "break_glass", "0018_break_glass.sql"),
    (19, "disclosures", "0019_disclosures.sql"),
    (20, "sdm_channel", "0020_sdm_channel.sql"),
    (21, "inbox", "0021_inbox.sql"),
    (22, "qr_consent", "0022_qr_consent.sql"),
    (23, "self_service", "0023_self_service.sql"),
    (24, "audit_batch", "0024_audit_batch.sql"),
    (25, "shared_limits", "0025_shared_limits.sql"),
    (26, "audit_format_2", "0026_audit_format_2.sql"),
);

static POSTGRES: &[Migration] = migrations!("postgres":
    (1, "foundation", "0001_foundation.sql"),
    (2, "audit", "0002_audit.sql"),
    (3, "outbox", "0003_outbox.sql"),
    (4, "recipients", "0004_recipients.sql"),
    (5, "providers", "0005_providers.sql"),
    (6, "hcp_staff", "0006_hcp_staff.sql"),
    (7, "hcp_documents", "0007_hcp_documents.sql"),
    (8, "accounts", "0008_accounts.sql"),
    (9, "sharing", "0009_sharing.sql"),
    (10, "account_document", "0010_account_document.sql"),
    (11, "record_order", "0011_record_order.sql"),
    (12, "record_listing", "0012_record_listing.sql"),
    (13, "token_code_and_registration_number", "0013_token_code_and_registration_number.sql"),
    (14, "record_source_type", "0014_record_source_type.sql"),
    (15, "deposit_key", "0015_deposit_key.sql"),
    (16, "client_keys", "0016_client_keys.sql"),
    (17, "care_that_ends", "0017_care_that_ends.sql"),
    (18, "break_glass", "0018_break_glass.sql"),
    (19, "disclosures", "0019_disclosures.sql"),
    (20, "sdm_channel", "0020_sdm_channel.sql"),
    (21, "inbox", "0021_inbox.sql"),
    (22, "qr_consent", "0022_qr_consent.sql"),
    (23, "self_service", "0023_self_service.sql"),
    (24, "audit_batch", "0024_audit_batch.sql"),
    (25, "shared_limits", "0025_shared_limits.sql"),
    (26, "audit_format_2", "0026_audit_format_2.sql"),
);

/// The migrations this build carries for `backend`, in order.
pub fn migrations_for(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run.
    pub applied: Vec<i64>,
    /// Versions that were already applied.
    pub already_applied: usize,
}

fn checksum(sql: &str) -> String {
    let digest = Sha256::digest(sql.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// Any 64-bit number, fixed forever: the PostgreSQL advisory lock that serialises migrations.
const PG_MIGRATION_LOCK: i64 = 0x6568_7273_6861_7265; // "ehrshare"

impl Db {
    /// Applies every pending migration. Safe to run repeatedly and concurrently.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let migrations = migrations_for(self.backend());
        match self.pool() {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // BEGIN IMMEDIATE takes the write lock now, so that two processes cannot both
                // read "version 3 missing" and both apply it.
                conn.execute("BEGIN IMMEDIATE").await?;
                let result = apply_sqlite(&mut conn, migrations).await;
                match result {
                    Ok(report) => {
                        conn.execute("COMMIT").await?;
                        Ok(report)
                    }
                    Err(err) => {
                        // The transaction is abandoned either way; a failed rollback leaves
                        // nothing committed, so the first error is the one worth reporting.
                        let _ = conn.execute("ROLLBACK").await;
                        Err(err)
                    }
                }
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let mut tx = conn.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_MIGRATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let report = apply_postgres(&mut tx, migrations).await?;
                tx.commit().await?;
                Ok(report)
            }
        }
    }
}

/// Generates the body of a migration run for one concrete connection type. Written once,
/// compiled per backend (generic sqlx executors cannot be reborrowed across several queries).
macro_rules! define_apply {
    ($fn_name:ident, $conn:ty) => {
        async fn $fn_name(
            conn: &mut $conn,
            migrations: &[Migration],
        ) -> Result<MigrationReport, StoreError> {
            sqlx::query(CREATE_TABLE).execute(&mut *conn).await?;
            let rows: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
            )
            .fetch_all(&mut *conn)
            .await?;
            for (version, name, recorded) in &rows {
                let Some(known) = migrations.iter().find(|m| m.version == *version) else {
                    return Err(StoreError::Migration {
                        version: *version,
                        name: name.clone(),
                        problem: "applied to this database but unknown to this build \
                                  (is the binary older than the database?)"
                            .to_owned(),
                    });
                };
                if checksum(known.sql) != *recorded {
                    return Err(StoreError::Migration {
                        version: *version,
                        name: name.clone(),
                        problem:
                            "its text changed after it was applied; write a new migration instead"
                                .to_owned(),
                    });
                }
            }
            let mut applied = Vec::new();
            for migration in migrations {
                if rows.iter().any(|(v, _, _)| *v == migration.version) {
                    continue;
                }
                sqlx::raw_sql(migration.sql)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| StoreError::Migration {
                        version: migration.version,
                        name: migration.name.to_owned(),
                        problem: e.to_string(),
                    })?;
                let now = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| StoreError::Migration {
                        version: migration.version,
                        name: migration.name.to_owned(),
                        problem: e.to_string(),
                    })?;
                sqlx::query(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(migration.version)
                .bind(migration.name)
                .bind(checksum(migration.sql))
                .bind(now)
                .execute(&mut *conn)
                .await?;
                tracing::info!(
                    version = migration.version,
                    name = migration.name,
                    "migration applied"
                );
                applied.push(migration.version);
            }
            Ok(MigrationReport {
                already_applied: rows.len(),
                applied,
            })
        }
    };
}

define_apply!(apply_sqlite, sqlx::SqliteConnection);
define_apply!(apply_postgres, sqlx::PgConnection);

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    }

    fn listed(migrations: &[Migration]) -> Vec<String> {
        migrations
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect()
    }

    #[test]
    fn every_migration_file_is_listed_once_in_order() {
        assert_eq!(listed(SQLITE), files_in("sqlite"));
        assert_eq!(listed(POSTGRES), files_in("postgres"));
        for list in [SQLITE, POSTGRES] {
            for pair in list.windows(2) {
                assert!(pair[0].version < pair[1].version);
            }
        }
    }

    #[test]
    fn both_backends_carry_the_same_migrations() {
        let names = |l: &[Migration]| l.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(names(SQLITE), names(POSTGRES));
    }
}
