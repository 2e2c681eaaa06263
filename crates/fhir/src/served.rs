//! A record as served under `/fhir` (issue 25, item 3): the resource as its provider deposited
//! it, with the server's identity put in. Its `id` is the server's record id, `meta.versionId`
//! and `meta.lastUpdated` are the record's version and last change, and the provider's own id
//! travels as an `identifier` in a system of that provider's, so that a clinic finds its
//! resources by the id its own system gave them. Everything else is as deposited.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// The prefix of the identifier system of a provider's own resource ids; the provider's id
/// follows.
pub const SOURCE_SYSTEM_PREFIX: &str = "https://ehrshare.example/fhir/NamingSystem/provider-id/";

/// The identifier system in which provider `hcp` names its resources.
pub fn source_system(hcp: Uuid) -> String {
    format!("{SOURCE_SYSTEM_PREFIX}{hcp}")
}

/// The paths of identifiers in `resource` that claim another provider's id system (only the
/// server puts a provider's own id there, and a depositor may name only its own): a
/// provider could otherwise pass its record off as another's.
pub fn foreign_source_identifiers(resource: &Value, hcp: Uuid) -> Vec<String> {
    let own = source_system(hcp);
    let resource_type = crate::resource::type_of(resource).unwrap_or("Resource");
    resource
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, i)| {
            i.get("system")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(SOURCE_SYSTEM_PREFIX) && s != own)
        })
        .map(|(n, _)| format!("{resource_type}.identifier[{n}].system"))
        .collect()
}

/// What the server knows of a record beyond its body.
#[derive(Debug, Clone, Copy)]
pub struct RecordMeta {
    /// The server's record id: the resource's `id` as served.
    pub id: Uuid,
    pub version: i64,
    pub updated_at: OffsetDateTime,
    /// The provider that deposited it: its own id (the body's `id` as deposited) is kept in
    /// this provider's identifier system.
    pub source_hcp: Uuid,
}

/// Why a stored body cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeError {
    #[error("the stored body is not a JSON object: {0}")]
    NotAnObject(String),
}

/// The resource of `body` (a stored record's canonical JSON) as served.
pub fn record(body: &str, meta: RecordMeta) -> Result<Map<String, Value>, ServeError> {
    let Value::Object(mut resource) =
        serde_json::from_str(body).map_err(|e| ServeError::NotAnObject(e.to_string()))?
    else {
        return Err(ServeError::NotAnObject("not an object".to_owned()));
    };
    let own_id = resource.insert("id".to_owned(), Value::String(meta.id.to_string()));
    let mut m = match resource.remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    m.insert(
        "versionId".to_owned(),
        Value::String(meta.version.to_string()),
    );
    m.insert(
        "lastUpdated".to_owned(),
        Value::String(instant(meta.updated_at)),
    );
    resource.insert("meta".to_owned(), Value::Object(m));
    let Some(Value::String(own_id)) = own_id else {
        return Ok(resource);
    };
    let own_id = own_id.as_str();
    let system = source_system(meta.source_hcp);
    let identifiers = resource
        .entry("identifier")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = identifiers {
        let present = list.iter().any(|i| {
            i.get("system").and_then(Value::as_str) == Some(&system)
                && i.get("value").and_then(Value::as_str) == Some(own_id)
        });
        if !present {
            let mut identifier = Map::new();
            identifier.insert("system".to_owned(), Value::String(system));
            identifier.insert("value".to_owned(), Value::String(own_id.to_owned()));
            list.push(Value::Object(identifier));
        }
    }
    Ok(resource)
}

