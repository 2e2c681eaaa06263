//! A clinic system's export as the transaction `ehrshare connect` sends (issue 25, item 7).
//!
//! An export is a resource, or a Bundle (`collection`, `transaction` or `batch`) of them, as a
//! clinic's own system writes it: its ids are the clinic's, and its references point at each
//! other by those ids (`Patient/chart-77`) or by `urn:uuid` fullUrls. The transaction made of
//! it can be sent any number of times and stores each resource once:
//! - every entry is `PUT {type}/{the clinic's id}` (update-as-create by the provider's own id:
//!   the same content again changes nothing); a resource without an id gets one derived from
//!   its content, so the same resource exported twice is one record;
//! - every entry has a `urn:uuid` fullUrl (its own, or one derived from its type and id), and
//!   each reference to another entry of the export is made to point at it, so that the server
//!   resolves it (a Patient entry to the registered person its identity document names).

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::resource::{TYPE_ELEMENT, type_of};

/// Most resources in one export: what one transaction may hold.
pub const MAX_RESOURCES: usize = 1000;

/// Why an export cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("not a FHIR resource or Bundle (no resourceType)")]
    NotFhir,
    #[error("a Bundle of type {0:?}: collection, transaction or batch")]
    BundleType(String),
    #[error("entry {0} has no resource")]
    NoResource(usize),
    #[error("nothing to send")]
    Empty,
    #[error("more than {MAX_RESOURCES} resources: split the export")]
    TooMany,
}

/// The id a resource without one is given: derived from its type and content, so that the
/// same resource sent twice is one record (`ehrshare connect`, `POST /fhir/$import`).
pub fn derived_id(resource_type: &str, resource: &Value) -> String {
    derived_uuid(&[resource_type.as_bytes(), resource.to_string().as_bytes()])
}

/// The first 16 bytes of SHA-256 over `parts`, as a UUID's text (version 8: custom).
fn derived_uuid(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).hyphenated().to_string()
}

/// The transaction Bundle that deposits `export`.
pub fn transaction_of(export: &Value) -> Result<Value, ExportError> {
    let kind = type_of(export).ok_or(ExportError::NotFhir)?;
    let mut entries: Vec<(Option<String>, Map<String, Value>)> = Vec::new();
    if kind == "Bundle" {
        let bundle_type = export.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(bundle_type, "collection" | "transaction" | "batch") {
            return Err(ExportError::BundleType(bundle_type.to_owned()));
        }
        let list = export
            .get("entry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, entry) in list.iter().enumerate() {
            let resource = entry
                .get("resource")
                .and_then(Value::as_object)
                .filter(|r| r.get(TYPE_ELEMENT).is_some_and(Value::is_string))
                .ok_or(ExportError::NoResource(i))?;
            let full_url = entry
                .get("fullUrl")
                .and_then(Value::as_str)
                .map(str::to_owned);
            entries.push((full_url, resource.clone()));
        }
    } else {
        let resource = export.as_object().ok_or(ExportError::NotFhir)?;
        entries.push((None, resource.clone()));
    }
    if entries.is_empty() {
        return Err(ExportError::Empty);
    }
    if entries.len() > MAX_RESOURCES {
        return Err(ExportError::TooMany);
    }
    // Ids, and what each entry may be referred to by.
    let mut aliases: Vec<(String, String)> = Vec::new();
    let mut out: Vec<(String, Map<String, Value>)> = Vec::with_capacity(entries.len());
    for (full_url, mut resource) in entries {
        let resource_type = resource
            .get(TYPE_ELEMENT)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let id = match resource.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                let id = derived_id(&resource_type, &Value::Object(resource.clone()));
                resource.insert("id".to_owned(), Value::String(id.clone()));
                id
            }
        };
        let local = format!("{resource_type}/{id}");
        let urn = match &full_url {
            Some(u) if u.starts_with("urn:uuid:") => u.clone(),
            _ => format!("urn:uuid:{}", derived_uuid(&[b"fullUrl", local.as_bytes()])),
        };
        if let Some(u) = full_url.filter(|u| *u != urn) {
            aliases.push((u, urn.clone()));
        }
        aliases.push((local, urn.clone()));
        out.push((urn, resource));
    }
    let resolved: std::collections::HashMap<String, String> = aliases.into_iter().collect();
    let entry: Vec<Value> = out
        .into_iter()
        .map(|(urn, resource)| {
            let mut resource = Value::Object(resource);
            point_at_entries(&mut resource, &resolved);
            let url = format!(
                "{}/{}",
                type_of(&resource).unwrap_or_default(),
                resource
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
            json!({"fullUrl": urn, "resource": resource,
                   "request": {"method": "PUT", "url": url}})
        })
        .collect();
    let mut bundle = json!({"type": "transaction", "entry": entry});
    bundle[TYPE_ELEMENT] = json!("Bundle");
    Ok(bundle)
}

