//! `POST /fhir`: a `batch` or `transaction` Bundle (R4 http.html#transaction). Its entries are
//! the writes `POST {type}`, `PUT {type}/{id}` and `DELETE {type}/{id}`, with `ifNoneExist`
//! and `ifMatch` as on their own; what they do is `ehrshare_app::fhir_write`'s (a transaction
//! all or none, with its audit entries). A read or a search inside a Bundle (`GET`) is
//! refused: they are their own requests here, each audited as such.
//!
//! The Bundle is checked whole before anything is done: its type, its size, every element it
//! has (an unknown one, or a `modifierExtension`, is refused with its path), each entry's
//! request. A transaction refused answers one OperationOutcome whose expressions name the
//! entry at fault (`Bundle.entry[3].resource.code`); a batch answers each entry on its own.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ehrshare_app::fhir_write::{BundleEntry, MAX_ENTRIES, WriteRequest, Written};
use ehrshare_app::{App, AppError};
use ehrshare_fhir::bundle::EntryResponse;
use ehrshare_fhir::capability::TypeInteraction;
use serde_json::{Map, Value};

use super::format::{FhirJson, bad_parameter, fhir_json};
use super::served::{FhirBase, serves};
use super::write::{Return, etag_version, location, own_id_in, preference};
use crate::api::json::ApiJson;
use crate::error::{HttpError, Problem, fhir_outcome};
use crate::session::LoggedIn;

/// The elements R4 gives a Bundle, an entry and its request.
const BUNDLE_ELEMENTS: &[&str] = &[
    ehrshare_fhir::resource::TYPE_ELEMENT,
    "id",
    "meta",
    "implicitRules",
    "language",
    "identifier",
    "type",
    "timestamp",
    "total",
    "link",
    "entry",
    "signature",
];
const ENTRY_ELEMENTS: &[&str] = &[
    "id",
    "extension",
    "link",
    "fullUrl",
    "resource",
    "search",
    "request",
    "response",
];
const REQUEST_ELEMENTS: &[&str] = &[
    "id",
    "extension",
    "method",
    "url",
    "ifNoneMatch",
    "ifModifiedSince",
    "ifMatch",
    "ifNoneExist",
];

/// `POST /fhir`.
pub async fn post(
    State(app): State<App>,
    Extension(base): Extension<FhirBase>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    headers: HeaderMap,
    ApiJson(text): ApiJson<Box<serde_json::value::RawValue>>,
) -> Result<Response, HttpError> {
    let bundle = App::read_resource(text.get().as_bytes())?;
    if ehrshare_fhir::resource::type_of(&bundle) != Some("Bundle") {
        return Err(bad_parameter(
            ehrshare_fhir::resource::TYPE_ELEMENT,
            "resource-type-mismatch",
            "a batch or a transaction is posted to the base as a Bundle",
        )
        .into());
    }
    let object = bundle.as_object().cloned().unwrap_or_default();
    only_elements(&object, BUNDLE_ELEMENTS, "Bundle")?;
    let transaction = match object.get("type").and_then(Value::as_str) {
        Some("transaction") => true,
        Some("batch") => false,
        _ => {
            return Err(bad_parameter(
                "Bundle.type",
                "unsupported-bundle-type",
                "transaction or batch",
            )
            .into());
        }
    };
    let entries = match object.get("entry") {
        None => Vec::new(),
        Some(Value::Array(entries)) if entries.len() <= MAX_ENTRIES => entries.clone(),
        Some(Value::Array(_)) => {
            return Err(bad_parameter(
                "Bundle.entry",
                "too-many-entries",
                &format!("at most {MAX_ENTRIES} entries in one Bundle"),
            )
            .into());
        }
        Some(_) => {
            return Err(bad_parameter("Bundle.entry", "invalid-value", "a list of entries").into());
        }
    };
    let want = preference(&headers);
    if transaction {
        let mut parsed = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            parsed.push(
                entry_of(&app, &session, &base, entry, i)
                    .await
                    .map_err(|e| at_entry(i, e))?,
            );
        }
        let done = app
            .fhir_transaction(&session, &caller, parsed)
            .await
            .map_err(|refused| at_entry(refused.index, refused.error))?;
        let answers = done.iter().map(|w| answer(&base, want, w)).collect();
        Ok(reply(true, answers))
    } else {
        let mut answers = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let result = match entry_of(&app, &session, &base, entry, i).await {
                Ok(entry) => app.fhir_write(&session, &caller, entry.request).await,
                Err(e) => Err(e),
            };
            answers.push(match result {
                Ok(w) => answer(&base, want, &w),
                Err(e) => failed(&at_entry(i, e)),
            });
        }
        Ok(reply(false, answers))
    }
}

