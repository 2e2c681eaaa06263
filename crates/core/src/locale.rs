//! The languages ehrshare speaks to people: Traditional Chinese (Hong Kong) and English.
//! A recipient's preferred language (SPEC 3.2) and every portal page use these.

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Locale {
    #[default]
    En,
    ZhHk,
}

impl Locale {
    /// All supported languages.
    pub const ALL: [Locale; 2] = [Locale::ZhHk, Locale::En];

    /// BCP 47 tag: `en` or `zh-HK`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhHk => "zh-HK",
        }
    }

    /// Parses a tag as people and browsers write it (`zh-HK`, `zh-hk`, `zh_Hant_HK`, `en-GB`).
    pub fn parse(tag: &str) -> Option<Locale> {
        let lower = tag.trim().to_ascii_lowercase().replace('_', "-");
        if lower == "zh" || lower.starts_with("zh-") {
            Some(Locale::ZhHk)
        } else if lower == "en" || lower.starts_with("en-") {
            Some(Locale::En)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_language_tags() {
        let check =
            |tag: &str, expected: Option<Locale>| assert_eq!(Locale::parse(tag), expected, "{tag}");
        check("zh-HK", Some(Locale::ZhHk));
        check("zh_Hant_HK", Some(Locale::ZhHk));
        check("zh", Some(Locale::ZhHk));
        check("en-GB", Some(Locale::En));
        check("EN", Some(Locale::En));
        check("fr", None);
        check("", None);
        for l in Locale::ALL {
            assert_eq!(Locale::parse(l.tag()), Some(l));
        }
    }
}
