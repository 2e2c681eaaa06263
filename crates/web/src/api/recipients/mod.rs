//! `/api/v1/recipients`: registering healthcare recipients (office, until accounts exist).

pub mod break_glass;
pub mod consents;
pub mod episodes;
pub mod find;
pub mod records;
pub mod summary;
pub mod unlock;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ehrshare_app::App;
use ehrshare_app::recipient::Registration;
use ehrshare_core::registration::{DocumentInput, RegistrationInput, SdmInput};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::Office;

/// An identity document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentBody {
    /// `hkid`, `hk-birth-certificate`, `passport`, `macao-id`, `mainland-travel-permit`, `other`.
    #[serde(rename = "type")]
    pub kind: String,
    /// ISO 3166 code of the issuing place; defaults to HK for HKIDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// As typed (`A123456(3)`); stored canonical (`A1234563`).
    pub number: String,
}

/// A substitute decision maker.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SdmBody {
    #[schema(max_length = 100)]
    pub name_en: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name_zh: Option<String>,
    pub document: DocumentBody,
    /// `parent`, `child-guardian`, ..., `guardian`, `care-provider` (SPEC 3.3).
    pub category: String,
    /// Declared when a higher-priority SDM is not available.
    #[serde(default)]
    pub no_higher_available: bool,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub relationship_proof: Option<String>,
    pub phone: String,
    #[serde(default)]
    pub email: Option<String>,
    /// How notices to the SDM reach them: `sms` (default) or `email`.
    #[serde(default)]
    pub notify_channel: Option<String>,
}

/// A registration request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationBody {
    /// `in-person`, `online`, `mail-fax`, `hcp` (for `POST /api/v1/me/registrations`,
    /// `online` or left out).
    #[serde(default)]
    pub channel: String,
    #[schema(max_length = 100)]
    pub name_en: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name_zh: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// `female`, `male`, `unknown`.
    pub sex: String,
    /// `able` (default) or `unable`.
    #[serde(default)]
    pub capacity: Option<String>,
    pub document: DocumentBody,
    pub phone: String,
    #[serde(default)]
    pub phone2: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(max_length = 300)]
    pub address: Option<String>,
    /// `en` or `zh-HK`.
    pub language: String,
    /// `sms`, `email`, `post`, `app`.
    pub notify_channel: String,
    #[serde(default)]
    pub refuses_access_notices: bool,
    #[serde(default)]
    pub sdm: Option<SdmBody>,
}

/// An SDM as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SdmView {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub document: DocumentBody,
    pub category: String,
    pub no_higher_available: bool,
    pub relationship_proof: Option<String>,
    pub phone: String,
}

/// A registration as shown. The access key is never part of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecipientView {
    pub id: Uuid,
    /// `active` or `pending-verification` (later `suspended`, `withdrawn`).
    pub status: String,
    pub channel: String,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub date_of_birth: String,
    pub sex: String,
    pub capacity: String,
    pub document: DocumentBody,
    pub phone: String,
    pub phone2: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub language: String,
    pub notify_channel: String,
    pub refuses_access_notices: bool,
    pub created_at: String,
    pub activated_at: Option<String>,
    pub sdms: Vec<SdmView>,
}

pub(crate) fn document(d: DocumentBody) -> DocumentInput {
    DocumentInput {
        kind: d.kind,
        issuer: d.issuer,
        number: d.number,
    }
}

