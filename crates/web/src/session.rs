//! Who is calling: the session cookie (portals and the JSON API from a browser) or an OAuth
//! bearer token (clinic systems), and CSRF protection for everything a cookie authenticates.
//!
//! Security-sensitive:
//! - The cookie is `__Host-ehrshare-session` (HttpOnly, SameSite=Lax, Secure, Path=/, no
//!   Domain). With `cookie_secure = false` (plain-http development only) it drops `Secure` and,
//!   as browsers require, the `__Host-` prefix.
//! - Every state-changing request (not GET/HEAD/OPTIONS) that does not carry a bearer token
//!   must come from our own origin: a cross-site `Sec-Fetch-Site` or a foreign `Origin` is 403
//!   `csrf-cross-site`. When a session cookie authenticates it, it must also carry the
//!   session's CSRF token (`X-CSRF-Token` header, or a `csrf_token` form field): 403
//!   `csrf-token-invalid` otherwise. Nothing runs before these checks.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use ehrshare_app::auth::{Session, Stage, Subject, stage_required};
use ehrshare_app::caller::Caller;
use ehrshare_app::{App, AppError};
use ehrshare_core::audit::{Actor, ActorKind};
use http_body_util::BodyExt;
use subtle::ConstantTimeEq;

use crate::error::HttpError;
use crate::request_id::RequestId;

/// Cookie settings (a request extension).
#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub secure: bool,
    /// `scheme://host[:port]` of the public URL: the only origin allowed to post.
    pub origin: String,
    /// The largest form body read to find a CSRF token.
    pub body_limit: usize,
}

impl CookieSettings {
    /// The session cookie's name.
    pub fn name(&self) -> &'static str {
        if self.secure {
            "__Host-ehrshare-session"
        } else {
            "ehrshare-session"
        }
    }

    /// A `Set-Cookie` value carrying `token`.
    pub fn set(&self, token: &str) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.name()
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// A `Set-Cookie` value that removes the cookie.
    pub fn clear(&self) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
            self.name()
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.trim_end_matches('/').to_owned();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    )
}

/// The session cookie's value, if the request has one.
fn cookie_token<'a>(parts: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    parts
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// How the request was authenticated (a request extension set by [`load`]).
#[derive(Debug, Clone)]
enum Loaded {
    /// No credentials.
    None,
    /// Credentials that did not check out (ended, expired, unknown).
    Rejected,
    Session(Box<Session>),
}

fn forbidden(code: &'static str, message: &str) -> Response {
    axum::response::IntoResponse::into_response(HttpError(AppError::Forbidden {
        code,
        message: message.to_owned(),
    }))
}

/// Middleware: resolves the cookie or bearer token once, and enforces CSRF protection.
pub async fn load(
    State((app, settings)): State<(App, CookieSettings)>,
    request: Request,
    next: Next,
) -> Response {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let has_bearer = bearer(request.headers()).is_some();

    if unsafe_method && !has_bearer {
        let headers = request.headers();
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !matches!(v, "same-origin" | "none"));
        let foreign_origin = headers
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| origin_of(o) != settings.origin);
        if cross_site || foreign_origin {
            return forbidden(
                "csrf-cross-site",
                "state-changing requests must come from this site",
            );
        }
    }

    let loaded = if let Some(token) = bearer(request.headers()) {
        match app.bearer(token).await {
            Ok(s) => Loaded::Session(Box::new(s)),
            Err(AppError::Unauthenticated) => Loaded::Rejected,
            Err(e) => return axum::response::IntoResponse::into_response(HttpError(e)),
        }
    } else if let Some(token) = cookie_token(request.headers(), settings.name()) {
        match app.session(token).await {
            Ok(s) => Loaded::Session(Box::new(s)),
            Err(AppError::Unauthenticated) => Loaded::Rejected,
            Err(e) => return axum::response::IntoResponse::into_response(HttpError(e)),
        }
    } else {
        Loaded::None
    };

    let mut request = request;
    if unsafe_method
        && let Loaded::Session(s) = &loaded
        && let Some(expected) = s.csrf_token.clone()
    {
        let (presented, rebuilt) = csrf_token_of(request, settings.body_limit).await;
        let Some(r) = rebuilt else {
            return axum::response::IntoResponse::into_response(HttpError(AppError::Malformed {
                code: "malformed-request",
                message: "the request body could not be read".to_owned(),
                fields: Vec::new(),
            }));
        };
        request = r;
        let ok = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())));
        if !ok {
            return forbidden(
                "csrf-token-invalid",
                "the request lacks this session's CSRF token",
            );
        }
    }
    request.extensions_mut().insert(loaded);
    next.run(request).await
}

