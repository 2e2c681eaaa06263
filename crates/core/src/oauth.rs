//! OAuth 2 rules for clinic systems (SPEC 4.2, 5): SMART-on-FHIR style scopes and PKCE
//! (RFC 7636, S256 only: `plain` gives no protection against a stolen code).

use sha2::{Digest, Sha256};

/// Whose data a scope reaches: the system's own provider (`system/`), or what the logged-in
/// professional may see (`user/`). `patient/` scopes (a patient's own app) are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    System,
    User,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

/// One scope, such as `user/*.read` or `system/Observation.write`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub context: Context,
    /// A FHIR resource type, or `*`.
    pub resource: String,
    pub access: Access,
}

impl Scope {
    /// Parses one scope.
    pub fn parse(s: &str) -> Option<Scope> {
        let (context, rest) = s.split_once('/')?;
        let context = match context {
            "system" => Context::System,
            "user" => Context::User,
            _ => return None,
        };
        let (resource, access) = rest.rsplit_once('.')?;
        let access = match access {
            "read" => Access::Read,
            "write" => Access::Write,
            _ => return None,
        };
        let ok = resource == "*"
            || (!resource.is_empty()
                && resource.len() <= 64
                && resource.starts_with(|c: char| c.is_ascii_uppercase())
                && resource.chars().all(|c| c.is_ascii_alphanumeric()));
        ok.then(|| Scope {
            context,
            resource: resource.to_owned(),
            access,
        })
    }

    /// The scope as text.
    pub fn text(&self) -> String {
        let c = match self.context {
            Context::System => "system",
            Context::User => "user",
        };
        let a = match self.access {
            Access::Read => "read",
            Access::Write => "write",
        };
        format!("{c}/{}.{a}", self.resource)
    }

    /// Whether holding `self` grants `other` (`*` covers every resource type).
    pub fn covers(&self, other: &Scope) -> bool {
        self.context == other.context
            && self.access == other.access
            && (self.resource == "*" || self.resource == other.resource)
    }
}

/// Why a scope request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("unknown scope {0:?}")]
    Unknown(String),
    #[error("scope {0:?} is not granted to this client")]
    NotAllowed(String),
    #[error("scope {0:?} does not fit this grant")]
    WrongContext(String),
    #[error("no scope asked for")]
    Empty,
}

/// Grants the scopes asked for (space-separated), each of which must be of `context` and
/// covered by one of the client's `allowed` scopes. Nothing is granted silently less or more.
pub fn grant(
    requested: &str,
    allowed: &[Scope],
    context: Context,
) -> Result<Vec<Scope>, ScopeError> {
    let mut granted = Vec::new();
    for text in requested.split_ascii_whitespace() {
        let s = Scope::parse(text).ok_or_else(|| ScopeError::Unknown(text.to_owned()))?;
        if s.context != context {
            return Err(ScopeError::WrongContext(text.to_owned()));
        }
        if !allowed.iter().any(|a| a.covers(&s)) {
            return Err(ScopeError::NotAllowed(text.to_owned()));
        }
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    if granted.is_empty() {
        return Err(ScopeError::Empty);
    }
    Ok(granted)
}

/// The S256 challenge of a verifier: BASE64URL(SHA-256(verifier)), unpadded.
pub fn pkce_challenge(verifier: &str) -> String {
    data_encoding::BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()))
}

/// Whether a verifier is well formed (RFC 7636 §4.1: 43 to 128 unreserved characters).
pub fn pkce_verifier_ok(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` answers `challenge` (compared in constant time by the caller is not
/// needed: the challenge is not secret).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    pkce_verifier_ok(verifier) && pkce_challenge(verifier) == challenge
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            pkce_challenge(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_verifier_ok("short"));
        assert!(!pkce_verifier_ok(&"a b".repeat(20)));
    }

    #[test]
    fn scopes_parse_and_cover() {
        let all = Scope::parse("user/*.read").unwrap();
        let obs = Scope::parse("user/Observation.read").unwrap();
        assert!(all.covers(&obs) && !obs.covers(&all));
        assert_eq!(obs.text(), "user/Observation.read");
        for bad in [
            "user/*.delete",
            "patient/*.read",
            "user/observation.read",
            "openid",
            "user/.read",
        ] {
            assert_eq!(Scope::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn grants_only_what_the_client_may_have() {
        let allowed = vec![Scope::parse("system/*.read").unwrap()];
        assert_eq!(
            grant(
                "system/Patient.read system/*.read",
                &allowed,
                Context::System
            )
            .unwrap()
            .len(),
            2
        );
        assert_eq!(
            grant("system/*.write", &allowed, Context::System),
            Err(ScopeError::NotAllowed("system/*.write".into()))
        );
        assert_eq!(
            grant("user/*.read", &allowed, Context::System),
            Err(ScopeError::WrongContext("user/*.read".into()))
        );
        assert_eq!(
            grant("  ", &allowed, Context::System),
            Err(ScopeError::Empty)
        );
        assert_eq!(
            grant("hcp/other", &allowed, Context::System),
            Err(ScopeError::Unknown("hcp/other".into()))
        );
    }
}
