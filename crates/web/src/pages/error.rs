//! The bilingual error page, with the request id to quote.

use askama::Template;

use crate::i18n::{Locale, PortalLocale};

/// The error page for one problem.
#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    locale: Locale,
    all_locales: [Locale; 2],
    status: u16,
    message_id: String,
    request_id: String,
}

impl ErrorPage {
    /// The page for a problem's HTTP `status` and stable `code` in `locale`. Its message is
    /// chosen by the code.
    pub fn new(locale: Locale, status: u16, code: &str, request_id: &str) -> ErrorPage {
        let specific = format!("error-{code}");
        let message_id = if locale.has(&specific) {
            specific
        } else {
            "error-generic".to_owned()
        };
        ErrorPage {
            locale,
            all_locales: super::ALL_LOCALES,
            status,
            message_id,
            request_id: request_id.to_owned(),
        }
    }
}
