//! Identity documents (SPEC 3.1): the Hong Kong identity card number (HKID) with its check
//! digit, and other documents (passport, Macao ID, mainland travel permit, birth certificate)
//! identified by type, issuing place and number.
//!
//! Numbers are stored canonical: upper case, no spaces, brackets or hyphens (`A1234563`), so
//! that one person's document is one value whatever way it was typed.
//!
//! A limit of the HKID scheme, not of this code: the check digit is a weighted sum modulo 11,
//! so it catches every change of one digit, of the check digit, and of most letters, but not a
//! letter replaced by one whose value differs by 11 (A/L/W, B/M/X, C/N/Y, D/O/Z, E/P, F/Q,
//! G/R, H/S, I/T, J/U, K/V). Such a typo yields another valid HKID; the duplicate-document rule
//! and identity verification, not the check digit, stand in its way.

use std::fmt;

/// Why an HKID is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HkidError {
    #[error("an HKID is one or two letters, six digits and a check digit, such as A123456(3)")]
    Format,
    #[error("the check digit does not match the rest of the HKID")]
    CheckDigit,
}

/// A valid HKID, canonical (`A1234563`, `AB9876543`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hkid(String);

/// The value of an HKID character in the check-digit sum: digits are themselves, letters
/// A=10 ... Z=35, the space standing for a missing first letter 36.
fn value(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'Z' => u32::from(c - b'A') + 10,
        _ => 36,
    }
}

/// The check digit of the eight characters before it (a leading space for one-letter HKIDs).
fn check_digit(body: &[u8; 8]) -> u8 {
    let sum: u32 = body
        .iter()
        .zip((2..=9).rev())
        .map(|(c, w)| value(*c) * w)
        .sum();
    match (11 - sum % 11) % 11 {
        10 => b'A',
        d => b'0' + d as u8,
    }
}

impl Hkid {
    /// Parses an HKID as people type it: any case, with or without brackets around the check
    /// digit, spaces or hyphens (`a123456(3)`, `A 123456 3`, `A123456-3`).
    pub fn parse(input: &str) -> Result<Hkid, HkidError> {
        let mut chars: Vec<u8> = Vec::with_capacity(9);
        let trimmed = input.trim();
        let mut bracket_open = false;
        let mut opened_at = 0;
        for (i, c) in trimmed.char_indices() {
            match c {
                ' ' | '-' => {}
                '(' if !bracket_open => {
                    bracket_open = true;
                    opened_at = chars.len();
                }
                // Brackets hold the check digit only, and close the number.
                ')' if bracket_open && i == trimmed.len() - 1 && chars.len() == opened_at + 1 => {
                    bracket_open = false
                }
                c if c.is_ascii_alphanumeric() => chars.push(c.to_ascii_uppercase() as u8),
                _ => return Err(HkidError::Format),
            }
        }
        if bracket_open || !(8..=9).contains(&chars.len()) {
            return Err(HkidError::Format);
        }
        let letters = chars.len() - 7;
        let (prefix, rest) = chars.split_at(letters);
        let (digits, check) = rest.split_at(6);
        let well_formed = prefix.iter().all(u8::is_ascii_uppercase)
            && digits.iter().all(u8::is_ascii_digit)
            && (check[0].is_ascii_digit() || check[0] == b'A');
        if !well_formed {
            return Err(HkidError::Format);
        }
        let mut body = [b' '; 8];
        body[2 - letters..2].copy_from_slice(prefix);
        body[2..].copy_from_slice(digits);
        if check_digit(&body) != check[0] {
            return Err(HkidError::CheckDigit);
        }
        // Everything pushed is ASCII.
        Ok(Hkid(chars.iter().map(|&b| b as char).collect()))
    }

