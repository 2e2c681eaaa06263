//! The access decision (SPEC 3.8): one pure function decides every read and deposit of a
//! recipient's records by a provider's user or clinic system. Nothing else in the code base
//! holds these rules; `app` is its only caller and makes the decision's audit entry durable
//! before acting on it.
//!
//! The order of the checks is part of the contract (it decides which reason a denial names):
//! the account, then its provider, the recipient's registration, the role's domains, the
//! sharing consent (unless the provider has deemed consent, or the regime needs none for a
//! deposit), the care relationship (unless a reason is stated: allowed, with an alert), and
//! restricted control. A permit carries its basis (which consent and episode allowed it) and
//! obligations: the domains that may be shown, the restricted items to hide, the unlocked ones
//! that were used, whether to alert, and the kind of notice the recipient gets.

use std::collections::BTreeSet;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::consent::{Consent, ConsentState, Regime};
use crate::domain::Domain;
use crate::episode::{CareWindow, Episode};
use crate::profession::Role;
use crate::profile::AccessProfiles;

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Deposit,
}

/// Who asks: the account (or the professional a clinic system acts for) and its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requester {
    /// The account (none: a clinic system on its own).
    pub account: Option<Uuid>,
    pub account_active: bool,
    pub role: Role,
    pub hcp: Uuid,
    pub hcp_active: bool,
    /// A public provider with deemed consent (SPEC 3.4).
    pub hcp_deemed_consent: bool,
}

/// A single record asked for (read by id), with its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef {
    pub id: Uuid,
    pub domain: Domain,
}

/// What restricted control covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Restricted {
    Domain(Domain),
    Record(Uuid),
}

/// A restriction and its unlocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    pub id: Uuid,
    pub item: Restricted,
    pub unlocks: Vec<Unlock>,
}

/// A recipient's fresh authorisation for one provider, during one episode, until a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlock {
    pub hcp: Uuid,
    pub episode: Uuid,
    pub until: OffsetDateTime,
}

/// Emergency access ("break-glass", SPEC 3.11) one professional of one provider was granted
/// on a stated reason, until a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmergencyAccess {
    pub id: Uuid,
    pub hcp: Uuid,
    pub account: Uuid,
    pub until: OffsetDateTime,
}

/// How long emergency access lasts (SPEC 3.11).
pub const EMERGENCY_ACCESS: time::Duration = time::Duration::hours(4);

crate::coded_enum! {
    /// The reasons a professional may state for emergency access (with free text).
    pub enum EmergencyReason {
        Unconscious = "unconscious";
        LifeThreatening = "life-threatening";
        UnableToCommunicate = "unable-to-communicate";
        Other = "other";
    }
}

/// Everything the decision needs about the recipient.
#[derive(Debug, Clone, Copy)]
pub struct RecipientFacts<'a> {
    /// An active registration.
    pub registered: bool,
    pub consents: &'a [Consent],
    pub episodes: &'a [Episode],
    pub restrictions: &'a [Restriction],
    /// Emergency access granted (in force or not; the decision checks).
    pub emergency: &'a [EmergencyAccess],
}

/// The request.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub action: Action,
    /// The domains asked for; empty: every domain (a summary).
    pub domains: &'a [Domain],
    /// One record, when one is asked for by id.
    pub record: Option<RecordRef>,
    /// A reason stated for access outside a care episode.
    pub reason: Option<&'a str>,
}

/// The deployment's rules.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub regime: Regime,
    pub window: CareWindow,
    pub profiles: &'a AccessProfiles,
}

/// Why access is refused: stable codes, shown to the caller and in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    AccountInactive,
    ProviderInactive,
    RecipientNotRegistered,
    RoleNotPermitted,
    ConsentRequired,
    ConsentExpired,
    NoCareRelationship,
    Restricted,
    /// A token launched for one patient (SMART `launch/patient`) asked about another.
    OutsideLaunch,
    /// A substitute decision maker whose authority has ended (the child turned 16).
    SdmAuthorityEnded,
}

impl DenyReason {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::AccountInactive => "account-inactive",
            DenyReason::ProviderInactive => "provider-inactive",
            DenyReason::RecipientNotRegistered => "recipient-not-registered",
            DenyReason::RoleNotPermitted => "role-not-permitted",
            DenyReason::ConsentRequired => "consent-required",
            DenyReason::ConsentExpired => "consent-expired",
            DenyReason::NoCareRelationship => "no-care-relationship",
            DenyReason::Restricted => "restricted",
            DenyReason::OutsideLaunch => "outside-launch",
            DenyReason::SdmAuthorityEnded => "sdm-authority-ended",
        }
    }
}

/// What allowed a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Basis {
    /// The consent in force (none: deemed consent, or a deposit under the 2025 regime).
    pub consent: Option<Uuid>,
    pub deemed_consent: bool,
    /// The episode that covers now (none: a reason was stated instead).
    pub episode: Option<Uuid>,
    /// The emergency access the read rests on instead of a consent ("break-glass").
    pub emergency: Option<Uuid>,
    /// The recipient reads their own record, or an SDM reads it for them (basis `self`).
    pub own: bool,
}

/// What the caller must do with a permit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obligations {
    /// The domains that may be shown or written.
    pub domains: BTreeSet<Domain>,
    /// Restricted items to leave out entirely (not listed, not counted).
    pub hidden: BTreeSet<Restricted>,
    /// Restrictions whose unlock this access uses (every use is notified).
    pub unlocked: Vec<Uuid>,
    /// Access outside a care episode, on a stated reason: raise an alert.
    pub alert_no_episode: bool,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Permit {
        basis: Basis,
        obligations: Obligations,
    },
    Deny {
        reason: DenyReason,
    },
}

