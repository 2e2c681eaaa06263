//! `POST /api/v1/recipients/find`: a recipient found at a provider's counter by document.

use axum::Json;
use axum::extract::State;
use ehrshare_app::App;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::api::me::DocumentLoginBody;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// A document to find a recipient by.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindBody {
    pub document: DocumentLoginBody,
}

/// A recipient as found at the counter.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FoundView {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub date_of_birth: String,
    pub status: String,
}

/// `POST /api/v1/recipients/find`: a recipient by identity document (audited).
#[utoipa::path(post, path = "/api/v1/recipients/find", tag = "sharing", request_body = FindBody,
    responses((status = 200, description = "Found", body = FoundView),
              (status = 404, description = "No such recipient", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn find(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    ApiJson(body): ApiJson<FindBody>,
) -> Result<Json<FoundView>, HttpError> {
    let d = body.document;
    let f = app
        .find_recipient(
            &session,
            &caller,
            d.kind.as_deref().unwrap_or("hkid"),
            d.issuer.as_deref(),
            &d.number,
        )
        .await?;
    Ok(Json(FoundView {
        id: f.id,
        name_en: f.name_en,
        name_zh: f.name_zh,
        date_of_birth: f.date_of_birth,
        status: f.status.code().to_owned(),
    }))
}
