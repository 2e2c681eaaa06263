//! `/api/v1/providers` (office: applications, lifecycle, locations) and `/api/v1/directory`
//! (public: active providers and their service locations, bilingual).

pub mod break_glass;
pub mod card_readers;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ehrshare_app::App;
use ehrshare_app::provider::{
    ApplicationInput, ContactInput, DirectoryFilter, LocationInput, LocationRow, Provider,
    StaffInput, StaffRow,
};
use ehrshare_core::provider::{District, Event};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::Office;

/// How to reach a person named on the application (its authorised person, its contact person).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    #[schema(max_length = 100)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub position: Option<String>,
    pub phone: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// A service location as entered.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    #[schema(max_length = 200)]
    pub name_en: String,
    #[schema(max_length = 200)]
    pub name_zh: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub room_floor: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub building: Option<String>,
    #[schema(max_length = 200)]
    pub street: String,
    /// One of the 18 districts: `central-and-western`, ..., `sha-tin`, `islands`.
    pub district: String,
    pub phone: String,
}

/// A member of staff named on the application.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffBody {
    #[schema(max_length = 100)]
    pub name_en: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name_zh: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub position: Option<String>,
    /// One of the 13 professions (`doctor`, `chinese-medicine-practitioner`, ...),
    /// `registration-staff` or `user-administrator`.
    pub role: String,
    /// Professional registration number (professions only).
    #[serde(default)]
    pub prof_reg_no: Option<String>,
    pub mobile: String,
    /// Agrees to be listed in the public directory.
    #[serde(default)]
    pub listed: bool,
}

/// An application from the registration form.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationBody {
    #[schema(max_length = 200)]
    pub name_en: String,
    #[schema(max_length = 200)]
    pub name_zh: String,
    /// Business or company registration number.
    #[schema(max_length = 20)]
    pub br_number: String,
    /// `hospital`, `clinic`, `cm-clinic`, `elderly-home`, `laboratory`, `imaging-centre`, ...
    pub hcp_type: String,
    /// `public` or `private`.
    pub sector: String,
    pub authorised_person: ContactBody,
    pub contact_person: ContactBody,
    pub locations: Vec<LocationBody>,
    /// User administrators and staff (a submitted application names a user administrator).
    #[serde(default)]
    pub staff: Vec<StaffBody>,
    /// Submit now (default) or keep as a draft.
    #[serde(default = "yes")]
    pub submit: bool,
}

fn yes() -> bool {
    true
}

/// A lifecycle event.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// `submit`, `accept`, `reject`, `suspend`, `reinstate`, `withdraw`, `cancel`.
    pub event: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
    /// RFC 3339; for `withdraw` and `cancel` (default: now).
    #[serde(default)]
    pub effective: Option<String>,
}

/// A service location as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LocationView {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: String,
    pub room_floor: Option<String>,
    pub building: Option<String>,
    pub street: String,
    pub district: String,
    pub district_en: String,
    pub district_zh: String,
    pub phone: String,
    /// What the location's QR code encodes: a signed location token (ADR 0018), posted in the
    /// patient portal to give the provider sharing consent.
    pub qr_payload: String,
}

/// A member of staff as the office sees them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffView {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub position: Option<String>,
    pub role: String,
    pub prof_reg_no: Option<String>,
    pub mobile: String,
    pub listed: bool,
}

/// A professional as the public directory lists them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfessionalView {
    pub name_en: String,
    pub name_zh: Option<String>,
    pub profession: String,
    pub profession_en: String,
    pub profession_zh: String,
}

/// A provider as the office sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderView {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: String,
    pub br_number: String,
    pub hcp_type: String,
    pub sector: String,
    /// Status now: `draft`, `submitted`, `accepted`, `rejected`, `lapsed`, `active`, ...
    pub status: String,
    pub stage_reason: Option<String>,
    #[schema(value_type = Object)]
    pub authorised_person: serde_json::Value,
    #[schema(value_type = Object)]
    pub contact_person: serde_json::Value,
    pub locations: Vec<LocationView>,
    pub staff: Vec<StaffView>,
}

/// A provider in the public directory.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DirectoryEntry {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: String,
    pub hcp_type: String,
    pub sector: String,
    pub locations: Vec<LocationView>,
    /// Professionals who agreed to be listed.
    pub professionals: Vec<ProfessionalView>,
}

