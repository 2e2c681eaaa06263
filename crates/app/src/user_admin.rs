//! Changing a user's role and acting on an account (suspend, reinstate, terminate, reset,
//! unlock), by a provider's user administrators or the office's system administrators.

use std::collections::BTreeMap;

use ehrshare_core::account::{AccountEvent, AccountStatus, AdminAct};
use ehrshare_core::audit::Outcome;
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::account::AccountRow;
use crate::auth::{Session, stale};
use crate::caller::Caller;
use crate::duty::Scope;
use crate::error::invalid_fields;
use crate::outbox::Notice;
use crate::secret::{hash_secret, new_initial_password};
use crate::{App, AppError};

/// A change of role (and with it registration number and administrator flag).
#[derive(Debug, Clone, Default)]
pub struct RoleChange {
    pub role: String,
    pub prof_reg_no: Option<String>,
    pub user_admin: bool,
}

/// What an administrator can do to an account besides changing its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    Suspend,
    Reinstate,
    Terminate,
    /// A new generated first password, the token forgotten: the holder enrols again.
    Reset,
    /// Clears the login-failure lock of the account's user name.
    Unlock,
}

impl AdminAction {
    /// Parses the code an administrator sends.
    pub fn parse(code: &str) -> Option<AdminAction> {
        match code {
            "suspend" => Some(AdminAction::Suspend),
            "reinstate" => Some(AdminAction::Reinstate),
            "terminate" => Some(AdminAction::Terminate),
            "reset" => Some(AdminAction::Reset),
            "unlock" => Some(AdminAction::Unlock),
            _ => None,
        }
    }

    /// The audit action recorded for it.
    pub(crate) fn audit_action(self) -> &'static str {
        match self {
            AdminAction::Suspend => "account.suspend",
            AdminAction::Reinstate => "account.reinstate",
            AdminAction::Terminate => "account.terminate",
            AdminAction::Reset => "account.reset",
            AdminAction::Unlock => "account.unlock",
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            AdminAction::Suspend => "suspend",
            AdminAction::Reinstate => "reinstate",
            AdminAction::Terminate => "terminate",
            AdminAction::Reset => "reset",
            AdminAction::Unlock => "unlock",
        }
    }
}

