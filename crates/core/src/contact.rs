//! Contact details (SPEC 3.2): phone numbers and e-mail addresses, validated and canonical.

/// Why a phone number is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error(
        "a Hong Kong number is 8 digits starting with 2 to 9, such as 9123 4567 or +852 9123 4567"
    )]
    HongKong,
    #[error("an international number is + and 8 to 15 digits (E.164), such as +44 20 7946 0018")]
    International,
}

/// A phone number in E.164 form (`+85291234567`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses a number as people write it: spaces, hyphens, dots and brackets are ignored; a
    /// number without `+` is a Hong Kong number; `+852` numbers must be Hong Kong numbers.
    pub fn parse(input: &str) -> Result<Phone, PhoneError> {
        let trimmed = input.trim();
        let international = trimmed.starts_with('+');
        let mut digits = String::new();
        for (i, c) in trimmed.char_indices() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => {}
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(if international {
                        PhoneError::International
                    } else {
                        PhoneError::HongKong
                    });
                }
            }
        }
        let local = if international {
            match digits.strip_prefix("852") {
                Some(local) => local.to_owned(),
                None => {
                    let ok = (8..=15).contains(&digits.len()) && !digits.starts_with('0');
                    return if ok {
                        Ok(Phone(format!("+{digits}")))
                    } else {
                        Err(PhoneError::International)
                    };
                }
            }
        } else {
            digits
        };
        let ok = local.len() == 8 && matches!(local.as_bytes()[0], b'2'..=b'9');
        if ok {
            Ok(Phone(format!("+852{local}")))
        } else {
            Err(PhoneError::HongKong)
        }
    }

    /// E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is a Hong Kong mobile number (SMS reaches it): 4 to 9 after +852, except
    /// the 8xx paging and special ranges are left to the gateway to refuse.
    pub fn is_hong_kong_mobile(&self) -> bool {
        self.0
            .strip_prefix("+852")
            .and_then(|l| l.bytes().next())
            .is_some_and(|d| matches!(d, b'4'..=b'9'))
    }
}

/// Why an e-mail address is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an e-mail address is name@domain, such as chan.taiman@example.org")]
pub struct EmailError;

/// An e-mail address (domain lower-cased).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// A pragmatic check: one `@`, a local part and a dotted domain, no spaces or controls,
    /// at most 254 characters. Delivery proves the rest.
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let s = input.trim();
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError);
        }
        let (local, domain) = s.split_once('@').ok_or(EmailError)?;
        let labels_ok = domain.split('.').count() >= 2
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.len() > 64 || local.contains('@') || !labels_ok {
            return Err(EmailError);
        }
        Ok(Email(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        let check = |input: &str, expected: Result<&str, PhoneError>| {
            assert_eq!(
                Phone::parse(input)
                    .as_ref()
                    .map(Phone::as_str)
                    .map_err(|e| *e),
                expected,
                "{input:?}"
            );
        };
        check("9123 4567", Ok("+85291234567"));
        check("+852 9123-4567", Ok("+85291234567"));
        check("(852) 2345 6789", Err(PhoneError::HongKong));
        check("2345 6789", Ok("+85223456789"));
        check("0123 4567", Err(PhoneError::HongKong));
        check("9123 456", Err(PhoneError::HongKong));
        check("+852 1234 5678", Err(PhoneError::HongKong));
        check("+44 20 7946 0018", Ok("+442079460018"));
        check("+86 138 0013 8000", Ok("+8613800138000"));
        check("+1 234", Err(PhoneError::International));
        check("+44 20 7946 0018 ext 2", Err(PhoneError::International));
        check("9123abcd", Err(PhoneError::HongKong));
        assert!(Phone::parse("9123 4567").unwrap().is_hong_kong_mobile());
        assert!(!Phone::parse("2345 6789").unwrap().is_hong_kong_mobile());
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Chan.TaiMan@Example.ORG ").unwrap().as_str(),
            "Chan.TaiMan@example.org"
        );
        assert!(Email::parse("陳大文@例子.香港").is_ok());
        for bad in [
            "",
            "no-at.example.org",
            "a@b",
            "a@@b.org",
            "a b@c.org",
            "@c.org",
            "a@-c.org",
            "a@c..org",
            "a@c\n.org",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError), "{bad:?}");
        }
    }
}