impl Decision {
    fn deny(reason: DenyReason) -> Decision {
        Decision::Deny { reason }
    }

    /// The denial reason, if denied.
    pub fn denial(&self) -> Option<DenyReason> {
        match self {
            Decision::Deny { reason } => Some(*reason),
            Decision::Permit { .. } => None,
        }
    }
}

/// The consent standing of the requester's provider at `now`: the consent in force, or why
/// there is none (an expired one is named as such; anything else is simply required). The
/// decision's own rule; the counter's patient page shows its answer.
pub fn consent_in_force(
    consents: &[Consent],
    hcp: Uuid,
    now: OffsetDateTime,
) -> Result<Uuid, DenyReason> {
    let mut expired = false;
    for c in consents.iter().filter(|c| c.hcp == hcp) {
        match c.state_at(now) {
            ConsentState::InForce => return Ok(c.id),
            ConsentState::Expired => expired = true,
            ConsentState::Revoked | ConsentState::NotYet => {}
        }
    }
    Err(if expired {
        DenyReason::ConsentExpired
    } else {
        DenyReason::ConsentRequired
    })
}

fn unlock_in_force(r: &Restriction, hcp: Uuid, episode: Option<Uuid>, now: OffsetDateTime) -> bool {
    r.unlocks
        .iter()
        .any(|u| u.hcp == hcp && Some(u.episode) == episode && now < u.until)
}

/// Whether the requester may act for a recipient at all: an active account of an active
/// provider, a registered recipient. The first checks of [`decide`], also what recording a
/// consent or opening a care episode at the counter needs.
pub fn standing(who: &Requester, registered: bool) -> Result<(), DenyReason> {
    if !who.account_active {
        Err(DenyReason::AccountInactive)
    } else if !who.hcp_active {
        Err(DenyReason::ProviderInactive)
    } else if !registered {
        Err(DenyReason::RecipientNotRegistered)
    } else {
        Ok(())
    }
}

/// Whether the requester may record a recipient's care at the counter (a sharing consent, a
/// care episode): [`standing`], and a role that sees some part of the record (a pure user
/// administrator does not).
pub fn may_record_care(
    who: &Requester,
    registered: bool,
    profiles: &AccessProfiles,
) -> Result<(), DenyReason> {
    standing(who, registered)?;
    if profiles.domains(who.role).is_empty() {
        return Err(DenyReason::RoleNotPermitted);
    }
    Ok(())
}

/// What a request asks for: the one record's domain, the domains named, or every domain.
fn asked(ask: &Ask<'_>) -> BTreeSet<Domain> {
    match (ask.record, ask.domains) {
        (Some(r), _) => BTreeSet::from([r.domain]),
        (None, []) => Domain::ALL.into_iter().collect(),
        (None, list) => list.iter().copied().collect(),
    }
}

/// Need-to-know: the role's domains narrowed to what was asked. A permit's
/// `obligations.domains` is this set (the decision may still deny): a caller may load the
/// records in it together with the facts, to release only under a permit.
pub fn need_to_know(role: Role, ask: &Ask<'_>, profiles: &AccessProfiles) -> BTreeSet<Domain> {
    let permitted = profiles.domains(role);
    asked(ask).intersection(&permitted).copied().collect()
}

/// Whether a restricted item concerns the request: the record asked for, or (for a list)
/// any record or a domain among those shown.
fn touches(item: Restricted, ask: &Ask<'_>, domains: &BTreeSet<Domain>) -> bool {
    match (item, ask.record) {
        (Restricted::Record(id), Some(rec)) => id == rec.id,
        (Restricted::Domain(d), Some(rec)) => d == rec.domain,
        (Restricted::Record(_), None) => true,
        (Restricted::Domain(d), None) => domains.contains(&d),
    }
}

/// The provider's episode that covers `now` (the latest started if several).
fn covering_episode(
    episodes: &[Episode],
    hcp: Uuid,
    now: OffsetDateTime,
    window: CareWindow,
) -> Option<Uuid> {
    episodes
        .iter()
        .filter(|e| e.hcp == hcp && e.covers(now, window))
        .max_by_key(|e| e.start)
        .map(|e| e.id)
}

/// The requester's own emergency access in force at `now`, if any.
fn emergency_in_force(
    grants: &[EmergencyAccess],
    who: &Requester,
    now: OffsetDateTime,
) -> Option<Uuid> {
    grants
        .iter()
        .find(|g| g.hcp == who.hcp && Some(g.account) == who.account && now < g.until)
        .map(|g| g.id)
}

/// A read on emergency access instead of a consent (SPEC 3.11): the emergency domains of the
/// access profile only (a record of another domain, or a summary that would show none, is
/// refused for the missing consent, `refusal`); restricted items stay locked whatever unlock
/// there is; no care episode is needed (the stated reason stands for it, and is alerted when
/// the access is granted).
#[allow(clippy::too_many_arguments)]
fn emergency_read(
    who: &Requester,
    recipient: &RecipientFacts<'_>,
    ask: &Ask<'_>,
    policy: &Policy<'_>,
    now: OffsetDateTime,
    domains: BTreeSet<Domain>,
    grant: Uuid,
    refusal: DenyReason,
) -> Decision {
    let emergency = policy.profiles.emergency_domains();
    let domains: BTreeSet<Domain> = domains.intersection(emergency).copied().collect();
    if domains.is_empty() || (ask.record.is_some() && domains.len() != asked(ask).len()) {
        return Decision::deny(refusal);
    }
    let mut hidden = BTreeSet::new();
    for r in recipient.restrictions {
        if !touches(r.item, ask, &domains) {
            continue;
        }
        if ask.record.is_some() {
            return Decision::deny(DenyReason::Restricted);
        }
        hidden.insert(r.item);
    }
    let episode = covering_episode(recipient.episodes, who.hcp, now, policy.window);
    Decision::Permit {
        basis: Basis {
            consent: None,
            deemed_consent: false,
            episode,
            emergency: Some(grant),
            own: false,
        },
        obligations: Obligations {
            domains,
            hidden,
            unlocked: Vec::new(),
            alert_no_episode: false,
        },
    }
}

