//! The patient portal (`/me`, issue 27): the eHealth app's record, sharing and access-key
//! functions as pages, bilingual and phone-first, on the same use cases as `/api/v1/me`.
//!
//! Security-sensitive:
//! - Only a patient's (person's) session reaches these pages; a staff session is sent to the
//!   patient login page, as nobody at all is, and a patient's session reaches no `/hcp` page.
//! - Login is document + password, then a one-time code sent to the registered contact; a
//!   refused step says one thing whatever the reason (the audit log has the reason).
//! - Every form post carries the session's CSRF token (checked by the session middleware);
//!   pages are `no-store` and cannot be framed (the security middleware's defaults).

use askama::Template;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::response::{Html, Response};
use axum::{Extension, Form};
use ehrshare_app::auth::{Session, Subject};
use ehrshare_app::caller::Caller;
use ehrshare_app::person::{DocumentLogin, person_of};
use ehrshare_app::{App, AppError};
use serde::Deserialize;
use uuid::Uuid;

use super::hcp::{form_again, see_other};
use super::hk_time;
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};
use crate::session::{Anonymous, CookieSettings, CurrentCsrf, LoggedIn};

pub mod self_service;

/// The patient portal's start.
pub const HOME: &str = "/me";
/// Its login page.
pub const LOGIN: &str = "/me/login";

/// A logged-in patient (or SDM); anyone else is sent to the patient login page.
#[derive(Debug)]
pub struct PatientUser {
    pub session: Session,
    pub caller: Caller,
}

impl FromRequestParts<App> for PatientUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        match LoggedIn::from_request_parts(parts, app).await {
            Ok(LoggedIn { session, caller }) if matches!(session.subject, Subject::Person(_)) => {
                Ok(PatientUser { session, caller })
            }
            _ => Err(see_other(LOGIN)),
        }
    }
}

#[derive(Template)]
#[template(path = "me_login.html")]
struct LoginPage {
    locale: Locale,
    all_locales: [Locale; 2],
    /// The CSRF token of a session the browser already has (see `CurrentCsrf`).
    csrf: Option<String>,
    doc_type: String,
    issuer: String,
    number: String,
    problem: Option<&'static str>,
    /// What was just done (`?done=`): a login set up, a password set.
    done: Option<&'static str>,
    /// Whether "Log in with iAM Smart" is offered (an identity provider is configured).
    iam_smart: bool,
}

/// `?done=activated|password` after the self-service pages.
#[derive(Debug, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /me/login`.
pub async fn login_page(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    CurrentCsrf(csrf): CurrentCsrf,
    axum::extract::Query(q): axum::extract::Query<Done>,
) -> Result<Html<String>, HttpError> {
    let done = match q.done.as_deref() {
        Some("activated") => Some("me-activated"),
        Some("password") => Some("me-password-set"),
        _ => None,
    };
    render_login(&app, locale, csrf, ("hkid", "", ""), None, done)
}

fn render_login(
    app: &App,
    locale: Locale,
    csrf: Option<String>,
    (doc_type, issuer, number): (&str, &str, &str),
    problem: Option<&'static str>,
    done: Option<&'static str>,
) -> Result<Html<String>, HttpError> {
    let page = LoginPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf,
        doc_type: doc_type.to_owned(),
        issuer: issuer.to_owned(),
        number: number.to_owned(),
        problem,
        done,
        iam_smart: app.settings().external_login(),
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// The login form (its `Debug` shows no secret).
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    doc_type: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginForm")
    }
}

#[derive(Template)]
#[template(path = "me_code.html")]
struct CodePage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf: Option<String>,
    challenge: Uuid,
    problem: Option<&'static str>,
}

