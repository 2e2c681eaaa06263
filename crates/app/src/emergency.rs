//! Emergency access, "break-glass" (SPEC 3.11): a doctor opens a registered recipient's
//! record without a sharing consent, on a stated reason, for four hours, the emergency domains
//! only. Off unless the deployment allows it and the provider's user administrator turned it
//! on. Each grant notifies the recipient at once on every channel they have, opens an alert
//! for the provider's privacy review and the office, and a user's repeated use raises a
//! further alert. The reads themselves are decided by `core::access::decide` on the grant,
//! each audited with the flag [`crate::access::BREAK_GLASS`].

use ehrshare_core::access::{BreakGlassRefused, EMERGENCY_ACCESS, EmergencyReason};
use ehrshare_core::alert::AlertStatus;
use ehrshare_core::audit::Outcome;
use ehrshare_core::notification::{Carries, Channel, every_channel};
use ehrshare_core::recipient::RecipientStatus;
use ehrshare_store::alert::AlertRow;
use ehrshare_store::emergency::NewEmergencyAccess;
use ehrshare_store::{Conn, change};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::Session;
use crate::caller::Caller;
use crate::error::invalid;
use crate::recipient::{address_of, messaged_sdm, recipient_notice};
use crate::{App, AppError};

/// The longest free text of a reason.
const DETAILS_MAX: usize = 500;

/// A grant as answered.
#[derive(Debug, Clone)]
pub struct Granted {
    pub id: Uuid,
    pub until: OffsetDateTime,
    /// The domains it shows (codes).
    pub domains: Vec<String>,
}

