//! The provider portal's service locations and their consent QR codes (issue 26, item 4;
//! ADR 0018): each location's code as SVG and PNG, a printable A4 poster in both languages,
//! and, for the provider's user administrators, replacing a code (which revokes the printed
//! ones). Any user of the provider may print; only its own locations are reachable (404).

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use ehrshare_app::App;
use ehrshare_app::provider::LocationRow;
use ehrshare_core::provider::District;
use serde::Deserialize;
use uuid::Uuid;

use super::hcp::{PortalUser, see_other};
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};

/// A location as listed.
struct LocationLine {
    id: Uuid,
    name: String,
    address: String,
}

pub(crate) fn address(locale: Locale, l: &LocationRow) -> String {
    let district = District::parse(&l.district).map(|d| match locale {
        Locale::ZhHk => d.name_zh(),
        Locale::En => d.name_en(),
    });
    [
        l.room_floor.as_deref(),
        l.building.as_deref(),
        Some(l.street.as_str()),
        district,
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(", ")
}

#[derive(Template)]
#[template(path = "hcp_locations.html")]
struct LocationsPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    user_admin: bool,
    replaced: bool,
    locations: Vec<LocationLine>,
}

/// `?replaced=1` after a code was replaced.
#[derive(Debug, Deserialize)]
pub struct Replaced {
    #[serde(default)]
    replaced: Option<String>,
}

/// `GET /hcp/locations`: the provider's locations with their codes.
pub async fn list(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Query(q): Query<Replaced>,
) -> Result<Html<String>, HttpError> {
    let provider = app.own_provider(&user.session).await?;
    let page = LocationsPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        user_admin: user.session.account().is_some_and(|a| a.user_admin),
        replaced: q.replaced.is_some(),
        locations: provider
            .locations
            .iter()
            .map(|l| LocationLine {
                id: l.id,
                name: match locale {
                    Locale::ZhHk => l.name_zh.clone(),
                    Locale::En => l.name_en.clone(),
                },
                address: address(locale, l),
            })
            .collect(),
    };
    Ok(Html(crate::render::render_template(&page)?))
}

fn image(content_type: &'static str, name: String, body: Vec<u8>) -> Response {
    (
        [
            (CONTENT_TYPE, content_type.to_owned()),
            // Replaced codes must not linger in caches.
            (CACHE_CONTROL, "no-store".to_owned()),
            (CONTENT_DISPOSITION, format!("inline; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

/// `GET /hcp/locations/{id}/qr.svg`.
pub async fn qr_svg(
    State(app): State<App>,
    user: PortalUser,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    let (_, l) = app.own_location(&user.session, id).await?;
    let svg = crate::qr::svg(&app.location_token(&l)).map_err(HttpError)?;
    Ok(image(
        "image/svg+xml",
        format!("consent-qr-{id}.svg"),
        svg.into_bytes(),
    ))
}

/// `GET /hcp/locations/{id}/qr.png`.
pub async fn qr_png(
    State(app): State<App>,
    user: PortalUser,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    let (_, l) = app.own_location(&user.session, id).await?;
    let png = crate::qr::png(&app.location_token(&l), 10).map_err(HttpError)?;
    Ok(image("image/png", format!("consent-qr-{id}.png"), png))
}

/// One language's words on the poster.
struct PosterText {
    tag: &'static str,
    heading: String,
    steps: Vec<String>,
    provider: String,
    location: String,
    address: String,
}

#[derive(Template)]
#[template(path = "hcp_poster.html")]
struct PosterPage {
    locale: Locale,
    qr: String,
    /// Chinese first, as Hong Kong's public notices are.
    texts: Vec<PosterText>,
}

/// `GET /hcp/locations/{id}/poster`: an A4 poster, both languages, to print and put up.
pub async fn poster(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
) -> Result<Html<String>, HttpError> {
    let (provider, l) = app.own_location(&user.session, id).await?;
    let qr = crate::qr::svg(&app.location_token(&l)).map_err(HttpError)?;
    let texts = [Locale::ZhHk, Locale::En]
        .into_iter()
        .map(|lang| PosterText {
            tag: lang.tag(),
            heading: lang.t("poster-heading"),
            steps: ["poster-step-1", "poster-step-2", "poster-step-3"]
                .into_iter()
                .map(|k| lang.t(k))
                .collect(),
            provider: match lang {
                Locale::ZhHk => provider.hcp.name_zh.clone(),
                Locale::En => provider.hcp.name_en.clone(),
            },
            location: match lang {
                Locale::ZhHk => l.name_zh.clone(),
                Locale::En => l.name_en.clone(),
            },
            address: address(lang, &l),
        })
        .collect();
    let page = PosterPage { locale, qr, texts };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `POST /hcp/locations/{id}/qr`: a user administrator replaces the code (audited); the
/// printed ones stop working at once.
pub async fn replace(
    State(app): State<App>,
    user: PortalUser,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    let (provider, _) = app.own_location(&user.session, id).await?;
    app.replace_location_qr(&user.session, &user.caller, provider.hcp.id, id)
        .await?;
    Ok(see_other("/hcp/locations?replaced=1"))
}
