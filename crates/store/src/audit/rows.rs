//! The audit log's tables: entries (`audit_entry`) and the Merkle tree's nodes (`audit_node`),
//! written by the writer's batches and read by `audit verify`, the access logs and proofs.

use std::collections::BTreeMap;

use ehrshare_core::audit::merkle::{self, Frontier, Hash, ProofPlan};
use ehrshare_core::audit::{Actor, ActorKind, AuditEntry, Disclosed, NewAuditEntry, Outcome};
use sqlx::types::Json;
use sqlx::{PgConnection, QueryBuilder, Row, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{Db, Pool};
use crate::error::StoreError;

/// A PostgreSQL advisory lock id, fixed forever: serialises audit writers across processes
/// (`pool_batch`, and the function of `pg_batch`, migration 0024, which spells it in decimal).
pub(super) const PG_AUDIT_LOCK: i64 = 0x6568_7261_7564_6974; // "ehraudit"

/// The log's size: one more than the highest sequence number.
pub(super) const AUDIT_SIZE: &str = "SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_entry";

/// Node rows are looked up in chunks of this size.
const NODE_ROWS_PER_SELECT: usize = 4000;

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Generates the insert of a batch: multi-row VALUES, at most 512 entry rows (25 values each,
/// under SQLite's 32766 bound values) per statement. A statement per batch length is not worth
/// a place in the prepared-statement cache. (Tried for SQLite: one JSON parameter unpacked by
/// `json_each`, a fixed statement; measured 20 % slower, the `->>` lookups re-parse each row.)
macro_rules! define_insert {
    ($name:ident, $entries:ident, $conn_ty:ty, $db:ty, $lists_null:expr) => {
        pub(super) async fn $name(
            conn: &mut $conn_ty,
            rows: &[AuditEntry],
            nodes: &[(u64, Hash)],
            actors: &super::actors::Actors,
        ) -> Result<(), StoreError> {
            $entries(conn, EntryTable::Audit, rows, actors).await?;
            for chunk in nodes.chunks(4096) {
                let mut q = QueryBuilder::<$db>::new("INSERT INTO audit_node (idx, hash) ");
                q.push_values(chunk, |mut b, (idx, hash)| {
                    b.push_bind(to_i64(*idx)).push_bind(hash.as_slice());
                });
                q.build().persistent(false).execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Inserts entry rows into `table` (the audit log, or the benchmark's raw table).
        pub(crate) async fn $entries(
            conn: &mut $conn_ty,
            table: EntryTable,
            rows: &[AuditEntry],
            actors: &super::actors::Actors,
        ) -> Result<(), StoreError> {
            for chunk in rows.chunks(512) {
                let mut q = QueryBuilder::<$db>::new(table.insert_prefix());
                q.push_values(chunk, |mut b, row| {
                    let e = &row.entry;
                    let codes = stored_codes(e);
                    let (actor_ref, account, role, location) = stored_actor(e, actors);
                    b.push_bind(to_i64(row.seq))
                        .push_bind(crate::Ts(e.at))
                        .push_bind(codes.0)
                        .push_bind(account)
                        .push_bind(role)
                        .push_bind(e.actor.hcp)
                        .push_bind(location)
                        .push_bind(e.sdm)
                        .push_bind(e.recipient)
                        .push_bind(codes.1)
                        .push_bind(stored_list(stored_domains(&e.domains).0, $lists_null))
                        .push_bind(stored_list(&e.record_ids, $lists_null))
                        .push_bind(e.reason.as_deref())
                        .push_bind(codes.2)
                        .push_bind(e.denial_reason.as_deref())
                        .push_bind(e.consent_id)
                        .push_bind(e.episode_id)
                        .push_bind(stored_client(e).0)
                        .push_bind(e.request_id)
                        .push_bind(e.disclosed.as_ref().map(Disclosed::to_stored))
                        .push_bind(merkle::leaf_tag(&row.leaf_hash()))
                        .push_bind(stored_domains(&e.domains).1)
                        .push_bind(codes.3)
                        .push_bind(actor_ref)
                        .push_bind(stored_client(e).1);
                });
                q.build().persistent(false).execute(&mut *conn).await?;
            }
            Ok(())
        }
    };
}

/// A list column as stored: NULL for an empty list where the column allows it (PostgreSQL:
/// 10 bytes an entry; ADR 0023), else the list.
fn stored_list<T: serde::Serialize>(list: &[T], null_if_empty: bool) -> Option<Json<&[T]>> {
    (!(null_if_empty && list.is_empty())).then_some(Json(list))
}

/// An entry's client address as stored: its 4 or 16 bytes when they give back the same text
/// (what the web layer writes, `IpAddr::to_string`), else the text (ADR 0023).
pub(super) fn stored_client(e: &NewAuditEntry) -> (Option<&str>, Option<Vec<u8>>) {
    let Some(text) = e.client_addr.as_deref() else {
        return (None, None);
    };
    match text.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.to_string() == text => {
            let bytes = match ip {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            (None, Some(bytes))
        }
        _ => (Some(text), None),
    }
}

/// [`stored_client`]'s bytes read back.
fn client_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// An entry's actor as stored: its number in `audit_actor` and no parts of its own when the
/// writer knows the number (ADR 0023), else the parts.
pub(super) fn stored_actor<'e>(
    e: &'e NewAuditEntry,
    actors: &super::actors::Actors,
) -> (Option<i32>, Option<Uuid>, Option<&'e str>, Option<Uuid>) {
    match actors.get(&e.actor) {
        Some(id) => (Some(id), None, None, None),
        None => (
            None,
            e.actor.account,
            e.actor.role.as_deref(),
            e.actor.location,
        ),
    }
}

/// An entry's actor kind, action and outcome as stored: empty texts and their number when the
/// codes tables hold all three (ADR 0023), else the texts.
pub(super) fn stored_codes(e: &NewAuditEntry) -> (&str, &str, &str, Option<i32>) {
    let (kind, action, outcome) = (e.actor.kind.code(), e.action.as_str(), e.outcome.code());
    match super::codes::pack(kind, action, outcome) {
        Some(packed) => ("", "", "", Some(packed)),
        None => (kind, action, outcome, None),
    }
}

/// An entry's domains as stored: the list in the JSON column, or an empty list there and the
/// list's bits when they give it back (ADR 0023).
pub(super) fn stored_domains(domains: &[String]) -> (&[String], Option<i32>) {
    match ehrshare_core::audit::disclosed::domain_bits(domains) {
        Some(bits) => (&[], Some(bits)),
        None => (domains, None),
    }
}

/// JSON text of a list column, as sqlx's `Json` writes it.
pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("audit entry not encodable: {e}")))
}

/// The JSON text of a list of ids, as serde_json writes it (a test holds them equal),
/// written by hand: a summary's entry lists its tens of records, and serde's general string
/// path (escape checks on every byte) was a visible part of the writer's batch
/// (ADR 0005, ADR 0022).
pub(super) fn uuid_list(ids: &[uuid::Uuid]) -> String {
    let mut out = String::with_capacity(2 + ids.len() * 39);
    out.push('[');
    let mut buf = uuid::Uuid::encode_buffer();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(id.hyphenated().encode_lower(&mut buf));
        out.push('"');
    }
    out.push(']');
    out
}

