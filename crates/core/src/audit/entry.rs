//! An audit entry (SPEC 3.9) and its canonical bytes.
//!
//! The canonical encoding is what the Merkle tree hashes, so it is fixed forever for a given
//! version byte: fields in a fixed order, strings and lists length-prefixed, absent values
//! marked, integers big-endian, time as microseconds since the Unix epoch (the precision both
//! backends store exactly). The sequence number is part of the bytes, so an entry moved to
//! another position no longer matches its leaf.

use time::OffsetDateTime;
use uuid::Uuid;

use super::disclosed::Disclosed;

crate::coded_enum! {
    /// Who acted.
    pub enum ActorKind {
        /// A user of a healthcare provider (professional, registration staff, user administrator).
        HcpUser = "hcp-user";
        /// A clinic system acting through the API on its provider's behalf.
        ClinicSystem = "clinic-system";
        /// The healthcare recipient themself.
        Recipient = "recipient";
        /// A substitute decision maker acting for a recipient.
        Sdm = "sdm";
        /// eHR Office staff.
        Office = "office";
        /// The system itself (scheduled work, start-up, command line).
        System = "system";
        /// Someone not logged in (the public directory, a failed login).
        Anonymous = "anonymous";
    }
}

/// The actor of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The account (user, recipient, office staff, client) that acted, if any.
    pub account: Option<Uuid>,
    /// The account's role at the time (e.g. `doctor`, `pharmacist`, `registration-staff`).
    pub role: Option<String>,
    /// The healthcare provider the account belongs to.
    pub hcp: Option<Uuid>,
    /// The service location the account acted from.
    pub location: Option<Uuid>,
}

impl Actor {
    /// The system itself.
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            account: None,
            role: None,
            hcp: None,
            location: None,
        }
    }
}

crate::coded_enum! {
    /// What came of the action.
    pub enum Outcome {
        /// Allowed and done.
        Allowed = "allowed";
        /// Refused by a rule; `denial_reason` says which.
        Denied = "denied";
        /// Allowed, but failed for another reason (invalid input, conflict).
        Failed = "failed";
    }
}

/// An entry before the log gives it its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// When it happened (UTC; kept to the microsecond).
    pub at: OffsetDateTime,
    pub actor: Actor,
    /// The substitute decision maker acting for the recipient, if one is.
    pub sdm: Option<Uuid>,
    /// The recipient whose record or registration this is about.
    pub recipient: Option<Uuid>,
    /// What was done: a stable dotted code such as `record.read` or `consent.give`.
    pub action: String,
    /// The data domains read or written.
    pub domains: Vec<String>,
    /// The records read or written.
    pub record_ids: Vec<Uuid>,
    /// The reason the actor stated, if any.
    pub reason: Option<String>,
    pub outcome: Outcome,
    /// Why it was denied (a stable code such as `consent-required`); only with `Denied`.
    pub denial_reason: Option<String>,
    /// The sharing consent that allowed it.
    pub consent_id: Option<Uuid>,
    /// The care episode that allowed it.
    pub episode_id: Option<Uuid>,
    /// The client's network address.
    pub client_addr: Option<String>,
    /// The request that did it.
    pub request_id: Option<Uuid>,
    /// What content a read released (records and versions; ADR 0023). An entry with one is
    /// encoded as version 2; without, as version 1, unchanged.
    pub disclosed: Option<Disclosed>,
}

/// An entry as stored: with its position in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the log, from 0, without gaps.
    pub seq: u64,
    pub entry: NewAuditEntry,
}

/// Why an entry is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("action {0:?} is not a dotted lower-case code such as record.read")]
    BadAction(String),
    #[error("{field} is too long ({len} > {max})")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("a denied entry needs a denial reason, and only a denied entry may have one")]
    DenialReasonMismatch,
    #[error("a disclosed version names exactly one record")]
    DisclosedVersionOfOne,
}

/// Longest stated reason, in characters.
pub const MAX_REASON_CHARS: usize = 2000;
/// Most domains or record ids in one entry.
pub const MAX_ITEMS: usize = 10_000;
/// Longest subset of a disclosed set, in bytes (a bit a candidate record; the stored form
/// counts it in two bytes).
pub const MAX_SUBSET_BYTES: usize = 8192;
/// Longest short text field (role, action, domain, code, address).
pub const MAX_CODE_CHARS: usize = 200;