pub(super) fn reply(transaction: bool, answers: Vec<EntryResponse>) -> Response {
    let body = ehrshare_fhir::bundle::response(transaction, answers);
    fhir_json(StatusCode::OK, body.to_string())
}

/// Refuses any element of `object` not in `allowed` (and any `modifierExtension`: an
/// extension that changes the meaning, which this server does not know).
fn only_elements(
    object: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
) -> Result<(), AppError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(bad_parameter(
            &format!("{path}.{k}"),
            "unknown-element",
            "not an element this server knows here",
        )),
    }
}

/// One entry as a write.
pub(super) async fn entry_of(
    app: &App,
    session: &ehrshare_app::auth::Session,
    base: &FhirBase,
    entry: &Value,
    i: usize,
) -> Result<BundleEntry, AppError> {
    let path = format!("Bundle.entry[{i}]");
    let entry = entry
        .as_object()
        .ok_or_else(|| bad_parameter(&path, "invalid-value", "an entry is an object"))?;
    only_elements(entry, ENTRY_ELEMENTS, &path)?;
    let full_url = match entry.get("fullUrl") {
        None => None,
        Some(Value::String(u)) if !u.is_empty() && u.len() <= 2048 => Some(u.clone()),
        Some(_) => {
            return Err(bad_parameter(
                &format!("{path}.fullUrl"),
                "invalid-value",
                "a URI",
            ));
        }
    };
    let request = entry
        .get("request")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            bad_parameter(
                &format!("{path}.request"),
                "required",
                "each entry says what to do with it",
            )
        })?;
    only_elements(request, REQUEST_ELEMENTS, &format!("{path}.request"))?;
    let field = |name: &str| request.get(name).and_then(Value::as_str);
    for unsupported in ["ifNoneMatch", "ifModifiedSince"] {
        if request.contains_key(unsupported) {
            return Err(bad_parameter(
                &format!("{path}.request.{unsupported}"),
                "unsupported-condition",
                "conditions of reads; a Bundle here holds writes",
            ));
        }
    }
    let url = field("url").ok_or_else(|| {
        bad_parameter(&format!("{path}.request.url"), "required", "a relative URL")
    })?;
    // A URL may be absolute on this server's base; it is read relative to it.
    let relative = url
        .strip_prefix(&base.url)
        .map_or(url, |r| r.trim_start_matches('/'));
    let bad_url =
        |message: &str| bad_parameter(&format!("{path}.request.url"), "invalid-url", message);
    if relative.contains('?') {
        return Err(bad_url(
            "conditional URLs are not supported: name the resource, or use ifNoneExist",
        ));
    }
    let parts: Vec<&str> = relative.split('/').collect();
    let resource = entry.get("resource");
    let resource_of = |resource_type: &str| -> Result<Value, AppError> {
        let resource = resource.cloned().ok_or_else(|| {
            bad_parameter(
                &format!("{path}.resource"),
                "required",
                "a POST or a PUT carries its resource",
            )
        })?;
        if ehrshare_fhir::resource::type_of(&resource) != Some(resource_type) {
            return Err(bad_parameter(
                &format!("{path}.resource.resourceType"),
                "resource-type-mismatch",
                &format!("the URL names a {resource_type}"),
            ));
        }
        Ok(resource)
    };
    // A Patient in a Bundle is the demographics a provider deposits for a registered person
    // (ADR 0014); no other interaction creates or changes a Patient.
    let writes = |resource_type: &str, interaction: TypeInteraction| {
        serves(resource_type, interaction)
            || (resource_type == "Patient"
                && matches!(
                    interaction,
                    TypeInteraction::Create | TypeInteraction::Update
                ))
    };
    let request = match (field("method"), parts.as_slice()) {
        (Some("POST"), [resource_type]) if writes(resource_type, TypeInteraction::Create) => {
            let own_id = match field("ifNoneExist") {
                Some(condition) => Some(own_id_in(app, session, condition).await.map_err(
                    |_| {
                        bad_parameter(
                            &format!("{path}.request.ifNoneExist"),
                            "unsupported-condition",
                            "the one condition supported is identifier=<your provider's id system>|<your id>",
                        )
                    },
                )?),
                None => None,
            };
            WriteRequest::Create {
                resource: resource_of(resource_type)?,
                own_id,
            }
        }
        (Some("PUT"), [resource_type, id]) if writes(resource_type, TypeInteraction::Update) => {
            let expected_version = field("ifMatch")
                .map(|t| etag_version(t, &format!("{path}.request.ifMatch")))
                .transpose()?;
            WriteRequest::Update {
                id: (*id).to_owned(),
                resource: resource_of(resource_type)?,
                expected_version,
            }
        }
        (Some("DELETE"), [resource_type, id]) if serves(resource_type, TypeInteraction::Delete) => {
            if resource.is_some() {
                return Err(bad_parameter(
                    &format!("{path}.resource"),
                    "unexpected-resource",
                    "a DELETE carries no resource",
                ));
            }
            WriteRequest::Delete {
                resource_type: (*resource_type).to_owned(),
                id: (*id).to_owned(),
            }
        }
        (Some("POST" | "PUT" | "DELETE"), _) => {
            return Err(bad_url("not a type and an id this server writes"));
        }
        (Some("GET" | "HEAD" | "PATCH"), _) => {
            return Err(bad_parameter(
                &format!("{path}.request.method"),
                "unsupported-method",
                "a Bundle here holds POST, PUT and DELETE; send a read or a search on its own",
            ));
        }
        _ => {
            return Err(bad_parameter(
                &format!("{path}.request.method"),
                "invalid-value",
                "POST, PUT or DELETE",
            ));
        }
    };
    Ok(BundleEntry { full_url, request })
}

