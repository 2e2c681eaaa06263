//! What a permitted read obliges, applied by the audit writer with the read's entry: the
//! consent it rests on checked again, the access-notice day claimed (and its notice queued),
//! an alert raised.

use uuid::Uuid;

use crate::alert::{AlertRow, insert_alert};
use crate::db::Conn;
use crate::error::StoreError;
use crate::outbox::{NewMessage, enqueue};

/// What a permitted read of records obliges, applied by the writer for a whole batch at once.
///
/// Why not a [`Change`]: reads are the hot path, and a change costs the writer a savepoint and
/// a statement or three per entry, each a round trip while every reader waits for the batch.
/// As data, a batch's consents are re-checked in one statement and its access-notice days
/// claimed in another (ADR 0005). Unlike a change, an effect that fails (it
/// cannot, short of a broken database: notice days are claimed with `DO NOTHING`, alert ids are
/// fresh) fails the whole batch, not just its own entry.
#[derive(Debug, Clone, Default)]
pub struct ReadEffects {
    /// The consent the permit rests on: checked again inside the writer's transaction, after
    /// every earlier write (a revocation included) has committed. If it has been revoked the
    /// entry is not kept and the read fails with [`StoreError::ConsentRevoked`].
    pub consent: Option<Uuid>,
    /// The recipient's access notice, if they want notices.
    pub notice: Option<NoticeClaim>,
    /// An alert to raise with the entry.
    pub alert: Option<AlertRow>,
}

/// An access notice: `messages` are sent if this is the provider's first access to the
/// recipient's record on `day`, or `always` (a restricted item was unlocked).
#[derive(Debug, Clone)]
pub struct NoticeClaim {
    pub recipient: Uuid,
    pub hcp: Uuid,
    /// Hong Kong calendar day, `YYYY-MM-DD`.
    pub day: String,
    pub always: bool,
    pub messages: Vec<NewMessage>,
}

/// Which of `$1` to `$n` (consent ids) are unrevoked: their ids. Also the audit writer's
/// check in place (`audit::in_place_batch`), one consent at a time.
pub(crate) fn unrevoked_consents_sql(n: usize) -> String {
    format!(
        "SELECT consent_id FROM consent WHERE revoked_at IS NULL AND consent_id IN ({})",
        crate::db::placeholders(1, n)
    )
}

/// Claims `n` access-notice days, `(recipient_id, hcp_id, day)` from `$1` on, three a day;
/// returns those not claimed before. Also the audit writer's claim in place
/// (`audit::in_place_batch`), one day at a time.
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

/// A batch's read obligations ([`ReadEffects`]): the alerts, then the access-notice days
/// claimed in one statement per thousand; a claim's messages are queued if its day was not
/// claimed before (once per key in the batch) or it must always be sent.
pub(super) async fn apply_read_effects(
    mut conn: Conn<'_>,
    effects: Vec<&ReadEffects>,
) -> Result<(), StoreError> {
    let mut claims = Vec::new();
    for e in effects {
        if let Some(a) = &e.alert {
            insert_alert(conn.reborrow(), a).await?;
        }
        claims.extend(e.notice.as_ref());
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
            messages.extend(c.messages.iter().cloned());
        }
    }
    if !messages.is_empty() {
        enqueue(conn, &messages).await?;
    }
    Ok(())
}
