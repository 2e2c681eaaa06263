//! Portal languages: Traditional Chinese (Hong Kong) and English, with Fluent message files.
//!
//! The language is chosen per request: `?lang=` (which is then remembered in a cookie), else the
//! `lang` cookie, else the browser's Accept-Language, else English. Message files are compiled
//! into the binary; a test asserts that both define the same message ids.

use std::sync::LazyLock;

use axum::extract::Request;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use fluent_bundle::FluentResource;
use fluent_bundle::concurrent::FluentBundle;

/// A portal language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Locale {
    #[default]
    En,
    ZhHk,
}

/// The cookie that remembers the chosen language.
pub const LANG_COOKIE: &str = "lang";

impl Locale {
    /// All portal languages.
    pub const ALL: [Locale; 2] = [Locale::ZhHk, Locale::En];

    /// BCP 47 tag, as used in `<html lang>`, the cookie and `?lang=`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhHk => "zh-HK",
        }
    }

    /// Parses a tag as people and browsers write it (`zh-HK`, `zh-hk`, `zh_Hant_HK`, `en-GB`).
    pub fn parse(tag: &str) -> Option<Locale> {
        let lower = tag.trim().to_ascii_lowercase().replace('_', "-");
        if lower == "zh" || lower.starts_with("zh-") {
            Some(Locale::ZhHk)
        } else if lower == "en" || lower.starts_with("en-") {
            Some(Locale::En)
        } else {
            None
        }
    }

    /// The first supported language of an Accept-Language header, honouring q-values.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
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

    /// The language for a request: explicit choice, remembered choice, browser, default.
    pub fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Locale {
        if let Some(l) = query.and_then(lang_from_query) {
            return l;
        }
        if let Some(l) = cookie(headers, LANG_COOKIE).and_then(|v| Locale::parse(&v)) {
            return l;
        }
        headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Locale::from_accept_language)
            .unwrap_or_default()
    }

    /// Whether message `id` exists (in this language; a test keeps both languages alike).
    pub fn has(self, id: &str) -> bool {
        self.bundle().has_message(id)
    }

    fn bundle(self) -> &'static FluentBundle<FluentResource> {
        match self {
            Locale::En => &MESSAGES.en,
            Locale::ZhHk => &MESSAGES.zh_hk,
        }
    }

    /// Looks up message `id` in this language; an unknown id is returned as itself (a test
    /// keeps that from reaching users).
    pub fn t(self, id: &str) -> String {
        let bundle = self.bundle();
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::warn!(id, locale = self.tag(), "missing message");
            return id.to_owned();
        };
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, None, &mut errors);
        text.into_owned()
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

struct Messages {
    en: FluentBundle<FluentResource>,
    zh_hk: FluentBundle<FluentResource>,
}

static MESSAGES: LazyLock<Messages> = LazyLock::new(|| Messages {
    en: bundle(Locale::En),
    zh_hk: bundle(Locale::ZhHk),
});

fn bundle(locale: Locale) -> FluentBundle<FluentResource> {
    let source = SOURCES
        .iter()
        .find(|(l, _)| *l == locale)
        .map(|(_, s)| *s)
        .unwrap_or("");
    // A parse error keeps the messages that did parse; a unit test keeps the files error-free.
    let resource = FluentResource::try_new(source.to_owned()).unwrap_or_else(|(res, _)| res);
    let langid = locale
        .tag()
        .parse::<unic_langid::LanguageIdentifier>()
        .unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![langid]);
    // No Unicode isolation marks: output goes into HTML, where they would show as noise.
    bundle.set_use_isolating(false);
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!(?errors, locale = locale.tag(), "duplicate messages");
    }
    bundle
}

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

/// The message ids a Fluent source defines (for the parity test and tooling).
pub fn message_ids(source: &str) -> Vec<String> {
    let mut ids: Vec<String> = source
        .lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .filter_map(|l| l.split_once('=').map(|(id, _)| id.trim().to_owned()))
        .collect();
    ids.sort();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_define_the_same_messages_and_parse_cleanly() {
        let en = message_ids(SOURCES[0].1);
        let zh = message_ids(SOURCES[1].1);
        assert!(!en.is_empty());
        assert_eq!(en, zh, "en and zh-HK must define the same message ids");
        for (locale, source) in SOURCES {
            let parsed = FluentResource::try_new(source.to_owned());
            assert!(
                parsed.is_ok(),
                "{} does not parse: {:?}",
                locale.tag(),
                parsed.err()
            );
        }
    }

    #[test]
    fn every_message_translates_to_something_other_than_its_id() {
        for locale in Locale::ALL {
            for id in message_ids(SOURCES[0].1) {
                let text = locale.t(&id);
                assert_ne!(text, id, "{id} missing in {}", locale.tag());
                assert!(!text.trim().is_empty());
            }
        }
        assert_ne!(Locale::En.t("home-title"), Locale::ZhHk.t("home-title"));
    }

    #[test]
    fn parses_language_tags() {
        let check =
            |tag: &str, expected: Option<Locale>| assert_eq!(Locale::parse(tag), expected, "{tag}");
        check("zh-HK", Some(Locale::ZhHk));
        check("zh_Hant_HK", Some(Locale::ZhHk));
        check("zh", Some(Locale::ZhHk));
        check("en-GB", Some(Locale::En));
        check("EN", Some(Locale::En));
        check("fr", None);
        check("", None);
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