/// [`record`], written straight as JSON text: only the top level of the stored body is read
/// (its members' values are copied as text, never built as values), and only `meta` and
/// `identifier`, which change, are parsed. The same resource as [`record`] (a test holds it),
/// for the read by id, where the parse and the writing again were a large part of the time.
pub fn record_text(body: &str, meta: RecordMeta) -> Result<String, ServeError> {
    use serde_json::value::RawValue;
    let top: std::collections::BTreeMap<String, &RawValue> =
        serde_json::from_str(body).map_err(|e| ServeError::NotAnObject(e.to_string()))?;
    let own_id: Option<String> = top
        .get("id")
        .and_then(|raw| serde_json::from_str(raw.get()).ok());
    let mut m: Map<String, Value> = top
        .get("meta")
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default();
    m.insert(
        "versionId".to_owned(),
        Value::String(meta.version.to_string()),
    );
    m.insert(
        "lastUpdated".to_owned(),
        Value::String(instant(meta.updated_at)),
    );
    let identifiers: Option<Vec<Value>> = match (&own_id, top.get("identifier")) {
        (None, _) => None,
        (Some(own_id), present) => {
            let mut list: Vec<Value> = present
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
                .unwrap_or_default();
            let system = source_system(meta.source_hcp);
            let there = list.iter().any(|i| {
                i.get("system").and_then(Value::as_str) == Some(&system)
                    && i.get("value").and_then(Value::as_str) == Some(own_id.as_str())
            });
            if !there {
                let mut identifier = Map::new();
                identifier.insert("system".to_owned(), Value::String(system));
                identifier.insert("value".to_owned(), Value::String(own_id.clone()));
                list.push(Value::Object(identifier));
            }
            Some(list)
        }
    };
    let mut out = String::with_capacity(body.len() + 256);
    out.push('{');
    let mut first = true;
    let mut member = |out: &mut String, key: &str, value: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&Value::String(key.to_owned()).to_string());
        out.push(':');
        out.push_str(value);
    };
    for (key, raw) in &top {
        match key.as_str() {
            "id" | "meta" => {}
            "identifier" if identifiers.is_some() => {}
            _ => member(&mut out, key, raw.get()),
        }
    }
    member(
        &mut out,
        "id",
        &Value::String(meta.id.to_string()).to_string(),
    );
    member(&mut out, "meta", &Value::Object(m).to_string());
    if let Some(list) = identifiers {
        member(&mut out, "identifier", &Value::Array(list).to_string());
    }
    out.push('}');
    Ok(out)
}

/// A registered recipient as the FHIR `Patient` a provider's user may see: the demographics of
/// the counter's look-up (names, date of birth, whether the registration is active), and the
/// identity document it was found by.
#[derive(Debug, Clone, Copy)]
pub struct PatientFacts<'a> {
    pub id: Uuid,
    pub name_en: &'a str,
    pub name_zh: Option<&'a str>,
    /// `YYYY-MM-DD`.
    pub birth_date: &'a str,
    pub active: bool,
    /// The document's system and number, when the caller named it.
    pub identifier: Option<(&'a str, &'a str)>,
}

/// The `Patient` of `p`.
pub fn patient(p: PatientFacts<'_>) -> Map<String, Value> {
    let mut names = vec![serde_json::json!({"use": "official", "text": p.name_en})];
    if let Some(zh) = p.name_zh {
        names.push(serde_json::json!({"text": zh}));
    }
    let mut m = Map::new();
    m.insert(
        "resourceType".to_owned(),
        Value::String("Patient".to_owned()),
    );
    m.insert("id".to_owned(), Value::String(p.id.to_string()));
    if let Some((system, value)) = p.identifier {
        m.insert(
            "identifier".to_owned(),
            serde_json::json!([{"system": system, "value": value}]),
        );
    }
    m.insert("active".to_owned(), Value::Bool(p.active));
    m.insert("name".to_owned(), Value::Array(names));
    m.insert(
        "birthDate".to_owned(),
        Value::String(p.birth_date.to_owned()),
    );
    m
}