impl NewAuditEntry {
    /// An entry with only the required fields set; the rest start empty.
    pub fn new(at: OffsetDateTime, actor: Actor, action: &str, outcome: Outcome) -> NewAuditEntry {
        NewAuditEntry {
            at: truncate_to_micros(at),
            actor,
            sdm: None,
            recipient: None,
            action: action.to_owned(),
            domains: Vec::new(),
            record_ids: Vec::new(),
            reason: None,
            outcome,
            denial_reason: None,
            consent_id: None,
            episode_id: None,
            client_addr: None,
            request_id: None,
            disclosed: None,
        }
    }

    /// Checks the entry's shape; the time is normalised to UTC microseconds.
    pub fn validated(mut self) -> Result<NewAuditEntry, EntryError> {
        self.at = truncate_to_micros(self.at);
        let a = &self.action;
        let well_formed = !a.is_empty()
            && a.len() <= MAX_CODE_CHARS
            && a.split('.').all(|part| {
                part.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !well_formed {
            return Err(EntryError::BadAction(a.clone()));
        }
        let check = |field: &'static str, len: usize, max: usize| {
            if len > max {
                Err(EntryError::TooLong { field, len, max })
            } else {
                Ok(())
            }
        };
        if let Some(r) = &self.reason {
            check("reason", r.chars().count(), MAX_REASON_CHARS)?;
        }
        for (field, value) in [
            ("role", &self.actor.role),
            ("denial_reason", &self.denial_reason),
            ("client_addr", &self.client_addr),
        ] {
            if let Some(v) = value {
                check(field, v.chars().count(), MAX_CODE_CHARS)?;
            }
        }
        check("domains", self.domains.len(), MAX_ITEMS)?;
        check("record_ids", self.record_ids.len(), MAX_ITEMS)?;
        for d in &self.domains {
            check("domain", d.chars().count(), MAX_CODE_CHARS)?;
        }
        if (self.outcome == Outcome::Denied) != self.denial_reason.is_some() {
            return Err(EntryError::DenialReasonMismatch);
        }
        self.disclosed = match self.disclosed.take() {
            Some(Disclosed::Version { .. }) if self.record_ids.len() != 1 => {
                return Err(EntryError::DisclosedVersionOfOne);
            }
            Some(Disclosed::Set(set)) => {
                // The form a decoding gives, so that the leaf written is the leaf verified.
                let set = set.normalised();
                check("subset", set.subset.len(), MAX_SUBSET_BYTES)?;
                Some(Disclosed::Set(set))
            }
            other => other,
        };
        Ok(self)
    }

    /// The entry at position `seq`.
    pub fn at_seq(self, seq: u64) -> AuditEntry {
        AuditEntry { seq, entry: self }
    }
}

/// Drops sub-microsecond precision and converts to UTC, so that what is hashed is exactly what
/// both backends store.
pub fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let utc = at.to_offset(time::UtcOffset::UTC);
    let nanos = utc.nanosecond();
    utc.replace_nanosecond(nanos - nanos % 1000).unwrap_or(utc)
}

/// Version of the canonical encoding of an entry without [`NewAuditEntry::disclosed`]: frozen.
pub const ENCODING_VERSION: u8 = 1;
/// Version of the canonical encoding of an entry with [`NewAuditEntry::disclosed`]: version
/// 1's fields, then the disclosure (ADR 0023).
pub const ENCODING_VERSION_DISCLOSED: u8 = 2;

struct Writer(Vec<u8>);

impl Writer {
    fn str(&mut self, s: &str) {
        self.0.extend_from_slice(&(s.len() as u32).to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: &Option<String>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }
    fn opt_uuid(&mut self, u: &Option<Uuid>) {
        match u {
            None => self.0.push(0),
            Some(u) => {
                self.0.push(1);
                self.0.extend_from_slice(u.as_bytes());
            }
        }
    }
}

impl AuditEntry {
    /// The canonical bytes that the Merkle tree hashes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let e = &self.entry;
        let mut w = Writer(Vec::with_capacity(256));
        w.0.push(match e.disclosed {
            None => ENCODING_VERSION,
            Some(_) => ENCODING_VERSION_DISCLOSED,
        });
        w.0.extend_from_slice(&self.seq.to_be_bytes());
        let micros = (e.at.unix_timestamp_nanos() / 1000) as i64;
        w.0.extend_from_slice(&micros.to_be_bytes());
        w.str(e.actor.kind.code());
        w.opt_uuid(&e.actor.account);
        w.opt_str(&e.actor.role);
        w.opt_uuid(&e.actor.hcp);
        w.opt_uuid(&e.actor.location);
        w.opt_uuid(&e.sdm);
        w.opt_uuid(&e.recipient);
        w.str(&e.action);
        w.0.extend_from_slice(&(e.domains.len() as u32).to_be_bytes());
        for d in &e.domains {
            w.str(d);
        }
        w.0.extend_from_slice(&(e.record_ids.len() as u32).to_be_bytes());
        for r in &e.record_ids {
            w.0.extend_from_slice(r.as_bytes());
        }
        w.opt_str(&e.reason);
        w.str(e.outcome.code());
        w.opt_str(&e.denial_reason);
        w.opt_uuid(&e.consent_id);
        w.opt_uuid(&e.episode_id);
        w.opt_str(&e.client_addr);
        w.opt_uuid(&e.request_id);
        if let Some(d) = &e.disclosed {
            d.write_canonical(&mut w.0);
        }
        w.0
    }

