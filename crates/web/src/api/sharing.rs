//! The sharing core over JSON: finding a recipient at the counter, sharing consents, care
//! episodes, depositing and reading records. Every read and deposit passes the access decision
//! in `app`; this module only shapes requests and answers.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ehrshare_app::App;
use ehrshare_app::consent::ConsentInput;
use ehrshare_app::record::Record;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::api::me::DocumentLoginBody;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// A document to find a recipient by.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindBody {
    pub document: DocumentLoginBody,
}

/// A recipient as found at the counter.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FoundView {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub date_of_birth: String,
    pub status: String,
}

/// `POST /api/v1/recipients/find`: a recipient by identity document (audited).
#[utoipa::path(post, path = "/api/v1/recipients/find", tag = "sharing", request_body = FindBody,
    responses((status = 200, description = "Found", body = FoundView),
              (status = 404, description = "No such recipient", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn find(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    ApiJson(body): ApiJson<FindBody>,
) -> Result<Json<FoundView>, HttpError> {
    let d = body.document;
    let f = app
        .find_recipient(
            &session,
            &caller,
            d.kind.as_deref().unwrap_or("hkid"),
            d.issuer.as_deref(),
            &d.number,
        )
        .await?;
    Ok(Json(FoundView {
        id: f.id,
        name_en: f.name_en,
        name_zh: f.name_zh,
        date_of_birth: f.date_of_birth,
        status: f.status,
    }))
}

/// A consent recorded at a provider.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// `access-key` or `form`.
    pub method: String,
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub form_ref: Option<String>,
    /// `one-year` or `indefinite` (default); ignored under the 2025 rules.
    #[serde(default)]
    pub kind: Option<String>,
}

impl std::fmt::Debug for ConsentBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentBody")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// A consent as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub id: Uuid,
    pub recipient: Uuid,
    pub hcp: Uuid,
    pub kind: String,
    pub method: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub given_at: OffsetDateTime,
}

fn consent_view(c: ehrshare_app::consent::ConsentRecord) -> ConsentView {
    ConsentView {
        id: c.id,
        recipient: c.recipient_id,
        hcp: c.hcp_id,
        kind: c.kind,
        method: c.method,
        given_at: c.given_at,
    }
}

/// `POST /api/v1/recipients/{id}/consents`: record the recipient's sharing consent with the
/// caller's provider (access key or signed form).
#[utoipa::path(post, path = "/api/v1/recipients/{id}/consents", tag = "sharing", request_body = ConsentBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Given", body = ConsentView),
              (status = 403, description = "`access-key-locked`, `recipient-not-registered`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 422, description = "`wrong-access-key`, `invalid-method`", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn give_consent(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> Result<(StatusCode, Json<ConsentView>), HttpError> {
    let c = app
        .give_consent(
            &session,
            &caller,
            id,
            ConsentInput {
                method: body.method,
                access_key: body.access_key,
                form_ref: body.form_ref,
                kind: body.kind,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(consent_view(c))))
}

/// A consent given in the patient portal.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppConsentBody {
    pub hcp: Uuid,
    /// `one-year` or `indefinite` (default).
    #[serde(default)]
    pub kind: Option<String>,
}

/// `POST /api/v1/me/recipients/{id}/consents`: the recipient (or their SDM) gives a provider
/// sharing consent.
#[utoipa::path(post, path = "/api/v1/me/recipients/{id}/consents", tag = "me", request_body = AppConsentBody,
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 201, description = "Given", body = ConsentView),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn give_consent_in_app(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<AppConsentBody>,
) -> Result<(StatusCode, Json<ConsentView>), HttpError> {
    let c = app
        .give_consent_in_app(&session, &caller, id, body.hcp, body.kind.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(consent_view(c))))
}

/// `DELETE /api/v1/me/recipients/{id}/consents/{hcp}`: revoke, effective at once.
#[utoipa::path(delete, path = "/api/v1/me/recipients/{id}/consents/{hcp}", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"), ("hcp" = Uuid, Path, description = "Provider id")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_consent(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((id, hcp)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, HttpError> {
    app.revoke_consent(&session, &caller, id, hcp).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A care episode to open.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EpisodeBody {
    /// `attendance`, `admission`, `appointment` or `referral`.
    pub kind: String,
    #[serde(default)]
    pub location: Option<Uuid>,
}

