//! Whom a deposited resource is about (SPEC 3.8; issue 23, item 2): every reference to a
//! patient anywhere in it (its subject, patient, beneficiary, a performer or asserter that is
//! a patient, inside contained resources too), so that the application can refuse a resource
//! about anyone but the recipient it is deposited for. A record about someone else, filed
//! under this recipient, would be shown to this recipient's carers: a breach, and a wrong
//! record.
//!
//! Accepted forms (documented in the API description): a literal reference to the recipient's
//! id (`Patient/<id>`, also as an absolute URL ending so, or `urn:uuid:<id>`), or a logical
//! reference by the recipient's identity document (`{"identifier": {"system": <the document
//! type's system URI>, "value": <its number>}}`, with `"type": "Patient"` where the element
//! could name others). Anything else that names a patient or a group is reported: another
//! patient, a group, a patient or group contained in the resource, a reference in a patient
//! element that names no one (a display alone) or another kind of thing; a reference that
//! carries both a literal reference and an identifier has both checked.

use serde_json::Value;

/// Our naming system for an identity document: `https://ehrshare.example/fhir/NamingSystem/`
/// and the document type (`hkid`, `hk-birth-certificate`, `macao-id`,
/// `mainland-travel-permit`), or for passports and other documents the type and the issuing
/// place (`passport-GB`).
pub const DOCUMENT_SYSTEM_PREFIX: &str = "https://ehrshare.example/fhir/NamingSystem/";

/// The system URI of an identity document of type `kind` (a `core::identity` code) issued by
/// `issuer`.
pub fn document_system(kind: &str, issuer: &str) -> String {
    match kind {
        "hkid" | "hk-birth-certificate" | "macao-id" | "mainland-travel-permit" => {
            format!("{DOCUMENT_SYSTEM_PREFIX}{kind}")
        }
        _ => format!("{DOCUMENT_SYSTEM_PREFIX}{kind}-{issuer}"),
    }
}

/// The document type (a `core::identity` code) and issuing place (`None`: the type's own)
/// of one of our document systems ([`document_system`] read back).
pub fn document_of_system(system: &str) -> Option<(&str, Option<&str>)> {
    let rest = system.strip_prefix(DOCUMENT_SYSTEM_PREFIX)?;
    match rest {
        "hkid" | "hk-birth-certificate" | "macao-id" | "mainland-travel-permit" => {
            Some((rest, None))
        }
        _ => {
            let (kind, issuer) = rest.rsplit_once('-')?;
            (!kind.is_empty() && !issuer.is_empty()).then_some((kind, Some(issuer)))
        }
    }
}

/// Elements whose reference names the patient even without a `type`.
const PATIENT_ELEMENTS: [&str; 3] = ["subject", "patient", "beneficiary"];

/// What a patient reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A literal reference to a patient's id.
    Id(String),
    /// A logical reference by an identifier.
    Identifier { system: String, value: String },
    /// Something no recipient can be: a group, a contained patient, an unreadable reference.
    Other(String),
}

/// One reference to a patient, with its path (`Condition.subject`,
/// `MedicationRequest.contained[0].subject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientReference {
    pub path: String,
    pub target: Target,
}

/// Every reference to a patient (or a group) in `resource`.
pub fn patient_references(resource: &Value) -> Vec<PatientReference> {
    let mut out = Vec::new();
    let mut root = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("$")
        .to_owned();
    walk(resource, &mut root, "", &mut out);
    out
}

/// The identity documents a `Patient` resource carries in our document systems, as the
/// references by which it names the recipient (`Patient.identifier[1]`); its other
/// identifiers (a clinic's chart number) name no one here.
pub fn patient_documents(resource: &Value) -> Vec<PatientReference> {
    let Some(identifiers) = resource.get("identifier").and_then(Value::as_array) else {
        return Vec::new();
    };
    identifiers
        .iter()
        .enumerate()
        .filter_map(|(i, identifier)| {
            let system = identifier.get("system").and_then(Value::as_str)?;
            document_of_system(system)?;
            let value = identifier.get("value").and_then(Value::as_str)?;
            Some(PatientReference {
                path: format!("Patient.identifier[{i}]"),
                target: Target::Identifier {
                    system: system.to_owned(),
                    value: value.to_owned(),
                },
            })
        })
        .collect()
}

