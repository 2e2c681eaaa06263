//! `GET /fhir/metadata`: the CapabilityStatement. Public, as FHIR expects: a client reads it
//! before it has a token.

use axum::Extension;
use axum::http::StatusCode;
use axum::response::Response;
use ehrshare_fhir::capability::{OAuthEndpoints, Server, capability_statement};

use super::format::{FhirJson, fhir_json};
use super::served::FhirBase;

/// The statement of this server.
pub async fn show(Extension(base): Extension<FhirBase>, _: FhirJson) -> Response {
    let root = base.url.trim_end_matches("/fhir");
    let (authorize, token, revoke, introspect) = (
        format!("{root}/oauth/authorize"),
        format!("{root}/oauth/token"),
        format!("{root}/oauth/revoke"),
        format!("{root}/oauth/introspect"),
    );
    let statement = capability_statement(&Server {
        base_url: &base.url,
        software_version: env!("CARGO_PKG_VERSION"),
        date: base.started,
        types: super::served::SERVED,
        oauth: OAuthEndpoints {
            authorize: &authorize,
            token: &token,
            revoke: &revoke,
            introspect: &introspect,
        },
    });
    fhir_json(StatusCode::OK, statement.to_string())
}
