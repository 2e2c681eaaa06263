//! Who acted, stored once per distinct actor (ADR 0023): an entry names its account, role and
//! location by a number into `audit_actor` instead of 39 bytes of its own. A storage encoding
//! only: the entry's canonical bytes spell the actor out, and a reader joins the table back.
//! The actor's kind is in the entry's codes, and its provider stays in the row, which the
//! provider's log is indexed on.
//!
//! The writer keeps the numbers it knows committed. A batch resolves the ones it lacks inside
//! its own transaction (inserted if new, read back), and they join the known ones only once
//! it commits: a number from a batch rolled back may not exist.

use std::collections::HashMap;

use ehrshare_core::audit::{Actor, AuditEntry};
use sqlx::{PgConnection, Row, SqliteConnection};
use uuid::Uuid;

use crate::error::StoreError;

/// The parts of an actor an entry names by reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ActorKey {
    account: Option<Uuid>,
    role: Option<String>,
    location: Option<Uuid>,
}

impl ActorKey {
    /// The key of `actor` when it is worth a number: a role or a location with the account
    /// (a professional at a place, of whom there are thousands, each acting all day). A
    /// patient acting on their own record (an account alone, one of millions, acting now and
    /// then) keeps the account in the row: a number would cost more than it saves.
    pub(crate) fn of(actor: &Actor) -> Option<ActorKey> {
        (actor.role.is_some() || actor.location.is_some()).then(|| ActorKey {
            account: actor.account,
            role: actor.role.clone(),
            location: actor.location,
        })
    }

    /// The unique key stored with the actor: each part marked present or absent, the role
    /// length-prefixed.
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        let uuid = |u: &Option<Uuid>, out: &mut Vec<u8>| match u {
            None => out.push(0),
            Some(u) => {
                out.push(1);
                out.extend_from_slice(u.as_bytes());
            }
        };
        uuid(&self.account, &mut out);
        match &self.role {
            None => out.push(0),
            Some(r) => {
                out.push(1);
                out.extend_from_slice(&(r.len() as u32).to_be_bytes());
                out.extend_from_slice(r.as_bytes());
            }
        }
        uuid(&self.location, &mut out);
        out
    }
}

/// The actor numbers a writer knows: those committed, and those its batch in progress has
/// resolved.
#[derive(Debug, Default)]
pub(crate) struct Actors {
    known: HashMap<ActorKey, i32>,
    pending: HashMap<ActorKey, i32>,
}

impl Actors {
    /// The number of `actor`, if known.
    pub(crate) fn get(&self, actor: &Actor) -> Option<i32> {
        let key = ActorKey::of(actor)?;
        self.known
            .get(&key)
            .or_else(|| self.pending.get(&key))
            .copied()
    }

    /// The actors of `rows` whose numbers are not known, each once.
    pub(super) fn missing(&self, rows: &[AuditEntry]) -> Vec<ActorKey> {
        self.missing_of(rows.iter().map(|r| &r.entry.actor))
    }

    /// Of `actors`, those whose numbers are not known, each once.
    pub(super) fn missing_of<'a>(
        &self,
        actors: impl IntoIterator<Item = &'a Actor>,
    ) -> Vec<ActorKey> {
        let mut out: Vec<ActorKey> = Vec::new();
        for key in actors.into_iter().filter_map(ActorKey::of) {
            if !self.known.contains_key(&key)
                && !self.pending.contains_key(&key)
                && !out.contains(&key)
            {
                out.push(key);
            }
        }
        out
    }

    /// Whether `actor` needs no number, or its number is known committed.
    pub(super) fn knows(&self, actor: &Actor) -> bool {
        ActorKey::of(actor).is_none_or(|k| self.known.contains_key(&k))
    }

    /// The batch committed: what it resolved is known. The numbers known are bounded: past
    /// [`MOST_KNOWN`] they are forgotten and looked up again as they come.
    pub(super) fn commit(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if self.known.len() + pending.len() > MOST_KNOWN {
            self.known.clear();
        }
        self.known.extend(pending);
    }

    /// Forgets every number: the database may have been replaced by an older copy, whose
    /// actor table need not hold them (the writer found its log shorter than it left it, or
    /// a batch failed).
    pub(crate) fn forget(&mut self) {
        self.known.clear();
        self.pending.clear();
    }

    /// The batch did not commit (or is attempted again): forget what it resolved.
    pub(super) fn abandon(&mut self) {
        self.pending.clear();
    }
}

/// The most actor numbers a writer keeps.
const MOST_KNOWN: usize = 100_000;

const INSERT: &str = "INSERT INTO audit_actor (key, a_account, a_role, a_location) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING";
const SELECT: &str = "SELECT ref_id FROM audit_actor WHERE key = $1";

macro_rules! define_resolve {
    ($name:ident, $conn_ty:ty) => {
        /// Resolves `keys` in the caller's transaction into `actors`' pending numbers.
        pub(super) async fn $name(
            conn: &mut $conn_ty,
            actors: &mut Actors,
            keys: Vec<ActorKey>,
        ) -> Result<(), StoreError> {
            for key in keys {
                let bytes = key.bytes();
                // Looked up first: an insert that meets the key would still use up a number
                // of the identity (PostgreSQL), and most actors exist after a restart.
                let found = sqlx::query(SELECT)
                    .bind(&bytes)
                    .fetch_optional(&mut *conn)
                    .await?;
                let row = match found {
                    Some(row) => row,
                    None => {
                        sqlx::query(INSERT)
                            .bind(&bytes)
                            .bind(key.account)
                            .bind(key.role.as_deref())
                            .bind(key.location)
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query(SELECT)
                            .bind(&bytes)
                            .fetch_one(&mut *conn)
                            .await?
                    }
                };
                let id: i32 = row.try_get(0)?;
                actors.pending.insert(key, id);
            }
            Ok(())
        }
    };
}

define_resolve!(resolve_sqlite, SqliteConnection);
define_resolve!(resolve_postgres, PgConnection);

/// [`resolve_sqlite`] on the writer's own connection in place (ADR 0005).
pub(super) fn resolve_in_place(
    conn: &rusqlite::Connection,
    actors: &mut Actors,
    keys: Vec<ActorKey>,
) -> Result<(), StoreError> {
    for key in keys {
        let bytes = key.bytes();
        conn.prepare_cached(&INSERT.replace('$', "?"))?
            .execute(rusqlite::params![
                bytes,
                key.account,
                key.role.as_deref(),
                key.location
            ])?;
        let id: i32 = conn
            .prepare_cached(&SELECT.replace('$', "?"))?
            .query_row(rusqlite::params![bytes], |row| row.get(0))?;
        actors.pending.insert(key, id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_s_key_tells_its_parts_apart() {
        let actor = |account: Option<u128>, role: Option<&str>, location: Option<u128>| Actor {
            kind: ehrshare_core::audit::ActorKind::HcpUser,
            account: account.map(Uuid::from_u128),
            role: role.map(str::to_owned),
            hcp: None,
            location: location.map(Uuid::from_u128),
        };
        let key = |a: Actor| ActorKey::of(&a).map(|k| k.bytes());
        assert_eq!(key(actor(None, None, None)), None);
        assert_eq!(
            key(actor(Some(1), None, None)),
            None,
            "a patient keeps the account"
        );
        let keys = [
            key(actor(None, Some(""), None)),
            key(actor(None, None, Some(1))),
            key(actor(Some(1), Some(""), None)),
            key(actor(Some(1), Some("doctor"), None)),
            key(actor(Some(1), Some("doctor"), Some(2))),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
