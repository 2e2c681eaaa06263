//! Care episodes (SPEC 3.5): opened and closed by a provider's users.

use ehrshare_core::audit::Outcome;
use ehrshare_core::episode::{Ending, EpisodeKind, PlanRefused};
use ehrshare_core::recipient::RecipientStatus;
pub use ehrshare_store::episode::EpisodeRow;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::access::Asker;
use crate::auth::Session;
use crate::caller::Caller;
use crate::error::invalid;
use crate::recipient::Registration;
use crate::{App, AppError};

/// The episode has ended (closed, planned or by itself).
fn ended() -> AppError {
    AppError::Conflict {
        code: "episode-ended",
        message: "the episode has ended; open a new one".to_owned(),
    }
}

/// At most this many open episodes are listed for review at once.
const OPEN_EPISODES_SHOWN: i64 = 500;

/// A care episode to open.
#[derive(Debug, Clone, Default)]
pub struct EpisodeInput {
    /// `attendance`, `admission`, `appointment` or `referral`.
    pub kind: String,
    pub location: Option<Uuid>,
    /// When it starts (none: now); ahead for an appointment booked ahead.
    pub start: Option<time::OffsetDateTime>,
    /// When it is planned to end, if known.
    pub planned_end: Option<time::OffsetDateTime>,
}

/// How an open episode will end if nothing more is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndsBy {
    /// At its planned end.
    Plan,
    /// After the configured period without a deposit or an attendance.
    Inactivity,
}