impl App {
    /// The provider's user administrator turns emergency access on or off for the provider
    /// (403 `break-glass-disabled` to turn it on where the deployment does not allow it).
    /// Audited.
    pub async fn set_break_glass(
        &self,
        session: &Session,
        caller: &Caller,
        hcp: Uuid,
        enabled: bool,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let admin = session
            .account()
            .filter(|a| a.hcp_id == Some(hcp) && a.user_admin)
            .ok_or(AppError::NotFound)?;
        if enabled && !self.settings().break_glass.enabled {
            return Err(disabled());
        }
        let by = admin.id;
        let mut entry = caller.entry(self, "break-glass.configure", Outcome::Allowed);
        entry.reason = Some(if enabled { "on" } else { "off" }.to_owned());
        let set = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::emergency::set_break_glass(conn, hcp, enabled, by, now).await
            })
        });
        self.audit_with(entry, set).await?;
        Ok(())
    }

    /// A doctor breaks the glass for a recipient: `reason` one of
    /// [`EmergencyReason`]'s codes, `details` free text. Refusals are audited.
    pub async fn break_glass(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        reason: &str,
        details: &str,
    ) -> Result<Granted, AppError> {
        let now = self.clock().now();
        // The request's own shape first: nothing decided, nothing stored.
        let reason = EmergencyReason::parse(reason.trim()).ok_or_else(|| {
            invalid(
                "/reason",
                "invalid-emergency-reason",
                "unconscious, life-threatening, unable-to-communicate or other",
            )
        })?;
        // Shown to people (the alert's reviewers): no control or bidirectional characters.
        let mut problems = Vec::new();
        let details = ehrshare_core::field::display_text(
            &mut problems,
            "/details",
            details,
            DETAILS_MAX,
            true,
        )
        .ok_or_else(|| crate::error::invalid_fields("the emergency's details", problems))?;
        let asker = self.asker(session).await?;
        // The audit entry names the reason's code only: free text in a permanent log about a
        // patient is not for anyone at any provider to write (ADR 0017). The words stay with
        // the grant and its alert.
        let mut entry = caller.entry(self, "break-glass", Outcome::Denied);
        entry.recipient = Some(recipient);
        entry.reason = Some(reason.code().to_owned());
        let hcp = asker.requester.hcp;
        let switched_on =
            self.settings().break_glass.enabled && self.db().break_glass_enabled(hcp).await?;
        if !switched_on {
            // Before the recipient is looked up: a provider without the feature learns
            // nothing of who is registered.
            entry.denial_reason = Some(disabled().code().to_owned());
            self.audit(entry).await?;
            return Err(disabled());
        }
        let facts = match self.facts(recipient, &[]).await {
            Err(AppError::NotFound) => {
                entry.recipient = None;
                entry.record_ids = vec![recipient];
                entry.denial_reason = Some("not-found".to_owned());
                self.audit(entry).await?;
                return Err(AppError::NotFound);
            }
            other => other?,
        };
        let refusal = if asker.system_only
            || asker.scopes.is_some()
            || asker.launch_patient.is_some_and(|p| p != recipient)
        {
            // A person at a browser, never an app's token: the reason is theirs to state.
            Some(crate::access::deny_error(
                ehrshare_core::access::DenyReason::RoleNotPermitted,
            ))
        } else {
            let registered = facts.registration.recipient.status == RecipientStatus::Active;
            ehrshare_core::access::may_break_glass(
                &asker.requester,
                registered,
                &facts.consents,
                now,
            )
            .err()
            .map(|refused| match refused {
                BreakGlassRefused::Standing(reason) => crate::access::deny_error(reason),
                BreakGlassRefused::NotADoctor => {
                    crate::access::deny_error(ehrshare_core::access::DenyReason::RoleNotPermitted)
                }
                BreakGlassRefused::NotNeeded => AppError::Conflict {
                    code: "break-glass-not-needed",
                    message: "a sharing consent or deemed consent already allows access".to_owned(),
                },
            })
        };
        if let Some(error) = refusal {
            entry.denial_reason = Some(error.code().to_owned());
            self.audit(entry).await?;
            return Err(error);
        }
        let account = asker.account.ok_or(AppError::NotFound)?;
        let until = now + EMERGENCY_ACCESS;
        let grant = NewEmergencyAccess {
            id: Uuid::now_v7(),
            recipient_id: recipient,
            hcp_id: hcp,
            account_id: account,
            reason: reason.code().to_owned(),
            details: details.clone(),
            started_at: now,
            until,
        };
        let earlier = self
            .db()
            .emergency_grants_since(account, now - time::Duration::days(7))
            .await?;
        let alert = |rule: &str| AlertRow {
            id: Uuid::now_v7(),
            rule: rule.to_owned(),
            hcp_id: Some(hcp),
            account_id: Some(account),
            recipient_id: Some(recipient),
            detail: Some(format!("{}: {details}", reason.code())),
            status: AlertStatus::Open,
            note: None,
            audit_seq: None,
            reported_by: None,
            created_at: now,
        };
        let mut alerts = vec![alert("break-glass")];
        let limit = i64::from(self.settings().break_glass.repeat_per_week.max(1));
        if earlier + 1 >= limit {
            alerts.push(alert("break-glass-repeated"));
        }
        entry.outcome = Outcome::Allowed;
        entry.record_ids = vec![grant.id];
        let domains: Vec<String> = self
            .settings()
            .access_profiles
            .emergency_domains()
            .iter()
            .map(|d| d.code().to_owned())
            .collect();
        entry.domains = domains.clone();
        // At once on every channel the recipient has (SPEC 3.11), not only their chosen one.
        let r = &facts.registration.recipient;
        let hk = ehrshare_core::clock::in_hong_kong(now);
        let params = std::collections::BTreeMap::from([
            (
                "provider".to_owned(),
                format!("{} {}", asker.hcp_names.1, asker.hcp_names.0),
            ),
            (
                "time".to_owned(),
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}",
                    hk.year(),
                    u8::from(hk.month()),
                    hk.day(),
                    hk.hour(),
                    hk.minute()
                ),
            ),
            // The code, put into words by each language's message: the doctor's free text
            // is not sent to the patient under the office's name.
            ("reason".to_owned(), reason.code().to_owned()),
        ]);
        let first = recipient_notice(r, None, "emergency-access", Carries::News, params);
        let chosen = Channel::parse(&r.notify_channel).unwrap_or(Channel::Sms);
        let mut notices: Vec<_> = every_channel(chosen, r.email.is_some())
            .into_iter()
            .map(|channel| {
                let mut n = first.clone();
                n.channel = channel;
                n.address = address_of(r, channel);
                n
            })
            .collect();
        // And the SDM who acts for the recipient now, by the SDM's own channel.
        if let Some(s) = messaged_sdm(&facts.registration, now)? {
            notices.push(recipient_notice(
                r,
                Some(s),
                "emergency-access",
                Carries::News,
                first.params.clone(),
            ));
        }
        let stored = grant.clone();
        let store = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::emergency::insert_emergency_access(conn.reborrow(), &stored)
                    .await?;
                for a in &alerts {
                    ehrshare_store::alert::insert_alert(conn.reborrow(), a).await?;
                }
                Ok(())
            })
        });
        self.audit_and_notify(entry, Some(store), notices).await?;
        Ok(Granted {
            id: grant.id,
            until,
            domains,
        })
    }
}

/// Emergency access is not switched on (for the deployment or the provider).
fn disabled() -> AppError {
    AppError::Forbidden {
        code: "break-glass-disabled",
        message: "emergency access is not turned on for this provider".to_owned(),
    }
}
