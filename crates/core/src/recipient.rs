//! Healthcare recipients (SPEC 3.2, 3.3): who may register personally, who needs a substitute
//! decision maker (SDM), which SDM may act, and when an SDM's authority ends.
//!
//! Authority is computed from the date of birth at each action (never by a batch job that could
//! be late): a child's SDM stops being able to act on the child's 16th birthday, in Hong Kong
//! time, the calendar that birthdays are kept in.

use time::{Date, OffsetDateTime};

/// The age from which a person able to consent registers and decides personally.
pub const AGE_OF_CONSENT: u8 = 16;

/// Age in whole years on `on` of someone born on `born` (a 29 February birthday counts from
/// 1 March in other years); `None` if `on` is before `born`.
pub fn age_on(born: Date, on: Date) -> Option<u8> {
    if on < born {
        return None;
    }
    let mut years = on.year() - born.year();
    if (on.month() as u8, on.day()) < (born.month() as u8, born.day()) {
        years -= 1;
    }
    u8::try_from(years.max(0)).ok().or(Some(u8::MAX))
}

crate::coded_enum! {
    /// Whether the person can give consent themself (declared at registration, for 16+).
    pub enum Capacity {
        Able = "able";
        Unable = "unable";
    }
}

crate::coded_enum! {
    /// The categories of SDM (SPEC 3.3), each in its priority order.
    pub enum SdmCategory {
        // For a child under 16, in priority order.
        Parent = "parent";
        ChildGuardian = "child-guardian";
        ChildCourtAppointed = "child-court-appointed";
        ChildFamilyOrCoResident = "child-family-or-co-resident";
        ChildCareProvider = "child-care-provider";
        // For a person 16 or over unable to consent, in priority order.
        Guardian = "guardian";
        SocialWelfareOrMhoGuardian = "social-welfare-or-mho-guardian";
        CourtAppointed = "court-appointed";
        FamilyOrCoResident = "family-or-co-resident";
        CareProvider = "care-provider";
    }
}

const FOR_CHILDREN: [SdmCategory; 5] = [
    SdmCategory::Parent,
    SdmCategory::ChildGuardian,
    SdmCategory::ChildCourtAppointed,
    SdmCategory::ChildFamilyOrCoResident,
    SdmCategory::ChildCareProvider,
];

const FOR_ADULTS: [SdmCategory; 5] = [
    SdmCategory::Guardian,
    SdmCategory::SocialWelfareOrMhoGuardian,
    SdmCategory::CourtAppointed,
    SdmCategory::FamilyOrCoResident,
    SdmCategory::CareProvider,
];

impl SdmCategory {
    /// Whether this category acts for children under 16 (otherwise for adults unable to consent).
    pub fn for_children(self) -> bool {
        FOR_CHILDREN.contains(&self)
    }

    /// Position in its priority list, 0 the highest.
    pub fn rank(self) -> usize {
        FOR_CHILDREN
            .iter()
            .chain(FOR_ADULTS.iter())
            .position(|c| *c == self)
            .map_or(0, |p| p % FOR_CHILDREN.len())
    }
}

/// An SDM's claim to act, as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdmClaim {
    pub category: SdmCategory,
    /// The applicant's declaration that no SDM of a higher priority is available (required for
    /// every category but the first of its list).
    pub no_higher_available: bool,
}

/// Why a registration is refused (stable codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("the date of birth is in the future")]
    BornInFuture,
    #[error("a child under 16 is registered by a substitute decision maker")]
    SdmRequiredForChild,
    #[error("a person unable to consent is registered by a substitute decision maker")]
    SdmRequiredForIncapacity,
    #[error("a person of 16 or over able to consent registers personally")]
    SdmNotAllowed,
    #[error("this kind of substitute decision maker acts for children under 16 only")]
    ChildCategoryForAdult,
    #[error("this kind of substitute decision maker acts for persons of 16 or over only")]
    AdultCategoryForChild,
    #[error(
        "a lower-priority substitute decision maker must declare that no higher one is available"
    )]
    HigherPriorityNotDeclared,
}