/// A FHIR `instant`: RFC 3339 in UTC, to the microsecond as stored.
pub fn instant(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// The server id a FHIR id names: only the canonical (lower-case, hyphenated) spelling of a
/// UUID, since FHIR ids are case-sensitive and one record has one id.
pub fn server_id(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text)
        .ok()
        .filter(|u| u.hyphenated().to_string() == text)
}

/// The `ETag` of a version: weak, as FHIR has it (`W/"3"`).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn the_text_is_the_same_resource_as_the_value() {
        let meta = RecordMeta {
            id: Uuid::from_u128(7),
            version: 3,
            updated_at: time::macros::datetime!(2026-12-07 08:00 UTC),
            source_hcp: Uuid::from_u128(9),
        };
        let own = source_system(meta.source_hcp);
        for body in [
            r#"{"resourceType":"Condition","id":"dx-1","code":{"text":"Asthma \"severe\""},"subject":{"reference":"Patient/1"}}"#.to_owned(),
            r#"{"resourceType":"Observation","id":"o","meta":{"tag":[{"code":"x"}]},"valueQuantity":{"value":5.40}}"#.to_owned(),
            format!(r#"{{"resourceType":"Condition","id":"dx-2","identifier":[{{"system":"{own}","value":"dx-2"}},{{"value":"other"}}]}}"#),
            r#"{"resourceType":"Condition","identifier":[{"value":"no own id"}]}"#.to_owned(),
        ] {
            let text = record_text(&body, meta).unwrap();
            let as_text: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(as_text, Value::Object(record(&body, meta).unwrap()), "{body}");
        }
        assert!(record_text("[1]", meta).is_err());
        assert!(record_text("{", meta).is_err());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn meta() -> RecordMeta {
        RecordMeta {
            id: Uuid::from_u128(7),
            version: 3,
            updated_at: datetime!(2026-12-07 12:00:00.25 +08:00),
            source_hcp: Uuid::from_u128(9),
        }
    }

    #[test]
    fn the_server_s_identity_is_put_in_and_the_rest_kept() {
        let body = json!({
            "resourceType": "Condition",
            "id": "c-1",
            "meta": {"profile": ["http://example.org/p"], "versionId": "x"},
            "identifier": [{"system": "urn:other", "value": "1"}],
            "subject": {"reference": "Patient/r"}
        })
        .to_string();
        let served = Value::Object(record(&body, meta()).unwrap());
        assert_eq!(served["id"], "00000000-0000-0000-0000-000000000007");
        assert_eq!(
            served["meta"],
            json!({"profile": ["http://example.org/p"], "versionId": "3",
                   "lastUpdated": "2026-12-07T04:00:00.25Z"})
        );
        assert_eq!(
            served["identifier"],
            json!([{"system": "urn:other", "value": "1"},
                   {"system": format!("{SOURCE_SYSTEM_PREFIX}00000000-0000-0000-0000-000000000009"),
                    "value": "c-1"}])
        );
        assert_eq!(served["subject"], json!({"reference": "Patient/r"}));
    }

    #[test]
    fn only_ones_own_provider_id_system_may_be_deposited() {
        let mine = Uuid::from_u128(9);
        let body = serde_json::json!({"resourceType": "Condition", "identifier": [
            {"system": source_system(mine), "value": "a"},
            {"system": "urn:other", "value": "b"},
            {"system": source_system(Uuid::from_u128(8)), "value": "c"}]});
        assert_eq!(
            foreign_source_identifiers(&body, mine),
            ["Condition.identifier[2].system"]
        );
    }

    #[test]
    fn an_identifier_already_there_is_not_repeated() {
        let system = source_system(Uuid::from_u128(9));
        let body = json!({"resourceType": "Observation", "id": "o",
                          "identifier": [{"system": system, "value": "o"}]})
        .to_string();
        let served = Value::Object(record(&body, meta()).unwrap());
        assert_eq!(served["identifier"].as_array().unwrap().len(), 1);
        assert!(record("[1]", meta()).is_err());
        assert_eq!(etag(3), "W/\"3\"");
    }
}