/// A table with the columns of `audit_entry`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EntryTable {
    Audit,
    /// `bench_raw`: the benchmark's ceiling (see `crate::bench`).
    BenchRaw,
}

impl EntryTable {
    pub(super) fn insert_prefix(self) -> &'static str {
        match self {
            EntryTable::Audit => {
                "INSERT INTO audit_entry (seq, at, actor_kind, actor_account, actor_role, \
                 actor_hcp, actor_location, sdm, recipient, action, domains, record_ids, reason, \
                 outcome, denial_reason, consent_id, episode_id, client_addr, request_id, \
                 disclosed, leaf_tag, domain_bits, entry_codes, actor_ref, client_ip) "
            }
            EntryTable::BenchRaw => {
                "INSERT INTO bench_raw (seq, at, actor_kind, actor_account, actor_role, \
                 actor_hcp, actor_location, sdm, recipient, action, domains, record_ids, reason, \
                 outcome, denial_reason, consent_id, episode_id, client_addr, request_id, \
                 disclosed, leaf_tag, domain_bits, entry_codes, actor_ref, client_ip) "
            }
        }
    }
}

define_insert!(
    insert_sqlite,
    insert_entries_sqlite,
    SqliteConnection,
    sqlx::Sqlite,
    false
);
define_insert!(
    insert_postgres,
    insert_entries_postgres,
    PgConnection,
    sqlx::Postgres,
    true
);