fn render_code(
    locale: Locale,
    csrf: Option<String>,
    challenge: Uuid,
    problem: Option<&'static str>,
) -> Result<Html<String>, HttpError> {
    let page = CodePage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf,
        challenge,
        problem,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `POST /me/login`: document and password; the one-time code is sent, its form shown.
pub async fn log_in(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    Anonymous(caller): Anonymous,
    CurrentCsrf(csrf): CurrentCsrf,
    Form(form): Form<LoginForm>,
) -> Result<Response, HttpError> {
    let doc = DocumentLogin {
        kind: Some(form.doc_type.clone()).filter(|k| !k.is_empty()),
        issuer: Some(form.issuer.trim().to_owned()).filter(|i| !i.is_empty()),
        number: form.number.clone(),
    };
    let refused = |status: StatusCode, problem| -> Result<Response, HttpError> {
        let page = render_login(
            &app,
            locale,
            csrf.clone(),
            (&form.doc_type, &form.issuer, &form.number),
            Some(problem),
            None,
        )?;
        Ok(form_again(status, page))
    };
    match app.begin_person_login(&caller, doc, &form.password).await {
        Ok(challenge) => Ok(form_again(
            StatusCode::OK,
            render_code(locale, csrf.clone(), challenge, None)?,
        )),
        Err(AppError::AuthFailed { .. } | AppError::Invalid { .. }) => {
            refused(StatusCode::UNAUTHORIZED, "me-login-refused")
        }
        Err(AppError::Throttled { .. }) => {
            refused(StatusCode::TOO_MANY_REQUESTS, "login-throttled")
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// The code form.
#[derive(Deserialize)]
pub struct CodeForm {
    challenge: Uuid,
    #[serde(default)]
    code: String,
}

impl std::fmt::Debug for CodeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeForm")
    }
}

/// `POST /me/login/code`: the one-time code; the session cookie is set.
pub async fn verify_code(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    Extension(cookies): Extension<CookieSettings>,
    Anonymous(caller): Anonymous,
    CurrentCsrf(csrf): CurrentCsrf,
    Form(form): Form<CodeForm>,
) -> Result<Response, HttpError> {
    match app
        .finish_person_login(&caller, form.challenge, &form.code)
        .await
    {
        Ok(done) => {
            let mut response = see_other(HOME);
            response
                .headers_mut()
                .insert(SET_COOKIE, cookies.set(&done.token));
            Ok(response)
        }
        Err(AppError::AuthFailed { .. } | AppError::Invalid { .. }) => Ok(form_again(
            StatusCode::UNAUTHORIZED,
            render_code(
                locale,
                csrf.clone(),
                form.challenge,
                Some("me-code-refused"),
            )?,
        )),
        Err(AppError::Throttled { .. }) => Ok(form_again(
            StatusCode::TOO_MANY_REQUESTS,
            render_code(
                locale,
                csrf.clone(),
                form.challenge,
                Some("login-throttled"),
            )?,
        )),
        Err(e) => Err(HttpError(e)),
    }
}

/// `POST /me/logout`.
pub async fn log_out(
    State(app): State<App>,
    Extension(cookies): Extension<CookieSettings>,
    user: PatientUser,
) -> Result<Response, HttpError> {
    app.log_out(&user.session, &user.caller).await?;
    let mut response = see_other(LOGIN);
    response.headers_mut().insert(SET_COOKIE, cookies.clear());
    Ok(response)
}

/// Someone the logged-in person may act for.
struct PersonLine {
    id: Uuid,
    /// The message id that says who it is: oneself or a person one acts for.
    relation: &'static str,
    name: String,
    /// For a child one acts for: the day the authority ends.
    ends: String,
}

#[derive(Template)]
#[template(path = "me_home.html")]
struct HomePage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    people: Vec<PersonLine>,
    /// `?done=password` after a new password.
    done: Option<&'static str>,
}

/// `GET /me`: whom the person may act for (to switch between them), and where to go.
pub async fn home(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    axum::extract::Query(q): axum::extract::Query<Done>,
) -> Result<Html<String>, HttpError> {
    let person = person_of(&user.session.subject).ok_or(HttpError(AppError::NotFound))?;
    let people = app
        .acts_for(person)
        .await?
        .into_iter()
        .map(|a| PersonLine {
            id: a.recipient,
            relation: if a.own { "me-self" } else { "me-represented" },
            name: match (locale, a.name_zh) {
                (Locale::ZhHk, Some(zh)) => format!("{zh} ({})", a.name_en),
                (_, Some(zh)) => format!("{} ({zh})", a.name_en),
                (_, None) => a.name_en,
            },
            ends: a.authority_ends.map(|d| d.to_string()).unwrap_or_default(),
        })
        .collect();
    let page = HomePage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        people,
        done: (q.done.as_deref() == Some("password")).then_some("me-password-set"),
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// A record as listed on the record page.
struct RecordLine {
    id: Uuid,
    headline: String,
    date: String,
    provider: String,
    /// Restricted by the recipient (itself, or its whole domain).
    restricted: bool,
}

/// A domain as listed.
struct DomainLine {
    code: String,
    name: String,
    records: Vec<RecordLine>,
    restricted: bool,
}

#[derive(Template)]
#[template(path = "me_record.html")]
struct RecordPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    domains: Vec<DomainLine>,
}

/// `GET /me/{recipient}/record`: the whole record, by domain (audited, basis `self`).
pub async fn record(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
) -> Result<Html<String>, HttpError> {
    use ehrshare_core::access::Restricted;
    let by_domain = app
        .read_own_record(&user.session, &user.caller, recipient)
        .await?;
    // What is restricted already, to mark it and offer the rest (issue 27, item 6).
    let restricted: Vec<Restricted> = app
        .own_restrictions(&user.session, &user.caller, recipient)
        .await?
        .into_iter()
        .map(|r| r.item)
        .collect();
    let domains = by_domain
        .into_iter()
        .map(|(d, records)| {
            let whole = restricted.contains(&Restricted::Domain(d));
            DomainLine {
                code: d.code().to_owned(),
                name: match locale {
                    Locale::ZhHk => d.name_zh().to_owned(),
                    Locale::En => d.name_en().to_owned(),
                },
                records: records
                    .into_iter()
                    .map(|r| RecordLine {
                        id: r.record.id,
                        headline: r.headline,
                        date: r.clinical_date.unwrap_or_default(),
                        provider: match locale {
                            Locale::ZhHk => r.provider.1,
                            Locale::En => r.provider.0,
                        },
                        restricted: whole || restricted.contains(&Restricted::Record(r.record.id)),
                    })
                    .collect(),
                restricted: whole,
            }
        })
        .collect();
    let page = RecordPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        recipient,
        domains,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// A consent in force as listed.
struct ConsentLine {
    hcp: Uuid,
    provider: String,
    /// How long and how it was given, in words.
    kind: String,
    method: String,
    given: String,
    until: String,
}

#[derive(Template)]
#[template(path = "me_sharing.html")]
struct SharingPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    consents: Vec<ConsentLine>,
    episodes: Vec<(String, String)>,
    deemed: Vec<String>,
    /// The name searched for, and the active providers found: (id, name, address).
    q: String,
    found: Vec<(Uuid, String, String)>,
    /// Whether consents have a type under the rules in force (2016).
    typed: bool,
    given: bool,
    problems: Vec<String>,
    /// Restricted items unlocked now: (what, provider, until).
    unlocks: Vec<(String, String, String)>,
    /// Emergency access in force: (provider, until).
    emergency: Vec<(String, String)>,
    revoked: bool,
}

/// `?revoked=1` after a revocation.
#[derive(Debug, Deserialize)]
pub struct Revoked {
    #[serde(default)]
    revoked: Option<String>,
    #[serde(default)]
    given: Option<String>,
    /// A provider's name to find, to give it consent.
    #[serde(default)]
    q: Option<String>,
}

/// `GET /me/{recipient}/sharing`: who can see the record now, each consent with a revoke.
pub async fn sharing(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    axum::extract::Query(q): axum::extract::Query<Revoked>,
) -> Result<Html<String>, HttpError> {
    sharing_page(&app, locale, &user, recipient, q, Vec::new()).await
}

async fn sharing_page(
    app: &App,
    locale: Locale,
    user: &PatientUser,
    recipient: Uuid,
    q: Revoked,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let wanted =
        q.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
    let w = app
        .who_can_see(&user.session, &user.caller, recipient)
        .await?;
    let name = |hcp: &Uuid| {
        let (en, zh) = w.names.get(hcp).cloned().unwrap_or_default();
        match locale {
            Locale::ZhHk => zh,
            Locale::En => en,
        }
    };
    let page = SharingPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        recipient,
        consents: w
            .exposure
            .consents
            .iter()
            .map(|(c, until)| ConsentLine {
                hcp: c.hcp,
                provider: name(&c.hcp),
                kind: locale.t(&format!("me-kind-{}", c.kind.code())),
                method: {
                    let m = w.methods.get(&c.id).cloned().unwrap_or_default();
                    let id = format!("me-method-{m}");
                    if locale.has(&id) { locale.t(&id) } else { m }
                },
                given: hk_time(c.given_at),
                until: until
                    .map(hk_time)
                    .unwrap_or_else(|| locale.t("me-until-revoked")),
            })
            .collect(),
        episodes: w
            .exposure
            .episodes
            .iter()
            .map(|e| {
                let ends = w
                    .episode_ends
                    .get(&e.id)
                    .map(|t| hk_time(*t))
                    .unwrap_or_default();
                (name(&e.hcp), ends)
            })
            .collect(),
        deemed: w.deemed.iter().map(name).collect(),
        unlocks: w
            .exposure
            .unlocks
            .iter()
            .map(|(_, item, u)| {
                let what = match item {
                    ehrshare_core::access::Restricted::Domain(d) => match locale {
                        Locale::ZhHk => d.name_zh().to_owned(),
                        Locale::En => d.name_en().to_owned(),
                    },
                    ehrshare_core::access::Restricted::Record(_) => {
                        locale.t("me-sharing-one-record")
                    }
                };
                (what, name(&u.hcp), hk_time(u.until))
            })
            .collect(),
        emergency: w
            .exposure
            .emergency
            .iter()
            .map(|g| (name(&g.hcp), hk_time(g.until)))
            .collect(),
        revoked: q.revoked.is_some(),
        given: q.given.is_some(),
        typed: app.settings().regime.consents_are_typed(),
        q: wanted.clone().unwrap_or_default(),
        found: Vec::new(),
        problems,
    };
    let mut page = page;
    if let Some(name) = wanted {
        let filter = ehrshare_app::provider::DirectoryFilter {
            name: Some(name),
            district: None,
            hcp_type: None,
            profession: None,
        };
        let (found, _) = app.directory(&filter, 1, 20).await?;
        let consented: Vec<Uuid> = w.exposure.consents.iter().map(|(c, _)| c.hcp).collect();
        page.found = found
            .into_iter()
            .filter(|p| !consented.contains(&p.hcp.id))
            .map(|p| {
                let address = p
                    .locations
                    .first()
                    .map(|l| super::locations::address(locale, l))
                    .unwrap_or_default();
                let name = match locale {
                    Locale::ZhHk => p.hcp.name_zh.clone(),
                    Locale::En => p.hcp.name_en.clone(),
                };
                (p.hcp.id, name, address)
            })
            .collect();
    }
    Ok(Html(crate::render::render_template(&page)?))
}

