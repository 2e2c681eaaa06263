//! `/api/v1/me/recipients/{id}/record...`: the recipient's own record, read by the recipient
//! or an SDM with authority (issue 27, item 2; basis `self`, audited): every domain, each
//! record with its provider, clinical date and versions, and the whole record as a FHIR
//! `collection` Bundle to keep.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use ehrshare_app::own_record::OwnRecord;
use ehrshare_app::{App, AppError};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::HttpError;
use crate::session::LoggedIn;

/// A record as its owner reads it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnRecordView {
    pub id: Uuid,
    pub domain: String,
    pub resource_type: String,
    /// The provider that deposited it.
    pub source_hcp: Uuid,
    pub provider_en: String,
    pub provider_zh: String,
    /// The resource's own date as written (when it happened), not when it was deposited.
    pub clinical_date: Option<String>,
    /// What it is about, in one line.
    pub headline: String,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deposited_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[schema(value_type = Object)]
    pub resource: Box<serde_json::value::RawValue>,
}

fn raw(body: String) -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string(body)
        .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned())
}

fn own_view(r: OwnRecord) -> OwnRecordView {
    OwnRecordView {
        id: r.record.id,
        domain: r.record.domain.code().to_owned(),
        resource_type: r.record.resource_type,
        source_hcp: r.record.source_hcp,
        provider_en: r.provider.0,
        provider_zh: r.provider.1,
        clinical_date: r.clinical_date,
        headline: r.headline,
        version: r.record.version,
        deposited_at: r.record.created_at,
        updated_at: r.record.updated_at,
        resource: raw(r.record.body),
    }
}

/// One domain of one's own record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnDomainView {
    pub domain: String,
    pub records: Vec<OwnRecordView>,
}

/// One's own record, every domain listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnSummaryView {
    pub recipient: Uuid,
    pub domains: Vec<OwnDomainView>,
}

/// `GET /api/v1/me/recipients/{id}/record`: one's whole record, by domain.
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/record", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 200, description = "Every domain, every record", body = OwnSummaryView),
              (status = 403, description = "`sdm-authority-ended`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 404, description = "Not oneself nor represented; or a staff session", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn record(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    let domains = app.read_own_record(&session, &caller, id).await?;
    let view = OwnSummaryView {
        recipient: id,
        domains: domains
            .into_iter()
            .map(|(d, records)| OwnDomainView {
                domain: d.code().to_owned(),
                records: records.into_iter().map(own_view).collect(),
            })
            .collect(),
    };
    Ok(([(CACHE_CONTROL, "no-store")], Json(view)).into_response())
}

/// Who deposited a record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClinicianView {
    pub name_en: String,
    pub name_zh: Option<String>,
    /// A profession code (`doctor`, `nurse`, ...).
    pub role: String,
}

/// One version of a record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnVersionView {
    pub version: i64,
    /// `current` or `entered-in-error`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[schema(value_type = Object)]
    pub resource: Box<serde_json::value::RawValue>,
}

/// One record of one's own with its history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnRecordDetailView {
    pub id: Uuid,
    pub domain: String,
    pub resource_type: String,
    pub source_hcp: Uuid,
    pub provider_en: String,
    pub provider_zh: String,
    pub clinician: Option<ClinicianView>,
    pub clinical_date: Option<String>,
    pub headline: String,
    /// Every version, newest first.
    pub versions: Vec<OwnVersionView>,
}

