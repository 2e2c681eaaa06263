//! OAuth 2 for clinic systems (SPEC 4.2, 5), in the style of SMART on FHIR:
//! - a provider's user administrators register a clinic system (client) with the scopes it may
//!   have and its exact redirect URIs; its secret is shown once and kept as a SHA-256;
//! - client credentials (RFC 6749 §4.4): a token for the system itself, `system/` scopes,
//!   bound to the client's provider;
//! - authorization code with PKCE (RFC 7636, S256 only): a token for a logged-in professional
//!   of the same provider, `user/` scopes;
//! - tokens last minutes, are stored hashed, and die with a revocation (RFC 7009), the
//!   client's revocation, their account's suspension or termination, or a second presentation
//!   of the authorization code they came from (RFC 6749 section 10.5).
//!
//! Errors use RFC 6749 §5.2 codes (`invalid_client`, `invalid_grant`, `invalid_scope`, ...) as
//! their stable code; `web` shapes them as OAuth error bodies.

use ehrshare_core::account::{AccountStatus, Realm};
use ehrshare_core::audit::{Actor, ActorKind, Outcome};
use ehrshare_core::oauth::{Context, Scope, ScopeError, grant, pkce_matches};
use ehrshare_store::oauth::{ClientRow, CodeRow, TokenRow};
use ehrshare_store::{Conn, change};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{ClientGrant, Session, Stage, Subject};
use crate::caller::Caller;
use crate::error::FieldError;
use crate::secret::{new_token, token_hash};
use crate::{App, AppError};

/// A clinic system as registered.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// Space-separated scopes it may be granted.
    pub scopes: String,
    /// Its public keys (a JWK Set) when it authenticates by signed assertion (SMART Backend
    /// Services); it then has no secret.
    pub jwks: Option<serde_json::Value>,
}

/// A registered client and its secret (shown once; none for a client with keys).
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    pub client: ClientRow,
    pub secret: Option<String>,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
    /// The patient it was launched for (SMART's launch context `patient`).
    pub patient: Option<Uuid>,
}

/// A token request (form fields of `POST /oauth/token`).
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    /// `client_assertion_type` and `client_assertion` (SMART Backend Services).
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    /// This server's token endpoint, the audience an assertion names.
    pub token_endpoint: String,
}

/// An authorization request (query of `/oauth/authorize`).
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub code_challenge_method: String,
    /// With `launch/patient`: the HKID of the patient the professional chose (the counter's
    /// look-up, audited).
    pub patient_hkid: Option<String>,
}

fn oauth_error(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::Invalid {
        code,
        message: message.into(),
        fields: Vec::new(),
    }
}

fn invalid_client() -> AppError {
    AppError::AuthFailed {
        code: "invalid_client",
        message: "client authentication failed".to_owned(),
    }
}

fn scope_error(e: ScopeError) -> AppError {
    oauth_error("invalid_scope", e.to_string())
}

/// Scopes a clinic system may be registered with (each named once).
const MAX_SCOPES: usize = 20;

fn scopes_text(scopes: &[Scope]) -> String {
    scopes.iter().map(Scope::text).collect::<Vec<_>>().join(" ")
}

fn parse_scopes(text: &str) -> Vec<Scope> {
    text.split_ascii_whitespace()
        .filter_map(Scope::parse)
        .collect()
}

fn client_actor(client: &ClientRow, account: Option<Uuid>) -> Actor {
    Actor {
        kind: ActorKind::ClinicSystem,
        account,
        role: Some(format!("client:{}", client.client_id)),
        hcp: Some(client.hcp_id),
        location: None,
    }
}

/// Whether a redirect URI may be registered: https, or http on the loopback (native apps,
/// RFC 8252 §7.3), no fragment.
fn redirect_uri_ok(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://")
        || lower.starts_with("http://127.0.0.1")
        || lower.starts_with("http://localhost")
        || lower.starts_with("http://[::1]");
    scheme_ok && !uri.contains('#') && uri.len() <= 2000 && !uri.chars().any(char::is_whitespace)
}

