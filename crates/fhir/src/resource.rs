//! Structural validation of the FHIR R4 resources providers deposit (SPEC 2, 5): the shared
//! resource types, their required elements and the shapes of the data types we read. Each
//! problem names its path (`Condition.code.coding[0].system`) so that a clinic system can fix
//! what it sent. Also derives what the record needs: the domain, the provider's source id.
//!
//! This is not a full FHIR validator (no profiles, no terminology binding beyond the value
//! sets below); it refuses what would make a record unreadable or mis-filed.

use ehrshare_core::domain::{Domain, DomainError, domain_of};
use ehrshare_core::terminology::{TermKind, Terminology};
use serde_json::{Map, Value, json};

/// Code systems that mark a Condition, Procedure or MedicationRequest as Chinese medicine:
/// ICD-11 chapter 26 (traditional medicine) and ehrshare's documented local CM systems.
pub const CM_SYSTEMS: [&str; 6] = [
    "http://id.who.int/icd/release/11/26",
    "https://ehrshare.example/fhir/CodeSystem/cm-herb",
    "https://ehrshare.example/fhir/CodeSystem/cm-disease",
    "https://ehrshare.example/fhir/CodeSystem/cm-syndrome",
    "https://ehrshare.example/fhir/CodeSystem/cm-acupoint",
    "https://ehrshare.example/fhir/CodeSystem/cm-treatment",
];

/// The extension that makes a MedicationRequest a Chinese medicine prescription: `form`
/// (`decoction-pieces` 飲片 or `granules` 顆粒), `doses` (帖數, a positive integer) and one
/// `item` per herb (`herb`: CodeableConcept, `grams`: decimal); instructions go in
/// `dosageInstruction[0].text`.
pub const CM_PRESCRIPTION: &str =
    "https://ehrshare.example/fhir/StructureDefinition/cm-prescription";

const TERM_KINDS: [TermKind; 4] = [
    TermKind::Herb,
    TermKind::Disease,
    TermKind::Syndrome,
    TermKind::Acupoint,
];

/// One structural problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a FHIRPath-like path.
    pub path: String,
    pub message: String,
}

/// A resource that passed: what the record needs from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub resource_type: String,
    /// The provider's own id for the resource (`id`): deposits are idempotent on it.
    pub source_id: String,
    pub domain: Domain,
    /// The resource as canonical JSON text (keys sorted, no insignificant whitespace).
    pub canonical: String,
}

struct Check {
    problems: Vec<Problem>,
}

impl Check {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn string(&mut self, obj: &Map<String, Value>, base: &str, key: &str, required: bool) {
        match obj.get(key) {
            None if required => self.push(&format!("{base}.{key}"), "required"),
            None => {}
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(_) => self.push(&format!("{base}.{key}"), "must be a non-empty string"),
        }
    }

    fn code(&mut self, obj: &Map<String, Value>, base: &str, key: &str, allowed: &[&str]) {
        match obj.get(key) {
            None => self.push(&format!("{base}.{key}"), "required"),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
            Some(_) => self.push(
                &format!("{base}.{key}"),
                format!("must be one of {}", allowed.join(", ")),
            ),
        }
    }

    fn codeable_concept(
        &mut self,
        obj: &Map<String, Value>,
        base: &str,
        key: &str,
        required: bool,
    ) {
        let path = format!("{base}.{key}");
        match obj.get(key) {
            None if required => self.push(&path, "required"),
            None => {}
            Some(Value::Object(cc)) => self.concept(cc, &path),
            Some(_) => self.push(&path, "must be a CodeableConcept object"),
        }
    }

    fn concept(&mut self, cc: &Map<String, Value>, path: &str) {
        let has_text = matches!(cc.get("text"), Some(Value::String(_)));
        match cc.get("coding") {
            None if has_text => {}
            None => self.push(path, "needs coding or text"),
            Some(Value::Array(list)) if !list.is_empty() || has_text => {
                for (i, c) in list.iter().enumerate() {
                    let p = format!("{path}.coding[{i}]");
                    match c {
                        Value::Object(coding) => {
                            self.string(coding, &p, "system", true);
                            self.string(coding, &p, "code", true);
                            self.string(coding, &p, "display", false);
                        }
                        _ => self.push(&p, "must be a Coding object"),
                    }
                }
            }
            Some(_) => self.push(&format!("{path}.coding"), "must be a non-empty array"),
        }
    }

