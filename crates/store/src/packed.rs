//! Lists packed into one row as JSON, for the hot read paths.
//!
//! Why: sqlx runs each SQLite connection on a worker thread and hands every statement and
//! every row back through a channel, waking a thread each time. An eHR summary read the
//! recipient, the SDMs, consents, episodes, restrictions and their unlocks, then 50 records:
//! six statements and some sixty hand-overs. Packed, the facts are one statement and one row,
//! the records another (ADR 0013 has the figures). The same SQL shape serves
//! PostgreSQL (`json_agg`), so both backends decode through this one module. (SQLite's hot
//! reads now run in place, `crate::in_place`, with no hand-over to save: there the facts' small
//! lists stay packed and the records are read as rows. On PostgreSQL too a summary's records
//! now come as rows of the facts' own statement, `facts::sql::facts_and_records_sql`: packing
//! 50 bodies into JSON cost the server and the reader more than the rows do.)
//!
//! Only the encoding differs by backend: SQLite keeps UUIDs as blobs (no JSON form; sent as
//! hex), booleans as integers; PostgreSQL sends UUIDs hyphenated and timestamps in RFC 3339,
//! which is also how SQLite stores them. [`uuid`] and [`ts`] read either.

use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Backend;
use crate::error::StoreError;

/// A column of a packed list, by how it is encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Col<'a> {
    /// Text, numbers and timestamps: as they are.
    Plain(&'a str),
    /// A UUID (possibly NULL).
    Uuid(&'a str),
    /// A boolean.
    Bool(&'a str),
    /// An already packed list (a nested [`list`]).
    List(&'a str),
}

/// A scalar subquery giving the rows of `from` (`FROM ... WHERE ...`, correlated as the caller
/// likes) as a JSON array of arrays of `cols`, in `order` (`ORDER BY` terms; `None`: as
/// found, for a caller that sorts them itself); `[]` when there are none.
pub(crate) fn list(backend: Backend, cols: &[Col<'_>], from: &str, order: Option<&str>) -> String {
    let items: Vec<String> = cols
        .iter()
        .map(|c| match (backend, c) {
            (_, Col::Plain(c)) => (*c).to_owned(),
            (Backend::Sqlite, Col::Uuid(c)) => format!("iif({c} IS NULL, NULL, hex({c}))"),
            (Backend::Sqlite, Col::Bool(c)) => format!("json(iif({c}, 'true', 'false'))"),
            (Backend::Sqlite, Col::List(c)) => format!("json({c})"),
            (Backend::Postgres, Col::Uuid(c) | Col::Bool(c)) => (*c).to_owned(),
            (Backend::Postgres, Col::List(c)) => format!("({c})::json"),
        })
        .collect();
    let items = items.join(", ");
    let order = order.map(|o| format!(" ORDER BY {o}")).unwrap_or_default();
    match backend {
        Backend::Sqlite => {
            format!("(SELECT json_group_array(json_array({items}){order}) {from})")
        }
        Backend::Postgres => format!(
            "(SELECT coalesce(json_agg(json_build_array({items}){order}), '[]'::json)::text {from})"
        ),
    }
}

/// Decodes a packed list into rows of type `T` (tuples, in the order of the columns).
pub(crate) fn decode<T: DeserializeOwned>(what: &str, text: &str) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what} packed: {e}")))
}

/// A UUID as packed by either backend.
pub(crate) fn uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("packed uuid {s:?}: {e}")))
}

/// A nullable UUID as packed.
pub(crate) fn opt_uuid(s: Option<&str>) -> Result<Option<Uuid>, StoreError> {
    s.map(uuid).transpose()
}

/// A timestamp as packed (RFC 3339 from either backend).
pub(crate) fn ts(s: &str) -> Result<OffsetDateTime, StoreError> {
    crate::timestamp::Ts::parse(s)
        .map(|t| t.0)
        .map_err(|e| StoreError::Corrupt(format!("packed time {s:?}: {e}")))
}

/// A nullable timestamp as packed.
pub(crate) fn opt_ts(s: Option<&str>) -> Result<Option<OffsetDateTime>, StoreError> {
    s.map(ts).transpose()
}
