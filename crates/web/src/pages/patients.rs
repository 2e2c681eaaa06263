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

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use ehrshare_app::consent::ConsentInput;
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

#[derive(Template)]
#[template(path = "hcp_patient.html")]
struct PatientPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    id: Uuid,
    name_en: String,
    name_zh: Option<String>,
    date_of_birth: String,
    /// The consent in force with the user's provider, in words.
    consent: Option<String>,
    /// Open care episodes here: (id, kind in words, since).
    episodes: Vec<(Uuid, String, String)>,
    /// The deposit forms of the domains the user's role may write: (address, title).
    deposits: Vec<(String, String)>,
    /// Whether the role may write Chinese medicine prescriptions.
    cm_prescription: bool,
    done: Option<String>,
    problems: Vec<String>,
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

async fn patient(
    app: &App,
    locale: Locale,
    user: &PortalUser,
    id: Uuid,
    done: Option<&str>,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let found = app
        .recipient_at_counter(&user.session, &user.caller, id)
        .await?;
    let care = app.care_here(&user.session, id).await?;
    let consent = care.consent.map(|c| {
        let kind = locale.t(&format!("consent-kind-{}", c.kind));
        let since = c.given_at.date().to_string();
        locale.t_with(
            "hcp-patient-consent-in-force",
            &[("kind", kind), ("since", since)],
        )
    });
    let episodes = care
        .open_episodes
        .into_iter()
        .map(|e| {
            (
                e.id,
                locale.t(&format!("episode-{}", e.kind)),
                e.start_at.date().to_string(),
            )
        })
        .collect();
    // Only the forms of the role's domains are offered, by the decision's own need-to-know
    // rule; the deposit itself is decided when sent.
    let offered: Vec<Domain> = DEPOSIT_FORMS.iter().map(|(d, _, _)| *d).collect();
    let writable = user
        .session
        .account()
        .and_then(|a| ehrshare_core::profession::Role::parse(&a.role))
        .map(|role| {
            let ask = ehrshare_core::access::Ask {
                action: ehrshare_core::access::Action::Deposit,
                domains: &offered,
                record: None,
                reason: None,
            };
            ehrshare_core::access::need_to_know(role, &ask, &app.settings().access_profiles)
        })
        .unwrap_or_default();
    let deposits = DEPOSIT_FORMS
        .iter()
        .filter(|(d, _, _)| writable.contains(d))
        .map(|(_, path, title)| (format!("/hcp/patients/{id}/{path}"), locale.t(title)))
        .collect();
    let page = PatientPage {
        locale,
        deposits,
        cm_prescription: writable.contains(&Domain::CmPrescription),
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        id,
        name_en: found.name_en,
        name_zh: found.name_zh,
        date_of_birth: found.date_of_birth,
        consent,
        episodes,
        done: done
            .filter(|d| DONE.contains(d))
            .map(|d| locale.t(&format!("hcp-patient-done-{d}"))),
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `?done=` after a form.
#[derive(Debug, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /hcp/patients/{id}`: the patient's page at the counter (audited as a look-up).
pub async fn show(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Query(q): Query<Done>,
) -> Result<Html<String>, HttpError> {
    patient(&app, locale, &user, id, q.done.as_deref(), Vec::new()).await
}

/// The consent form: by the access key the patient tells, or a signed paper form's
/// reference (`method` = `form`).
#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    method: String,
    #[serde(default)]
    access_key: String,
    #[serde(default)]
    form_ref: String,
    #[serde(default)]
    kind: Option<String>,
}

impl std::fmt::Debug for ConsentForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentForm")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// `POST /hcp/patients/{id}/consent`: records the sharing consent by access key or paper form.
pub async fn give_consent(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<ConsentForm>,
) -> Result<Response, HttpError> {
    let input = if form.method == "form" {
        ConsentInput {
            method: "form".to_owned(),
            access_key: None,
            form_ref: Some(form.form_ref.trim().to_owned()),
            kind: form.kind.filter(|k| !k.is_empty()),
        }
    } else {
        ConsentInput {
            method: "access-key".to_owned(),
            access_key: Some(form.access_key.trim().to_owned()),
            form_ref: None,
            kind: form.kind.filter(|k| !k.is_empty()),
        }
    };
    match app
        .give_consent(&user.session, &user.caller, id, input)
        .await
    {
        Ok(_) => Ok(see_other(patient_page(id, Some("consent")))),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            let page = patient(&app, locale, &user, id, None, problems(locale, &e)).await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// The care episode form.
#[derive(Debug, Deserialize)]
pub struct EpisodeForm {
    #[serde(default)]
    kind: String,
}

/// `POST /hcp/patients/{id}/episode`: opens a care episode at the user's provider.
pub async fn open_episode(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<EpisodeForm>,
) -> Result<Response, HttpError> {
    match app
        .open_episode(&user.session, &user.caller, id, form.kind.trim(), None)
        .await
    {
        Ok(_) => Ok(see_other(patient_page(id, Some("episode")))),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            let page = patient(&app, locale, &user, id, None, problems(locale, &e)).await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// One record as listed.
struct RecordLine {
    id: Uuid,
    headline: String,
    date: String,
}

/// One domain as listed.
struct DomainBlock {
    code: &'static str,
    name: String,
    /// For demographics: the registration's own facts (label, value).
    facts: Vec<(String, String)>,
    records: Vec<RecordLine>,
}

#[derive(Template)]
#[template(path = "hcp_record.html")]
struct RecordPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    id: Uuid,
    name: String,
    domains: Vec<DomainBlock>,
    /// How many records the user may see, in words.
    total: String,
    /// Why the record cannot be read (the decision's reason, in the page's language).
    refused: Option<String>,
}

/// `GET /hcp/patients/{id}/record`: the eHR summary by domain (audited, through the access
/// decision; a refusal is shown with its reason).
pub async fn record(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    let found = app
        .recipient_at_counter(&user.session, &user.caller, id)
        .await?;
    let name = match (locale, &found.name_zh) {
        (Locale::ZhHk, Some(zh)) => format!("{zh} {}", found.name_en),
        _ => found.name_en.clone(),
    };
    let page = |domains, total: usize, refused| RecordPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        id,
        name: name.clone(),
        domains,
        total: locale.t_with("hcp-record-total", &[("count", total.to_string())]),
        refused,
    };
    match app
        .summary(&user.session, &user.caller, id, &[], None)
        .await
    {
        Ok(summary) => {
            let domains = summary
                .domains
                .into_iter()
                .map(|(d, rows)| DomainBlock {
                    code: d.code(),
                    name: domain_name(locale, d),
                    // The registration is the demographics' first record.
                    facts: if d == Domain::Demographics {
                        vec![
                            (locale.t("record-name-en"), found.name_en.clone()),
                            (
                                locale.t("record-name-zh"),
                                found.name_zh.clone().unwrap_or_default(),
                            ),
                            (locale.t("hcp-patient-dob"), found.date_of_birth.clone()),
                        ]
                    } else {
                        Vec::new()
                    },
                    records: rows
                        .into_iter()
                        .map(|r| RecordLine {
                            id: r.id,
                            headline: serde_json::from_str(&r.body)
                                .map(|v| ehrshare_fhir::headline::headline(&v))
                                .unwrap_or_default(),
                            date: r.created_at.date().to_string(),
                        })
                        .collect(),
                })
                .collect();
            let html = crate::render::render_template(&page(domains, summary.total, None))?;
            Ok(Html(html).into_response())
        }
        Err(AppError::Forbidden { code, .. }) => {
            let id = format!("problem-{code}");
            let reason = if locale.has(&id) {
                locale.t(&id)
            } else {
                locale.t("problem-generic")
            };
            let html = crate::render::render_template(&page(Vec::new(), 0, Some(reason)))?;
            Ok(form_again(StatusCode::FORBIDDEN, Html(html)))
        }
        Err(e) => Err(HttpError(e)),
    }
}

fn domain_name(locale: Locale, d: Domain) -> String {
    match locale {
        Locale::ZhHk => d.name_zh().to_owned(),
        Locale::En => d.name_en().to_owned(),
    }
}

#[derive(Template)]
#[template(path = "hcp_unlock.html")]
struct UnlockPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    id: Uuid,
    /// The request waiting for the patient's code, once asked.
    challenge: Option<Uuid>,
    reason: String,
    problems: Vec<String>,
}

fn unlock_page(
    locale: Locale,
    user: &PortalUser,
    id: Uuid,
    challenge: Option<Uuid>,
    reason: String,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let page = UnlockPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        id,
        challenge,
        reason,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// The reason for an unlock.
#[derive(Debug, Deserialize)]
pub struct UnlockForm {
    #[serde(default)]
    reason: String,
}

/// `POST /hcp/patients/{id}/unlock`: states a reason; a one-time password goes to the patient
/// (the answer is the same whether or not anything is restricted).
pub async fn request_unlock(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<UnlockForm>,
) -> Result<Response, HttpError> {
    match app
        .request_unlock(&user.session, &user.caller, id, &form.reason)
        .await
    {
        Ok(challenge) => Ok(unlock_page(
            locale,
            &user,
            id,
            Some(challenge),
            form.reason.trim().to_owned(),
            Vec::new(),
        )?
        .into_response()),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            let page = unlock_page(locale, &user, id, None, form.reason, problems(locale, &e))?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// The patient's one-time password.
#[derive(Debug, Deserialize)]
pub struct UnlockCodeForm {
    challenge: Uuid,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: String,
}

/// `POST /hcp/patients/{id}/unlock/confirm`: the patient's code unlocks the restricted items
/// for this provider's care episode (four hours); then the summary.
pub async fn confirm_unlock(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<UnlockCodeForm>,
) -> Result<Response, HttpError> {
    match app
        .confirm_unlock(&user.session, &user.caller, id, form.challenge, &form.code)
        .await
    {
        Ok(()) => Ok(see_other(format!("/hcp/patients/{id}/record"))),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            let page = unlock_page(
                locale,
                &user,
                id,
                Some(form.challenge),
                form.reason,
                problems(locale, &e),
            )?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// `POST /hcp/patients/{id}/episodes/{episode}/close`: closes a care episode of the user's
/// provider (the after-care window then runs from now).
pub async fn close_episode(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path((id, episode)): Path<(Uuid, Uuid)>,
) -> Result<Response, HttpError> {
    match app
        .close_episode(&user.session, &user.caller, id, episode)
        .await
    {
        Ok(()) => Ok(see_other(patient_page(id, Some("closed")))),
        Err(
            e @ (AppError::Invalid { .. } | AppError::Forbidden { .. } | AppError::Conflict { .. }),
        ) => {
            let page = patient(&app, locale, &user, id, None, problems(locale, &e)).await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

#[derive(Template)]
#[template(path = "hcp_record_detail.html")]
struct RecordDetailPage {
    locale: Locale,
    all_locales: [Locale; 2],
    id: Uuid,
    domain: String,
    headline: String,
    resource_type: String,
    version: i64,
    deposited: String,
    updated: String,
    /// The stored resource, indented for reading (escaped by the template).
    json: String,
}

/// `GET /hcp/patients/{id}/records/{record}`: one record (audited, through the access
/// decision; anything the user may not see is 404, whatever the reason).
pub async fn record_detail(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path((_, record)): Path<(Uuid, Uuid)>,
) -> Result<Html<String>, HttpError> {
    let r = app
        .read_record(&user.session, &user.caller, record, None)
        .await
        .map_err(|e| match e {
            AppError::Forbidden { .. } => HttpError(AppError::NotFound),
            e => HttpError(e),
        })?;
    // The record names its recipient; the path's id only makes the address readable.
    let id = r.recipient_id;
    let value: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    let page = RecordDetailPage {
        locale,
        all_locales: super::ALL_LOCALES,
        id,
        domain: Domain::parse(&r.domain)
            .map(|d| domain_name(locale, d))
            .unwrap_or_else(|| r.domain.clone()),
        headline: ehrshare_fhir::headline::headline(&value),
        resource_type: r.resource_type,
        version: r.version,
        deposited: r.created_at.date().to_string(),
        updated: r.updated_at.date().to_string(),
        json: serde_json::to_string_pretty(&value).unwrap_or(r.body),
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// The registration form as typed (kept after a refusal).
#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    name_zh: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    language: String,
}

#[derive(Template)]
#[template(path = "hcp_register.html")]
struct RegisterPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    typed: RegisterForm,
    problems: Vec<String>,
}

impl RegisterPage {
    fn types(&self) -> &'static [&'static str] {
        &DOCUMENT_TYPES
    }
}

fn register_page(
    locale: Locale,
    user: &PortalUser,
    typed: RegisterForm,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let page = RegisterPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        typed,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /hcp/patients/register`: register a person who is not yet in the system.
pub async fn register_form(
    Extension(locale): Extension<Locale>,
    user: PortalUser,
) -> Result<Html<String>, HttpError> {
    let typed = RegisterForm {
        kind: "hkid".to_owned(),
        sex: "female".to_owned(),
        language: "zh-HK".to_owned(),
        ..RegisterForm::default()
    };
    register_page(locale, &user, typed, Vec::new())
}

/// `POST /hcp/patients/register`: registers them (identity seen at the counter) and opens
/// their page; the access key is sent to them.
pub async fn register(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Form(form): Form<RegisterForm>,
) -> Result<Response, HttpError> {
    let blank = |s: &str| Some(s.trim().to_owned()).filter(|v| !v.is_empty());
    let input = ehrshare_app::recipient::RegistrationInput {
        channel: "hcp".to_owned(),
        name_en: form.name_en.trim().to_owned(),
        name_zh: blank(&form.name_zh),
        date_of_birth: form.date_of_birth.trim().to_owned(),
        sex: form.sex.trim().to_owned(),
        capacity: None,
        document: ehrshare_app::recipient::DocumentInput {
            kind: form.kind.trim().to_owned(),
            issuer: blank(&form.issuer),
            number: form.number.trim().to_owned(),
        },
        phone: form.phone.trim().to_owned(),
        phone2: None,
        email: None,
        address: None,
        language: form.language.trim().to_owned(),
        notify_channel: "sms".to_owned(),
        refuses_access_notices: false,
        sdm: None,
    };
    match app
        .register_at_provider(&user.session, &user.caller, input)
        .await
    {
        Ok(reg) => Ok(see_other(patient_page(
            reg.recipient.id,
            Some("registered"),
        ))),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let page = register_page(locale, &user, form, problems(locale, &e))?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}