impl From<RegistrationBody> for RegistrationInput {
    fn from(b: RegistrationBody) -> Self {
        RegistrationInput {
            channel: b.channel,
            name_en: b.name_en,
            name_zh: b.name_zh,
            date_of_birth: b.date_of_birth,
            sex: b.sex,
            capacity: b.capacity,
            document: document(b.document),
            phone: b.phone,
            phone2: b.phone2,
            email: b.email,
            address: b.address,
            language: b.language,
            notify_channel: b.notify_channel,
            refuses_access_notices: b.refuses_access_notices,
            sdm: b.sdm.map(|s| SdmInput {
                name_en: s.name_en,
                name_zh: s.name_zh,
                document: document(s.document),
                category: s.category,
                no_higher_available: s.no_higher_available,
                relationship_proof: s.relationship_proof,
                phone: s.phone,
                email: s.email,
                notify_channel: s.notify_channel,
            }),
        }
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl From<Registration> for RecipientView {
    fn from(reg: Registration) -> Self {
        let r = reg.recipient;
        RecipientView {
            id: r.id,
            status: r.status.code().to_owned(),
            channel: r.channel,
            name_en: r.name_en,
            name_zh: r.name_zh,
            date_of_birth: r.date_of_birth,
            sex: r.sex,
            capacity: r.capacity,
            document: DocumentBody {
                kind: r.doc_type,
                issuer: Some(r.doc_issuer),
                number: r.doc_number,
            },
            phone: r.phone,
            phone2: r.phone2,
            email: r.email,
            address: r.address,
            language: r.language,
            notify_channel: r.notify_channel,
            refuses_access_notices: r.refuses_access_notices,
            created_at: rfc3339(r.created_at),
            activated_at: r.activated_at.map(rfc3339),
            sdms: reg
                .sdms
                .into_iter()
                .map(|s| SdmView {
                    id: s.sdm_id,
                    name_en: s.name_en,
                    name_zh: s.name_zh,
                    document: DocumentBody {
                        kind: s.doc_type,
                        issuer: Some(s.doc_issuer),
                        number: s.doc_number,
                    },
                    category: s.category,
                    no_higher_available: s.no_higher_available,
                    relationship_proof: s.relationship_proof,
                    phone: s.phone,
                })
                .collect(),
        }
    }
}

/// `POST /api/v1/recipients`: register a recipient.
#[utoipa::path(
    post,
    path = "/api/v1/recipients",
    tag = "recipients",
    request_body = RegistrationBody,
    security(("session" = [])),
    responses(
        (status = 201, description = "Registered", body = RecipientView),
        (status = 400, description = "Malformed body", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not logged in, or the session ended", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The document already has an active registration (`duplicate-document`)", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`invalid-hkid`, ...) or a registration rule (`sdm-required-for-child`, ...)", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    State(app): State<App>,
    Office(caller): Office,
    ApiJson(body): ApiJson<RegistrationBody>,
) -> Result<impl IntoResponse, HttpError> {
    let registration = app.register_recipient(&caller, body.into()).await?;
    Ok((StatusCode::CREATED, Json(RecipientView::from(registration))))
}

/// `GET /api/v1/recipients/{id}`: one registration.
#[utoipa::path(
    get,
    path = "/api/v1/recipients/{id}",
    tag = "recipients",
    params(("id" = Uuid, Path, description = "Recipient id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The registration", body = RecipientView),
        (status = 404, description = "No such recipient", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    State(app): State<App>,
    Office(caller): Office,
    Path(id): Path<Uuid>,
) -> Result<Json<RecipientView>, HttpError> {
    Ok(Json(app.read_recipient(&caller, id).await?.into()))
}

/// Who asks for a new access key.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateBody {
    /// The SDM acting for the recipient, if one is (their id in `sdms`).
    #[serde(default)]
    pub acting_sdm: Option<Uuid>,
}

/// `POST /api/v1/recipients/{id}/access-key`: issue a new access key (the old one dies at once;
/// the new one goes out through the notification channel and is never returned).
#[utoipa::path(
    post,
    path = "/api/v1/recipients/{id}/access-key",
    tag = "recipients",
    params(("id" = Uuid, Path, description = "Recipient id")),
    request_body = RegenerateBody,
    security(("session" = [])),
    responses(
        (status = 204, description = "A new key was issued and sent"),
        (status = 403, description = "The acting SDM no longer has authority (`sdm-authority-ended`)", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such recipient or SDM", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The registration is not active", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn regenerate_access_key(
    State(app): State<App>,
    Office(caller): Office,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<RegenerateBody>,
) -> Result<StatusCode, HttpError> {
    app.regenerate_access_key(&caller, id, body.acting_sdm)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A change of a registration's status.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientEventBody {
    /// `verify`, `suspend`, `reinstate` or `withdraw`.
    pub event: String,
    /// The SDM acting for the recipient, if one is.
    #[serde(default)]
    pub acting_sdm: Option<Uuid>,
    /// Required to suspend.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// `POST /api/v1/recipients/{id}/events`: verify, suspend, reinstate or withdraw (office).
#[utoipa::path(
    post,
    path = "/api/v1/recipients/{id}/events",
    tag = "recipients",
    params(("id" = Uuid, Path, description = "Recipient id")),
    request_body = RecipientEventBody,
    security(("session" = [])),
    responses(
        (status = 200, description = "Applied", body = RecipientView),
        (status = 403, description = "The acting SDM no longer has authority", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Not possible from the current status (`invalid-transition`)", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Unknown event, missing reason", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn event(
    State(app): State<App>,
    Office(caller): Office,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<RecipientEventBody>,
) -> Result<Json<RecipientView>, HttpError> {
    use ehrshare_core::recipient::RecipientEvent;
    let event = match body.event.as_str() {
        "verify" => RecipientEvent::Verify,
        "suspend" => RecipientEvent::Suspend,
        "reinstate" => RecipientEvent::Reinstate,
        "withdraw" => RecipientEvent::Withdraw,
        _ => {
            return Err(HttpError(ehrshare_app::AppError::Invalid {
                code: "invalid-event",
                message: "verify, suspend, reinstate or withdraw".to_owned(),
                fields: vec![ehrshare_app::error::FieldError {
                    field: "/event".to_owned(),
                    code: "invalid-event",
                    message: "verify, suspend, reinstate or withdraw".to_owned(),
                }],
            }));
        }
    };
    let reg = app
        .recipient_event(&caller, id, event, body.acting_sdm, body.reason)
        .await?;
    Ok(Json(reg.into()))
}
