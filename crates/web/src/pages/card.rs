//! Sharing consent by smart ID card at the counter (SPEC 3.3, 5; issue 7 item 2).
//!
//! The card reader reads the patient's card and signs the reading with its own key; the page
//! relays that signed reading to ehrshare (`POST /hcp/patients/{id}/consent/card`), which checks
//! it exactly as the API does (a reader of this provider, its signature, freshness, a nonce used
//! once) and that the card is this patient's. A real reader's bridge software fills the same
//! form fields; in the demo, [`demo_read`] stands in for the hardware with the demo reader's key
//! ([`ehrshare_app::demo_reader`]). Where the provider has no demo reader the page says so and
//! offers nothing to sign.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, Response};
use axum::{Extension, Form};
use ehrshare_app::demo_reader::SignedReading;
use ehrshare_app::{App, AppError};
use serde::Deserialize;
use uuid::Uuid;

use super::hcp::{PortalUser, form_again, problems, see_other};
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};

#[derive(Template)]
#[template(path = "hcp_card.html")]
struct CardPage {
    locale: Locale,
    /// Whether a new consent has a kind to choose (the 2016 rules; not under 2025).
    consent_typed: bool,
    all_locales: [Locale; 2],
    csrf_token: String,
    id: Uuid,
    name_en: String,
    name_zh: Option<String>,
    /// Whether the provider has the demo reader to read with.
    demo: bool,
    /// The card number typed into the demo reader (kept after a refusal).
    hkid: String,
    /// The signed reading to relay, once the card is read.
    reading: Option<Reading>,
    problems: Vec<String>,
}

/// A signed reading as the page's hidden fields carry it.
struct Reading {
    reader: Uuid,
    hkid: String,
    /// The card number as printed on the card, for the clerk to compare.
    shown: String,
    card_serial: String,
    time: String,
    /// When it was read, in Hong Kong time.
    shown_time: String,
    nonce: String,
    signature: String,
}

impl Reading {
    fn of(r: SignedReading) -> Result<Reading, AppError> {
        let a = r.assertion;
        let time =
            a.at.format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| AppError::Internal(Box::new(e)))?;
        let shown = ehrshare_core::identity::Hkid::parse(&a.hkid)
            .map(|h| h.display())
            .unwrap_or_else(|_| a.hkid.clone());
        Ok(Reading {
            reader: a.reader,
            hkid: a.hkid,
            shown,
            card_serial: a.card_serial,
            time,
            shown_time: super::hk_time(a.at),
            nonce: a.nonce,
            signature: r.signature,
        })
    }
}

async fn card_page(
    app: &App,
    locale: Locale,
    user: &PortalUser,
    id: Uuid,
    hkid: String,
    reading: Option<Reading>,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let found = app
        .recipient_at_counter(&user.session, &user.caller, id)
        .await?;
    let page = CardPage {
        locale,
        consent_typed: app.settings().regime.consents_are_typed(),
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        id,
        name_en: found.name_en,
        name_zh: found.name_zh,
        demo: app.has_demo_reader(&user.session).await?,
        hkid,
        reading,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /hcp/patients/{id}/card`: asks for the patient's card.
pub async fn show(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
) -> Result<Html<String>, HttpError> {
    card_page(&app, locale, &user, id, String::new(), None, Vec::new()).await
}

/// The card the demo reader is to read.
#[derive(Debug, Deserialize)]
pub struct DemoReadForm {
    #[serde(default)]
    hkid: String,
}

/// `POST /hcp/patients/{id}/card/read`: the demo reader reads the card numbered as typed and
/// signs the reading (404 where the provider has no demo reader).
pub async fn demo_read(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<DemoReadForm>,
) -> Result<Response, HttpError> {
    match app.demo_card_read(&user.session, &form.hkid).await {
        Ok(r) => {
            let reading = Reading::of(r)?;
            let page = card_page(
                &app,
                locale,
                &user,
                id,
                form.hkid,
                Some(reading),
                Vec::new(),
            )
            .await?;
            Ok(axum::response::IntoResponse::into_response(page))
        }
        Err(e @ AppError::Invalid { .. }) => {
            let page = card_page(
                &app,
                locale,
                &user,
                id,
                form.hkid,
                None,
                problems(locale, &e),
            )
            .await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// A signed reading relayed by the page, with the kind of consent.
#[derive(Debug, Deserialize)]
pub struct CardConsentForm {
    reader: Uuid,
    #[serde(default)]
    hkid: String,
    #[serde(default)]
    card_serial: String,
    #[serde(default)]
    time: String,
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    signature: String,
    #[serde(default)]
    kind: Option<String>,
}

/// `POST /hcp/patients/{id}/consent/card`: records the consent the signed reading of the
/// patient's card gives; any refusal (another person's card, a replayed or stale reading, an
/// unknown reader, a bad signature) says so on the card page and stores nothing.
pub async fn give_consent(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<CardConsentForm>,
) -> Result<Response, HttpError> {
    let assertion = crate::api::consents::card_assertion(
        form.reader,
        &form.hkid,
        form.card_serial,
        &form.time,
        form.nonce,
    );
    let result = match assertion {
        Ok(a) => {
            app.give_consent_by_card(
                &user.session,
                &user.caller,
                a,
                &form.signature,
                form.kind.as_deref().filter(|k| !k.is_empty()),
                Some(id),
            )
            .await
        }
        Err(HttpError(e)) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(super::patients::patient_page(
            id,
            Some("consent"),
        ))),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            let page = card_page(
                &app,
                locale,
                &user,
                id,
                String::new(),
                None,
                problems(locale, &e),
            )
            .await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}