impl RegistrationError {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            RegistrationError::BornInFuture => "born-in-future",
            RegistrationError::SdmRequiredForChild => "sdm-required-for-child",
            RegistrationError::SdmRequiredForIncapacity => "sdm-required",
            RegistrationError::SdmNotAllowed => "sdm-not-allowed",
            RegistrationError::ChildCategoryForAdult => "sdm-category-for-children",
            RegistrationError::AdultCategoryForChild => "sdm-category-for-adults",
            RegistrationError::HigherPriorityNotDeclared => "sdm-priority-not-declared",
        }
    }
}

/// Checks who may register a person born on `born`, with `capacity`, through `sdm` (none:
/// personally), on `today` (a Hong Kong date).
pub fn check_registration(
    born: Date,
    capacity: Capacity,
    sdm: Option<SdmClaim>,
    today: Date,
) -> Result<(), RegistrationError> {
    let age = age_on(born, today).ok_or(RegistrationError::BornInFuture)?;
    let child = age < AGE_OF_CONSENT;
    match sdm {
        None if child => Err(RegistrationError::SdmRequiredForChild),
        None if capacity == Capacity::Unable => Err(RegistrationError::SdmRequiredForIncapacity),
        None => Ok(()),
        Some(_) if !child && capacity == Capacity::Able => Err(RegistrationError::SdmNotAllowed),
        Some(claim) => {
            if child && !claim.category.for_children() {
                return Err(RegistrationError::AdultCategoryForChild);
            }
            if !child && claim.category.for_children() {
                return Err(RegistrationError::ChildCategoryForAdult);
            }
            if claim.category.rank() > 0 && !claim.no_higher_available {
                return Err(RegistrationError::HigherPriorityNotDeclared);
            }
            Ok(())
        }
    }
}

/// Whether an SDM of `category` may still act for a person born on `born`, at `now`.
/// A child's SDM's authority ends on the 16th birthday; an adult's SDM's authority lasts while
/// the registration says the person is unable to consent (changed by the office).
pub fn sdm_may_act(category: SdmCategory, born: Date, now: OffsetDateTime) -> bool {
    if !category.for_children() {
        return true;
    }
    age_on(born, crate::clock::hong_kong_date(now)).is_some_and(|age| age < AGE_OF_CONSENT)
}

/// How many days before a child's 16th birthday the SDM and the child are told that the SDM's
/// authority ends (SPEC 3.3: "notified to take over").
pub const SDM_ENDING_NOTICE_DAYS: i64 = 30;

/// The day a person born on `born` turns 16 (a 29 February birthday counts from 1 March, as
/// [`age_on`] does).
pub fn sixteenth_birthday(born: Date) -> Date {
    let year = born.year() + i32::from(AGE_OF_CONSENT);
    Date::from_calendar_date(year, born.month(), born.day())
        .unwrap_or_else(|_| Date::from_calendar_date(year, time::Month::March, 1).unwrap_or(born))
}

/// The 16th birthday of a child born on `born` if, on `today` (a Hong Kong date), it is
/// near enough for the notices that the SDM's authority ends: within
/// [`SDM_ENDING_NOTICE_DAYS`], not yet reached.
pub fn sdm_ending_notice_due(born: Date, today: Date) -> Option<Date> {
    let birthday = sixteenth_birthday(born);
    let days = (birthday - today).whole_days();
    (days > 0 && days <= SDM_ENDING_NOTICE_DAYS).then_some(birthday)
}

