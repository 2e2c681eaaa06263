//! The notification outbox's storage: enqueue inside a caller's transaction, claim due
//! messages with a lease (so that several workers or processes never send one twice at once),
//! and record each attempt's outcome.

use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::Db;
use crate::error::StoreError;
use crate::retry::{RetryPolicy, with_retry};
use crate::timestamp::Ts;

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    /// The healthcare recipient it concerns, if any.
    pub recipient: Option<Uuid>,
    /// Where to: a phone number, an e-mail address.
    pub address: String,
    /// `sms`, `email`, `post` or `app`.
    pub channel: String,
    /// The template's id.
    pub template: String,
    /// The template's parameters (a JSON object).
    pub params: Value,
    /// `en` or `zh-HK`.
    pub locale: String,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub message: NewMessage,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub finished_at: Option<OffsetDateTime>,
}

/// Inserts messages inside the caller's transaction. An `app` message is delivered there and
/// then: it goes to the recipient's inbox (`inbox`), not to the queue.
pub async fn enqueue(mut conn: Conn<'_>, messages: &[NewMessage]) -> Result<(), StoreError> {
    for m in messages.iter().filter(|m| m.channel == "app") {
        let recipient_id = m
            .recipient
            .ok_or_else(|| StoreError::Corrupt("an inbox message needs its recipient".into()))?;
        let message = crate::inbox::InboxMessage {
            id: m.id,
            recipient_id,
            created_at: m.created_at,
            template: m.template.clone(),
            params: m.params.clone(),
            locale: m.locale.clone(),
            read_at: None,
        };
        crate::inbox::insert(conn.reborrow(), &message).await?;
    }
    crate::on_conn!(conn, c => {
        for m in messages.iter().filter(|m| m.channel != "app") {
            sqlx::query(
                "INSERT INTO outbox_message (id, created_at, recipient, address, channel, \
                 template, params, locale, status, attempts, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $2)",
            )
            .bind(m.id)
            .bind(Ts(m.created_at))
            .bind(m.recipient)
            .bind(&m.address)
            .bind(&m.channel)
            .bind(&m.template)
            .bind(Json(&m.params))
            .bind(&m.locale)
            .execute(&mut *c)
            .await?;
        }
    });
    Ok(())
}

const COLUMNS: &str = "id, created_at, recipient, address, channel, template, params, locale, \
    status, attempts, next_attempt_at, last_error, finished_at";

fn decode<R>(row: &R) -> Result<StoredMessage, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<Uuid>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> OffsetDateTime: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<OffsetDateTime>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Json<Value>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let Json(params): Json<Value> = row.try_get("params")?;
    Ok(StoredMessage {
        message: NewMessage {
            id: row.try_get("id")?,
            created_at: row.try_get("created_at")?,
            recipient: row.try_get("recipient")?,
            address: row.try_get("address")?,
            channel: row.try_get("channel")?,
            template: row.try_get("template")?,
            params,
            locale: row.try_get("locale")?,
        },
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl Db {
    /// Claims up to `limit` pending SMS and e-mail messages due at `now` (letters wait in the
    /// print queue for the office), leasing them until `lease_until`
    /// and counting the attempt. A message whose lease expired (its worker died) is due again.
    pub async fn outbox_claim_due(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        // The lease condition is repeated outside the subquery so that, on PostgreSQL, a
        // second claimer that waited for the first's row locks re-checks it and skips.
        let sql = format!(
            "UPDATE outbox_message SET lease_until = $2, attempts = attempts + 1 \
             WHERE status = 'pending' AND (lease_until IS NULL OR lease_until <= $1) \
             AND id IN (SELECT id FROM outbox_message WHERE status = 'pending' \
               AND channel IN ('sms', 'email') AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
               ORDER BY next_attempt_at LIMIT $3) \
             RETURNING {COLUMNS}"
        );
        with_retry(RetryPolicy::default(), || async {
            crate::on_pool!(self, pool => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(Ts(now))
                    .bind(Ts(lease_until))
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(decode).collect()
            })
        })
        .await
    }

    /// Records a delivery; the parameters are erased.
    pub async fn outbox_delivered(&self, id: Uuid, at: OffsetDateTime) -> Result<(), StoreError> {
        with_retry(RetryPolicy::default(), || async {
            crate::on_pool!(self, pool => {
                sqlx::query(
                    "UPDATE outbox_message SET status = 'delivered', finished_at = $2, \
                     lease_until = NULL, last_error = NULL, params = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(Ts(at))
                .bind(Json(serde_json::json!({})))
                .execute(pool)
                .await?;
            });
            Ok(())
        })
        .await
    }

    /// Records a failed attempt to be retried at `next_attempt_at`.
    pub async fn outbox_retry(
        &self,
        id: Uuid,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        with_retry(RetryPolicy::default(), || async {
            crate::on_pool!(self, pool => {
                sqlx::query(
                    "UPDATE outbox_message SET next_attempt_at = $2, lease_until = NULL, \
                     last_error = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(Ts(next_attempt_at))
                .bind(error)
                .execute(pool)
                .await?;
            });
            Ok(())
        })
        .await
    }

    /// Records that a message will not be delivered; the parameters are erased.
    pub async fn outbox_failed(
        &self,
        id: Uuid,
        at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        with_retry(RetryPolicy::default(), || async {
            crate::on_pool!(self, pool => {
                sqlx::query(
                    "UPDATE outbox_message SET status = 'failed', finished_at = $2, \
                     lease_until = NULL, last_error = $3, params = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(Ts(at))
                .bind(error)
                .bind(Json(serde_json::json!({})))
                .execute(pool)
                .await?;
            });
            Ok(())
        })
        .await
    }

    /// One message.
    pub async fn outbox_message(&self, id: Uuid) -> Result<Option<StoredMessage>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM outbox_message WHERE id = $1");
        crate::on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Messages to an address (a phone number or e-mail address), newest first.
    pub async fn outbox_to(&self, address: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox_message WHERE address = $1 ORDER BY created_at DESC, id DESC"
        );
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(address)
                .fetch_all(pool)
                .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Messages concerning a recipient, newest first.
    pub async fn outbox_for_recipient(
        &self,
        recipient: Uuid,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox_message WHERE recipient = $1 ORDER BY created_at DESC, id DESC"
        );
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(recipient)
                .fetch_all(pool)
                .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// The office's print queue: letters (`post` messages) not yet printed, oldest first,
    /// `limit` of them created after `after` (an id; ids are UUIDv7, in creation order).
    pub async fn print_queue(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox_message WHERE channel = 'post' AND status = 'pending' \
             AND id > $1 ORDER BY id LIMIT $2"
        );
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(after.unwrap_or(Uuid::nil()))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(decode).collect()
        })
    }
}

/// Records that the office printed a letter, inside the caller's (audited) transaction; its
/// parameters are erased, as for a message delivered by the worker.
pub async fn mark_printed(conn: Conn<'_>, id: Uuid, at: OffsetDateTime) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "UPDATE outbox_message SET status = 'delivered', finished_at = $2, attempts = attempts + 1, \
             params = $3 WHERE id = $1 AND channel = 'post' AND status = 'pending'",
        )
        .bind(id)
        .bind(Ts(at))
        .bind(Json(serde_json::json!({})))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}
