//! What a read's audit entry says left: which records, at which versions (ADR 0023).
//!
//! A summary of fifty records would cost about 2 KB of entry if it listed them; instead the
//! entry names the recipient's *record revision* its snapshot saw, the domains it read, which
//! of the candidates then current left (a bitmap) and a digest of the exact list. The list is
//! rebuilt from the record history, which is append-only, by [`reconstruct`], and the digest
//! says whether the history still gives the list that left.
//!
//! The revision: every transaction that writes a recipient's records raises the recipient's
//! revision by one and stamps it on the versions it writes, under the revision row's lock, so a
//! snapshot that saw revision `W` saw exactly the versions stamped `W` or less. Versions
//! written before revisions existed count as revision 0.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Domain;

/// What content a read released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disclosed {
    /// The one record the entry names (`record_ids`), at `version`; with `history`, every
    /// version up to it (FHIR's `_history`).
    Version { version: u64, history: bool },
    /// A set of records at their versions, by reference to the recipient's record history.
    Set(SetRef),
}

/// A set of (record, version) pairs given by reference ([`reconstruct`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRef {
    /// The recipient's record revision the read's snapshot saw.
    pub rev: u64,
    /// The domains whose current records were candidates; sorted, no repeats.
    pub scope: Vec<Domain>,
    /// Bit `i` (least significant first) set: the `i`-th candidate by id left. Trailing zero
    /// bytes trimmed.
    pub subset: Vec<u8>,
    /// [`digest`] of the list that left.
    pub digest: [u8; 16],
}

/// A version as the record history keeps it, what [`reconstruct`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFact {
    pub record: Uuid,
    pub version: u64,
    /// The recipient's revision that wrote it (0 before revisions were kept).
    pub rev: u64,
    /// Whether it is a current version (not entered in error).
    pub current: bool,
    /// The domain the version was filed in (its code); `None` where the history did not keep
    /// it (versions older than the revisions that no set can name).
    pub domain: Option<String>,
}

/// Prefix of the digest's input: 0x00 and 0x01 are RFC 6962's leaf and node prefixes.
const DIGEST_PREFIX: u8 = 0x02;

/// The digest of a disclosed list: SHA-256 over the list sorted by id, cut to 16 bytes (128
/// bits of second-preimage resistance: the ids are the server's own; ADR 0023).
pub fn digest(list: &[(Uuid, u64)]) -> [u8; 16] {
    let mut sorted: Vec<&(Uuid, u64)> = list.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    h.update([DIGEST_PREFIX]);
    h.update((sorted.len() as u32).to_be_bytes());
    for (id, version) in sorted {
        h.update(id.as_bytes());
        h.update(version.to_be_bytes());
    }
    let full: [u8; 32] = h.finalize().into();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

impl SetRef {
    /// The reference for a read whose snapshot saw revision `rev`: `candidates` are every
    /// current record in `scope` at that snapshot (id and version), `released` the ids of those
    /// that left.
    pub fn new(
        rev: u64,
        scope: &[Domain],
        candidates: &[(Uuid, u64)],
        released: &[Uuid],
    ) -> SetRef {
        let mut scope = scope.to_vec();
        sort_domains(&mut scope);
        let mut sorted: Vec<(Uuid, u64)> = candidates.to_vec();
        sorted.sort();
        sorted.dedup_by_key(|c| c.0);
        let wanted: std::collections::HashSet<&Uuid> = released.iter().collect();
        let mut subset = vec![0u8; sorted.len().div_ceil(8)];
        let mut list = Vec::with_capacity(released.len());
        for (i, c) in sorted.iter().enumerate() {
            if wanted.contains(&c.0) {
                subset[i / 8] |= 1 << (i % 8);
                list.push(*c);
            }
        }
        trim(&mut subset);
        SetRef {
            rev,
            scope,
            subset,
            digest: digest(&list),
        }
    }

    /// Whether candidate `i` left.
    fn selects(&self, i: usize) -> bool {
        self.subset
            .get(i / 8)
            .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    }

    /// The form [`SetRef::new`] and a decoding give: scope sorted without repeats, subset
    /// trimmed.
    pub fn normalised(mut self) -> SetRef {
        sort_domains(&mut self.scope);
        trim(&mut self.subset);
        self
    }
}

/// Domains in the order of [`DOMAIN_BITS`] (not the enum's, which may be reordered), without
/// repeats: the canonical bytes spell them in this order.
fn sort_domains(domains: &mut Vec<Domain>) {
    let position = |d: &Domain| {
        DOMAIN_BITS
            .iter()
            .position(|b| b == d)
            .unwrap_or(usize::MAX)
    };
    domains.sort_by_key(position);
    domains.dedup();
}

fn trim(bytes: &mut Vec<u8>) {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
}

/// Why a reference does not give back what left.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the subset names candidate {0}, but the history has fewer candidates")]
    BeyondCandidates(usize),
    #[error("the history gives another list than the one that left (digest differs)")]
    Digest,
}