    fn reference(&mut self, obj: &Map<String, Value>, base: &str, key: &str, required: bool) {
        let path = format!("{base}.{key}");
        match obj.get(key) {
            None if required => self.push(&path, "required"),
            None => {}
            Some(Value::Object(r))
                if !matches!(r.get("reference"), Some(Value::String(_)))
                    && !matches!(r.get("identifier"), Some(Value::Object(_))) =>
            {
                self.push(&path, "needs reference or identifier");
            }
            Some(Value::Object(_)) => {}
            Some(_) => self.push(&path, "must be a Reference object"),
        }
    }

    fn date_time(&mut self, obj: &Map<String, Value>, base: &str, key: &str, required: bool) {
        let path = format!("{base}.{key}");
        match obj.get(key) {
            None if required => self.push(&path, "required"),
            None => {}
            Some(Value::String(s)) if looks_like_date_time(s) => {}
            Some(_) => self.push(
                &path,
                "must be a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or with time and zone)",
            ),
        }
    }
}

fn looks_like_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    match b.len() {
        4 => digits(0..4),
        7 => digits(0..4) && b[4] == b'-' && digits(5..7),
        10 => digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10),
        _ => {
            b.len() >= 20
                && digits(0..4)
                && b[10] == b'T'
                && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .is_ok()
        }
    }
}

fn id_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Every coding of a CM term system gets the preferred term's code and display, looked up
/// by its code or display (the name as written stays in the concept's `text`).
fn normalise_codings(value: &mut Value, terms: &Terminology) {
    match value {
        Value::Object(obj) => {
            if let Some(Value::Array(codings)) = obj.get_mut("coding") {
                for c in codings.iter_mut() {
                    let Some(system) = c.get("system").and_then(Value::as_str) else {
                        continue;
                    };
                    let Some(kind) = TERM_KINDS.into_iter().find(|k| k.system() == system) else {
                        continue;
                    };
                    let found = ["code", "display"].iter().find_map(|field| {
                        c.get(*field)
                            .and_then(Value::as_str)
                            .and_then(|n| terms.lookup(kind, n))
                    });
                    if let Some(term) = found {
                        c["code"] = json!(term.code);
                        c["display"] = json!(term.preferred);
                    }
                }
            }
            for v in obj.values_mut() {
                normalise_codings(v, terms);
            }
        }
        Value::Array(list) => list.iter_mut().for_each(|v| normalise_codings(v, terms)),
        _ => {}
    }
}

/// Checks a CM prescription's extension and gives each herb named only by text its term's
/// coding (keeping the text as written).
fn check_prescription(ext: &mut Value, terms: &Terminology, c: &mut Check) {
    let base = "MedicationRequest.extension(cm-prescription)";
    let Some(parts) = ext.get_mut("extension").and_then(Value::as_array_mut) else {
        c.push(base, "needs form, doses and items");
        return;
    };
    let value_of = |parts: &[Value], url: &str, key: &str| -> Option<Value> {
        parts
            .iter()
            .find(|p| p.get("url").and_then(Value::as_str) == Some(url))
            .and_then(|p| p.get(key).cloned())
    };
    match value_of(parts, "form", "valueCode")
        .as_ref()
        .and_then(Value::as_str)
    {
        Some("decoction-pieces" | "granules") => {}
        _ => c.push(&format!("{base}.form"), "decoction-pieces or granules"),
    }
    match value_of(parts, "doses", "valueInteger")
        .as_ref()
        .and_then(Value::as_i64)
    {
        Some(n) if n >= 1 => {}
        _ => c.push(&format!("{base}.doses"), "a positive number of doses"),
    }
    let mut items = 0;
    for (i, item) in parts
        .iter_mut()
        .filter(|p| p.get("url").and_then(Value::as_str) == Some("item"))
        .enumerate()
    {
        items += 1;
        let path = format!("{base}.item[{i}]");
        let Some(fields) = item.get_mut("extension").and_then(Value::as_array_mut) else {
            c.push(&path, "needs herb and grams");
            continue;
        };
        match value_of(fields, "grams", "valueDecimal")
            .as_ref()
            .and_then(Value::as_f64)
        {
            Some(g) if g > 0.0 && g <= 1000.0 => {}
            _ => c.push(&format!("{path}.grams"), "grams between 0 and 1000"),
        }
        let Some(herb) = fields
            .iter_mut()
            .find(|p| p.get("url").and_then(Value::as_str) == Some("herb"))
            .and_then(|p| p.get_mut("valueCodeableConcept"))
        else {
            c.push(&format!("{path}.herb"), "required (valueCodeableConcept)");
            continue;
        };
        let text = herb.get("text").and_then(Value::as_str).map(str::to_owned);
        let coded = herb
            .get("coding")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty());
        match (coded, text) {
            (true, _) => {}
            (false, Some(t)) => {
                if let Some(term) = terms.lookup(TermKind::Herb, &t) {
                    herb["coding"] = json!([{
                        "system": TermKind::Herb.system(),
                        "code": term.code,
                        "display": term.preferred,
                    }]);
                }
            }
            (false, None) => c.push(&format!("{path}.herb"), "needs coding or text"),
        }
    }
    if items == 0 {
        c.push(&format!("{base}.item"), "at least one herb");
    }
}

