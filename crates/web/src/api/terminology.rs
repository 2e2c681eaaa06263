//! `GET /api/v1/terminology/cm`: the Chinese medicine terms, for the deposit forms' lists.

use axum::Json;
use axum::extract::{Query, State};
use ehrshare_app::App;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A terminology search.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TermQuery {
    #[serde(default)]
    pub q: String,
}

/// A Chinese medicine term.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TermView {
    /// `herb`, `disease`, `syndrome` or `acupoint`.
    pub kind: String,
    pub system: String,
    pub code: String,
    pub preferred: String,
    pub english: String,
    pub synonyms: Vec<String>,
}

/// `GET /api/v1/terminology/cm?q=`: Chinese medicine terms by any of their names, Chinese or
/// English (at most 20).
#[utoipa::path(get, path = "/api/v1/terminology/cm", tag = "sharing",
    params(("q" = String, Query, description = "A name, synonym, English name or code")),
    responses((status = 200, description = "Matching terms", body = [TermView])))]
pub async fn terminology(
    State(app): State<App>,
    Query(q): Query<TermQuery>,
) -> Json<Vec<TermView>> {
    Json(
        app.settings()
            .terminology
            .search(&q.q, 20)
            .into_iter()
            .map(|t| TermView {
                kind: t.kind.code().to_owned(),
                system: t.kind.system().to_owned(),
                code: t.code.clone(),
                preferred: t.preferred.clone(),
                english: t.english.clone(),
                synonyms: t.synonyms.clone(),
            })
            .collect(),
    )
}
