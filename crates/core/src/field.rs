//! Problems with single fields of what people and clients enter, and the checks every kind of
//! input shares (names, lengths). A value is parsed once where it enters and carried as its
//! checked type afterwards; the problems are collected so that one answer names every field
//! that is wrong.

use crate::name::{NameError, display_text as check_display_text, person_name as check_name};

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path in the request (JSON pointer style for JSON bodies, `name` for forms).
    pub field: String,
    /// A stable code for what is wrong with it.
    pub code: &'static str,
    /// A human-readable explanation (English; portals translate by code).
    pub message: String,
}

impl FieldError {
    /// The problem `code` at `field`.
    pub fn new(field: &str, code: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
}

/// A person's name at `field` ([`crate::name::person_name`]: NFC, no invisible or
/// bidirectional characters, one script), or its problem pushed onto `fields`; `None` when
/// empty and not `required`.
pub fn person_name(
    fields: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Option<String> {
    checked(fields, field, value, required, check_name(value, max))
}

/// Another name shown to people (a provider's, a location's): as [`person_name`], but scripts
/// may mix.
pub fn display_text(
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
        check_display_text(value, max),
    )
}

fn checked(
    fields: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    required: bool,
    result: Result<String, NameError>,
) -> Option<String> {
    match result {
        Ok(v) => Some(v),
        Err(NameError::Empty) if !required && value.trim().is_empty() => None,
        Err(e) => {
            fields.push(FieldError::new(field, e.code(), e.to_string()));
            None
        }
    }
}

/// The problem of `value` at `field` if it is longer than `max` characters (characters, not
/// bytes: 醫 counts one).
pub fn too_long(field: &str, value: &str, max: usize) -> Option<FieldError> {
    (value.chars().count() > max)
        .then(|| FieldError::new(field, "too-long", format!("at most {max} characters")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_push_their_problem_and_optional_blanks_pass() {
        let mut f = Vec::new();
        assert_eq!(
            person_name(&mut f, "/n", " Chan Tai Man ", 100, true).as_deref(),
            Some("Chan Tai Man")
        );
        assert_eq!(person_name(&mut f, "/n", "  ", 100, false), None);
        assert!(f.is_empty());
        assert_eq!(person_name(&mut f, "/n", "", 100, true), None);
        assert_eq!(
            person_name(&mut f, "/m", "Pаul", 100, true),
            None,
            "Cyrillic а"
        );
        assert_eq!(
            display_text(&mut f, "/d", "Clinic 診所", 100, true).as_deref(),
            Some("Clinic 診所")
        );
        let codes: Vec<_> = f.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(codes, [("/n", "required"), ("/m", "invalid-name")]);
    }

    #[test]
    fn lengths_count_characters() {
        assert_eq!(too_long("/a", &"醫".repeat(3), 3), None);
        assert_eq!(too_long("/a", "abcd", 3).map(|e| e.code), Some("too-long"));
    }
}