/// `GET /api/v1/me/recipients/{id}/records/{record}`: one record with every version.
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/records/{record}", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"), ("record" = Uuid, Path, description = "Record id")),
    responses((status = 200, description = "The record and its versions", body = OwnRecordDetailView),
              (status = 403, description = "`sdm-authority-ended`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 404, description = "No such record of this recipient's", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn record_detail(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((id, record)): Path<(Uuid, Uuid)>,
) -> Result<Response, HttpError> {
    let d = app
        .read_own_record_detail(&session, &caller, id, record)
        .await?;
    let view = OwnRecordDetailView {
        id: d.record.id,
        domain: d.record.domain.clone(),
        resource_type: d.record.resource_type.clone(),
        source_hcp: d.record.source_hcp,
        provider_en: d.provider.0,
        provider_zh: d.provider.1,
        clinician: d.clinician.map(|(name_en, name_zh, role)| ClinicianView {
            name_en,
            name_zh,
            role,
        }),
        clinical_date: d.clinical_date,
        headline: d.headline,
        versions: d
            .versions
            .into_iter()
            .map(|v| OwnVersionView {
                version: v.version,
                status: v.status.code().to_owned(),
                updated_at: v.updated_at,
                resource: raw(v.body),
            })
            .collect(),
    };
    Ok(([(CACHE_CONTROL, "no-store")], Json(view)).into_response())
}

/// `GET /api/v1/me/recipients/{id}/record/bundle`: one's whole record as a FHIR `collection`
/// Bundle, to download and keep (audited as a read of every record in it).
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/record/bundle", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 200, description = "A FHIR R4 Bundle (collection)", content_type = "application/fhir+json"),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn record_bundle(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    let domains = app.read_own_record(&session, &caller, id).await?;
    let mut entries = Vec::new();
    for r in domains.into_values().flatten() {
        let meta = ehrshare_fhir::served::RecordMeta {
            id: r.record.id,
            version: r.record.version,
            updated_at: r.record.updated_at,
            source_hcp: r.record.source_hcp,
        };
        let resource = ehrshare_fhir::served::record(&r.record.body, meta)
            .map_err(|e| HttpError(AppError::Internal(Box::new(e))))?;
        entries.push((format!("urn:uuid:{}", r.record.id), resource));
    }
    let now = ehrshare_fhir::served::instant(app.clock().now());
    let bundle = ehrshare_fhir::bundle::collection(&now, entries);
    Ok((
        [
            (CONTENT_TYPE, "application/fhir+json".to_owned()),
            (CACHE_CONTROL, "no-store".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"ehealth-record-{id}.json\""),
            ),
        ],
        bundle.to_string(),
    )
        .into_response())
}

/// `GET /api/v1/me/recipients/{id}/record/pdf`: a printable summary of one's whole record:
/// the names (Chinese and English), then each domain's records with their headline, date
/// and provider, in the language asked for (audited as a read of every record in it).
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/record/pdf", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 200, description = "A PDF summary", content_type = "application/pdf"),
              (status = 403, description = "`sdm-authority-ended`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn record_pdf(
    State(app): State<App>,
    Extension(locale): Extension<crate::i18n::Locale>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    use crate::i18n::{Locale, PortalLocale};
    use crate::pdf::Line;
    let (name_en, name_zh, born) = app.own_identity(&session, id).await?;
    let domains = app.read_own_record(&session, &caller, id).await?;
    let now = ehrshare_core::clock::in_hong_kong(app.clock().now());
    let mut lines = vec![
        Line::title(locale.t("me-pdf-title")),
        Line::heading(match &name_zh {
            Some(zh) => format!("{zh} {name_en}"),
            None => name_en.clone(),
        }),
        Line::body(format!("{}: {born}", locale.t("hcp-patient-dob"))),
        Line::body(format!(
            "{}: {:04}-{:02}-{:02} {:02}:{:02}",
            locale.t("me-pdf-printed"),
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute()
        )),
    ];
    for (domain, records) in domains {
        if records.is_empty() {
            continue;
        }
        lines.push(Line::heading(match locale {
            Locale::ZhHk => domain.name_zh(),
            Locale::En => domain.name_en(),
        }));
        for r in records {
            let provider = match locale {
                Locale::ZhHk => r.provider.1,
                Locale::En => r.provider.0,
            };
            lines.push(Line::body(format!(
                "{}{}  ({provider})",
                r.clinical_date
                    .map(|d| format!("{d}  "))
                    .unwrap_or_default(),
                r.headline
            )));
        }
    }
    lines.push(Line::body(""));
    lines.push(Line::body(locale.t("me-pdf-footer")));
    let pdf = crate::pdf::render(&lines);
    Ok((
        [
            (CONTENT_TYPE, "application/pdf".to_owned()),
            (CACHE_CONTROL, "no-store".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"ehealth-summary-{id}.pdf\""),
            ),
        ],
        pdf,
    )
        .into_response())
}