/// A care episode as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EpisodeView {
    pub id: Uuid,
    pub hcp: Uuid,
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
}

/// `POST /api/v1/recipients/{id}/episodes`: open a care episode at the caller's provider.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/episodes", tag = "sharing", request_body = EpisodeBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Opened", body = EpisodeView)))]
pub async fn open_episode(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<EpisodeBody>,
) -> Result<(StatusCode, Json<EpisodeView>), HttpError> {
    let e = app
        .open_episode(&session, &caller, id, &body.kind, body.location)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EpisodeView {
            id: e.id,
            hcp: e.hcp_id,
            kind: e.kind,
            start: e.start_at,
        }),
    ))
}

/// `POST /api/v1/recipients/{id}/episodes/{episode}/close`: close it.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/episodes/{episode}/close", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id"), ("episode" = Uuid, Path, description = "Episode id")),
    responses((status = 204, description = "Closed")))]
pub async fn close_episode(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((id, episode)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, HttpError> {
    app.close_episode(&session, &caller, id, episode).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A record as shown: its metadata and the FHIR resource.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordView {
    pub id: Uuid,
    pub recipient: Uuid,
    pub domain: String,
    pub resource_type: String,
    pub source_hcp: Uuid,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The FHIR resource, as stored (canonical JSON, sent without re-serialising).
    #[schema(value_type = Object)]
    pub resource: Box<serde_json::value::RawValue>,
}

/// The summary and a domain's page as JSON, written straight from the store's rows in the
/// shape serde gives their documented types ([`SummaryView`], [`RecordPage`]; a test holds
/// them equal): these answers carry tens of records, and serde's derived path cost more than
/// reading them (ADR 0013).
///
/// The resource is written as stored, without parsing it again. The store's `body` column is
/// written by the deposit path only, and only as serde_json's canonical serialisation of a
/// resource that passed validation; the single-record paths still go through `RawValue`.
mod listed_json {
    use std::io::Write as _;

    use axum::response::IntoResponse as _;
    use ehrshare_app::record::{ListedRecord, Summary};
    use ehrshare_core::domain::Domain;

    use crate::error::HttpError;

    fn internal(e: impl std::fmt::Display) -> HttpError {
        HttpError(ehrshare_app::AppError::Internal(
            format!("writing records as JSON: {e}").into(),
        ))
    }

    /// Room for `records` and what surrounds them.
    fn buffer<'a>(records: impl Iterator<Item = &'a ListedRecord>) -> Vec<u8> {
        Vec::with_capacity(records.map(|r| r.body.len() + 300).sum::<usize>() + 100)
    }

    /// `sep"key":`, for a key of the fixed set below (none needs escaping).
    fn key(out: &mut Vec<u8>, sep: u8, k: &str) {
        out.push(sep);
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
    }

    fn uuid(out: &mut Vec<u8>, id: &uuid::Uuid) {
        let mut buf = uuid::Uuid::encode_buffer();
        out.push(b'"');
        out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
        out.push(b'"');
    }

    /// A string, escaped as serde_json escapes it.
    fn string(out: &mut Vec<u8>, s: &str) -> Result<(), HttpError> {
        serde_json::to_writer(&mut *out, s).map_err(internal)
    }

    /// An instant as `time`'s RFC 3339 format writes it (what `time::serde::rfc3339` gives),
    /// by hand for the common case, a UTC instant of a four-digit year: `time`'s general
    /// formatter was a visible part of writing a summary (ADR 0013). Anything else goes to
    /// `time`. A test holds the two equal.
    pub(super) fn instant(out: &mut Vec<u8>, t: &time::OffsetDateTime) -> Result<(), HttpError> {
        let year = t.year();
        if !t.offset().is_utc() || !(0..=9999).contains(&year) {
            return t
                .format_into(out, &time::format_description::well_known::Rfc3339)
                .map(|_| ())
                .map_err(internal);
        }
        let digits = |out: &mut Vec<u8>, n: u32, width: u32| {
            for i in (0..width).rev() {
                out.push(b'0' + u8::try_from(n / 10_u32.pow(i) % 10).unwrap_or(0));
            }
        };
        digits(out, year.unsigned_abs(), 4);
        out.push(b'-');
        digits(out, u32::from(u8::from(t.month())), 2);
        out.push(b'-');
        digits(out, u32::from(t.day()), 2);
        out.push(b'T');
        digits(out, u32::from(t.hour()), 2);
        out.push(b':');
        digits(out, u32::from(t.minute()), 2);
        out.push(b':');
        digits(out, u32::from(t.second()), 2);
        let nanos = t.nanosecond();
        if nanos != 0 {
            // As `time` writes them: nine digits less the trailing zeros.
            let mut width = 9;
            let mut n = nanos;
            while n.is_multiple_of(10) {
                n /= 10;
                width -= 1;
            }
            out.push(b'.');
            digits(out, n, width);
        }
        out.push(b'Z');
        Ok(())
    }

    /// An integer, as serde_json writes it.
    pub(super) fn integer(out: &mut Vec<u8>, n: i64) {
        let mut buf = [0u8; 20];
        let mut at = buf.len();
        let mut m = n.unsigned_abs();
        loop {
            at -= 1;
            buf[at] = b'0' + u8::try_from(m % 10).unwrap_or(0);
            m /= 10;
            if m == 0 {
                break;
            }
        }
        if n < 0 {
            out.push(b'-');
        }
        out.extend_from_slice(&buf[at..]);
    }

    /// What the records of one answer share: their recipient's id, encoded once.
    struct Shared {
        recipient: uuid::Uuid,
        encoded: Vec<u8>,
    }

    impl Shared {
        fn new(recipient: uuid::Uuid) -> Shared {
            let mut encoded = Vec::with_capacity(38);
            uuid(&mut encoded, &recipient);
            Shared { recipient, encoded }
        }
    }

    /// One record, as [`super::RecordView`] serialises.
    fn record(out: &mut Vec<u8>, shared: &Shared, r: &ListedRecord) -> Result<(), HttpError> {
        key(out, b'{', "id");
        uuid(out, &r.id);
        key(out, b',', "recipient");
        if r.recipient_id == shared.recipient {
            out.extend_from_slice(&shared.encoded);
        } else {
            uuid(out, &r.recipient_id);
        }
        key(out, b',', "domain");
        // A code of core's closed list: lower-case letters and hyphens, nothing to escape.
        out.push(b'"');
        out.extend_from_slice(r.domain.code().as_bytes());
        out.push(b'"');
        key(out, b',', "resource_type");
        string(out, &r.resource_type)?;
        key(out, b',', "source_hcp");
        uuid(out, &r.source_hcp);
        key(out, b',', "version");
        integer(out, r.version);
        key(out, b',', "updated_at");
        out.push(b'"');
        instant(out, &r.updated_at)?;
        out.push(b'"');
        key(out, b',', "resource");
        out.extend_from_slice(r.body.as_bytes());
        out.push(b'}');
        Ok(())
    }

    /// A JSON array of records.
    fn records<'a>(
        out: &mut Vec<u8>,
        shared: &Shared,
        records: impl IntoIterator<Item = &'a ListedRecord>,
    ) -> Result<(), HttpError> {
        out.push(b'[');
        for (i, r) in records.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            record(out, shared, r)?;
        }
        out.push(b']');
        Ok(())
    }

    /// A summary, as [`super::SummaryView`] serialises.
    pub(super) fn summary(s: &Summary) -> Result<Vec<u8>, HttpError> {
        let mut out = buffer(s.domains.values().flatten());
        let shared = Shared::new(s.recipient);
        key(&mut out, b'{', "recipient");
        out.extend_from_slice(&shared.encoded);
        key(&mut out, b',', "domains");
        out.push(b'[');
        for (i, (d, rs)) in s.domains.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            key(&mut out, b'{', "domain");
            string(&mut out, d.code())?;
            key(&mut out, b',', "records");
            records(&mut out, &shared, rs)?;
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    /// A domain's page, as [`super::RecordPage`] serialises.
    pub(super) fn page(
        domain: Domain,
        page: usize,
        per_page: usize,
        s: &Summary,
    ) -> Result<Vec<u8>, HttpError> {
        let mut out = buffer(s.domains.values().flatten());
        key(&mut out, b'{', "domain");
        string(&mut out, domain.code())?;
        for (k, n) in [("page", page), ("per_page", per_page), ("total", s.total)] {
            key(&mut out, b',', k);
            write!(out, "{n}").map_err(internal)?;
        }
        key(&mut out, b',', "records");
        records(
            &mut out,
            &Shared::new(s.recipient),
            s.domains.values().flatten(),
        )?;
        out.push(b'}');
        Ok(out)
    }

    /// A `200 application/json` answer of `body`.
    pub(super) fn response(body: Vec<u8>) -> axum::response::Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    }
}