/// An open episode in a provider's review.
#[derive(Debug, Clone)]
pub struct OpenEpisode {
    pub episode: EpisodeRow,
    pub name_en: String,
    pub name_zh: Option<String>,
    /// When it ends if nothing more happens.
    pub ends_at: time::OffsetDateTime,
    pub ends_by: EndsBy,
}

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

    /// Opens a care episode at the caller's provider: now, or planned ahead (an appointment
    /// booked for next week opens the "before" window from its planned start), or recorded a
    /// little late; with a planned end if one is known (`core::episode::plan`).
    pub async fn open_episode(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        input: EpisodeInput,
    ) -> Result<EpisodeRow, AppError> {
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        let kind = EpisodeKind::parse(&input.kind).ok_or_else(|| {
            invalid(
                "/kind",
                "invalid-episode-kind",
                "attendance, admission, appointment or referral",
            )
        })?;
        let start = ehrshare_core::episode::plan(now, input.start, input.planned_end).map_err(
            |refused| match refused {
                PlanRefused::StartTooFarAhead => invalid(
                    "/start",
                    "episode-start-too-far-ahead",
                    "an episode may be planned at most 366 days ahead",
                ),
                PlanRefused::StartTooLongAgo => invalid(
                    "/start",
                    "episode-start-too-long-ago",
                    "an episode may be recorded at most 30 days after its start",
                ),
                PlanRefused::EndNotAfterStart => invalid(
                    "/planned_end",
                    "episode-end-not-after-start",
                    "the planned end must come after the start and after now",
                ),
                PlanRefused::EndTooFarAhead => invalid(
                    "/planned_end",
                    "episode-end-too-far-ahead",
                    "the planned end may be at most 366 days after the start",
                ),
            },
        )?;
        let reg = self.load_recipient(recipient).await?;
        self.check_care_recording(&asker, caller, "episode.open", &reg)
            .await?;
        let account = asker.account.ok_or(AppError::NotFound)?;
        if let Some(l) = input.location {
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
            location_id: input.location,
            kind: kind.code().to_owned(),
            start_at: start,
            end_at: None,
            opened_by: account,
            closed_by: None,
            created_at: now,
            planned_end_at: input.planned_end,
            last_activity_at: None,
        };
        let mut entry = caller.entry(self, "episode.open", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.episode_id = Some(row.id);
        // What widens the window is on the record: a start other than now, a planned end.
        let mut said = Vec::new();
        if start != now {
            said.push(format!("starts {start}"));
        }
        if let Some(end) = input.planned_end {
            said.push(format!("planned end {end}"));
        }
        entry.reason = (!said.is_empty()).then(|| said.join("; "));
        let stored = row.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::episode::insert_episode(conn, &stored).await })
        });
        self.audit_with(entry, insert).await?;
        Ok(row)
    }

    /// Records an attendance in an open episode of the caller's provider: activity, so the
    /// episode's end by itself moves to 90 days (configurable) from now. An episode that has
    /// ended (closed, or by itself) is 409 `episode-ended`: open a new one.
    pub async fn record_attendance(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        episode: Uuid,
    ) -> Result<EpisodeRow, AppError> {
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        // An attendance is an encounter written: a token needs that, or it could keep its own
        // read access alive by attendances alone.
        asker.require_scope(ehrshare_core::oauth::Access::Create, "Encounter")?;
        let reg = self.load_recipient(recipient).await?;
        self.check_care_recording(&asker, caller, "episode.attendance", &reg)
            .await?;
        let e = self
            .episode_audited(&asker, caller, "episode.attendance", recipient, episode)
            .await?;
        if !crate::access::core_episode(&e).takes_activity(now, self.settings().care_window.idle) {
            return Err(self
                .episode_refused(caller, "episode.attendance", recipient, episode, ended())
                .await?);
        }
        let mut entry = caller.entry(self, "episode.attendance", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.episode_id = Some(episode);
        let note = change(move |conn: Conn<'_>| {
            Box::pin(
                async move { ehrshare_store::episode::note_activity(conn, episode, now).await },
            )
        });
        self.audit_with(entry, note).await?;
        Ok(EpisodeRow {
            last_activity_at: Some(now),
            ..e
        })
    }

    /// [`App::episode_here`], its 404 audited as `action` refused.
    async fn episode_audited(
        &self,
        asker: &Asker,
        caller: &Caller,
        action: &'static str,
        recipient: Uuid,
        episode: Uuid,
    ) -> Result<EpisodeRow, AppError> {
        match self.episode_here(asker, recipient, episode).await {
            Err(AppError::NotFound) => Err(self
                .episode_refused(caller, action, recipient, episode, AppError::NotFound)
                .await?),
            other => other,
        }
    }

    /// Audits a refusal about an episode and answers the error to return.
    async fn episode_refused(
        &self,
        caller: &Caller,
        action: &'static str,
        recipient: Uuid,
        episode: Uuid,
        error: AppError,
    ) -> Result<AppError, AppError> {
        let mut entry = caller.entry(self, action, Outcome::Denied);
        entry.recipient = Some(recipient);
        entry.episode_id = Some(episode);
        entry.denial_reason = Some(error.code().to_owned());
        self.audit(entry).await?;
        Ok(error)
    }

    /// An episode of the asker's provider for `recipient` (404 for another provider's).
    async fn episode_here(
        &self,
        asker: &Asker,
        recipient: Uuid,
        episode: Uuid,
    ) -> Result<EpisodeRow, AppError> {
        self.db()
            .recipient_facts(recipient, &[])
            .await?
            .ok_or(AppError::NotFound)?
            .episodes
            .into_iter()
            .find(|e| e.id == episode && e.hcp_id == asker.requester.hcp)
            .ok_or(AppError::NotFound)
    }

    /// The caller's provider's episodes still open (not closed, not ended by themselves),
    /// oldest start first, with the recipients' names and when each ends if nothing more
    /// happens: for the provider's review of forgotten episodes. Audited; counter staff and
    /// professionals only (not a user administrator, not a system alone).
    pub async fn open_episodes(
        &self,
        session: &Session,
        caller: &Caller,
    ) -> Result<Vec<OpenEpisode>, AppError> {
        let asker = self
            .counter_user(session, ehrshare_core::oauth::Access::Search)
            .await?;
        // A token launched for one patient lists no one else; an inactive account or provider
        // lists no one.
        if asker.launch_patient.is_some() {
            return Err(AppError::NotFound);
        }
        // The decision's own standing rule (each listed recipient's is checked below).
        ehrshare_core::access::standing(&asker.requester, true)
            .map_err(crate::access::deny_error)?;
        let now = self.clock().now();
        let idle = self.settings().care_window.idle;
        let rows = self
            .db()
            .unclosed_episodes(asker.requester.hcp, now - idle, now, OPEN_EPISODES_SHOWN)
            .await?;
        let mut names = std::collections::HashMap::new();
        let mut open = Vec::new();
        for e in rows {
            let core = crate::access::core_episode(&e);
            if !core.is_open(now, idle) {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(v) = names.entry(e.recipient_id) {
                let r = self.load_recipient(e.recipient_id).await?.recipient;
                v.insert((r.status == RecipientStatus::Active).then_some((r.name_en, r.name_zh)));
            }
            // A recipient who withdrew is not listed (their record is not shared any more).
            let Some((name_en, name_zh)) = names[&e.recipient_id].clone() else {
                continue;
            };
            let (ends_at, ending) = core.ending(idle);
            open.push(OpenEpisode {
                ends_at,
                ends_by: match ending {
                    Ending::Plan => EndsBy::Plan,
                    Ending::Inactivity | Ending::Closed => EndsBy::Inactivity,
                },
                name_en,
                name_zh,
                episode: e,
            });
        }
        // One entry for each patient listed, so that each sees in their access log that their
        // name was shown; one for the review itself when nobody is.
        let mut entries: Vec<_> = open
            .iter()
            .map(|o| {
                let mut entry = caller.entry(self, "episode.review", Outcome::Allowed);
                entry.recipient = Some(o.episode.recipient_id);
                entry.episode_id = Some(o.episode.id);
                entry
            })
            .collect();
        if entries.is_empty() {
            entries.push(caller.entry(self, "episode.review", Outcome::Allowed));
        }
        let nothing = change(|_conn: Conn<'_>| Box::pin(async { Ok(()) }));
        self.audit_all_with(entries, nothing).await?;
        Ok(open)
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
            .episode_audited(&asker, caller, "episode.close", recipient, episode)
            .await?;
        if e.end_at.is_some() {
            let closed = AppError::Conflict {
                code: "episode-closed",
                message: "the episode is already closed".to_owned(),
            };
            return Err(self
                .episode_refused(caller, "episode.close", recipient, episode, closed)
                .await?);
        }
        // One that ended by itself stays ended: closing it now would restart its follow-up
        // window.
        if !crate::access::core_episode(&e).is_open(now, self.settings().care_window.idle) {
            return Err(self
                .episode_refused(caller, "episode.close", recipient, episode, ended())
                .await?);
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
