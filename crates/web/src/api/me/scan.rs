//! Consent by QR scan through the patient portal (issue 26, item 4; ADR 0018): the logged-in
//! session posts the scanned payload, is shown the provider and location, confirms, and gets a
//! signed receipt, verifiable offline with the key at `/api/v1/keys/consent-receipts`. The
//! scanning page comes with the patient portal.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use ehrshare_app::qr_consent::ReceiptRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::api::providers::{LocationView, location_view};
use crate::api::recipients::consents::{ConsentView, consent_view};
use crate::error::HttpError;
use crate::session::LoggedIn;

/// What the camera read.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    /// The QR code's text: `ehrshare:location:1.<claim>.<signature>`.
    #[schema(max_length = 1024)]
    pub payload: String,
}

/// The scanned provider and location, to confirm.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScannedView {
    pub hcp: Uuid,
    pub name_en: String,
    pub name_zh: String,
    pub location: LocationView,
}

/// `POST /api/v1/me/recipients/{id}/location-scans`: which provider a scanned code names.
/// Nothing is stored.
#[utoipa::path(post, path = "/api/v1/me/recipients/{id}/location-scans", tag = "me", request_body = ScanBody,
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 200, description = "The provider and location", body = ScannedView),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 422, description = "`location-token-malformed`, `location-token-invalid` (altered or not ours), `location-token-revoked`", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn scan(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ScanBody>,
) -> Result<Json<ScannedView>, HttpError> {
    let s = app.scan_location(&session, id, &body.payload).await?;
    Ok(Json(ScannedView {
        hcp: s.provider.hcp.id,
        name_en: s.provider.hcp.name_en.clone(),
        name_zh: s.provider.hcp.name_zh.clone(),
        location: location_view(&app, s.location),
    }))
}

/// Confirming a scanned provider.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanConsentBody {
    #[schema(max_length = 1024)]
    pub payload: String,
    /// `one-year` or `indefinite` (default) under the 2016 rules; none under 2025.
    #[serde(default)]
    pub kind: Option<String>,
}

/// A signed receipt: `signature` (Ed25519, base64url without padding) over the UTF-8 bytes of
/// `body` exactly as given, by the key `key_id` of `/api/v1/keys/consent-receipts`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptView {
    /// Canonical JSON (RFC 8785) of the consent: consent, given_at, hcp, kind, location,
    /// method, recipient, sdm (when an SDM gave it), typ `ehrshare.consent-receipt.1`.
    pub body: String,
    pub signature: String,
    /// `EdDSA` (Ed25519).
    pub alg: String,
    pub key_id: String,
}

impl From<ReceiptRow> for ReceiptView {
    fn from(r: ReceiptRow) -> Self {
        ReceiptView {
            body: r.body,
            signature: r.signature,
            alg: "EdDSA".to_owned(),
            key_id: r.key_id,
        }
    }
}

/// A consent given by scan and its receipt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanConsentView {
    pub consent: ConsentView,
    pub receipt: ReceiptView,
}

/// `POST /api/v1/me/recipients/{id}/consents/by-scan`: confirm; the consent is in force at
/// once and its receipt is returned (and kept).
#[utoipa::path(post, path = "/api/v1/me/recipients/{id}/consents/by-scan", tag = "me", request_body = ScanConsentBody,
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 201, description = "In force, with its receipt", body = ScanConsentView),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 422, description = "A refused token (as for a scan) or kind; nothing stored", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn consent_by_scan(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ScanConsentBody>,
) -> Result<(StatusCode, Json<ScanConsentView>), HttpError> {
    let (consent, receipt) = app
        .give_consent_by_scan(&session, &caller, id, &body.payload, body.kind.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ScanConsentView {
            consent: consent_view(consent),
            receipt: receipt.into(),
        }),
    ))
}

/// `GET /api/v1/me/recipients/{id}/receipts/{consent}`: a kept receipt.
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/receipts/{consent}", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"), ("consent" = Uuid, Path, description = "A consent given by scan")),
    responses((status = 200, description = "The receipt", body = ReceiptView),
              (status = 404, description = "No receipt of this recipient", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn receipt(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path((id, consent)): Path<(Uuid, Uuid)>,
) -> Result<Json<ReceiptView>, HttpError> {
    Ok(Json(
        app.consent_receipt(&session, id, consent).await?.into(),
    ))
}