/// A provider named in "who can see me".
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeenByView {
    pub hcp: Uuid,
    pub name_en: String,
    pub name_zh: String,
}

/// A sharing consent in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentInForceView {
    pub id: Uuid,
    pub provider: SeenByView,
    /// `one-year`, `indefinite` or `untyped` (the 2025 rules).
    pub kind: String,
    /// How it was given: `access-key`, `form`, `smart-id-card`, `app`, `phone`, `qr-scan`.
    pub method: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub given_at: OffsetDateTime,
    /// When it ends by itself (none: when revoked).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

/// A care episode that lets a consented provider read now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EpisodeNowView {
    pub id: Uuid,
    pub provider: SeenByView,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    /// When it ends (closed, planned, or by itself after no activity).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<OffsetDateTime>,
}

/// A restricted item unlocked for a provider now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnlockNowView {
    pub restriction: Uuid,
    /// The domain restricted, or none for one record.
    pub domain: Option<String>,
    pub record: Option<Uuid>,
    pub provider: SeenByView,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub until: OffsetDateTime,
}

/// Emergency access in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmergencyNowView {
    pub id: Uuid,
    pub provider: SeenByView,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub until: OffsetDateTime,
}

/// Who can see one's record now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WhoCanSeeView {
    pub consents: Vec<ConsentInForceView>,
    pub episodes: Vec<EpisodeNowView>,
    /// Public providers, under deemed consent (SPEC 3.4).
    pub deemed_consent: Vec<SeenByView>,
    pub unlocks: Vec<UnlockNowView>,
    pub emergency: Vec<EmergencyNowView>,
}

/// `GET /api/v1/me/recipients/{id}/sharing`: who can see one's record now, as the access
/// decision would answer. Revoke a consent with `DELETE .../consents/{hcp}`.
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/sharing", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 200, description = "Who can see the record now", body = WhoCanSeeView),
              (status = 403, description = "`sdm-authority-ended`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn sharing(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    use ehrshare_core::access::Restricted;
    let w = app.who_can_see(&session, &caller, id).await?;
    let by = |hcp: Uuid| {
        let (name_en, name_zh) = w.names.get(&hcp).cloned().unwrap_or_default();
        SeenByView {
            hcp,
            name_en,
            name_zh,
        }
    };
    let view = WhoCanSeeView {
        consents: w
            .exposure
            .consents
            .iter()
            .map(|(c, expires_at)| ConsentInForceView {
                id: c.id,
                provider: by(c.hcp),
                kind: c.kind.code().to_owned(),
                method: w.methods.get(&c.id).cloned().unwrap_or_default(),
                given_at: c.given_at,
                expires_at: *expires_at,
            })
            .collect(),
        episodes: w
            .exposure
            .episodes
            .iter()
            .map(|e| EpisodeNowView {
                id: e.id,
                provider: by(e.hcp),
                start: e.start,
                ends_at: w.episode_ends.get(&e.id).copied(),
            })
            .collect(),
        deemed_consent: w.deemed.iter().map(|h| by(*h)).collect(),
        unlocks: w
            .exposure
            .unlocks
            .iter()
            .map(|(restriction, item, u)| UnlockNowView {
                restriction: *restriction,
                domain: match item {
                    Restricted::Domain(d) => Some(d.code().to_owned()),
                    Restricted::Record(_) => None,
                },
                record: match item {
                    Restricted::Record(r) => Some(*r),
                    Restricted::Domain(_) => None,
                },
                provider: by(u.hcp),
                until: u.until,
            })
            .collect(),
        emergency: w
            .exposure
            .emergency
            .iter()
            .map(|g| EmergencyNowView {
                id: g.id,
                provider: by(g.hcp),
                until: g.until,
            })
            .collect(),
    };
    Ok(([(CACHE_CONTROL, "no-store")], Json(view)).into_response())
}

