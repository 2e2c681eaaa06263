//! `POST /api/v1/consents/card`: a sharing consent by smart ID card, from a registered reader.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ehrshare_app::App;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::api::recipients::consents::{ConsentView, consent_view};
use crate::error::HttpError;
use crate::session::LoggedIn;

/// A card reader's signed assertion, relayed by the counter.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    pub reader: Uuid,
    pub hkid: String,
    pub card_serial: String,
    /// When the card was read (RFC 3339).
    pub time: String,
    pub nonce: String,
    /// Ed25519 over the assertion's message (`ehrshare-card-assertion-v1` lines), base64url.
    pub signature: String,
    /// `one-year` or `indefinite` (default); under the 2025 rules consents have no kind and
    /// one given is refused (422 `consent-kind-not-applicable`).
    #[serde(default)]
    pub kind: Option<String>,
}

/// A card assertion from the body's fields (the HKID as typed or canonical).
pub(crate) fn card_assertion(
    reader: Uuid,
    hkid: &str,
    card_serial: String,
    time: &str,
    nonce: String,
) -> Result<ehrshare_core::consent::CardAssertion, HttpError> {
    let at = OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).map_err(
        |_| {
            HttpError(ehrshare_app::AppError::Invalid {
                code: "invalid-time",
                message: "an RFC 3339 time".to_owned(),
                fields: Vec::new(),
            })
        },
    )?;
    let hkid = ehrshare_core::identity::Hkid::parse(hkid)
        .map(|h| h.as_str().to_owned())
        .unwrap_or_else(|_| hkid.to_owned());
    Ok(ehrshare_core::consent::CardAssertion {
        reader,
        hkid,
        card_serial,
        at,
        nonce,
    })
}

/// `POST /api/v1/consents/card`: consent by smart ID card.
#[utoipa::path(post, path = "/api/v1/consents/card", tag = "sharing", request_body = CardBody,
    responses((status = 201, description = "Given", body = ConsentView),
              (status = 403, description = "`card-assertion-refused` (unknown reader, bad signature, stale, replayed)", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn consent_by_card(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    ApiJson(body): ApiJson<CardBody>,
) -> Result<(StatusCode, Json<ConsentView>), HttpError> {
    let assertion = card_assertion(
        body.reader,
        &body.hkid,
        body.card_serial,
        &body.time,
        body.nonce,
    )?;
    let c = app
        .give_consent_by_card(
            &session,
            &caller,
            assertion,
            &body.signature,
            body.kind.as_deref(),
            None,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(consent_view(c))))
}