impl App {
    /// Registers a clinic system for provider `hcp` (its user administrators only).
    pub async fn register_client(
        &self,
        session: &Session,
        caller: &Caller,
        hcp: Uuid,
        input: NewClient,
    ) -> Result<RegisteredClient, AppError> {
        // Only the provider's own user administrators: the office does not hold clinic systems.
        let is_admin = session
            .account()
            .is_some_and(|a| a.realm == Realm::Hcp && a.hcp_id == Some(hcp) && a.user_admin);
        if !is_admin {
            return Err(AppError::NotFound);
        }
        let mut fields = Vec::new();
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            fields.push(FieldError {
                field: "/name".into(),
                code: "invalid-name",
                message: "1 to 100 characters".into(),
            });
        }
        for (i, uri) in input.redirect_uris.iter().enumerate() {
            if !redirect_uri_ok(uri) {
                fields.push(FieldError {
                    field: format!("/redirect_uris/{i}"),
                    code: "invalid-redirect-uri",
                    message: "https (or http on the loopback), without a fragment".into(),
                });
            }
        }
        let scopes: Vec<Option<Scope>> = input
            .scopes
            .split_ascii_whitespace()
            .map(Scope::parse)
            .collect();
        if scopes.len() > MAX_SCOPES {
            fields.push(FieldError {
                field: "/scopes".into(),
                code: "too-many",
                message: format!("at most {MAX_SCOPES} scopes"),
            });
        } else if scopes.is_empty() || scopes.iter().any(Option::is_none) {
            fields.push(FieldError {
                field: "/scopes".into(),
                code: "invalid-scope",
                message: "system/ or user/ scopes such as system/*.read or user/*.read".into(),
            });
        }
        let jwks = match &input.jwks {
            None => None,
            Some(set) => match crate::client_assertion::registered_jwks(set) {
                Ok(text) => Some(text),
                Err(AppError::Invalid { fields: f, .. }) => {
                    fields.extend(f);
                    None
                }
                Err(e) => return Err(e),
            },
        };
        if jwks.is_some() && !input.redirect_uris.is_empty() {
            fields.push(FieldError {
                field: "/redirect_uris".into(),
                code: "invalid-redirect-uri",
                message: "a client with keys is a backend service: it has no redirect URIs".into(),
            });
        }
        if !fields.is_empty() {
            return Err(AppError::Invalid {
                code: if fields.len() == 1 {
                    fields[0].code
                } else {
                    "invalid-input"
                },
                message: "the client has invalid fields".into(),
                fields,
            });
        }
        let mut unique: Vec<Scope> = Vec::new();
        for s in scopes.into_iter().flatten() {
            if !unique.contains(&s) {
                unique.push(s);
            }
        }
        let scopes = unique;
        // A client with keys gets no secret: its hash is of a value nobody is ever given.
        let secret = new_token()?;
        let client = ClientRow {
            client_id: format!(
                "cs-{}",
                data_encoding::HEXLOWER.encode(&crate::secret::random_bytes::<12>()?)
            ),
            hcp_id: hcp,
            name,
            secret_hash: token_hash(&secret),
            redirect_uris: input.redirect_uris,
            scopes: scopes_text(&scopes),
            jwks,
            created_at: self.clock().now(),
            revoked_at: None,
        };
        let secret = client.jwks.is_none().then_some(secret);
        let mut entry = caller.entry(self, "oauth.register-client", Outcome::Allowed);
        entry.reason = Some(format!("{} ({})", client.client_id, client.scopes));
        let stored = client.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::oauth::insert_client(conn, &stored).await })
        });
        self.audit_with(entry, insert).await?;
        Ok(RegisteredClient { client, secret })
    }

    /// Revokes a clinic system and every token issued to it (its provider's administrators).
    pub async fn revoke_client(
        &self,
        session: &Session,
        caller: &Caller,
        hcp: Uuid,
        client_id: &str,
    ) -> Result<(), AppError> {
        let is_admin = session
            .account()
            .is_some_and(|a| a.realm == Realm::Hcp && a.hcp_id == Some(hcp) && a.user_admin);
        let client = self
            .db()
            .oauth_client(client_id)
            .await?
            .filter(|c| is_admin && c.hcp_id == hcp)
            .ok_or(AppError::NotFound)?;
        let now = self.clock().now();
        let mut entry = caller.entry(self, "oauth.revoke-client", Outcome::Allowed);
        entry.reason = Some(client.client_id.clone());
        let id = client.client_id;
        let revoke = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::oauth::revoke_client(conn, &id, now).await })
        });
        self.audit_with(entry, revoke).await?;
        Ok(())
    }

    /// RFC 6749 section 10.5: an authorization code presented again kills every token issued
    /// from it. Audited.
    async fn revoke_code_tokens(
        &self,
        caller: &Caller,
        client: &ClientRow,
        account: Uuid,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let mut entry = caller.entry(self, "oauth.revoke", Outcome::Allowed);
        entry.actor = client_actor(client, Some(account));
        entry.reason = Some("authorization code presented again".to_owned());
        let hash = code_hash.to_owned();
        let revoke = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::oauth::revoke_code_tokens(conn, &hash, now)
                    .await
                    .map(|_| ())
            })
        });
        self.audit_with(entry, revoke).await?;
        Ok(())
    }

    /// Authenticates a client by id and secret (constant-time on the hashes). A client with
    /// keys never authenticates by secret.
    async fn authenticate_client(&self, id: &str, secret: &str) -> Result<ClientRow, AppError> {
        let client = self.db().oauth_client(id).await?;
        let presented = token_hash(secret);
        match client {
            Some(c)
                if c.revoked_at.is_none()
                    && c.jwks.is_none()
                    && bool::from(presented.as_bytes().ct_eq(c.secret_hash.as_bytes())) =>
            {
                Ok(c)
            }
            _ => Err(invalid_client()),
        }
    }

    /// Authenticates a token request: by signed assertion (a client with keys) or by secret.
    /// An assertion's `jti` is returned, to be used once with the token it earns.
    async fn authenticate_request(
        &self,
        request: &TokenRequest,
    ) -> Result<(ClientRow, Option<crate::client_assertion::Verified>), AppError> {
        let Some(assertion) = request.client_assertion.as_deref() else {
            let client = self
                .authenticate_client(&request.client_id, &request.client_secret)
                .await?;
            return Ok((client, None));
        };
        if request.client_assertion_type.as_deref() != Some(crate::client_assertion::JWT_BEARER)
            || !request.client_secret.is_empty()
        {
            return Err(invalid_client());
        }
        let claimed = crate::client_assertion::claimed_issuer(assertion)
            .ok_or_else(crate::client_assertion::unverified)?;
        if !request.client_id.is_empty() && request.client_id != claimed {
            return Err(crate::client_assertion::unverified());
        }
        let client = self
            .db()
            .oauth_client(&claimed)
            .await?
            .filter(|c| c.revoked_at.is_none())
            .ok_or_else(crate::client_assertion::unverified)?;
        let jwks = client
            .jwks
            .as_deref()
            .ok_or_else(crate::client_assertion::unverified)?;
        let verified = crate::client_assertion::verify(
            assertion,
            &client.client_id,
            jwks,
            &request.token_endpoint,
            self.clock().now(),
        )?;
        Ok((client, Some(verified)))
    }

    /// The token endpoint: client credentials or authorization code. Every issue and every
    /// refusal is audited.
    pub async fn token(
        &self,
        caller: &Caller,
        request: TokenRequest,
    ) -> Result<IssuedToken, AppError> {
        let result = self.token_inner(caller, &request).await;
        if let Err(e) = &result {
            let mut entry = caller.entry(self, "oauth.token", Outcome::Denied);
            entry.denial_reason = Some(e.code().to_owned());
            entry.reason = Some(format!(
                "client {}",
                request.client_id.chars().take(64).collect::<String>()
            ));
            self.audit(entry).await?;
        }
        result
    }

    async fn token_inner(
        &self,
        caller: &Caller,
        request: &TokenRequest,
    ) -> Result<IssuedToken, AppError> {
        let now = self.clock().now();
        let (client, assertion) = self.authenticate_request(request).await?;
        let allowed = parse_scopes(&client.scopes);
        let (scopes, account, code_hash, patient) = match request.grant_type.as_str() {
            "client_credentials" => {
                // Without a scope parameter: every system scope the client may have.
                let own: String = allowed
                    .iter()
                    .filter(|s| s.context == Context::System)
                    .map(Scope::text)
                    .collect::<Vec<_>>()
                    .join(" ");
                let asked = match request.scope.as_deref().map(str::trim) {
                    Some(s) if !s.is_empty() => s,
                    _ => own.as_str(),
                };
                let (scopes, _) =
                    grant(asked, &allowed, &[Context::System]).map_err(scope_error)?;
                (scopes, None, None, None)
            }
            "authorization_code" if assertion.is_some() => {
                // A backend service has no user and no redirect: client credentials only.
                return Err(oauth_error(
                    "unauthorized_client",
                    "a client with keys uses the client_credentials grant",
                ));
            }
            "authorization_code" => {
                let code = request.code.as_deref().unwrap_or("");
                let hash = token_hash(code);
                let stored = self
                    .db()
                    .oauth_code(&hash)
                    .await?
                    .filter(|c| c.client_id == client.client_id)
                    .ok_or_else(|| oauth_error("invalid_grant", "unknown authorization code"))?;
                if stored.used_at.is_some() {
                    // RFC 6749 section 10.5: the code was stolen or replayed; whatever was
                    // issued from it is revoked.
                    self.revoke_code_tokens(caller, &client, stored.account_id, &hash, now)
                        .await?;
                }
                if stored.used_at.is_some() || now >= stored.expires_at {
                    return Err(oauth_error(
                        "invalid_grant",
                        "the authorization code was used or has expired",
                    ));
                }
                if request.redirect_uri.as_deref() != Some(stored.redirect_uri.as_str()) {
                    return Err(oauth_error("invalid_grant", "redirect_uri does not match"));
                }
                if !pkce_matches(
                    request.code_verifier.as_deref().unwrap_or(""),
                    &stored.code_challenge,
                ) {
                    return Err(oauth_error(
                        "invalid_grant",
                        "the code verifier does not match the challenge",
                    ));
                }
                let account = self
                    .db()
                    .account(stored.account_id)
                    .await?
                    .filter(|a| {
                        a.status == AccountStatus::Active && a.hcp_id == Some(client.hcp_id)
                    })
                    .ok_or_else(|| oauth_error("invalid_grant", "the account cannot act now"))?;
                (
                    parse_scopes(&stored.scopes),
                    Some(account),
                    Some(hash),
                    stored.patient_id,
                )
            }
            _ => {
                return Err(oauth_error(
                    "unsupported_grant_type",
                    "client_credentials or authorization_code",
                ));
            }
        };
        let token = new_token()?;
        let ttl = self.settings().auth.access_token_ttl;
        let row = TokenRow {
            token_hash: token_hash(&token),
            client_id: client.client_id.clone(),
            hcp_id: client.hcp_id,
            account_id: account.as_ref().map(|a| a.id),
            scopes: scopes_text(&scopes),
            issued_at: now,
            expires_at: now + ttl,
            revoked_at: None,
            code_hash: code_hash.clone(),
            patient_id: patient,
        };
        let replay = code_hash.clone().zip(account.as_ref().map(|a| a.id));
        let mut entry = caller.entry(self, "oauth.token", Outcome::Allowed);
        entry.actor = client_actor(&client, row.account_id);
        entry.reason = Some(format!("{} {}", request.grant_type, row.scopes));
        let stored = row.clone();
        let used = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let used_in = used.clone();
        let client_id = client.client_id.clone();
        let insert = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                use_once(conn.reborrow(), &client_id, assertion.as_ref(), now).await?;
                if let Some(h) = code_hash
                    && !ehrshare_store::oauth::use_code(conn.reborrow(), &h, now).await?
                {
                    used_in.store(false, std::sync::atomic::Ordering::SeqCst);
                    return Err(ehrshare_store::StoreError::Stale(
                        ehrshare_store::Stale::CodeUsed,
                    ));
                }
                ehrshare_store::oauth::insert_token(conn, &stored).await
            })
        });
        if let Err(e) = self.audit_with(entry, insert).await {
            if let AppError::Conflict {
                code: "assertion-used",
                ..
            } = e
            {
                return Err(AppError::AuthFailed {
                    code: "invalid_client",
                    message: "client assertion refused: its jti was used before".to_owned(),
                });
            }
            if !used.load(std::sync::atomic::Ordering::SeqCst) {
                // A concurrent exchange of the same code won: a replay all the same.
                if let Some((h, account)) = &replay {
                    self.revoke_code_tokens(caller, &client, *account, h, now)
                        .await?;
                }
                return Err(oauth_error(
                    "invalid_grant",
                    "the authorization code was used",
                ));
            }
            return Err(e);
        }
        Ok(IssuedToken {
            access_token: token,
            expires_in: ttl.whole_seconds(),
            scope: if row.patient_id.is_some() {
                format!("{} {}", ehrshare_core::oauth::LAUNCH_PATIENT, row.scopes)
            } else {
                row.scopes
            },
            patient: row.patient_id,
        })
    }

    /// Checks an authorization request for the logged-in professional and returns the URL to
    /// send the browser back to, with a fresh code. Before the client and redirect URI are
    /// known good, errors are shown to the user (never redirected to an unchecked URI).
    pub async fn authorize(
        &self,
        session: &Session,
        caller: &Caller,
        request: AuthorizeRequest,
    ) -> Result<String, AppError> {
        let now = self.clock().now();
        let account = session.account().ok_or(AppError::NotFound)?.clone();
        let client = self
            .db()
            .oauth_client(&request.client_id)
            .await?
            .filter(|c| c.revoked_at.is_none())
            .ok_or_else(|| oauth_error("invalid_request", "unknown client"))?;
        if !client.redirect_uris.contains(&request.redirect_uri) {
            return Err(oauth_error(
                "invalid_request",
                "redirect_uri is not registered",
            ));
        }
        if account.hcp_id != Some(client.hcp_id) {
            return Err(AppError::Forbidden {
                code: "other-provider",
                message: "this clinic system belongs to another provider".to_owned(),
            });
        }
        let back = |error: &str| -> String {
            redirect_with(
                &request.redirect_uri,
                &[
                    ("error", error),
                    ("state", request.state.as_deref().unwrap_or("")),
                ],
            )
        };
        if request.response_type != "code" {
            return Ok(back("unsupported_response_type"));
        }
        if request.code_challenge_method != "S256" || request.code_challenge.len() != 43 {
            return Ok(back("invalid_request"));
        }
        let allowed = parse_scopes(&client.scopes);
        let Ok((scopes, launch)) =
            grant(&request.scope, &allowed, &[Context::User, Context::Patient])
        else {
            return Ok(back("invalid_scope"));
        };
        // `launch/patient`: the professional names the patient, as at the counter (the
        // look-up audited); the token will reach that patient only.
        let patient = if launch {
            let number = request.patient_hkid.as_deref().unwrap_or("").trim();
            if number.is_empty() {
                return Err(crate::error::invalid(
                    "patient_hkid",
                    "patient-required",
                    "this app is launched for one patient: give the patient's HKID",
                ));
            }
            Some(
                self.find_recipient(session, caller, "hkid", None, number)
                    .await?
                    .id,
            )
        } else {
            None
        };
        let code = new_token()?;
        let row = CodeRow {
            code_hash: token_hash(&code),
            client_id: client.client_id.clone(),
            account_id: account.id,
            redirect_uri: request.redirect_uri.clone(),
            scopes: scopes_text(&scopes),
            code_challenge: request.code_challenge.clone(),
            patient_id: patient,
            created_at: now,
            expires_at: now + self.settings().auth.authorization_code_ttl,
            used_at: None,
        };
        let mut entry = caller.entry(self, "oauth.authorize", Outcome::Allowed);
        entry.reason = Some(format!("{} {}", client.client_id, row.scopes));
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::oauth::insert_code(conn, &row).await })
        });
        self.audit_with(entry, insert).await?;
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = request.state.as_deref() {
            params.push(("state", s));
        }
        Ok(redirect_with(&request.redirect_uri, &params))
    }

    /// Resolves a bearer token: live, its client not revoked, its account (if any) active.
    pub async fn bearer(&self, token: &str) -> Result<Session, AppError> {
        let now = self.clock().now();
        let row = self
            .db()
            .oauth_token(&token_hash(token))
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if row.revoked_at.is_some() || now >= row.expires_at {
            return Err(AppError::Unauthenticated);
        }
        let client = self
            .db()
            .oauth_client(&row.client_id)
            .await?
            .filter(|c| c.revoked_at.is_none())
            .ok_or(AppError::Unauthenticated)?;
        let account = match row.account_id {
            None => None,
            Some(id) => Some(
                self.db()
                    .account(id)
                    .await?
                    .filter(|a| a.status == AccountStatus::Active)
                    .ok_or(AppError::Unauthenticated)?,
            ),
        };
        Ok(Session {
            token_hash: None,
            csrf_token: None,
            stage: Stage::Ready,
            subject: Subject::Client(ClientGrant {
                client_id: client.client_id,
                hcp_id: row.hcp_id,
                account,
                scopes: parse_scopes(&row.scopes),
                expires_at: row.expires_at,
                patient: row.patient_id,
            }),
        })
    }

    /// Revokes a token (RFC 7009): the client must authenticate (by its secret, or by a
    /// signed assertion, used once, for a client with keys); an unknown token or another
    /// client's is answered the same way (success) and changes nothing. `auth` is read as at
    /// the token endpoint (its grant type ignored).
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        auth: &TokenRequest,
        token: &str,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let (client, assertion) = self.authenticate_request(auth).await?;
        let hash = token_hash(token);
        let row = self
            .db()
            .oauth_token(&hash)
            .await?
            .filter(|row| row.client_id == client.client_id);
        if row.is_none() && assertion.is_none() {
            return Ok(());
        }
        let mut entry = caller.entry(self, "oauth.revoke", Outcome::Allowed);
        entry.actor = client_actor(&client, row.as_ref().and_then(|r| r.account_id));
        if row.is_none() {
            entry.reason = Some("no such token of this client".to_owned());
        }
        let client_id = client.client_id.clone();
        let revoke = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                use_once(conn.reborrow(), &client_id, assertion.as_ref(), now).await?;
                if row.is_some() {
                    ehrshare_store::oauth::revoke_token(conn, &hash, now).await?;
                }
                Ok(())
            })
        });
        match self.audit_with(entry, revoke).await {
            Ok(_) => Ok(()),
            Err(AppError::Conflict {
                code: "assertion-used",
                ..
            }) => Err(crate::client_assertion::unverified()),
            Err(e) => Err(e),
        }
    }

    /// Introspects a token for the client that holds it (RFC 7662): `None` when inactive.
    pub async fn introspect(
        &self,
        client_id: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<Option<(ClientGrant, OffsetDateTime)>, AppError> {
        let client = self.authenticate_client(client_id, client_secret).await?;
        match self.bearer(token).await {
            Ok(Session {
                subject: Subject::Client(g),
                ..
            }) if g.client_id == client.client_id => {
                let exp = g.expires_at;
                Ok(Some((g, exp)))
            }
            Ok(_) | Err(AppError::Unauthenticated) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Records a client assertion's `jti` inside the unit of work it authenticates, so that it
/// serves once: used before, the unit fails as stale (`assertion-used`) and keeps nothing.
async fn use_once(
    conn: Conn<'_>,
    client_id: &str,
    assertion: Option<&crate::client_assertion::Verified>,
    now: OffsetDateTime,
) -> Result<(), ehrshare_store::StoreError> {
    match assertion {
        Some(a)
            if !ehrshare_store::oauth::use_assertion(
                conn,
                client_id,
                &a.jti,
                a.expires_at,
                now,
            )
            .await? =>
        {
            Err(ehrshare_store::StoreError::Stale(
                ehrshare_store::Stale::AssertionUsed,
            ))
        }
        _ => Ok(()),
    }
}

/// `uri` with query parameters appended.
fn redirect_with(uri: &str, params: &[(&str, &str)]) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    let query: Vec<String> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", crate::auth::uri_escape(v)))
        .collect();
    format!("{uri}{sep}{}", query.join("&"))
}
