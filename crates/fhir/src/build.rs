//! The FHIR resources ehrshare writes itself: what the provider portal's deposit forms send, and
//! the demo and benchmark population. Only this crate knows FHIR's shapes; the portal and the
//! server pass the typed values here. Every resource built here passes [`crate::resource::check`]
//! (the tests below hold it).

use ehrshare_core::terminology::TermKind;
use serde_json::{Number, Value, json};
use uuid::Uuid;

use crate::resource::{CM_PRESCRIPTION, CM_SYSTEMS};

/// A reference to the registered person `recipient` (`Patient/{id}`).
pub fn patient_reference(recipient: Uuid) -> Value {
    json!({"reference": format!("Patient/{recipient}")})
}

/// An allergy or intolerance to `substance` (free text), with the reaction if one is known.
pub fn allergy(source_id: &str, recipient: Uuid, substance: &str, reaction: &str) -> Value {
    let mut r = json!({"resourceType": "AllergyIntolerance", "id": source_id,
        "code": {"text": substance}, "patient": patient_reference(recipient)});
    if !reaction.is_empty() {
        r["reaction"] = json!([{"description": reaction, "manifestation": [{"text": reaction}]}]);
    }
    r
}

/// A diagnosis in free text, with a note if any.
pub fn condition(source_id: &str, recipient: Uuid, condition: &str, note: &str) -> Value {
    let mut r = json!({"resourceType": "Condition", "id": source_id,
        "code": {"text": condition}, "subject": patient_reference(recipient)});
    if !note.is_empty() {
        r["note"] = json!([{"text": note}]);
    }
    r
}

/// A medicine the patient takes (free text), with its dosage if given.
pub fn medication_statement(
    source_id: &str,
    recipient: Uuid,
    medicine: &str,
    dosage: &str,
) -> Value {
    let mut r = json!({"resourceType": "MedicationStatement", "id": source_id,
        "status": "active", "medicationCodeableConcept": {"text": medicine},
        "subject": patient_reference(recipient)});
    if !dosage.is_empty() {
        r["dosage"] = json!([{"text": dosage}]);
    }
    r
}

/// A coding of ehrshare's local CM terminology (the term is its own code and display).
fn term(kind: TermKind, name: &str) -> Value {
    json!({"system": kind.system(), "code": name, "display": name})
}

/// A Chinese medicine diagnosis: a disease and a syndrome, in the CM terminology.
pub fn cm_diagnosis(source_id: &str, recipient: Uuid, disease: &str, syndrome: &str) -> Value {
    json!({"resourceType": "Condition", "id": source_id,
        "code": {"coding": [term(TermKind::Disease, disease), term(TermKind::Syndrome, syndrome)]},
        "subject": patient_reference(recipient)})
}

/// A Chinese medicine treatment (acupuncture, tuina, ...), at the acupoints named.
pub fn cm_treatment(
    source_id: &str,
    recipient: Uuid,
    treatment: &str,
    acupoints: &[&str],
) -> Value {
    let mut r = json!({"resourceType": "Procedure", "id": source_id, "status": "completed",
        "code": {"coding": [{"system": CM_SYSTEMS[5], "code": treatment, "display": treatment}]},
        "subject": patient_reference(recipient)});
    if !acupoints.is_empty() {
        let points: Vec<Value> = acupoints
            .iter()
            .map(|p| json!({"coding": [term(TermKind::Acupoint, p)]}))
            .collect();
        r["bodySite"] = Value::Array(points);
    }
    r
}

/// A herb of a CM prescription and its weight in grams (as typed: the text is kept, ADR 0011).
#[derive(Debug, Clone, PartialEq)]
pub struct Herb {
    pub name: String,
    pub grams: Number,
}

/// A Chinese medicine prescription (`MedicationRequest` with ehrshare's CM prescription
/// extension): its form (`decoction-pieces` or `granules`), the number of doses, the herbs,
/// and the instructions if any. The record's own words do not depend on the portal's language.
pub fn cm_prescription(
    source_id: &str,
    recipient: Uuid,
    form: &str,
    doses: u32,
    herbs: &[Herb],
    instructions: &str,
) -> Value {
    let mut parts = vec![
        json!({"url": "form", "valueCode": form}),
        json!({"url": "doses", "valueInteger": doses}),
    ];
    parts.extend(herbs.iter().map(|h| {
        json!({"url": "item", "extension": [
            {"url": "herb", "valueCodeableConcept": {"text": h.name}},
            {"url": "grams", "valueDecimal": h.grams}]})
    }));
    let mut r = json!({
        "resourceType": "MedicationRequest",
        "id": source_id,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "中藥處方 Chinese medicine prescription"},
        "subject": patient_reference(recipient),
        "extension": [{"url": CM_PRESCRIPTION, "extension": parts}],
    });
    if !instructions.is_empty() {
        r["dosageInstruction"] = json!([{"text": instructions}]);
    }
    r
}