    /// The entry's Merkle leaf hash.
    pub fn leaf_hash(&self) -> super::Hash {
        super::merkle::leaf_hash(&self.canonical_bytes())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn sample() -> NewAuditEntry {
        let mut e = NewAuditEntry::new(
            datetime!(2026-01-15 09:30:00.123456789 +08:00),
            Actor {
                kind: ActorKind::HcpUser,
                account: Some(Uuid::from_u128(1)),
                role: Some("doctor".into()),
                hcp: Some(Uuid::from_u128(2)),
                location: Some(Uuid::from_u128(3)),
            },
            "record.read",
            Outcome::Allowed,
        );
        e.recipient = Some(Uuid::from_u128(4));
        e.domains = vec!["allergy".into(), "medication".into()];
        e.consent_id = Some(Uuid::from_u128(5));
        e.episode_id = Some(Uuid::from_u128(6));
        e.request_id = Some(Uuid::from_u128(7));
        e.client_addr = Some("203.0.113.9".into());
        e
    }

    #[test]
    fn time_is_utc_microseconds() {
        let e = sample();
        assert_eq!(e.at, datetime!(2026-01-15 01:30:00.123456 UTC));
        assert_eq!(e.at.offset(), time::UtcOffset::UTC);
    }

    #[test]
    fn canonical_bytes_are_stable_and_cover_every_field() {
        let base = sample().validated().unwrap().at_seq(42);
        let bytes = base.canonical_bytes();
        assert_eq!(bytes[0], ENCODING_VERSION);
        assert_eq!(bytes, base.clone().canonical_bytes(), "deterministic");
        // Changing any one field changes the bytes.
        type Change = Box<dyn Fn(&mut AuditEntry)>;
        let variants: Vec<Change> = vec![
            Box::new(|e| e.seq = 43),
            Box::new(|e| e.entry.at += time::Duration::microseconds(1)),
            Box::new(|e| e.entry.actor.kind = ActorKind::Office),
            Box::new(|e| e.entry.actor.account = None),
            Box::new(|e| e.entry.actor.role = Some("nurse".into())),
            Box::new(|e| e.entry.actor.hcp = Some(Uuid::from_u128(9))),
            Box::new(|e| e.entry.actor.location = None),
            Box::new(|e| e.entry.sdm = Some(Uuid::from_u128(9))),
            Box::new(|e| e.entry.recipient = None),
            Box::new(|e| e.entry.action = "record.write".into()),
            Box::new(|e| e.entry.domains.pop().map(drop).unwrap_or(())),
            Box::new(|e| e.entry.record_ids.push(Uuid::from_u128(9))),
            Box::new(|e| e.entry.reason = Some("".into())),
            Box::new(|e| e.entry.outcome = Outcome::Failed),
            Box::new(|e| e.entry.denial_reason = Some("x".into())),
            Box::new(|e| e.entry.consent_id = None),
            Box::new(|e| e.entry.episode_id = None),
            Box::new(|e| e.entry.client_addr = None),
            Box::new(|e| e.entry.request_id = None),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut e = base.clone();
            change(&mut e);
            assert_ne!(
                e.canonical_bytes(),
                bytes,
                "variant {i} did not change the bytes"
            );
        }
    }

    /// Version 1's bytes are frozen: every leaf already written is of them.
    #[test]
    fn version_1_bytes_are_frozen() {
        let e = sample().validated().unwrap().at_seq(42);
        let leaf: String = e.leaf_hash().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            leaf,
            "826286f4ac7e2b39b6a613b03bf5c7d5cb58518c57a39800c7438917a1753e7f"
        );
    }