/// The revocation's confirmation.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /me/{recipient}/consents/{hcp}/revoke`: revoke, with the confirmation ticked; in
/// force for the provider's next request.
pub async fn revoke(
    State(app): State<App>,
    user: PatientUser,
    Path((recipient, hcp)): Path<(Uuid, Uuid)>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, HttpError> {
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other(format!("/me/{recipient}/sharing")));
    }
    app.revoke_consent(&user.session, &user.caller, recipient, hcp)
        .await?;
    Ok(see_other(format!("/me/{recipient}/sharing?revoked=1")))
}

/// One access as the recipient's log page shows it.
struct AccessLine {
    seq: u64,
    at: String,
    who: String,
    provider: String,
    what: String,
    domains: String,
    reason: String,
    denied: bool,
    /// Whether it can be reported as suspicious (not one's own doing).
    reportable: bool,
    /// "Records released: n", when the entry names records (ADR 0023).
    records_line: String,
    /// Each record released, as a link to it on the record page, with its version if known.
    records: Vec<(Uuid, String)>,
    /// The record history no longer gives back what left (`audit verify` names the entry).
    records_unchecked: bool,
}

/// A report of a suspicious access as its reporter sees it.
struct ReportLine {
    seq: String,
    at: String,
    words: String,
    open: bool,
    outcome: String,
}