fn record_view(r: Record) -> RecordView {
    RecordView {
        resource: serde_json::value::RawValue::from_string(r.body)
            .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        id: r.id,
        recipient: r.recipient_id,
        domain: r.domain,
        resource_type: r.resource_type,
        source_hcp: r.source_hcp,
        version: r.version,
        updated_at: r.updated_at,
    }
}

/// `POST /api/v1/recipients/{id}/records`: deposit a FHIR R4 resource (idempotent on the
/// provider's resource id; changed content is a new version). Without an `id` the server
/// assigns one; an `Idempotency-Key` makes a retry create nothing new.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/records", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id"),
           ("Idempotency-Key" = Option<String>, Header, description = "The client's key for this deposit (1 to 200 visible ASCII characters, unique per provider): a retry with the same key and the same content gets the first answer and creates nothing; the same key with other content is 409 `idempotency-key-reused`")),
    request_body(content = Object, description = "A FHIR R4 resource of a shared type, validated against the published R4 definitions (ADR 0011); numbers keep their text; a key twice in one object is refused", content_type = "application/fhir+json"),
    responses((status = 201, description = "Deposited; `Location` names the record. A resource without `id` gets a server-assigned id, in the answer's resource", body = RecordView),
              (status = 200, description = "Deposited before, unchanged", body = RecordView),
              (status = 400, description = "`invalid-idempotency-key`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 403, description = "A denial reason (`consent-required`, `no-care-relationship`, ...)", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 409, description = "`source-id-taken`, `idempotency-key-reused` or `changed-meanwhile`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 422, description = "`invalid-resource`, or `subject-mismatch`: each error with its path. Every reference to a patient in the resource (contained resources included) must name the recipient: `Patient/<recipient id>` (or an absolute URL ending so, or `urn:uuid:<recipient id>`), or by the recipient's identity document, `{\"identifier\": {\"system\": \"https://ehrshare.example/fhir/NamingSystem/<type>\", \"value\": <number>}}`, where `<type>` is `hkid`, `hk-birth-certificate`, `macao-id` or `mainland-travel-permit`, or for a passport or other document the type and issuing place (`passport-GB`); a patient or group contained in the resource, a subject given by display alone, and a reference to anything but a Patient in a subject or patient element are refused; a deposited Patient carries that identifier. `invalid-resource` lists at most 100 problems", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn deposit(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    headers: axum::http::HeaderMap,
    ApiJson(text): ApiJson<Box<serde_json::value::RawValue>>,
) -> Result<Response, HttpError> {
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| {
            HttpError(ehrshare_app::AppError::Malformed {
                code: "invalid-idempotency-key",
                message: "Idempotency-Key: visible ASCII characters".to_owned(),
                fields: Vec::new(),
            })
        })?),
        None => None,
    };
    let resource = App::read_resource(text.get().as_bytes())?;
    let d = app
        .deposit_keyed(&session, &caller, id, &resource, key)
        .await?;
    let status = if d.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/api/v1/records/{}", d.record.id);
    Ok((
        status,
        [(axum::http::header::LOCATION, location)],
        Json(record_view(d.record)),
    )
        .into_response())
}

