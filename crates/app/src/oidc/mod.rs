//! OpenID Connect relying party (SPEC 4.2: "Login with iAM Smart"), authorization-code flow
//! with PKCE, state and nonce.
//!
//! - Patients: the provider's ID token carries the identity document number in a configured
//!   claim (iAM Smart releases the HKID with the user's consent); the person's login is found
//!   (or made, for a registered recipient or SDM) by that document, and the external identity
//!   is linked to it.
//! - Professionals and office staff: an account holder links the external identity while
//!   logged in; later logins through the provider open a session for the linked account, whose
//!   status, provider, role and first-login requirements still decide what it may do.
//!
//! Security-sensitive: the ID token is verified here, not trusted: the signature (RS256 or
//! ES256 with a key from the provider's JWKS; `none` and HMAC are refused), the issuer, the
//! audience (and `azp` when there are several), expiry (60 s leeway), issue time, and the
//! nonce bound to the state of this login. State is single use and lives ten minutes.
//! Written by hand on `ring` (already linked for TLS) instead of the `openidconnect` crate,
//! whose dependency tree costs more to build than this file (docs/adr/0003).

mod id_token;

use ehrshare_core::audit::{Actor, ActorKind, Outcome};
use ehrshare_core::identity::{Document, DocumentType};
use ehrshare_core::oauth::pkce_challenge;
use ehrshare_core::recipient::PersonStatus;
use ehrshare_store::account::SessionRow;
use ehrshare_store::oauth::OidcLoginRow;
use ehrshare_store::person::PersonRow;
use ehrshare_store::{Conn, change};
use serde::Deserialize;
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::auth::{Session, Stage, Subject, account_actor, uri_escape};
use crate::caller::Caller;
use crate::login::LoggedIn;
use crate::secret::{new_token, token_hash};
use crate::settings::OidcSettings;
use crate::{App, AppError};
use id_token::verify_id_token;

/// What a login through the provider is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PersonLogin,
    AccountLogin,
    /// Linking the provider's identity to the logged-in account.
    AccountLink,
}

impl Purpose {
    fn code(self) -> &'static str {
        match self {
            Purpose::PersonLogin => "person-login",
            Purpose::AccountLogin => "account-login",
            Purpose::AccountLink => "account-link",
        }
    }

    fn parse(code: &str) -> Option<Purpose> {
        match code {
            "person-login" => Some(Purpose::PersonLogin),
            "account-login" => Some(Purpose::AccountLogin),
            "account-link" => Some(Purpose::AccountLink),
            _ => None,
        }
    }
}

/// The end of a login through the provider.
#[derive(Debug)]
pub enum Finished {
    /// A session was opened.
    LoggedIn(Box<LoggedIn>),
    /// The identity was linked to the account of the session that asked.
    Linked,
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

fn unavailable(what: &str) -> AppError {
    AppError::Conflict {
        code: "identity-provider-unavailable",
        message: format!("the identity provider could not be reached ({what})"),
    }
}

fn oidc_failed() -> AppError {
    AppError::AuthFailed {
        code: "external-login-failed",
        message: "the login through the identity provider could not be completed".to_owned(),
    }
}

impl App {
    fn oidc(&self) -> Result<&OidcSettings, AppError> {
        self.settings().oidc.as_ref().ok_or(AppError::NotFound)
    }

    async fn oidc_get(&self, url: &str) -> Result<Value, AppError> {
        let o = self.oidc()?;
        let r = o
            .client
            .send(hyper::Method::GET, url, None)
            .await
            .map_err(|e| unavailable(&e))?;
        if r.status != 200 {
            return Err(unavailable(&format!("{url} answered {}", r.status)));
        }
        serde_json::from_slice(&r.body).map_err(|e| unavailable(&e.to_string()))
    }

    async fn discovery(&self) -> Result<Discovery, AppError> {
        let o = self.oidc()?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            o.issuer.trim_end_matches('/')
        );
        let d: Discovery = serde_json::from_value(self.oidc_get(&url).await?)
            .map_err(|e| unavailable(&e.to_string()))?;
        if d.issuer != o.issuer {
            return Err(unavailable("the discovery document names another issuer"));
        }
        Ok(d)
    }

