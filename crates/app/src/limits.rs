//! The lengths free text may have (issue 22): one home for every limit, checked by the use
//! cases before anything else (so the API and the portal forms refuse alike), each a 422
//! `too-long` naming the field. Every limit stays below what an audit entry holds
//! (`core::audit::entry`, 2,000 characters of reason), so that no input can make the audit
//! refuse its entry (that was a 500).

use crate::AppError;
use ehrshare_core::field::too_long;

/// A reason stated for an access, an event or an action (`?reason=`, `reason` members).
pub const REASON: usize = 500;
/// A recipient's postal address, and the reference of an SDM's proof of relationship: checked
/// where a registration is parsed, in core.
pub use ehrshare_core::registration::{ADDRESS, RELATIONSHIP_PROOF};
/// Who asked for a disclosure (SPEC 3.11).
pub const REQUESTING_BODY: usize = 200;
/// What a disclosure gave (SPEC 3.11).
pub const DATA_DISCLOSED: usize = 1_000;
/// A search text (`?q=`).
pub const SEARCH: usize = 100;
/// A deposit's `Idempotency-Key` header (visible ASCII).
pub const IDEMPOTENCY_KEY: usize = 200;

/// Refuses (422 `too-long`) a `value` at `field` longer than `max` characters.
pub(crate) fn check(field: &str, value: Option<&str>, max: usize) -> Result<(), AppError> {
    match value.and_then(|v| too_long(field, v, max)) {
        None => Ok(()),
        Some(problem) => Err(AppError::Invalid {
            code: "too-long",
            message: format!("{field}: {}", problem.message),
            fields: vec![problem],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(check("reason", Some(&"醫".repeat(REASON)), REASON).is_ok());
        let e = check("reason", Some(&"a".repeat(REASON + 1)), REASON).unwrap_err();
        assert_eq!(e.code(), "too-long");
        assert!(check("reason", None, REASON).is_ok());
        for max in [REASON, ADDRESS, RELATIONSHIP_PROOF, SEARCH] {
            assert!(max < 2_000, "below the audit entry's reason");
        }
    }
}
