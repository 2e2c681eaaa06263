//! Recipients' registrations: rows in, rows out. Rules live in `ehrshare-core`.

use ehrshare_core::recipient::RecipientStatus;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::Db;
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A recipient's registration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRow {
    pub id: Uuid,
    pub status: RecipientStatus,
    pub channel: String,
    pub name_en: String,
    pub name_zh: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    pub sex: String,
    pub capacity: String,
    pub doc_type: String,
    pub doc_issuer: String,
    pub doc_number: String,
    pub phone: String,
    pub phone2: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub language: String,
    pub notify_channel: String,
    pub refuses_access_notices: bool,
    pub created_at: OffsetDateTime,
    pub activated_at: Option<OffsetDateTime>,
}

/// A substitute decision maker of a recipient, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdmRow {
    pub recipient_id: Uuid,
    pub sdm_id: Uuid,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub doc_type: String,
    pub doc_issuer: String,
    pub doc_number: String,
    pub category: String,
    pub no_higher_available: bool,
    pub relationship_proof: Option<String>,
    pub phone: String,
    pub created_at: OffsetDateTime,
    pub email: Option<String>,
    /// `sms` or `email`: how notices to the SDM reach them.
    pub notify_channel: String,
}

/// Inserts a registration, its SDM and its access-key hash inside the caller's transaction.
/// A second active registration of the same document is a [`StoreError::Conflict`].
pub async fn insert(
    conn: Conn<'_>,
    r: &RecipientRow,
    sdm: Option<&SdmRow>,
    key_hash: Option<&str>,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO recipient (recipient_id, status, channel, name_en, name_zh, \
             date_of_birth, sex, capacity, doc_type, doc_issuer, doc_number, phone, phone2, \
             email, address, language, notify_channel, refuses_access_notices, created_at, \
             activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(r.id)
        .bind(r.status.code())
        .bind(&r.channel)
        .bind(&r.name_en)
        .bind(&r.name_zh)
        .bind(&r.date_of_birth)
        .bind(&r.sex)
        .bind(&r.capacity)
        .bind(&r.doc_type)
        .bind(&r.doc_issuer)
        .bind(&r.doc_number)
        .bind(&r.phone)
        .bind(&r.phone2)
        .bind(&r.email)
        .bind(&r.address)
        .bind(&r.language)
        .bind(&r.notify_channel)
        .bind(r.refuses_access_notices)
        .bind(Ts(r.created_at))
        .bind(r.activated_at.map(Ts))
        .execute(&mut *c)
        .await?;
        if let Some(s) = sdm {
            sqlx::query(
                "INSERT INTO recipient_sdm (recipient_id, sdm_id, name_en, name_zh, doc_type, \
                 doc_issuer, doc_number, category, no_higher_available, relationship_proof, \
                 phone, created_at, email, notify_channel) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(s.recipient_id)
            .bind(s.sdm_id)
            .bind(&s.name_en)
            .bind(&s.name_zh)
            .bind(&s.doc_type)
            .bind(&s.doc_issuer)
            .bind(&s.doc_number)
            .bind(&s.category)
            .bind(s.no_higher_available)
            .bind(&s.relationship_proof)
            .bind(&s.phone)
            .bind(Ts(s.created_at))
            .bind(&s.email)
            .bind(&s.notify_channel)
            .execute(&mut *c)
            .await?;
        }
        if let Some(hash) = key_hash {
            sqlx::query(
                "INSERT INTO recipient_access_key (recipient_id, key_hash, created_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(r.id)
            .bind(hash)
            .bind(Ts(r.created_at))
            .execute(&mut *c)
            .await?;
        }
    });
    Ok(())
}

/// Replaces a recipient's access-key hash inside the caller's transaction (the old key dies at
/// the commit).
pub async fn replace_access_key(
    conn: Conn<'_>,
    recipient: Uuid,
    key_hash: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO recipient_access_key (recipient_id, key_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (recipient_id) DO UPDATE SET key_hash = excluded.key_hash, created_at = excluded.created_at",
        )
        .bind(recipient)
        .bind(key_hash)
        .bind(Ts(at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Replaces a recipient's access-key hash inside the caller's transaction, unless the current
/// key was issued after `issued_before` (another request just issued one): then
/// `Stale::KeyJustIssued`, and the whole unit of work is undone.
pub async fn replace_access_key_unless_recent(
    conn: Conn<'_>,
    recipient: Uuid,
    key_hash: &str,
    at: OffsetDateTime,
    issued_before: OffsetDateTime,
) -> Result<(), StoreError> {
    let done = crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO recipient_access_key (recipient_id, key_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (recipient_id) DO UPDATE SET key_hash = excluded.key_hash, \
             created_at = excluded.created_at WHERE recipient_access_key.created_at <= $4",
        )
        .bind(recipient)
        .bind(key_hash)
        .bind(Ts(at))
        .bind(Ts(issued_before))
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    if done == 1 {
        Ok(())
    } else {
        Err(StoreError::Stale(crate::error::Stale::KeyJustIssued))
    }
}

/// Records a recipient's notification preferences inside the caller's transaction.
pub async fn set_preferences(
    conn: Conn<'_>,
    recipient: Uuid,
    notify_channel: &str,
    language: &str,
    refuses_access_notices: bool,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "UPDATE recipient SET notify_channel = $2, language = $3, \
             refuses_access_notices = $4 WHERE recipient_id = $1",
        )
        .bind(recipient)
        .bind(notify_channel)
        .bind(language)
        .bind(refuses_access_notices)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Withdraws these registrations if they still wait for verification (one verified on the
/// spot replaces them: a registration typed online by someone else cannot hold a person's
/// document).
pub async fn withdraw_waiting(conn: Conn<'_>, ids: &[Uuid]) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        for id in ids {
            sqlx::query(
                "UPDATE recipient SET status = 'withdrawn' WHERE recipient_id = $1 \
                 AND status = 'pending-verification'",
            )
            .bind(id)
            .execute(&mut *c)
            .await?;
        }
    });
    Ok(())
}

/// Records a recipient's new mobile number or e-mail address (confirmed by a code sent to it).
pub async fn set_contact(
    conn: Conn<'_>,
    recipient: Uuid,
    phone: Option<&str>,
    email: Option<&str>,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "UPDATE recipient SET phone = COALESCE($2, phone), email = COALESCE($3, email) \
             WHERE recipient_id = $1",
        )
        .bind(recipient)
        .bind(phone)
        .bind(email)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Notes that the notices of an SDM's authority ending were sent (once per SDM).
pub async fn note_sdm_ending_notice(
    conn: Conn<'_>,
    recipient: Uuid,
    sdm: Uuid,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO sdm_ending_notice (recipient_id, sdm_id, sent_at) VALUES ($1, $2, $3)",
        )
        .bind(recipient)
        .bind(sdm)
        .bind(Ts(at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Records a registration's new status inside the caller's transaction.
pub async fn set_status(
    conn: Conn<'_>,
    recipient: Uuid,
    status: RecipientStatus,
    activated_at: Option<OffsetDateTime>,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query("UPDATE recipient SET status = $2, activated_at = $3 WHERE recipient_id = $1")
            .bind(recipient)
            .bind(status.code())
            .bind(activated_at.map(Ts))
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

/// The columns [`recipient_row!`] reads.
pub(crate) const RECIPIENT_COLUMNS: &str = "recipient_id, status, channel, name_en, name_zh, \
    date_of_birth, sex, capacity, doc_type, doc_issuer, doc_number, phone, phone2, email, \
    address, language, notify_channel, refuses_access_notices, created_at, activated_at";

/// A [`RecipientRow`] from a row with [`RECIPIENT_COLUMNS`] (either backend, or a
/// [`crate::in_place`] row with `get`).
macro_rules! recipient_row {
    ($row:expr) => {
        $crate::recipient::recipient_row!($row, try_get)
    };
    ($row:expr, $get:ident) => {{
        let row = $row;
        let created_at: $crate::timestamp::Ts = row.$get("created_at")?;
        let activated_at: Option<$crate::timestamp::Ts> = row.$get("activated_at")?;
        let status: String = row.$get("status")?;
        RecipientRow {
            id: row.$get("recipient_id")?,
            status: $crate::code::decode(
                "recipient.status",
                &status,
                ehrshare_core::recipient::RecipientStatus::parse,
            )?,
            channel: row.$get("channel")?,
            name_en: row.$get("name_en")?,
            name_zh: row.$get("name_zh")?,
            date_of_birth: row.$get("date_of_birth")?,
            sex: row.$get("sex")?,
            capacity: row.$get("capacity")?,
            doc_type: row.$get("doc_type")?,
            doc_issuer: row.$get("doc_issuer")?,
            doc_number: row.$get("doc_number")?,
            phone: row.$get("phone")?,
            phone2: row.$get("phone2")?,
            email: row.$get("email")?,
            address: row.$get("address")?,
            language: row.$get("language")?,
            notify_channel: row.$get("notify_channel")?,
            refuses_access_notices: row.$get("refuses_access_notices")?,
            created_at: created_at.0,
            activated_at: activated_at.map(|t| t.0),
        }
    }};
}
pub(crate) use recipient_row;

impl Db {
    /// A registration and its SDMs.
    pub async fn recipient(
        &self,
        id: Uuid,
    ) -> Result<Option<(RecipientRow, Vec<SdmRow>)>, StoreError> {
        crate::on_pool!(self, pool => {
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RECIPIENT_COLUMNS} FROM recipient WHERE recipient_id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            let recipient = recipient_row!(&row);
            let rows = sqlx::query(
                "SELECT recipient_id, sdm_id, name_en, name_zh, doc_type, doc_issuer, doc_number, \
                 category, no_higher_available, relationship_proof, phone, created_at, email, \
                 notify_channel FROM recipient_sdm WHERE recipient_id = $1 ORDER BY created_at, sdm_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            let mut sdms = Vec::with_capacity(rows.len());
            for row in &rows {
                sdms.push(SdmRow {
                    recipient_id: row.try_get("recipient_id")?,
                    sdm_id: row.try_get("sdm_id")?,
                    name_en: row.try_get("name_en")?,
                    name_zh: row.try_get("name_zh")?,
                    doc_type: row.try_get("doc_type")?,
                    doc_issuer: row.try_get("doc_issuer")?,
                    doc_number: row.try_get("doc_number")?,
                    category: row.try_get("category")?,
                    no_higher_available: row.try_get("no_higher_available")?,
                    relationship_proof: row.try_get("relationship_proof")?,
                    phone: row.try_get("phone")?,
                    created_at: row.try_get::<Ts, _>("created_at")?.0,
                    email: row.try_get("email")?,
                    notify_channel: row.try_get("notify_channel")?,
                });
            }
            Ok(Some((recipient, sdms)))
        })
    }

    /// When a recipient's access key was issued, if they have one.
    pub async fn access_key_issued_at(
        &self,
        recipient: Uuid,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        crate::on_pool!(self, pool => {
            let at: Option<Ts> = sqlx::query_scalar(
                "SELECT created_at FROM recipient_access_key WHERE recipient_id = $1",
            )
            .bind(recipient)
            .fetch_optional(pool)
            .await?;
            Ok(at.map(|t| t.0))
        })
    }

    /// The stored hash of a recipient's access key.
    pub async fn access_key_hash(&self, recipient: Uuid) -> Result<Option<String>, StoreError> {
        crate::on_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT key_hash FROM recipient_access_key WHERE recipient_id = $1")
                .bind(recipient)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// How many registrations hold this document (any status).
    pub async fn recipients_with_document(
        &self,
        doc_type: &str,
        issuer: &str,
        number: &str,
    ) -> Result<i64, StoreError> {
        crate::on_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM recipient WHERE doc_type = $1 AND doc_issuer = $2 AND doc_number = $3",
            )
            .bind(doc_type)
            .bind(issuer)
            .bind(number)
            .fetch_one(pool)
            .await?)
        })
    }
}

impl Db {
    /// The registrations of a document waiting for verification.
    pub async fn waiting_of_document(
        &self,
        doc_type: &str,
        issuer: &str,
        number: &str,
    ) -> Result<Vec<Uuid>, StoreError> {
        crate::on_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT recipient_id FROM recipient WHERE doc_type = $1 AND doc_issuer = $2 \
                 AND doc_number = $3 AND status = 'pending-verification'",
            )
            .bind(doc_type)
            .bind(issuer)
            .bind(number)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Whether any SDM of a recipient was told already that their authority ends (the
    /// recipient was then told to take over).
    pub async fn sdm_ending_told(&self, recipient: Uuid) -> Result<bool, StoreError> {
        crate::on_pool!(self, pool => {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sdm_ending_notice WHERE recipient_id = $1",
            )
            .bind(recipient)
            .fetch_one(pool)
            .await?;
            Ok(n > 0)
        })
    }

    /// Active recipients with an SDM of `categories` not yet told that the SDM's authority
    /// ends, born in `(born_after, born_by]` (`YYYY-MM-DD`): (recipient, SDM id).
    pub async fn sdm_endings_untold(
        &self,
        categories: &[&str],
        born_after: &str,
        born_by: &str,
    ) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let sql = format!(
            "SELECT s.recipient_id, s.sdm_id FROM recipient_sdm s \
             JOIN recipient r ON r.recipient_id = s.recipient_id \
             WHERE r.status = 'active' AND r.date_of_birth > $1 AND r.date_of_birth <= $2 \
             AND s.category IN ({}) AND NOT EXISTS (SELECT 1 FROM sdm_ending_notice n \
             WHERE n.recipient_id = s.recipient_id AND n.sdm_id = s.sdm_id) \
             ORDER BY r.date_of_birth LIMIT 1000",
            crate::db::placeholders(3, categories.len())
        );
        crate::on_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(born_after).bind(born_by);
            for c in categories {
                q = q.bind(*c);
            }
            let rows = q.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push((row.try_get("recipient_id")?, row.try_get("sdm_id")?));
            }
            Ok(out)
        })
    }

    /// The first `n` active recipients, oldest first.
    pub async fn active_recipients(&self, n: usize) -> Result<Vec<Uuid>, StoreError> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        crate::on_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT recipient_id FROM recipient WHERE status = 'active' \
                 ORDER BY created_at, recipient_id LIMIT $1",
            )
            .bind(n)
            .fetch_all(pool)
            .await?)
        })
    }

    /// A recipient found by identity document, any status.
    pub async fn recipient_by_document(
        &self,
        doc_type: &str,
        issuer: &str,
        number: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        crate::on_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT recipient_id FROM recipient WHERE doc_type = $1 AND doc_issuer = $2 \
                 AND doc_number = $3 ORDER BY CASE WHEN status = 'withdrawn' THEN 1 ELSE 0 END, \
                 created_at DESC LIMIT 1",
            )
            .bind(doc_type)
            .bind(issuer)
            .bind(number)
            .fetch_optional(pool)
            .await?)
        })
    }
}
