//! Logging in with user name, password and security token (SPEC 4.2), with the progressive
//! delay and lock. See `auth` for what is security-sensitive here: the same answer and the
//! same work for every failure, throttling by the name as typed, a TOTP step used once.

use ehrshare_core::account::AccountStatus;
use ehrshare_core::audit::Outcome;
use ehrshare_core::login::{Failures, Gate, PasswordAge, ThrottlePolicy, password_age};
use ehrshare_store::account::{AccountRow, FailureRow, SessionRow};
use ehrshare_store::{Conn, change};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Stage, Subject, account_actor, anonymous_actor};
use crate::caller::Caller;
use crate::secret::{hash_secret, new_token, token_hash, verify_secret};
use crate::{App, AppError};

/// What a user typed at login.
#[derive(Clone, Default)]
pub struct LoginInput {
    pub user_name: String,
    pub password: String,
    /// The security token's code (not needed before a token is enrolled).
    pub totp: Option<String>,
}

impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput")
            .field("user_name", &self.user_name)
            .finish_non_exhaustive()
    }
}

/// A successful login: the token goes into the cookie once and is never stored.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub token: String,
    pub csrf_token: String,
    pub stage: Stage,
    pub subject: Subject,
    /// Set when the password is near its age limit.
    pub password_expires: Option<OffsetDateTime>,
}

pub(crate) fn failures(row: &FailureRow) -> Failures {
    Failures {
        count: u32::try_from(row.count).unwrap_or(u32::MAX),
        last: row.last_at,
        locked_until: row.locked_until,
    }
}

pub(crate) fn failure_row(f: &Failures) -> FailureRow {
    FailureRow {
        count: i64::from(f.count),
        last_at: f.last,
        locked_until: f.locked_until,
    }
}

/// One more failure of a throttling key, counted from the key's record as it stands when the
/// failure is written (in its audit entry's transaction, which the writers' lock serialises
/// across server processes), not as the gate read it before the attempt: concurrent failures,
/// in this process or another, each count (issue 28, item 6).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneMore {
    policy: ThrottlePolicy,
    at: time::OffsetDateTime,
}

impl OneMore {
    /// Counts it for `key`.
    pub(crate) async fn write(
        &self,
        mut conn: Conn<'_>,
        key: &str,
    ) -> Result<(), ehrshare_store::StoreError> {
        let now = failures(&ehrshare_store::account::failures_in(conn.reborrow(), key).await?);
        let next = now.after_failure(&self.policy, self.at);
        ehrshare_store::account::put_failures(conn, key, &failure_row(&next)).await
    }
}

/// The answer to every refused login, whatever the reason.
pub(crate) fn login_failed() -> AppError {
    AppError::AuthFailed {
        code: "login-failed",
        message: "the user name, password or security code is not right, or the account cannot \
                  log in now"
            .to_owned(),
    }
}

/// The throttling keys of an attempt: the name as typed, and the client address.
pub(crate) fn throttle_keys(kind: &str, name: &str, caller: &Caller) -> Vec<String> {
    let mut keys = vec![format!("{kind}:{name}")];
    if let Some(addr) = &caller.client_addr {
        keys.push(format!("addr:{addr}"));
    }
    keys
}

impl App {
    /// An Argon2id hash of nothing anybody knows, verified against when there is no account,
    /// so that a login for an unknown name costs the same as one for a known name.
    pub(crate) async fn stand_in_hash(&self) -> Result<&str, AppError> {
        self.inner
            .stand_in_hash
            .get_or_try_init(|| async { hash_secret(new_token()?).await })
            .await
            .map(String::as_str)
    }

