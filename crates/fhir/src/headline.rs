//! A stored resource in one line, for lists in the portals: what it is about (the concept's
//! text, else its first coding's display, else its code), and for a Chinese medicine
//! prescription its herbs with grams and the number of doses. Pure: the portal escapes it.

use serde_json::Value;

use crate::resource::CM_PRESCRIPTION;

/// The fields that name what a resource is about, by resource type, in order of preference.
const CONCEPTS: [&str; 6] = [
    "code",
    "medicationCodeableConcept",
    "vaccineCode",
    "type",
    "category",
    "description",
];

/// A concept's words: its text, else its first coding's display, else its first code.
fn concept(v: &Value) -> Option<String> {
    if let Some(t) = v.as_str() {
        return Some(t.to_owned());
    }
    if let Some(first) = v.as_array().and_then(|a| a.first()) {
        return concept(first);
    }
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        return Some(t.to_owned());
    }
    // Every coding's display (else code): a CM diagnosis codes its disease and its syndrome.
    let names: Vec<&str> = v
        .get("coding")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|c| {
            c.get("display")
                .and_then(Value::as_str)
                .or_else(|| c.get("code").and_then(Value::as_str))
        })
        .collect();
    (!names.is_empty()).then(|| names.join(" · "))
}

/// A CM prescription's herbs (the preferred term, with the name as written when it differs)
/// and doses, such as `山藥 (淮山) 15 g, 北芪 9.5 g × 5`.
fn cm_prescription(v: &Value) -> Option<String> {
    let ext = v
        .get("extension")?
        .as_array()?
        .iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(CM_PRESCRIPTION))?;
    let parts = ext.get("extension")?.as_array()?;
    let part = |p: &Value, name: &str| p.get("url").and_then(Value::as_str) == Some(name);
    let herbs: Vec<String> = parts
        .iter()
        .filter(|p| part(p, "item"))
        .filter_map(|item| {
            let fields = item.get("extension")?.as_array()?;
            let herb = fields
                .iter()
                .find(|f| part(f, "herb"))?
                .get("valueCodeableConcept")?;
            let preferred = herb
                .get("coding")
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .and_then(|c| c.get("display"))
                .and_then(Value::as_str);
            let written = herb.get("text").and_then(Value::as_str);
            let name = match (preferred, written) {
                (Some(p), Some(w)) if p != w => format!("{p} ({w})"),
                (Some(p), _) => p.to_owned(),
                (None, Some(w)) => w.to_owned(),
                (None, None) => return None,
            };
            let grams = fields
                .iter()
                .find(|f| part(f, "grams"))
                .and_then(|f| f.get("valueDecimal"))
                .map(|g| format!(" {g} g"))
                .unwrap_or_default();
            Some(format!("{name}{grams}"))
        })
        .collect();
    let doses = parts
        .iter()
        .find(|p| part(p, "doses"))
        .and_then(|p| p.get("valueInteger"))
        .map(|d| format!(" × {d}"))
        .unwrap_or_default();
    Some(format!("{}{doses}", herbs.join(", ")))
}

