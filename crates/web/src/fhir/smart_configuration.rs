//! `GET /fhir/.well-known/smart-configuration` (and at the root): SMART App Launch discovery
//! (http://hl7.org/fhir/smart-app-launch/conformance.html). It states what the OAuth server
//! (`crate::oauth`) does today and nothing more: the authorization code grant with PKCE S256
//! for a professional's app (user-level scopes), client credentials for a clinic system,
//! confidential clients with a secret (HTTP Basic or the form) or with keys (SMART Backend
//! Services: `private_key_jwt`, RS384 or ES384), SMART v2 scopes and v1's spelling of them.
//! Public, like the CapabilityStatement: a client reads it before it has a token.

use axum::Extension;
use axum::Json;
use serde_json::{Value, json};

use super::served::FhirBase;

/// The scopes a client may ask for: a professional's app reads and writes what its user may
/// (`user/`), a clinic system deposits for its provider (`system/`). A scope narrows what the
/// access decision allows, never widens it.
pub const SCOPES_SUPPORTED: [&str; 10] = [
    "launch/patient",
    "patient/*.rs",
    "user/*.rs",
    "user/*.cud",
    "user/*.cruds",
    "system/*.c",
    "system/*.cu",
    "user/*.read",
    "user/*.write",
    "system/*.write",
];

/// The discovery document.
pub async fn show(Extension(base): Extension<FhirBase>) -> Json<Value> {
    let root = base.url.trim_end_matches("/fhir");
    Json(json!({
        "authorization_endpoint": format!("{root}/oauth/authorize"),
        "token_endpoint": format!("{root}/oauth/token"),
        "revocation_endpoint": format!("{root}/oauth/revoke"),
        "introspection_endpoint": format!("{root}/oauth/introspect"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ehrshare_app::client_assertion::ALGORITHMS,
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": [
            "launch-standalone",
            "context-standalone-patient",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "permission-patient",
            "permission-user",
            "permission-v1",
            "permission-v2"
        ]
    }))
}
