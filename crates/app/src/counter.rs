//! Finding a recipient at a provider's counter (SPEC 3.8): by identity document, with their
//! care at the provider, and registering them there.

use ehrshare_core::audit::Outcome;
use ehrshare_core::consent::Consent;
use ehrshare_core::profession::Role;
use ehrshare_core::registration::{DocumentInput, RegistrationChannel, RegistrationInput};
use ehrshare_store::consent::ConsentRow;
use ehrshare_store::episode::EpisodeRow;
use uuid::Uuid;

use crate::access::{Asker, core_consent};
use crate::auth::Session;
use crate::caller::Caller;
use crate::{App, AppError};

/// A recipient as a provider's user finds them at the counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub date_of_birth: String,
    pub status: ehrshare_core::recipient::RecipientStatus,
}

/// A recipient's care at the asking provider ([`App::care_here`]).
#[derive(Debug, Clone)]
pub struct CareHere {
    /// The sharing consent in force with this provider.
    pub consent: Option<ConsentRow>,
    /// Care episodes at this provider not yet closed, newest first.
    pub open_episodes: Vec<EpisodeRow>,
}

impl App {
    /// Finds a recipient by identity document for a provider's user (the counter): audited,
    /// with the recipient found or `not-found`.
    pub async fn find_recipient(
        &self,
        session: &Session,
        caller: &Caller,
        kind: &str,
        issuer: Option<&str>,
        number: &str,
    ) -> Result<Found, AppError> {
        let asker = self
            .counter_user(session, ehrshare_core::oauth::Access::Search)
            .await?;
        let doc = DocumentInput {
            kind: kind.to_owned(),
            issuer: issuer.map(str::to_owned),
            number: number.to_owned(),
        }
        .parse("/document")
        .map_err(|e| AppError::Invalid {
            code: e.code,
            message: e.message.clone(),
            fields: vec![e],
        })?;
        let found = self
            .db()
            .recipient_by_document(doc.kind.code(), &doc.issuer, &doc.number)
            .await?
            .filter(|id| asker.launch_patient.is_none_or(|p| p == *id));
        self.found(caller, "recipient.find", found).await
    }

    /// The recipient a provider's user found before, again by id (the counter's patient page):
    /// audited as a look-up is.
    pub async fn recipient_at_counter(
        &self,
        session: &Session,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Found, AppError> {
        let asker = self
            .counter_user(session, ehrshare_core::oauth::Access::Read)
            .await?;
        // A token launched for one patient finds no other: as if they were not there.
        let found = self
            .db()
            .recipient(id)
            .await?
            .map(|(r, _)| r.id)
            .filter(|id| asker.launch_patient.is_none_or(|p| p == *id));
        self.found(caller, "recipient.show", found).await
    }

    /// The recipient's care at the user's own provider, for the counter's patient page: the
    /// sharing consent in force there (if any) and the care episodes still open there. Part of
    /// the page a look-up opened (audited there); nothing of other providers.
    pub async fn care_here(
        &self,
        session: &Session,
        recipient: Uuid,
    ) -> Result<CareHere, AppError> {
        let hcp = self
            .counter_user(session, ehrshare_core::oauth::Access::Read)
            .await?
            .requester
            .hcp;
        let now = self.clock().now();
        let f = self
            .db()
            .recipient_facts(recipient, &[])
            .await?
            .ok_or(AppError::NotFound)?;
        let consents: Vec<Consent> = f.consents.iter().filter_map(core_consent).collect();
        let in_force = ehrshare_core::access::consent_in_force(&consents, hcp, now).ok();
        let consent = f.consents.into_iter().find(|c| Some(c.id) == in_force);
        let open_episodes = f
            .episodes
            .into_iter()
            .filter(|e| {
                e.hcp_id == hcp
                    && crate::access::core_episode(e).is_open(now, self.settings().care_window.idle)
            })
            .collect();
        Ok(CareHere {
            consent,
            open_episodes,
        })
    }

    /// Registers a recipient at the user's provider (SPEC 3.2, channel `hcp`: identity seen
    /// at the counter, active at once): the same registration as the office's, by whoever may
    /// look recipients up there. The access key goes to the recipient.
    pub async fn register_at_provider(
        &self,
        session: &Session,
        caller: &Caller,
        input: RegistrationInput,
    ) -> Result<crate::recipient::Registration, AppError> {
        self.counter_user(session, ehrshare_core::oauth::Access::Search)
            .await?;
        let input = RegistrationInput {
            channel: RegistrationChannel::Hcp.code().to_owned(),
            ..input
        };
        self.register_recipient(caller, input).await
    }

    /// Who may look recipients up: a professional or registration staff of a provider (not a
    /// user administrator, not a clinic system alone), with a token (if any) that reads
    /// Patients.
    pub(crate) async fn counter_user(
        &self,
        session: &Session,
        access: ehrshare_core::oauth::Access,
    ) -> Result<Asker, AppError> {
        let asker = self.asker(session).await?;
        if asker.system_only || asker.requester.role == Role::UserAdministrator {
            return Err(AppError::NotFound);
        }
        // A look-up by document is a search; a patient by id, a read (SMART v2's `s`, `r`).
        asker.require_scope(access, "Patient")?;
        Ok(asker)
    }

    /// Audits a look-up's outcome and answers with what the counter may see.
    async fn found(
        &self,
        caller: &Caller,
        action: &'static str,
        found: Option<Uuid>,
    ) -> Result<Found, AppError> {
        let mut entry = caller.entry(self, action, Outcome::Allowed);
        entry.recipient = found;
        if found.is_none() {
            entry.outcome = Outcome::Denied;
            entry.denial_reason = Some("not-found".to_owned());
        }
        self.audit(entry).await?;
        let id = found.ok_or(AppError::NotFound)?;
        let r = self.load_recipient(id).await?.recipient;
        Ok(Found {
            id,
            name_en: r.name_en,
            name_zh: r.name_zh,
            date_of_birth: r.date_of_birth,
            status: r.status,
        })
    }
}