    /// Starts a login (or a link) through the provider: returns the URL to send the browser
    /// to. `session` is the logged-in account for [`Purpose::AccountLink`].
    pub async fn begin_oidc(
        &self,
        purpose: Purpose,
        session: Option<&Session>,
    ) -> Result<String, AppError> {
        let o = self.oidc()?.clone();
        let account_id = match purpose {
            Purpose::AccountLink => Some(
                session
                    .and_then(Session::account)
                    .map(|a| a.id)
                    .ok_or(AppError::Unauthenticated)?,
            ),
            _ => None,
        };
        let d = self.discovery().await?;
        let now = self.clock().now();
        let state = new_token()?;
        let nonce = new_token()?;
        let verifier = new_token()?;
        let row = OidcLoginRow {
            state_hash: token_hash(&state),
            nonce: nonce.clone(),
            verifier: verifier.clone(),
            purpose: purpose.code().to_owned(),
            account_id,
            created_at: now,
            expires_at: now + Duration::minutes(10),
            used_at: None,
        };
        // Not an access to anything: stored without an audit entry; the callback is audited.
        self.db().insert_oidc_login(&row).await?;
        let sep = if d.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!(
            "{}{sep}response_type=code&client_id={}&redirect_uri={}&scope=openid&state={state}\
             &nonce={nonce}&code_challenge={}&code_challenge_method=S256",
            d.authorization_endpoint,
            uri_escape(&o.client_id),
            uri_escape(&o.redirect_uri),
            pkce_challenge(&verifier)
        ))
    }

    /// The provider sent the browser back with `code` and `state`: exchanges the code,
    /// verifies the ID token and logs in (or links). Every outcome is audited.
    pub async fn finish_oidc(
        &self,
        caller: &Caller,
        code: &str,
        state: &str,
    ) -> Result<Finished, AppError> {
        let result = self.finish_oidc_inner(caller, code, state).await;
        if let Err(reason) = &result {
            let mut entry = caller.entry(self, "oidc.login", Outcome::Denied);
            entry.denial_reason = Some(reason.clone());
            self.audit(entry).await?;
            return Err(oidc_failed());
        }
        result.map_err(|_| oidc_failed())
    }

    async fn finish_oidc_inner(
        &self,
        caller: &Caller,
        code: &str,
        state: &str,
    ) -> Result<Finished, String> {
        let internal = |e: AppError| e.code().to_owned();
        let now = self.clock().now();
        let o = self.oidc().map_err(internal)?.clone();
        let hash = token_hash(state);
        let login = self
            .db()
            .oidc_login(&hash)
            .await
            .map_err(|e| AppError::from(e).code().to_owned())?
            .filter(|l| l.used_at.is_none() && now < l.expires_at)
            .ok_or("unknown-or-used-state")?;
        if !self
            .db()
            .use_oidc_login(&hash, now)
            .await
            .map_err(|e| AppError::from(e).code().to_owned())?
        {
            return Err("unknown-or-used-state".to_owned());
        }
        let purpose = Purpose::parse(&login.purpose).ok_or("unknown-purpose")?;
        let d = self.discovery().await.map_err(internal)?;
        let form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &o.redirect_uri),
            ("client_id", &o.client_id),
            ("client_secret", &o.client_secret),
            ("code_verifier", &login.verifier),
        ];
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", uri_escape(v)))
            .collect::<Vec<_>>()
            .join("&");
        let r = o
            .client
            .send(
                hyper::Method::POST,
                &d.token_endpoint,
                Some(("application/x-www-form-urlencoded", body.into_bytes())),
            )
            .await
            .map_err(|_| "token-endpoint-unreachable")?;
        if r.status != 200 {
            return Err("code-refused".to_owned());
        }
        let tokens: Value =
            serde_json::from_slice(&r.body).map_err(|_| "malformed-token-response")?;
        let id_token = tokens["id_token"].as_str().ok_or("no-id-token")?;
        let jwks = self.oidc_get(&d.jwks_uri).await.map_err(internal)?;
        let claims = verify_id_token(id_token, &jwks, &o.issuer, &o.client_id, &login.nonce, now)
            .map_err(|e| e.to_string())?;
        let subject = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or("no-subject")?;
        let link = self
            .db()
            .identity_link(&o.issuer, subject)
            .await
            .map_err(|e| AppError::from(e).code().to_owned())?;
        match purpose {
            Purpose::AccountLink => {
                let account = login.account_id.ok_or("no-account")?;
                if link.is_some() {
                    return Err("identity-already-linked".to_owned());
                }
                let a = self
                    .db()
                    .account(account)
                    .await
                    .map_err(|e| AppError::from(e).code().to_owned())?
                    .ok_or("no-account")?;
                let mut entry = caller.entry(self, "oidc.link", Outcome::Allowed);
                entry.actor = account_actor(&a);
                entry.record_ids = vec![a.id];
                let (issuer, sub) = (o.issuer.clone(), subject.to_owned());
                let insert = change(move |conn: Conn<'_>| {
                    Box::pin(async move {
                        ehrshare_store::person::link_identity(
                            conn,
                            &issuer,
                            &sub,
                            Some(account),
                            None,
                            now,
                            None,
                        )
                        .await
                    })
                });
                self.audit_with(entry, insert).await.map_err(internal)?;
                Ok(Finished::Linked)
            }
            Purpose::AccountLogin => {
                let account = link.and_then(|(a, _)| a).ok_or("identity-not-linked")?;
                let a = self
                    .db()
                    .account(account)
                    .await
                    .map_err(|e| AppError::from(e).code().to_owned())?
                    .ok_or("identity-not-linked")?;
                if !a.status.may_log_in() || a.totp_secret.is_none() {
                    return Err("account-cannot-log-in".to_owned());
                }
                let stage = if a.must_change_password {
                    Stage::MustChangePassword
                } else {
                    Stage::Ready
                };
                let mut entry = caller.entry(self, "login", Outcome::Allowed);
                entry.actor = account_actor(&a);
                entry.record_ids = vec![a.id];
                entry.reason = Some(format!("through {}", o.issuer));
                self.open_session(entry, Some(a.id), None, stage, caller)
                    .await
                    .map(|(token, csrf_token)| {
                        Finished::LoggedIn(Box::new(LoggedIn {
                            token,
                            csrf_token,
                            stage,
                            subject: Subject::Account(a),
                            password_expires: None,
                        }))
                    })
                    .map_err(internal)
            }
            Purpose::PersonLogin => {
                let person = match link.and_then(|(_, p)| p) {
                    Some(id) => self
                        .db()
                        .person(id)
                        .await
                        .map_err(|e| AppError::from(e).code().to_owned())?
                        .ok_or("person-gone")?,
                    None => {
                        let hkid = claims[o.hkid_claim.as_str()]
                            .as_str()
                            .ok_or("no-document-claim")?;
                        let doc = Document::parse(DocumentType::Hkid, "HK", hkid)
                            .map_err(|_| "invalid-document-claim")?;
                        // OpenID Connect's standard claim: kept so that an online
                        // registration is verified at once only for the same date (ADR 0021).
                        let born = claims["birthdate"]
                            .as_str()
                            .and_then(ehrshare_core::registration::parse_date)
                            .map(ehrshare_core::registration::date_text);
                        self.person_for_document(&doc, &o.issuer, subject, now, born)
                            .await?
                    }
                };
                if person.status != PersonStatus::Active {
                    return Err("person-suspended".to_owned());
                }
                let mut entry = caller.entry(self, "person.login", Outcome::Allowed);
                entry.actor = Actor {
                    kind: ActorKind::Recipient,
                    account: Some(person.id),
                    role: None,
                    hcp: None,
                    location: None,
                };
                entry.reason = Some(format!("through {}", o.issuer));
                self.open_session(entry, None, Some(person.id), Stage::Ready, caller)
                    .await
                    .map(|(token, csrf_token)| {
                        Finished::LoggedIn(Box::new(LoggedIn {
                            token,
                            csrf_token,
                            stage: Stage::Ready,
                            subject: Subject::Person(person),
                            password_expires: None,
                        }))
                    })
                    .map_err(internal)
            }
        }
    }

    /// The person whose document the provider asserted: an existing login, or a new one (no
    /// password: through the provider only), for a registered recipient or SDM or for someone
    /// not registered yet; linked to the external identity in the same transaction.
    async fn person_for_document(
        &self,
        doc: &Document,
        issuer: &str,
        subject: &str,
        now: OffsetDateTime,
        birth_date: Option<String>,
    ) -> Result<PersonRow, String> {
        let store = |e: ehrshare_store::StoreError| AppError::from(e).code().to_owned();
        let existing = self
            .db()
            .person_by_document(doc.kind.code(), &doc.issuer, &doc.number)
            .await
            .map_err(store)?;
        let person = match existing {
            Some(p) => p,
            None => {
                let (own, as_sdm) = self
                    .db()
                    .recipients_of_document(doc.kind.code(), &doc.issuer, &doc.number)
                    .await
                    .map_err(store)?;
                let (address, language) = if let Some(id) = own {
                    let r = self
                        .load_recipient(id)
                        .await
                        .map_err(|e| e.code().to_owned())?;
                    (r.recipient.phone, r.recipient.language)
                } else if let Some((recipient, sdm)) = as_sdm.first() {
                    let r = self
                        .load_recipient(*recipient)
                        .await
                        .map_err(|e| e.code().to_owned())?;
                    let phone = r
                        .sdms
                        .iter()
                        .find(|s| s.sdm_id == *sdm)
                        .map(|s| s.phone.clone())
                        .ok_or("sdm-gone")?;
                    (phone, r.recipient.language)
                } else {
                    // Not registered yet: the login exists so that the person can register
                    // online with the document the provider asserted, verified at once
                    // (`App::register_online`). It has no contact for codes until then.
                    (
                        String::new(),
                        ehrshare_core::locale::Locale::default().tag().to_owned(),
                    )
                };
                PersonRow {
                    id: Uuid::now_v7(),
                    doc_type: doc.kind.code().to_owned(),
                    doc_issuer: doc.issuer.clone(),
                    doc_number: doc.number.clone(),
                    password_hash: None,
                    password_set_at: None,
                    otp_channel: "sms".to_owned(),
                    otp_address: address,
                    language,
                    status: PersonStatus::Active,
                    created_at: now,
                }
            }
        };
        let caller = Caller {
            actor: Actor::system(),
            request_id: None,
            client_addr: None,
        };
        let mut entry = caller.entry(self, "oidc.link", Outcome::Allowed);
        entry.record_ids = vec![person.id];
        let (row, issuer, sub) = (person.clone(), issuer.to_owned(), subject.to_owned());
        let insert = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::person::upsert(conn.reborrow(), &row).await?;
                ehrshare_store::person::link_identity(
                    conn,
                    &issuer,
                    &sub,
                    None,
                    Some(row.id),
                    now,
                    birth_date.as_deref(),
                )
                .await
            })
        });
        self.audit_with(entry, insert)
            .await
            .map_err(|e| e.code().to_owned())?;
        Ok(person)
    }

    /// Opens a session with `entry` as its audit record; returns the token and CSRF token.
    async fn open_session(
        &self,
        entry: ehrshare_core::audit::NewAuditEntry,
        account: Option<Uuid>,
        person: Option<Uuid>,
        stage: Stage,
        caller: &Caller,
    ) -> Result<(String, String), AppError> {
        let now = self.clock().now();
        let token = new_token()?;
        let csrf = new_token()?;
        let row = SessionRow {
            token_hash: token_hash(&token),
            account_id: account,
            person_id: person,
            stage: stage.code().to_owned(),
            csrf_token: csrf.clone(),
            created_at: now,
            last_seen_at: now,
            ended_at: None,
            client_addr: caller.client_addr.clone(),
        };
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::account::insert_session(conn, &row).await })
        });
        self.audit_with(entry, insert).await?;
        Ok((token, csrf))
    }
}
