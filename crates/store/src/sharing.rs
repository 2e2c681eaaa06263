//! The sharing core's rows: consents, care episodes, records and versions, restrictions and
//! unlocks, alerts, access-notice days. Rows in, rows out; the rules live in
//! `ehrshare-core::access` and friends.

use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use ehrshare_core::domain::Domain;

use crate::audit::Conn;
use crate::db::Db;
use crate::error::StoreError;
use crate::packed::{self, Col};
use crate::recipient::{RECIPIENT_COLUMNS, RecipientRow, SdmRow, recipient_row};
use crate::timestamp::Ts;

/// A sharing consent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub hcp_id: Uuid,
    pub kind: String,
    pub method: String,
    pub method_ref: Option<String>,
    pub given_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub sdm_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// A care episode as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub hcp_id: Uuid,
    pub location_id: Option<Uuid>,
    pub kind: String,
    pub start_at: OffsetDateTime,
    pub end_at: Option<OffsetDateTime>,
    pub opened_by: Uuid,
    pub closed_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// Everything the access decision needs about a recipient ([`Db::recipient_facts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientFacts {
    pub registration: RecipientRow,
    pub sdms: Vec<SdmRow>,
    pub consents: Vec<ConsentRow>,
    pub episodes: Vec<EpisodeRow>,
    pub restrictions: Vec<RestrictionRow>,
    /// The current records in the domains asked for, by domain and oldest first in each.
    pub records: Vec<ListedRecord>,
}

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
    pub status: String,
    /// Canonical JSON text.
    pub body: String,
    pub deposited_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A current record as a summary or a domain's page lists it: what those answers show and
/// what the decision's obligations filter on, no more. A summary lists tens of records, and
/// each column read costs (docs/PERFORMANCE.md, sixth session); the full row is
/// [`RecordRow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRecord {
    pub id: Uuid,
    /// The recipient the records were read for (not read back: the query's own key).
    pub recipient_id: Uuid,
    /// Read as core's domain: the answers group and filter by it, and parsing the code once
    /// here spares them three look-ups a record. A record of a domain this build does not
    /// know (written by a later version) is not listed at all ([`listed_domain`]).
    pub domain: Domain,
    pub resource_type: String,
    pub source_hcp: Uuid,
    pub version: i64,
    /// Canonical JSON text.
    pub body: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The columns of a [`ListedRecord`] (table `record`, alias `d`), in the order
/// [`listed_record`] reads them by position. On SQLite every one of them is in the index
/// `record_recipient_domain` (migration 0012), so a summary never reads the table: a column
/// added here must be added there, or the plan test fails.
const LISTED_COLUMNS: [&str; 8] = [
    "d.record_id",
    "d.domain",
    "d.resource_type",
    "d.source_hcp",
    "d.version",
    "d.body",
    "d.created_at",
    "d.updated_at",
];

/// The domain of a listed record's stored code, or `None` for a code this build does not
/// know: such a record is left out of the list, neither shown nor counted, as the answers
/// left it out when they parsed the code themselves.
fn listed_domain(code: &str) -> Option<Domain> {
    Domain::parse(code)
}

/// A [`ListedRecord`] from a row of [`LISTED_COLUMNS`] read in place; `None` for a domain
/// this build does not know ([`listed_domain`]).
fn listed_record(
    recipient: Uuid,
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Option<ListedRecord>> {
    let Some(domain) = listed_domain(row.get_ref(1)?.as_str()?) else {
        return Ok(None);
    };
    let created_at: Ts = row.get(6)?;
    let updated_at: Ts = row.get(7)?;
    Ok(Some(ListedRecord {
        id: row.get(0)?,
        recipient_id: recipient,
        domain,
        resource_type: row.get(2)?,
        source_hcp: row.get(3)?,
        version: row.get(4)?,
        body: row.get(5)?,
        created_at: created_at.0,
        updated_at: updated_at.0,
    }))
}

/// A restriction with its unlocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestrictionRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub domain: Option<String>,
    pub record_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub unlocks: Vec<UnlockRow>,
}

/// An unlock of a restriction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockRow {
    pub id: Uuid,
    pub hcp_id: Uuid,
    pub episode_id: Uuid,
    pub until: OffsetDateTime,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub id: Uuid,
    pub rule: String,
    pub hcp_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub recipient_id: Option<Uuid>,
    pub detail: Option<String>,
    pub status: String,
    pub note: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Records a consent.
