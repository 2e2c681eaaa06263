//! People's names as the system stores and shows them (issue 22): in Unicode normal form C, so
//! that one name typed two ways (`Amélie` precomposed, or `e` and a combining accent) is one
//! name; without control, bidirectional-override or invisible characters, which would make a
//! name show as something other than what it is; and in one script (a Latin name with one
//! Cyrillic letter in it looks like another person's name: a confusable, UTS #39). The
//! skeleton (UTS #39) compares names as they look.

use unicode_normalization::UnicodeNormalization;
use unicode_security::MixedScript;

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name is required")]
    Empty,
    #[error("at most {0} characters")]
    TooLong(usize),
    #[error("control characters are not allowed in a name")]
    Control,
    #[error("bidirectional controls and invisible characters are not allowed in a name")]
    Invisible,
    #[error(
        "a name is written in one script (letters of two alphabets that look alike are not allowed)"
    )]
    MixedScript,
}

impl NameError {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            NameError::Empty => "required",
            NameError::TooLong(_) => "too-long",
            NameError::Control | NameError::Invisible | NameError::MixedScript => "invalid-name",
        }
    }
}

/// Bidirectional formatting characters (UAX #9): they reorder what is shown.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing (zero-width spaces and joiners, soft hyphens, variation
/// selectors, fillers, tags): Unicode's default-ignorable code points.
fn is_invisible(c: char) -> bool {
    use unicode_security::GeneralSecurityProfile;
    use unicode_security::general_security_profile::IdentifierType;
    c.identifier_type() == Some(IdentifierType::Default_Ignorable)
        || matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
}

/// A person's name as stored: trimmed, NFC, at most `max` characters, refused if it holds a
/// control, bidirectional or invisible character, or mixes scripts.
pub fn person_name(input: &str, max: usize) -> Result<String, NameError> {
    let name = display_text(input, max)?;
    if !name.as_str().is_single_script() {
        return Err(NameError::MixedScript);
    }
    Ok(name)
}

/// Other names shown to people (a provider's, a location's): as [`person_name`], but scripts
/// may mix (`Clinic 診所`).
pub fn display_text(input: &str, max: usize) -> Result<String, NameError> {
    let name: String = input.trim().nfc().collect();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > max {
        return Err(NameError::TooLong(max));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    if name.chars().any(|c| is_bidi_control(c) || is_invisible(c)) {
        return Err(NameError::Invisible);
    }
    Ok(name)
}

/// The UTS #39 skeleton: two names with the same skeleton look alike.
pub fn skeleton(name: &str) -> String {
    unicode_security::confusable_detection::skeleton(name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stored_in_nfc_and_compare_as_typed_either_way() {
        let decomposed = "Ame\u{0301}lie CHAN";
        let precomposed = "Am\u{00E9}lie CHAN";
        assert_eq!(person_name(decomposed, 100), Ok(precomposed.to_owned()));
        assert_eq!(person_name(precomposed, 100), Ok(precomposed.to_owned()));
        assert_eq!(person_name("  陳大文 ", 100), Ok("陳大文".to_owned()));
        assert!(person_name("CHAN Tai-man, O'Brien", 100).is_ok());
    }

    #[test]
    fn what_would_show_as_something_else_is_refused() {
        let cases = [
            ("", NameError::Empty),
            ("CHAN\u{202E}namiaT", NameError::Invisible),
            ("CHAN\u{2066}Tai\u{2069}", NameError::Invisible),
            ("CHAN\u{200B}Tai Man", NameError::Invisible),
            ("CHAN\u{200D}Tai", NameError::Invisible),
            ("CHAN\u{00AD}Tai", NameError::Invisible),
            ("陳\u{FE00}大文", NameError::Invisible),
            ("CHAN\u{0007}", NameError::Control),
            // A Cyrillic 'а' in a Latin name.
            ("CH\u{0410}N Tai Man", NameError::MixedScript),
        ];
        for (input, expected) in cases {
            assert_eq!(person_name(input, 100), Err(expected), "{input:?}");
        }
        assert_eq!(
            person_name(&"a".repeat(101), 100),
            Err(NameError::TooLong(100))
        );
    }

    #[test]
    fn look_alike_names_share_a_skeleton() {
        assert_eq!(skeleton("CHAN Tai Man"), skeleton("CH\u{0410}N Tai Man"));
        assert_ne!(skeleton("CHAN Tai Man"), skeleton("CHEN Tai Man"));
    }
}