/// The columns of an entry, in the order every reader selects them, from [`ENTRY_FROM`]: an
/// actor stored by number read back from `audit_actor` (ADR 0023).
const ENTRY_COLUMNS: &str = "seq, at, actor_kind, \
    COALESCE(actor_account, a_account) AS actor_account, \
    COALESCE(actor_role, a_role) AS actor_role, actor_hcp, \
    COALESCE(actor_location, a_location) AS actor_location, \
    sdm, recipient, action, domains, record_ids, reason, outcome, \
    denial_reason, consent_id, episode_id, client_addr, client_ip, request_id, disclosed, \
    domain_bits, \
    entry_codes";

/// Where every reader reads entries from (the actor table's columns are named apart from the
/// entries', so that the readers' conditions need no table names).
const ENTRY_FROM: &str =
    "audit_entry LEFT JOIN audit_actor ON audit_actor.ref_id = audit_entry.actor_ref";

/// Which entries to read: those about a recipient, or those by a provider's users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFilter {
    Recipient(Uuid),
    Provider(Uuid),
}

/// Narrows a log read: entries by one provider's users, recorded in `[from, to)` (the
/// recipient's access log filtered by provider and period).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogNarrowing {
    pub hcp: Option<Uuid>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// A search of one provider's users' entries (FHIR's `AuditEvent` search): about a recipient,
/// by an account, recorded in `[from, to)`, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    pub hcp: Uuid,
    pub recipient: Option<Uuid>,
    pub account: Option<Uuid>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// Leaves out the entries a provider is shown as reads of nothing (a read refused for a
    /// restriction, SPEC 3.7): a search by patient must not count them.
    pub without_restricted: bool,
    pub offset: u64,
    pub limit: u32,
}

/// `WHERE ...` of an [`AuditSearch`], on either backend.
fn push_search_filter<DB>(q: &mut QueryBuilder<DB>, s: &AuditSearch)
where
    DB: sqlx::Database,
    for<'t> Uuid: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> crate::timestamp::Ts: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    q.push(" WHERE actor_hcp = ").push_bind(s.hcp);
    if let Some(r) = s.recipient {
        q.push(" AND recipient = ").push_bind(r);
    }
    if let Some(a) = s.account {
        q.push(" AND COALESCE(actor_account, a_account) = ")
            .push_bind(a);
    }
    if let Some(from) = s.from {
        q.push(" AND at >= ").push_bind(crate::timestamp::Ts(from));
    }
    if let Some(to) = s.to {
        q.push(" AND at < ").push_bind(crate::timestamp::Ts(to));
    }
    if s.without_restricted {
        q.push(" AND (denial_reason IS NULL OR denial_reason <> 'restricted')");
    }
}

