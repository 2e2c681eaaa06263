//! `/`: the public home page (placeholder until the provider directory lands).

use askama::Template;
use axum::Extension;
use axum::response::Html;

use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};

#[derive(Debug, Template)]
#[template(path = "home.html")]
struct HomePage {
    locale: Locale,
    all_locales: [Locale; 2],
}

/// `GET /`.
pub async fn show(Extension(locale): Extension<Locale>) -> Result<Html<String>, HttpError> {
    let page = HomePage {
        locale,
        all_locales: super::ALL_LOCALES,
    };
    Ok(Html(crate::render::render_template(&page)?))
}
