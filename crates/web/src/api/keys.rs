//! `/api/v1/keys/consent-receipts`: the public half of the receipt key (ADR 0018), as a JSON
//! Web Key Set (RFC 7517, OKP keys of RFC 8037), for anyone to verify a consent receipt or a
//! location token offline. Public: no login.

use axum::Json;
use axum::extract::State;
use data_encoding::BASE64URL_NOPAD;
use ehrshare_app::App;
use serde::Serialize;
use utoipa::ToSchema;

/// One public key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JwkView {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// The id receipts name (`key_id`).
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `EdDSA`.
    pub alg: String,
}

/// The key set.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JwksView {
    pub keys: Vec<JwkView>,
}

/// `GET /api/v1/keys/consent-receipts`: the receipt key's public half.
#[utoipa::path(get, path = "/api/v1/keys/consent-receipts", tag = "me",
    responses((status = 200, description = "The key set", body = JwksView)))]
pub async fn consent_receipt_keys(State(app): State<App>) -> Json<JwksView> {
    let (key, kid) = app.receipt_public_key();
    Json(JwksView {
        keys: vec![JwkView {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: BASE64URL_NOPAD.encode(&key),
            kid,
            use_: "sig".to_owned(),
            alg: "EdDSA".to_owned(),
        }],
    })
}
