//! `/api/v1/office/recipients/{id}/...`: the eHR Office records a consent given by phone, and
//! its privacy officers keep the disclosure ledger (SPEC 3.11).

use axum::Json;
use axum::extract::{Path, State};
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

/// A consent given over the office's telephone line.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneConsentBody {
    pub hcp: Uuid,
    /// `one-year` or `indefinite` (default); under the 2025 rules consents have no kind and
    /// one given is refused (422 `consent-kind-not-applicable`).
    #[serde(default)]
    pub kind: Option<String>,
    /// The call's reference in the office's telephone system.
    #[schema(max_length = 100)]
    pub call_ref: String,
}

/// `POST /api/v1/office/recipients/{id}/consents`: the office records a consent given by phone.
#[utoipa::path(post, path = "/api/v1/office/recipients/{id}/consents", tag = "sharing", request_body = PhoneConsentBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Given", body = ConsentView),
              (status = 404, description = "Not a registration officer, or no such provider", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn consent_by_phone(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<PhoneConsentBody>,
) -> Result<(StatusCode, Json<ConsentView>), HttpError> {
    let c = app
        .give_consent_by_phone(
            &session,
            &caller,
            id,
            body.hcp,
            body.kind.as_deref(),
            &body.call_ref,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(consent_view(c))))
}

/// A disclosure outside care to record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisclosureBody {
    /// `court-order`, `police`, `coroner` or `research`.
    pub legal_basis: String,
    #[schema(max_length = 200)]
    pub requesting_body: String,
    #[schema(max_length = 1000)]
    pub data_disclosed: String,
    /// `YYYY-MM-DD` (Hong Kong's date), today or before.
    pub disclosed_on: String,
    /// Until when the recipient is not told (RFC 3339; none: told at once in their log).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub withhold_until: Option<OffsetDateTime>,
}

/// `POST /api/v1/office/recipients/{id}/disclosures`: a privacy officer records a disclosure.
#[utoipa::path(post, path = "/api/v1/office/recipients/{id}/disclosures", tag = "sharing", request_body = DisclosureBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Recorded", body = crate::api::access_log::DisclosureView),
              (status = 404, description = "Not a privacy officer, or no such recipient", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn record_disclosure(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<DisclosureBody>,
) -> Result<(StatusCode, Json<crate::api::access_log::DisclosureView>), HttpError> {
    let d = app
        .record_disclosure(
            &session,
            &caller,
            id,
            ehrshare_app::disclosure::DisclosureInput {
                legal_basis: body.legal_basis,
                requesting_body: body.requesting_body,
                data_disclosed: body.data_disclosed,
                disclosed_on: body.disclosed_on,
                withhold_until: body.withhold_until,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}

/// `GET /api/v1/office/recipients/{id}/disclosures`: a recipient's disclosures, withheld or
/// not (privacy officers).
#[utoipa::path(get, path = "/api/v1/office/recipients/{id}/disclosures", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 200, description = "The ledger", body = [crate::api::access_log::DisclosureView])))]
pub async fn disclosures(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<crate::api::access_log::DisclosureView>>, HttpError> {
    let list = app.office_disclosures(&session, id).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}
