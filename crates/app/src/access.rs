//! The policy enforcement point: who asks ([`Asker`]), the facts about a recipient
//! ([`Facts`]), the deployment's policy, the call to `core::access::decide` and its audit
//! entry, and how a refusal answers ([`deny_error`]). Every read or write of a patient's record
//! passes here; no other module decides.
//!
//! Security-sensitive: every decision is made by `core::access::decide` on facts loaded here,
//! never by code elsewhere, and a refusal is audited with its reason.

use ehrshare_core::access::{
    Ask, Decision, Policy, RecipientFacts, Requester, Restricted, Restriction as CoreRestriction,
    Unlock, decide,
};
use ehrshare_core::account::AccountStatus;
use ehrshare_core::audit::{NewAuditEntry, Outcome};
use ehrshare_core::consent::{Consent, ConsentKind};
use ehrshare_core::domain::Domain;
use ehrshare_core::episode::Episode;
use ehrshare_core::profession::Role;
use ehrshare_core::provider::Sector;
use ehrshare_core::recipient::RecipientStatus;
use ehrshare_store::consent::ConsentRow;
use uuid::Uuid;

use crate::auth::{Session, Subject};
use crate::caller::Caller;
use crate::recipient::Registration;
use crate::{App, AppError};

/// The facts about a recipient that decisions are made on.
#[derive(Debug, Clone)]
pub struct Facts {
    pub registration: Registration,
    pub consents: Vec<Consent>,
    pub episodes: Vec<Episode>,
    pub restrictions: Vec<CoreRestriction>,
    /// Emergency access granted to the recipient's record (SPEC 3.11).
    pub emergency: Vec<ehrshare_core::access::EmergencyAccess>,
    /// The current records loaded with the facts (only those of the domains asked for), to be
    /// released only under a permit.
    pub records: Vec<ehrshare_store::facts::ListedRecord>,
    /// The recipient's record revision those records are at (ADR 0023).
    pub record_rev: u64,
}

impl Facts {
    /// The facts as the decision reads them.
    pub(crate) fn recipient_facts(&self) -> RecipientFacts<'_> {
        RecipientFacts {
            registered: self.registration.recipient.status == RecipientStatus::Active,
            consents: &self.consents,
            episodes: &self.episodes,
            restrictions: &self.restrictions,
            emergency: &self.emergency,
        }
    }
}

/// Who is asking, for the decision, with the account (if any) behind it.
#[derive(Debug, Clone)]
pub struct Asker {
    pub requester: Requester,
    /// The provider's names, for notices.
    pub hcp_names: (String, String),
    pub account: Option<Uuid>,
    /// A clinic system acting on its own (client credentials): it may deposit, not read.
    pub system_only: bool,
    /// The scopes of an OAuth token (none for a browser session, which has its role alone).
    pub scopes: Option<Vec<ehrshare_core::oauth::Scope>>,
    /// The one patient a token launched for a patient reaches (`launch/patient`).
    pub launch_patient: Option<Uuid>,
}

impl Asker {
    /// Whether a token's scopes allow `access` to `resource_type` (a session always does: its
    /// role and the decision limit it). A token never reaches beyond what it was granted.
    pub fn scope_allows(&self, access: ehrshare_core::oauth::Access, resource_type: &str) -> bool {
        let Some(scopes) = &self.scopes else {
            return true;
        };
        let context = if self.system_only {
            ehrshare_core::oauth::Context::System
        } else {
            ehrshare_core::oauth::Context::User
        };
        // A `patient/` scope counts only in a token launched for a patient, whom
        // `decide_for` then holds it to.
        scopes.iter().any(|s| {
            s.allows(context, access, resource_type)
                || (self.launch_patient.is_some()
                    && s.allows(
                        ehrshare_core::oauth::Context::Patient,
                        access,
                        resource_type,
                    ))
        })
    }

    /// 403 `scope-not-granted` unless the token's scopes allow it.
    pub fn require_scope(
        &self,
        access: ehrshare_core::oauth::Access,
        resource_type: &str,
    ) -> Result<(), AppError> {
        if self.scope_allows(access, resource_type) {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                code: "scope-not-granted",
                message: format!("the token's scopes do not cover {resource_type}"),
            })
        }
    }
}

