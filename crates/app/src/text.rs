//! Message catalogues in zh-HK and en (Fluent), for portal strings and notification texts.
//!
//! Sources are compiled into the binary; a catalogue built from them keeps what parses (tests
//! keep the files error-free and both languages alike).

use std::collections::HashMap;

use ehrshare_core::locale::Locale;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// One catalogue: the same message ids in every language.
pub struct Catalog {
    en: FluentBundle<FluentResource>,
    zh_hk: FluentBundle<FluentResource>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// A catalogue from the English and Chinese Fluent sources.
    pub fn new(en: &str, zh_hk: &str) -> Catalog {
        Catalog {
            en: bundle(Locale::En, en),
            zh_hk: bundle(Locale::ZhHk, zh_hk),
        }
    }

    fn bundle(&self, locale: Locale) -> &FluentBundle<FluentResource> {
        match locale {
            Locale::En => &self.en,
            Locale::ZhHk => &self.zh_hk,
        }
    }

    /// Whether message `id` exists in `locale`.
    pub fn has(&self, locale: Locale, id: &str) -> bool {
        self.bundle(locale).has_message(id)
    }

    /// Message `id` in `locale` with `args`; `None` if there is no such message.
    pub fn format(
        &self,
        locale: Locale,
        id: &str,
        args: &HashMap<String, String>,
    ) -> Option<String> {
        let bundle = self.bundle(locale);
        let pattern = bundle.get_message(id)?.value()?;
        let mut fluent_args = FluentArgs::new();
        for (k, v) in args {
            fluent_args.set(k.clone(), FluentValue::from(v.clone()));
        }
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
        if !errors.is_empty() {
            // A missing variable: the message would show a hole. Refuse it.
            return None;
        }
        Some(text.into_owned())
    }
}

fn bundle(locale: Locale, source: &str) -> FluentBundle<FluentResource> {
    let resource = FluentResource::try_new(source.to_owned()).unwrap_or_else(|(res, _)| res);
    let langid = locale
        .tag()
        .parse::<unic_langid::LanguageIdentifier>()
        .unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![langid]);
    // No Unicode isolation marks: texts go into HTML, SMS and e-mail, where they show as noise.
    bundle.set_use_isolating(false);
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!(?errors, locale = locale.tag(), "duplicate messages");
    }
    bundle
}

/// The message ids a Fluent source defines, sorted (for parity tests and tooling).
pub fn message_ids(source: &str) -> Vec<String> {
    let mut ids: Vec<String> = source
        .lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .filter_map(|l| l.split_once('=').map(|(id, _)| id.trim().to_owned()))
        .collect();
    ids.sort();
    ids
}

/// Checks that two sources parse cleanly and define the same ids (used by tests).
pub fn check_parity(en: &str, zh_hk: &str) -> Result<(), String> {
    for (name, source) in [("en", en), ("zh-HK", zh_hk)] {
        if let Err((_, errors)) = FluentResource::try_new(source.to_owned()) {
            return Err(format!("{name} does not parse: {errors:?}"));
        }
    }
    let (a, b) = (message_ids(en), message_ids(zh_hk));
    if a.is_empty() {
        return Err("no messages".to_owned());
    }
    if a != b {
        return Err(format!("message ids differ: en {a:?} zh-HK {b:?}"));
    }
    Ok(())
}