#[derive(Template)]
#[template(path = "me_access_log.html")]
struct AccessLogPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    lines: Vec<AccessLine>,
    older: Option<String>,
    /// The providers to filter by: (id, name), and the filters as asked.
    providers: Vec<(Uuid, String)>,
    provider: Option<Uuid>,
    from: String,
    to: String,
    reports: Vec<ReportLine>,
    reported: bool,
    problems: Vec<String>,
}

impl AccessLogPage {
    fn is_chosen(&self, id: &Uuid) -> bool {
        self.provider == Some(*id)
    }
}

/// `?before=` a sequence number, the filters, and `?reported=1` after a report.
#[derive(Debug, Default, Deserialize)]
pub struct LogFilter {
    #[serde(default)]
    before: Option<u64>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    reported: Option<String>,
}

/// `GET /me/{recipient}/access-log`: every access to the record, named, newest first, each
/// with its inclusion proof to download and a way to report it; filtered by provider and
/// period.
pub async fn access_log(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    axum::extract::Query(q): axum::extract::Query<LogFilter>,
) -> Result<Response, HttpError> {
    access_log_page(&app, locale, &user, recipient, q, Vec::new()).await
}

async fn access_log_page(
    app: &App,
    locale: Locale,
    user: &PatientUser,
    recipient: Uuid,
    q: LogFilter,
    mut problems: Vec<String>,
) -> Result<Response, HttpError> {
    use ehrshare_core::domain::Domain;
    use ehrshare_core::profession::Role;
    let provider = q
        .provider
        .as_deref()
        .filter(|p| !p.is_empty())
        .and_then(|p| p.parse::<Uuid>().ok());
    let query = crate::api::access_log::OwnLogQuery {
        before: q.before,
        provider,
        from: q.from.clone(),
        to: q.to.clone(),
    };
    let narrow = match query.narrowing() {
        Ok(n) => n,
        Err(HttpError(e)) => {
            problems.extend(super::hcp::problems(locale, &e));
            ehrshare_app::access_log::LogNarrowing::default()
        }
    };
    let lines = app
        .recipient_access_log(&user.session, recipient, narrow, q.before)
        .await?;
    let filters = format!(
        "provider={}&from={}&to={}",
        provider.map(|p| p.to_string()).unwrap_or_default(),
        ehrshare_app::auth::uri_escape(q.from.as_deref().unwrap_or_default()),
        ehrshare_app::auth::uri_escape(q.to.as_deref().unwrap_or_default()),
    );
    let older = (lines.len() == ehrshare_app::access_log::PAGE as usize)
        .then(|| {
            lines.last().map(|l| {
                format!(
                    "/me/{recipient}/access-log?before={}&{filters}",
                    l.entry.seq
                )
            })
        })
        .flatten();
    let pick = |en: Option<String>, zh: Option<String>| match locale {
        Locale::ZhHk => zh.or(en).unwrap_or_default(),
        Locale::En => en.unwrap_or_default(),
    };
    let mut providers: Vec<(Uuid, String)> = Vec::new();
    let lines = lines
        .into_iter()
        .map(|l| {
            let e = l.entry.entry;
            let provider_name = pick(l.hcp_name_en, l.hcp_name_zh);
            if let Some(h) = e.actor.hcp
                && !providers.iter().any(|(id, _)| *id == h)
            {
                providers.push((h, provider_name.clone()));
            }
            let mut who = pick(l.actor_name_en, l.actor_name_zh);
            if let Some(role) = e.actor.role.as_deref().and_then(Role::parse) {
                let role = match locale {
                    Locale::ZhHk => role.name_zh(),
                    Locale::En => role.name_en(),
                };
                who = if who.is_empty() {
                    role.to_owned()
                } else {
                    format!("{who} · {role}")
                };
            }
            let id = format!("me-action-{}", e.action.replace('.', "-"));
            let what = if locale.has(&id) {
                locale.t(&id)
            } else {
                e.action.clone()
            };
            let domains = if e.domains.len() == Domain::ALL.len() {
                locale.t("me-log-all-domains")
            } else {
                e.domains
                    .iter()
                    .filter_map(|d| Domain::parse(d))
                    .map(|d| match locale {
                        Locale::ZhHk => d.name_zh(),
                        Locale::En => d.name_en(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let reason = match (&l.disclosure, e.reason) {
                (Some(d), _) => format!("{}: {}", d.requesting_body, d.data_disclosed),
                (None, Some(r)) if r == "self" => locale.t("me-log-self"),
                (None, Some(r)) if r.starts_with("break-glass ") => locale.t("me-log-emergency"),
                (None, Some(r)) => r,
                (None, None) => String::new(),
            };
            let records_line = if l.records.is_empty() {
                String::new()
            } else {
                locale.t_with("me-log-records", &[("count", l.records.len().to_string())])
            };
            let records = l
                .records
                .iter()
                .map(|r| {
                    // The id's last eight digits: its first are a time (UUIDv7), alike for
                    // records deposited together.
                    let simple = r.id.simple().to_string();
                    let short = simple[simple.len() - 8..].to_owned();
                    let label = match (r.version, r.history) {
                        (Some(v), false) => locale.t_with(
                            "me-log-record-version",
                            &[("id", short), ("version", v.to_string())],
                        ),
                        (Some(v), true) => locale.t_with(
                            "me-log-record-history",
                            &[("id", short), ("version", v.to_string())],
                        ),
                        (None, _) => short,
                    };
                    (r.id, label)
                })
                .collect();
            AccessLine {
                records_line,
                records,
                records_unchecked: !l.records_checked,
                seq: l.entry.seq,
                at: hk_time(e.at),
                who,
                provider: provider_name,
                what,
                domains,
                reason,
                denied: e.outcome != ehrshare_core::audit::Outcome::Allowed,
                reportable: e.actor.kind != ehrshare_core::audit::ActorKind::Recipient,
            }
        })
        .collect();
    if let Some(p) = provider
        && !providers.iter().any(|(id, _)| *id == p)
    {
        providers.push((p, locale.t("me-log-this-provider")));
    }
    let reports = app
        .own_reports(&user.session, &user.caller, recipient)
        .await?
        .into_iter()
        .map(|r| ReportLine {
            seq: r.audit_seq.map(|s| s.to_string()).unwrap_or_default(),
            at: hk_time(r.created_at),
            words: r.detail.unwrap_or_default(),
            open: r.status == ehrshare_core::alert::AlertStatus::Open,
            outcome: r.note.unwrap_or_default(),
        })
        .collect();
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = AccessLogPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        recipient,
        lines,
        older,
        providers,
        provider,
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
        reports,
        reported: q.reported.is_some(),
        problems,
    };
    Ok(form_again(
        status,
        Html(crate::render::render_template(&page)?),
    ))
}

/// A report of a suspicious access.
#[derive(Debug, Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    words: String,
}

/// `POST /me/{recipient}/access-log/{seq}/report`: report an access as suspicious.
pub async fn report(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path((recipient, seq)): Path<(Uuid, u64)>,
    Form(form): Form<ReportForm>,
) -> Result<Response, HttpError> {
    match app
        .report_access(&user.session, &user.caller, recipient, seq, &form.words)
        .await
    {
        Ok(_) => Ok(see_other(format!("/me/{recipient}/access-log?reported=1"))),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let list = super::hcp::problems(locale, &e);
            access_log_page(&app, locale, &user, recipient, LogFilter::default(), list).await
        }
        Err(e) => Err(HttpError(e)),
    }
}

#[derive(Template)]
#[template(path = "me_scan.html")]
struct ScanPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    payload: String,
    problems: Vec<String>,
}

