//! Sharing consent rules (SPEC 3.4): the regime in force, the kinds of consent, how they are
//! given, and whether one is in force at a moment.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime};
use uuid::Uuid;

crate::coded_enum! {
    /// The kind of a sharing consent.
    pub enum ConsentKind {
        /// Ends 12 months after it was given (or last renewed).
        OneYear = "one-year";
        Indefinite = "indefinite";
        /// Under the 2025 regime new consents have no type and do not expire.
        Untyped = "untyped";
    }
}

crate::coded_enum! {
    /// How a consent was given (recorded with it).
    pub enum Method {
        SmartIdCard = "smart-id-card";
        AccessKey = "access-key";
        App = "app";
        Form = "form";
        Phone = "phone";
        /// Scanning a service location's QR code in the patient portal.
        QrScan = "qr-scan";
    }
}

/// A consent as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    pub id: Uuid,
    pub hcp: Uuid,
    pub kind: ConsentKind,
    /// When it was given, or last renewed.
    pub given_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Whether a consent holds at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    InForce,
    Expired,
    Revoked,
    /// Given after the moment asked about.
    NotYet,
}

impl Consent {
    /// When a one-year consent ends: the same Hong Kong time twelve calendar months on (on the
    /// last day of the month when that day does not exist, as 29 February).
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        (self.kind == ConsentKind::OneYear).then(|| add_a_year_in_hong_kong(self.given_at))
    }

    /// The consent's state at `now`. The end instant itself is already expired.
    pub fn state_at(&self, now: OffsetDateTime) -> ConsentState {
        if now < self.given_at {
            ConsentState::NotYet
        } else if self.revoked_at.is_some_and(|r| r <= now) {
            ConsentState::Revoked
        } else if self.expires_at().is_some_and(|e| now >= e) {
            ConsentState::Expired
        } else {
            ConsentState::InForce
        }
    }
}

/// A smart ID card reader's assertion (SPEC 3.4, `smart-id-card`): the card holder's HKID
/// and card serial, read by a reader registered to one location, at a time, with a nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardAssertion {
    pub reader: Uuid,
    /// Canonical HKID (`A1234563`).
    pub hkid: String,
    pub card_serial: String,
    pub at: OffsetDateTime,
    pub nonce: String,
}

/// How far a card assertion's time may be from the server's (clock skew and transit).
pub const CARD_FRESHNESS: time::Duration = time::Duration::minutes(2);

impl CardAssertion {
    /// The bytes the reader signs: a versioned, line-separated text, so that no field can
    /// run into the next.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "ehrshare-card-assertion-v1\n{}\n{}\n{}\n{}\n{}",
            self.reader,
            self.hkid,
            self.card_serial,
            self.at.unix_timestamp(),
            self.nonce
        )
        .into_bytes()
    }

    /// Whether it was made close enough to `now`.
    pub fn fresh(&self, now: OffsetDateTime) -> bool {
        (now - self.at).abs() <= CARD_FRESHNESS
    }

    /// Whether the fields have sane shapes (no separators inside; a nonce of 16 to 128
    /// characters).
    pub fn well_formed(&self) -> bool {
        let clean = |s: &str| !s.is_empty() && !s.contains('\n') && s.len() <= 128;
        clean(&self.hkid)
            && clean(&self.card_serial)
            && clean(&self.nonce)
            && self.nonce.len() >= 16
    }
}

fn add_a_year_in_hong_kong(at: OffsetDateTime) -> OffsetDateTime {
    let local = crate::clock::in_hong_kong(at);
    let (y, m, d) = (local.year() + 1, local.month(), local.day());
    let last = last_day(y, m);
    let date = Date::from_calendar_date(y, m, d.min(last)).unwrap_or(local.date());
    local.replace_date(date).to_offset(at.offset())
}

fn last_day(year: i32, month: Month) -> u8 {
    time::util::days_in_month(month, year)
}