/// What to read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SummaryQuery {
    /// Comma-separated domain codes (default: every domain the role may see).
    #[serde(default)]
    pub domains: Option<String>,
    /// A reason, for access outside a care episode (allowed, audited, alerted).
    #[serde(default)]
    pub reason: Option<String>,
}

/// One domain's records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainView {
    pub domain: String,
    pub records: Vec<RecordView>,
}

/// A recipient's eHR summary as the caller may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryView {
    pub recipient: Uuid,
    pub domains: Vec<DomainView>,
}

/// `GET /api/v1/recipients/{id}/summary`: the eHR summary by domain.
#[utoipa::path(get, path = "/api/v1/recipients/{id}/summary", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id"),
           ("domains" = Option<String>, Query, description = "Comma-separated domain codes"),
           ("reason" = Option<String>, Query, description = "Reason for access outside a care episode")),
    responses((status = 200, description = "What the role may see", body = SummaryView),
              (status = 403, description = "A denial reason", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn summary(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<SummaryQuery>,
) -> Result<Response, HttpError> {
    let mut domains = Vec::new();
    for code in q
        .domains
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        domains.push(ehrshare_core::domain::Domain::parse(code).ok_or_else(|| {
            HttpError(ehrshare_app::AppError::Invalid {
                code: "invalid-domain",
                message: format!("unknown domain {code:?}"),
                fields: Vec::new(),
            })
        })?);
    }
    let s = app
        .summary(&session, &caller, id, &domains, q.reason.as_deref())
        .await?;
    Ok(listed_json::response(listed_json::summary(&s)?))
}

/// `GET /api/v1/records/{id}`: one record (404 unless the caller may see it).
#[utoipa::path(get, path = "/api/v1/records/{id}", tag = "sharing",
    params(("id" = Uuid, Path, description = "Record id"),
           ("reason" = Option<String>, Query, description = "Reason for access outside a care episode")),
    responses((status = 200, description = "The record", body = RecordView),
              (status = 404, description = "Not there, or not for the caller to see", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn record(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<SummaryQuery>,
) -> Result<Json<RecordView>, HttpError> {
    Ok(Json(record_view(
        app.read_record(&session, &caller, id, q.reason.as_deref())
            .await?,
    )))
}

/// What to restrict: one domain or one record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictBody {
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub record: Option<Uuid>,
}

/// A restriction as shown to its recipient.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RestrictionView {
    pub id: Uuid,
    pub domain: Option<String>,
    pub record: Option<Uuid>,
}

/// `POST /api/v1/me/recipients/{id}/restrictions`: put a domain or record under restricted
/// control.
#[utoipa::path(post, path = "/api/v1/me/recipients/{id}/restrictions", tag = "me", request_body = RestrictBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Restricted", body = RestrictionView)))]
pub async fn restrict(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<RestrictBody>,
) -> Result<(StatusCode, Json<RestrictionView>), HttpError> {
    let r = app
        .restrict(&session, &caller, id, body.domain.as_deref(), body.record)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RestrictionView {
            id: r.id,
            domain: r.domain,
            record: r.record_id,
        }),
    ))
}

