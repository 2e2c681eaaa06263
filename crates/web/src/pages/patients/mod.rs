//! The provider portal's patient pages (SPEC 5, issue 7): look a recipient up by identity
//! document, record their sharing consent by access key, open a care episode, and read their
//! eHR summary by domain, only what the user's role may see.
//!
//! Security-sensitive:
//! - Every look-up and every read goes through the same use cases as the JSON API (audited,
//!   the access decision in `core::access`); a page never decides anything itself.
//! - The document number travels in a form post, never in a URL (URLs end up in histories and
//!   logs); pages show recipients only by their opaque id.
//! - Everything a recipient, a provider or a record says is escaped by the templates; patient
//!   pages are `Cache-Control: no-store` (the security middleware's default).

pub mod record;
pub mod register;
pub mod show;
pub mod unlock;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, Response};
use axum::{Extension, Form};
use ehrshare_app::{App, AppError};
use ehrshare_core::domain::Domain;
use serde::Deserialize;
use uuid::Uuid;

use super::hcp::{PortalUser, form_again, problems, see_other};
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};

/// The look-up page.
pub const FIND: &str = "/hcp/patients";

pub(crate) fn patient_page(id: Uuid, done: Option<&str>) -> String {
    match done {
        Some(d) => format!("/hcp/patients/{id}?done={d}"),
        None => format!("/hcp/patients/{id}"),
    }
}

#[derive(Template)]
#[template(path = "hcp_find.html")]
struct FindPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    kind: String,
    issuer: String,
    number: String,
    problems: Vec<String>,
}

/// The document types offered, in the order a counter meets them.
pub(crate) const DOCUMENT_TYPES: [&str; 6] = [
    "hkid",
    "hk-birth-certificate",
    "passport",
    "macao-id",
    "mainland-travel-permit",
    "other",
];

impl FindPage {
    fn types(&self) -> &'static [&'static str] {
        &DOCUMENT_TYPES
    }
}

fn find_page(
    locale: Locale,
    user: &PortalUser,
    form: FindForm,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let page = FindPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        kind: form.kind,
        issuer: form.issuer,
        number: form.number,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /hcp/patients`: the look-up form.
pub async fn find_form(
    Extension(locale): Extension<Locale>,
    user: PortalUser,
) -> Result<Html<String>, HttpError> {
    let blank = FindForm {
        kind: "hkid".to_owned(),
        issuer: String::new(),
        number: String::new(),
    };
    find_page(locale, &user, blank, Vec::new())
}

/// The look-up form.
#[derive(Debug, Deserialize)]
pub struct FindForm {
    #[serde(default)]
    kind: String,
    /// The issuing country or region (ISO 3166 code), for passports and other documents.
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    number: String,
}

/// `POST /hcp/patients`: finds the recipient (audited) and opens their page.
pub async fn find(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Form(form): Form<FindForm>,
) -> Result<Response, HttpError> {
    let form = FindForm {
        kind: match form.kind.trim() {
            "" => "hkid".to_owned(),
            k => k.to_owned(),
        },
        issuer: form.issuer.trim().to_owned(),
        number: form.number,
    };
    let issuer = Some(form.issuer.as_str()).filter(|i| !i.is_empty());
    match app
        .find_recipient(
            &user.session,
            &user.caller,
            &form.kind,
            issuer,
            &form.number,
        )
        .await
    {
        Ok(found) => Ok(see_other(patient_page(found.id, None))),
        Err(e @ (AppError::Invalid { .. } | AppError::NotFound)) => {
            let message = match e {
                AppError::NotFound => vec![locale.t("problem-recipient-not-found")],
                e => problems(locale, &e),
            };
            let page = find_page(locale, &user, form, message)?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// The portal's deposit forms: (the domain each writes, its address under the patient, the
/// title's message id).
const DEPOSIT_FORMS: [(Domain, &str, &str); 6] = [
    (Domain::Allergy, "deposit/allergy", "deposit-allergy-title"),
    (
        Domain::Diagnosis,
        "deposit/diagnosis",
        "deposit-diagnosis-title",
    ),
    (
        Domain::Medication,
        "deposit/medication",
        "deposit-medication-title",
    ),
    (
        Domain::CmDiagnosis,
        "deposit/cm-diagnosis",
        "deposit-cm-diagnosis-title",
    ),
    (
        Domain::CmPrescription,
        "cm-prescription",
        "cm-prescription-title",
    ),
    (
        Domain::CmTreatment,
        "deposit/cm-treatment",
        "deposit-cm-treatment-title",
    ),
];

/// What `?done=` may say after a form succeeded.
const DONE: [&str; 4] = ["consent", "episode", "closed", "registered"];
