//! Stored codes decoded into `ehrshare-core`'s enums at the row decoder, so that nothing above
//! the store compares status or kind text.

use crate::error::StoreError;

/// The value a stored `code` names; a code this build does not know is stored data that
/// contradicts the build ([`StoreError::Corrupt`], naming the column).
pub(crate) fn decode<T>(
    column: &str,
    code: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(code).ok_or_else(|| StoreError::Corrupt(format!("unknown {column} code {code:?}")))
}
