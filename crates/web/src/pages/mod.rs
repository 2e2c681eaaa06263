//! Server-rendered pages (askama templates, Fluent strings in zh-HK and en).

pub mod activity;
pub mod card;
pub mod deposit;
pub mod error;
pub mod hcp;
pub mod home;
pub mod info;
pub mod locations;
pub mod me;
pub mod patients;
pub mod users;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;

use crate::i18n::Locale;

/// The languages offered by the switcher on every page.
pub const ALL_LOCALES: [Locale; 2] = Locale::ALL;

/// Hong Kong time, to the minute (what the users read their day in).
pub(crate) fn hk_time(at: time::OffsetDateTime) -> String {
    let t = ehrshare_core::clock::in_hong_kong(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `GET /static/scan.js`: the patient portal's QR scanner (the page works without it).
pub async fn scan_script() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/scan.js"),
    )
}

/// `GET /static/site.css`: the one stylesheet, compiled in.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/site.css"),
    )
}
