//! Who is calling the JSON API.
//!
//! Until accounts exist, office actions are authorised by a bootstrap token from configuration
//! (`office_token` / `EHRSHARE_OFFICE_TOKEN`), sent as `Authorization: Bearer <token>`. With no
//! token configured the office API does not exist (404), never open. The comparison takes the
//! same time wherever the tokens differ.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ehrshare_app::caller::Caller;
use ehrshare_app::{App, AppError};
use ehrshare_core::audit::{Actor, ActorKind, Outcome};
use subtle::ConstantTimeEq;

use crate::error::HttpError;
use crate::request_id::RequestId;

/// The configured bootstrap office token, if any (a request extension).
#[derive(Clone)]
pub struct OfficeToken(pub Option<Arc<str>>);

impl std::fmt::Debug for OfficeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "OfficeToken(set)"
        } else {
            "OfficeToken(none)"
        })
    }
}

/// The request's id and client address, for audit entries.
pub fn caller_context(parts: &Parts, actor: Actor) -> Caller {
    Caller {
        actor,
        request_id: parts.extensions.get::<RequestId>().map(|r| r.0),
        client_addr: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
    }
}

/// An office caller authorised by the bootstrap token.
#[derive(Debug, Clone)]
pub struct Office(pub Caller);

impl FromRequestParts<App> for Office {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let configured = parts
            .extensions
            .get::<OfficeToken>()
            .and_then(|t| t.0.clone())
            .ok_or(HttpError(AppError::NotFound))?;
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let matches: bool = presented.as_bytes().ct_eq(configured.as_bytes()).into();
        let actor = Actor {
            kind: ActorKind::Office,
            account: None,
            role: Some("bootstrap-office-token".to_owned()),
            hcp: None,
            location: None,
        };
        if presented.is_empty() || !matches {
            // A refused attempt is a decision: audited (never with what was presented).
            let anonymous = Actor {
                kind: ActorKind::Anonymous,
                role: None,
                ..actor
            };
            let caller = caller_context(parts, anonymous);
            let mut entry = caller.entry(app, "office.authenticate", Outcome::Denied);
            entry.denial_reason = Some(
                if presented.is_empty() {
                    "no-credentials"
                } else {
                    "bad-credentials"
                }
                .to_owned(),
            );
            app.record(entry).await.map_err(HttpError)?;
            return Err(HttpError(AppError::Unauthenticated));
        }
        Ok(Office(caller_context(parts, actor)))
    }
}