/// Which version of the sharing-consent rules is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Regime {
    /// The rules the seed describes: a sharing consent is needed to view and to deposit.
    #[default]
    Y2016,
    /// The 2025 amendment: joining lets every participating provider deposit; a sharing consent
    /// is needed only to view, and new consents carry no type.
    Y2025,
}

impl Regime {
    /// The configuration spelling: `"2016"` or `"2025"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::Y2016 => "2016",
            Regime::Y2025 => "2025",
        }
    }

    /// Whether depositing a record needs the recipient's sharing consent with the provider.
    pub fn consent_needed_to_deposit(self) -> bool {
        matches!(self, Regime::Y2016)
    }

    /// Whether depositing a record needs a care episode that covers now. Under 2025 joining
    /// alone lets every participating provider deposit: neither consent nor episode.
    pub fn care_needed_to_deposit(self) -> bool {
        matches!(self, Regime::Y2016)
    }

    /// Whether a new consent carries a type (one year or indefinite) that the giver chooses.
    pub fn consents_are_typed(self) -> bool {
        matches!(self, Regime::Y2016)
    }

    /// The kind a new consent gets when `asked` (a consent type's code, or none) is asked
    /// for: under 2016 one year or indefinite (the default); under 2025 untyped, and a type
    /// asked for is refused rather than ignored, so that nobody believes they chose one.
    pub fn new_consent_kind(self, asked: Option<&str>) -> Result<ConsentKind, KindRefused> {
        let asked = asked.map(str::trim).filter(|k| !k.is_empty());
        match (self, asked) {
            (Regime::Y2025, None) => Ok(ConsentKind::Untyped),
            (Regime::Y2025, Some(_)) => Err(KindRefused::NotUnderThisRegime),
            (Regime::Y2016, None | Some("indefinite")) => Ok(ConsentKind::Indefinite),
            (Regime::Y2016, Some("one-year")) => Ok(ConsentKind::OneYear),
            (Regime::Y2016, Some(_)) => Err(KindRefused::Unknown),
        }
    }
}

/// Why a consent type asked for is refused ([`Regime::new_consent_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindRefused {
    /// Neither `one-year` nor `indefinite`.
    Unknown,
    /// Under the 2025 regime consents have no type.
    NotUnderThisRegime,
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A consent regime name that is neither `2016` nor `2025`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consent regime {0:?}: expected \"2016\" or \"2025\"")]
pub struct UnknownRegime(pub String);

