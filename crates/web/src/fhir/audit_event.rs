//! `GET /fhir/AuditEvent?...` and `GET /fhir/AuditEvent/{seq}`: the caller's provider's users'
//! audit entries as `AuditEvent`s (issue 25, item 5), for its user administrators, as the
//! provider's access log shows them (`App::provider_audit_search`). Search by `patient`,
//! `date` (when recorded; `eq`, `ge`, `gt`, `le`, `lt`, `sa`, `eb`) and `agent` (the acting
//! account: its id, or `{type}/{id}`), newest first, paged by `_count` and `_offset`.

use ehrshare_app::access_log::AuditSearch;
use ehrshare_app::{App, AppError};
use ehrshare_core::search::{DateParam, Prefix};
use ehrshare_fhir::bundle::searchset;
use time::OffsetDateTime;

use super::format::{bad_parameter, fhir_json, server_id};
use super::page::{DEFAULT_COUNT, MAX_COUNT, page_links, patient_id};
use super::served::FhirBase;
use crate::error::HttpError;
use axum::http::StatusCode;
use axum::response::Response;

fn resource(
    entry: &ehrshare_core::audit::AuditEntry,
) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(ehrshare_fhir::audit_event::to_audit_event(entry)) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// `read`.
pub async fn read(
    app: &App,
    session: &ehrshare_app::auth::Session,
    id: &str,
) -> Result<Response, HttpError> {
    // An id is a sequence number, written as R4 ids are: digits, no sign, no leading zero.
    let seq = id
        .parse::<u64>()
        .ok()
        .filter(|n| n.to_string() == id)
        .ok_or(AppError::NotFound)?;
    let entry = app.provider_audit_entry(session, seq).await?;
    Ok(fhir_json(
        StatusCode::OK,
        serde_json::Value::Object(resource(&entry)).to_string(),
    ))
}

/// `search-type`.
pub async fn search(
    app: &App,
    base: &FhirBase,
    session: &ehrshare_app::auth::Session,
    params: &[(String, String)],
) -> Result<Response, HttpError> {
    let mut s = AuditSearch::default();
    let (mut count, mut offset) = (DEFAULT_COUNT, 0usize);
    let mut nobody = false;
    let tighten = |from: &mut Option<OffsetDateTime>, at: OffsetDateTime| {
        *from = Some(from.map_or(at, |f| f.max(at)));
    };
    for (name, value) in params {
        match name.as_str() {
            "patient" => match patient_id(base, value) {
                Some(id) if s.recipient.is_none_or(|r| r == id) => s.recipient = Some(id),
                Some(_) => {
                    return Err(
                        bad_parameter(name, "one-patient", "a search names one patient").into(),
                    );
                }
                None => nobody = true,
            },
            "agent" => {
                let id = value.rsplit('/').next().unwrap_or(value);
                match server_id(id) {
                    Some(a) if s.account.is_none_or(|b| b == a) => s.account = Some(a),
                    _ => nobody = true,
                }
            }
            "date" => {
                let d = DateParam::parse(value)
                    .map_err(|e| bad_parameter(name, "invalid-search-value", &e.to_string()))?;
                match d.prefix {
                    Prefix::Eq => {
                        tighten(&mut s.from, d.low);
                        s.to = Some(s.to.map_or(d.high, |t| t.min(d.high)));
                    }
                    Prefix::Ge => tighten(&mut s.from, d.low),
                    Prefix::Gt | Prefix::Sa => tighten(&mut s.from, d.high),
                    Prefix::Le => s.to = Some(s.to.map_or(d.high, |t| t.min(d.high))),
                    Prefix::Lt | Prefix::Eb => s.to = Some(s.to.map_or(d.low, |t| t.min(d.low))),
                    Prefix::Ne => {
                        return Err(bad_parameter(
                            name,
                            "unsupported-prefix",
                            "eq, ge, gt, le, lt, sa or eb",
                        )
                        .into());
                    }
                }
            }
            "_count" => {
                count = value
                    .parse::<usize>()
                    .map_err(|_| bad_parameter(name, "invalid-search-value", "a whole number"))?
                    .min(MAX_COUNT);
            }
            "_offset" => {
                offset = value
                    .parse::<usize>()
                    .map_err(|_| bad_parameter(name, "invalid-search-value", "a whole number"))?;
            }
            "_format" | "_pretty" => {}
            other => {
                return Err(bad_parameter(
                    other,
                    "unknown-search-parameter",
                    "not a search parameter of this type here (see /fhir/metadata)",
                )
                .into());
            }
        }
    }
    s.offset = offset as u64;
    s.limit = u32::try_from(count).unwrap_or(u32::MAX);
    // The caller is checked even when nothing can match, so that a refusal is one answer.
    let (total, entries) = app.provider_audit_search(session, s).await?;
    let (total, entries) = if nobody {
        (0, Vec::new())
    } else {
        (usize::try_from(total).unwrap_or(usize::MAX), entries)
    };
    let links = page_links(base, "AuditEvent", params, count, offset, total);
    let matches = entries
        .iter()
        .map(|e| (format!("{}/AuditEvent/{}", base.url, e.seq), resource(e)))
        .collect();
    Ok(fhir_json(
        StatusCode::OK,
        searchset(total, &links, matches).to_string(),
    ))
}