/// Generates the per-backend readers. Written once; compiled per connection type.
macro_rules! define_rows {
    ($restore:ident, $read_entries:ident, $read_by:ident, $search:ident, $decode:ident, $read_nodes:ident, $read_tree:ident, $conn_ty:ty, $db:ty) => {
        pub(super) async fn $restore(conn: &mut $conn_ty) -> Result<Frontier, StoreError> {
            let size: i64 = sqlx::query_scalar(AUDIT_SIZE).fetch_one(&mut *conn).await?;
            let size = u64::try_from(size).unwrap_or(0);
            let nodes = $read_tree(conn, &Frontier::indices_for(size)).await?;
            Frontier::restore(size, &nodes).map_err(|e| StoreError::Corrupt(e.to_string()))
        }

        /// The hashes of the perfect subtrees at `indices`: a stored one as stored; one below
        /// [`merkle::STORED_FROM_LEVEL`] that is not stored (ADR 0023) computed from the
        /// entries it covers, read a block of 32 at a time. One that cannot be computed (an
        /// entry missing or no longer decoding) is absent, as a missing node is.
        pub(super) async fn $read_tree(
            conn: &mut $conn_ty,
            indices: &[u64],
        ) -> Result<BTreeMap<u64, Hash>, StoreError> {
            let mut out = $read_nodes(conn, indices).await?;
            let block = 1u64 << merkle::STORED_FROM_LEVEL;
            let mut wanted: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
            for &i in indices {
                if !out.contains_key(&i) && !merkle::is_stored(i) {
                    wanted
                        .entry(merkle::start_of(i) / block)
                        .or_default()
                        .push(i);
                }
            }
            for (b, nodes) in wanted {
                let from = b * block;
                let mut leaves = Vec::with_capacity(block as usize);
                for (seq, entry) in $read_entries(conn, from, block as u32).await? {
                    let Ok(entry) = entry else { break };
                    if seq != from + leaves.len() as u64 {
                        break;
                    }
                    leaves.push(entry.leaf_hash());
                }
                // A leaf its row's tag disagrees with ends them: an entry changed since it was
                // written never enters a proof or the writer's tree (which then fails to
                // restore rather than sign it).
                let tags: Vec<(i64, Option<i32>)> = sqlx::query_as(
                    "SELECT seq, leaf_tag FROM audit_entry WHERE seq >= $1 AND seq < $2 \
                     ORDER BY seq",
                )
                .bind(to_i64(from))
                .bind(to_i64(from + block))
                .fetch_all(&mut *conn)
                .await?;
                let agreeing = leaves
                    .iter()
                    .zip(&tags)
                    .take_while(|(leaf, (_, tag))| tag.is_none_or(|t| t == merkle::leaf_tag(leaf)))
                    .count();
                leaves.truncate(agreeing);
                for i in nodes {
                    let start = usize::try_from(merkle::start_of(i) - from).unwrap_or(usize::MAX);
                    let end = start.saturating_add(1usize << merkle::level_of(i));
                    if let Some(hash) = leaves.get(start..end).and_then(merkle::subtree_hash) {
                        out.insert(i, hash);
                    }
                }
            }
            Ok(out)
        }

        async fn $read_nodes(
            conn: &mut $conn_ty,
            indices: &[u64],
        ) -> Result<BTreeMap<u64, Hash>, StoreError> {
            let mut out = BTreeMap::new();
            for chunk in indices.chunks(NODE_ROWS_PER_SELECT) {
                let mut q =
                    QueryBuilder::<$db>::new("SELECT idx, hash FROM audit_node WHERE idx IN (");
                let mut list = q.separated(", ");
                for i in chunk {
                    list.push_bind(to_i64(*i));
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *conn).await? {
                    let idx: i64 = row.try_get("idx")?;
                    let bytes: Vec<u8> = row.try_get("hash")?;
                    let hash: Hash = bytes.try_into().map_err(|_| {
                        StoreError::Corrupt(format!("audit node {idx} is not 32 bytes"))
                    })?;
                    out.insert(u64::try_from(idx).unwrap_or(0), hash);
                }
            }
            Ok(out)
        }

        pub(super) async fn $read_entries(
            conn: &mut $conn_ty,
            from_seq: u64,
            limit: u32,
        ) -> Result<Vec<(u64, Result<AuditEntry, StoreError>)>, StoreError> {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ENTRY_COLUMNS} FROM {ENTRY_FROM} WHERE seq >= $1 ORDER BY seq LIMIT $2"
            )))
            .bind(to_i64(from_seq))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            // Each row decoded on its own: one whose fields were altered so that they no
            // longer decode is named by its sequence number, not lost in a page's error.
            rows.iter()
                .map(|row| {
                    let seq: i64 = row.try_get("seq")?;
                    let seq = u64::try_from(seq).map_err(|_| {
                        StoreError::Corrupt(format!("audit entry {seq}: negative sequence number"))
                    })?;
                    Ok((
                        seq,
                        $decode(row).map_err(|e| match e {
                            e @ StoreError::Corrupt(_) => e,
                            e => StoreError::Corrupt(format!("audit entry {seq}: {e}")),
                        }),
                    ))
                })
                .collect()
        }

        async fn $read_by(
            conn: &mut $conn_ty,
            filter: AuditFilter,
            narrow: &LogNarrowing,
            before: Option<u64>,
            limit: u32,
        ) -> Result<Vec<AuditEntry>, StoreError> {
            let (column, key) = match filter {
                AuditFilter::Recipient(id) => ("recipient", id),
                AuditFilter::Provider(id) => ("actor_hcp", id),
            };
            let mut q = QueryBuilder::<$db>::new(format!(
                "SELECT {ENTRY_COLUMNS} FROM {ENTRY_FROM} WHERE {column} = "
            ));
            q.push_bind(key)
                .push(" AND seq < ")
                .push_bind(before.map_or(i64::MAX, to_i64));
            if let Some(h) = narrow.hcp {
                q.push(" AND actor_hcp = ").push_bind(h);
            }
            if let Some(f) = narrow.from {
                q.push(" AND at >= ").push_bind(crate::Ts(f));
            }
            if let Some(t) = narrow.to {
                q.push(" AND at < ").push_bind(crate::Ts(t));
            }
            q.push(" ORDER BY seq DESC LIMIT ")
                .push_bind(i64::from(limit));
            let rows = q.build().fetch_all(&mut *conn).await?;
            rows.iter().map(|row| $decode(row)).collect()
        }

        async fn $search(
            conn: &mut $conn_ty,
            s: &AuditSearch,
        ) -> Result<(u64, Vec<AuditEntry>), StoreError> {
            let mut count = QueryBuilder::<$db>::new(format!("SELECT COUNT(*) FROM {ENTRY_FROM}"));
            push_search_filter(&mut count, s);
            let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;
            let mut page =
                QueryBuilder::<$db>::new(format!("SELECT {ENTRY_COLUMNS} FROM {ENTRY_FROM}"));
            push_search_filter(&mut page, s);
            page.push(" ORDER BY seq DESC LIMIT ")
                .push_bind(i64::from(s.limit))
                .push(" OFFSET ")
                .push_bind(to_i64(s.offset));
            let rows = page.build().fetch_all(&mut *conn).await?;
            let entries = rows
                .iter()
                .map(|row| $decode(row))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((u64::try_from(total).unwrap_or(0), entries))
        }

        fn $decode(row: &<$db as sqlx::Database>::Row) -> Result<AuditEntry, StoreError> {
            let seq: i64 = row.try_get("seq")?;
            let bad = |what: &str| StoreError::Corrupt(format!("audit entry {seq}: {what}"));
            let (kind, action, outcome): (String, String, String) =
                match row.try_get::<Option<i32>, _>("entry_codes")? {
                    Some(packed) => {
                        let (k, a, o) =
                            super::codes::unpack(packed).ok_or_else(|| bad("unknown codes"))?;
                        (k.to_owned(), a.to_owned(), o.to_owned())
                    }
                    None => (
                        row.try_get("actor_kind")?,
                        row.try_get("action")?,
                        row.try_get("outcome")?,
                    ),
                };
            let domains = match row.try_get::<Option<i32>, _>("domain_bits")? {
                Some(bits) => ehrshare_core::audit::disclosed::domains_of_bits(bits)
                    .map_err(|e| bad(&e.to_string()))?,
                None => {
                    let domains: Option<Json<Vec<String>>> = row.try_get("domains")?;
                    domains.map(|d| d.0).unwrap_or_default()
                }
            };
            // An empty list may be stored as NULL (PostgreSQL).
            let record_ids: Option<Json<Vec<Uuid>>> = row.try_get("record_ids")?;
            let record_ids = record_ids.map(|r| r.0).unwrap_or_default();
            let client_addr = match row.try_get::<Option<Vec<u8>>, _>("client_ip")? {
                Some(bytes) => Some(client_text(&bytes).ok_or_else(|| bad("client address"))?),
                None => row.try_get("client_addr")?,
            };
            let at: OffsetDateTime = row.try_get("at")?;
            let entry = NewAuditEntry {
                at,
                actor: Actor {
                    kind: ActorKind::parse(&kind).ok_or_else(|| bad("unknown actor kind"))?,
                    account: row.try_get("actor_account")?,
                    role: row.try_get("actor_role")?,
                    hcp: row.try_get("actor_hcp")?,
                    location: row.try_get("actor_location")?,
                },
                sdm: row.try_get("sdm")?,
                recipient: row.try_get("recipient")?,
                action,
                domains,
                record_ids,
                reason: row.try_get("reason")?,
                outcome: Outcome::parse(&outcome).ok_or_else(|| bad("unknown outcome"))?,
                denial_reason: row.try_get("denial_reason")?,
                consent_id: row.try_get("consent_id")?,
                episode_id: row.try_get("episode_id")?,
                client_addr,
                request_id: row.try_get("request_id")?,
                disclosed: match row.try_get::<Option<Vec<u8>>, _>("disclosed")? {
                    Some(stored) => {
                        Some(Disclosed::from_stored(&stored).map_err(|e| bad(&e.to_string()))?)
                    }
                    None => None,
                },
            };
            Ok(AuditEntry {
                seq: u64::try_from(seq).map_err(|_| bad("negative sequence number"))?,
                entry,
            })
        }
    };
}