/// Points every `reference` naming an entry (by its type and id, or its original fullUrl) at
/// the entry's `urn:uuid`.
fn point_at_entries(value: &mut Value, resolved: &std::collections::HashMap<String, String>) {
    match value {
        Value::Object(obj) => {
            for (key, child) in obj.iter_mut() {
                match child {
                    Value::String(text) if key == "reference" => {
                        if let Some(urn) = resolved.get(text.as_str()) {
                            *text = urn.clone();
                        }
                    }
                    _ => point_at_entries(child, resolved),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| point_at_entries(i, resolved)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(kind: &str, mut v: Value) -> Value {
        v[TYPE_ELEMENT] = json!(kind);
        v
    }

    #[test]
    fn a_clinics_references_point_at_the_entries_and_every_entry_is_a_put() {
        let export = typed(
            "Bundle",
            json!({"type": "collection", "entry": [
                {"resource": typed("Patient", json!({"id": "chart-77"}))},
                {"fullUrl": "http://clinic.example/Encounter/v1",
                 "resource": typed("Encounter", json!({"id": "v1", "subject": {"reference": "Patient/chart-77"}}))},
                {"resource": typed("Condition", json!({
                    "subject": {"reference": "Patient/chart-77"},
                    "encounter": {"reference": "http://clinic.example/Encounter/v1"},
                    "note": [{"text": "Patient/chart-77"}]}))}
            ]}),
        );
        let t = transaction_of(&export).unwrap();
        assert_eq!(t["type"], "transaction");
        let e = t["entry"].as_array().unwrap();
        let patient = e[0]["fullUrl"].as_str().unwrap();
        assert!(patient.starts_with("urn:uuid:"));
        assert_eq!(
            e[0]["request"],
            json!({"method": "PUT", "url": "Patient/chart-77"})
        );
        assert_eq!(e[1]["resource"]["subject"]["reference"], patient);
        assert_eq!(e[2]["resource"]["subject"]["reference"], patient);
        assert_eq!(e[2]["resource"]["encounter"]["reference"], e[1]["fullUrl"]);
        assert_eq!(e[2]["resource"]["note"][0]["text"], "Patient/chart-77");
        // The Condition had no id: it gets one from its content, the same every time.
        let id = e[2]["resource"]["id"].as_str().unwrap().to_owned();
        assert_eq!(e[2]["request"]["url"], format!("Condition/{id}"));
        assert_eq!(
            transaction_of(&export).unwrap(),
            t,
            "the same export, the same transaction"
        );
    }

    #[test]
    fn what_is_not_an_export_is_said() {
        assert_eq!(
            transaction_of(&json!({"id": "x"})),
            Err(ExportError::NotFhir)
        );
        assert_eq!(
            transaction_of(&typed("Bundle", json!({"type": "searchset"}))),
            Err(ExportError::BundleType("searchset".into()))
        );
        assert_eq!(
            transaction_of(&typed(
                "Bundle",
                json!({"type": "collection", "entry": [{}]})
            )),
            Err(ExportError::NoResource(0))
        );
        assert_eq!(
            transaction_of(&typed("Bundle", json!({"type": "collection"}))),
            Err(ExportError::Empty)
        );
        let single = transaction_of(&typed("Condition", json!({"id": "dx"}))).unwrap();
        assert_eq!(single["entry"][0]["request"]["url"], "Condition/dx");
    }
}