/// `GET /me/{recipient}/scan`: read a location's QR code (the camera where the browser
/// allows it, or the code typed) to give that provider sharing consent.
pub async fn scan_form(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
) -> Result<Response, HttpError> {
    // Only for someone one may act for: the same answer as the record's.
    app.check_owner(&user.session, &user.caller, recipient, "consent.scan")
        .await?;
    let html = render_scan(locale, &user, recipient, String::new(), Vec::new())?;
    Ok(with_camera(form_again(StatusCode::OK, html)))
}

/// The scanning page may use the camera (every other page may not: the security
/// middleware's default policy).
fn with_camera(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::HeaderName::from_static("permissions-policy"),
        axum::http::HeaderValue::from_static(
            "camera=(self), microphone=(), geolocation=(), payment=()",
        ),
    );
    response
}

fn render_scan(
    locale: Locale,
    user: &PatientUser,
    recipient: Uuid,
    payload: String,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let page = ScanPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        recipient,
        payload,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// What was scanned (or typed), and for the confirmation the consent's kind.
#[derive(Debug, Deserialize)]
pub struct ScanForm {
    #[serde(default)]
    payload: String,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Template)]
#[template(path = "me_scan_confirm.html")]
struct ScanConfirmPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    payload: String,
    provider: String,
    location: String,
    address: String,
    typed: bool,
}