    /// Checks the throttling keys of an attempt now: a key that must wait answers 429, a
    /// locked key is reported as locked (the attempt then fails like any other).
    /// `throttled` is the code of the 429 (`login-throttled`, `access-key-throttled`).
    pub(crate) async fn throttle_gate(
        &self,
        keys: &[String],
        caller: &Caller,
        action: &'static str,
        throttled: &'static str,
    ) -> Result<(Vec<Failures>, bool), AppError> {
        let now = self.clock().now();
        let mut records = Vec::with_capacity(keys.len());
        let mut locked = false;
        for key in keys {
            let f = failures(&self.db().login_failures(key).await?);
            match f.gate(self.policy_for(key), now) {
                Gate::Open => {}
                Gate::Locked { .. } => locked = true,
                Gate::Wait { until } => {
                    let mut entry = caller.entry(self, action, Outcome::Denied);
                    entry.denial_reason = Some("throttled".to_owned());
                    self.audit(entry).await?;
                    // Rounded up: a client that waits exactly this long is let through.
                    let wait = until - now;
                    let secs =
                        (wait.whole_seconds() + i64::from(wait.subsec_nanoseconds() > 0)).max(1);
                    return Err(AppError::Throttled {
                        code: throttled,
                        message: "too many failed attempts: wait before trying again".to_owned(),
                        retry_after_secs: u32::try_from(secs).unwrap_or(u32::MAX),
                    });
                }
            }
            records.push(f);
        }
        Ok((records, locked))
    }

    pub(crate) fn policy_for(&self, key: &str) -> &ThrottlePolicy {
        let auth = &self.settings().auth;
        if key.starts_with("addr:") {
            &auth.address_throttle
        } else {
            &auth.user_throttle
        }
    }

    /// One more failure of every key, and whether it locks a key that was not locked as the
    /// gate read it.
    pub(crate) fn after_failure(
        &self,
        keys: Vec<String>,
        records: Vec<Failures>,
    ) -> (Vec<(String, OneMore)>, bool) {
        let now = self.clock().now();
        let mut newly_locked = false;
        let rows = keys
            .into_iter()
            .zip(records)
            .map(|(k, f)| {
                let policy = *self.policy_for(&k);
                let next = f.after_failure(&policy, now);
                let locked = |x: &Failures| x.locked_until.is_some_and(|u| u > now);
                newly_locked |= locked(&next) && !locked(&f);
                (k, OneMore { policy, at: now })
            })
            .collect();
        (rows, newly_locked)
    }