/// The 403 a denial reason answers with.
pub(crate) fn deny_error(reason: ehrshare_core::access::DenyReason) -> AppError {
    AppError::Forbidden {
        code: reason.code(),
        message: match reason {
            ehrshare_core::access::DenyReason::ConsentRequired => {
                "the recipient has not given this provider a sharing consent"
            }
            ehrshare_core::access::DenyReason::ConsentExpired => {
                "the recipient's sharing consent with this provider has expired"
            }
            ehrshare_core::access::DenyReason::NoCareRelationship => {
                "the recipient is not under this provider's care: open a care episode, or state a reason"
            }
            ehrshare_core::access::DenyReason::RoleNotPermitted => {
                "this role may not see that part of the record"
            }
            ehrshare_core::access::DenyReason::AccountInactive => "this account is not active",
            ehrshare_core::access::DenyReason::ProviderInactive => "this provider is not active",
            ehrshare_core::access::DenyReason::RecipientNotRegistered => {
                "the recipient's registration is not active"
            }
            ehrshare_core::access::DenyReason::Restricted => "restricted",
            ehrshare_core::access::DenyReason::OutsideLaunch => {
                "this token was launched for another patient"
            }
            ehrshare_core::access::DenyReason::SdmAuthorityEnded => {
                "the substitute decision maker's authority ended when the recipient turned 16"
            }
        }
        .to_owned(),
    }
}

/// A stored consent as the decision sees it (`None` for a kind this build does not know).
pub(crate) fn core_consent(c: &ConsentRow) -> Option<Consent> {
    Some(Consent {
        id: c.id,
        hcp: c.hcp_id,
        kind: ConsentKind::parse(&c.kind)?,
        given_at: c.given_at,
        revoked_at: c.revoked_at,
    })
}

