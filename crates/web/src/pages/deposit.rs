//! The provider portal's deposit forms (issue 7): a Chinese medicine prescription (herb rows
//! with grams, number of doses, decoction pieces or granules, instructions). The form becomes
//! a FHIR MedicationRequest with ehrshare's CM prescription extension and goes through the
//! same deposit use case as the API (the access decision, structural validation, synonyms
//! stored with their preferred terms, audit).
//!
//! - Herb names offer the shipped terminology (preferred terms, English names, synonyms) as
//!   a `datalist`: no script, and any name may still be typed.
//! - A form's problems are shown next to their fields in the page's language, with
//!   everything typed kept. The form carries its own source id, made when it was shown: the
//!   same form sent twice is one record.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, Response};
use axum::{Extension, Form};
use ehrshare_app::{App, AppError};
use ehrshare_core::terminology::TermKind;
use ehrshare_fhir::build;
use uuid::Uuid;

use super::hcp::{PortalUser, form_again, problems, see_other};
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};

/// Herb rows on the form (empty ones are ignored).
pub const HERB_ROWS: usize = 10;

/// One herb row as typed, with its problem.
#[derive(Debug, Clone, Default)]
struct HerbRow {
    herb: String,
    grams: String,
    problem: Option<String>,
}

/// A herb the datalist offers.
struct TermOption {
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "hcp_cm_prescription.html")]
struct PrescriptionPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    id: Uuid,
    source_id: String,
    form_kind: String,
    doses: String,
    doses_problem: Option<String>,
    instructions: String,
    rows: Vec<HerbRow>,
    herbs_problem: Option<String>,
    herbs: Vec<TermOption>,
    problems: Vec<String>,
}

impl PrescriptionPage {
    fn new(app: &App, locale: Locale, user: &PortalUser, id: Uuid) -> PrescriptionPage {
        let herbs = term_options(app, TermKind::Herb);
        PrescriptionPage {
            locale,
            all_locales: super::ALL_LOCALES,
            csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
            id,
            source_id: form_source_id(None),
            form_kind: "decoction-pieces".to_owned(),
            doses: String::new(),
            doses_problem: None,
            instructions: String::new(),
            rows: vec![HerbRow::default(); HERB_ROWS],
            herbs_problem: None,
            herbs,
            problems: Vec::new(),
        }
    }
}

/// The shipped terms of a kind as `datalist` options: the preferred term, labelled with its
/// English name and synonyms.
fn term_options(app: &App, kind: TermKind) -> Vec<TermOption> {
    app.settings()
        .terminology
        .of_kind(kind)
        .map(|t| TermOption {
            value: t.preferred.clone(),
            label: std::iter::once(t.english.clone())
                .chain(t.synonyms.iter().cloned())
                .collect::<Vec<_>>()
                .join(" · "),
        })
        .collect()
}

/// A form's source id: the one it was shown with (sent back), else a fresh one. Only ids the
/// portal makes are taken back, so a form cannot claim another system's source id.
fn form_source_id(sent: Option<&String>) -> String {
    sent.map(|s| s.trim())
        .filter(|s| s.starts_with("portal-") && s.len() <= 64)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("portal-{}", Uuid::now_v7()))
}

/// `GET /hcp/patients/{id}/cm-prescription`: the form.
pub async fn prescription_form(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
) -> Result<Html<String>, HttpError> {
    let page = PrescriptionPage::new(&app, locale, &user, id);
    Ok(Html(crate::render::render_template(&page)?))
}

/// A positive amount in grams as typed (digits, a decimal point, up to two places, at most
/// 1000), kept as typed: `15` stays `15`, not `15.0`.
fn grams(text: &str) -> Option<serde_json::Number> {
    let t = text.trim();
    let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let ok = !whole.is_empty()
        && digits(whole)
        && digits(fraction)
        && fraction.len() <= 2
        && !(t.contains('.') && fraction.is_empty());
    let value: f64 = t.parse().ok()?;
    if !ok || value <= 0.0 || value > 1000.0 {
        return None;
    }
    t.parse().ok()
}