define_rows!(
    restore_sqlite,
    read_entries_sqlite,
    read_by_sqlite,
    search_sqlite,
    decode_sqlite,
    read_nodes_sqlite,
    read_tree_sqlite,
    SqliteConnection,
    sqlx::Sqlite
);
define_rows!(
    restore_postgres,
    read_entries_postgres,
    read_by_postgres,
    search_postgres,
    decode_postgres,
    read_nodes_postgres,
    read_tree_postgres,
    PgConnection,
    sqlx::Postgres
);

/// The tree as committed now, if it is not the one of `size` entries: read under the writers'
/// lock, so that the size and the nodes are of one committed log (another process may be
/// appending; issue 28, item 6).
pub(super) async fn latest_postgres(
    conn: &mut PgConnection,
    size: u64,
) -> Result<Option<Frontier>, StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_AUDIT_LOCK)
        .execute(&mut *tx)
        .await?;
    let now: i64 = sqlx::query_scalar(AUDIT_SIZE).fetch_one(&mut *tx).await?;
    let frontier = if u64::try_from(now).ok() == Some(size) {
        None
    } else {
        Some(restore_postgres(&mut tx).await?)
    };
    tx.commit().await?;
    Ok(frontier)
}

/// [`latest_postgres`] on SQLite, where the writer is one process's but a one-off command
/// (`ehrshare office create-admin`) may append beside a server: read in one transaction, a
/// snapshot of one committed log.
pub(super) async fn latest_sqlite(
    conn: &mut SqliteConnection,
    size: u64,
) -> Result<Option<Frontier>, StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    let now: i64 = sqlx::query_scalar(AUDIT_SIZE).fetch_one(&mut *tx).await?;
    let frontier = if u64::try_from(now).ok() == Some(size) {
        None
    } else {
        Some(restore_sqlite(&mut tx).await?)
    };
    tx.commit().await?;
    Ok(frontier)
}

