//! Health records (SPEC 2): each deposit's current content and its versions, and the
//! idempotency keys of deposits.

use ehrshare_core::record::RecordStatus;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{Conn, Db};
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A record as stored (its latest version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub domain: String,
    pub resource_type: String,
    pub source_hcp: Uuid,
    /// The resource's key at its source: `Type/id` (a FHIR id is unique only within its
    /// type; migration 0014). Unique with `source_hcp`.
    pub source_id: String,
    pub version: i64,
    pub status: RecordStatus,
    /// Canonical JSON text.
    pub body: String,
    pub deposited_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A client's idempotency key for a deposit, and what its first use answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositKeyRow {
    pub source_hcp: Uuid,
    pub key: String,
    /// SHA-256 (hex) of the recipient and the request's content.
    pub request_hash: String,
    pub record_id: Uuid,
    /// Whether the first answer created the record.
    pub created: bool,
    pub created_at: OffsetDateTime,
}

/// Stores a new record (and its first version) unless the provider already deposited one with
/// this source id: returns whether it was new.
pub async fn insert_record(mut conn: Conn<'_>, r: &RecordRow) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn.reborrow(), db => {
        sqlx::query(
            "INSERT INTO record (record_id, recipient_id, domain, resource_type, source_hcp, \
             source_id, version, status, body, deposited_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (source_hcp, source_id) DO NOTHING",
        )
        .bind(r.id)
        .bind(r.recipient_id)
        .bind(&r.domain)
        .bind(&r.resource_type)
        .bind(r.source_hcp)
        .bind(&r.source_id)
        .bind(r.version)
        .bind(r.status.code())
        .bind(&r.body)
        .bind(r.deposited_by)
        .bind(Ts(r.created_at))
        .bind(Ts(r.updated_at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    if n == 0 {
        return Ok(false);
    }
    let rev = next_revisions(conn.reborrow(), &[r.recipient_id]).await?;
    insert_version(conn, r, rev.get(&r.recipient_id).copied()).await?;
    Ok(true)
}

/// Raises the record revision of each of `recipients` by one (ADR 0023) and answers the new
/// values. The revision row stays locked until commit, so one recipient's revisions follow the
/// order their writes commit in, and a snapshot that saw revision `W` saw exactly the versions
/// stamped `W` or less. In recipient order, one statement for many.
async fn next_revisions(
    mut conn: Conn<'_>,
    recipients: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, i64>, StoreError> {
    let mut sorted = recipients.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut revs = std::collections::HashMap::with_capacity(sorted.len());
    for chunk in sorted.chunks(1000) {
        crate::on_conn!(conn.reborrow(), db => {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO record_rev (recipient_id, rev) ");
            q.push_values(chunk, |mut b, id| {
                b.push_bind(*id).push_bind(1_i64);
            });
            q.push(
                " ON CONFLICT (recipient_id) DO UPDATE SET rev = record_rev.rev + 1 \
                 RETURNING recipient_id, rev",
            );
            for row in q.build().persistent(chunk.len() == 1).fetch_all(&mut *db).await? {
                revs.insert(row.try_get::<Uuid, _>(0)?, row.try_get::<i64, _>(1)?);
            }
        });
    }
    Ok(revs)
}

/// Stores new records (each with its first version) in two statements whatever their number
/// (a FHIR transaction's): true if every one was new, false if any source id was taken (the
/// caller's unit of work then fails as stale and nothing is kept).
pub async fn insert_records(mut conn: Conn<'_>, rows: &[RecordRow]) -> Result<bool, StoreError> {
    // Many rows a statement on both backends. On PostgreSQL this needs sqlx 0.9.1 or later,
    // which sets `TCP_NODELAY`: before it, a statement larger than a TCP segment ended with a
    // part that waited for the server's delayed ACK (a 50-row insert of 45 KB took 100 ms;
    // PERFORMANCE.md, "FHIR transactions"), so each row was a statement of its own. Each
    // count of rows is a statement of its own shape: not kept prepared, so that they do not
    // push the hot statements out of the connection's cache.
    for chunk in rows.chunks(500) {
        let recipients: Vec<Uuid> = chunk.iter().map(|r| r.recipient_id).collect();
        let n = crate::on_conn!(conn.reborrow(), db => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO record (record_id, recipient_id, domain, resource_type, source_hcp, \
                 source_id, version, status, body, deposited_by, created_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(r.recipient_id)
                    .push_bind(r.domain.as_str())
                    .push_bind(r.resource_type.as_str())
                    .push_bind(r.source_hcp)
                    .push_bind(r.source_id.as_str())
                    .push_bind(r.version)
                    .push_bind(r.status.code())
                    .push_bind(r.body.as_str())
                    .push_bind(r.deposited_by)
                    .push_bind(Ts(r.created_at))
                    .push_bind(Ts(r.updated_at));
            });
            q.push(" ON CONFLICT (source_hcp, source_id) DO NOTHING");
            q.build().persistent(false).execute(&mut *db).await?.rows_affected()
        });
        if n != chunk.len() as u64 {
            return Ok(false);
        }
        let revs = next_revisions(conn.reborrow(), &recipients).await?;
        crate::on_conn!(conn.reborrow(), db => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO record_version (record_id, version, recipient_id, status, body, \
                 account_id, created_at, rev, domain) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.id)
                    .push_bind(r.version)
                    .push_bind(r.recipient_id)
                    .push_bind(r.status.code())
                    .push_bind(r.body.as_str())
                    .push_bind(r.deposited_by)
                    .push_bind(Ts(r.updated_at))
                    .push_bind(revs.get(&r.recipient_id).copied())
                    .push_bind(r.domain.as_str());
            });
            q.build().persistent(false).execute(&mut *db).await?;
        });
    }
    Ok(true)
}