/// The list a set reference names, from the recipient's record history (every version of
/// every record of theirs, any order): for each record its highest version with a revision
/// at most `set.rev`; those current and in scope are the candidates, sorted by id; the
/// subset's bits pick among them; the digest must match.
pub fn reconstruct(history: &[VersionFact], set: &SetRef) -> Result<Vec<(Uuid, u64)>, Mismatch> {
    let mut latest: std::collections::BTreeMap<Uuid, &VersionFact> = Default::default();
    for v in history.iter().filter(|v| v.rev <= set.rev) {
        let slot = latest.entry(v.record).or_insert(v);
        if v.version > slot.version {
            *slot = v;
        }
    }
    let scope: Vec<&str> = set.scope.iter().map(|d| d.code()).collect();
    let candidates: Vec<(Uuid, u64)> = latest
        .values()
        .filter(|v| v.current)
        .filter(|v| v.domain.as_deref().is_some_and(|d| scope.contains(&d)))
        .map(|v| (v.record, v.version))
        .collect();
    let highest_bit = set.subset.len() * 8;
    if let Some(beyond) = (candidates.len()..highest_bit).find(|i| set.selects(*i)) {
        return Err(Mismatch::BeyondCandidates(beyond));
    }
    let list: Vec<(Uuid, u64)> = candidates
        .into_iter()
        .enumerate()
        .filter(|(i, _)| set.selects(*i))
        .map(|(_, c)| c)
        .collect();
    if digest(&list) != set.digest {
        return Err(Mismatch::Digest);
    }
    Ok(list)
}

/// The domains in the order of their bits in the stored form: frozen (append only), since
/// stored entries name their scope by these positions.
pub const DOMAIN_BITS: [Domain; 15] = [
    Domain::Demographics,
    Domain::Allergy,
    Domain::Diagnosis,
    Domain::Procedure,
    Domain::Medication,
    Domain::Encounter,
    Domain::ClinicalNote,
    Domain::Immunisation,
    Domain::Laboratory,
    Domain::Radiology,
    Domain::OtherInvestigation,
    Domain::Referral,
    Domain::CmDiagnosis,
    Domain::CmPrescription,
    Domain::CmTreatment,
];

/// An entry's `domains` as the bits of their [`DOMAIN_BITS`] positions: a storage encoding
/// (ADR 0023), used only when it gives back exactly the same list (every code known, in
/// [`DOMAIN_BITS`] order, no repeats), since the canonical bytes spell the list as it is.
pub fn domain_bits(domains: &[String]) -> Option<i32> {
    let mut bits = 0i32;
    for code in domains {
        let i = DOMAIN_BITS.iter().position(|d| d.code() == code)?;
        bits |= 1 << i;
    }
    (domains_of_bits(bits).ok()?.as_slice() == domains).then_some(bits)
}

/// [`domain_bits`] read back.
pub fn domains_of_bits(bits: i32) -> Result<Vec<String>, Malformed> {
    if bits < 0 || bits >> DOMAIN_BITS.len() != 0 {
        return Err(Malformed("a domain bit names no domain"));
    }
    Ok(DOMAIN_BITS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, d)| d.code().to_owned())
        .collect())
}