#[cfg(test)]
mod ending_tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_notices_fall_due_thirty_days_before_the_sixteenth_birthday() {
        let born = date!(2010 - 06 - 15);
        assert_eq!(sixteenth_birthday(born), date!(2026 - 06 - 15));
        assert_eq!(sdm_ending_notice_due(born, date!(2026 - 05 - 15)), None);
        assert_eq!(
            sdm_ending_notice_due(born, date!(2026 - 05 - 16)),
            Some(date!(2026 - 06 - 15))
        );
        assert_eq!(
            sdm_ending_notice_due(born, date!(2026 - 06 - 14)),
            Some(date!(2026 - 06 - 15))
        );
        assert_eq!(
            sdm_ending_notice_due(born, date!(2026 - 06 - 15)),
            None,
            "on the day it has ended"
        );
        assert_eq!(
            sixteenth_birthday(date!(2012 - 02 - 29)),
            date!(2028 - 02 - 29)
        );
    }

    #[test]
    fn a_leap_day_birthday_turns_sixteen_on_the_first_of_march() {
        // Sixteen is a multiple of four, so only a skipped century leap year (2100) moves it,
        // as `age_on` counts.
        assert_eq!(
            sixteenth_birthday(date!(2096 - 02 - 29)),
            date!(2112 - 02 - 29)
        );
        assert_eq!(
            sixteenth_birthday(date!(2084 - 02 - 29)),
            date!(2100 - 03 - 01)
        );
        assert_eq!(
            age_on(date!(2084 - 02 - 29), date!(2100 - 02 - 28)),
            Some(15)
        );
        assert_eq!(
            age_on(date!(2084 - 02 - 29), date!(2100 - 03 - 01)),
            Some(16)
        );
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn ages_in_whole_years() {
        let check = |born: Date, on: Date, expected: Option<u8>| {
            assert_eq!(age_on(born, on), expected, "{born} on {on}");
        };
        check(date!(2010 - 06 - 15), date!(2026 - 06 - 14), Some(15));
        check(date!(2010 - 06 - 15), date!(2026 - 06 - 15), Some(16));
        check(date!(2008 - 02 - 29), date!(2024 - 02 - 28), Some(15));
        check(date!(2008 - 02 - 29), date!(2024 - 02 - 29), Some(16));
        check(date!(2008 - 02 - 29), date!(2025 - 02 - 28), Some(16));
        check(date!(2010 - 06 - 15), date!(2010 - 06 - 15), Some(0));
        check(date!(2010 - 06 - 15), date!(2010 - 06 - 14), None);
    }

    fn sdm(category: SdmCategory, declared: bool) -> Option<SdmClaim> {
        Some(SdmClaim {
            category,
            no_higher_available: declared,
        })
    }

    #[test]
    fn who_may_register_whom() {
        use Capacity::*;
        use RegistrationError::*;
        use SdmCategory::*;
        let today = date!(2026 - 01 - 15);
        let fifteen = date!(2010 - 06 - 01);
        let adult = date!(1980 - 01 - 01);
        let check = |born, capacity, claim, expected: Result<(), RegistrationError>| {
            assert_eq!(
                check_registration(born, capacity, claim, today),
                expected,
                "{born} {capacity:?} {claim:?}"
            );
        };
        check(fifteen, Able, None, Err(SdmRequiredForChild));
        check(fifteen, Able, sdm(Parent, false), Ok(()));
        check(
            fifteen,
            Able,
            sdm(ChildGuardian, false),
            Err(HigherPriorityNotDeclared),
        );
        check(fifteen, Able, sdm(ChildGuardian, true), Ok(()));
        check(
            fifteen,
            Able,
            sdm(Guardian, false),
            Err(AdultCategoryForChild),
        );
        check(adult, Able, None, Ok(()));
        check(adult, Able, sdm(Guardian, false), Err(SdmNotAllowed));
        check(adult, Unable, None, Err(SdmRequiredForIncapacity));
        check(adult, Unable, sdm(Guardian, false), Ok(()));
        check(adult, Unable, sdm(CareProvider, true), Ok(()));
        check(
            adult,
            Unable,
            sdm(Parent, false),
            Err(ChildCategoryForAdult),
        );
        check(date!(2026 - 01 - 16), Able, None, Err(BornInFuture));
    }

    #[test]
    fn a_childs_sdm_loses_authority_on_the_16th_birthday_in_hong_kong() {
        let born = date!(2010 - 01 - 16);
        // 2026-01-15 23:59 in Hong Kong is 15:59 UTC: still 15.
        assert!(sdm_may_act(
            SdmCategory::Parent,
            born,
            datetime!(2026-01-15 15:59 UTC)
        ));
        // 2026-01-16 00:00 in Hong Kong is 2026-01-15 16:00 UTC: 16.
        assert!(!sdm_may_act(
            SdmCategory::Parent,
            born,
            datetime!(2026-01-15 16:00 UTC)
        ));
        // An adult's guardian is not bound by age.
        assert!(sdm_may_act(
            SdmCategory::Guardian,
            date!(1950 - 01 - 01),
            datetime!(2026-01-15 16:00 UTC)
        ));
    }

    #[test]
    fn categories_round_trip_and_rank_within_their_list() {
        for c in SdmCategory::ALL {
            assert_eq!(SdmCategory::parse(c.code()), Some(c));
        }
        assert_eq!(SdmCategory::Parent.rank(), 0);
        assert_eq!(SdmCategory::Guardian.rank(), 0);
        assert_eq!(SdmCategory::CareProvider.rank(), 4);
        assert!(SdmCategory::ChildCareProvider.for_children());
        assert!(!SdmCategory::CareProvider.for_children());
    }
}