/// Record `i` of the demo and benchmark population, as a clinic system would deposit it: a
/// rotation of diagnoses, medication, laboratory results, allergies and encounters. Its domain
/// code, its resource type and the resource (about `Patient/demo`, to be pointed at its
/// recipient with [`patient_reference`]).
pub fn demo_record(i: usize) -> (String, String, Value) {
    let id = format!("demo-{i}");
    let (domain, resource) = match i % 5 {
        0 => (
            "diagnosis",
            json!({"resourceType": "Condition", "id": id,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10",
                "display": "Essential hypertension"}], "text": "高血壓 Hypertension"},
            "subject": {"reference": "Patient/demo"}, "recordedDate": "2025-06-01"}),
        ),
        1 => (
            "medication",
            json!({"resourceType": "MedicationRequest", "id": id,
            "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "Amlodipine 5 mg tablet"},
            "subject": {"reference": "Patient/demo"},
            "dosageInstruction": [{"text": "one tablet every morning 每朝一粒"}]}),
        ),
        2 => (
            "laboratory",
            json!({"resourceType": "Observation", "id": id,
            "status": "final", "code": {"coding": [{"system": "http://loinc.org",
                "code": "4548-4", "display": "Hemoglobin A1c"}]},
            "subject": {"reference": "Patient/demo"}, "valueQuantity": {"value": 6.1, "unit": "%"},
            "effectiveDateTime": "2025-06-01"}),
        ),
        3 => (
            "allergy",
            json!({"resourceType": "AllergyIntolerance", "id": id,
            "code": {"text": "Penicillin 盤尼西林"}, "patient": {"reference": "Patient/demo"}}),
        ),
        _ => (
            "encounter",
            json!({"resourceType": "Encounter", "id": id,
            "status": "finished", "class": {"code": "AMB"},
            "subject": {"reference": "Patient/demo"}}),
        ),
    };
    let resource_type = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (domain.to_owned(), resource_type, resource)
}

/// Record `i` of `ehrshare bench summary`'s population: the domain `i` picks, the resource
/// type and the body (the summary returns them as stored).
pub fn bench_record(i: usize) -> (String, String, serde_json::Value) {
    let id = format!("bench-{i}");
    match i % 5 {
        0 => (
            "diagnosis".into(),
            "Condition".into(),
            json!({"resourceType": "Condition", "id": id,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "Essential hypertension"}]},
            "subject": {"reference": "Patient/bench"}, "recordedDate": "2025-01-01"}),
        ),
        1 => (
            "medication".into(),
            "MedicationRequest".into(),
            json!({"resourceType": "MedicationRequest", "id": id,
            "status": "active", "intent": "order", "medicationCodeableConcept": {"text": "Amlodipine 5 mg tablet"},
            "subject": {"reference": "Patient/bench"}, "dosageInstruction": [{"text": "one tablet every morning"}]}),
        ),
        2 => (
            "laboratory".into(),
            "Observation".into(),
            json!({"resourceType": "Observation", "id": id,
            "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
            "subject": {"reference": "Patient/bench"}, "valueQuantity": {"value": 5.4, "unit": "mmol/L"}}),
        ),
        3 => (
            "allergy".into(),
            "AllergyIntolerance".into(),
            json!({"resourceType": "AllergyIntolerance", "id": id,
            "code": {"text": "Penicillin"}, "patient": {"reference": "Patient/bench"}}),
        ),
        _ => (
            "encounter".into(),
            "Encounter".into(),
            json!({"resourceType": "Encounter", "id": id,
            "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": "Patient/bench"}}),
        ),
    }
}

