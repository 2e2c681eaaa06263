//! The lengths free text may have (issue 22): one home for every limit, checked by the use
//! cases before anything else (so the API and the portal forms refuse alike), each a 422
//! `too-long` naming the field. Every limit stays below what an audit entry holds
//! (`core::audit::entry`, 2,000 characters of reason), so that no input can make the audit
//! refuse its entry (that was a 500).

use crate::AppError;
use crate::error::FieldError;

/// A reason stated for an access, an event or an action (`?reason=`, `reason` members).
pub const REASON: usize = 500;
/// A recipient's postal address.
pub const ADDRESS: usize = 300;
/// The reference of a substitute decision maker's proof of relationship (a certificate
/// number, a court order's reference).
pub const RELATIONSHIP_PROOF: usize = 200;
/// A search text (`?q=`).
pub const SEARCH: usize = 100;
/// A deposit's `Idempotency-Key` header (visible ASCII).
pub const IDEMPOTENCY_KEY: usize = 200;

/// A person's name at `field` (`core::name::person_name`: NFC, no invisible or bidirectional
/// characters, one script), or its problem pushed onto `fields`; `None` when empty and not
/// `required`.
pub(crate) fn person_name(
    fields: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Option<String> {
    checked(
        fields,
        field,
        value,
        required,
        ehrshare_core::name::person_name(value, max),
    )
}

/// Another name shown to people (a provider's, a location's): as [`person_name`], scripts
/// may mix.
pub(crate) fn display_text(
    fields: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Option<String> {
    checked(
        fields,
        field,
        value,
        required,
        ehrshare_core::name::display_text(value, max),
    )
}

fn checked(
    fields: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    required: bool,
    result: Result<String, ehrshare_core::name::NameError>,
) -> Option<String> {
    match result {
        Ok(v) => Some(v),
        Err(ehrshare_core::name::NameError::Empty) if !required && value.trim().is_empty() => None,
        Err(e) => {
            fields.push(FieldError {
                field: field.to_owned(),
                code: e.code(),
                message: e.to_string(),
            });
            None
        }
    }
}

/// The problem of `value` at `field` if it is longer than `max` characters.
pub(crate) fn too_long(field: &str, value: &str, max: usize) -> Option<FieldError> {
    (value.chars().count() > max).then(|| FieldError {
        field: field.to_owned(),
        code: "too-long",
        message: format!("at most {max} characters"),
    })
}

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