/// `DELETE /api/v1/me/recipients/{id}/restrictions/{restriction}`: lift it.
#[utoipa::path(delete, path = "/api/v1/me/recipients/{id}/restrictions/{restriction}", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"), ("restriction" = Uuid, Path, description = "Restriction id")),
    responses((status = 204, description = "Lifted")))]
pub async fn lift_restriction(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((id, restriction)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, HttpError> {
    app.lift_restriction(&session, &caller, id, restriction)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why the restricted items are needed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockBody {
    #[schema(max_length = 500)]
    pub reason: String,
}

/// An unlock request waiting for the recipient's code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnlockView {
    pub challenge: Uuid,
}

/// `POST /api/v1/recipients/{id}/unlock`: ask the recipient for a one-time code.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/unlock", tag = "sharing", request_body = UnlockBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 202, description = "A code went to the recipient", body = UnlockView),
              (status = 403, description = "No consent or care episode", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn request_unlock(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<UnlockBody>,
) -> Result<(StatusCode, Json<UnlockView>), HttpError> {
    let challenge = app
        .request_unlock(&session, &caller, id, &body.reason)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(UnlockView { challenge })))
}

/// The recipient's code.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockCodeBody {
    pub challenge: Uuid,
    pub code: String,
}

/// `POST /api/v1/recipients/{id}/unlock/confirm`: unlock with the recipient's code.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/unlock/confirm", tag = "sharing", request_body = UnlockCodeBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 204, description = "Unlocked for this episode, four hours"),
              (status = 422, description = "`wrong-code`", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn confirm_unlock(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<UnlockCodeBody>,
) -> Result<StatusCode, HttpError> {
    app.confirm_unlock(&session, &caller, id, body.challenge, &body.code)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A terminology search.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TermQuery {
    #[serde(default)]
    pub q: String,
}

/// A Chinese medicine term.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TermView {
    /// `herb`, `disease`, `syndrome` or `acupoint`.
    pub kind: String,
    pub system: String,
    pub code: String,
    pub preferred: String,
    pub english: String,
    pub synonyms: Vec<String>,
}

/// `GET /api/v1/terminology/cm?q=`: Chinese medicine terms by any of their names, Chinese or
/// English (at most 20).
#[utoipa::path(get, path = "/api/v1/terminology/cm", tag = "sharing",
    params(("q" = String, Query, description = "A name, synonym, English name or code")),
    responses((status = 200, description = "Matching terms", body = [TermView])))]