impl App {
    /// Changes an account's role (and registration number and administrator flag).
    pub async fn change_role(
        &self,
        session: &Session,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        input: RoleChange,
    ) -> Result<AccountRow, AppError> {
        let a = self.account_in(session, scope, id).await?;
        if a.status == AccountStatus::Terminated {
            return Err(AppError::Conflict {
                code: "account-terminated",
                message: "a terminated account cannot change".to_owned(),
            });
        }
        let mut fields = Vec::new();
        let (role, prof_reg_no, user_admin) = self.check_role(
            scope,
            input.role.trim(),
            input.prof_reg_no.as_deref(),
            input.user_admin,
            &mut fields,
        );
        if !fields.is_empty() {
            return Err(invalid_fields("the account has invalid fields", fields));
        }
        self.check_separation(
            session,
            caller,
            "account.change-role",
            scope,
            Some(a.id),
            a.document.as_ref(),
            AdminAct::ChangeRole,
        )
        .await?;
        let updated = AccountRow {
            role,
            prof_reg_no,
            user_admin,
            version: a.version + 1,
            ..a.clone()
        };
        self.check_registration_number(&updated).await?;
        let grant = self
            .grant_notice(session, scope, &updated, "account-granted", true)
            .await?;
        let alert = grant.alert;
        let mut entry = caller.entry(self, "account.change-role", Outcome::Allowed);
        entry.record_ids = vec![id];
        entry.reason = Some(format!(
            "{} -> {}{}",
            a.role,
            updated.role,
            if updated.user_admin {
                " (user administrator)"
            } else {
                ""
            }
        ));
        let stored = updated.clone();
        let update = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !ehrshare_store::account::update(conn.reborrow(), &stored).await? {
                    return Err(stale());
                }
                ehrshare_store::alert::insert_alert(conn, &alert).await
            })
        });
        self.audit_and_notify(entry, Some(update), grant.notices)
            .await?;
        Ok(updated)
    }

    /// Suspends, reinstates, terminates, resets or unlocks an account. Every one but unlock
    /// and reinstate ends the account's sessions and tokens in the same transaction.
    pub async fn account_action(
        &self,
        session: &Session,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        action: AdminAction,
        reason: Option<String>,
    ) -> Result<AccountRow, AppError> {
        crate::limits::check("/reason", reason.as_deref(), crate::limits::REASON)?;
        let now = self.clock().now();
        let a = self.account_in(session, scope, id).await?;
        self.check_separation(
            session,
            caller,
            action.audit_action(),
            scope,
            Some(a.id),
            a.document.as_ref(),
            match action {
                AdminAction::Reset => AdminAct::Reset,
                AdminAction::Unlock => AdminAct::Unlock,
                AdminAction::Suspend | AdminAction::Reinstate | AdminAction::Terminate => {
                    AdminAct::ChangeStatus
                }
            },
        )
        .await?;
        let status = a.status;
        let mut entry = caller.entry(self, action.audit_action(), Outcome::Allowed);
        entry.record_ids = vec![id];
        entry.reason = reason.filter(|r| !r.trim().is_empty());
        let transition = |event: AccountEvent| {
            status
                .after(event, a.totp_secret.is_some() && !a.must_change_password)
                .ok_or_else(|| AppError::Conflict {
                    code: "invalid-transition",
                    message: format!("a {} account cannot change that way", status.code()),
                })
        };
        let mut notices = Vec::new();
        let updated = match action {
            AdminAction::Unlock => {
                let key = format!("user:{}", a.user_name);
                let clear = change(move |conn: Conn<'_>| {
                    Box::pin(
                        async move { ehrshare_store::account::clear_failures(conn, &key).await },
                    )
                });
                self.audit_with(entry, clear).await?;
                return Ok(a);
            }
            AdminAction::Suspend => AccountRow {
                status: transition(AccountEvent::Suspend)?,
                ..a.clone()
            },
            AdminAction::Reinstate => AccountRow {
                status: transition(AccountEvent::Reinstate)?,
                ..a.clone()
            },
            AdminAction::Terminate => AccountRow {
                status: transition(AccountEvent::Terminate)?,
                ..a.clone()
            },
            AdminAction::Reset => {
                if status == AccountStatus::Terminated {
                    return Err(AppError::Conflict {
                        code: "invalid-transition",
                        message: "a terminated account cannot be reset".to_owned(),
                    });
                }
                let password = new_initial_password()?;
                let hash = hash_secret(password.clone()).await?;
                let locale = Locale::parse(&a.language).unwrap_or_default();
                notices.push(Notice {
                    recipient: None,
                    address: a.mobile.clone(),
                    channel: Channel::Sms,
                    template: "password-reset".to_owned(),
                    params: BTreeMap::from([
                        ("user".to_owned(), a.user_name.clone()),
                        ("password".to_owned(), password),
                    ]),
                    locale,
                });
                AccountRow {
                    password_hash: hash,
                    password_set_at: now,
                    must_change_password: true,
                    totp_secret: None,
                    totp_pending: None,
                    // An active account stays active: the holder must re-enrol at next login.
                    ..a.clone()
                }
            }
        };
        let updated = AccountRow {
            version: a.version + 1,
            ..updated
        };
        let ends_sessions = !matches!(action, AdminAction::Reinstate);
        let stored = updated.clone();
        let reason_code = action.code();
        let update = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !ehrshare_store::account::update(conn.reborrow(), &stored).await? {
                    return Err(stale());
                }
                if action == AdminAction::Reset {
                    ehrshare_store::account::push_password_history(
                        conn.reborrow(),
                        stored.id,
                        &stored.password_hash,
                        now,
                    )
                    .await?;
                    let key = format!("user:{}", stored.user_name);
                    ehrshare_store::account::clear_failures(conn.reborrow(), &key).await?;
                }
                if ends_sessions {
                    ehrshare_store::account::end_sessions_and_tokens(
                        conn,
                        stored.id,
                        now,
                        reason_code,
                    )
                    .await?;
                }
                Ok(())
            })
        });
        self.audit_and_notify(entry, Some(update), notices).await?;
        Ok(updated)
    }
}