/// Codes of the `category` and `code` codings, and whether any is a CM system.
fn codings(value: &Value) -> (Vec<String>, bool) {
    let mut codes = Vec::new();
    let mut cm = false;
    let mut visit = |cc: &Value| {
        for c in cc
            .get("coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(code) = c.get("code").and_then(Value::as_str) {
                codes.push(code.to_owned());
            }
            if c.get("system")
                .and_then(Value::as_str)
                .is_some_and(|s| CM_SYSTEMS.contains(&s))
            {
                cm = true;
            }
        }
    };
    match value.get("category") {
        Some(Value::Array(list)) => list.iter().for_each(&mut visit),
        Some(cc @ Value::Object(_)) => visit(cc),
        _ => {}
    }
    let mut cm_code = false;
    for key in ["code", "medicationCodeableConcept"] {
        if let Some(cc) = value.get(key) {
            for c in cc
                .get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if c.get("system")
                    .and_then(Value::as_str)
                    .is_some_and(|s| CM_SYSTEMS.contains(&s))
                {
                    cm_code = true;
                }
            }
        }
    }
    (codes, cm || cm_code)
}

/// Checks a resource and derives what the record needs, or every problem found. Chinese
/// medicine terms are mapped to their preferred terms (`terms`).
pub fn check(value: &Value, terms: &Terminology) -> Result<Checked, Vec<Problem>> {
    let mut value = value.clone();
    let mut c = Check {
        problems: Vec::new(),
    };
    let mut cm_prescription = false;
    if let Some(Value::Array(exts)) = value.get_mut("extension") {
        for ext in exts.iter_mut() {
            if ext.get("url").and_then(Value::as_str) == Some(CM_PRESCRIPTION) {
                cm_prescription = true;
                check_prescription(ext, terms, &mut c);
            }
        }
    }
    normalise_codings(&mut value, terms);
    let value = &value;
    let Value::Object(obj) = value else {
        return Err(vec![Problem {
            path: "$".into(),
            message: "a resource is a JSON object".into(),
        }]);
    };
    let Some(Value::String(rt)) = obj.get("resourceType") else {
        return Err(vec![Problem {
            path: "resourceType".into(),
            message: "required".into(),
        }]);
    };
    let rt = rt.as_str();
    match obj.get("id") {
        Some(Value::String(id)) if id_ok(id) => {}
        Some(_) => c.push(&format!("{rt}.id"), "1 to 64 letters, digits, '-' or '.'"),
        None => c.push(
            &format!("{rt}.id"),
            "required: the provider's own id, which makes deposits idempotent",
        ),
    }
    match rt {
        "Patient" => {}
        "AllergyIntolerance" => {
            c.codeable_concept(obj, rt, "code", true);
            c.reference(obj, rt, "patient", true);
        }
        "Condition" => {
            c.codeable_concept(obj, rt, "code", true);
            c.reference(obj, rt, "subject", true);
            c.date_time(obj, rt, "onsetDateTime", false);
            c.date_time(obj, rt, "recordedDate", false);
        }
        "Procedure" => {
            c.code(
                obj,
                rt,
                "status",
                &[
                    "preparation",
                    "in-progress",
                    "not-done",
                    "on-hold",
                    "stopped",
                    "completed",
                    "entered-in-error",
                    "unknown",
                ],
            );
            c.codeable_concept(obj, rt, "code", true);
            c.reference(obj, rt, "subject", true);
            c.date_time(obj, rt, "performedDateTime", false);
        }
        "MedicationRequest" => {
            c.code(
                obj,
                rt,
                "status",
                &[
                    "active",
                    "on-hold",
                    "cancelled",
                    "completed",
                    "entered-in-error",
                    "stopped",
                    "draft",
                    "unknown",
                ],
            );
            c.code(
                obj,
                rt,
                "intent",
                &[
                    "proposal",
                    "plan",
                    "order",
                    "original-order",
                    "reflex-order",
                    "filler-order",
                    "instance-order",
                    "option",
                ],
            );
            c.codeable_concept(obj, rt, "medicationCodeableConcept", true);
            c.reference(obj, rt, "subject", true);
            c.date_time(obj, rt, "authoredOn", false);
        }
        "MedicationDispense" | "MedicationStatement" => {
            c.codeable_concept(obj, rt, "medicationCodeableConcept", true);
            c.reference(obj, rt, "subject", true);
            c.string(obj, rt, "status", true);
        }
        "Encounter" => {
            c.code(
                obj,
                rt,
                "status",
                &[
                    "planned",
                    "arrived",
                    "triaged",
                    "in-progress",
                    "onleave",
                    "finished",
                    "cancelled",
                    "entered-in-error",
                    "unknown",
                ],
            );
            c.reference(obj, rt, "subject", true);
        }
        "Appointment" => c.string(obj, rt, "status", true),
        "DocumentReference" => {
            c.code(
                obj,
                rt,
                "status",
                &["current", "superseded", "entered-in-error"],
            );
            c.reference(obj, rt, "subject", true);
            match obj.get("content") {
                Some(Value::Array(list)) if !list.is_empty() => {}
                _ => c.push(
                    &format!("{rt}.content"),
                    "required: at least one attachment",
                ),
            }
        }
        "Immunization" => {
            c.code(
                obj,
                rt,
                "status",
                &["completed", "entered-in-error", "not-done"],
            );
            c.codeable_concept(obj, rt, "vaccineCode", true);
            c.reference(obj, rt, "patient", true);
            c.date_time(obj, rt, "occurrenceDateTime", true);
        }
        "Observation" => {
            c.code(
                obj,
                rt,
                "status",
                &[
                    "registered",
                    "preliminary",
                    "final",
                    "amended",
                    "corrected",
                    "cancelled",
                    "entered-in-error",
                    "unknown",
                ],
            );
            c.codeable_concept(obj, rt, "code", true);
            c.reference(obj, rt, "subject", true);
            c.date_time(obj, rt, "effectiveDateTime", false);
        }
        "DiagnosticReport" => {
            c.code(
                obj,
                rt,
                "status",
                &[
                    "registered",
                    "partial",
                    "preliminary",
                    "final",
                    "amended",
                    "corrected",
                    "appended",
                    "cancelled",
                    "entered-in-error",
                    "unknown",
                ],
            );
            c.codeable_concept(obj, rt, "code", true);
            c.reference(obj, rt, "subject", true);
            match obj.get("category") {
                Some(Value::Array(list)) if !list.is_empty() => {
                    for (i, cc) in list.iter().enumerate() {
                        match cc {
                            Value::Object(m) => c.concept(m, &format!("{rt}.category[{i}]")),
                            _ => {
                                c.push(&format!("{rt}.category[{i}]"), "must be a CodeableConcept")
                            }
                        }
                    }
                }
                _ => c.push(
                    &format!("{rt}.category"),
                    "required: LAB, RAD or another investigation",
                ),
            }
        }
        "ImagingStudy" => {
            c.code(
                obj,
                rt,
                "status",
                &[
                    "registered",
                    "available",
                    "cancelled",
                    "entered-in-error",
                    "unknown",
                ],
            );
            c.reference(obj, rt, "subject", true);
        }
        "ServiceRequest" => {
            c.string(obj, rt, "status", true);
            c.string(obj, rt, "intent", true);
            c.reference(obj, rt, "subject", true);
        }
        other => {
            return Err(vec![Problem {
                path: "resourceType".into(),
                message: format!("{other:?} is not a shared resource type"),
            }]);
        }
    }
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    let (codes, cm) = codings(value);
    let cm = cm || cm_prescription;
    let categories: Vec<&str> = codes.iter().map(String::as_str).collect();
    let domain = domain_of(rt, &categories, cm).map_err(|e| {
        vec![Problem {
            path: format!("{rt}.category"),
            message: match e {
                DomainError::NoCategory => e.to_string(),
                DomainError::UnsharedType(_) => e.to_string(),
            },
        }]
    })?;
    let canonical = serde_json::to_string(value).map_err(|e| {
        vec![Problem {
            path: "$".into(),
            message: e.to_string(),
        }]
    })?;
    Ok(Checked {
        resource_type: rt.to_owned(),
        source_id: obj
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        domain,
        canonical,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn condition() -> Value {
        json!({"resourceType": "Condition", "id": "dx-1",
               "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45"}]},
               "subject": {"reference": "Patient/1"}, "recordedDate": "2026-03-01"})
    }

    fn terms() -> Terminology {
        Terminology::shipped()
    }

    #[test]
    fn a_cm_prescription_is_checked_and_its_herbs_get_their_preferred_terms() {
        let rx = json!({"resourceType": "MedicationRequest", "id": "cm-1", "status": "active",
        "intent": "order", "medicationCodeableConcept": {"text": "中藥處方"},
        "subject": {"reference": "Patient/1"},
        "dosageInstruction": [{"text": "每日一劑，水煎分兩次服"}],
        "extension": [{"url": CM_PRESCRIPTION, "extension": [
            {"url": "form", "valueCode": "decoction-pieces"},
            {"url": "doses", "valueInteger": 5},
            {"url": "item", "extension": [
                {"url": "herb", "valueCodeableConcept": {"text": "淮山"}},
                {"url": "grams", "valueDecimal": 15}]},
            {"url": "item", "extension": [
                {"url": "herb", "valueCodeableConcept": {"coding": [{"system": TermKind::Herb.system(), "code": "x", "display": "北芪"}]}},
                {"url": "grams", "valueDecimal": 9.5}]}
        ]}]});
        let c = check(&rx, &terms()).unwrap();
        assert_eq!(c.domain, Domain::CmPrescription);
        let stored: Value = serde_json::from_str(&c.canonical).unwrap();
        let items = &stored["extension"][0]["extension"];
        let herb = &items[2]["extension"][0]["valueCodeableConcept"];
        assert_eq!(herb["text"], "淮山", "as written");
        assert_eq!(herb["coding"][0]["display"], "山藥", "preferred");
        assert_eq!(herb["coding"][0]["code"], "H001");
        assert_eq!(
            items[3]["extension"][0]["valueCodeableConcept"]["coding"][0]["display"],
            "黃芪"
        );

        let mut bad = rx.clone();
        bad["extension"][0]["extension"][1]["valueInteger"] = json!(0);
        bad["extension"][0]["extension"][2]["extension"][1]["valueDecimal"] = json!(-3);
        let paths: Vec<String> = check(&bad, &terms())
            .unwrap_err()
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(
            paths,
            vec![
                "MedicationRequest.extension(cm-prescription).doses",
                "MedicationRequest.extension(cm-prescription).item[0].grams"
            ]
        );
    }

    #[test]
    fn a_good_resource_gives_its_domain_and_source_id() {
        let c = check(&condition(), &terms()).unwrap();
        assert_eq!(c.domain, Domain::Diagnosis);
        assert_eq!(c.source_id, "dx-1");
        assert!(
            c.canonical.starts_with("{\"code\""),
            "keys sorted: {}",
            c.canonical
        );
        let mut cm = condition();
        cm["code"]["coding"][0]["system"] = json!(CM_SYSTEMS[0]);
        assert_eq!(check(&cm, &terms()).unwrap().domain, Domain::CmDiagnosis);
    }

    #[test]
    fn every_problem_names_its_path() {
        let mut bad = condition();
        bad["code"]["coding"][0]
            .as_object_mut()
            .unwrap()
            .remove("system");
        bad.as_object_mut().unwrap().remove("subject");
        bad["recordedDate"] = json!("yesterday");
        let problems = check(&bad, &terms()).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "Condition.code.coding[0].system",
                "Condition.subject",
                "Condition.recordedDate"
            ]
        );
        assert_eq!(check(&json!([]), &terms()).unwrap_err()[0].path, "$");
        assert_eq!(
            check(&json!({"resourceType": "Basic", "id": "x"}), &terms()).unwrap_err()[0].path,
            "resourceType"
        );
        let mut no_id = condition();
        no_id.as_object_mut().unwrap().remove("id");
        assert_eq!(check(&no_id, &terms()).unwrap_err()[0].path, "Condition.id");
        let report = json!({"resourceType": "DiagnosticReport", "id": "r", "status": "final",
                            "code": {"text": "FBC"}, "subject": {"reference": "Patient/1"}});
        assert_eq!(
            check(&report, &terms()).unwrap_err()[0].path,
            "DiagnosticReport.category"
        );
    }
}