/// `POST /me/{recipient}/scan`: the provider and address the code names, to confirm.
pub async fn scan(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    Form(form): Form<ScanForm>,
) -> Result<Response, HttpError> {
    let payload = form.payload.trim().to_owned();
    match app.scan_location(&user.session, recipient, &payload).await {
        Ok(s) => {
            let (provider, location) = match locale {
                Locale::ZhHk => (s.provider.hcp.name_zh.clone(), s.location.name_zh.clone()),
                Locale::En => (s.provider.hcp.name_en.clone(), s.location.name_en.clone()),
            };
            let page = ScanConfirmPage {
                locale,
                all_locales: super::ALL_LOCALES,
                csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
                recipient,
                payload,
                provider,
                location,
                address: super::locations::address(locale, &s.location),
                typed: app.settings().regime.consents_are_typed(),
            };
            Ok(form_again(
                StatusCode::OK,
                Html(crate::render::render_template(&page)?),
            ))
        }
        Err(e @ AppError::Invalid { .. }) => {
            let html = render_scan(
                locale,
                &user,
                recipient,
                payload,
                super::hcp::problems(locale, &e),
            )?;
            Ok(with_camera(form_again(
                StatusCode::UNPROCESSABLE_ENTITY,
                html,
            )))
        }
        Err(e) => Err(HttpError(e)),
    }
}

#[derive(Template)]
#[template(path = "me_scan_done.html")]
struct ScanDonePage {
    locale: Locale,
    all_locales: [Locale; 2],
    recipient: Uuid,
    consent: Uuid,
    receipt: String,
    signature: String,
    key_id: String,
}

/// `POST /me/{recipient}/scan/confirm`: the consent, in force at once, and its receipt.
pub async fn confirm_scan(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    Form(form): Form<ScanForm>,
) -> Result<Response, HttpError> {
    let payload = form.payload.trim().to_owned();
    let kind = form.kind.as_deref().filter(|k| !k.is_empty());
    match app
        .give_consent_by_scan(&user.session, &user.caller, recipient, &payload, kind)
        .await
    {
        Ok((consent, receipt)) => {
            let page = ScanDonePage {
                locale,
                all_locales: super::ALL_LOCALES,
                recipient,
                consent: consent.id,
                receipt: receipt.body,
                signature: receipt.signature,
                key_id: receipt.key_id,
            };
            Ok(form_again(
                StatusCode::CREATED,
                Html(crate::render::render_template(&page)?),
            ))
        }
        Err(e @ AppError::Invalid { .. }) => {
            let html = render_scan(
                locale,
                &user,
                recipient,
                payload,
                super::hcp::problems(locale, &e),
            )?;
            Ok(with_camera(form_again(
                StatusCode::UNPROCESSABLE_ENTITY,
                html,
            )))
        }
        Err(e) => Err(HttpError(e)),
    }
}

#[derive(Template)]
#[template(path = "me_access_key.html")]
struct AccessKeyPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    issued: String,
    locked: bool,
    sent: bool,
    problems: Vec<String>,
}

/// `?sent=1` after a new key was sent.
#[derive(Debug, Deserialize)]
pub struct Sent {
    #[serde(default)]
    sent: Option<String>,
}

