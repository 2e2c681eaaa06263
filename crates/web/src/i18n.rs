//! Portal languages: Traditional Chinese (Hong Kong) and English, with Fluent message files.
//!
//! The language is chosen per request: `?lang=` (which is then remembered in a cookie), else the
//! `lang` cookie, else the browser's Accept-Language, else English. Message files are compiled
//! into the binary; a test asserts that both define the same message ids.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Request;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use ehrshare_app::text::Catalog;
pub use ehrshare_core::locale::Locale;

/// The cookie that remembers the chosen language.
pub const LANG_COOKIE: &str = "lang";

/// Portal behaviour of a [`Locale`]: negotiation and message lookup.
pub trait PortalLocale: Sized {
    /// The first supported language of an Accept-Language header, honouring q-values.
    fn from_accept_language(header: &str) -> Option<Self>;
    /// The language for a request: explicit choice, remembered choice, browser, default.
    fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Self;
    /// Whether portal message `id` exists.
    fn has(self, id: &str) -> bool;
    /// Portal message `id` in this language; an unknown id is returned as itself (a test
    /// keeps that from reaching users).
    fn t(self, id: &str) -> String;
    /// Portal message `id` with named arguments (`{ $name }` in the message).
    fn t_with(self, id: &str, args: &[(&str, String)]) -> String;
}

impl PortalLocale for Locale {
    fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(f32, Locale)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("");
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(locale) = Locale::parse(tag)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, locale));
            }
        }
        best.map(|(_, l)| l)
    }

    fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Locale {
        if let Some(l) = query.and_then(lang_from_query) {
            return l;
        }
        if let Some(l) = cookie(headers, LANG_COOKIE).and_then(|v| Locale::parse(&v)) {
            return l;
        }
        headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(<Locale as PortalLocale>::from_accept_language)
            .unwrap_or_default()
    }

    fn has(self, id: &str) -> bool {
        MESSAGES.has(self, id)
    }

    fn t(self, id: &str) -> String {
        self.t_with(id, &[])
    }

    fn t_with(self, id: &str, args: &[(&str, String)]) -> String {
        let args: HashMap<String, String> = args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        MESSAGES.format(self, id, &args).unwrap_or_else(|| {
            tracing::warn!(id, locale = self.tag(), "missing message");
            id.to_owned()
        })
    }
}

/// `lang` from a query string, if present and supported.
fn lang_from_query(query: &str) -> Option<Locale> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| Locale::parse(v))
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The message files, compiled in.
pub const SOURCES: [(Locale, &str); 2] = [
    (Locale::En, include_str!("../locales/en/main.ftl")),
    (Locale::ZhHk, include_str!("../locales/zh-HK/main.ftl")),
];

static MESSAGES: LazyLock<Catalog> = LazyLock::new(|| Catalog::new(SOURCES[0].1, SOURCES[1].1));

/// Middleware: works out the request's language, puts it in the request's extensions, and
/// remembers an explicit `?lang=` choice in a cookie.
pub async fn negotiate(mut request: Request, next: Next) -> Response {
    let chosen = request.uri().query().and_then(lang_from_query);
    let locale = Locale::negotiate(request.uri().query(), request.headers());
    request.extensions_mut().insert(locale);
    let mut response = next.run(request).await;
    if let Some(chosen) = chosen {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            chosen.tag()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

pub use ehrshare_app::text::message_ids;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_define_the_same_messages_and_parse_cleanly() {
        ehrshare_app::text::check_parity(SOURCES[0].1, SOURCES[1].1).unwrap();
    }

    #[test]
    fn every_message_translates_to_something_other_than_its_id() {
        // The variables a message uses (`{ $name }`), in either language, given a value.
        let variables = |id: &str| -> Vec<(String, String)> {
            let mut vars = Vec::new();
            for (_, source) in SOURCES {
                let mut inside = false;
                for line in source.lines() {
                    if line.starts_with(&format!("{id} =")) {
                        inside = true;
                    } else if !line.starts_with(' ') {
                        inside = false;
                    }
                    if inside {
                        for part in line.split('$').skip(1) {
                            let name: String = part
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                                .collect();
                            vars.push((name, "1".to_owned()));
                        }
                    }
                }
            }
            vars
        };
        for locale in Locale::ALL {
            for id in message_ids(SOURCES[0].1) {
                let vars = variables(&id);
                let args: Vec<(&str, String)> =
                    vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                let text = locale.t_with(&id, &args);
                assert_ne!(text, id, "{id} missing in {}", locale.tag());
                assert!(!text.trim().is_empty());
            }
        }
        assert_ne!(Locale::En.t("home-title"), Locale::ZhHk.t("home-title"));
    }

    #[test]
    fn accept_language_honours_quality() {
        let check = |h: &str, expected: Option<Locale>| {
            assert_eq!(Locale::from_accept_language(h), expected, "{h}")
        };
        check("zh-HK,zh;q=0.9,en;q=0.8", Some(Locale::ZhHk));
        check("en;q=0.5, zh-TW;q=0.9", Some(Locale::ZhHk));
        check("fr-FR, en-US;q=0.7", Some(Locale::En));
        check("fr", None);
        check("zh;q=0", None);
    }

    #[test]
    fn explicit_choice_beats_cookie_beats_browser() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("zh-HK"));
        assert_eq!(Locale::negotiate(None, &headers), Locale::ZhHk);
        headers.insert(COOKIE, HeaderValue::from_static("a=b; lang=en"));
        assert_eq!(Locale::negotiate(None, &headers), Locale::En);
        assert_eq!(
            Locale::negotiate(Some("x=1&lang=zh-HK"), &headers),
            Locale::ZhHk
        );
        assert_eq!(Locale::negotiate(Some("lang=xx"), &headers), Locale::En);
        assert_eq!(Locale::negotiate(None, &HeaderMap::new()), Locale::En);
    }
}