    /// The HKID with `letters` (one or two upper-case letters) and `digits` (below 1,000,000),
    /// its check digit computed: for making valid numbers (demo data, tests).
    pub fn from_parts(letters: &str, digits: u32) -> Option<Hkid> {
        let letters = letters.as_bytes();
        if !(1..=2).contains(&letters.len())
            || !letters.iter().all(u8::is_ascii_uppercase)
            || digits >= 1_000_000
        {
            return None;
        }
        let mut body = [b' '; 8];
        body[2 - letters.len()..2].copy_from_slice(letters);
        body[2..].copy_from_slice(format!("{digits:06}").as_bytes());
        let mut id: String = body
            .iter()
            .filter(|&&b| b != b' ')
            .map(|&b| b as char)
            .collect();
        id.push(check_digit(&body) as char);
        Some(Hkid(id))
    }

    /// The canonical form, as stored: `A1234563`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form printed on the card: `A123456(3)`.
    pub fn display(&self) -> String {
        let (body, check) = self.0.split_at(self.0.len() - 1);
        format!("{body}({check})")
    }
}

impl fmt::Display for Hkid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

crate::coded_enum! {
    /// The kinds of identity document a recipient may register with.
    pub enum DocumentType {
        /// Hong Kong identity card.
        Hkid = "hkid";
        /// Hong Kong birth certificate (its number has the HKID form).
        HkBirthCertificate = "hk-birth-certificate";
        Passport = "passport";
        /// Macao resident identity card.
        MacaoId = "macao-id";
        /// Mainland travel permit for Hong Kong and Macao residents / exit-entry permit.
        MainlandTravelPermit = "mainland-travel-permit";
        /// Any other document the office accepts.
        Other = "other";
    }
}

/// Why a document is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Hkid(#[from] HkidError),
    #[error(
        "the issuing place must be an ISO 3166 code of two or three letters (HK, MO, CN, GBR, ...)"
    )]
    Issuer,
    #[error("this document's issuing place must be {0}")]
    WrongIssuer(&'static str),
    #[error("the document number must be 5 to 20 letters and digits")]
    Number,
    #[error("a Macao ID number is 8 digits starting with 1, 5 or 7, such as 1/234567/8")]
    MacaoNumber,
    #[error("a mainland travel permit number is H or M and 8 or 10 digits, or C and 8 characters")]
    PermitNumber,
}

/// A validated identity document: type, issuing place, canonical number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Document {
    pub kind: DocumentType,
    /// Upper-case ISO 3166 alpha-2 or alpha-3 code.
    pub issuer: String,
    /// Canonical number.
    pub number: String,
}

fn squeeze(input: &str) -> String {
    input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '/' | '(' | ')'))
        .flat_map(char::to_uppercase)
        .collect()
}