async fn access_key_page(
    app: &App,
    locale: Locale,
    user: &PatientUser,
    recipient: Uuid,
    sent: bool,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let state = app
        .own_access_key(&user.session, &user.caller, recipient)
        .await?;
    let page = AccessKeyPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        recipient,
        issued: state.issued_at.map(hk_time).unwrap_or_default(),
        locked: state.locked,
        sent,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /me/{recipient}/access-key`: when the key was issued, whether it is locked.
pub async fn access_key(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    axum::extract::Query(q): axum::extract::Query<Sent>,
) -> Result<Html<String>, HttpError> {
    access_key_page(&app, locale, &user, recipient, q.sent.is_some(), Vec::new()).await
}

/// `POST /me/{recipient}/access-key`: a new key, sent by the recipient's channel.
pub async fn new_access_key(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
) -> Result<Response, HttpError> {
    match app
        .regenerate_own_access_key(&user.session, &user.caller, recipient)
        .await
    {
        Ok(_) => Ok(see_other(format!("/me/{recipient}/access-key?sent=1"))),
        Err(AppError::Throttled { .. }) => {
            let html = access_key_page(
                &app,
                locale,
                &user,
                recipient,
                false,
                vec![locale.t("me-key-wait")],
            )
            .await?;
            Ok(form_again(StatusCode::TOO_MANY_REQUESTS, html))
        }
        Err(e) => Err(HttpError(e)),
    }
}

#[derive(Template)]
#[template(path = "me_settings.html")]
struct SettingsPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    channel: String,
    language: String,
    refuses: bool,
    phone: String,
    email: String,
    address: String,
    saved: bool,
    contact_changed: bool,
    problems: Vec<String>,
}

/// `?saved=1` after a change of preferences, `?contact=1` after a new contact.
#[derive(Debug, Deserialize)]
pub struct Saved {
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    contact: Option<String>,
}

/// What the settings page says was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SettingsNote {
    None,
    Saved,
    ContactChanged,
}

async fn settings_page(
    app: &App,
    locale: Locale,
    user: &PatientUser,
    recipient: Uuid,
    note: SettingsNote,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let p = app
        .own_preferences(&user.session, &user.caller, recipient)
        .await?;
    let page = SettingsPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        recipient,
        channel: p.notify_channel,
        language: p.language,
        refuses: p.refuses_access_notices,
        phone: p.phone,
        email: p.email.unwrap_or_default(),
        address: p.address.unwrap_or_default(),
        saved: note == SettingsNote::Saved,
        contact_changed: note == SettingsNote::ContactChanged,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /me/{recipient}/settings`: how notices reach one.
pub async fn settings(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    axum::extract::Query(q): axum::extract::Query<Saved>,
) -> Result<Html<String>, HttpError> {
    let note = if q.saved.is_some() {
        SettingsNote::Saved
    } else if q.contact.is_some() {
        SettingsNote::ContactChanged
    } else {
        SettingsNote::None
    };
    settings_page(&app, locale, &user, recipient, note, Vec::new()).await
}

/// The settings form.
#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    refuses: Option<String>,
}

/// `POST /me/{recipient}/settings`.
pub async fn save_settings(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, HttpError> {
    match app
        .set_own_preferences(
            &user.session,
            &user.caller,
            recipient,
            &form.channel,
            &form.language,
            form.refuses.as_deref() == Some("yes"),
        )
        .await
    {
        Ok(_) => Ok(see_other(format!("/me/{recipient}/settings?saved=1"))),
        Err(e @ AppError::Invalid { .. }) => {
            let html = settings_page(
                &app,
                locale,
                &user,
                recipient,
                SettingsNote::None,
                super::hcp::problems(locale, &e),
            )
            .await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, html))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// A notice as the inbox page shows it.
struct NoticeLine {
    id: Uuid,
    at: String,
    subject: String,
    body: String,
    unread: bool,
}

#[derive(Template)]
#[template(path = "me_inbox.html")]
struct InboxPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    notices: Vec<NoticeLine>,
}

/// `GET /me/{recipient}/inbox`: notices by the portal's inbox, newest first.
pub async fn inbox(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
) -> Result<Html<String>, HttpError> {
    let notices = app.inbox(&user.session, recipient, None).await?;
    let page = InboxPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        recipient,
        notices: notices
            .into_iter()
            .map(|n| NoticeLine {
                id: n.id,
                at: hk_time(n.at),
                subject: n.subject,
                body: n.body,
                unread: n.read_at.is_none(),
            })
            .collect(),
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `POST /me/{recipient}/inbox/{message}/read`.
pub async fn mark_read(
    State(app): State<App>,
    user: PatientUser,
    Path((recipient, message)): Path<(Uuid, Uuid)>,
) -> Result<Response, HttpError> {
    app.mark_inbox_read(&user.session, recipient, message)
        .await?;
    Ok(see_other(format!("/me/{recipient}/inbox")))
}

/// A restriction as the page lists it.
struct RestrictionLine {
    id: Uuid,
    what: String,
    unlocks: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "me_restrictions.html")]
struct RestrictionsPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    restrictions: Vec<RestrictionLine>,
    /// Domains not restricted yet: (code, name).
    domains: Vec<(String, String)>,
    problems: Vec<String>,
}

