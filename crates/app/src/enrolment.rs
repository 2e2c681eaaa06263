//! Enrolling a security token (TOTP) at first login, and completing a provider's set-up.

use ehrshare_core::account::AccountEvent;
use ehrshare_core::audit::Outcome;
use ehrshare_core::provider::Event;
use ehrshare_store::account::AccountRow;
use ehrshare_store::{Conn, change};

use crate::auth::{Session, Stage, account_actor, stage_required, stale, uri_escape};
use crate::caller::Caller;
use crate::error::FieldError;
use crate::{App, AppError};

/// A token enrolment under way: the secret to show as an `otpauth://` URI and QR code.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub otpauth_uri: String,
    /// Base32, for typing into an authenticator by hand.
    pub secret: String,
}

impl App {
    /// Starts enrolling a security token: a fresh secret, kept as pending until a code from it
    /// is confirmed. Only allowed once the password has been changed.
    pub async fn begin_token_enrolment(
        &self,
        session: &Session,
        caller: &Caller,
    ) -> Result<Enrolment, AppError> {
        let account = session.account().ok_or(AppError::NotFound)?.clone();
        if session.stage == Stage::MustChangePassword {
            return Err(stage_required(Stage::MustChangePassword));
        }
        let secret = crate::secret::random_bytes::<20>()?.to_vec();
        let updated = AccountRow {
            totp_pending: Some(self.seal().seal(account.id, &secret)?),
            version: account.version + 1,
            ..account.clone()
        };
        let mut entry = caller.entry(self, "account.begin-token-enrolment", Outcome::Allowed);
        entry.record_ids = vec![account.id];
        let update = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                if ehrshare_store::account::update(conn, &updated).await? {
                    Ok(())
                } else {
                    Err(stale())
                }
            })
        });
        self.audit_with(entry, update).await?;
        let b32 = data_encoding::BASE32_NOPAD.encode(&secret);
        let issuer = &self.settings().auth.totp_issuer;
        let label = format!("{issuer}:{}", account.user_name);
        Ok(Enrolment {
            otpauth_uri: format!(
                "otpauth://totp/{}?secret={b32}&issuer={}&algorithm=SHA1&digits=6&period=30",
                uri_escape(&label),
                uri_escape(issuer)
            ),
            secret: b32,
        })
    }

    /// Confirms token enrolment with a code from the pending secret. A pending account
    /// becomes active; a user administrator's enrolment completes the provider's set-up.
    pub async fn confirm_token_enrolment(
        &self,
        session: &Session,
        caller: &Caller,
        code: &str,
    ) -> Result<Stage, AppError> {
        let now = self.clock().now();
        let account = session.account().ok_or(AppError::NotFound)?.clone();
        let token = session.token_hash.clone().ok_or(AppError::NotFound)?;
        let Some(pending) = account.totp_pending.clone() else {
            return Err(AppError::Conflict {
                code: "no-enrolment",
                message: "start the enrolment first".to_owned(),
            });
        };
        // Sealed for this account: it moves from pending to enrolled as it is.
        let pending_seed = self.seal().open(account.id, &pending)?;
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let step = match ehrshare_core::totp::verify(&pending_seed, code, unix, None) {
            Ok(s) => i64::try_from(s).unwrap_or(i64::MAX),
            Err(_) => {
                let mut entry = caller.entry(self, "account.enrol-token", Outcome::Denied);
                entry.record_ids = vec![account.id];
                entry.denial_reason = Some("wrong-token".to_owned());
                self.audit(entry).await?;
                return Err(AppError::Invalid {
                    code: "wrong-token",
                    message: "the code does not match the new token".to_owned(),
                    fields: vec![FieldError {
                        field: "/code".to_owned(),
                        code: "wrong-token",
                        message: "the code does not match the new token".to_owned(),
                    }],
                });
            }
        };
        let status = account.status;
        let next_status = status.after(AccountEvent::Enrol, true).unwrap_or(status);
        let stage = if account.must_change_password {
            Stage::MustChangePassword
        } else {
            Stage::Ready
        };
        let updated = AccountRow {
            totp_secret: Some(pending),
            totp_pending: None,
            totp_last_step: Some(step),
            status: next_status,
            version: account.version + 1,
            ..account.clone()
        };
        let mut entry = caller.entry(self, "account.enrol-token", Outcome::Allowed);
        entry.record_ids = vec![account.id];
        let stage_code = stage.code();
        let update = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !ehrshare_store::account::update(conn.reborrow(), &updated).await? {
                    return Err(stale());
                }
                ehrshare_store::account::set_session_stage(conn, &token, stage_code).await
            })
        });
        self.audit_with(entry, update).await?;
        if stage == Stage::Ready {
            self.complete_hcp_set_up(&account).await?;
        }
        Ok(stage)
    }

    /// When a user administrator of an accepted provider has finished enrolling, the
    /// provider's technical set-up is done: it becomes active (SPEC 4.1). Idempotent.
    pub(crate) async fn complete_hcp_set_up(&self, account: &AccountRow) -> Result<(), AppError> {
        let Some(hcp) = account.hcp_id else {
            return Ok(());
        };
        if !account.user_admin {
            return Ok(());
        }
        let now = self.clock().now();
        if self.provider_status(hcp, now).await? != ehrshare_core::provider::Status::Accepted {
            return Ok(());
        }
        let caller = Caller {
            actor: account_actor(account),
            request_id: None,
            client_addr: None,
        };
        match self.hcp_event(&caller, hcp, Event::CompleteSetUp).await {
            Ok(_) | Err(AppError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