impl App {
    /// The deployment's rules for decisions.
    pub(crate) fn policy(&self) -> Policy<'_> {
        Policy {
            regime: self.settings().regime,
            window: self.settings().care_window,
            profiles: &self.settings().access_profiles,
        }
    }

    /// The requester behind a session or token: a provider's user (or the professional a
    /// clinic system acts for), with the state of the account and of its provider now.
    /// Office staff and patients are not requesters of records here: 404.
    pub(crate) async fn asker(&self, session: &Session) -> Result<Asker, AppError> {
        let (account, hcp, system_only, scopes, launch_patient) = match &session.subject {
            Subject::Account(a) => (
                Some(a.clone()),
                a.hcp_id.ok_or(AppError::NotFound)?,
                false,
                None,
                None,
            ),
            Subject::Client(g) => (
                g.account.clone(),
                g.hcp_id,
                g.account.is_none(),
                Some(g.scopes.clone()),
                g.patient,
            ),
            Subject::Person(_) => return Err(AppError::NotFound),
        };
        let (provider, status) = self.provider_brief(hcp, self.clock().now()).await?;
        let role = match &account {
            Some(a) => Role::parse(&a.role).ok_or(AppError::NotFound)?,
            // A system on its own deposits for its provider as a whole.
            None => Role::Doctor,
        };
        Ok(Asker {
            requester: Requester {
                account: account.as_ref().map(|a| a.id),
                account_active: account
                    .as_ref()
                    .is_none_or(|a| a.status == AccountStatus::Active),
                role,
                hcp,
                hcp_active: status.is_active(),
                hcp_deemed_consent: provider.sector == Sector::Public,
            },
            hcp_names: (provider.name_en, provider.name_zh),
            account: account.map(|a| a.id),
            system_only,
            scopes,
            launch_patient,
        })
    }

    /// The facts about a recipient (404 if there is no such recipient), with the current
    /// records in `records_in` (domain codes; usually none).
    pub(crate) async fn facts(
        &self,
        recipient: Uuid,
        records_in: &[String],
    ) -> Result<Facts, AppError> {
        let f = self
            .db()
            .recipient_facts(recipient, records_in)
            .await?
            .ok_or(AppError::NotFound)?;
        let registration = Registration {
            recipient: f.registration,
            sdms: f.sdms,
        };
        let consents = f.consents.iter().filter_map(core_consent).collect();
        let episodes = f.episodes.into_iter().map(|e| core_episode(&e)).collect();
        let restrictions = f
            .restrictions
            .into_iter()
            .filter_map(|r| {
                let item = match (r.record_id, r.domain.as_deref().and_then(Domain::parse)) {
                    (Some(id), _) => Restricted::Record(id),
                    (None, Some(d)) => Restricted::Domain(d),
                    (None, None) => return None,
                };
                Some(CoreRestriction {
                    id: r.id,
                    item,
                    unlocks: r
                        .unlocks
                        .into_iter()
                        .map(|u| Unlock {
                            hcp: u.hcp_id,
                            episode: u.episode_id,
                            until: u.until,
                        })
                        .collect(),
                })
            })
            .collect();
        let emergency = f
            .emergency
            .iter()
            .map(|g| ehrshare_core::access::EmergencyAccess {
                id: g.id,
                hcp: g.hcp_id,
                account: g.account_id,
                until: g.until,
            })
            .collect();
        Ok(Facts {
            registration,
            consents,
            episodes,
            restrictions,
            emergency,
            records: f.records,
            record_rev: f.record_rev,
        })
    }

    /// Whom a patient-portal session may act for, checked now: themself (if registered) or a
    /// recipient they represent as SDM. Returns the SDM id when acting as one. One rule for
    /// every `/me` route (`App::owner_with_authority`): a stranger is 404, an SDM whose
    /// authority ended is 403 `sdm-authority-ended`, audited.
    pub(crate) async fn acting_for(
        &self,
        session: &Session,
        recipient: Uuid,
    ) -> Result<Option<Uuid>, AppError> {
        let caller = Caller {
            actor: session.actor(),
            request_id: None,
            client_addr: None,
        };
        self.owner_with_authority(session, &caller, recipient, "recipient.act-for")
            .await
    }

    /// Asks the one access decision, on the facts loaded for this request, now.
    pub(crate) fn decide_for(&self, asker: &Asker, facts: &Facts, ask: &Ask<'_>) -> Decision {
        let mut recipient = facts.recipient_facts();
        // A grant is a person's, at a browser: never an app's or a clinic system's token,
        // even one acting for that doctor (ADR 0017).
        if asker.scopes.is_some() || asker.system_only {
            recipient.emergency = &[];
        }
        // A token launched for one patient reaches no other, whatever else would allow it.
        if asker
            .launch_patient
            .is_some_and(|p| p != facts.registration.recipient.id)
        {
            return Decision::Deny {
                reason: ehrshare_core::access::DenyReason::OutsideLaunch,
            };
        }
        decide(
            &asker.requester,
            &recipient,
            ask,
            &self.policy(),
            self.clock().now(),
        )
    }

    /// The entry for a decision: outcome, reason, basis.
    pub(crate) fn decision_entry(
        &self,
        caller: &Caller,
        action: &'static str,
        recipient: Uuid,
        decision: &Decision,
        reason: Option<&str>,
    ) -> NewAuditEntry {
        let mut entry = caller.entry(self, action, Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.reason = reason.map(str::to_owned).filter(|r| !r.trim().is_empty());
        match decision {
            Decision::Deny { reason } => {
                entry.outcome = Outcome::Denied;
                entry.denial_reason = Some(reason.code().to_owned());
            }
            Decision::Permit { basis, obligations } => {
                entry.consent_id = basis.consent;
                entry.episode_id = basis.episode;
                // Every read on emergency access says so, with the grant, whatever else was
                // stated.
                if let Some(grant) = basis.emergency {
                    entry.reason = Some(format!("{BREAK_GLASS} {grant}"));
                }
                entry.domains = obligations
                    .domains
                    .iter()
                    .map(|d| d.code().to_owned())
                    .collect();
            }
        }
        entry
    }
}

/// The flag on every audit entry of a read on emergency access (SPEC 3.11).
pub const BREAK_GLASS: &str = "break-glass";

/// A stored episode as the decision sees it.
pub(crate) fn core_episode(e: &ehrshare_store::episode::EpisodeRow) -> Episode {
    Episode {
        id: e.id,
        hcp: e.hcp_id,
        start: e.start_at,
        end: e.end_at,
        planned_end: e.planned_end_at,
        last_activity: e.last_activity_at,
    }
}
