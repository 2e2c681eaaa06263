//! Audit-log fixtures: plausible entries, and the tampering an attacker with database access
//! could do (after dropping the append-only triggers).

use ehrshare_core::audit::{Actor, ActorKind, NewAuditEntry, Outcome};
use ehrshare_store::{Backend, Db};
use time::OffsetDateTime;
use uuid::Uuid;

/// A plausible entry, varied by `n`: professionals reading records, denials, a system event.
pub fn sample_entry(at: OffsetDateTime, n: u64) -> NewAuditEntry {
    let (action, outcome) = match n % 4 {
        0 => ("record.read", Outcome::Allowed),
        1 => ("summary.read", Outcome::Allowed),
        2 => ("record.read", Outcome::Denied),
        _ => ("consent.give", Outcome::Allowed),
    };
    let mut e = NewAuditEntry::new(
        at + time::Duration::milliseconds(n as i64),
        Actor {
            kind: ActorKind::HcpUser,
            account: Some(Uuid::from_u128(0x1000 + u128::from(n % 7))),
            role: Some(
                if n.is_multiple_of(3) {
                    "doctor"
                } else {
                    "pharmacist"
                }
                .to_owned(),
            ),
            hcp: Some(Uuid::from_u128(0x2000 + u128::from(n % 2))),
            location: Some(Uuid::from_u128(0x3000)),
        },
        action,
        outcome,
    );
    e.recipient = Some(Uuid::from_u128(0x4000 + u128::from(n % 11)));
    e.domains = vec!["allergy".to_owned(), "medication".to_owned()];
    e.record_ids = vec![Uuid::from_u128(0x5000 + u128::from(n))];
    e.request_id = Some(Uuid::from_u128(0x6000 + u128::from(n)));
    e.client_addr = Some("127.0.0.1".to_owned());
    if outcome == Outcome::Denied {
        e.denial_reason = Some("consent-required".to_owned());
    } else {
        e.consent_id = Some(Uuid::from_u128(0x7000));
    }
    if n.is_multiple_of(5) {
        e.reason = Some(format!("urgent review {n} — 急症覆診"));
    }
    e
}

/// Drops the append-only triggers so that a test can play the attacker.
pub async fn allow_tampering(db: &Db) {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "DROP TRIGGER audit_entry_no_update; DROP TRIGGER audit_entry_no_delete; \
             DROP TRIGGER audit_node_no_update; DROP TRIGGER audit_node_no_delete;"
        }
        Backend::Postgres => {
            "DROP TRIGGER audit_entry_append_only ON audit_entry; \
             DROP TRIGGER audit_node_append_only ON audit_node;"
        }
    };
    ehrshare_store::on_pool!(db, p => {
        sqlx::raw_sql(sql).execute(p).await.unwrap();
    });
}

/// Runs one tampering statement.
pub async fn tamper(db: &Db, sql: &'static str) {
    ehrshare_store::on_pool!(db, p => {
        sqlx::raw_sql(sql).execute(p).await.unwrap();
    });
}