/// The CSRF token a request presents: the header, or a form field (the body is read and put
/// back). `None` for the request when the body could not be read.
async fn csrf_token_of(request: Request, limit: usize) -> (Option<String>, Option<Request>) {
    if let Some(h) = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
    {
        return (Some(h.to_owned()), Some(request));
    }
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return (None, Some(request));
    }
    let (parts, body) = request.into_parts();
    let Ok(collected) = http_body_util::Limited::new(body, limit).collect().await else {
        return (None, None);
    };
    let bytes = collected.to_bytes();
    let token = form_urlencoded_field(&bytes, "csrf_token");
    (token, Some(Request::from_parts(parts, Body::from(bytes))))
}

/// One field of an `application/x-www-form-urlencoded` body.
fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The request's id and client address, with `actor`.
pub fn caller_context(parts: &Parts, actor: Actor) -> Caller {
    Caller {
        actor,
        request_id: parts.extensions.get::<RequestId>().map(|r| r.0),
        client_addr: parts
            .extensions
            .get::<crate::client::ClientAddr>()
            .map(|c| c.0.to_string()),
    }
}

/// A caller who is not logged in (login, public pages).
#[derive(Debug, Clone)]
pub struct Anonymous(pub Caller);

/// The CSRF token of the session the request carries, if any: a login form shown to someone
/// already logged in (staff logging in as a patient in the same browser) must carry it, or
/// its post is refused as a cross-site one.
#[derive(Debug, Clone, Default)]
pub struct CurrentCsrf(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for CurrentCsrf {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(CurrentCsrf(match parts.extensions.get::<Loaded>() {
            Some(Loaded::Session(s)) => s.csrf_token.clone(),
            _ => None,
        }))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Anonymous {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Anonymous(caller_context(
            parts,
            Actor {
                kind: ActorKind::Anonymous,
                account: None,
                role: None,
                hcp: None,
                location: None,
            },
        )))
    }
}

/// The patient portal's session the request carries, if any: for the public operations a
/// logged-in person may also do (registering online), where anybody else counts as anonymous.
#[derive(Debug, Clone, Default)]
pub struct PersonSession(pub Option<Session>);

impl<S: Send + Sync> FromRequestParts<S> for PersonSession {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PersonSession(match parts.extensions.get::<Loaded>() {
            Some(Loaded::Session(s))
                if s.stage == Stage::Ready && matches!(s.subject, Subject::Person(_)) =>
            {
                Some((**s).clone())
            }
            _ => None,
        }))
    }
}

/// A logged-in caller at any stage (the password-change and enrolment endpoints).
#[derive(Debug, Clone)]
pub struct AnyStage {
    pub session: Session,
    pub caller: Caller,
}

impl<S: Send + Sync> FromRequestParts<S> for AnyStage {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Loaded>() {
            Some(Loaded::Session(s)) => {
                let caller = caller_context(parts, s.actor());
                Ok(AnyStage {
                    session: (**s).clone(),
                    caller,
                })
            }
            _ => Err(HttpError(AppError::Unauthenticated)),
        }
    }
}

/// A fully logged-in caller (password changed, token enrolled).
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub session: Session,
    pub caller: Caller,
}

impl<S: Send + Sync> FromRequestParts<S> for LoggedIn {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let any = AnyStage::from_request_parts(parts, state).await?;
        if any.session.stage != Stage::Ready {
            return Err(HttpError(stage_required(any.session.stage)));
        }
        Ok(LoggedIn {
            session: any.session,
            caller: any.caller,
        })
    }
}

/// Office staff who may register recipients and providers (registration officers).
#[derive(Debug, Clone)]
pub struct Office(pub Caller);

impl FromRequestParts<App> for Office {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let l = LoggedIn::from_request_parts(parts, app).await?;
        let registers = match &l.session.subject {
            Subject::Account(a) => {
                a.realm == ehrshare_core::account::Realm::Office
                    && ehrshare_core::account::OfficeRole::parse(&a.role)
                        .is_some_and(|r| r.registers())
            }
            _ => false,
        };
        if !registers {
            // A logged-in user reaching for the office's registration functions: a decision,
            // audited like any refusal.
            let mut entry = l.caller.entry(
                app,
                "office.registration",
                ehrshare_core::audit::Outcome::Denied,
            );
            entry.denial_reason = Some("office-role-required".to_owned());
            app.audit(entry).await.map_err(HttpError)?;
            return Err(HttpError(AppError::Forbidden {
                code: "office-role-required",
                message: "only the eHR Office's registration officers may do this".to_owned(),
            }));
        }
        Ok(Office(l.caller))
    }
}

/// Sets the session cookie on a response.
pub fn with_cookie(mut response: Response, value: HeaderValue) -> Response {
    response.headers_mut().append(SET_COOKIE, value);
    response
}
