//! The public directory (SPEC 4.1) as FHIR R4 (issue 25, item 5): a provider is an
//! `Organization`, each of its service locations a `Location`, each professional who agreed to
//! be listed a `PractitionerRole`. Only what the public directory shows: no business
//! registration, no contact person, no mobile number.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::resource::TYPE_ELEMENT;

/// The code system of a provider's kind (`clinic`, `hospital`, `cm-clinic`, ...).
pub const HCP_TYPE_SYSTEM: &str = "https://ehrshare.example/fhir/CodeSystem/hcp-type";
/// The code system of professions (`doctor`, `cm-practitioner`, ...).
pub const ROLE_SYSTEM: &str = "https://ehrshare.example/fhir/CodeSystem/profession";
/// A professional's registration number, in a system per profession.
pub const REGISTRATION_SYSTEM_PREFIX: &str =
    "https://ehrshare.example/fhir/NamingSystem/registration/";

fn typed(kind: &str, mut v: Value) -> Map<String, Value> {
    v[TYPE_ELEMENT] = json!(kind);
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A provider.
pub fn organization(id: Uuid, name_en: &str, name_zh: &str, hcp_type: &str) -> Map<String, Value> {
    let mut v = json!({
        "id": id.to_string(),
        "active": true,
        "type": [{"coding": [{"system": HCP_TYPE_SYSTEM, "code": hcp_type}]}],
        "name": name_en,
    });
    if !name_zh.is_empty() {
        v["alias"] = json!([name_zh]);
    }
    typed("Organization", v)
}

/// A service location's address and how to reach it.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub id: Uuid,
    pub hcp: Uuid,
    pub name_en: &'a str,
    pub name_zh: &'a str,
    pub lines: &'a [&'a str],
    pub district: &'a str,
    pub phone: &'a str,
}

/// A service location.
pub fn location(p: Place<'_>) -> Map<String, Value> {
    let mut v = json!({
        "id": p.id.to_string(),
        "status": "active",
        "name": p.name_en,
        "address": {"line": p.lines, "district": p.district, "city": "Hong Kong", "country": "HK"},
        "managingOrganization": {"reference": format!("Organization/{}", p.hcp)},
    });
    if !p.name_zh.is_empty() {
        v["alias"] = json!([p.name_zh]);
    }
    if !p.phone.is_empty() {
        v["telecom"] = json!([{"system": "phone", "value": p.phone, "use": "work"}]);
    }
    typed("Location", v)
}

/// A listed professional at a provider.
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    pub id: Uuid,
    pub hcp: Uuid,
    pub name: &'a str,
    /// A `core::profession::Role` code.
    pub role: &'a str,
    pub registration: Option<&'a str>,
}

/// A listed professional.
pub fn practitioner_role(l: Listed<'_>) -> Map<String, Value> {
    let mut v = json!({
        "id": l.id.to_string(),
        "active": true,
        "practitioner": {"display": l.name},
        "organization": {"reference": format!("Organization/{}", l.hcp)},
        "code": [{"coding": [{"system": ROLE_SYSTEM, "code": l.role}]}],
    });
    if let Some(number) = l.registration.filter(|n| !n.is_empty()) {
        v["identifier"] = json!([{"system": format!("{REGISTRATION_SYSTEM_PREFIX}{}", l.role),
                                  "value": number}]);
    }
    typed("PractitionerRole", v)
}