/// One page of the directory.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DirectoryPage {
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
    pub items: Vec<DirectoryEntry>,
}

/// Directory search.
#[derive(Debug, Clone, Deserialize, IntoParams)]
pub struct DirectoryQuery {
    /// Part of the English or Chinese name.
    pub q: Option<String>,
    pub district: Option<String>,
    #[serde(rename = "type")]
    pub hcp_type: Option<String>,
    /// A profession code: providers with a listed professional of it.
    pub profession: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

pub(crate) fn location_view(app: &App, l: LocationRow) -> LocationView {
    let district = District::parse(&l.district);
    LocationView {
        id: l.id,
        qr_payload: app.location_token(&l),
        district_en: district
            .map(District::name_en)
            .unwrap_or_default()
            .to_owned(),
        district_zh: district
            .map(District::name_zh)
            .unwrap_or_default()
            .to_owned(),
        name_en: l.name_en,
        name_zh: l.name_zh,
        room_floor: l.room_floor,
        building: l.building,
        street: l.street,
        district: l.district,
        phone: l.phone,
    }
}

impl ProviderView {
    fn new(app: &App, p: Provider) -> Self {
        ProviderView {
            id: p.hcp.id,
            name_en: p.hcp.name_en,
            name_zh: p.hcp.name_zh,
            br_number: p.hcp.br_number,
            hcp_type: p.hcp.hcp_type,
            sector: p.hcp.sector.code().to_owned(),
            status: p.status.code().to_owned(),
            stage_reason: p.hcp.stage_reason,
            authorised_person: p.hcp.authorised_person,
            contact_person: p.hcp.contact_person,
            locations: p
                .locations
                .into_iter()
                .map(|l| location_view(app, l))
                .collect(),
            staff: p
                .staff
                .into_iter()
                .map(|s| StaffView {
                    id: s.id,
                    name_en: s.name_en,
                    name_zh: s.name_zh,
                    position: s.position,
                    role: s.role,
                    prof_reg_no: s.prof_reg_no,
                    mobile: s.mobile,
                    listed: s.listed,
                })
                .collect(),
        }
    }
}

fn professional(s: StaffRow) -> ProfessionalView {
    let role = ehrshare_core::profession::Role::parse(&s.role);
    ProfessionalView {
        name_en: s.name_en,
        name_zh: s.name_zh,
        profession_en: role.map(|r| r.name_en()).unwrap_or_default().to_owned(),
        profession_zh: role.map(|r| r.name_zh()).unwrap_or_default().to_owned(),
        profession: s.role,
    }
}

fn contact(p: ContactBody) -> ContactInput {
    ContactInput {
        name: p.name,
        position: p.position,
        phone: p.phone,
        email: p.email,
    }
}

fn location(l: LocationBody) -> LocationInput {
    LocationInput {
        name_en: l.name_en,
        name_zh: l.name_zh,
        room_floor: l.room_floor,
        building: l.building,
        street: l.street,
        district: l.district,
        phone: l.phone,
    }
}

/// `POST /api/v1/providers`: record an application from the registration form (office).
#[utoipa::path(post, path = "/api/v1/providers", tag = "providers", request_body = ApplicationBody,
    security(("session" = [])),
    responses(
        (status = 201, description = "Recorded", body = ProviderView),
        (status = 422, description = "Invalid fields", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn apply(
    State(app): State<App>,
    Office(caller): Office,
    ApiJson(b): ApiJson<ApplicationBody>,
) -> Result<impl IntoResponse, HttpError> {
    let input = ApplicationInput {
        name_en: b.name_en,
        name_zh: b.name_zh,
        br_number: b.br_number,
        hcp_type: b.hcp_type,
        sector: b.sector,
        authorised_person: contact(b.authorised_person),
        contact_person: contact(b.contact_person),
        locations: b.locations.into_iter().map(location).collect(),
        staff: b
            .staff
            .into_iter()
            .map(|s| StaffInput {
                name_en: s.name_en,
                name_zh: s.name_zh,
                position: s.position,
                role: s.role,
                prof_reg_no: s.prof_reg_no,
                mobile: s.mobile,
                listed: s.listed,
            })
            .collect(),
        submit: b.submit,
    };
    let provider = app.apply_hcp(&caller, input).await?;
    Ok((StatusCode::CREATED, Json(ProviderView::new(&app, provider))))
}

/// `GET /api/v1/providers/{id}` (office).
#[utoipa::path(get, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")), security(("session" = [])),
    responses((status = 200, description = "The provider, with its status now", body = ProviderView),
        (status = 404, description = "No such provider", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn show(
    State(app): State<App>,
    Office(_c): Office,
    Path(id): Path<Uuid>,
) -> Result<Json<ProviderView>, HttpError> {
    Ok(Json(ProviderView::new(&app, app.provider(id).await?)))
}

/// `POST /api/v1/providers/{id}/events`: a lifecycle event (office).
#[utoipa::path(post, path = "/api/v1/providers/{id}/events", tag = "providers", request_body = EventBody,
    params(("id" = Uuid, Path, description = "Provider id")), security(("session" = [])),
    responses((status = 200, description = "Applied", body = ProviderView),
        (status = 409, description = "Not allowed in the current status (`invalid-transition`)", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Missing reason, bad date, unknown event", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn event(
    State(app): State<App>,
    Office(caller): Office,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<EventBody>,
) -> Result<Json<ProviderView>, HttpError> {
    let invalid = |code: &'static str, field: &str, message: &str| {
        HttpError(ehrshare_app::AppError::Invalid {
            code,
            message: message.to_owned(),
            fields: vec![ehrshare_app::error::FieldError {
                field: field.to_owned(),
                code,
                message: message.to_owned(),
            }],
        })
    };
    let effective = match b.effective.as_deref() {
        None => app.clock().now(),
        Some(t) => OffsetDateTime::parse(t, &Rfc3339)
            .map_err(|_| invalid("invalid-date", "/effective", "an RFC 3339 time"))?,
    };
    let reason = b.reason.unwrap_or_default();
    let event = match b.event.as_str() {
        "submit" => Event::Submit,
        "accept" => Event::Accept,
        "reject" => Event::Reject { reason },
        "complete-set-up" => {
            return Err(invalid(
                "set-up-by-enrolment",
                "/event",
                "a provider's set-up completes when its first user administrator enrols",
            ));
        }
        "suspend" => Event::Suspend { reason },
        "reinstate" => Event::Reinstate,
        "withdraw" => Event::Withdraw { effective, reason },
        "cancel" => Event::Cancel { effective, reason },
        _ => return Err(invalid("invalid-event", "/event", "unknown event")),
    };
    let provider = app.hcp_event(&caller, id, event).await?;
    Ok(Json(ProviderView::new(&app, provider)))
}

/// `POST /api/v1/providers/{id}/locations`: an additional service location (office).
#[utoipa::path(post, path = "/api/v1/providers/{id}/locations", tag = "providers", request_body = LocationBody,
    params(("id" = Uuid, Path, description = "Provider id")), security(("session" = [])),
    responses((status = 201, description = "Added", body = LocationView)))]
pub async fn add_location(
    State(app): State<App>,
    Office(caller): Office,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<LocationBody>,
) -> Result<impl IntoResponse, HttpError> {
    let row = app.add_location(&caller, id, location(b)).await?;
    Ok((StatusCode::CREATED, Json(location_view(&app, row))))
}

/// `GET /api/v1/directory`: active providers (public; no login).
#[utoipa::path(get, path = "/api/v1/directory", tag = "directory", params(DirectoryQuery),
    responses((status = 200, description = "One page of active providers, by English name", body = DirectoryPage)))]
pub async fn directory(
    State(app): State<App>,
    Query(q): Query<DirectoryQuery>,
) -> Result<Json<DirectoryPage>, HttpError> {
    let filter = DirectoryFilter {
        name: q.q.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
        district: q.district.filter(|s| !s.is_empty()),
        hcp_type: q.hcp_type.filter(|s| !s.is_empty()),
        profession: q.profession.filter(|s| !s.is_empty()),
    };
    let page = q.page.unwrap_or(1).max(1);
    let per_page = q.per_page.unwrap_or(20).clamp(1, 100);
    let (items, total) = app.directory(&filter, page, per_page).await?;
    Ok(Json(DirectoryPage {
        total,
        page,
        per_page,
        items: items
            .into_iter()
            .map(|p| DirectoryEntry {
                id: p.hcp.id,
                name_en: p.hcp.name_en,
                name_zh: p.hcp.name_zh,
                hcp_type: p.hcp.hcp_type,
                sector: p.hcp.sector.code().to_owned(),
                locations: p
                    .locations
                    .into_iter()
                    .map(|l| location_view(&app, l))
                    .collect(),
                professionals: p.staff.into_iter().map(professional).collect(),
            })
            .collect(),
    }))
}

/// A supporting document's description.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentView {
    pub id: Uuid,
    pub kind: String,
    pub file_name: String,
    pub media_type: String,
    pub size: i64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    pub uploaded_at: String,
}

