//! A sharing consent (SPEC 3.4) as a FHIR R4 `Consent` (read-only, issue 25 item 5): the
//! patient permits one provider to see their shared record. `status` is `active` while the
//! consent is in force and `inactive` once revoked or expired; `provision.period` runs from
//! when it was given (or last renewed) to when a one-year consent ends.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::resource::TYPE_ELEMENT;
use crate::served::instant;

/// The code system of ehrshare's consent kinds (`one-year`, `indefinite`, `untyped`).
pub const KIND_SYSTEM: &str = "https://ehrshare.example/fhir/CodeSystem/consent-kind";
/// How the consent was given (`access-key`, `smart-id-card`, `app`, `form`, `phone`).
pub const METHOD_EXTENSION: &str =
    "https://ehrshare.example/fhir/StructureDefinition/consent-method";
/// The policy a sharing consent is given under.
pub const POLICY_SYSTEM: &str = "https://ehrshare.example/fhir/CodeSystem/consent-policy";

/// What a Consent is made of.
#[derive(Debug, Clone, Copy)]
pub struct ConsentFacts<'a> {
    pub id: Uuid,
    pub recipient: Uuid,
    pub hcp: Uuid,
    /// A `core::consent::ConsentKind` code.
    pub kind: &'a str,
    /// A `core::consent::Method` code.
    pub method: &'a str,
    pub given_at: OffsetDateTime,
    pub ends_at: Option<OffsetDateTime>,
    pub in_force: bool,
}

/// The Consent.
pub fn consent(c: ConsentFacts<'_>) -> Map<String, Value> {
    let mut period = json!({"start": instant(c.given_at)});
    if let Some(end) = c.ends_at {
        period["end"] = json!(instant(end));
    }
    let organization = json!({"reference": format!("Organization/{}", c.hcp)});
    let mut v = json!({
        "id": c.id.to_string(),
        "extension": [{"url": METHOD_EXTENSION, "valueCode": c.method}],
        "status": if c.in_force { "active" } else { "inactive" },
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]},
            {"coding": [{"system": KIND_SYSTEM, "code": c.kind}]}
        ],
        "patient": {"reference": format!("Patient/{}", c.recipient)},
        "dateTime": instant(c.given_at),
        "organization": [organization],
        "policyRule": {"coding": [{"system": POLICY_SYSTEM, "code": "sharing-consent",
                                   "display": "Sharing consent for the electronic health record"}]},
        "provision": {
            "type": "permit",
            "period": period,
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                            "code": "IRCP", "display": "information recipient"}]},
                       "reference": organization}]
        }
    });
    v[TYPE_ELEMENT] = json!("Consent");
    match v {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