impl FromStr for Regime {
    type Err = UnknownRegime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "2016" => Ok(Regime::Y2016),
            "2025" => Ok(Regime::Y2025),
            other => Err(UnknownRegime(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn card_assertions_are_fresh_for_two_minutes_and_sign_all_fields() {
        let a = CardAssertion {
            reader: Uuid::from_u128(1),
            hkid: "A1234563".into(),
            card_serial: "SN-1".into(),
            at: datetime!(2026-03-02 10:00:00 UTC),
            nonce: "0123456789abcdef".into(),
        };
        assert!(a.fresh(a.at + CARD_FRESHNESS));
        assert!(!a.fresh(a.at + CARD_FRESHNESS + time::Duration::seconds(1)));
        assert!(a.fresh(a.at - time::Duration::seconds(30)));
        let b = CardAssertion {
            hkid: "A1234564".into(),
            ..a.clone()
        };
        assert_ne!(a.message(), b.message());
        assert!(a.well_formed());
        assert!(
            !CardAssertion {
                nonce: "short".into(),
                ..a.clone()
            }
            .well_formed()
        );
        assert!(
            !CardAssertion {
                card_serial: "a\nb".into(),
                ..a
            }
            .well_formed()
        );
    }

    #[test]
    fn a_one_year_consent_ends_twelve_months_on_to_the_second() {
        let given = datetime!(2026-03-02 10:15:00 +08:00);
        let c = Consent {
            id: Uuid::nil(),
            hcp: Uuid::nil(),
            kind: ConsentKind::OneYear,
            given_at: given,
            revoked_at: None,
        };
        let end = datetime!(2027-03-02 10:15:00 +08:00);
        assert_eq!(c.expires_at(), Some(end));
        assert_eq!(
            c.state_at(end - time::Duration::seconds(1)),
            ConsentState::InForce
        );
        assert_eq!(c.state_at(end), ConsentState::Expired);
        assert_eq!(
            c.state_at(end + time::Duration::seconds(1)),
            ConsentState::Expired
        );
        assert_eq!(
            c.state_at(given - time::Duration::seconds(1)),
            ConsentState::NotYet
        );
        // 29 February: the last day of February next year.
        let leap = Consent {
            given_at: datetime!(2028-02-29 09:00 +08:00),
            ..c
        };
        assert_eq!(leap.expires_at(), Some(datetime!(2029-02-28 09:00 +08:00)));
        // The Hong Kong calendar decides, not UTC's: 31 Dec 20:00 UTC is 1 Jan in Hong Kong.
        let new_year = Consent {
            given_at: datetime!(2026-12-31 20:00 UTC),
            ..c
        };
        assert_eq!(new_year.expires_at(), Some(datetime!(2027-12-31 20:00 UTC)));
        let revoked = Consent {
            revoked_at: Some(given + time::Duration::days(1)),
            ..c
        };
        assert_eq!(
            revoked.state_at(given + time::Duration::days(2)),
            ConsentState::Revoked
        );
        let indefinite = Consent {
            kind: ConsentKind::Indefinite,
            ..c
        };
        assert_eq!(
            indefinite.state_at(datetime!(2090-01-01 0:00 UTC)),
            ConsentState::InForce
        );
        for m in Method::ALL {
            assert_eq!(Method::parse(m.code()), Some(m));
        }
        for k in [
            ConsentKind::OneYear,
            ConsentKind::Indefinite,
            ConsentKind::Untyped,
        ] {
            assert_eq!(ConsentKind::parse(k.code()), Some(k));
        }
    }

    #[test]
    fn regime_parses_both_spellings_and_refuses_others() {
        let check = |input: &str, expected: Result<Regime, UnknownRegime>| {
            assert_eq!(input.parse::<Regime>(), expected, "input {input:?}");
        };
        check("2016", Ok(Regime::Y2016));
        check(" 2025 ", Ok(Regime::Y2025));
        check("2020", Err(UnknownRegime("2020".into())));
        check("", Err(UnknownRegime(String::new())));
    }

    #[test]
    fn a_new_consents_kind_is_chosen_under_2016_and_never_under_2025() {
        let r = Regime::Y2016;
        assert_eq!(r.new_consent_kind(None), Ok(ConsentKind::Indefinite));
        assert_eq!(r.new_consent_kind(Some(" ")), Ok(ConsentKind::Indefinite));
        assert_eq!(
            r.new_consent_kind(Some("indefinite")),
            Ok(ConsentKind::Indefinite)
        );
        assert_eq!(
            r.new_consent_kind(Some("one-year")),
            Ok(ConsentKind::OneYear)
        );
        assert_eq!(
            r.new_consent_kind(Some("untyped")),
            Err(KindRefused::Unknown)
        );
        let r = Regime::Y2025;
        assert_eq!(r.new_consent_kind(None), Ok(ConsentKind::Untyped));
        for asked in ["one-year", "indefinite", "untyped", "x"] {
            assert_eq!(
                r.new_consent_kind(Some(asked)),
                Err(KindRefused::NotUnderThisRegime)
            );
        }
        assert!(Regime::Y2016.consents_are_typed() && !Regime::Y2025.consents_are_typed());
        assert!(Regime::Y2016.care_needed_to_deposit() && !Regime::Y2025.care_needed_to_deposit());
    }

    #[test]
    fn regime_round_trips_and_defaults_to_2016() {
        for r in [Regime::Y2016, Regime::Y2025] {
            assert_eq!(r.as_str().parse::<Regime>(), Ok(r));
        }
        assert_eq!(Regime::default(), Regime::Y2016);
        assert!(Regime::Y2016.consent_needed_to_deposit());
        assert!(!Regime::Y2025.consent_needed_to_deposit());
    }
}