/// Why emergency access is refused ([`may_break_glass`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakGlassRefused {
    /// The account, provider or registration does not stand ([`standing`]).
    Standing(DenyReason),
    /// Only a doctor may (SPEC 3.11).
    NotADoctor,
    /// A consent is in force, or the provider has deemed consent: the ordinary path applies.
    NotNeeded,
}

/// Whether `who` may be granted emergency access to a recipient at `now`: an active doctor of
/// an active provider, a registered recipient, and no other way in (no consent in force, no
/// deemed consent). The deployment's and the provider's switches are the caller's to check.
pub fn may_break_glass(
    who: &Requester,
    registered: bool,
    consents: &[Consent],
    now: OffsetDateTime,
) -> Result<(), BreakGlassRefused> {
    standing(who, registered).map_err(BreakGlassRefused::Standing)?;
    if who.role != Role::Doctor || who.account.is_none() {
        return Err(BreakGlassRefused::NotADoctor);
    }
    if who.hcp_deemed_consent || consent_in_force(consents, who.hcp, now).is_ok() {
        return Err(BreakGlassRefused::NotNeeded);
    }
    Ok(())
}

/// Decides one request. Pure: everything it needs is in its arguments.
pub fn decide(
    who: &Requester,
    recipient: &RecipientFacts<'_>,
    ask: &Ask<'_>,
    policy: &Policy<'_>,
    now: OffsetDateTime,
) -> Decision {
    if let Err(reason) = standing(who, recipient.registered) {
        return Decision::deny(reason);
    }

    // Need-to-know: the role's domains, narrowed to what was asked.
    let domains = need_to_know(who.role, ask, policy.profiles);
    let whole_ask_needed = ask.action == Action::Deposit || ask.record.is_some();
    if domains.is_empty() || (whole_ask_needed && domains.len() != asked(ask).len()) {
        return Decision::deny(DenyReason::RoleNotPermitted);
    }

    // Sharing consent.
    let consent_needed = !who.hcp_deemed_consent
        && (ask.action == Action::Read || policy.regime.consent_needed_to_deposit());
    let consent = if consent_needed {
        match consent_in_force(recipient.consents, who.hcp, now) {
            Ok(id) => Some(id),
            Err(reason) => {
                return match emergency_in_force(recipient.emergency, who, now) {
                    Some(grant) if ask.action == Action::Read => {
                        emergency_read(who, recipient, ask, policy, now, domains, grant, reason)
                    }
                    _ => Decision::deny(reason),
                };
            }
        }
    } else {
        None
    };

    // Care relationship.
    let episode = covering_episode(recipient.episodes, who.hcp, now, policy.window);
    let stated = ask.reason.is_some_and(|r| !r.trim().is_empty());
    let care_needed = ask.action == Action::Read || policy.regime.care_needed_to_deposit();
    if care_needed && episode.is_none() && !stated {
        return Decision::deny(DenyReason::NoCareRelationship);
    }

    // Restricted control: reads only (a deposit adds to the record; the recipient's
    // restriction then covers it).
    let mut hidden = BTreeSet::new();
    let mut unlocked = Vec::new();
    if ask.action == Action::Read {
        for r in recipient.restrictions {
            if !touches(r.item, ask, &domains) {
                continue;
            }
            if unlock_in_force(r, who.hcp, episode, now) {
                unlocked.push(r.id);
            } else if ask.record.is_some() {
                return Decision::deny(DenyReason::Restricted);
            } else {
                hidden.insert(r.item);
            }
        }
    }

    Decision::Permit {
        basis: Basis {
            consent,
            deemed_consent: who.hcp_deemed_consent,
            episode,
            emergency: None,
            own: false,
        },
        obligations: Obligations {
            domains,
            hidden,
            unlocked,
            alert_no_episode: care_needed && episode.is_none(),
        },
    }
}

/// Who can see a recipient's record now, as the decision would answer (issue 27, item 3:
/// "who can see me now"), besides the public providers under deemed consent (every active
/// public provider, listed by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// Sharing consents in force, each with its end (none: until revoked).
    pub consents: Vec<(Consent, Option<OffsetDateTime>)>,
    /// Care episodes that cover now (a consented provider reads without a stated reason).
    pub episodes: Vec<Episode>,
    /// Restricted items unlocked now: the restriction, what it covers, the unlock.
    pub unlocks: Vec<(Uuid, Restricted, Unlock)>,
    /// Emergency access in force.
    pub emergency: Vec<EmergencyAccess>,
}

/// [`Exposure`] at `now`: what [`decide`] would let providers see, listed for the recipient.
pub fn exposure(
    recipient: &RecipientFacts<'_>,
    now: OffsetDateTime,
    window: CareWindow,
) -> Exposure {
    let consents = recipient
        .consents
        .iter()
        .filter(|c| c.state_at(now) == crate::consent::ConsentState::InForce)
        .map(|c| (*c, c.expires_at()))
        .collect();
    let episodes = recipient
        .episodes
        .iter()
        .filter(|e| e.covers(now, window))
        .copied()
        .collect();
    let unlocks = recipient
        .restrictions
        .iter()
        .flat_map(|r| {
            r.unlocks
                .iter()
                .filter(move |u| now < u.until)
                .map(move |u| (r.id, r.item, *u))
        })
        .collect();
    let emergency = recipient
        .emergency
        .iter()
        .filter(|g| now < g.until)
        .copied()
        .collect();
    Exposure {
        consents,
        episodes,
        unlocks,
        emergency,
    }
}