/// `POST /hcp/patients/{id}/cm-prescription`: checks the form, deposits the prescription and
/// shows the summary; or the form again with its problems and everything typed.
pub async fn deposit_prescription(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, HttpError> {
    let field = |name: &str| {
        form.get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mut page = PrescriptionPage::new(&app, locale, &user, id);
    page.source_id = form_source_id(form.get("source_id"));
    page.form_kind = match field("form").as_str() {
        "granules" => "granules".to_owned(),
        _ => "decoction-pieces".to_owned(),
    };
    page.doses = field("doses");
    page.instructions = field("instructions");
    let mut invalid = false;
    let doses = page
        .doses
        .parse::<u32>()
        .ok()
        .filter(|d| (1..=100).contains(d));
    if doses.is_none() {
        page.doses_problem = Some(locale.t("cm-problem-doses"));
        invalid = true;
    }
    let mut items = Vec::new();
    for (i, row) in page.rows.iter_mut().enumerate() {
        row.herb = field(&format!("herb_{i}"));
        row.grams = field(&format!("grams_{i}"));
        match (row.herb.is_empty(), row.grams.is_empty()) {
            (true, true) => continue,
            (true, false) => row.problem = Some(locale.t("cm-problem-herb")),
            (false, _) => match grams(&row.grams) {
                Some(grams) => items.push(build::Herb {
                    name: row.herb.clone(),
                    grams,
                }),
                None => row.problem = Some(locale.t("cm-problem-grams")),
            },
        }
        invalid |= row.problem.is_some();
    }
    if items.is_empty() && !invalid {
        page.herbs_problem = Some(locale.t("cm-problem-no-herbs"));
        invalid = true;
    }
    if page.instructions.chars().count() > 1000 {
        page.problems.push(locale.t("cm-problem-instructions"));
        invalid = true;
    }
    if invalid {
        return Ok(form_again(
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(crate::render::render_template(&page)?),
        ));
    }
    let resource = build::cm_prescription(
        &page.source_id,
        id,
        &page.form_kind,
        doses.unwrap_or(1),
        &items,
        &page.instructions,
    );
    match app
        .deposit(&user.session, &user.caller, id, &resource)
        .await
    {
        Ok(_) => Ok(see_other(format!("/hcp/patients/{id}/record"))),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            page.problems = problems(locale, &e);
            Ok(form_again(
                StatusCode::UNPROCESSABLE_ENTITY,
                Html(crate::render::render_template(&page)?),
            ))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// The other deposit forms: one or two named things and a note, each kind its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Allergy,
    Diagnosis,
    Medication,
    CmDiagnosis,
    CmTreatment,
}

impl Kind {
    fn parse(code: &str) -> Option<Kind> {
        Some(match code {
            "allergy" => Kind::Allergy,
            "diagnosis" => Kind::Diagnosis,
            "medication" => Kind::Medication,
            "cm-diagnosis" => Kind::CmDiagnosis,
            "cm-treatment" => Kind::CmTreatment,
            _ => return None,
        })
    }

    /// The form's fields: (name, whether required, the terms its datalist offers).
    fn fields(self) -> &'static [(&'static str, bool, Option<TermKind>)] {
        match self {
            Kind::Allergy => &[("substance", true, None), ("reaction", false, None)],
            Kind::Diagnosis => &[("condition", true, None), ("note", false, None)],
            Kind::Medication => &[("medicine", true, None), ("dosage", false, None)],
            Kind::CmDiagnosis => &[
                ("disease", true, Some(TermKind::Disease)),
                ("syndrome", true, Some(TermKind::Syndrome)),
            ],
            Kind::CmTreatment => &[
                ("treatment", true, None),
                ("acupoints", false, Some(TermKind::Acupoint)),
            ],
        }
    }

    fn code(self) -> &'static str {
        match self {
            Kind::Allergy => "allergy",
            Kind::Diagnosis => "diagnosis",
            Kind::Medication => "medication",
            Kind::CmDiagnosis => "cm-diagnosis",
            Kind::CmTreatment => "cm-treatment",
        }
    }

    /// The FHIR resource for what was typed (already checked present where required).
    fn resource(
        self,
        source_id: &str,
        recipient: Uuid,
        v: &HashMap<&str, String>,
    ) -> serde_json::Value {
        let text = |k: &str| v.get(k).map(String::as_str).unwrap_or_default();
        match self {
            Kind::Allergy => {
                build::allergy(source_id, recipient, text("substance"), text("reaction"))
            }
            Kind::Diagnosis => {
                build::condition(source_id, recipient, text("condition"), text("note"))
            }
            Kind::Medication => {
                build::medication_statement(source_id, recipient, text("medicine"), text("dosage"))
            }
            Kind::CmDiagnosis => {
                build::cm_diagnosis(source_id, recipient, text("disease"), text("syndrome"))
            }
            Kind::CmTreatment => {
                let points: Vec<&str> = text("acupoints")
                    .split([',', '，', '、', ';'])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .collect();
                build::cm_treatment(source_id, recipient, text("treatment"), &points)
            }
        }
    }
}