/// A new resource for `ehrshare bench deposit` to deposit: one of five shared types in turn,
/// about `recipient`, with decimals, codes and text as a clinic system sends them; as text.
pub fn deposit_example(recipient: Uuid, worker: usize, n: usize) -> String {
    let id = format!("bench-{worker}-{n}");
    let subject = format!("Patient/{recipient}");
    let v = match n % 5 {
        0 => json!({"resourceType": "Condition", "id": id,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "Essential hypertension"}]},
            "subject": {"reference": subject}, "recordedDate": "2025-01-01"}),
        1 => json!({"resourceType": "MedicationRequest", "id": id,
            "status": "active", "intent": "order", "medicationCodeableConcept": {"text": "Amlodipine 5 mg tablet"},
            "subject": {"reference": subject}, "authoredOn": "2025-01-01",
            "dosageInstruction": [{"text": "one tablet every morning", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]}),
        2 => json!({"resourceType": "Observation", "id": id,
            "status": "final", "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
            "subject": {"reference": subject}, "effectiveDateTime": "2025-01-01T08:30:00+08:00",
            "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
            "referenceRange": [{"low": {"value": 3.9}, "high": {"value": 6.1}}]}),
        3 => json!({"resourceType": "AllergyIntolerance", "id": id,
            "criticality": "high", "code": {"text": "Penicillin"}, "patient": {"reference": subject},
            "reaction": [{"manifestation": [{"text": "rash"}]}]}),
        _ => json!({"resourceType": "Encounter", "id": id,
            "status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": subject}, "period": {"start": "2025-01-01T08:00:00+08:00"}}),
    };
    v.to_string()
}

/// A transaction of `size` new resources (those of [`deposit_example`]) for `ehrshare bench
/// deposit`, each a `PUT` by the clinic's own id as `ehrshare connect` sends them; as text.
pub fn bench_transaction(recipient: Uuid, worker: usize, n: usize, size: usize) -> String {
    let entry: Vec<Value> = (0..size)
        .map(|i| {
            let text = deposit_example(recipient, worker, n * size + i);
            let resource: Value = serde_json::from_str(&text).unwrap_or_default();
            let url = format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": format!("urn:uuid:{}", Uuid::now_v7()), "resource": resource,
                   "request": {"method": "PUT", "url": url}})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entry}).to_string()
}

/// An import's body (`POST /fhir/$import`, NDJSON) of `size` new resources about `recipient`,
/// as `bench deposit` times it.
pub fn bench_ndjson(recipient: Uuid, worker: usize, n: usize, size: usize) -> String {
    let mut out = String::new();
    for i in 0..size {
        out.push_str(&deposit_example(recipient, worker, n * size + i));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(resource: &Value) {
        let text = serde_json::to_string(resource).unwrap();
        let value = crate::json::parse(text.as_bytes()).unwrap();
        let terminology = ehrshare_core::terminology::Terminology::shipped();
        if let Err(problems) = crate::resource::check(&value, &terminology) {
            panic!("{text}: {problems:?}");
        }
    }

    #[test]
    fn what_ehrshare_writes_is_valid() {
        let r = Uuid::from_u128(7);
        passes(&allergy("a1", r, "Penicillin", "rash"));
        passes(&allergy("a2", r, "Penicillin", ""));
        passes(&condition("c1", r, "Hypertension", "since 2020"));
        passes(&medication_statement("m1", r, "Amlodipine", "5 mg daily"));
        passes(&cm_diagnosis("d1", r, "感冒", "風寒束表"));
        passes(&cm_treatment("t1", r, "acupuncture", &["合谷", "足三里"]));
        passes(&cm_treatment("t2", r, "tuina", &[]));
        let herbs = [Herb {
            name: "黃芪".to_owned(),
            grams: "12.5".parse().unwrap(),
        }];
        passes(&cm_prescription(
            "p1",
            r,
            "granules",
            7,
            &herbs,
            "twice a day",
        ));
        for i in 0..5 {
            let (_, resource_type, mut resource) = demo_record(i);
            for element in ["subject", "patient"] {
                if let Some(reference) = resource.get_mut(element) {
                    *reference = patient_reference(r);
                }
            }
            assert_eq!(resource["resourceType"], resource_type.as_str());
            passes(&resource);
            let (_, _, mut resource) = bench_record(i);
            for element in ["subject", "patient"] {
                if let Some(reference) = resource.get_mut(element) {
                    *reference = patient_reference(r);
                }
            }
            passes(&resource);
            passes(&serde_json::from_str(&deposit_example(r, 1, i)).unwrap());
        }
    }
}