fn document_view(d: ehrshare_app::provider::DocumentRow) -> DocumentView {
    DocumentView {
        id: d.id,
        kind: d.kind,
        file_name: d.file_name,
        media_type: d.media_type,
        size: d.size,
        sha256: d.sha256,
        uploaded_at: d.uploaded_at.format(&Rfc3339).unwrap_or_default(),
    }
}

/// Where an upload goes.
#[derive(Debug, Clone, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// What the document is, e.g. `business-registration`.
    pub kind: String,
    /// The file's name as uploaded.
    pub file_name: String,
}

/// `POST /api/v1/providers/{id}/documents?kind=...&file_name=...`: upload a supporting
/// document as the raw body (office). PDF, PNG or JPEG; at most the server's body limit.
#[utoipa::path(post, path = "/api/v1/providers/{id}/documents", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/pdf"),
    security(("session" = [])),
    responses((status = 201, description = "Stored", body = DocumentView),
        (status = 413, description = "Too large", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "Not a PDF, PNG or JPEG, or content not matching its type", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn upload_document(
    State(app): State<App>,
    Office(caller): Office,
    Path(id): Path<Uuid>,
    Query(q): Query<UploadQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, HttpError> {
    let media_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let row = app
        .upload_hcp_document(
            &caller,
            id,
            &q.kind,
            &q.file_name,
            media_type,
            body.to_vec(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(document_view(row))))
}

/// `GET /api/v1/providers/{id}/documents` (office).
#[utoipa::path(get, path = "/api/v1/providers/{id}/documents", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")), security(("session" = [])),
    responses((status = 200, description = "Descriptions", body = [DocumentView])))]
pub async fn documents(
    State(app): State<App>,
    Office(_c): Office,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<DocumentView>>, HttpError> {
    Ok(Json(
        app.hcp_documents(id)
            .await?
            .into_iter()
            .map(document_view)
            .collect(),
    ))
}

/// `GET /api/v1/providers/{id}/documents/{doc}`: the file, as an attachment (office).
#[utoipa::path(get, path = "/api/v1/providers/{id}/documents/{doc}", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id"), ("doc" = Uuid, Path, description = "Document id")),
    security(("session" = [])),
    responses((status = 200, description = "The file", content_type = "application/octet-stream")))]
