//! OAuth 2 rules for clinic systems (SPEC 4.2, 5): SMART on FHIR scopes (v2, and v1's
//! spelling) and PKCE (RFC 7636, S256 only: `plain` gives no protection against a stolen
//! code).

use sha2::{Digest, Sha256};

/// Whose data a scope reaches: the system's own provider (`system/`), what the logged-in
/// professional may see (`user/`), or, of that, the one patient the app was launched for
/// (`patient/`, with `launch/patient`; ADR 0015).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    System,
    User,
    Patient,
}

/// The scope that asks for a patient to be chosen at authorization (SMART's standalone
/// launch): the token then reaches that patient only.
pub const LAUNCH_PATIENT: &str = "launch/patient";

/// What an interaction needs of a scope (SMART v2's `c`, `r`, `u`, `d`, `s`). `Write` is any
/// of create, update and delete: what a caller must hold to attempt a write at all, before
/// it is known which one it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Create,
    Read,
    Update,
    Delete,
    Search,
    Write,
}

impl Access {
    /// The permissions of which any one allows it.
    fn any_of(self) -> u8 {
        match self {
            Access::Create => CREATE,
            Access::Read => READ,
            Access::Update => UPDATE,
            Access::Delete => DELETE,
            Access::Search => SEARCH,
            Access::Write => CREATE | UPDATE | DELETE,
        }
    }
}

const CREATE: u8 = 1;
const READ: u8 = 2;
const UPDATE: u8 = 4;
const DELETE: u8 = 8;
const SEARCH: u8 = 16;
/// SMART v2's letters, in the one order they may be written.
const LETTERS: [(char, u8); 5] = [
    ('c', CREATE),
    ('r', READ),
    ('u', UPDATE),
    ('d', DELETE),
    ('s', SEARCH),
];

/// One scope: SMART v2 (`user/Observation.rs`, `system/*.c`) or v1 (`user/*.read`, which is
/// `rs`; `system/*.write`, which is `cud`), kept in the spelling it was asked in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub context: Context,
    /// A FHIR resource type, or `*`.
    pub resource: String,
    /// Bits of `c r u d s`.
    permissions: u8,
    /// Written as v1 (`.read`, `.write`).
    v1: bool,
}

impl Scope {
    /// Parses one scope.
    pub fn parse(s: &str) -> Option<Scope> {
        let (context, rest) = s.split_once('/')?;
        let context = match context {
            "system" => Context::System,
            "user" => Context::User,
            "patient" => Context::Patient,
            _ => return None,
        };
        let (resource, access) = rest.rsplit_once('.')?;
        let (permissions, v1) = match access {
            "read" => (READ | SEARCH, true),
            "write" => (CREATE | UPDATE | DELETE, true),
            letters => (permissions_of(letters)?, false),
        };
        let ok = resource == "*"
            || (!resource.is_empty()
                && resource.len() <= 64
                && resource.starts_with(|c: char| c.is_ascii_uppercase())
                && resource.chars().all(|c| c.is_ascii_alphanumeric()));
        ok.then(|| Scope {
            context,
            resource: resource.to_owned(),
            permissions,
            v1,
        })
    }

    /// The scope as text, in the spelling it was asked in.
    pub fn text(&self) -> String {
        let c = match self.context {
            Context::System => "system",
            Context::User => "user",
            Context::Patient => "patient",
        };
        let p = match (self.v1, self.permissions) {
            (true, p) if p == READ | SEARCH => "read".to_owned(),
            (true, _) => "write".to_owned(),
            (false, p) => LETTERS
                .iter()
                .filter(|(_, bit)| p & bit != 0)
                .map(|(l, _)| *l)
                .collect(),
        };
        format!("{c}/{}.{p}", self.resource)
    }

    /// Whether holding `self` grants `other` (`*` covers every resource type; the
    /// permissions asked must all be held; what a professional may see covers what they may
    /// see of one patient).
    pub fn covers(&self, other: &Scope) -> bool {
        (self.context == other.context
            || (self.context == Context::User && other.context == Context::Patient))
            && (self.resource == "*" || self.resource == other.resource)
            && other.permissions & !self.permissions == 0
    }

    /// Whether `self` allows `access` to `resource_type` in `context`.
    pub fn allows(&self, context: Context, access: Access, resource_type: &str) -> bool {
        self.context == context
            && (self.resource == "*" || self.resource == resource_type)
            && self.permissions & access.any_of() != 0
    }
}

/// `cruds` or any part of it, in that order, each letter once.
fn permissions_of(letters: &str) -> Option<u8> {
    let mut bits = 0u8;
    let mut next = 0;
    for ch in letters.chars() {
        let at = LETTERS[next..].iter().position(|(l, _)| *l == ch)? + next;
        bits |= LETTERS[at].1;
        next = at + 1;
    }
    (bits != 0).then_some(bits)
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
    #[error("patient/ scopes need launch/patient")]
    NoLaunch,
}

