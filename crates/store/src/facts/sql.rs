//! The text of the decision's facts statement and of a summary's records statement, built once
//! per shape and kept (ADR 0013): the covering index walked in its order (ADR 0006), the domains
//! bound as parameters, the lists packed (ADR 0004 for why, `crate::packed`).

use ehrshare_core::domain::Domain;

use crate::db::placeholders;
use crate::packed::{self, Col};
use crate::recipient::RECIPIENT_COLUMNS;

/// The columns of a [`super::ListedRecord`] (table `record`, alias `d`), in the order
/// [`super::listed_record`] reads them by position. On SQLite every one of them is in the index
/// `record_recipient_domain` (migration 0012), so a summary never reads the table: a column
/// added here must be added there, or the plan test fails.
pub(super) const LISTED_COLUMNS: [&str; 8] = [
    "d.record_id",
    "d.domain",
    "d.resource_type",
    "d.source_hcp",
    "d.version",
    "d.body",
    "d.created_at",
    "d.updated_at",
];

/// The facts' statement for `records` record domains on `b`.
pub(super) fn facts_sql(b: crate::Backend, records: usize) -> std::sync::Arc<str> {
    shape("facts", b, records, build_facts_sql)
}

/// A hot statement's text, built once per shape (`kind`, backend, number of domains) and kept:
/// every summary runs these, and building them (long texts, a placeholder per domain) cost a
/// visible part of a read.
pub(super) fn shape(
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

/// Which of a recipient's current records are read with the facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wanted {
    /// Those in `n` domains, bound as the parameters `$2` to `$(n + 1)`.
    In(usize),
    /// All of them: asked for every domain of core's closed list, which every record's
    /// domain is one of (derived at deposit). No domain condition, so SQLite makes one seek
    /// into `record_recipient_domain` and walks it, where a list of every domain made it
    /// build a temporary table of the codes and seek once per domain (ADR 0013).
    Every,
}

impl Wanted {
    /// What `codes` (domain codes) asks for.
    pub(super) fn of(codes: &[String]) -> Wanted {
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
    pub(super) fn bound(self, codes: &[String]) -> &[String] {
        match self {
            Wanted::In(_) => codes,
            Wanted::Every => &[],
        }
    }

    /// The number [`shape`] keeps a statement's text under: the domains, or `usize::MAX`
    /// for every domain (no list has that many).
    pub(super) fn key(self) -> usize {
        match self {
            Wanted::In(n) => n,
            Wanted::Every => usize::MAX,
        }
    }

    pub(super) fn from_key(n: usize) -> Wanted {
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
pub(super) fn records_from(recipient: &str, wanted: Wanted) -> (String, &'static str) {
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
pub(super) fn records_sql(wanted: Wanted) -> std::sync::Arc<str> {
    shape("records", crate::Backend::Sqlite, wanted.key(), |_, n| {
        let (from, order) = records_from("$1", Wanted::from_key(n));
        format!(
            "SELECT {} {from} ORDER BY {order}",
            LISTED_COLUMNS.join(", ")
        )
    })
}

pub(super) fn build_facts_sql(b: crate::Backend, records: usize) -> String {
    format!("SELECT {} {FACTS_FROM}", facts_columns(b, records))
}

/// The facts' columns: the registration's, then the packed lists, the records' last.
fn facts_columns(b: crate::Backend, records: usize) -> String {
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
            Col::Plain("s.email"),
            Col::Plain("s.notify_channel"),
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
            Col::Plain("e.planned_end_at"),
            Col::Plain("e.last_activity_at"),
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
    // Emergency access: every grant (rare; the decision, on the application's clock, finds
    // any in force).
    let emergency = packed::list(
        b,
        &[
            Col::Uuid("g.grant_id"),
            Col::Uuid("g.hcp_id"),
            Col::Uuid("g.account_id"),
            Col::Plain("g.until_at"),
        ],
        "FROM emergency_access g WHERE g.recipient_id = r.recipient_id",
        None,
    );
    // `records` is a [`Wanted::key`], 0 for none.
    let records = if records == 0 {
        "'[]'".to_owned()
    } else {
        records_list(b, "r.recipient_id", Wanted::from_key(records))
    };
    // The recipient's record revision (ADR 0023), in the snapshot the records are read in.
    format!(
        "{RECIPIENT_COLUMNS}, {sdms} AS sdms, {consents} AS consents, \
             {episodes} AS episodes, {restrictions} AS restrictions, \
             {emergency} AS emergency, {records} AS records, \
             (SELECT k.rev FROM record_rev k WHERE k.recipient_id = r.recipient_id) AS record_rev"
    )
}

/// Where the facts' one row comes from: the registration, `$1` the recipient.
const FACTS_FROM: &str = "FROM recipient r WHERE r.recipient_id = $1";

/// PostgreSQL's facts with a summary's records as rows, in one statement (one snapshot): the
/// facts' row first (`part` 0, the record columns null), then a row a record (`part` 1, the
/// facts' columns null), in [`records_from`]'s order. Packing 50 records into one JSON text
/// cost PostgreSQL about 0.4 ms of a read and the reader as much again to unescape (issue
/// 28); as rows, a body goes out as the text it is stored as. `$1` the recipient, then the
/// domains.
pub(super) fn facts_and_records_sql(wanted: Wanted) -> std::sync::Arc<str> {
    shape(
        "facts-and-records",
        crate::Backend::Postgres,
        wanted.key(),
        |b, n| {
            let facts_list = facts_columns(b, 0);
            // The facts' columns: the registration's, then the six lists (records empty) and
            // the revision.
            let facts_columns = RECIPIENT_COLUMNS.split(',').count() + 7;
            let nulls = vec!["NULL"; facts_columns].join(", ");
            let listed_nulls = LISTED_ROW_COLUMNS
                .iter()
                .map(|(_, name, ty)| format!("NULL::{ty} AS {name}"))
                .collect::<Vec<_>>()
                .join(", ");
            let listed = LISTED_ROW_COLUMNS
                .iter()
                .map(|(column, _, _)| *column)
                .collect::<Vec<_>>()
                .join(", ");
            let (from, _) = records_from("$1", Wanted::from_key(n));
            format!(
                "SELECT 0 AS part, {facts_list}, {listed_nulls} {FACTS_FROM} \
                 UNION ALL SELECT 1, {nulls}, {listed} {from} \
                 ORDER BY part, l_domain, l_created_at, l_record_id"
            )
        },
    )
}

/// [`LISTED_COLUMNS`] as [`facts_and_records_sql`] names and types them.
pub(super) const LISTED_ROW_COLUMNS: [(&str, &str, &str); 8] = [
    ("d.record_id", "l_record_id", "uuid"),
    ("d.domain", "l_domain", "text"),
    ("d.resource_type", "l_resource_type", "text"),
    ("d.source_hcp", "l_source_hcp", "uuid"),
    ("d.version", "l_version", "bigint"),
    ("d.body", "l_body", "text"),
    ("d.created_at", "l_created_at", "timestamptz"),
    ("d.updated_at", "l_updated_at", "timestamptz"),
];

/// The packed list of [`records_from`].
pub(super) fn records_list(backend: crate::Backend, recipient: &str, wanted: Wanted) -> String {
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