/// Appends `n` as an unsigned LEB128 varint.
fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a stored disclosure from the front.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(Malformed("shorter than its form"))?;
        let taken = self
            .bytes
            .get(self.at..end)
            .ok_or(Malformed("shorter than its form"))?;
        self.at = end;
        Ok(taken)
    }

    /// A LEB128 varint in its shortest form (another form of the same number is refused, so
    /// that a value has one stored form).
    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut n = 0u64;
        for i in 0..10 {
            let b = self.take(1)?[0];
            if i == 9 && b > 1 {
                return Err(Malformed("a number overflows"));
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(Malformed("a number is not in its shortest form"));
                }
                return Ok(n);
            }
        }
        Err(Malformed("a number overflows"))
    }
}

/// Why stored bytes are not a disclosure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored disclosure is malformed: {0}")]
pub struct Malformed(&'static str);

impl Disclosed {
    /// The compact form stored beside the entry's other columns (a storage encoding only:
    /// the entry's canonical bytes spell domains as codes). `Version`: tag 1, the version
    /// (a varint), history (1 byte). `Set`: tag 2, the revision (a varint), the scope's bits
    /// (2 bytes), the subset's length (a varint) and bytes, the digest (16). Varints are
    /// LEB128, shortest form. A summary of 50 records: 1 + 1-3 + 2 + 1 + 7 + 16 bytes.
    pub fn to_stored(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        match self {
            Disclosed::Version { version, history } => {
                out.push(1);
                varint(&mut out, *version);
                out.push(u8::from(*history));
            }
            Disclosed::Set(s) => {
                out.push(2);
                varint(&mut out, s.rev);
                let bits = s.scope.iter().fold(0u16, |bits, d| {
                    match DOMAIN_BITS.iter().position(|b| b == d) {
                        Some(i) => bits | (1 << i),
                        None => bits,
                    }
                });
                out.extend_from_slice(&bits.to_be_bytes());
                varint(&mut out, s.subset.len() as u64);
                out.extend_from_slice(&s.subset);
                out.extend_from_slice(&s.digest);
            }
        }
        out
    }

    /// [`Disclosed::to_stored`] read back.
    pub fn from_stored(bytes: &[u8]) -> Result<Disclosed, Malformed> {
        let mut r = Reader { bytes, at: 0 };
        let found = match r.take(1)?[0] {
            1 => {
                let version = r.varint()?;
                let history = match r.take(1)?[0] {
                    0 => false,
                    1 => true,
                    _ => return Err(Malformed("history is neither 0 nor 1")),
                };
                Disclosed::Version { version, history }
            }
            2 => {
                let rev = r.varint()?;
                let bits = u16::from_be_bytes([r.take(1)?[0], r.take(1)?[0]]);
                if bits >> DOMAIN_BITS.len() != 0 {
                    return Err(Malformed("a scope bit names no domain"));
                }
                let scope = DOMAIN_BITS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, d)| *d)
                    .collect();
                let len =
                    usize::try_from(r.varint()?).map_err(|_| Malformed("shorter than its form"))?;
                let subset = r.take(len)?.to_vec();
                let mut digest = [0u8; 16];
                digest.copy_from_slice(r.take(16)?);
                let set = SetRef {
                    rev,
                    scope,
                    subset,
                    digest,
                };
                if set.clone().normalised() != set {
                    return Err(Malformed("the subset is not trimmed"));
                }
                Disclosed::Set(set)
            }
            _ => return Err(Malformed("unknown tag")),
        };
        if r.at != bytes.len() {
            return Err(Malformed("longer than its form"));
        }
        Ok(found)
    }

    /// How many records left (a `Version`'s history counts as its one record).
    pub fn count(&self) -> usize {
        match self {
            Disclosed::Version { .. } => 1,
            Disclosed::Set(s) => s.subset.iter().map(|b| b.count_ones() as usize).sum(),
        }
    }

    /// Appends the canonical encoding (the entry's, version 2; ADR 0023).
    pub(super) fn write_canonical(&self, out: &mut Vec<u8>) {
        match self {
            Disclosed::Version { version, history } => {
                out.push(1);
                out.extend_from_slice(&version.to_be_bytes());
                out.push(u8::from(*history));
            }
            Disclosed::Set(s) => {
                out.push(2);
                out.extend_from_slice(&s.rev.to_be_bytes());
                out.extend_from_slice(&(s.scope.len() as u32).to_be_bytes());
                for d in &s.scope {
                    let code = d.code();
                    out.extend_from_slice(&(code.len() as u32).to_be_bytes());
                    out.extend_from_slice(code.as_bytes());
                }
                out.extend_from_slice(&(s.subset.len() as u32).to_be_bytes());
                out.extend_from_slice(&s.subset);
                out.extend_from_slice(&s.digest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn v(record: u128, version: u64, rev: u64, current: bool, domain: &str) -> VersionFact {
        VersionFact {
            record: id(record),
            version,
            rev,
            current,
            domain: Some(domain.to_owned()),
        }
    }

    #[test]
    fn the_domain_bits_are_every_domain_once_in_their_frozen_order() {
        assert_eq!(DOMAIN_BITS.len(), Domain::ALL.len());
        for d in Domain::ALL {
            assert_eq!(DOMAIN_BITS.iter().filter(|b| **b == d).count(), 1);
        }
        // Append only: these positions are stored.
        let codes: Vec<&str> = DOMAIN_BITS.iter().map(|d| d.code()).collect();
        assert_eq!(
            codes,
            [
                "demographics",
                "allergy",
                "diagnosis",
                "procedure",
                "medication",
                "encounter",
                "clinical-note",
                "immunisation",
                "laboratory",
                "radiology",
                "other-investigation",
                "referral",
                "cm-diagnosis",
                "cm-prescription",
                "cm-treatment",
            ]
        );
    }

    #[test]
    fn domains_are_stored_as_bits_only_when_they_come_back_the_same() {
        let list = |codes: &[&str]| codes.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        let every: Vec<String> = DOMAIN_BITS.iter().map(|d| d.code().to_owned()).collect();
        for domains in [list(&[]), list(&["allergy", "laboratory"]), every] {
            let bits = domain_bits(&domains).unwrap();
            assert_eq!(domains_of_bits(bits).unwrap(), domains);
        }
        assert_eq!(domain_bits(&list(&["allergy"])), Some(0b10));
        // Another order, a repeat, a code this build does not know: kept as they are.
        assert_eq!(domain_bits(&list(&["laboratory", "allergy"])), None);
        assert_eq!(domain_bits(&list(&["allergy", "allergy"])), None);
        assert_eq!(domain_bits(&list(&["later-domain"])), None);
        assert!(domains_of_bits(1 << 15).is_err());
        assert!(domains_of_bits(-1).is_err());
    }

    #[test]
    fn the_digest_is_of_the_sorted_list_and_pinned() {
        let list = [(id(2), 1), (id(1), 3)];
        let mut reversed = list;
        reversed.reverse();
        assert_eq!(digest(&list), digest(&reversed));
        assert_ne!(digest(&list), digest(&[(id(2), 1), (id(1), 2)]));
        assert_ne!(digest(&list), digest(&[(id(2), 1)]));
        // SHA-256(02 00000000) cut to 16 bytes: changing the encoding changes this.
        let empty = digest(&[]);
        let full: [u8; 32] = Sha256::digest([2u8, 0, 0, 0, 0]).into();
        assert_eq!(empty[..], full[..16]);
    }

    /// The history of the examples below: record 1 amended from the laboratory into
    /// radiology at revision 3; record 2 entered in error at revision 4; record 3 deposited
    /// at revision 5; record 4 a medication.
    fn history() -> Vec<VersionFact> {
        vec![
            v(1, 1, 1, true, "laboratory"),
            v(2, 1, 1, true, "laboratory"),
            v(4, 1, 2, true, "medication"),
            v(1, 2, 3, true, "radiology"),
            v(2, 2, 4, false, "laboratory"),
            v(3, 1, 5, true, "laboratory"),
        ]
    }

    #[test]
    fn a_set_is_rebuilt_as_it_was_at_its_revision() {
        let lab = [Domain::Laboratory];
        // At revision 2 records 1 and 2 were the laboratory's; both left.
        let at2 = SetRef::new(2, &lab, &[(id(1), 1), (id(2), 1)], &[id(1), id(2)]);
        assert_eq!(
            reconstruct(&history(), &at2),
            Ok(vec![(id(1), 1), (id(2), 1)])
        );
        // At revision 5 record 1 had moved away, record 2 was withdrawn, record 3 had come.
        let at5 = SetRef::new(5, &lab, &[(id(3), 1)], &[id(3)]);
        assert_eq!(reconstruct(&history(), &at5), Ok(vec![(id(3), 1)]));
        // Two domains, one record left out (a restriction): only the other left.
        let both = [Domain::Radiology, Domain::Medication];
        let some = SetRef::new(5, &both, &[(id(1), 2), (id(4), 1)], &[id(4)]);
        assert_eq!(some.subset, vec![0b10]);
        assert_eq!(reconstruct(&history(), &some), Ok(vec![(id(4), 1)]));
        // Nothing left: an empty subset.
        let none = SetRef::new(5, &both, &[(id(1), 2), (id(4), 1)], &[]);
        assert!(none.subset.is_empty());
        assert_eq!(reconstruct(&history(), &none), Ok(vec![]));
    }

    #[test]
    fn a_history_that_changed_does_not_give_the_list() {
        let lab = [Domain::Laboratory];
        let at2 = SetRef::new(2, &lab, &[(id(1), 1), (id(2), 1)], &[id(1), id(2)]);
        // A version's domain rewritten.
        let mut h = history();
        h[1].domain = Some("radiology".into());
        assert_eq!(reconstruct(&h, &at2), Err(Mismatch::BeyondCandidates(1)));
        // A version's revision rewritten so that a later version shows.
        let mut h = history();
        h[3].rev = 2;
        h[3].domain = Some("laboratory".into());
        assert_eq!(reconstruct(&h, &at2), Err(Mismatch::Digest));
        // A version deleted.
        let mut h = history();
        h.remove(0);
        assert!(reconstruct(&h, &at2).is_err());
        // A status rewritten.
        let mut h = history();
        h[0].current = false;
        assert!(reconstruct(&h, &at2).is_err());
    }

    #[test]
    fn the_stored_form_round_trips_and_refuses_what_it_is_not() {
        let set = Disclosed::Set(SetRef::new(
            7,
            &[Domain::Radiology, Domain::Allergy, Domain::CmTreatment],
            &[(id(1), 2), (id(4), 1), (id(9), 1)],
            &[id(1), id(9)],
        ));
        let one = Disclosed::Version {
            version: 3,
            history: true,
        };
        for d in [set.clone(), one] {
            let stored = d.to_stored();
            assert_eq!(Disclosed::from_stored(&stored), Ok(d));
        }
        let stored = set.to_stored();
        // Tag, revision 7, scope, subset length, subset (three candidates: one byte), digest.
        assert_eq!(stored.len(), 1 + 1 + 2 + 1 + 1 + 16);
        assert!(Disclosed::from_stored(&stored[..stored.len() - 1]).is_err());
        let mut longer = stored.clone();
        longer.push(0);
        assert!(Disclosed::from_stored(&longer).is_err());
        let mut bad_tag = stored.clone();
        bad_tag[0] = 3;
        assert!(Disclosed::from_stored(&bad_tag).is_err());
        let mut bad_bit = stored;
        bad_bit[2] = 0x80;
        assert!(Disclosed::from_stored(&bad_bit).is_err());
        assert!(Disclosed::from_stored(&[1, 1, 2]).is_err(), "history 2");
        assert!(
            Disclosed::from_stored(&[1, 0x81, 0x00, 0]).is_err(),
            "not shortest"
        );
        assert!(
            Disclosed::from_stored(&[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0
            ])
            .is_err(),
            "overflow"
        );
        assert!(Disclosed::from_stored(&[]).is_err());
        // Large numbers round-trip.
        for version in [0, 127, 128, 300, u64::MAX] {
            let d = Disclosed::Version {
                version,
                history: false,
            };
            assert_eq!(Disclosed::from_stored(&d.to_stored()), Ok(d));
        }
    }
}