/// Keeps an idempotency key with the write it belongs to; false if the key is taken.
pub async fn insert_deposit_key(mut conn: Conn<'_>, k: &DepositKeyRow) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn.reborrow(), db => {
        sqlx::query(
            "INSERT INTO deposit_key (source_hcp, idem_key, request_hash, record_id, created, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (source_hcp, idem_key) DO NOTHING",
        )
        .bind(k.source_hcp)
        .bind(&k.key)
        .bind(&k.request_hash)
        .bind(k.record_id)
        .bind(k.created)
        .bind(Ts(k.created_at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Replaces a record's content with a new version (amendment, entered-in-error); an
/// amendment may file it in another domain (an investigation recoded from imaging to the
/// laboratory), which every later decision reads.
pub async fn update_record(mut conn: Conn<'_>, r: &RecordRow) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn.reborrow(), db => {
        sqlx::query(
            "UPDATE record SET version = $2, status = $3, body = $4, updated_at = $5, \
             domain = $7 WHERE record_id = $1 AND version = $6",
        )
        .bind(r.id)
        .bind(r.version)
        .bind(r.status.code())
        .bind(&r.body)
        .bind(Ts(r.updated_at))
        .bind(r.version - 1)
        .bind(&r.domain)
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    if n == 0 {
        return Ok(false);
    }
    let rev = next_revisions(conn.reborrow(), &[r.recipient_id]).await?;
    insert_version(conn, r, rev.get(&r.recipient_id).copied()).await?;
    Ok(true)
}

async fn insert_version(conn: Conn<'_>, r: &RecordRow, rev: Option<i64>) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO record_version (record_id, version, recipient_id, status, body, \
             account_id, created_at, rev, domain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(r.id)
        .bind(r.version)
        .bind(r.recipient_id)
        .bind(r.status.code())
        .bind(&r.body)
        .bind(r.deposited_by)
        .bind(Ts(r.updated_at))
        .bind(rev)
        .bind(&r.domain)
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// A [`RecordRow`] from a row with [`RECORD_COLUMNS`] (either backend).
macro_rules! record_row {
    ($row:expr) => {
        record_row!($row, try_get)
    };
    ($row:expr, $get:ident) => {{
        let row = $row;
        let created_at: Ts = row.$get("created_at")?;
        let updated_at: Ts = row.$get("updated_at")?;
        let status: String = row.$get("status")?;
        RecordRow {
            id: row.$get("record_id")?,
            recipient_id: row.$get("recipient_id")?,
            domain: row.$get("domain")?,
            resource_type: row.$get("resource_type")?,
            source_hcp: row.$get("source_hcp")?,
            source_id: row.$get("source_id")?,
            version: row.$get("version")?,
            status: crate::code::decode("record.status", &status, RecordStatus::parse)?,
            body: row.$get("body")?,
            deposited_by: row.$get("deposited_by")?,
            created_at: created_at.0,
            updated_at: updated_at.0,
        }
    }};
}

const RECORD_COLUMNS: &str = "record_id, recipient_id, domain, resource_type, source_hcp, \
    source_id, version, status, body, deposited_by, created_at, updated_at";

impl Db {
    /// One record. Every read by id (a FHIR read) starts here: on SQLite it is read in place
    /// (ADR 0004).
    pub async fn record(&self, id: Uuid) -> Result<Option<RecordRow>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!("SELECT {RECORD_COLUMNS} FROM record WHERE record_id = $1")
        });
        let sql: &str = &SQL;
        if let Some(in_place) = self.in_place()
            && let Some(found) = in_place.optional_row(sql, &id, |row| Ok(record_row!(row, get)))
        {
            return found;
        }
        crate::on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(record_row!(&row)),
                None => None,
            })
        })
    }

    /// One version of a record, as a [`RecordRow`]: the record's fixed columns with that
    /// version's status, body, author and time (`updated_at`).
    pub async fn record_version(
        &self,
        id: Uuid,
        version: i64,
    ) -> Result<Option<RecordRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT r.record_id, r.recipient_id, r.domain, r.resource_type, r.source_hcp, \
                 r.source_id, v.version, v.status, v.body, v.account_id AS deposited_by, \
                 r.created_at, v.created_at AS updated_at \
                 FROM record r JOIN record_version v ON v.record_id = r.record_id \
                 WHERE r.record_id = $1 AND v.version = $2",
            )
            .bind(id)
            .bind(version)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(record_row!(&row)),
                None => None,
            })
        })
    }

    /// Every version of a record, newest first (as [`Db::record_version`]).
    pub async fn record_versions(&self, id: Uuid) -> Result<Vec<RecordRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT r.record_id, r.recipient_id, r.domain, r.resource_type, r.source_hcp, \
                 r.source_id, v.version, v.status, v.body, v.account_id AS deposited_by, \
                 r.created_at, v.created_at AS updated_at \
                 FROM record r JOIN record_version v ON v.record_id = r.record_id \
                 WHERE r.record_id = $1 ORDER BY v.version DESC",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(record_row!(row));
            }
            Ok(out)
        })
    }

    /// Every version of every record of `recipient`, without bodies: what a read's disclosure
    /// is rebuilt from (ADR 0023). Through the recipient's index on `record` and each record's
    /// versions by key.
    pub async fn record_history(
        &self,
        recipient: Uuid,
    ) -> Result<Vec<ehrshare_core::audit::VersionFact>, StoreError> {
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT v.record_id, v.version, v.rev, v.status, v.domain \
                 FROM record r JOIN record_version v ON v.record_id = r.record_id \
                 WHERE r.recipient_id = $1",
            )
            .bind(recipient)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let status: String = row.try_get("status")?;
                let version: i64 = row.try_get("version")?;
                let rev: Option<i64> = row.try_get("rev")?;
                out.push(ehrshare_core::audit::VersionFact {
                    record: row.try_get("record_id")?,
                    version: u64::try_from(version).unwrap_or(0),
                    rev: rev.and_then(|r| u64::try_from(r).ok()).unwrap_or(0),
                    // A status this build does not know is not current: the read it
                    // belongs to then fails its check, rather than the whole log failing.
                    current: RecordStatus::parse(&status) == Some(RecordStatus::Current),
                    domain: row.try_get("domain")?,
                });
            }
            Ok(out)
        })
    }

    /// A provider's idempotency key, if it was used.
    pub async fn deposit_key(
        &self,
        hcp: Uuid,
        key: &str,
    ) -> Result<Option<DepositKeyRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT source_hcp, idem_key, request_hash, record_id, created, created_at \
                 FROM deposit_key WHERE source_hcp = $1 AND idem_key = $2",
            )
            .bind(hcp)
            .bind(key)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => {
                    let created_at: Ts = row.try_get("created_at")?;
                    Some(DepositKeyRow {
                        source_hcp: row.try_get("source_hcp")?,
                        key: row.try_get("idem_key")?,
                        request_hash: row.try_get("request_hash")?,
                        record_id: row.try_get("record_id")?,
                        created: row.try_get("created")?,
                        created_at: created_at.0,
                    })
                }
                None => None,
            })
        })
    }

    /// The record a provider deposited with a source id.
    pub async fn record_by_source(
        &self,
        hcp: Uuid,
        source_id: &str,
    ) -> Result<Option<RecordRow>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!("SELECT {RECORD_COLUMNS} FROM record WHERE source_hcp = $1 AND source_id = $2")
        });
        // A key look-up (the unique index), on the path of every deposit: in place.
        if let Some(in_place) = self.in_place()
            && let Some(found) = in_place.read(|conn| {
                let mut statement = conn.prepare_cached(&SQL)?;
                let mut rows = statement
                    .query([("$1", &hcp as &dyn rusqlite::ToSql), ("$2", &source_id)].as_slice())?;
                match rows.next()? {
                    Some(row) => {
                        let names = crate::in_place::column_names(row);
                        let row = crate::in_place::Named::new(row, &names);
                        Ok(Some(record_row!(row, get)))
                    }
                    None => Ok(None),
                }
            })
        {
            return found;
        }
        crate::on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RECORD_COLUMNS} FROM record WHERE source_hcp = $1 AND source_id = $2"
            )))
            .bind(hcp)
            .bind(source_id)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(record_row!(&row)),
                None => None,
            })
        })
    }

    /// Provider `hcp`'s records among `sources` (its own ids, `Type/id`) and among `ids`
    /// (server ids): what a bulk import's lines may write into, read in a few statements
    /// rather than two a line (ADR 0025). Never another provider's.
    pub async fn records_for_writes(
        &self,
        hcp: Uuid,
        sources: &[String],
        ids: &[Uuid],
    ) -> Result<Vec<RecordRow>, StoreError> {
        // Within SQLite's bound parameters many times over.
        const AT_ONCE: usize = 500;
        let mut found = Vec::new();
        // PostgreSQL: one array a list, so that the plan is an index probe a key (a list of
        // hundreds of parameters was planned as a scan of the table: 35 ms a call).
        if let crate::Pool::Postgres(pool) = self.pool() {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RECORD_COLUMNS} FROM record WHERE source_hcp = $1 \
                 AND source_id = ANY($2) UNION ALL \
                 SELECT {RECORD_COLUMNS} FROM record WHERE source_hcp = $1 \
                 AND record_id = ANY($3)"
            )))
            .bind(hcp)
            .bind(sources)
            .bind(ids)
            .fetch_all(pool)
            .await?;
            for row in rows {
                found.push(record_row!(&row));
            }
            return Ok(found);
        }
        for chunk in sources.chunks(AT_ONCE) {
            crate::on_pool!(self, pool => {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {RECORD_COLUMNS} FROM record WHERE source_hcp = "
                ));
                q.push_bind(hcp).push(" AND source_id IN (");
                let mut list = q.separated(", ");
                for source in chunk {
                    list.push_bind(source.as_str());
                }
                q.push(")");
                for row in q.build().fetch_all(pool).await? {
                    found.push(record_row!(&row));
                }
            });
        }
        for chunk in ids.chunks(AT_ONCE) {
            crate::on_pool!(self, pool => {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {RECORD_COLUMNS} FROM record WHERE source_hcp = "
                ));
                q.push_bind(hcp).push(" AND record_id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                for row in q.build().fetch_all(pool).await? {
                    found.push(record_row!(&row));
                }
            });
        }
        Ok(found)
    }
}