    #[test]
    fn a_disclosure_makes_version_2_and_every_part_of_it_counts() {
        use crate::audit::disclosed::SetRef;
        use crate::domain::Domain;
        let v1 = sample().validated().unwrap().at_seq(42).canonical_bytes();
        let mut e = sample();
        let set = SetRef::new(
            9,
            &[Domain::Medication, Domain::Allergy],
            &[(Uuid::from_u128(20), 2), (Uuid::from_u128(21), 1)],
            &[Uuid::from_u128(21)],
        );
        e.disclosed = Some(Disclosed::Set(set.clone()));
        let base = e.validated().unwrap().at_seq(42);
        let bytes = base.canonical_bytes();
        assert_eq!(bytes[0], ENCODING_VERSION_DISCLOSED);
        assert_eq!(
            bytes[1..v1.len()],
            v1[1..],
            "version 1's fields, then the disclosure"
        );
        type Change = Box<dyn Fn(&mut SetRef)>;
        let variants: Vec<Change> = vec![
            Box::new(|s| s.rev += 1),
            Box::new(|s| s.scope.pop().map(drop).unwrap_or(())),
            Box::new(|s| s.subset = vec![1]),
            Box::new(|s| s.digest[15] ^= 1),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut e = base.clone();
            let Some(Disclosed::Set(s)) = &mut e.entry.disclosed else {
                unreachable!()
            };
            change(s);
            assert_ne!(e.canonical_bytes(), bytes, "variant {i}");
        }
        let mut one = sample();
        one.record_ids = vec![Uuid::from_u128(20)];
        one.disclosed = Some(Disclosed::Version {
            version: 2,
            history: false,
        });
        let one = one.validated().unwrap().at_seq(1);
        let mut history = one.clone();
        history.entry.disclosed = Some(Disclosed::Version {
            version: 2,
            history: true,
        });
        assert_ne!(one.canonical_bytes(), history.canonical_bytes());
        // A version names one record.
        let mut two = one.entry.clone();
        two.record_ids.push(Uuid::from_u128(21));
        assert_eq!(two.validated(), Err(EntryError::DisclosedVersionOfOne));
        // Validation puts a set in its decoded form: scope in order, subset trimmed.
        let mut messy = sample();
        messy.disclosed = Some(Disclosed::Set(SetRef {
            scope: vec![Domain::Medication, Domain::Allergy, Domain::Medication],
            subset: vec![2, 0, 0],
            ..set.clone()
        }));
        let Some(Disclosed::Set(tidy)) = messy.validated().unwrap().disclosed else {
            unreachable!()
        };
        assert_eq!(tidy.scope, vec![Domain::Allergy, Domain::Medication]);
        assert_eq!(tidy.subset, vec![2]);
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        let mut a = sample();
        a.domains = vec!["ab".into(), "c".into()];
        let mut b = sample();
        b.domains = vec!["a".into(), "bc".into()];
        assert_ne!(a.at_seq(0).canonical_bytes(), b.at_seq(0).canonical_bytes());
    }

    #[test]
    fn validation() {
        assert!(sample().validated().is_ok());
        for bad in [
            "",
            "Record.read",
            "record..read",
            "record.read!",
            "1record",
            "record read",
        ] {
            let mut e = sample();
            e.action = bad.into();
            assert_eq!(
                e.validated(),
                Err(EntryError::BadAction(bad.into())),
                "{bad:?}"
            );
        }
        let mut e = sample();
        e.outcome = Outcome::Denied;
        assert_eq!(e.clone().validated(), Err(EntryError::DenialReasonMismatch));
        e.denial_reason = Some("consent-required".into());
        assert!(e.validated().is_ok());
        let mut e = sample();
        e.reason = Some("x".repeat(MAX_REASON_CHARS + 1));
        assert!(matches!(
            e.validated(),
            Err(EntryError::TooLong {
                field: "reason",
                ..
            })
        ));
    }

    #[test]
    fn codes_round_trip() {
        for k in ActorKind::ALL {
            assert_eq!(ActorKind::parse(k.code()), Some(k));
        }
        for o in [Outcome::Allowed, Outcome::Denied, Outcome::Failed] {
            assert_eq!(Outcome::parse(o.code()), Some(o));
        }
        assert_eq!(ActorKind::parse("root"), None);
    }
}
