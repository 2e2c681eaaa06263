//! Care episodes (SPEC 3.5): opened and closed by a provider's users.

use ehrshare_core::audit::Outcome;
use ehrshare_core::episode::EpisodeKind;
use ehrshare_core::recipient::RecipientStatus;
use ehrshare_store::episode::EpisodeRow;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::access::Asker;
use crate::auth::Session;
use crate::caller::Caller;
use crate::error::invalid;
use crate::recipient::Registration;
use crate::{App, AppError};

impl App {
    /// Refuses, audited, unless the requester may record the recipient's care at the counter
    /// (`core::access::may_record_care`); a clinic system alone never may.
    pub(crate) async fn check_care_recording(
        &self,
        asker: &Asker,
        caller: &Caller,
        action: &'static str,
        reg: &Registration,
    ) -> Result<(), AppError> {
        let refusal = if asker.system_only {
            Some(AppError::Forbidden {
                code: "professional-required",
                message: "a person at the provider records this, not a system alone".to_owned(),
            })
        } else if asker.launch_patient.is_some_and(|p| p != reg.recipient.id) {
            // A token launched for one patient changes nothing of anyone else's (ADR 0015).
            Some(crate::access::deny_error(
                ehrshare_core::access::DenyReason::OutsideLaunch,
            ))
        } else {
            ehrshare_core::access::may_record_care(
                &asker.requester,
                reg.recipient.status == RecipientStatus::Active,
                &self.settings().access_profiles,
            )
            .err()
            .map(crate::access::deny_error)
        };
        let Some(error) = refusal else {
            return Ok(());
        };
        let mut entry = caller.entry(self, action, Outcome::Denied);
        entry.recipient = Some(reg.recipient.id);
        entry.denial_reason = Some(error.code().to_owned());
        self.audit(entry).await?;
        Err(error)
    }

    /// Opens a care episode at the caller's provider.
    pub async fn open_episode(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        kind: &str,
        location: Option<Uuid>,
    ) -> Result<EpisodeRow, AppError> {
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        let kind = EpisodeKind::parse(kind).ok_or_else(|| {
            invalid(
                "/kind",
                "invalid-episode-kind",
                "attendance, admission, appointment or referral",
            )
        })?;
        let reg = self.load_recipient(recipient).await?;
        self.check_care_recording(&asker, caller, "episode.open", &reg)
            .await?;
        let account = asker.account.ok_or(AppError::NotFound)?;
        if let Some(l) = location {
            let p = self.provider(asker.requester.hcp).await?;
            if !p.locations.iter().any(|x| x.id == l) {
                return Err(invalid(
                    "/location",
                    "unknown-location",
                    "not a location of this provider",
                ));
            }
        }
        let row = EpisodeRow {
            id: Uuid::now_v7(),
            recipient_id: recipient,
            hcp_id: asker.requester.hcp,
            location_id: location,
            kind: kind.code().to_owned(),
            start_at: now,
            end_at: None,
            opened_by: account,
            closed_by: None,
            created_at: now,
        };
        let mut entry = caller.entry(self, "episode.open", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.episode_id = Some(row.id);
        let stored = row.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::episode::insert_episode(conn, &stored).await })
        });
        self.audit_with(entry, insert).await?;
        Ok(row)
    }

    /// Closes an episode of the caller's provider (404 for another provider's).
    pub async fn close_episode(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        episode: Uuid,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        let account = asker.account.ok_or(AppError::NotFound)?;
        let e = self
            .db()
            .recipient_facts(recipient, &[])
            .await?
            .ok_or(AppError::NotFound)?
            .episodes
            .into_iter()
            .find(|e| e.id == episode && e.hcp_id == asker.requester.hcp)
            .ok_or(AppError::NotFound)?;
        if e.end_at.is_some() {
            return Err(AppError::Conflict {
                code: "episode-closed",
                message: "the episode is already closed".to_owned(),
            });
        }
        let mut entry = caller.entry(self, "episode.close", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.episode_id = Some(episode);
        let close = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::episode::close_episode(conn, episode, now, account)
                    .await
                    .map(|_| ())
            })
        });
        self.audit_with(entry, close).await?;
        Ok(())
    }
}