impl Db {
    /// Entries from `from_seq` on, in order, at most `limit`.
    pub async fn audit_entries(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_entries_checked(from_seq, limit)
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    /// As [`Db::audit_entries`], each entry with its sequence number and decoded on its own:
    /// an entry whose stored fields no longer decode is an `Err` at its place (for `audit
    /// verify`, which names it).
    pub async fn audit_entries_checked(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<(u64, Result<AuditEntry, StoreError>)>, StoreError> {
        match self.pool() {
            Pool::Sqlite(pool) => {
                read_entries_sqlite(&mut *pool.acquire().await?, from_seq, limit).await
            }
            Pool::Postgres(pool) => {
                read_entries_postgres(&mut *pool.acquire().await?, from_seq, limit).await
            }
        }
    }

    /// Entries about a recipient or by a provider's users, newest first, before `before`.
    pub async fn audit_entries_by(
        &self,
        filter: AuditFilter,
        narrow: &LogNarrowing,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        match self.pool() {
            Pool::Sqlite(pool) => {
                read_by_sqlite(&mut *pool.acquire().await?, filter, narrow, before, limit).await
            }
            Pool::Postgres(pool) => {
                read_by_postgres(&mut *pool.acquire().await?, filter, narrow, before, limit).await
            }
        }
    }

    /// One provider's users' entries matching `s`: how many in all, and the page asked for.
    pub async fn audit_search(
        &self,
        s: &AuditSearch,
    ) -> Result<(u64, Vec<AuditEntry>), StoreError> {
        match self.pool() {
            Pool::Sqlite(pool) => search_sqlite(&mut *pool.acquire().await?, s).await,
            Pool::Postgres(pool) => search_postgres(&mut *pool.acquire().await?, s).await,
        }
    }

    /// The stored tree nodes with the given in-order indices (those that exist).
    pub async fn audit_nodes(&self, indices: &[u64]) -> Result<BTreeMap<u64, Hash>, StoreError> {
        match self.pool() {
            Pool::Sqlite(pool) => read_nodes_sqlite(&mut *pool.acquire().await?, indices).await,
            Pool::Postgres(pool) => read_nodes_postgres(&mut *pool.acquire().await?, indices).await,
        }
    }

    /// Number of entries stored (one more than the highest sequence number).
    pub async fn audit_size(&self) -> Result<u64, StoreError> {
        let size: i64 = crate::on_pool!(self, pool => {
            sqlx::query_scalar(AUDIT_SIZE)
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(size).unwrap_or(0))
    }

    /// The audit log's bytes on disk, part by part (the entries' table, each of its indexes,
    /// the tree nodes' table with its index), for a benchmark to divide by the entries it
    /// added (ADR 0023). SQLite counts the pages of each b-tree (`dbstat`); PostgreSQL each
    /// relation's main fork and, for a table, its free-space and visibility maps.
    pub async fn audit_bytes(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = match self.pool() {
            Pool::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN \
                 ('audit_entry', 'audit_entry_recipient', 'audit_entry_hcp', 'audit_node') \
                 GROUP BY name ORDER BY name",
                )
                .fetch_all(pool)
                .await?
            }
            Pool::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT c.relname::text, pg_table_size(c.oid) FROM pg_class c \
                 WHERE c.relname IN ('audit_entry', 'audit_node') \
                 UNION ALL SELECT i.relname::text, pg_relation_size(i.oid) \
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                 JOIN pg_class t ON t.oid = x.indrelid \
                 WHERE t.relname IN ('audit_entry', 'audit_node') ORDER BY 1",
                )
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(name, bytes)| (name, u64::try_from(bytes).unwrap_or(0)))
            .collect())
    }

    /// Number of entry rows (differs from [`Db::audit_size`] when rows are missing).
    pub async fn audit_row_count(&self) -> Result<u64, StoreError> {
        let n: i64 = crate::on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_entry").fetch_one(pool).await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// How many entries the stored tree nodes vouch were written (survives the deletion of
    /// entry rows): the end of the highest stored leaf (logs from before ADR 0023 stored every
    /// leaf) or of the highest stored 32-entry subtree (since, every one is stored). Entries
    /// after the last whole 32 are vouched for by the signed checkpoints alone.
    pub async fn audit_leaf_count(&self) -> Result<u64, StoreError> {
        // A leaf's in-order index is 2i; the subtree over [32k, 32k + 32) is 64k + 31.
        let (leaf, block): (Option<i64>, Option<i64>) = crate::on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT MAX(idx) FROM audit_node WHERE idx % 2 = 0), \
                 (SELECT MAX(idx) FROM audit_node WHERE idx % 64 = 31)",
            )
            .fetch_one(pool)
            .await?
        });
        let leaf_end = leaf.map_or(0, |i| i / 2 + 1);
        let block_end = block.map_or(0, |i| (i / 64 + 1) * 32);
        Ok(u64::try_from(leaf_end.max(block_end)).unwrap_or(0))
    }

    /// The hashes of an inclusion or consistency proof described by `plan`: stored nodes, and
    /// the low ones computed from their entries (ADR 0023).
    pub async fn audit_proof(&self, plan: &ProofPlan) -> Result<Vec<Hash>, StoreError> {
        let needed: Vec<u64> = plan.needed().into_iter().collect();
        let nodes = match self.pool() {
            Pool::Sqlite(pool) => read_tree_sqlite(&mut *pool.acquire().await?, &needed).await?,
            Pool::Postgres(pool) => {
                read_tree_postgres(&mut *pool.acquire().await?, &needed).await?
            }
        };
        plan.assemble(&nodes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The leaf tags of entries `[from, to)` (ADR 0023), by sequence number: entries written
    /// before tags were kept have none.
    pub async fn audit_leaf_tags(
        &self,
        from: u64,
        to: u64,
    ) -> Result<BTreeMap<u64, i32>, StoreError> {
        let rows: Vec<(i64, i32)> = crate::on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT seq, leaf_tag FROM audit_entry \
                 WHERE seq >= $1 AND seq < $2 AND leaf_tag IS NOT NULL",
            )
            .bind(to_i64(from))
            .bind(to_i64(to))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(seq, tag)| (u64::try_from(seq).unwrap_or(0), tag))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_address_is_kept_as_bytes_only_when_they_give_the_same_text_back() {
        for (text, bytes) in [
            ("203.0.113.9", Some(4)),
            ("2001:db8::1", Some(16)),
            ("::ffff:192.0.2.1", Some(16)),
            ("2001:DB8::1", None),
            ("203.000.113.9", None),
            ("a proxy said so", None),
        ] {
            let mut e = ehrshare_core::audit::NewAuditEntry::new(
                time::OffsetDateTime::UNIX_EPOCH,
                ehrshare_core::audit::Actor::system(),
                "record.read",
                ehrshare_core::audit::Outcome::Allowed,
            );
            e.client_addr = Some(text.to_owned());
            let (kept, stored) = super::stored_client(&e);
            assert_eq!(stored.as_ref().map(Vec::len), bytes, "{text}");
            match stored {
                Some(b) => {
                    assert_eq!(kept, None);
                    assert_eq!(super::client_text(&b).as_deref(), Some(text));
                }
                None => assert_eq!(kept, Some(text)),
            }
        }
        assert_eq!(super::client_text(&[1, 2, 3]), None);
    }

    #[test]
    fn a_list_of_ids_is_written_as_serde_json_writes_it() {
        for n in [0_u128, 1, 3] {
            let ids: Vec<uuid::Uuid> = (0..n)
                .map(|i| uuid::Uuid::from_u128(u128::MAX / 7 * (i + 1)))
                .collect();
            assert_eq!(super::uuid_list(&ids), serde_json::to_string(&ids).unwrap());
        }
    }
}