/// Grants the scopes asked for (space-separated), each of which must be of one of `contexts`
/// and covered by one of the client's `allowed` scopes; `launch/patient` is taken where
/// `contexts` has `Patient`, and `patient/` scopes need it. Nothing is granted silently less
/// or more. Answers the scopes and whether a patient is to be chosen.
pub fn grant(
    requested: &str,
    allowed: &[Scope],
    contexts: &[Context],
) -> Result<(Vec<Scope>, bool), ScopeError> {
    let mut granted = Vec::new();
    let mut launch = false;
    for text in requested.split_ascii_whitespace() {
        if text == LAUNCH_PATIENT && contexts.contains(&Context::Patient) {
            launch = true;
            continue;
        }
        let s = Scope::parse(text).ok_or_else(|| ScopeError::Unknown(text.to_owned()))?;
        if !contexts.contains(&s.context) {
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
    if !launch && granted.iter().any(|s| s.context == Context::Patient) {
        return Err(ScopeError::NoLaunch);
    }
    Ok((granted, launch))
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
    fn smart_v2_scopes_parse_in_order_and_grant_no_more_than_they_say() {
        let rs = Scope::parse("user/Observation.rs").unwrap();
        assert!(rs.allows(Context::User, Access::Read, "Observation"));
        assert!(rs.allows(Context::User, Access::Search, "Observation"));
        assert!(!rs.allows(Context::User, Access::Write, "Observation"));
        assert!(!rs.allows(Context::User, Access::Read, "Condition"));
        assert!(!rs.allows(Context::System, Access::Read, "Observation"));
        let c = Scope::parse("system/*.c").unwrap();
        assert!(c.allows(Context::System, Access::Create, "Condition"));
        assert!(c.allows(Context::System, Access::Write, "Condition"));
        assert!(!c.allows(Context::System, Access::Update, "Condition"));
        assert!(!c.allows(Context::System, Access::Delete, "Condition"));
        assert_eq!(
            Scope::parse("system/*.cruds").unwrap().text(),
            "system/*.cruds"
        );
        assert_eq!(c.text(), "system/*.c");
        for bad in [
            "user/*.sr",
            "user/*.rr",
            "user/*.",
            "user/*.x",
            "user/*.crudsx",
        ] {
            assert_eq!(Scope::parse(bad), None, "{bad}");
        }
        // v1 is v2's rs and cud.
        let read = Scope::parse("user/*.read").unwrap();
        assert!(read.covers(&rs) && !rs.covers(&read));
        let write = Scope::parse("system/*.write").unwrap();
        assert!(write.covers(&c) && !c.covers(&write));
        assert!(!write.covers(&Scope::parse("system/*.cs").unwrap()));
        assert_eq!(read.text(), "user/*.read");
    }

    #[test]
    fn patient_scopes_need_a_launch_and_a_users_scope_covers_them() {
        let allowed = vec![Scope::parse("user/*.rs").unwrap()];
        let both = [Context::User, Context::Patient];
        let (granted, launch) =
            grant("launch/patient patient/Observation.rs", &allowed, &both).unwrap();
        assert!(launch);
        assert_eq!(granted[0].text(), "patient/Observation.rs");
        assert_eq!(
            grant("patient/*.rs", &allowed, &both),
            Err(ScopeError::NoLaunch)
        );
        assert_eq!(
            grant("launch/patient patient/*.c", &allowed, &both),
            Err(ScopeError::NotAllowed("patient/*.c".into()))
        );
        // A client credentials grant has no launch.
        assert_eq!(
            grant(
                "launch/patient system/*.c",
                &[Scope::parse("system/*.c").unwrap()],
                &[Context::System]
            ),
            Err(ScopeError::Unknown("launch/patient".into()))
        );
        let p = Scope::parse("patient/*.rs").unwrap();
        assert!(p.allows(Context::Patient, Access::Read, "Condition"));
        assert!(!p.allows(Context::User, Access::Read, "Condition"));
    }

    #[test]
    fn scopes_parse_and_cover() {
        let all = Scope::parse("user/*.read").unwrap();
        let obs = Scope::parse("user/Observation.read").unwrap();
        assert!(all.covers(&obs) && !obs.covers(&all));
        assert_eq!(obs.text(), "user/Observation.read");
        for bad in [
            "user/*.delete",
            "group/*.read",
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
                &[Context::System]
            )
            .unwrap()
            .0
            .len(),
            2
        );
        assert_eq!(
            grant("system/*.write", &allowed, &[Context::System]),
            Err(ScopeError::NotAllowed("system/*.write".into()))
        );
        assert_eq!(
            grant("user/*.read", &allowed, &[Context::System]),
            Err(ScopeError::WrongContext("user/*.read".into()))
        );
        assert_eq!(
            grant("  ", &allowed, &[Context::System]),
            Err(ScopeError::Empty)
        );
        assert_eq!(
            grant("hcp/other", &allowed, &[Context::System]),
            Err(ScopeError::Unknown("hcp/other".into()))
        );
    }
}