/// The resource in one line.
pub fn headline(resource: &Value) -> String {
    if let Some(cm) = cm_prescription(resource) {
        return cm;
    }
    let what = CONCEPTS
        .iter()
        .find_map(|f| resource.get(*f).and_then(concept))
        .or_else(|| {
            resource
                .get("resourceType")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    // Where: a treatment's acupoints or body sites.
    match resource.get("bodySite").and_then(Value::as_array) {
        Some(sites) if !sites.is_empty() => {
            let sites: Vec<String> = sites.iter().filter_map(concept).collect();
            format!("{what}: {}", sites.join(", "))
        }
        _ => what,
    }
}

/// The elements that date what a resource records, in order of preference, whatever its
/// type: when it happened or was observed, else when it was recorded or ordered.
const CLINICAL_DATES: [&str; 17] = [
    "effectiveDateTime",
    "effectiveInstant",
    "effectivePeriod",
    "onsetDateTime",
    "onsetPeriod",
    "occurrenceDateTime",
    "performedDateTime",
    "performedPeriod",
    "whenHandedOver",
    "period",
    "start",
    "recordedDate",
    "authoredOn",
    "dateAsserted",
    "issued",
    "date",
    "created",
];

/// The resource's own clinical date as written (a period's start), not when it was
/// deposited: what a patient reading their record dates it by. `None` when it has none.
pub fn clinical_date(resource: &Value) -> Option<String> {
    CLINICAL_DATES.iter().find_map(|f| {
        let v = resource.get(*f)?;
        v.as_str()
            .or_else(|| v.get("start").and_then(Value::as_str))
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_clinical_date_is_the_resources_own() {
        let check = |v: Value, expected: Option<&str>| {
            assert_eq!(clinical_date(&v).as_deref(), expected, "{v}");
        };
        check(
            json!({"resourceType": "Observation", "effectiveDateTime": "2025-06-01T08:30:00+08:00", "issued": "2025-06-02T00:00:00Z"}),
            Some("2025-06-01T08:30:00+08:00"),
        );
        check(
            json!({"resourceType": "Condition", "onsetDateTime": "2020-01", "recordedDate": "2025-01-01"}),
            Some("2020-01"),
        );
        check(
            json!({"resourceType": "Encounter", "period": {"start": "2025-03-04T09:00:00+08:00"}}),
            Some("2025-03-04T09:00:00+08:00"),
        );
        check(
            json!({"resourceType": "MedicationRequest", "authoredOn": "2025-01-01"}),
            Some("2025-01-01"),
        );
        check(json!({"resourceType": "Condition"}), None);
    }

    #[test]
    fn concepts_by_preference() {
        let check = |v: Value, expected: &str| assert_eq!(headline(&v), expected, "{v}");
        check(
            json!({"resourceType": "Condition", "code": {"text": "Hypertension", "coding": [{"display": "HT"}]}}),
            "Hypertension",
        );
        check(
            json!({"resourceType": "Condition", "code": {"coding": [{"system": "s", "code": "I10", "display": "Essential hypertension"}]}}),
            "Essential hypertension",
        );
        check(
            json!({"resourceType": "Condition", "code": {"coding": [{"code": "I10"}]}}),
            "I10",
        );
        check(
            json!({"resourceType": "MedicationRequest", "medicationCodeableConcept": {"text": "Amlodipine 5 mg"}}),
            "Amlodipine 5 mg",
        );
        check(
            json!({"resourceType": "DocumentReference", "type": {"text": "Discharge summary"}}),
            "Discharge summary",
        );
        check(
            json!({"resourceType": "Procedure", "category": [{"text": "Acupuncture"}]}),
            "Acupuncture",
        );
        check(json!({"resourceType": "Observation"}), "Observation");
        check(
            json!({"resourceType": "Condition", "code": {"coding": [{"code": "D1", "display": "感冒"}, {"code": "S1", "display": "風寒證"}]}}),
            "感冒 · 風寒證",
        );
        check(
            json!({"resourceType": "Procedure", "code": {"coding": [{"code": "acupuncture", "display": "acupuncture"}]},
                   "bodySite": [{"coding": [{"display": "足三里"}]}, {"coding": [{"display": "合谷"}]}]}),
            "acupuncture: 足三里, 合谷",
        );
    }

    #[test]
    fn a_cm_prescription_lists_its_herbs_as_written_and_preferred() {
        let rx = json!({"resourceType": "MedicationRequest", "medicationCodeableConcept": {"text": "中藥處方"},
            "extension": [{"url": CM_PRESCRIPTION, "extension": [
                {"url": "form", "valueCode": "decoction-pieces"},
                {"url": "doses", "valueInteger": 5},
                {"url": "item", "extension": [
                    {"url": "herb", "valueCodeableConcept": {"text": "淮山", "coding": [{"code": "H001", "display": "山藥"}]}},
                    {"url": "grams", "valueDecimal": 15}]},
                {"url": "item", "extension": [
                    {"url": "herb", "valueCodeableConcept": {"coding": [{"code": "H002", "display": "北芪"}]}},
                    {"url": "grams", "valueDecimal": 9.5}]}]}]});
        assert_eq!(headline(&rx), "山藥 (淮山) 15 g, 北芪 9.5 g × 5");
    }
}