crate::coded_enum! {
    /// A registration's status (SPEC 3.2).
    pub enum RecipientStatus {
        /// Registered online or by mail / fax: identity not yet verified.
        PendingVerification = "pending-verification";
        Active = "active";
        /// Suspended by the office.
        Suspended = "suspended";
        /// Withdrawn at the recipient's (or SDM's) request: records kept, nothing shared.
        Withdrawn = "withdrawn";
    }
}

crate::coded_enum! {
    /// Whether a person's portal login (a recipient's own, or an SDM's) may be used.
    pub enum PersonStatus {
        Active = "active";
        Suspended = "suspended";
    }
}

/// What can happen to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientEvent {
    /// Identity verified (in person, or by an external identity provider).
    Verify,
    Suspend,
    Reinstate,
    Withdraw,
}

impl RecipientStatus {
    /// The status after `event`, or `None` if the event does not apply.
    pub fn after(self, event: RecipientEvent) -> Option<RecipientStatus> {
        use RecipientEvent as E;
        use RecipientStatus as S;
        match (self, event) {
            (S::PendingVerification, E::Verify) => Some(S::Active),
            (S::Active, E::Suspend) => Some(S::Suspended),
            (S::Suspended, E::Reinstate) => Some(S::Active),
            (S::PendingVerification | S::Active | S::Suspended, E::Withdraw) => Some(S::Withdrawn),
            _ => None,
        }
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;

    #[test]
    fn registration_statuses_follow_their_events() {
        use RecipientEvent as E;
        use RecipientStatus as S;
        assert_eq!(S::PendingVerification.after(E::Verify), Some(S::Active));
        assert_eq!(S::Active.after(E::Verify), None);
        assert_eq!(S::Active.after(E::Suspend), Some(S::Suspended));
        assert_eq!(S::Suspended.after(E::Reinstate), Some(S::Active));
        assert_eq!(S::Suspended.after(E::Withdraw), Some(S::Withdrawn));
        assert_eq!(
            S::Withdrawn.after(E::Reinstate),
            None,
            "a withdrawal is final: register again"
        );
        assert_eq!(S::Withdrawn.after(E::Withdraw), None);
        for s in S::ALL {
            assert_eq!(S::parse(s.code()), Some(s));
        }
    }
}