pub async fn terminology(
    State(app): State<App>,
    Query(q): Query<TermQuery>,
) -> Json<Vec<TermView>> {
    Json(
        app.settings()
            .terminology
            .search(&q.q, 20)
            .into_iter()
            .map(|t| TermView {
                kind: t.kind.code().to_owned(),
                system: t.kind.system().to_owned(),
                code: t.code.clone(),
                preferred: t.preferred.clone(),
                english: t.english.clone(),
                synonyms: t.synonyms.clone(),
            })
            .collect(),
    )
}

/// A card reader to register.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReaderBody {
    pub location: Uuid,
    /// The reader's Ed25519 public key, 64 hex digits.
    pub public_key: String,
}

/// A registered card reader.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReaderView {
    pub id: Uuid,
    pub location: Uuid,
}

/// `POST /api/v1/providers/{id}/card-readers`: register a smart ID card reader (user
/// administrators).
#[utoipa::path(post, path = "/api/v1/providers/{id}/card-readers", tag = "sharing", request_body = ReaderBody,
    params(("id" = Uuid, Path, description = "Provider id")),
    responses((status = 201, description = "Registered", body = ReaderView)))]
pub async fn register_reader(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ReaderBody>,
) -> Result<(StatusCode, Json<ReaderView>), HttpError> {
    let r = app
        .register_reader(&session, &caller, id, body.location, &body.public_key)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ReaderView {
            id: r.id,
            location: r.location_id,
        }),
    ))
}

/// A card reader's signed assertion, relayed by the counter.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    pub reader: Uuid,
    pub hkid: String,
    pub card_serial: String,
    /// When the card was read (RFC 3339).
    pub time: String,
    pub nonce: String,
    /// Ed25519 over the assertion's message (`ehrshare-card-assertion-v1` lines), base64url.
    pub signature: String,
    /// `one-year` or `indefinite` (default).
    #[serde(default)]
    pub kind: Option<String>,
}

/// `POST /api/v1/consents/card`: consent by smart ID card.
#[utoipa::path(post, path = "/api/v1/consents/card", tag = "sharing", request_body = CardBody,
    responses((status = 201, description = "Given", body = ConsentView),
              (status = 403, description = "`card-assertion-refused` (unknown reader, bad signature, stale, replayed)", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn consent_by_card(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    ApiJson(body): ApiJson<CardBody>,
) -> Result<(StatusCode, Json<ConsentView>), HttpError> {
    let assertion = card_assertion(
        body.reader,
        &body.hkid,
        body.card_serial,
        &body.time,
        body.nonce,
    )?;
    let c = app
        .give_consent_by_card(
            &session,
            &caller,
            assertion,
            &body.signature,
            body.kind.as_deref(),
            None,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(consent_view(c))))
}

/// A card assertion from the body's fields (the HKID as typed or canonical).
pub(crate) fn card_assertion(
    reader: Uuid,
    hkid: &str,
    card_serial: String,
    time: &str,
    nonce: String,
) -> Result<ehrshare_core::consent::CardAssertion, HttpError> {
    let at = OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).map_err(
        |_| {
            HttpError(ehrshare_app::AppError::Invalid {
                code: "invalid-time",
                message: "an RFC 3339 time".to_owned(),
                fields: Vec::new(),
            })
        },
    )?;
    let hkid = ehrshare_core::identity::Hkid::parse(hkid)
        .map(|h| h.as_str().to_owned())
        .unwrap_or_else(|_| hkid.to_owned());
    Ok(ehrshare_core::consent::CardAssertion {
        reader,
        hkid,
        card_serial,
        at,
        nonce,
    })
}

/// An unlock by the recipient's (or an SDM's) smart ID card, read at the provider.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardUnlockBody {
    #[schema(max_length = 500)]
    pub reason: String,
    pub reader: Uuid,
    pub hkid: String,
    pub card_serial: String,
    /// When the card was read (RFC 3339).
    pub time: String,
    pub nonce: String,
    /// Ed25519 over the assertion's message (`ehrshare-card-assertion-v1` lines), base64url.
    pub signature: String,
}