/// Who reads a record as its owner: the recipient, or an SDM for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The recipient themself.
    Recipient,
    /// A substitute decision maker named on the registration; `may_act` is
    /// `recipient::sdm_may_act` now.
    Sdm { may_act: bool },
}

/// Decides a read of one's own record (basis `self`; issue 27): the recipient, or an SDM
/// whose authority has not ended, reads every domain of an active registration, restricted
/// items included (restricted control is the recipient's, against providers). Never a
/// deposit: records come from providers.
pub fn decide_own(owner: Owner, registered: bool, ask: &Ask<'_>) -> Decision {
    if let Owner::Sdm { may_act: false } = owner {
        return Decision::deny(DenyReason::SdmAuthorityEnded);
    }
    if !registered {
        return Decision::deny(DenyReason::RecipientNotRegistered);
    }
    if ask.action != Action::Read {
        return Decision::deny(DenyReason::RoleNotPermitted);
    }
    let domains = asked(ask);
    Decision::Permit {
        basis: Basis {
            consent: None,
            deemed_consent: false,
            episode: None,
            emergency: None,
            own: true,
        },
        obligations: Obligations {
            domains,
            hidden: BTreeSet::new(),
            unlocked: Vec::new(),
            alert_no_episode: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::consent::ConsentKind;

    const NOW: OffsetDateTime = datetime!(2026-06-01 10:00 UTC);
    const HCP: Uuid = Uuid::from_u128(0xA);
    const OTHER: Uuid = Uuid::from_u128(0xB);
    const ACCOUNT: Uuid = Uuid::from_u128(0xAC);

    fn doctor() -> Requester {
        Requester {
            account: Some(ACCOUNT),
            account_active: true,
            role: Role::Doctor,
            hcp: HCP,
            hcp_active: true,
            hcp_deemed_consent: false,
        }
    }

    fn consent(kind: ConsentKind, given: OffsetDateTime) -> Consent {
        Consent {
            id: Uuid::from_u128(0xC1),
            hcp: HCP,
            kind,
            given_at: given,
            revoked_at: None,
        }
    }

    fn episode() -> Episode {
        Episode {
            id: Uuid::from_u128(0xE1),
            hcp: HCP,
            start: NOW - Duration::days(1),
            end: None,
            planned_end: None,
            last_activity: None,
        }
    }

    fn read() -> Ask<'static> {
        Ask {
            action: Action::Read,
            domains: &[],
            record: None,
            reason: None,
        }
    }

    fn decide_with(
        who: Requester,
        consents: &[Consent],
        episodes: &[Episode],
        restrictions: &[Restriction],
        ask: Ask<'_>,
        regime: Regime,
    ) -> Decision {
        let profiles = crate::profile::spec_default();
        decide(
            &who,
            &RecipientFacts {
                registered: true,
                consents,
                episodes,
                restrictions,
                emergency: &[],
            },
            &ask,
            &Policy {
                regime,
                window: CareWindow::default(),
                profiles: &profiles,
            },
            NOW,
        )
    }

    /// Every denial reason, each produced by the one fact that causes it.
    #[test]
    fn each_denial_reason_has_its_cause() {
        let c = [consent(ConsentKind::Indefinite, NOW - Duration::days(3))];
        let e = [episode()];
        let ok = decide_with(doctor(), &c, &e, &[], read(), Regime::Y2016);
        assert!(ok.denial().is_none(), "{ok:?}");

        let cases: Vec<(Decision, DenyReason)> = vec![
            (
                decide_with(
                    Requester {
                        account_active: false,
                        ..doctor()
                    },
                    &c,
                    &e,
                    &[],
                    read(),
                    Regime::Y2016,
                ),
                DenyReason::AccountInactive,
            ),
            (
                decide_with(
                    Requester {
                        hcp_active: false,
                        ..doctor()
                    },
                    &c,
                    &e,
                    &[],
                    read(),
                    Regime::Y2016,
                ),
                DenyReason::ProviderInactive,
            ),
            (
                decide_with(
                    Requester {
                        role: Role::UserAdministrator,
                        ..doctor()
                    },
                    &c,
                    &e,
                    &[],
                    read(),
                    Regime::Y2016,
                ),
                DenyReason::RoleNotPermitted,
            ),
            (
                decide_with(doctor(), &[], &e, &[], read(), Regime::Y2016),
                DenyReason::ConsentRequired,
            ),
            (
                decide_with(
                    doctor(),
                    &[consent(ConsentKind::OneYear, NOW - Duration::days(400))],
                    &e,
                    &[],
                    read(),
                    Regime::Y2016,
                ),
                DenyReason::ConsentExpired,
            ),
            (
                decide_with(doctor(), &c, &[], &[], read(), Regime::Y2016),
                DenyReason::NoCareRelationship,
            ),
            (
                decide_with(
                    doctor(),
                    &c,
                    &e,
                    &[Restriction {
                        id: Uuid::from_u128(0xF1),
                        item: Restricted::Record(Uuid::from_u128(7)),
                        unlocks: vec![],
                    }],
                    Ask {
                        record: Some(RecordRef {
                            id: Uuid::from_u128(7),
                            domain: Domain::Diagnosis,
                        }),
                        ..read()
                    },
                    Regime::Y2016,
                ),
                DenyReason::Restricted,
            ),
        ];
        for (decision, expected) in cases {
            assert_eq!(decision.denial(), Some(expected), "{decision:?}");
        }
        let profiles = crate::profile::spec_default();
        let unregistered = decide(
            &doctor(),
            &RecipientFacts {
                registered: false,
                consents: &c,
                episodes: &e,
                restrictions: &[],
                emergency: &[],
            },
            &read(),
            &Policy {
                regime: Regime::Y2016,
                window: CareWindow::default(),
                profiles: &profiles,
            },
            NOW,
        );
        assert_eq!(
            unregistered.denial(),
            Some(DenyReason::RecipientNotRegistered)
        );
    }

    #[test]
    fn recording_care_needs_standing_and_a_role_that_sees_something() {
        let profiles = crate::profile::spec_default();
        assert_eq!(may_record_care(&doctor(), true, &profiles), Ok(()));
        let clerk = Requester {
            role: Role::RegistrationStaff,
            ..doctor()
        };
        assert_eq!(may_record_care(&clerk, true, &profiles), Ok(()));
        let admin = Requester {
            role: Role::UserAdministrator,
            ..doctor()
        };
        assert_eq!(
            may_record_care(&admin, true, &profiles),
            Err(DenyReason::RoleNotPermitted)
        );
        assert_eq!(
            may_record_care(&doctor(), false, &profiles),
            Err(DenyReason::RecipientNotRegistered)
        );
        let closed = Requester {
            hcp_active: false,
            ..doctor()
        };
        assert_eq!(
            may_record_care(&closed, true, &profiles),
            Err(DenyReason::ProviderInactive)
        );
    }

    #[test]
    fn consent_of_another_provider_or_revoked_does_not_count() {
        let e = [episode()];
        let theirs = [Consent {
            hcp: OTHER,
            ..consent(ConsentKind::Indefinite, NOW - Duration::days(3))
        }];
        assert_eq!(
            decide_with(doctor(), &theirs, &e, &[], read(), Regime::Y2016).denial(),
            Some(DenyReason::ConsentRequired)
        );
        let revoked = [Consent {
            revoked_at: Some(NOW - Duration::seconds(1)),
            ..consent(ConsentKind::Indefinite, NOW - Duration::days(3))
        }];
        assert_eq!(
            decide_with(doctor(), &revoked, &e, &[], read(), Regime::Y2016).denial(),
            Some(DenyReason::ConsentRequired)
        );
    }

    #[test]
    fn deemed_consent_and_the_2025_regime() {
        let e = [episode()];
        let public = Requester {
            hcp_deemed_consent: true,
            ..doctor()
        };
        let d = decide_with(public, &[], &e, &[], read(), Regime::Y2016);
        assert!(matches!(
            d,
            Decision::Permit {
                basis: Basis {
                    consent: None,
                    deemed_consent: true,
                    ..
                },
                ..
            }
        ));
        let deposit = Ask {
            action: Action::Deposit,
            domains: &[Domain::Diagnosis],
            ..read()
        };
        assert_eq!(
            decide_with(doctor(), &[], &e, &[], deposit, Regime::Y2016).denial(),
            Some(DenyReason::ConsentRequired)
        );
        assert!(
            decide_with(doctor(), &[], &e, &[], deposit, Regime::Y2025)
                .denial()
                .is_none()
        );
        assert_eq!(
            decide_with(doctor(), &[], &e, &[], read(), Regime::Y2025).denial(),
            Some(DenyReason::ConsentRequired)
        );
    }

    #[test]
    fn emergency_access_shows_the_emergency_domains_for_four_hours_to_its_doctor_only() {
        let profiles = crate::profile::spec_default();
        let grant = EmergencyAccess {
            id: Uuid::from_u128(0xB6),
            hcp: HCP,
            account: ACCOUNT,
            until: NOW + Duration::hours(4),
        };
        let restricted = [Restriction {
            id: Uuid::from_u128(0x5),
            item: Restricted::Domain(Domain::Medication),
            unlocks: vec![Unlock {
                hcp: HCP,
                episode: episode().id,
                until: NOW + Duration::hours(1),
            }],
        }];
        let run = |who: Requester, ask: Ask<'_>, at: OffsetDateTime| {
            decide(
                &who,
                &RecipientFacts {
                    registered: true,
                    consents: &[],
                    episodes: &[episode()],
                    restrictions: &restricted,
                    emergency: &[grant],
                },
                &ask,
                &Policy {
                    regime: Regime::Y2016,
                    window: CareWindow::default(),
                    profiles: &profiles,
                },
                at,
            )
        };
        let Decision::Permit { basis, obligations } = run(doctor(), read(), NOW) else {
            panic!("emergency access permits a summary");
        };
        assert_eq!(basis.emergency, Some(grant.id));
        assert_eq!(basis.consent, None);
        assert_eq!(
            obligations.domains,
            BTreeSet::from([Domain::Allergy, Domain::Diagnosis, Domain::Medication])
        );
        // Restricted items stay locked, whatever unlock the episode has.
        assert!(
            obligations
                .hidden
                .contains(&Restricted::Domain(Domain::Medication))
        );
        assert!(obligations.unlocked.is_empty() && !obligations.alert_no_episode);
        // To the second: at the end of the four hours, the consent is missing again.
        assert_eq!(
            run(doctor(), read(), grant.until).denial(),
            Some(DenyReason::ConsentRequired)
        );
        assert!(
            run(doctor(), read(), grant.until - Duration::seconds(1))
                .denial()
                .is_none()
        );
        // Another account of the provider, a deposit, a record outside the emergency domains.
        let colleague = Requester {
            account: Some(OTHER),
            ..doctor()
        };
        assert_eq!(
            run(colleague, read(), NOW).denial(),
            Some(DenyReason::ConsentRequired)
        );
        let deposit = Ask {
            action: Action::Deposit,
            domains: &[Domain::Diagnosis],
            ..read()
        };
        assert_eq!(
            run(doctor(), deposit, NOW).denial(),
            Some(DenyReason::ConsentRequired)
        );
        let note = Ask {
            record: Some(RecordRef {
                id: Uuid::from_u128(0x77),
                domain: Domain::ClinicalNote,
            }),
            ..read()
        };
        assert_eq!(
            run(doctor(), note, NOW).denial(),
            Some(DenyReason::ConsentRequired)
        );
        let medication = Ask {
            record: Some(RecordRef {
                id: Uuid::from_u128(0x78),
                domain: Domain::Medication,
            }),
            ..read()
        };
        assert_eq!(
            run(doctor(), medication, NOW).denial(),
            Some(DenyReason::Restricted)
        );
    }

    #[test]
    fn only_a_doctor_without_another_way_in_may_break_the_glass() {
        let c = [consent(ConsentKind::Indefinite, NOW - Duration::days(3))];
        assert_eq!(may_break_glass(&doctor(), true, &[], NOW), Ok(()));
        assert_eq!(
            may_break_glass(&doctor(), true, &c, NOW),
            Err(BreakGlassRefused::NotNeeded)
        );
        let public = Requester {
            hcp_deemed_consent: true,
            ..doctor()
        };
        assert_eq!(
            may_break_glass(&public, true, &[], NOW),
            Err(BreakGlassRefused::NotNeeded)
        );
        let nurse = Requester {
            role: Role::Nurse,
            ..doctor()
        };
        assert_eq!(
            may_break_glass(&nurse, true, &[], NOW),
            Err(BreakGlassRefused::NotADoctor)
        );
        let system = Requester {
            account: None,
            ..doctor()
        };
        assert_eq!(
            may_break_glass(&system, true, &[], NOW),
            Err(BreakGlassRefused::NotADoctor)
        );
        assert_eq!(
            may_break_glass(&doctor(), false, &[], NOW),
            Err(BreakGlassRefused::Standing(
                DenyReason::RecipientNotRegistered
            ))
        );
    }

    #[test]
    fn under_2025_joining_alone_lets_a_provider_deposit_without_consent_or_episode() {
        let deposit = Ask {
            action: Action::Deposit,
            domains: &[Domain::Diagnosis],
            ..read()
        };
        let Decision::Permit { basis, obligations } =
            decide_with(doctor(), &[], &[], &[], deposit, Regime::Y2025)
        else {
            panic!("a 2025 deposit needs neither consent nor episode");
        };
        assert_eq!((basis.consent, basis.episode), (None, None));
        assert!(
            !obligations.alert_no_episode,
            "a lawful deposit raises no alert"
        );
        let c = [consent(ConsentKind::Indefinite, NOW - Duration::days(3))];
        assert_eq!(
            decide_with(doctor(), &c, &[], &[], deposit, Regime::Y2016).denial(),
            Some(DenyReason::NoCareRelationship)
        );
        // Viewing still needs both under 2025.
        let untyped = [consent(ConsentKind::Untyped, NOW - Duration::days(3))];
        assert_eq!(
            decide_with(doctor(), &untyped, &[], &[], read(), Regime::Y2025).denial(),
            Some(DenyReason::NoCareRelationship)
        );
        assert!(
            decide_with(doctor(), &untyped, &[episode()], &[], read(), Regime::Y2025)
                .denial()
                .is_none()
        );
    }

    #[test]
    fn the_role_narrows_what_is_shown_and_a_stated_reason_raises_an_alert() {
        let c = [consent(ConsentKind::Indefinite, NOW - Duration::days(3))];
        let pharmacist = Requester {
            role: Role::Pharmacist,
            ..doctor()
        };
        let Decision::Permit { obligations, .. } =
            decide_with(pharmacist, &c, &[episode()], &[], read(), Regime::Y2016)
        else {
            panic!("permitted")
        };
        assert!(obligations.domains.contains(&Domain::Medication));
        assert!(!obligations.domains.contains(&Domain::ClinicalNote));
        let note = Ask {
            record: Some(RecordRef {
                id: Uuid::from_u128(9),
                domain: Domain::ClinicalNote,
            }),
            ..read()
        };
        assert_eq!(
            decide_with(pharmacist, &c, &[episode()], &[], note, Regime::Y2016).denial(),
            Some(DenyReason::RoleNotPermitted)
        );

        let with_reason = Ask {
            reason: Some("emergency: unconscious on arrival"),
            ..read()
        };
        let Decision::Permit { basis, obligations } =
            decide_with(doctor(), &c, &[], &[], with_reason, Regime::Y2016)
        else {
            panic!("permitted on a stated reason")
        };
        assert_eq!(basis.episode, None);
        assert!(obligations.alert_no_episode);
        let blank = Ask {
            reason: Some("   "),
            ..read()
        };
        assert_eq!(
            decide_with(doctor(), &c, &[], &[], blank, Regime::Y2016).denial(),
            Some(DenyReason::NoCareRelationship)
        );
    }

    #[test]
    fn restricted_items_are_hidden_until_unlocked_for_this_provider_and_episode() {
        let c = [consent(ConsentKind::Indefinite, NOW - Duration::days(3))];
        let e = [episode()];
        let mut r = Restriction {
            id: Uuid::from_u128(0xF1),
            item: Restricted::Domain(Domain::ClinicalNote),
            unlocks: vec![],
        };
        let Decision::Permit { obligations, .. } = decide_with(
            doctor(),
            &c,
            &e,
            std::slice::from_ref(&r),
            read(),
            Regime::Y2016,
        ) else {
            panic!()
        };
        assert!(
            obligations
                .hidden
                .contains(&Restricted::Domain(Domain::ClinicalNote))
        );
        assert!(obligations.unlocked.is_empty());
        // Unlocked for another provider, or for another episode, or expired: still hidden.
        for u in [
            Unlock {
                hcp: OTHER,
                episode: e[0].id,
                until: NOW + Duration::hours(1),
            },
            Unlock {
                hcp: HCP,
                episode: Uuid::from_u128(0xE2),
                until: NOW + Duration::hours(1),
            },
            Unlock {
                hcp: HCP,
                episode: e[0].id,
                until: NOW,
            },
        ] {
            r.unlocks = vec![u];
            let Decision::Permit { obligations, .. } = decide_with(
                doctor(),
                &c,
                &e,
                std::slice::from_ref(&r),
                read(),
                Regime::Y2016,
            ) else {
                panic!()
            };
            assert_eq!(obligations.hidden.len(), 1, "{u:?}");
        }
        r.unlocks = vec![Unlock {
            hcp: HCP,
            episode: e[0].id,
            until: NOW + Duration::hours(4),
        }];
        let Decision::Permit { obligations, .. } = decide_with(
            doctor(),
            &c,
            &e,
            std::slice::from_ref(&r),
            read(),
            Regime::Y2016,
        ) else {
            panic!()
        };
        assert!(obligations.hidden.is_empty());
        assert_eq!(obligations.unlocked, vec![r.id]);
    }

    /// A reference model written independently, as a table of conditions in order.
    fn model(
        who: &Requester,
        registered: bool,
        consents: &[Consent],
        episodes: &[Episode],
        ask: &Ask<'_>,
        regime: Regime,
        profiles: &AccessProfiles,
    ) -> Option<DenyReason> {
        let role_domains: Vec<Domain> = Domain::ALL
            .into_iter()
            .filter(|d| profiles.permits(who.role, *d))
            .collect();
        let asked: Vec<Domain> = if ask.domains.is_empty() {
            Domain::ALL.to_vec()
        } else {
            ask.domains.to_vec()
        };
        let any_allowed = asked.iter().any(|d| role_domains.contains(d));
        let all_allowed = asked.iter().all(|d| role_domains.contains(d));
        let needs_consent =
            !who.hcp_deemed_consent && (ask.action == Action::Read || regime == Regime::Y2016);
        let mine: Vec<&Consent> = consents
            .iter()
            .filter(|c| c.hcp == who.hcp && c.given_at <= NOW)
            .collect();
        let in_force = mine.iter().any(|c| {
            c.revoked_at.is_none_or(|r| r > NOW)
                && (c.kind != ConsentKind::OneYear || NOW < c.expires_at().unwrap_or(NOW))
        });
        let expired = mine.iter().any(|c| {
            c.revoked_at.is_none_or(|r| r > NOW)
                && c.kind == ConsentKind::OneYear
                && NOW >= c.expires_at().unwrap_or(NOW)
        });
        let w = CareWindow::default();
        // The model's own reading of SPEC 3.5 and issue 26: the end recorded, else the
        // earlier of the planned end (or the activity after it) and 90 days after the last
        // activity.
        let cared = episodes.iter().any(|e| {
            let active = e.last_activity.map_or(e.start, |a| a.max(e.start));
            let end = e.end.unwrap_or_else(|| {
                e.planned_end
                    .map_or(active + w.idle, |p| p.max(active).min(active + w.idle))
            });
            let last = if end < e.start { end } else { end + w.after };
            e.hcp == who.hcp && NOW >= e.start - w.before && NOW <= last
        });
        let needs_care = ask.action == Action::Read || regime == Regime::Y2016;
        let reason = ask.reason.is_some_and(|r| !r.trim().is_empty());
        let rules: [(bool, DenyReason); 8] = [
            (!who.account_active, DenyReason::AccountInactive),
            (!who.hcp_active, DenyReason::ProviderInactive),
            (!registered, DenyReason::RecipientNotRegistered),
            (
                !any_allowed || (ask.action == Action::Deposit && !all_allowed),
                DenyReason::RoleNotPermitted,
            ),
            (
                needs_consent && !in_force && expired,
                DenyReason::ConsentExpired,
            ),
            (needs_consent && !in_force, DenyReason::ConsentRequired),
            (
                needs_care && !cared && !reason,
                DenyReason::NoCareRelationship,
            ),
            (false, DenyReason::Restricted),
        ];
        rules.into_iter().find(|(cond, _)| *cond).map(|(_, r)| r)
    }

    fn arb_time() -> impl Strategy<Value = OffsetDateTime> {
        (-800i64..60)
            .prop_map(|days| NOW + Duration::days(days) + Duration::seconds(days * 37 % 86_400))
    }

    fn arb_consent() -> impl Strategy<Value = Consent> {
        (
            prop::bool::ANY,
            0..3usize,
            arb_time(),
            prop::option::of(arb_time()),
        )
            .prop_map(|(mine, kind, given, revoked)| Consent {
                id: Uuid::from_u128(given.unix_timestamp() as u128),
                hcp: if mine { HCP } else { OTHER },
                kind: [
                    ConsentKind::OneYear,
                    ConsentKind::Indefinite,
                    ConsentKind::Untyped,
                ][kind],
                given_at: given,
                revoked_at: revoked,
            })
    }

    fn arb_episode() -> impl Strategy<Value = Episode> {
        (
            prop::bool::ANY,
            arb_time(),
            prop::option::of(0i64..60),
            prop::option::of(1i64..60),
            prop::option::of(0i64..120),
        )
            .prop_map(|(mine, start, days, planned, active)| Episode {
                id: Uuid::from_u128(start.unix_timestamp() as u128 + 1),
                hcp: if mine { HCP } else { OTHER },
                start,
                end: days.map(|d| start + Duration::days(d)),
                planned_end: planned.map(|d| start + Duration::days(d)),
                last_activity: active.map(|d| start + Duration::days(d)),
            })
    }

    proptest! {
        #[test]
        fn the_decision_agrees_with_the_reference_model(
            active in prop::bool::weighted(0.9),
            hcp_active in prop::bool::weighted(0.9),
            deemed in prop::bool::weighted(0.2),
            registered in prop::bool::weighted(0.9),
            role in 0..Role::ALL.len(),
            consents in prop::collection::vec(arb_consent(), 0..4),
            episodes in prop::collection::vec(arb_episode(), 0..3),
            deposit in prop::bool::ANY,
            domains in prop::collection::vec(0..Domain::ALL.len(), 0..3),
            reason in prop::option::of(prop::sample::select(vec!["", " ", "emergency"])),
            y2025 in prop::bool::ANY,
        ) {
            let profiles = crate::profile::spec_default();
            let who = Requester { account: Some(ACCOUNT), account_active: active, role: Role::ALL[role], hcp: HCP, hcp_active, hcp_deemed_consent: deemed };
            let domains: Vec<Domain> = domains.into_iter().map(|i| Domain::ALL[i]).collect();
            let action = if deposit { Action::Deposit } else { Action::Read };
            // A deposit always names its domain.
            let domains = if deposit && domains.is_empty() { vec![Domain::Diagnosis] } else { domains };
            let ask = Ask { action, domains: &domains, record: None, reason };
            let regime = if y2025 { Regime::Y2025 } else { Regime::Y2016 };
            let decision = decide(
                &who,
                &RecipientFacts { registered, consents: &consents, episodes: &episodes, restrictions: &[], emergency: &[] },
                &ask,
                &Policy { regime, window: CareWindow::default(), profiles: &profiles },
                NOW,
            );
            let expected = model(&who, registered, &consents, &episodes, &ask, regime, &profiles);
            prop_assert_eq!(decision.denial(), expected, "{:?}", decision);
            if let Decision::Permit { obligations, basis } = decision {
                prop_assert!(obligations.domains.iter().all(|d| profiles.permits(who.role, *d)));
                let needs_care = action == Action::Read || regime == Regime::Y2016;
                prop_assert_eq!(obligations.alert_no_episode, needs_care && basis.episode.is_none());
            }
        }
    }

    #[test]
    fn one_reads_every_domain_of_ones_own_record_restricted_items_included() {
        let d = decide_own(Owner::Recipient, true, &read());
        let Decision::Permit { basis, obligations } = d else {
            panic!("{d:?}")
        };
        assert!(basis.own);
        assert_eq!(basis.consent, None);
        assert_eq!(obligations.domains.len(), Domain::ALL.len());
        assert!(obligations.hidden.is_empty());
        assert!(!obligations.alert_no_episode);
        let one = Ask {
            action: Action::Read,
            domains: &[],
            record: Some(RecordRef {
                id: Uuid::from_u128(7),
                domain: Domain::ClinicalNote,
            }),
            reason: None,
        };
        assert!(matches!(
            decide_own(Owner::Sdm { may_act: true }, true, &one),
            Decision::Permit { .. }
        ));
    }

    #[test]
    fn an_ended_sdm_an_inactive_registration_and_deposits_are_refused() {
        assert_eq!(
            decide_own(Owner::Sdm { may_act: false }, true, &read()).denial(),
            Some(DenyReason::SdmAuthorityEnded)
        );
        assert_eq!(
            decide_own(Owner::Recipient, false, &read()).denial(),
            Some(DenyReason::RecipientNotRegistered)
        );
        let deposit = Ask {
            action: Action::Deposit,
            domains: &[Domain::Diagnosis],
            record: None,
            reason: None,
        };
        assert_eq!(
            decide_own(Owner::Recipient, true, &deposit).denial(),
            Some(DenyReason::RoleNotPermitted)
        );
    }

    #[test]
    fn exposure_lists_what_the_decision_would_allow_now() {
        let in_force = consent(ConsentKind::OneYear, NOW - Duration::days(10));
        let expired = Consent {
            id: Uuid::from_u128(0xC2),
            hcp: OTHER,
            ..consent(ConsentKind::OneYear, NOW - Duration::days(400))
        };
        let revoked = Consent {
            id: Uuid::from_u128(0xC3),
            hcp: OTHER,
            revoked_at: Some(NOW - Duration::days(1)),
            ..consent(ConsentKind::Indefinite, NOW - Duration::days(5))
        };
        let old = Episode {
            id: Uuid::from_u128(0xE2),
            start: NOW - Duration::days(400),
            end: Some(NOW - Duration::days(300)),
            ..episode()
        };
        let restriction = Restriction {
            id: Uuid::from_u128(0xF1),
            item: Restricted::Domain(Domain::ClinicalNote),
            unlocks: vec![
                Unlock {
                    hcp: HCP,
                    episode: episode().id,
                    until: NOW + Duration::hours(1),
                },
                Unlock {
                    hcp: HCP,
                    episode: episode().id,
                    until: NOW,
                },
            ],
        };
        let grants = [
            EmergencyAccess {
                id: Uuid::from_u128(0xD1),
                hcp: OTHER,
                account: ACCOUNT,
                until: NOW + Duration::minutes(5),
            },
            EmergencyAccess {
                id: Uuid::from_u128(0xD2),
                hcp: OTHER,
                account: ACCOUNT,
                until: NOW,
            },
        ];
        let facts = RecipientFacts {
            registered: true,
            consents: &[in_force, expired, revoked],
            episodes: &[episode(), old],
            restrictions: std::slice::from_ref(&restriction),
            emergency: &grants,
        };
        let e = exposure(&facts, NOW, CareWindow::default());
        assert_eq!(e.consents, vec![(in_force, in_force.expires_at())]);
        assert_eq!(e.episodes, vec![episode()]);
        assert_eq!(e.unlocks.len(), 1, "the end instant is over");
        assert_eq!(e.emergency.len(), 1);
        assert_eq!(e.emergency[0].id, Uuid::from_u128(0xD1));
    }
}