    /// Records a failed attempt: every key counts one more failure, and the audit entry says
    /// why, in one transaction.
    pub(crate) async fn record_failure(
        &self,
        caller: &Caller,
        action: &'static str,
        keys: Vec<String>,
        records: Vec<Failures>,
        reason: &str,
        subject: Option<Uuid>,
    ) -> Result<(), AppError> {
        let (rows, _) = self.after_failure(keys, records);
        let mut entry = caller.entry(self, action, Outcome::Denied);
        entry.denial_reason = Some(reason.to_owned());
        entry.record_ids = subject.into_iter().collect();
        let update = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                for (k, f) in &rows {
                    f.write(conn.reborrow(), k).await?;
                }
                Ok(())
            })
        });
        self.audit_with(entry, update).await?;
        Ok(())
    }

    /// Logs a provider's user or office staff in. See the module's notes on what every
    /// refusal looks like.
    pub async fn log_in(&self, caller: &Caller, input: LoginInput) -> Result<LoggedIn, AppError> {
        let now = self.clock().now();
        let name = ehrshare_core::account::user_name(&input.user_name)
            .unwrap_or_else(|_| input.user_name.trim().to_lowercase());
        let keys = throttle_keys("user", &name, caller);
        let (records, locked) = self
            .throttle_gate(&keys, caller, "login", "login-throttled")
            .await?;
        let account = self.db().account_by_user_name(&name).await?;
        let hash = match &account {
            Some(a) => a.password_hash.clone(),
            None => self.stand_in_hash().await?.to_owned(),
        };
        let password = ehrshare_core::password::normalise(&input.password);
        let password_ok = verify_secret(password, hash).await;
        let refusal = match &account {
            None => Some("unknown-user"),
            Some(_) if locked => Some("locked"),
            Some(_) if !password_ok => Some("wrong-password"),
            Some(a) => self.account_login_refusal(a, now).await?,
        };
        // The token: required once enrolled.
        let mut step = None;
        let refusal = match (refusal, &account) {
            (Some(r), _) => Some(r),
            (None, Some(a)) => match &a.totp_secret {
                None => None,
                Some(sealed) => {
                    let secret = self.seal().open(a.id, sealed)?;
                    let secret = secret.as_slice();
                    let last = a.totp_last_step.and_then(|s| u64::try_from(s).ok());
                    let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
                    match ehrshare_core::totp::verify(
                        secret,
                        input.totp.as_deref().unwrap_or(""),
                        unix,
                        last,
                    ) {
                        Ok(s) => {
                            step = Some(i64::try_from(s).unwrap_or(i64::MAX));
                            None
                        }
                        Err(ehrshare_core::totp::TotpError::Replayed) => Some("token-replayed"),
                        Err(_) => Some("wrong-token"),
                    }
                }
            },
            (None, None) => Some("unknown-user"),
        };
        let (Some(account), None) = (account.clone(), refusal) else {
            let id = account.as_ref().map(|a| a.id);
            let mut anonymous = caller.clone();
            anonymous.actor = anonymous_actor(account.as_ref());
            self.record_failure(
                &anonymous,
                "login",
                keys,
                records,
                refusal.unwrap_or("unknown-user"),
                id,
            )
            .await?;
            return Err(login_failed());
        };

        let age = password_age(
            account.password_set_at,
            self.settings().auth.password_max_age,
            self.settings().auth.password_remind,
            now,
        );
        let stage = if account.must_change_password || age == PasswordAge::Expired {
            Stage::MustChangePassword
        } else if account.totp_secret.is_none() {
            Stage::MustEnrolToken
        } else {
            Stage::Ready
        };
        let token = new_token()?;
        let csrf_token = new_token()?;
        let session = SessionRow {
            token_hash: token_hash(&token),
            account_id: Some(account.id),
            person_id: None,
            stage: stage.code().to_owned(),
            csrf_token: csrf_token.clone(),
            created_at: now,
            last_seen_at: now,
            ended_at: None,
            client_addr: caller.client_addr.clone(),
        };
        let mut entry = caller.entry(self, "login", Outcome::Allowed);
        entry.actor = account_actor(&account);
        entry.record_ids = vec![account.id];
        let user_key = keys[0].clone();
        let id = account.id;
        let claimed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let claimed_in = claimed.clone();
        let update = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if let Some(step) = step
                    && !ehrshare_store::account::claim_totp_step(conn.reborrow(), id, step).await?
                {
                    // Another login used this code first: nothing of this one may stand.
                    claimed_in.store(false, std::sync::atomic::Ordering::SeqCst);
                    return Err(ehrshare_store::StoreError::Corrupt(
                        "security code used concurrently".to_owned(),
                    ));
                }
                ehrshare_store::account::clear_failures(conn.reborrow(), &user_key).await?;
                ehrshare_store::account::insert_session(conn.reborrow(), &session).await?;
                ehrshare_store::account::touch_login(conn, id, now).await
            })
        });
        match self.audit_with(entry, update).await {
            Ok(_) => {}
            Err(_) if !claimed.load(std::sync::atomic::Ordering::SeqCst) => {
                let mut anonymous = caller.clone();
                anonymous.actor = anonymous_actor(Some(&account));
                let records = self
                    .throttle_gate(&keys, caller, "login", "login-throttled")
                    .await?
                    .0;
                self.record_failure(
                    &anonymous,
                    "login",
                    keys,
                    records,
                    "token-replayed",
                    Some(id),
                )
                .await?;
                return Err(login_failed());
            }
            Err(e) => return Err(e),
        }
        // A user administrator's first complete login finishes the provider's set-up.
        if stage == Stage::Ready {
            self.complete_hcp_set_up(&account).await?;
        }
        Ok(LoggedIn {
            token,
            csrf_token,
            stage,
            subject: Subject::Account(AccountRow {
                last_login_at: Some(now),
                ..account
            }),
            password_expires: match age {
                PasswordAge::Remind { expires } => Some(expires),
                _ => None,
            },
        })
    }

    /// Why an account with the right password may still not log in (status, provider).
    pub(crate) async fn account_login_refusal(
        &self,
        a: &AccountRow,
        now: OffsetDateTime,
    ) -> Result<Option<&'static str>, AppError> {
        let status = a.status;
        if !status.may_log_in() {
            return Ok(Some(match status {
                AccountStatus::Suspended => "account-suspended",
                _ => "account-terminated",
            }));
        }
        if let Some(hcp) = a.hcp_id {
            let status = self.provider_status(hcp, now).await?;
            if !matches!(
                status,
                ehrshare_core::provider::Status::Accepted | ehrshare_core::provider::Status::Active
            ) {
                return Ok(Some("provider-inactive"));
            }
        }
        Ok(None)
    }
}