/// `POST /api/v1/recipients/{id}/unlock/card`: unlock with the recipient's smart ID card.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/unlock/card", tag = "sharing", request_body = CardUnlockBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 204, description = "Unlocked for this episode, four hours"),
              (status = 403, description = "`card-assertion-refused` (unknown reader, bad signature, stale, replayed, not the recipient's card), or no consent or care episode", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn unlock_by_card(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<CardUnlockBody>,
) -> Result<StatusCode, HttpError> {
    let assertion = card_assertion(
        body.reader,
        &body.hkid,
        body.card_serial,
        &body.time,
        body.nonce,
    )?;
    app.unlock_by_card(
        &session,
        &caller,
        id,
        &body.reason,
        assertion,
        &body.signature,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Why a record was entered in error.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub reason: String,
}

/// `POST /api/v1/records/{id}/entered-in-error`: the depositing provider withdraws a record
/// (kept with its versions, no longer shown).
#[utoipa::path(post, path = "/api/v1/records/{id}/entered-in-error", tag = "sharing", request_body = ErrorBody,
    params(("id" = Uuid, Path, description = "Record id")),
    responses((status = 200, description = "Withdrawn", body = RecordView),
              (status = 404, description = "Not a current record of the caller's provider", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn entered_in_error(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ErrorBody>,
) -> Result<Json<RecordView>, HttpError> {
    Ok(Json(record_view(
        app.mark_entered_in_error(&session, &caller, id, &body.reason)
            .await?,
    )))
}

/// A consent given over the office's telephone line.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneConsentBody {
    pub hcp: Uuid,
    /// `one-year` or `indefinite` (default).
    #[serde(default)]
    pub kind: Option<String>,
    /// The call's reference in the office's telephone system.
    #[schema(max_length = 100)]
    pub call_ref: String,
}

/// `POST /api/v1/office/recipients/{id}/consents`: the office records a consent given by phone.
#[utoipa::path(post, path = "/api/v1/office/recipients/{id}/consents", tag = "sharing", request_body = PhoneConsentBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Given", body = ConsentView),
              (status = 404, description = "Not a registration officer, or no such provider", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn consent_by_phone(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<PhoneConsentBody>,
) -> Result<(StatusCode, Json<ConsentView>), HttpError> {
    let c = app
        .give_consent_by_phone(
            &session,
            &caller,
            id,
            body.hcp,
            body.kind.as_deref(),
            &body.call_ref,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(consent_view(c))))
}

/// A page of one domain.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageQuery {
    pub domain: String,
    #[serde(default)]
    pub page: usize,
    #[serde(default = "default_per_page")]
    pub per_page: usize,
    #[serde(default)]
    pub reason: Option<String>,
}

fn default_per_page() -> usize {
    20
}

/// A page of a domain's records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordPage {
    pub domain: String,
    pub page: usize,
    pub per_page: usize,
    /// All the records the caller may see in the domain.
    pub total: usize,
    pub records: Vec<RecordView>,
}

/// `GET /api/v1/recipients/{id}/records?domain=&page=&per_page=`: one domain's records, paged.
#[utoipa::path(get, path = "/api/v1/recipients/{id}/records", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id"),
           ("domain" = String, Query, description = "A domain code"),
           ("page" = Option<usize>, Query, description = "From 0"),
           ("per_page" = Option<usize>, Query, description = "1 to 200, default 20")),
    responses((status = 200, description = "The page", body = RecordPage),
              (status = 403, description = "A denial reason", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn domain_records(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<PageQuery>,
) -> Result<Response, HttpError> {
    let domain = ehrshare_core::domain::Domain::parse(&q.domain).ok_or_else(|| {
        HttpError(ehrshare_app::AppError::Invalid {
            code: "invalid-domain",
            message: format!("unknown domain {:?}", q.domain),
            fields: Vec::new(),
        })
    })?;
    let s = app
        .domain_records(
            &session,
            &caller,
            id,
            domain,
            (q.page, q.per_page),
            q.reason.as_deref(),
        )
        .await?;
    let page = listed_json::page(domain, q.page, q.per_page.clamp(1, 200), &s)?;
    Ok(listed_json::response(page))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use ehrshare_app::record::{ListedRecord, Summary};
    use ehrshare_core::domain::Domain;
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;

    fn record(n: u128, domain: Domain, body: &str) -> ListedRecord {
        ListedRecord {
            id: Uuid::from_u128(n),
            recipient_id: Uuid::from_u128(7),
            domain,
            // Not from a closed list in the type: escaped like any string.
            resource_type: format!("Type \"{n}\" \\ \u{1} 中文"),
            source_hcp: Uuid::from_u128(u128::MAX - n),
            version: i64::try_from(n).unwrap() * 1_000_000_007,
            body: body.to_owned(),
            created_at: datetime!(2026-01-15 09:30:00 UTC),
            updated_at: datetime!(2026-01-15 09:30:00.123456 UTC)
                + time::Duration::seconds(i64::try_from(n).unwrap()),
        }
    }

    /// The documented view of a listed record, as serde makes it.
    fn view(r: &ListedRecord) -> RecordView {
        RecordView {
            id: r.id,
            recipient: r.recipient_id,
            domain: r.domain.code().to_owned(),
            resource_type: r.resource_type.clone(),
            source_hcp: r.source_hcp,
            version: r.version,
            updated_at: r.updated_at,
            resource: serde_json::value::RawValue::from_string(r.body.clone()).unwrap(),
        }
    }

    fn summary() -> Summary {
        let mut domains = BTreeMap::new();
        domains.insert(
            Domain::parse("diagnosis").unwrap(),
            vec![
                record(
                    1,
                    Domain::parse("diagnosis").unwrap(),
                    r#"{"resourceType":"Condition","note":[{"text":"\"q\" \u0001 痛"}]}"#,
                ),
                record(
                    2,
                    Domain::parse("diagnosis").unwrap(),
                    r#"{"resourceType":"Condition","id":"x"}"#,
                ),
            ],
        );
        domains.insert(Domain::parse("allergy").unwrap(), Vec::new());
        domains.insert(
            Domain::parse("laboratory").unwrap(),
            vec![record(
                3,
                Domain::parse("laboratory").unwrap(),
                r#"{"resourceType":"Observation","valueQuantity":{"value":5.4}}"#,
            )],
        );
        Summary {
            recipient: Uuid::from_u128(7),
            domains,
            total: 3,
        }
    }

    /// The writer's JSON is what serde makes of the documented types (the OpenAPI schema's).
    #[test]
    fn a_summary_is_written_as_its_view_serialises() {
        let s = summary();
        let bytes = listed_json::summary(&s).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let expected = SummaryView {
            recipient: s.recipient,
            domains: s
                .domains
                .iter()
                .map(|(d, rs)| DomainView {
                    domain: d.code().to_owned(),
                    records: rs.iter().map(view).collect(),
                })
                .collect(),
        };
        assert_eq!(written, serde_json::to_value(&expected).unwrap());
        // Byte for byte, too: the same keys in the same order, the same escapes.
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        assert_eq!(written["domains"].as_array().unwrap().len(), 3);
    }

    /// The hand-written pieces against what they stand in for: `time`'s RFC 3339 for
    /// instants (every trailing-zero width of the fraction, none, the first and last years, an offset),
    /// serde_json for integers, and domain codes that need no escape.
    #[test]
    fn instants_integers_and_codes_are_written_as_serde_writes_them() {
        let base = datetime!(2026-01-15 09:30:05 UTC);
        let mut instants = vec![
            base,
            datetime!(0001-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59.999999999 UTC),
            datetime!(2026-01-15 09:30:05 +08:00),
        ];
        for nanos in [
            1,
            10,
            100,
            120,
            123_000,
            123_456_000,
            500_000_000,
            999_999_999,
        ] {
            instants.push(base + time::Duration::nanoseconds(nanos));
        }
        for t in instants {
            let mut out = Vec::new();
            listed_json::instant(&mut out, &t).unwrap();
            let expected = t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{t}");
        }
        for n in [0_i64, 7, 10, 1_000_000_007, -1, -90, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            listed_json::integer(&mut out, n);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&n).unwrap()
            );
        }
        for d in Domain::ALL {
            assert_eq!(
                serde_json::to_string(d.code()).unwrap(),
                format!("\"{}\"", d.code())
            );
        }
    }

    #[test]
    fn a_page_is_written_as_its_view_serialises() {
        let s = summary();
        let domain = Domain::parse("diagnosis").unwrap();
        let bytes = listed_json::page(domain, 2, 20, &s).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let page = RecordPage {
            domain: "diagnosis".to_owned(),
            page: 2,
            per_page: 20,
            total: 3,
            records: s.domains.values().flatten().map(view).collect(),
        };
        assert_eq!(written, serde_json::to_value(&page).unwrap());
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            serde_json::to_string(&page).unwrap()
        );
    }
}