/// One field as shown.
struct FieldView {
    name: &'static str,
    label: String,
    value: String,
    required: bool,
    list: Option<&'static str>,
    problem: Option<String>,
}

/// A datalist of terms.
struct TermList {
    id: &'static str,
    options: Vec<TermOption>,
}

#[derive(Template)]
#[template(path = "hcp_deposit.html")]
struct DepositPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    id: Uuid,
    kind: &'static str,
    title: String,
    source_id: String,
    fields: Vec<FieldView>,
    treatments: bool,
    lists: Vec<TermList>,
    problems: Vec<String>,
}

fn list_id(kind: TermKind) -> &'static str {
    match kind {
        TermKind::Herb => "cm-herbs",
        TermKind::Disease => "cm-diseases",
        TermKind::Syndrome => "cm-syndromes",
        TermKind::Acupoint => "cm-acupoints",
    }
}

fn deposit_page(
    app: &App,
    locale: Locale,
    user: &PortalUser,
    id: Uuid,
    kind: Kind,
    typed: &HashMap<String, String>,
) -> DepositPage {
    let fields = kind
        .fields()
        .iter()
        .map(|(name, required, terms)| FieldView {
            name,
            label: locale.t(&format!("deposit-{}-{name}", kind.code())),
            value: typed.get(*name).cloned().unwrap_or_default(),
            required: *required,
            list: terms.map(list_id),
            problem: None,
        })
        .collect();
    let lists = kind
        .fields()
        .iter()
        .filter_map(|(_, _, t)| *t)
        .map(|t| TermList {
            id: list_id(t),
            options: term_options(app, t),
        })
        .collect();
    let source_id = form_source_id(typed.get("source_id"));
    DepositPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        id,
        kind: kind.code(),
        title: locale.t(&format!("deposit-{}-title", kind.code())),
        source_id,
        fields,
        treatments: kind == Kind::CmTreatment,
        lists,
        problems: Vec::new(),
    }
}

/// `GET /hcp/patients/{id}/deposit/{kind}`: an allergy, diagnosis, medication, CM diagnosis
/// or CM treatment form.
pub async fn deposit_form(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path((id, kind)): Path<(Uuid, String)>,
) -> Result<Html<String>, HttpError> {
    let kind = Kind::parse(&kind).ok_or(HttpError(AppError::NotFound))?;
    let page = deposit_page(&app, locale, &user, id, kind, &HashMap::new());
    Ok(Html(crate::render::render_template(&page)?))
}

/// `POST /hcp/patients/{id}/deposit/{kind}`: deposits it and shows the summary; or the form
/// again with its problems and everything typed.
pub async fn deposit(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path((id, kind)): Path<(Uuid, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, HttpError> {
    let kind = Kind::parse(&kind).ok_or(HttpError(AppError::NotFound))?;
    let typed: HashMap<String, String> = form
        .into_iter()
        .map(|(k, v)| (k, v.trim().to_owned()))
        .collect();
    let mut page = deposit_page(&app, locale, &user, id, kind, &typed);
    let mut invalid = false;
    for f in &mut page.fields {
        if f.required && f.value.is_empty() {
            f.problem = Some(locale.t("deposit-problem-required"));
            invalid = true;
        } else if f.value.chars().count() > 200 {
            f.problem = Some(locale.t("deposit-problem-too-long"));
            invalid = true;
        }
    }
    if invalid {
        return Ok(form_again(
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(crate::render::render_template(&page)?),
        ));
    }
    let values: HashMap<&str, String> = page
        .fields
        .iter()
        .map(|f| (f.name, f.value.clone()))
        .collect();
    let resource = kind.resource(&page.source_id, id, &values);
    match app
        .deposit(&user.session, &user.caller, id, &resource)
        .await
    {
        Ok(_) => Ok(see_other(format!("/hcp/patients/{id}/record"))),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            page.problems = problems(locale, &e);
            Ok(form_again(
                StatusCode::UNPROCESSABLE_ENTITY,
                Html(crate::render::render_template(&page)?),
            ))
        }
        Err(e) => Err(HttpError(e)),
    }
}
