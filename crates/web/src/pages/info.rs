//! Statements every portal links to: the personal information collection statement (`/pics`)
//! and the privacy policy (`/privacy`), in both languages.

use askama::Template;
use axum::Extension;
use axum::response::Html;

use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};

#[derive(Template)]
#[template(path = "info.html")]
struct InfoPage {
    locale: Locale,
    all_locales: [Locale; 2],
    title: &'static str,
    paragraphs: &'static [&'static str],
}

fn render(
    locale: Locale,
    title: &'static str,
    paragraphs: &'static [&'static str],
) -> Result<Html<String>, HttpError> {
    let page = InfoPage {
        locale,
        all_locales: super::ALL_LOCALES,
        title,
        paragraphs,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /pics`: the personal information collection statement.
pub async fn collection_statement(
    Extension(locale): Extension<Locale>,
) -> Result<Html<String>, HttpError> {
    render(
        locale,
        "pics-title",
        &["pics-1", "pics-2", "pics-3", "pics-4", "pics-5", "pics-6"],
    )
}

/// `GET /privacy`: the privacy policy statement.
pub async fn privacy_policy(
    Extension(locale): Extension<Locale>,
) -> Result<Html<String>, HttpError> {
    render(
        locale,
        "privacy-title",
        &[
            "privacy-1",
            "privacy-2",
            "privacy-3",
            "privacy-4",
            "privacy-5",
            "privacy-6",
        ],
    )
}