/// An entry's error, its paths placed in the Bundle: a resource's own
/// (`Condition.code`) under `Bundle.entry[i].resource`, a request's under the entry.
pub(super) fn at_entry(i: usize, error: AppError) -> AppError {
    let place = |fields: Vec<ehrshare_app::error::FieldError>| {
        fields
            .into_iter()
            .map(|mut f| {
                let prefix = format!("Bundle.entry[{i}]");
                f.field = if f.field.starts_with("Bundle.") {
                    f.field
                } else {
                    match f.field.split_once('.') {
                        Some((head, rest)) if head.starts_with(char::is_uppercase) => {
                            format!("{prefix}.resource.{rest}")
                        }
                        _ if f.field.starts_with(char::is_uppercase) => {
                            format!("{prefix}.resource")
                        }
                        _ => format!("{prefix}.{}", f.field),
                    }
                };
                f
            })
            .collect::<Vec<_>>()
    };
    match error {
        AppError::Malformed {
            code,
            message,
            fields,
        } => AppError::Malformed {
            code,
            message,
            fields: place(fields),
        },
        AppError::Invalid {
            code,
            message,
            fields,
        } => AppError::Invalid {
            code,
            message,
            fields: place(fields),
        },
        other => other,
    }
}

/// A write done, as its entry's response.
pub(super) fn answer(base: &FhirBase, want: Return, w: &Written) -> EntryResponse {
    match w {
        Written::Stored { record, created } => EntryResponse {
            status: if *created { "201 Created" } else { "200 OK" }.to_owned(),
            location: Some(location(base, record)),
            etag: Some(ehrshare_fhir::served::etag(record.version)),
            last_modified: Some(ehrshare_fhir::served::instant(record.updated_at)),
            // A Patient's demographics are not served as a resource of their own.
            resource: match want {
                Return::Representation if record.resource_type != "Patient" => {
                    super::instance::resource(record).ok().map(|r| {
                        (
                            format!("{}/{}/{}", base.url, record.resource_type, record.id),
                            r,
                        )
                    })
                }
                _ => None,
            },
            outcome: None,
        },
        Written::Exists(record) => EntryResponse {
            status: "200 OK".to_owned(),
            location: Some(location(base, record)),
            etag: Some(ehrshare_fhir::served::etag(record.version)),
            last_modified: Some(ehrshare_fhir::served::instant(record.updated_at)),
            resource: None,
            outcome: None,
        },
        Written::Deleted => EntryResponse {
            status: "204 No Content".to_owned(),
            location: None,
            etag: None,
            last_modified: None,
            resource: None,
            outcome: None,
        },
    }
}

/// A batch entry refused: its status and OperationOutcome.
pub(super) fn failed(error: &AppError) -> EntryResponse {
    match error {
        AppError::Internal(cause) => tracing::error!(error = %cause, "internal error in a batch"),
        AppError::Unavailable(cause) => tracing::warn!(error = %cause, "store unavailable"),
        _ => {}
    }
    let problem = Problem::from_app_error(error);
    let outcome = fhir_outcome(&problem, None);
    EntryResponse {
        status: format!(
            "{} {}",
            problem.status.as_u16(),
            problem.status.canonical_reason().unwrap_or_default()
        ),
        location: None,
        etag: None,
        last_modified: None,
        resource: None,
        outcome: serde_json::to_value(outcome).ok(),
    }
}
