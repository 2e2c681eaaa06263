//! `/api/v1/office/recipients/{id}/...`: the eHR Office records a consent given by phone, and
//! its privacy officers keep the disclosure ledger (SPEC 3.11), and its registration officers
//! print the letters of the print queue (notices by post).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use serde::{Deserialize, Serialize};
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

/// A letter in the print queue, as listed (open it to print it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueuedLetterView {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub kind: String,
    /// `en` or `zh-HK`.
    pub language: String,
}

/// A letter waiting to be printed and posted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LetterView {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub recipient: Option<Uuid>,
    /// The postal address, as the recipient gave it.
    pub address: String,
    pub kind: String,
    /// `en` or `zh-HK`.
    pub language: String,
    pub subject: String,
    pub body: String,
}

/// Paging of the print queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintQueueQuery {
    /// After this letter.
    #[serde(default)]
    pub after: Option<Uuid>,
}

/// `GET /api/v1/office/print-queue`: letters to print, oldest first (registration
/// officers), without their addresses or words.
#[utoipa::path(get, path = "/api/v1/office/print-queue", tag = "sharing",
    params(("after" = Option<Uuid>, Query, description = "After this letter")),
    responses((status = 200, description = "Oldest first, 50 a page", body = [QueuedLetterView]),
              (status = 404, description = "Not a registration officer", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn print_queue(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Query(q): Query<PrintQueueQuery>,
) -> Result<Json<Vec<QueuedLetterView>>, HttpError> {
    let letters = app.print_queue(&session, q.after).await?;
    Ok(Json(
        letters
            .into_iter()
            .map(|(id, at, kind, locale)| QueuedLetterView {
                id,
                at,
                kind,
                language: locale.tag().to_owned(),
            })
            .collect(),
    ))
}

/// `GET /api/v1/office/print-queue/{letter}`: one letter to print, with its address and words
/// (audited with the recipient, whose access log shows it).
#[utoipa::path(get, path = "/api/v1/office/print-queue/{letter}", tag = "sharing",
    params(("letter" = Uuid, Path, description = "The letter")),
    responses((status = 200, description = "The letter", body = LetterView),
              (status = 404, description = "Not a registration officer, or not in the queue", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn letter(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(letter): Path<Uuid>,
) -> Result<Json<LetterView>, HttpError> {
    let l = app.letter(&session, &caller, letter).await?;
    Ok(Json(LetterView {
        id: l.id,
        at: l.at,
        recipient: l.recipient,
        address: l.address.unwrap_or_default(),
        kind: l.kind,
        language: l.locale.tag().to_owned(),
        subject: l.subject,
        body: l.body,
    }))
}

/// `POST /api/v1/office/print-queue/{letter}/printed`: the letter was printed and posted.
#[utoipa::path(post, path = "/api/v1/office/print-queue/{letter}/printed", tag = "sharing",
    params(("letter" = Uuid, Path, description = "The letter")),
    responses((status = 204, description = "Out of the queue, its contents erased"),
              (status = 404, description = "Not a registration officer, or no such letter", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 409, description = "`already-printed`", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn mark_printed(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(letter): Path<Uuid>,
) -> Result<StatusCode, HttpError> {
    app.mark_printed(&session, &caller, letter).await?;
    Ok(StatusCode::NO_CONTENT)
}