async fn restrictions_page(
    app: &App,
    locale: Locale,
    user: &PatientUser,
    recipient: Uuid,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    use ehrshare_core::access::Restricted;
    use ehrshare_core::domain::Domain;
    let rows = app
        .own_restrictions(&user.session, &user.caller, recipient)
        .await?;
    let name = |d: Domain| match locale {
        Locale::ZhHk => d.name_zh().to_owned(),
        Locale::En => d.name_en().to_owned(),
    };
    let restricted: Vec<Domain> = rows
        .iter()
        .filter_map(|r| match r.item {
            Restricted::Domain(d) => Some(d),
            Restricted::Record(_) => None,
        })
        .collect();
    let page = RestrictionsPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        recipient,
        restrictions: rows
            .into_iter()
            .map(|r| RestrictionLine {
                id: r.id,
                what: match r.item {
                    Restricted::Domain(d) => name(d),
                    Restricted::Record(_) => r
                        .headline
                        .unwrap_or_else(|| locale.t("me-sharing-one-record")),
                },
                unlocks: r
                    .unlocks
                    .into_iter()
                    .map(|((en, zh), until)| {
                        (
                            match locale {
                                Locale::ZhHk => zh,
                                Locale::En => en,
                            },
                            hk_time(until),
                        )
                    })
                    .collect(),
            })
            .collect(),
        domains: Domain::ALL
            .into_iter()
            .filter(|d| !restricted.contains(d))
            .map(|d| (d.code().to_owned(), name(d)))
            .collect(),
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /me/{recipient}/restrictions`: what is restricted, and each unlock.
pub async fn restrictions(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
) -> Result<Html<String>, HttpError> {
    restrictions_page(&app, locale, &user, recipient, Vec::new()).await
}

/// What to restrict: a domain, or one record (from the record page); `back` names the page
/// to return to (`record`).
#[derive(Debug, Deserialize)]
pub struct RestrictForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    record: Option<Uuid>,
    #[serde(default)]
    back: Option<String>,
}

/// `POST /me/{recipient}/restrictions`: restrict a whole domain or one record.
pub async fn restrict(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    Form(form): Form<RestrictForm>,
) -> Result<Response, HttpError> {
    match app
        .restrict(
            &user.session,
            &user.caller,
            recipient,
            form.record.is_none().then_some(form.domain.trim()),
            form.record,
        )
        .await
    {
        Ok(_) if form.back.as_deref() == Some("record") => {
            Ok(see_other(format!("/me/{recipient}/record")))
        }
        Ok(_) => Ok(see_other(format!("/me/{recipient}/restrictions"))),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let html = restrictions_page(
                &app,
                locale,
                &user,
                recipient,
                super::hcp::problems(locale, &e),
            )
            .await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, html))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// `POST /me/{recipient}/restrictions/{restriction}/lift`.
pub async fn lift(
    State(app): State<App>,
    user: PatientUser,
    Path((recipient, restriction)): Path<(Uuid, Uuid)>,
) -> Result<Response, HttpError> {
    app.lift_restriction(&user.session, &user.caller, recipient, restriction)
        .await?;
    Ok(see_other(format!("/me/{recipient}/restrictions")))
}

/// Giving a provider consent from the directory.
#[derive(Debug, Deserialize)]
pub struct GiveForm {
    hcp: Uuid,
    #[serde(default)]
    kind: Option<String>,
}

/// `POST /me/{recipient}/consents`: give the provider found sharing consent (one-year or
/// until revoked under the 2016 rules; no choice under 2025's).
pub async fn give(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    Form(form): Form<GiveForm>,
) -> Result<Response, HttpError> {
    let kind = form.kind.as_deref().filter(|k| !k.is_empty());
    match app
        .give_consent_in_app(&user.session, &user.caller, recipient, form.hcp, kind)
        .await
    {
        Ok(_) => Ok(see_other(format!("/me/{recipient}/sharing?given=1"))),
        Err(e @ AppError::Invalid { .. }) => {
            let q = Revoked {
                revoked: None,
                given: None,
                q: None,
            };
            let html = sharing_page(
                &app,
                locale,
                &user,
                recipient,
                q,
                super::hcp::problems(locale, &e),
            )
            .await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, html))
        }
        Err(e) => Err(HttpError(e)),
    }
}