/// `path` is one buffer, grown and cut back as the walk goes, so that the work stays linear
/// in the resource's size whatever its depth.
fn walk(value: &Value, path: &mut String, element: &str, out: &mut Vec<PatientReference>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, element, out);
                path.truncate(len);
            }
        }
        Value::Object(obj) => {
            for target in reference_targets(obj, element) {
                out.push(PatientReference {
                    path: path.clone(),
                    target,
                });
            }
            // A patient or group contained in the resource is someone other than the
            // recipient (a newborn, a relative, a herd), whatever refers to it.
            if let Some(Value::Array(contained)) = obj.get("contained") {
                for (i, c) in contained.iter().enumerate() {
                    if let Some(kind @ ("Patient" | "Group")) =
                        c.get("resourceType").and_then(Value::as_str)
                    {
                        out.push(PatientReference {
                            path: format!("{path}.contained[{i}]"),
                            target: Target::Other(format!("a contained {kind}")),
                        });
                    }
                }
            }
            for (key, child) in obj {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                walk(child, path, key, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The patients an object names, if it is a Reference to a patient or a group: by its
/// `reference` and by its `identifier`, each checked (a reference may carry both). In an
/// element that names the patient, a reference that names no one (a display alone) or names
/// another kind of thing is reported too.
fn reference_targets(obj: &serde_json::Map<String, Value>, element: &str) -> Vec<Target> {
    let patient_element = PATIENT_ELEMENTS.contains(&element);
    let by_reference = reference_target(obj, element);
    let by_identifier = identifier_target(obj, element);
    let mut out: Vec<Target> = by_reference.into_iter().chain(by_identifier).collect();
    if out.is_empty()
        && patient_element
        && !obj.contains_key("reference")
        && !obj.contains_key("identifier")
        && (obj.contains_key("display") || obj.contains_key("type"))
    {
        out.push(Target::Other("a reference that names no one".to_owned()));
    }
    out
}

/// The patient an object's `reference` names.
fn reference_target(obj: &serde_json::Map<String, Value>, element: &str) -> Option<Target> {
    let declared = obj.get("type").and_then(Value::as_str);
    let patient_element = PATIENT_ELEMENTS.contains(&element);
    if let Some(reference) = obj.get("reference") {
        let Some(text) = reference.as_str() else {
            return patient_element.then(|| Target::Other(reference.to_string()));
        };
        if let Some(local) = text.strip_prefix('#') {
            // A contained resource: a patient there is no recipient.
            return (patient_element || declared == Some("Patient"))
                .then(|| Target::Other(format!("#{local}")));
        }
        if let Some(id) = text.strip_prefix("urn:uuid:") {
            return (patient_element || declared == Some("Patient"))
                .then(|| Target::Id(id.to_owned()));
        }
        // `[base/]Type/id[/_history/n]`
        let parts: Vec<&str> = text.split('/').collect();
        let (kind, id) = match parts.iter().position(|p| *p == "_history") {
            Some(h) if h >= 2 => (parts[h - 2], parts[h - 1]),
            _ if parts.len() >= 2 => (parts[parts.len() - 2], parts[parts.len() - 1]),
            _ => ("", text),
        };
        return match kind {
            "Patient" => Some(Target::Id(id.to_owned())),
            "Group" => Some(Target::Other(text.to_owned())),
            // In an element that names the patient, anything but a Patient is someone or
            // something else (`Person/1`, `patient/1`, a bare id).
            _ if patient_element => Some(Target::Other(text.to_owned())),
            _ => None,
        };
    }
    None
}

/// The patient an object's `identifier` names.
fn identifier_target(obj: &serde_json::Map<String, Value>, element: &str) -> Option<Target> {
    let declared = obj.get("type").and_then(Value::as_str);
    let patient_element = PATIENT_ELEMENTS.contains(&element);
    if let Some(identifier) = obj.get("identifier").and_then(Value::as_object) {
        let names_patient = match declared {
            Some("Patient") => true,
            Some("Group") => return Some(Target::Other("Group".to_owned())),
            Some(_) => false,
            None => patient_element,
        };
        if names_patient {
            let text = |k: &str| {
                identifier
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            return Some(Target::Identifier {
                system: text("system"),
                value: text("value"),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn document_systems_read_back() {
        for (kind, issuer) in [
            ("hkid", "HK"),
            ("macao-id", "MO"),
            ("passport", "GB"),
            ("other", "US"),
        ] {
            let system = document_system(kind, issuer);
            let (k, i) = document_of_system(&system).unwrap();
            assert_eq!(k, kind);
            assert!(i.is_none_or(|i| i == issuer));
        }
        assert_eq!(document_of_system("urn:oid:1.2.3"), None);
        assert_eq!(document_of_system(DOCUMENT_SYSTEM_PREFIX), None);
        assert_eq!(
            document_of_system(&format!("{DOCUMENT_SYSTEM_PREFIX}passport-")),
            None
        );
    }

    #[test]
    fn a_contained_patient_a_display_alone_or_another_kind_is_no_recipient() {
        let paths = |v: Value| -> Vec<(String, bool)> {
            patient_references(&v)
                .into_iter()
                .map(|r| (r.path, matches!(r.target, Target::Other(_))))
                .collect()
        };
        let found = paths(json!({"resourceType": "Observation",
            "contained": [{"resourceType": "Patient", "id": "p"}],
            "subject": {"reference": "Patient/1"}, "performer": [{"reference": "#p"}]}));
        assert!(
            found.contains(&("Observation.contained[0]".to_owned(), true)),
            "{found:?}"
        );
        assert_eq!(
            paths(json!({"resourceType": "Condition", "subject": {"display": "Peter"}})),
            [("Condition.subject".to_owned(), true)]
        );
        for other in ["Person/1", "patient/1"] {
            assert_eq!(
                paths(json!({"resourceType": "Condition", "subject": {"reference": other}})),
                [("Condition.subject".to_owned(), true)],
                "{other}"
            );
        }
        // A reference with an identifier too: both are checked.
        let both = patient_references(&json!({"resourceType": "Condition", "subject": {
            "reference": "Patient/1", "identifier": {"system": "s", "value": "v"}}}));
        assert_eq!(both.len(), 2, "{both:?}");
    }

    fn targets(resource: Value) -> Vec<(String, Target)> {
        patient_references(&resource)
            .into_iter()
            .map(|r| (r.path, r.target))
            .collect()
    }

    #[test]
    fn references_to_patients_are_found_wherever_they_are() {
        let found = targets(json!({"resourceType": "MedicationRequest", "id": "m",
            "subject": {"reference": "Patient/123"},
            "requester": {"reference": "Practitioner/9"},
            "performer": {"reference": "https://other.example/fhir/Patient/456/_history/2"},
            "contained": [{"resourceType": "Observation", "id": "o",
                "subject": {"reference": "Group/7"}}],
            "note": [{"authorReference": {"type": "Patient",
                "identifier": {"system": "s", "value": "v"}}}]}));
        assert_eq!(
            found,
            vec![
                (
                    "MedicationRequest.contained[0].subject".to_owned(),
                    Target::Other("Group/7".to_owned())
                ),
                (
                    "MedicationRequest.note[0].authorReference".to_owned(),
                    Target::Identifier {
                        system: "s".to_owned(),
                        value: "v".to_owned()
                    }
                ),
                (
                    "MedicationRequest.performer".to_owned(),
                    Target::Id("456".to_owned())
                ),
                (
                    "MedicationRequest.subject".to_owned(),
                    Target::Id("123".to_owned())
                ),
            ]
        );
    }

    #[test]
    fn forms_that_name_no_recipient_are_other() {
        let found = targets(json!({"resourceType": "Condition",
            "subject": {"reference": "#p"},
            "asserter": {"reference": "RelatedPerson/1"},
            "encounter": {"reference": "Encounter/2"},
            "recorder": {"type": "Practitioner", "identifier": {"system": "s", "value": "v"}}}));
        assert_eq!(
            found,
            vec![(
                "Condition.subject".to_owned(),
                Target::Other("#p".to_owned())
            )]
        );
        let found = targets(
            json!({"resourceType": "Condition", "subject": {"identifier": {"system": "s", "value": "v"}}}),
        );
        assert_eq!(
            found,
            vec![(
                "Condition.subject".to_owned(),
                Target::Identifier {
                    system: "s".to_owned(),
                    value: "v".to_owned()
                }
            )]
        );
        assert_eq!(
            targets(json!({"resourceType": "Condition", "subject": {"reference": "urn:uuid:abc"}})),
            vec![("Condition.subject".to_owned(), Target::Id("abc".to_owned()))]
        );
    }
}