impl Document {
    /// Validates a document as entered. HKIDs and birth certificates are issued by HK, Macao IDs
    /// by MO, mainland travel permits by CN.
    pub fn parse(
        kind: DocumentType,
        issuer: &str,
        number: &str,
    ) -> Result<Document, DocumentError> {
        let issuer = issuer.trim().to_ascii_uppercase();
        if !(2..=3).contains(&issuer.len()) || !issuer.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(DocumentError::Issuer);
        }
        let fixed = match kind {
            DocumentType::Hkid | DocumentType::HkBirthCertificate => Some("HK"),
            DocumentType::MacaoId => Some("MO"),
            DocumentType::MainlandTravelPermit => Some("CN"),
            DocumentType::Passport | DocumentType::Other => None,
        };
        if let Some(expected) = fixed
            && issuer != expected
        {
            return Err(DocumentError::WrongIssuer(expected));
        }
        let number = match kind {
            DocumentType::Hkid | DocumentType::HkBirthCertificate => {
                Hkid::parse(number)?.as_str().to_owned()
            }
            DocumentType::MacaoId => {
                let n = squeeze(number);
                let ok = n.len() == 8
                    && n.chars().all(|c| c.is_ascii_digit())
                    && matches!(n.as_bytes()[0], b'1' | b'5' | b'7');
                if !ok {
                    return Err(DocumentError::MacaoNumber);
                }
                n
            }
            DocumentType::MainlandTravelPermit => {
                let n = squeeze(number);
                let (head, tail) = n.split_at(n.len().min(1));
                let ok = match head {
                    "H" | "M" => {
                        matches!(tail.len(), 8 | 10) && tail.chars().all(|c| c.is_ascii_digit())
                    }
                    "C" => tail.len() == 8 && tail.chars().all(|c| c.is_ascii_alphanumeric()),
                    _ => false,
                };
                if !ok {
                    return Err(DocumentError::PermitNumber);
                }
                n
            }
            DocumentType::Passport | DocumentType::Other => {
                let n = squeeze(number);
                if !(5..=20).contains(&n.len()) || !n.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(DocumentError::Number);
                }
                n
            }
        };
        Ok(Document {
            kind,
            issuer,
            number,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_example_of_the_specification() {
        assert_eq!(Hkid::parse("A123456(3)").unwrap().as_str(), "A1234563");
        assert_eq!(Hkid::parse("A123456(4)"), Err(HkidError::CheckDigit));
        assert_eq!(Hkid::parse("A123456(3)").unwrap().display(), "A123456(3)");
    }

    #[test]
    fn formats_people_type() {
        for input in [
            "A123456(3)",
            "a123456(3)",
            "A1234563",
            " A 123456 3 ",
            "A123456-3",
            "A123456 (3)",
        ] {
            assert_eq!(
                Hkid::parse(input).map(|h| h.0),
                Ok("A1234563".to_owned()),
                "{input:?}"
            );
        }
        for input in [
            "",
            "A12345(3)",
            "A1234567(3)",
            "ABC123456(3)",
            "1123456(3)",
            "A123456(B)",
            "A123456((3))",
            "A123456(3",
            "A12(3456)3",
            "A1234(563)",
            "A123456()3",
            "A123456(3)x",
            "Ａ123456(3)",
            "A123456?3",
        ] {
            assert_eq!(Hkid::parse(input), Err(HkidError::Format), "{input:?}");
        }
    }

    #[test]
    fn check_digit_a_and_two_letter_prefixes() {
        // Found by the algorithm of SPEC 3.1 and checked by hand.
        let body = *b"XA000000";
        let c = check_digit(&body);
        let id = format!("XA000000{}", c as char);
        assert_eq!(Hkid::parse(&id).unwrap().as_str(), id);
        // A check digit of 10 is written A.
        let with_a = (0..1_000_000u32)
            .map(|n| format!(" A{n:06}"))
            .find(|b| check_digit(b.as_bytes().try_into().unwrap()) == b'A')
            .unwrap();
        let id = format!("{}A", with_a.trim());
        assert!(Hkid::parse(&id).is_ok(), "{id}");
        assert!(
            Hkid::parse(&id.to_lowercase()).is_ok(),
            "{id} in lower case"
        );
    }

    fn any_hkid() -> impl Strategy<Value = String> {
        (
            proptest::option::of(b'A'..=b'Z'),
            b'A'..=b'Z',
            proptest::collection::vec(b'0'..=b'9', 6),
        )
            .prop_map(|(first, second, digits)| {
                let mut body = [b' '; 8];
                body[0] = first.unwrap_or(b' ');
                body[1] = second;
                body[2..].copy_from_slice(&digits);
                let check = check_digit(&body);
                let mut s: String = body
                    .iter()
                    .filter(|&&b| b != b' ')
                    .map(|&b| b as char)
                    .collect();
                s.push(check as char);
                s
            })
    }

    proptest! {
        #[test]
        fn every_hkid_with_a_correct_check_digit_is_accepted(id in any_hkid()) {
            prop_assert_eq!(Hkid::parse(&id).unwrap().0, id);
        }

        #[test]
        fn formatting_variants_canonicalise_to_one_value(id in any_hkid(), spaces in any::<bool>(), lower in any::<bool>()) {
            let (body, check) = id.split_at(id.len() - 1);
            let mut typed = if spaces { format!(" {body} ({check}) ") } else { format!("{body}({check})") };
            if lower { typed = typed.to_lowercase(); }
            prop_assert_eq!(Hkid::parse(&typed).unwrap().0, id);
        }

        #[test]
        fn every_single_character_change_is_rejected(id in any_hkid(), pos in 0usize..9, to in prop_oneof![b'0'..=b'9', b'A'..=b'Z']) {
            let mut bytes = id.clone().into_bytes();
            let pos = pos % bytes.len();
            prop_assume!(bytes[pos] != to);
            // The documented limit: a letter among the first characters replaced by a letter
            // whose value differs by 11 keeps the weighted sum modulo 11.
            let both_letters = bytes[pos].is_ascii_uppercase() && to.is_ascii_uppercase();
            let is_prefix = pos < bytes.len() - 7;
            prop_assume!(!(both_letters && is_prefix && value(bytes[pos]).abs_diff(value(to)).is_multiple_of(11)));
            bytes[pos] = to;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(Hkid::parse(&changed).is_err(), "{} -> {} accepted", id, changed);
        }
    }

    #[test]
    fn makes_valid_numbers_from_parts() {
        assert_eq!(Hkid::from_parts("A", 123456).unwrap().as_str(), "A1234563");
        let two = Hkid::from_parts("XA", 7).unwrap();
        assert_eq!(Hkid::parse(two.as_str()).unwrap(), two);
        assert_eq!(Hkid::from_parts("a", 1), None);
        assert_eq!(Hkid::from_parts("ABC", 1), None);
        assert_eq!(Hkid::from_parts("A", 1_000_000), None);
    }

    #[test]
    fn the_documented_limit_of_the_check_digit() {
        // A -> L: 10 -> 21, a difference of 11. Both are valid HKIDs.
        assert!(Hkid::parse("A1234563").is_ok());
        assert!(Hkid::parse("L1234563").is_ok());
    }

    #[test]
    fn other_documents() {
        let check = |kind, issuer: &str, number: &str, expected: Result<&str, DocumentError>| {
            let got = Document::parse(kind, issuer, number).map(|d| d.number);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                expected,
                "{kind:?} {issuer} {number}"
            );
        };
        check(DocumentType::Hkid, "hk", "a123456(3)", Ok("A1234563"));
        check(
            DocumentType::Hkid,
            "CN",
            "A123456(3)",
            Err(DocumentError::WrongIssuer("HK")),
        );
        check(
            DocumentType::HkBirthCertificate,
            "HK",
            "A123456(4)",
            Err(DocumentError::Hkid(HkidError::CheckDigit)),
        );
        check(DocumentType::MacaoId, "MO", "1/234567/8", Ok("12345678"));
        check(
            DocumentType::MacaoId,
            "MO",
            "2/234567/8",
            Err(DocumentError::MacaoNumber),
        );
        check(
            DocumentType::MainlandTravelPermit,
            "CN",
            "h12345678",
            Ok("H12345678"),
        );
        check(
            DocumentType::MainlandTravelPermit,
            "CN",
            "H1234567890",
            Ok("H1234567890"),
        );
        check(
            DocumentType::MainlandTravelPermit,
            "CN",
            "X12345678",
            Err(DocumentError::PermitNumber),
        );
        check(
            DocumentType::Passport,
            "gbr",
            "123 456-789",
            Ok("123456789"),
        );
        check(
            DocumentType::Passport,
            "GB1",
            "123456789",
            Err(DocumentError::Issuer),
        );
        check(
            DocumentType::Passport,
            "GB",
            "12'34",
            Err(DocumentError::Number),
        );
        check(
            DocumentType::Passport,
            "",
            "123456",
            Err(DocumentError::Issuer),
        );
        for d in DocumentType::ALL {
            assert_eq!(DocumentType::parse(d.code()), Some(d));
        }
    }
}