pub async fn insert_consent(conn: Conn<'_>, c: &ConsentRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO consent (consent_id, recipient_id, hcp_id, kind, method, method_ref, \
             given_at, revoked_at, sdm_id, account_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.id)
        .bind(c.recipient_id)
        .bind(c.hcp_id)
        .bind(&c.kind)
        .bind(&c.method)
        .bind(&c.method_ref)
        .bind(Ts(c.given_at))
        .bind(c.revoked_at.map(Ts))
        .bind(c.sdm_id)
        .bind(c.account_id)
        .bind(Ts(c.created_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Revokes every consent of a recipient with a provider that is not revoked yet.
pub async fn revoke_consents(
    conn: Conn<'_>,
    recipient: Uuid,
    hcp: Uuid,
    at: OffsetDateTime,
) -> Result<u64, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE consent SET revoked_at = $3 WHERE recipient_id = $1 AND hcp_id = $2 \
             AND revoked_at IS NULL",
        )
        .bind(recipient)
        .bind(hcp)
        .bind(Ts(at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n)
}

/// `$first, ..., $(first + n - 1)`: a list of bound parameters for `IN (...)`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    let list: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    list.join(", ")
}

/// Which of `$1` to `$n` (consent ids) are unrevoked: their ids. Also the audit writer's
/// check in place (`audit::in_place`), one consent at a time.
pub(crate) fn unrevoked_consents_sql(n: usize) -> String {
    format!(
        "SELECT consent_id FROM consent WHERE revoked_at IS NULL AND consent_id IN ({})",
        placeholders(1, n)
    )
}

/// Claims `n` access-notice days, `(recipient_id, hcp_id, day)` from `$1` on, three a day;
/// returns those not claimed before. Also the audit writer's claim in place
/// (`audit::in_place`), one day at a time.
pub(crate) fn claim_notice_days_sql(n: usize) -> String {
    let values: Vec<String> = (0..n)
        .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
        .collect();
    format!(
        "INSERT INTO access_notice (recipient_id, hcp_id, day) VALUES {} \
         ON CONFLICT (recipient_id, hcp_id, day) DO NOTHING RETURNING recipient_id, hcp_id, day",
        values.join(", ")
    )
}

/// Which of `consents` are unrevoked, in one statement per thousand, read inside the caller's
/// transaction (the audit writer's): a read permitted on a consent is committed only if no
/// revocation committed first.
pub async fn unrevoked_consents(
    mut conn: Conn<'_>,
    consents: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, StoreError> {
    let mut live = std::collections::HashSet::new();
    for chunk in consents.chunks(1000) {
        let sql = unrevoked_consents_sql(chunk.len());
        let ids: Vec<Uuid> = crate::on_conn!(conn.reborrow(), db => {
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
            for c in chunk {
                q = q.bind(*c);
            }
            q.fetch_all(&mut *db).await?
        });
        live.extend(ids);
    }
    Ok(live)
}

/// A batch's read obligations (`audit::ReadEffects`): the alerts, then the access-notice days
/// claimed in one statement per thousand; a claim's messages are queued if its day was not
/// claimed before (once per key in the batch) or it must always be sent.
pub(crate) async fn apply_read_effects(
    mut conn: Conn<'_>,
    effects: Vec<crate::audit::ReadEffects>,
) -> Result<(), StoreError> {
    let mut claims = Vec::new();
    for e in effects {
        if let Some(a) = &e.alert {
            insert_alert(conn.reborrow(), a).await?;
        }
        claims.extend(e.notice);
    }
    let mut keys: Vec<(Uuid, Uuid, String)> = claims
        .iter()
        .map(|c| (c.recipient, c.hcp, c.day.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut fresh = std::collections::HashSet::new();
    for chunk in keys.chunks(1000) {
        let sql = claim_notice_days_sql(chunk.len());
        let rows: Vec<(Uuid, Uuid, String)> = crate::on_conn!(conn.reborrow(), db => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for (r, h, d) in chunk {
                q = q.bind(*r).bind(*h).bind(d.as_str());
            }
            q.fetch_all(&mut *db).await?
        });
        fresh.extend(rows);
    }
    let mut messages = Vec::new();
    for c in claims {
        // The first claim of a fresh key takes the notice; the key is then spent.
        if fresh.remove(&(c.recipient, c.hcp, c.day.clone())) || c.always {
            messages.extend(c.messages);
        }
    }
    if !messages.is_empty() {
        crate::outbox::enqueue(conn, &messages).await?;
    }
    Ok(())
}

/// A smart ID card reader as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderRow {
    pub id: Uuid,
    pub hcp_id: Uuid,
    pub location_id: Uuid,
    /// 64 hex digits.
    pub public_key: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Registers a card reader.
pub async fn insert_reader(conn: Conn<'_>, r: &ReaderRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO card_reader (reader_id, hcp_id, location_id, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.id)
        .bind(r.hcp_id)
        .bind(r.location_id)
        .bind(&r.public_key)
        .bind(Ts(r.created_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Records a card assertion's nonce; false if it was seen before (a replay).
pub async fn claim_card_nonce(
    conn: Conn<'_>,
    nonce: &str,
    reader: Uuid,
    asserted_at: OffsetDateTime,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO card_assertion (nonce, reader_id, asserted_at, received_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(reader)
        .bind(Ts(asserted_at))
        .bind(Ts(at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Opens a care episode.
pub async fn insert_episode(conn: Conn<'_>, e: &EpisodeRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO care_episode (episode_id, recipient_id, hcp_id, location_id, kind, \
             start_at, end_at, opened_by, closed_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(e.id)
        .bind(e.recipient_id)
        .bind(e.hcp_id)
        .bind(e.location_id)
        .bind(&e.kind)
        .bind(Ts(e.start_at))
        .bind(e.end_at.map(Ts))
        .bind(e.opened_by)
        .bind(e.closed_by)
        .bind(Ts(e.created_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Closes an open episode; returns whether it was open.
pub async fn close_episode(
    conn: Conn<'_>,
    id: Uuid,
    at: OffsetDateTime,
    by: Uuid,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE care_episode SET end_at = $2, closed_by = $3 WHERE episode_id = $1 AND end_at IS NULL",
        )
        .bind(id)
        .bind(Ts(at))
        .bind(by)
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
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
        .bind(&r.status)
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
    insert_version(conn, r).await?;
    Ok(true)
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

/// Replaces a record's content with a new version (amendment, entered-in-error).
pub async fn update_record(mut conn: Conn<'_>, r: &RecordRow) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn.reborrow(), db => {
        sqlx::query(
            "UPDATE record SET version = $2, status = $3, body = $4, updated_at = $5 \
             WHERE record_id = $1 AND version = $6",
        )
        .bind(r.id)
        .bind(r.version)
        .bind(&r.status)
        .bind(&r.body)
        .bind(Ts(r.updated_at))
        .bind(r.version - 1)
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    if n == 0 {
        return Ok(false);
    }
    insert_version(conn, r).await?;
    Ok(true)
}

async fn insert_version(conn: Conn<'_>, r: &RecordRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO record_version (record_id, version, recipient_id, status, body, \
             account_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.id)
        .bind(r.version)
        .bind(r.recipient_id)
        .bind(&r.status)
        .bind(&r.body)
        .bind(r.deposited_by)
        .bind(Ts(r.updated_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Puts a record or a domain under restricted control.
pub async fn insert_restriction(conn: Conn<'_>, r: &RestrictionRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO restriction (restriction_id, recipient_id, domain, record_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.id)
        .bind(r.recipient_id)
        .bind(&r.domain)
        .bind(r.record_id)
        .bind(Ts(r.created_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Lifts a restriction of a recipient; returns whether one was lifted.
pub async fn lift_restriction(
    conn: Conn<'_>,
    recipient: Uuid,
    id: Uuid,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE restriction SET lifted_at = $3 WHERE restriction_id = $1 AND recipient_id = $2 \
             AND lifted_at IS NULL",
        )
        .bind(id)
        .bind(recipient)
        .bind(Ts(at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// A professional's request to unlock restricted items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockChallengeRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub hcp_id: Uuid,
    pub account_id: Uuid,
    pub episode_id: Uuid,
    pub restriction_ids: Vec<Uuid>,
    pub reason: String,
    pub code_hash: String,
    pub attempts: i64,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// Stores an unlock request.
pub async fn insert_unlock_challenge(
    conn: Conn<'_>,
    c: &UnlockChallengeRow,
) -> Result<(), StoreError> {
    let ids = serde_json::to_string(&c.restriction_ids)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO unlock_challenge (challenge_id, recipient_id, hcp_id, account_id, episode_id, \
             restriction_ids, reason, code_hash, attempts, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.id)
        .bind(c.recipient_id)
        .bind(c.hcp_id)
        .bind(c.account_id)
        .bind(c.episode_id)
        .bind(&ids)
        .bind(&c.reason)
        .bind(&c.code_hash)
        .bind(c.attempts)
        .bind(Ts(c.created_at))
        .bind(Ts(c.expires_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Counts a wrong code.
pub async fn count_unlock_attempt(conn: Conn<'_>, id: Uuid) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query("UPDATE unlock_challenge SET attempts = attempts + 1 WHERE challenge_id = $1")
            .bind(id)
            .execute(&mut *db)
            .await?;
    });
    Ok(())
}

/// Uses an unlock request once and writes its unlocks; returns whether this call used it.
pub async fn use_unlock_challenge(
    mut conn: Conn<'_>,
    c: &UnlockChallengeRow,
    until: OffsetDateTime,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn.reborrow(), db => {
        sqlx::query("UPDATE unlock_challenge SET used_at = $2 WHERE challenge_id = $1 AND used_at IS NULL")
            .bind(c.id)
            .bind(Ts(at))
            .execute(&mut *db)
            .await?
            .rows_affected()
    });
    if n != 1 {
        return Ok(false);
    }
    insert_unlocks(
        conn,
        &UnlockGrant {
            restriction_ids: &c.restriction_ids,
            recipient: c.recipient_id,
            hcp: c.hcp_id,
            episode: c.episode_id,
            account: c.account_id,
            reason: &c.reason,
            until,
            at,
        },
    )
    .await?;
    Ok(true)
}

/// Restricted items unlocked for a provider's episode until a time (by a code or a card).
#[derive(Debug, Clone, Copy)]
pub struct UnlockGrant<'a> {
    pub restriction_ids: &'a [Uuid],
    pub recipient: Uuid,
    pub hcp: Uuid,
    pub episode: Uuid,
    pub account: Uuid,
    pub reason: &'a str,
    pub until: OffsetDateTime,
    pub at: OffsetDateTime,
}

/// Stores the unlocks of a grant, one per restricted item.
pub async fn insert_unlocks(mut conn: Conn<'_>, g: &UnlockGrant<'_>) -> Result<(), StoreError> {
    for r in g.restriction_ids {
        crate::on_conn!(conn.reborrow(), db => {
            sqlx::query(
                "INSERT INTO restriction_unlock (unlock_id, restriction_id, recipient_id, hcp_id, \
                 episode_id, account_id, reason, until_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(Uuid::now_v7())
            .bind(r)
            .bind(g.recipient)
            .bind(g.hcp)
            .bind(g.episode)
            .bind(g.account)
            .bind(g.reason)
            .bind(Ts(g.until))
            .bind(Ts(g.at))
            .execute(&mut *db)
            .await?;
        });
    }
    Ok(())
}

/// Marks an alert reviewed, with a note.
pub async fn review_alert(
    conn: Conn<'_>,
    id: Uuid,
    note: &str,
    by: Option<Uuid>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE alert SET status = 'reviewed', note = $2, reviewed_by = $3, reviewed_at = $4 \
             WHERE alert_id = $1 AND status = 'open'",
        )
        .bind(id)
        .bind(note)
        .bind(by)
        .bind(Ts(at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Sets a value of `ehrshare_meta` inside the caller's transaction (the alert scanner's
/// cursor moves with the alerts it wrote).
pub async fn put_meta(conn: Conn<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO ehrshare_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Raises an alert.
pub async fn insert_alert(conn: Conn<'_>, a: &AlertRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO alert (alert_id, rule, hcp_id, account_id, recipient_id, detail, status, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(a.id)
        .bind(&a.rule)
        .bind(a.hcp_id)
        .bind(a.account_id)
        .bind(a.recipient_id)
        .bind(&a.detail)
        .bind(&a.status)
        .bind(Ts(a.created_at))
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// A [`RecordRow`] from a row with [`RECORD_COLUMNS`] (either backend).
macro_rules! record_row {
    ($row:expr) => {{
        let row = $row;
        let created_at: Ts = row.try_get("created_at")?;
        let updated_at: Ts = row.try_get("updated_at")?;
        RecordRow {
            id: row.try_get("record_id")?,
            recipient_id: row.try_get("recipient_id")?,
            domain: row.try_get("domain")?,
            resource_type: row.try_get("resource_type")?,
            source_hcp: row.try_get("source_hcp")?,
            source_id: row.try_get("source_id")?,
            version: row.try_get("version")?,
            status: row.try_get("status")?,
            body: row.try_get("body")?,
            deposited_by: row.try_get("deposited_by")?,
            created_at: created_at.0,
            updated_at: updated_at.0,
        }
    }};
}

const RECORD_COLUMNS: &str = "record_id, recipient_id, domain, resource_type, source_hcp, \
    source_id, version, status, body, deposited_by, created_at, updated_at";

impl Db {
    /// One record.
    pub async fn record(&self, id: Uuid) -> Result<Option<RecordRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RECORD_COLUMNS} FROM record WHERE record_id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(record_row!(&row)),
                None => None,
            })
        })
    }

    /// The record a provider deposited with a source id.
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

    pub async fn record_by_source(
        &self,
        hcp: Uuid,
        source_id: &str,
    ) -> Result<Option<RecordRow>, StoreError> {
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

    /// Everything the access decision needs about a recipient, in one statement (see
    /// [`packed`] for why): the registration with its SDMs, every consent (newest first),
    /// every care episode (newest first) and the restrictions in force with their unlocks;
    /// with the current records in `records_in` (domain codes), for a read that will release
    /// them only under a permit (see `core::access::need_to_know`). `None` if there is no such
    /// recipient.
    pub async fn recipient_facts(
        &self,
        recipient: Uuid,
        records_in: &[String],
    ) -> Result<Option<RecipientFacts>, StoreError> {
        // In place (SQLite), the records are read as rows by a second statement: without a
        // hand-over per row there is nothing to save by packing them, and packing costs
        // escaping each body into JSON and back.
        let in_place = match self {
            crate::Db::Sqlite(_, readers) => readers.read(|conn| {
                // One snapshot for both statements, as the pool's one statement has: the
                // records are those of the facts the decision is made on.
                let snapshot = conn.unchecked_transaction()?;
                let mut statement =
                    snapshot.prepare_cached(&facts_sql(crate::Backend::Sqlite, 0))?;
                let mut rows = statement.query([("$1", &recipient)].as_slice())?;
                let Some(row) = rows.next()? else {
                    return Ok(None);
                };
                let names = crate::reader::column_names(row);
                let row = crate::reader::Named::new(row, &names);
                let registration = recipient_row!(&row, get);
                let lists = [
                    row.get("sdms")?,
                    row.get("consents")?,
                    row.get("episodes")?,
                    row.get("restrictions")?,
                ];
                let mut records = Vec::new();
                if !records_in.is_empty() {
                    let wanted = Wanted::of(records_in);
                    let mut statement = snapshot.prepare_cached(&records_sql(wanted))?;
                    let values: Vec<&dyn rusqlite::ToSql> = std::iter::once(&recipient as _)
                        .chain(wanted.bound(records_in).iter().map(|d| d as _))
                        .collect();
                    let names = crate::reader::numbered(values.len());
                    let params: Vec<(&str, &dyn rusqlite::ToSql)> =
                        names.iter().map(String::as_str).zip(values).collect();
                    let mut rows = statement.query(params.as_slice())?;
                    while let Some(row) = rows.next()? {
                        records.extend(listed_record(recipient, row)?);
                    }
                }
                Ok(Some((registration, lists, records)))
            }),
            crate::Db::Postgres(_) => None,
        };
        let (registration, lists, records): (RecipientRow, [String; 4], Vec<ListedRecord>) =
            if let Some(found) = in_place {
                match found? {
                    Some(found) => found,
                    None => return Ok(None),
                }
            } else {
                // No domains is `Wanted::In(0)`, key 0: the facts without records.
                let wanted = Wanted::of(records_in);
                let sql = facts_sql(self.backend(), wanted.key());
                crate::on_pool!(self, pool => {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(recipient);
                    for d in wanted.bound(records_in) {
                        q = q.bind(d);
                    }
                    let Some(row) = q.fetch_optional(pool).await? else {
                        return Ok(None);
                    };
                    let records: String = row.try_get("records")?;
                    (
                        recipient_row!(&row),
                        [
                            row.try_get("sdms")?,
                            row.try_get("consents")?,
                            row.try_get("episodes")?,
                            row.try_get("restrictions")?,
                        ],
                        decode_records(recipient, &records)?,
                    )
                })
            };
        let [sdms, consents, episodes, restrictions] = lists;
        type Sdm = (
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            String,
            bool,
            Option<String>,
            String,
            String,
        );
        type Consent = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        type Episode = (
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
        );
        type Unlock = (String, String, String, String);
        type Restriction = (
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            Vec<Unlock>,
        );
        let mut sdms: Vec<SdmRow> = packed::decode::<Sdm>("sdms", &sdms)?
            .into_iter()
            .map(|p| {
                Ok(SdmRow {
                    recipient_id: packed::uuid(&p.0)?,
                    sdm_id: packed::uuid(&p.1)?,
                    name_en: p.2,
                    name_zh: p.3,
                    doc_type: p.4,
                    doc_issuer: p.5,
                    doc_number: p.6,
                    category: p.7,
                    no_higher_available: p.8,
                    relationship_proof: p.9,
                    phone: p.10,
                    created_at: packed::ts(&p.11)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let mut consents: Vec<ConsentRow> = packed::decode::<Consent>("consents", &consents)?
            .into_iter()
            .map(|p| {
                Ok(ConsentRow {
                    id: packed::uuid(&p.0)?,
                    recipient_id: packed::uuid(&p.1)?,
                    hcp_id: packed::uuid(&p.2)?,
                    kind: p.3,
                    method: p.4,
                    method_ref: p.5,
                    given_at: packed::ts(&p.6)?,
                    revoked_at: packed::opt_ts(p.7.as_deref())?,
                    sdm_id: packed::opt_uuid(p.8.as_deref())?,
                    account_id: packed::opt_uuid(p.9.as_deref())?,
                    created_at: packed::ts(&p.10)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let mut episodes: Vec<EpisodeRow> = packed::decode::<Episode>("episodes", &episodes)?
            .into_iter()
            .map(|p| {
                Ok(EpisodeRow {
                    id: packed::uuid(&p.0)?,
                    recipient_id: packed::uuid(&p.1)?,
                    hcp_id: packed::uuid(&p.2)?,
                    location_id: packed::opt_uuid(p.3.as_deref())?,
                    kind: p.4,
                    start_at: packed::ts(&p.5)?,
                    end_at: packed::opt_ts(p.6.as_deref())?,
                    opened_by: packed::uuid(&p.7)?,
                    closed_by: packed::opt_uuid(p.8.as_deref())?,
                    created_at: packed::ts(&p.9)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let mut restrictions: Vec<RestrictionRow> =
            packed::decode::<Restriction>("restrictions", &restrictions)?
                .into_iter()
                .map(|p| {
                    Ok(RestrictionRow {
                        id: packed::uuid(&p.0)?,
                        recipient_id: packed::uuid(&p.1)?,
                        domain: p.2,
                        record_id: packed::opt_uuid(p.3.as_deref())?,
                        created_at: packed::ts(&p.4)?,
                        unlocks: p
                            .5
                            .into_iter()
                            .map(|u| {
                                Ok(UnlockRow {
                                    id: packed::uuid(&u.0)?,
                                    hcp_id: packed::uuid(&u.1)?,
                                    episode_id: packed::uuid(&u.2)?,
                                    until: packed::ts(&u.3)?,
                                })
                            })
                            .collect::<Result<_, StoreError>>()?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
        facts_order(&mut sdms, &mut consents, &mut episodes, &mut restrictions);
        Ok(Some(RecipientFacts {
            registration,
            sdms,
            consents,
            episodes,
            restrictions,
            records,
        }))
    }

    /// A card reader.
    pub async fn reader(&self, id: Uuid) -> Result<Option<ReaderRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT reader_id, hcp_id, location_id, public_key, created_at, revoked_at \
                 FROM card_reader WHERE reader_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(ReaderRow {
                id: row.try_get("reader_id")?,
                hcp_id: row.try_get("hcp_id")?,
                location_id: row.try_get("location_id")?,
                public_key: row.try_get("public_key")?,
                created_at: row.try_get::<Ts, _>("created_at")?.0,
                revoked_at: row.try_get::<Option<Ts>, _>("revoked_at")?.map(|t| t.0),
            }))
        })
    }

    /// An unlock request.
    pub async fn unlock_challenge(
        &self,
        id: Uuid,
    ) -> Result<Option<UnlockChallengeRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT challenge_id, recipient_id, hcp_id, account_id, episode_id, restriction_ids, \
                 reason, code_hash, attempts, created_at, expires_at, used_at FROM unlock_challenge \
                 WHERE challenge_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let ids: String = row.try_get("restriction_ids")?;
            Ok(Some(UnlockChallengeRow {
                id: row.try_get("challenge_id")?,
                recipient_id: row.try_get("recipient_id")?,
                hcp_id: row.try_get("hcp_id")?,
                account_id: row.try_get("account_id")?,
                episode_id: row.try_get("episode_id")?,
                restriction_ids: serde_json::from_str(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                reason: row.try_get("reason")?,
                code_hash: row.try_get("code_hash")?,
                attempts: row.try_get("attempts")?,
                created_at: row.try_get::<Ts, _>("created_at")?.0,
                expires_at: row.try_get::<Ts, _>("expires_at")?.0,
                used_at: row.try_get::<Option<Ts>, _>("used_at")?.map(|t| t.0),
            }))
        })
    }

    /// A provider's alerts, newest first.
    pub async fn alerts(&self, hcp: Uuid) -> Result<Vec<AlertRow>, StoreError> {
        self.alerts_where("hcp_id = $1", Some(hcp)).await
    }

    /// Every open alert, newest first.
    pub async fn open_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        self.alerts_where("status = 'open'", None).await
    }

    /// One alert.
    pub async fn alert(&self, id: Uuid) -> Result<Option<AlertRow>, StoreError> {
        Ok(self.alerts_where("alert_id = $1", Some(id)).await?.pop())
    }

    async fn alerts_where(
        &self,
        condition: &'static str,
        key: Option<Uuid>,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!(
            "SELECT alert_id, rule, hcp_id, account_id, recipient_id, detail, status, note, \
             created_at FROM alert WHERE {condition} ORDER BY created_at DESC, alert_id DESC LIMIT 500"
        );
        crate::on_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            if let Some(k) = key {
                q = q.bind(k);
            }
            let rows = q.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(AlertRow {
                    id: row.try_get("alert_id")?,
                    rule: row.try_get("rule")?,
                    hcp_id: row.try_get("hcp_id")?,
                    account_id: row.try_get("account_id")?,
                    recipient_id: row.try_get("recipient_id")?,
                    detail: row.try_get("detail")?,
                    status: row.try_get("status")?,
                    note: row.try_get("note")?,
                    created_at: row.try_get::<Ts, _>("created_at")?.0,
                });
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

/// The facts' statement for `records` record domains on `b`.
fn facts_sql(b: crate::Backend, records: usize) -> std::sync::Arc<str> {
    shape("facts", b, records, build_facts_sql)
}

/// A hot statement's text, built once per shape (`kind`, backend, number of domains) and kept:
/// every summary runs these, and building them (long texts, a placeholder per domain) cost a
/// visible part of a read.
fn shape(
    kind: &'static str,
    b: crate::Backend,
    n: usize,
    build: fn(crate::Backend, usize) -> String,
) -> std::sync::Arc<str> {
    type Shapes =
        std::collections::HashMap<(&'static str, crate::Backend, usize), std::sync::Arc<str>>;
    static SHAPES: std::sync::LazyLock<std::sync::Mutex<Shapes>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(sql) = SHAPES
        .lock()
        .ok()
        .and_then(|m| m.get(&(kind, b, n)).cloned())
    {
        return sql;
    }
    let sql: std::sync::Arc<str> = build(b, n).into();
    if let Ok(mut m) = SHAPES.lock() {
        m.insert((kind, b, n), sql.clone());
    }
    sql
}

/// The facts' lists in their documented order, sorted here rather than by the database: on
/// SQLite an `ORDER BY` inside an aggregate builds a temporary b-tree per list per read,
/// which cost more than these few rows' sort (docs/PERFORMANCE.md, sixth session). Instants
/// compare as instants and ids by their bytes, as both backends order them.
fn facts_order(
    sdms: &mut [SdmRow],
    consents: &mut [ConsentRow],
    episodes: &mut [EpisodeRow],
    restrictions: &mut [RestrictionRow],
) {
    sdms.sort_by_key(|s| (s.created_at, s.sdm_id));
    // Newest first.
    consents.sort_by_key(|c| std::cmp::Reverse((c.given_at, c.id)));
    episodes.sort_by_key(|e| std::cmp::Reverse((e.start_at, e.id)));
    restrictions.sort_by_key(|r| (r.created_at, r.id));
    for r in restrictions.iter_mut() {
        r.unlocks.sort_by_key(|u| (u.until, u.id));
    }
}

/// Which of a recipient's current records are read with the facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// Those in `n` domains, bound as the parameters `$2` to `$(n + 1)`.
    In(usize),
    /// All of them: asked for every domain of core's closed list, which every record's
    /// domain is one of (derived at deposit). No domain condition, so SQLite makes one seek
    /// into `record_recipient_domain` and walks it, where a list of every domain made it
    /// build a temporary table of the codes and seek once per domain (docs/PERFORMANCE.md,
    /// seventh session).
    Every,
}

impl Wanted {
    /// What `codes` (domain codes) asks for.
    fn of(codes: &[String]) -> Wanted {
        let every = codes.len() == Domain::ALL.len()
            && Domain::ALL
                .iter()
                .all(|d| codes.iter().any(|c| c == d.code()));
        if every {
            Wanted::Every
        } else {
            Wanted::In(codes.len())
        }
    }

    /// The domain codes to bind after the recipient.
    fn bound(self, codes: &[String]) -> &[String] {
        match self {
            Wanted::In(_) => codes,
            Wanted::Every => &[],
        }
    }

    /// The number [`shape`] keeps a statement's text under: the domains, or `usize::MAX`
    /// for every domain (no list has that many).
    fn key(self) -> usize {
        match self {
            Wanted::In(n) => n,
            Wanted::Every => usize::MAX,
        }
    }

    fn from_key(n: usize) -> Wanted {
        if n == usize::MAX {
            Wanted::Every
        } else {
            Wanted::In(n)
        }
    }
}

/// Which records a summary shows, and in what order: a recipient's current records
/// ([`Wanted`]), by domain and oldest first in each (the order of the index
/// `record_recipient_domain`, so that the database does not sort). The recipient is
/// `recipient` (a parameter or a column); the domain codes are the parameters from `$2` (from
/// core's closed list, still bound).
fn records_from(recipient: &str, wanted: Wanted) -> (String, &'static str) {
    let domains = match wanted {
        Wanted::In(n) => format!(" AND d.domain IN ({})", placeholders(2, n)),
        Wanted::Every => String::new(),
    };
    (
        format!(
            "FROM record d WHERE d.recipient_id = {recipient} AND d.status = 'current'{domains}"
        ),
        "d.domain, d.created_at, d.record_id",
    )
}

/// A summary's records as rows, for reads in place: `$1` the recipient, then the domains.
fn records_sql(wanted: Wanted) -> std::sync::Arc<str> {
    shape("records", crate::Backend::Sqlite, wanted.key(), |_, n| {
        let (from, order) = records_from("$1", Wanted::from_key(n));
        format!(
            "SELECT {} {from} ORDER BY {order}",
            LISTED_COLUMNS.join(", ")
        )
    })
}

fn build_facts_sql(b: crate::Backend, records: usize) -> String {
    let sdms = packed::list(
        b,
        &[
            Col::Uuid("s.recipient_id"),
            Col::Uuid("s.sdm_id"),
            Col::Plain("s.name_en"),
            Col::Plain("s.name_zh"),
            Col::Plain("s.doc_type"),
            Col::Plain("s.doc_issuer"),
            Col::Plain("s.doc_number"),
            Col::Plain("s.category"),
            Col::Bool("s.no_higher_available"),
            Col::Plain("s.relationship_proof"),
            Col::Plain("s.phone"),
            Col::Plain("s.created_at"),
        ],
        "FROM recipient_sdm s WHERE s.recipient_id = r.recipient_id",
        None,
    );
    let consents = packed::list(
        b,
        &[
            Col::Uuid("c.consent_id"),
            Col::Uuid("c.recipient_id"),
            Col::Uuid("c.hcp_id"),
            Col::Plain("c.kind"),
            Col::Plain("c.method"),
            Col::Plain("c.method_ref"),
            Col::Plain("c.given_at"),
            Col::Plain("c.revoked_at"),
            Col::Uuid("c.sdm_id"),
            Col::Uuid("c.account_id"),
            Col::Plain("c.created_at"),
        ],
        "FROM consent c WHERE c.recipient_id = r.recipient_id",
        None,
    );
    let episodes = packed::list(
        b,
        &[
            Col::Uuid("e.episode_id"),
            Col::Uuid("e.recipient_id"),
            Col::Uuid("e.hcp_id"),
            Col::Uuid("e.location_id"),
            Col::Plain("e.kind"),
            Col::Plain("e.start_at"),
            Col::Plain("e.end_at"),
            Col::Uuid("e.opened_by"),
            Col::Uuid("e.closed_by"),
            Col::Plain("e.created_at"),
        ],
        "FROM care_episode e WHERE e.recipient_id = r.recipient_id",
        None,
    );
    let unlocks = packed::list(
        b,
        &[
            Col::Uuid("u.unlock_id"),
            Col::Uuid("u.hcp_id"),
            Col::Uuid("u.episode_id"),
            Col::Plain("u.until_at"),
        ],
        "FROM restriction_unlock u WHERE u.restriction_id = x.restriction_id",
        None,
    );
    let restrictions = packed::list(
        b,
        &[
            Col::Uuid("x.restriction_id"),
            Col::Uuid("x.recipient_id"),
            Col::Plain("x.domain"),
            Col::Uuid("x.record_id"),
            Col::Plain("x.created_at"),
            Col::List(&unlocks),
        ],
        "FROM restriction x WHERE x.recipient_id = r.recipient_id AND x.lifted_at IS NULL",
        None,
    );
    // `records` is a [`Wanted::key`], 0 for none.
    let records = if records == 0 {
        "'[]'".to_owned()
    } else {
        records_list(b, "r.recipient_id", Wanted::from_key(records))
    };
    format!(
        "SELECT {RECIPIENT_COLUMNS}, {sdms} AS sdms, {consents} AS consents, \
             {episodes} AS episodes, {restrictions} AS restrictions, {records} AS records \
             FROM recipient r WHERE r.recipient_id = $1"
    )
}

/// The packed list of [`records_from`].
fn records_list(backend: crate::Backend, recipient: &str, wanted: Wanted) -> String {
    let (from, order) = records_from(recipient, wanted);
    let cols: Vec<Col<'_>> = LISTED_COLUMNS
        .iter()
        .map(|c| match *c {
            "d.record_id" | "d.source_hcp" => Col::Uuid(c),
            _ => Col::Plain(c),
        })
        .collect();
    packed::list(backend, &cols, &from, Some(order))
}

/// The packed [`records_list`] of `recipient`'s records.
fn decode_records(recipient: Uuid, text: &str) -> Result<Vec<ListedRecord>, StoreError> {
    type Packed = (String, String, String, String, i64, String, String, String);
    packed::decode::<Packed>("records", text)?
        .into_iter()
        .map(|p| {
            let Some(domain) = listed_domain(&p.1) else {
                return Ok(None);
            };
            Ok(Some(ListedRecord {
                id: packed::uuid(&p.0)?,
                recipient_id: recipient,
                domain,
                resource_type: p.2,
                source_hcp: packed::uuid(&p.3)?,
                version: p.4,
                body: p.5,
                created_at: packed::ts(&p.6)?,
                updated_at: packed::ts(&p.7)?,
            }))
        })
        .filter_map(Result::transpose)
        .collect()
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use crate::{Db, DbOptions};

    fn at(minute: i64) -> OffsetDateTime {
        datetime!(2026-01-15 09:00:00 UTC) + time::Duration::minutes(minute)
    }

    fn consent(id: u128, given: i64) -> ConsentRow {
        ConsentRow {
            id: Uuid::from_u128(id),
            recipient_id: Uuid::nil(),
            hcp_id: Uuid::nil(),
            kind: "indefinite".into(),
            method: "app".into(),
            method_ref: None,
            given_at: at(given),
            revoked_at: None,
            sdm_id: None,
            account_id: None,
            created_at: at(0),
        }
    }

    fn episode(id: u128, start: i64) -> EpisodeRow {
        EpisodeRow {
            id: Uuid::from_u128(id),
            recipient_id: Uuid::nil(),
            hcp_id: Uuid::nil(),
            location_id: None,
            kind: "attendance".into(),
            start_at: at(start),
            end_at: None,
            opened_by: Uuid::nil(),
            closed_by: None,
            created_at: at(0),
        }
    }

    fn sdm(id: u128, created: i64) -> SdmRow {
        SdmRow {
            recipient_id: Uuid::nil(),
            sdm_id: Uuid::from_u128(id),
            name_en: "S".into(),
            name_zh: None,
            doc_type: "hkid".into(),
            doc_issuer: "HK".into(),
            doc_number: "A1".into(),
            category: "parent".into(),
            no_higher_available: false,
            relationship_proof: None,
            phone: "+85290000000".into(),
            created_at: at(created),
        }
    }

    fn restriction(id: u128, created: i64, unlocks: &[(u128, i64)]) -> RestrictionRow {
        RestrictionRow {
            id: Uuid::from_u128(id),
            recipient_id: Uuid::nil(),
            domain: None,
            record_id: None,
            created_at: at(created),
            unlocks: unlocks
                .iter()
                .map(|(id, until)| UnlockRow {
                    id: Uuid::from_u128(*id),
                    hcp_id: Uuid::nil(),
                    episode_id: Uuid::nil(),
                    until: at(*until),
                })
                .collect(),
        }
    }

    /// The facts' documented orders: consents and episodes newest first, the rest oldest
    /// first; equal times by id (as the databases ordered them before the sort moved here).
    #[test]
    fn the_facts_lists_come_in_their_documented_order() {
        let mut consents = vec![consent(1, 5), consent(2, 9), consent(4, 5), consent(3, 1)];
        let mut episodes = vec![episode(1, 3), episode(3, 3), episode(2, 7)];
        let mut sdms = vec![sdm(2, 4), sdm(1, 4), sdm(3, 2)];
        let mut restrictions = vec![
            restriction(2, 6, &[(5, 9), (4, 2), (3, 9)]),
            restriction(1, 8, &[]),
            restriction(3, 6, &[]),
        ];
        facts_order(&mut sdms, &mut consents, &mut episodes, &mut restrictions);
        let ids = |v: Vec<Uuid>| v.into_iter().map(|u| u.as_u128()).collect::<Vec<_>>();
        assert_eq!(ids(consents.iter().map(|c| c.id).collect()), [2, 4, 1, 3]);
        assert_eq!(ids(episodes.iter().map(|e| e.id).collect()), [2, 3, 1]);
        assert_eq!(ids(sdms.iter().map(|s| s.sdm_id).collect()), [3, 1, 2]);
        assert_eq!(ids(restrictions.iter().map(|r| r.id).collect()), [2, 3, 1]);
        assert_eq!(
            ids(restrictions[0].unlocks.iter().map(|u| u.id).collect()),
            [4, 3, 5]
        );
    }

    /// Only a list of every domain reads without a domain condition: one short, or one
    /// repeated in place of another, is read as the list it is.
    #[test]
    fn only_every_domain_drops_the_domain_condition() {
        let mut codes: Vec<String> = Domain::ALL
            .iter()
            .rev()
            .map(|d| d.code().to_owned())
            .collect();
        assert_eq!(Wanted::of(&codes), Wanted::Every);
        assert!(Wanted::Every.bound(&codes).is_empty());
        let last = codes.pop().unwrap();
        assert_eq!(Wanted::of(&codes), Wanted::In(Domain::ALL.len() - 1));
        codes.push(codes[0].clone());
        assert_eq!(Wanted::of(&codes), Wanted::In(Domain::ALL.len()));
        assert_eq!(Wanted::In(2).bound(&codes).len(), codes.len());
        codes.pop();
        codes.push(last);
        assert_eq!(Wanted::of(&codes), Wanted::Every);
        for w in [Wanted::In(0), Wanted::In(7), Wanted::Every] {
            assert_eq!(Wanted::from_key(w.key()), w);
        }
    }

    /// A summary's records come in the index's order and from the index alone: SQLite
    /// neither sorts them nor reads the table, for some domains or every one (migration
    /// 0012, docs/adr/0006).
    #[tokio::test]
    async fn a_summary_reads_its_records_in_index_order_without_a_sort() {
        let db = Db::connect("sqlite::memory:", DbOptions::default())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let Db::Sqlite(pool, _) = &db else {
            unreachable!()
        };
        for (wanted, n) in [(Wanted::In(1), 1), (Wanted::In(5), 5), (Wanted::Every, 0)] {
            let sql = super::records_sql(wanted);
            // Every domain: no list of codes to make a temporary table of.
            assert_eq!(sql.contains(" IN ("), n > 0, "{sql}");
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {sql}"
            )))
            .bind(uuid::Uuid::nil());
            for d in 0..n {
                q = q.bind(format!("domain-{d}"));
            }
            let plan: Vec<String> = q
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.3)
                .collect();
            assert!(
                plan.iter()
                    .any(|p| p.contains("USING COVERING INDEX record_recipient_domain")),
                "{plan:?}"
            );
            assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
        }
    }
}