/// One's access key (授權號碼), as its owner sees it: never the key itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessKeyView {
    /// When the current key was issued.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub issued_at: Option<OffsetDateTime>,
    /// Wrong keys typed at providers have locked it; a new key lifts the lock.
    pub locked: bool,
}

/// `GET /api/v1/me/recipients/{id}/access-key`: when the key was issued, whether it is locked.
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/access-key", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 200, description = "The key's state", body = AccessKeyView),
              (status = 403, description = "`sdm-authority-ended`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn access_key(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    let s = app.own_access_key(&session, &caller, id).await?;
    let view = AccessKeyView {
        issued_at: s.issued_at,
        locked: s.locked,
    };
    Ok(([(CACHE_CONTROL, "no-store")], Json(view)).into_response())
}

/// `POST /api/v1/me/recipients/{id}/access-key`: a new key, sent by the recipient's channel
/// (or the acting SDM's); the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/me/recipients/{id}/access-key", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 202, description = "Issued and sent", body = AccessKeyView),
              (status = 429, description = "`access-key-just-issued`: one a minute", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn regenerate_access_key(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<(axum::http::StatusCode, Json<AccessKeyView>), HttpError> {
    let at = app.regenerate_own_access_key(&session, &caller, id).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(AccessKeyView {
            issued_at: Some(at),
            locked: false,
        }),
    ))
}

/// One's notification settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PreferencesView {
    /// `sms`, `email`, `post` or `app` (the portal's inbox).
    pub notify_channel: String,
    /// `en` or `zh-HK`.
    pub language: String,
    /// Ordinary access notices turned off (restricted-access notices are always sent).
    pub refuses_access_notices: bool,
    pub phone: String,
    pub email: Option<String>,
    pub address: Option<String>,
}

impl From<ehrshare_app::own_record::Preferences> for PreferencesView {
    fn from(p: ehrshare_app::own_record::Preferences) -> Self {
        PreferencesView {
            notify_channel: p.notify_channel,
            language: p.language,
            refuses_access_notices: p.refuses_access_notices,
            phone: p.phone,
            email: p.email,
            address: p.address,
        }
    }
}

/// Changing one's notification settings.
#[derive(Debug, Clone, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    pub notify_channel: String,
    pub language: String,
    pub refuses_access_notices: bool,
}

/// `GET /api/v1/me/recipients/{id}/preferences`: how notices reach one.
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/preferences", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 200, description = "The settings", body = PreferencesView),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn preferences(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    let p = app.own_preferences(&session, &caller, id).await?;
    Ok((
        [(CACHE_CONTROL, "no-store")],
        Json(PreferencesView::from(p)),
    )
        .into_response())
}

/// `PUT /api/v1/me/recipients/{id}/preferences`: change the channel, the language and the
/// ordinary access notices (audited; told by the old and the new channel).
#[utoipa::path(put, path = "/api/v1/me/recipients/{id}/preferences", tag = "me", request_body = PreferencesBody,
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 200, description = "Changed", body = PreferencesView),
              (status = 422, description = "`invalid-channel`, `channel-unreachable` (no e-mail or postal address on file), `invalid-language`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn set_preferences(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    crate::api::json::ApiJson(body): crate::api::json::ApiJson<PreferencesBody>,
) -> Result<Json<PreferencesView>, HttpError> {
    let p = app
        .set_own_preferences(
            &session,
            &caller,
            id,
            &body.notify_channel,
            &body.language,
            body.refuses_access_notices,
        )
        .await?;
    Ok(Json(p.into()))
}