pub async fn document(
    State(app): State<App>,
    Office(caller): Office,
    Path((id, doc)): Path<(Uuid, Uuid)>,
) -> Result<impl IntoResponse, HttpError> {
    let (row, content) = app.hcp_document(&caller, id, doc).await?;
    // Served as an attachment under a name we choose: the uploaded name is data, not a header.
    let ext = match row.media_type.as_str() {
        "application/pdf" => "pdf",
        "image/png" => "png",
        _ => "jpg",
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, row.media_type.clone()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.{ext}\"", row.id),
            ),
        ],
        content,
    ))
}

/// A location's QR code, replaced.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QrView {
    /// What the new code encodes.
    pub qr_payload: String,
}

/// `POST /api/v1/providers/{id}/locations/{location}/qr`: the provider's user administrator
/// replaces a location's QR code; every code printed before is refused from now on.
#[utoipa::path(post, path = "/api/v1/providers/{id}/locations/{location}/qr", tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id"), ("location" = Uuid, Path, description = "Location id")),
    security(("session" = [])),
    responses((status = 200, description = "Replaced", body = QrView),
        (status = 404, description = "Not this provider's user administrator, or no such location", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn replace_qr(
    State(app): State<App>,
    crate::session::LoggedIn { session, caller }: crate::session::LoggedIn,
    Path((id, location)): Path<(Uuid, Uuid)>,
) -> Result<Json<QrView>, HttpError> {
    let qr_payload = app
        .replace_location_qr(&session, &caller, id, location)
        .await?;
    Ok(Json(QrView { qr_payload }))
}
