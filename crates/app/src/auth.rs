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

use ehrshare_core::account::Realm;
use ehrshare_core::audit::{Actor, ActorKind, Outcome};
use ehrshare_core::oauth::Scope;
use ehrshare_core::recipient::PersonStatus;
use ehrshare_store::account::AccountRow;
use ehrshare_store::person::PersonRow;
use ehrshare_store::{Conn, change};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::caller::Caller;
use crate::secret::token_hash;
use crate::{App, AppError};

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

    pub(crate) fn parse(code: &str) -> Option<Stage> {
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
    /// The one patient the token reaches (`launch/patient`).
    pub patient: Option<Uuid>,
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
        kind: if a.realm == Realm::Office {
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

pub(crate) fn anonymous_actor(account: Option<&AccountRow>) -> Actor {
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

impl App {
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
                let status = a.status;
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
                if p.status != PersonStatus::Active {
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
        self.audit_with(entry, end).await?;
        Ok(())
    }
}
