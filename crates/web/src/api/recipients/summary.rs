//! `GET /api/v1/recipients/{id}/summary`: the eHR summary, by domain.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use ehrshare_app::App;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::records::{RecordView, SummaryQuery};
use crate::error::HttpError;
use crate::session::LoggedIn;

/// One domain's records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainView {
    pub domain: String,
    pub records: Vec<RecordView>,
}

/// A recipient's eHR summary as the caller may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryView {
    pub recipient: Uuid,
    pub domains: Vec<DomainView>,
}

/// `GET /api/v1/recipients/{id}/summary`: the eHR summary by domain.
#[utoipa::path(get, path = "/api/v1/recipients/{id}/summary", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id"),
           ("domains" = Option<String>, Query, description = "Comma-separated domain codes"),
           ("reason" = Option<String>, Query, description = "Reason for access outside a care episode")),
    responses((status = 200, description = "What the role may see", body = SummaryView),
              (status = 403, description = "A denial reason", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn summary(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<SummaryQuery>,
) -> Result<Response, HttpError> {
    let mut domains = Vec::new();
    for code in q
        .domains
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        domains.push(ehrshare_core::domain::Domain::parse(code).ok_or_else(|| {
            HttpError(ehrshare_app::AppError::Invalid {
                code: "invalid-domain",
                message: format!("unknown domain {code:?}"),
                fields: Vec::new(),
            })
        })?);
    }
    let s = app
        .summary(&session, &caller, id, &domains, q.reason.as_deref())
        .await?;
    Ok(crate::api::listed_json::response(
        crate::api::listed_json::summary(&s)?,
    ))
}
