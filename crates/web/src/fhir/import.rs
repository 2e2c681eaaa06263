//! `POST /fhir/$import` (ADR 0025): a clinic's or a hospital's history as NDJSON, one resource
//! a line, in requests of at most `MAX_ENTRIES` lines. Each line is the write the batch entry
//! `PUT {type}/{id}` would be, by the provider's own id (update-as-create), a resource without
//! an id given one derived from its content (as `ehrshare connect` does), so that sending a
//! file again, or retrying after a timeout, stores nothing twice. Each line is read (duplicate
//! keys, bad UTF-8 and unknown elements refused with their paths), decided and audited on its
//! own, and the accepted ones are committed together (`App::fhir_import`). A refused line
//! costs no other line, and its paths are the resource's own (`Observation.code`). The answer is a `batch-response` Bundle whose entry `i` answers line
//! `i + 1`, `200 OK` however many lines were refused; `Prefer: return=minimal` unless the
//! client asks for more.
//!
//! This is not FHIR Bulk Data's `$import`, whose server fetches files from URLs the client
//! names (a server-side fetch ADR 0015 refuses): the lines come in the request.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use ehrshare_app::fhir_write::MAX_ENTRIES;
use ehrshare_app::{App, AppError};
use serde_json::{Value, json};

use super::bundle::{answer, entry_of, failed, reply};
use super::format::{FhirJson, bad_parameter};
use super::served::FhirBase;
use super::write::preference;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// The media types an import's body may be sent as.
const NDJSON: &[&str] = &[
    "application/fhir+ndjson",
    "application/ndjson",
    "application/x-ndjson",
];

/// `POST /fhir/$import`.
pub async fn post(
    State(app): State<App>,
    Extension(base): Extension<FhirBase>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !NDJSON.contains(&media.as_str()) {
        return Err(AppError::UnsupportedMedia {
            message: "an import is NDJSON: application/fhir+ndjson, one resource a line".to_owned(),
        }
        .into());
    }
    let lines = lines_of(&body);
    if lines.len() > MAX_ENTRIES {
        return Err(bad_parameter(
            "body",
            "too-many-lines",
            &format!("at most {MAX_ENTRIES} lines in one import request"),
        )
        .into());
    }
    let mut requests = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let request = match entry_for(line) {
            Ok(entry) => entry_of(&app, &session, &base, &entry, i)
                .await
                .map(|e| e.request),
            Err(e) => Err(e),
        };
        requests.push(request);
    }
    // A thousand resources echoed back are rarely wanted: minimal unless asked.
    let want = if headers.contains_key("prefer") {
        preference(&headers)
    } else {
        super::write::Return::Minimal
    };
    let answers = app
        .fhir_import(&session, &caller, requests)
        .await
        .into_iter()
        .map(|result| match result {
            Ok(w) => answer(&base, want, &w),
            // A refusal's paths stay the resource's own (`Observation.code`): the entry
            // already says which line.
            Err(e) => failed(&e),
        })
        .collect();
    Ok(reply(false, answers))
}

/// The body's lines: split at each LF (a CR before it dropped); the empty text after a final
/// newline is no line.
fn lines_of(body: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// A line as the batch entry it stands for.
fn entry_for(line: &[u8]) -> Result<Value, AppError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_parameter("line", "empty-line", "one resource a line"));
    }
    let not_json = || {
        bad_parameter(
            "line",
            "not-json",
            "not JSON text in UTF-8: one resource a line",
        )
    };
    // UTF-8 first: ignoring a string's content, serde does not look at its bytes.
    if std::str::from_utf8(line).is_err() {
        return Err(not_json());
    }
    // Read once; only a line that fails is read again, to tell text that is not JSON from
    // JSON that is not a resource (a key twice, say).
    let resource = match App::read_resource(line) {
        Ok(resource) => resource,
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_err() => {
            return Err(not_json());
        }
        Err(e) => return Err(e),
    };
    let Some(resource_type) = ehrshare_fhir::resource::type_of(&resource).map(str::to_owned) else {
        return Err(bad_parameter(
            ehrshare_fhir::resource::TYPE_ELEMENT,
            "required",
            "each line is a resource with its resourceType",
        ));
    };
    let mut resource = resource;
    let request = match resource.get("id") {
        Some(Value::String(id)) => json!({"method": "PUT", "url": format!("{resource_type}/{id}")}),
        None => {
            let id = ehrshare_fhir::export::derived_id(&resource_type, &resource);
            resource["id"] = Value::String(id.clone());
            json!({"method": "PUT", "url": format!("{resource_type}/{id}")})
        }
        Some(_) => {
            return Err(bad_parameter(
                &format!("{resource_type}.id"),
                "invalid-id",
                "an id is a string",
            ));
        }
    };
    Ok(json!({"resource": resource, "request": request}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_lf_with_crlf_and_a_final_newline() {
        assert_eq!(lines_of(b"a\nb\r\nc\n"), vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(lines_of(b"a\n\nb"), vec![&b"a"[..], b"", b"b"]);
        assert!(lines_of(b"").is_empty());
        assert_eq!(lines_of(b"\n"), vec![&b""[..]]);
    }
}
