//! What a deposit must be (SPEC 2, 5): a valid FHIR R4 resource (against the published
//! definitions, `crate::r4`) of a shared type, and on top our own rules: a record names the
//! patient it is about, a CM prescription's extension is complete, CM terms map to their
//! preferred terms. Each problem names its path (`Condition.code.coding[0].system`), all of
//! them in one answer, so that a clinic system can fix what it sent. Also derives what the
//! record needs: the domain, the provider's source id, the canonical text.

use ehrshare_core::domain::{Domain, Evidence, LoincClasses, domain_of};
use ehrshare_core::terminology::{TermKind, Terminology};
use serde_json::{Value, json};

pub use crate::problem::Problem;

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
    paths: std::collections::HashSet<String>,
}

impl Check {
    fn new(problems: Vec<Problem>) -> Check {
        let paths = problems.iter().map(|p| p.path.clone()).collect();
        Check { problems, paths }
    }

    /// Adds a problem, unless one was said of the same path already or the answer is full.
    fn push(&mut self, path: &str, message: impl Into<String>) {
        if self.problems.len() >= crate::problem::MAX_PROBLEMS
            || !self.paths.insert(path.to_owned())
        {
            return;
        }
        self.problems.push(Problem {
            path: path.to_owned(),
            message: message.into(),
        });
    }
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
        match value_of(fields, "grams", "valueDecimal") {
            Some(Value::Number(g)) if grams_ok(&g.to_string()) => {}
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

/// Whether a decimal's text is more than 0 and at most 1000 grams, read as text: no float
/// is made of a deposited value (ADR 0011).
fn grams_ok(text: &str) -> bool {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let whole = whole.trim_start_matches('0');
    let frac_zero = frac.bytes().all(|b| b == b'0');
    match whole.len() {
        0 => !frac_zero,
        1..=3 => true,
        4 => whole == "1000" && frac_zero,
        _ => false,
    }
}

/// The element that names a resource's type.
pub const TYPE_ELEMENT: &str = "resourceType";

/// The type a resource says it is (its `resourceType`), if it says one.
pub fn type_of(resource: &Value) -> Option<&str> {
    resource.get(TYPE_ELEMENT).and_then(Value::as_str)
}

/// A resource's type and id as its JSON text says them, without reading the rest into a
/// value (an importer keeps the lines that name one resource in order); `None` when the text
/// is not an object with both as strings.
pub fn type_and_id(text: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(rename = "resourceType")]
        resource_type: String,
        id: String,
    }
    let named = serde_json::from_slice::<Named>(text).ok()?;
    Some((named.resource_type, named.id))
}

/// The resource types ehrshare shares (SPEC 2).
pub const SHARED_TYPES: [&str; 15] = [
    "Patient",
    "AllergyIntolerance",
    "Condition",
    "Procedure",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationStatement",
    "Encounter",
    "Appointment",
    "DocumentReference",
    "Immunization",
    "Observation",
    "DiagnosticReport",
    "ImagingStudy",
    "ServiceRequest",
];

/// The element that names the patient a record is about (our rule: a shared record names
/// it, though R4 leaves it optional on some types), or `None` for Patient itself and for
/// Appointment, whose patient is one of its participants.
fn patient_element(resource_type: &str) -> Option<&'static str> {
    match resource_type {
        "Patient" | "Appointment" => None,
        "AllergyIntolerance" | "Immunization" => Some("patient"),
        _ => Some("subject"),
    }
}

fn codes_of(cc: &Value, mut each: impl FnMut(&str, &str)) {
    for c in cc
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let system = c.get("system").and_then(Value::as_str).unwrap_or_default();
        if let Some(code) = c.get("code").and_then(Value::as_str) {
            each(system, code);
        } else {
            each(system, "");
        }
    }
}

/// The evidence for a resource's domain: category codes, the LOINC classes of its code,
/// and whether any code is of a CM system.
fn evidence(value: &Value, loinc: &LoincClasses) -> (Vec<String>, Vec<String>, bool) {
    let mut categories = Vec::new();
    let mut classes = Vec::new();
    let mut cm = false;
    let categories_of = match value.get("category") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(cc @ Value::Object(_)) => vec![cc],
        _ => Vec::new(),
    };
    for cc in categories_of {
        codes_of(cc, |system, code| {
            cm |= CM_SYSTEMS.contains(&system);
            if !code.is_empty() {
                categories.push(code.to_owned());
            }
        });
    }
    for key in ["code", "medicationCodeableConcept"] {
        if let Some(cc) = value.get(key) {
            codes_of(cc, |system, code| {
                cm |= CM_SYSTEMS.contains(&system);
                if system == "http://loinc.org"
                    && let Some(class) = loinc.class_of(code)
                {
                    classes.push(class.to_owned());
                }
            });
        }
    }
    (categories, classes, cm)
}

/// Checks a resource and derives what the record needs, or every problem found. Chinese
/// medicine terms are mapped to their preferred terms (`terms`). The resource must carry its
/// `id` (the application assigns one to a create without it).
pub fn check(value: &Value, terms: &Terminology) -> Result<Checked, Vec<Problem>> {
    let problem = |path: &str, message: String| {
        vec![Problem {
            path: path.to_owned(),
            message,
        }]
    };
    let Value::Object(obj) = value else {
        return Err(problem("$", "a resource is a JSON object".to_owned()));
    };
    let rt = match obj.get("resourceType") {
        Some(Value::String(rt)) if SHARED_TYPES.contains(&rt.as_str()) => rt.as_str(),
        Some(Value::String(other)) => {
            return Err(problem(
                "resourceType",
                format!(
                    "{other:?} is not a shared resource type: one of {}",
                    SHARED_TYPES.join(", ")
                ),
            ));
        }
        _ => return Err(problem("resourceType", "required".to_owned())),
    };
    let mut c = Check::new(crate::r4::Definitions::shipped().validate(value));
    let Some(Value::String(source_id)) = obj.get("id") else {
        c.push(&format!("{rt}.id"), "required");
        return Err(c.problems);
    };
    if let Some(element) = patient_element(rt)
        && !obj.contains_key(element)
        && !c
            .problems
            .iter()
            .any(|p| p.path == format!("{rt}.{element}"))
    {
        c.push(
            &format!("{rt}.{element}"),
            "required here: a shared record names the patient it is about",
        );
    }
    let mut value = value.clone();
    let mut cm_prescription = false;
    if let Some(Value::Array(exts)) = value.get_mut("extension") {
        for ext in exts.iter_mut() {
            if ext.get("url").and_then(Value::as_str) == Some(CM_PRESCRIPTION) {
                cm_prescription = true;
                check_prescription(ext, terms, &mut c);
            }
        }
    }
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    normalise_codings(&mut value, terms);
    let (categories, classes, cm) = evidence(&value, LoincClasses::shipped());
    let categories: Vec<&str> = categories.iter().map(String::as_str).collect();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    let domain = domain_of(
        rt,
        Evidence {
            categories: &categories,
            code_classes: &classes,
            cm: cm || cm_prescription,
        },
    )
    .map_err(|e| problem("resourceType", e.to_string()))?;
    let canonical = serde_json::to_string(&value).map_err(|e| problem("$", e.to_string()))?;
    Ok(Checked {
        resource_type: rt.to_owned(),
        source_id: source_id.clone(),
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
        bad["code"]["coding"][0]["cod"] = json!("typo");
        bad.as_object_mut().unwrap().remove("subject");
        bad["recordedDate"] = json!("yesterday");
        let problems = check(&bad, &terms()).unwrap_err();
        let mut paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        paths.sort();
        assert_eq!(
            paths,
            vec![
                "Condition.code.coding[0].cod",
                "Condition.recordedDate",
                "Condition.subject",
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
    }

    #[test]
    fn an_investigation_without_category_is_filed_by_its_code_or_by_default() {
        let report = |code: &str| {
            json!({"resourceType": "DiagnosticReport", "id": "r", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                   "subject": {"reference": "Patient/1"}})
        };
        let domain = |v: Value| check(&v, &terms()).unwrap().domain;
        assert_eq!(domain(report("38269-7")), Domain::Radiology);
        assert_eq!(domain(report("58410-2")), Domain::Laboratory);
        assert_eq!(domain(report("99999-9")), Domain::OtherInvestigation);
        let mut obs = report("99999-9");
        obs["resourceType"] = json!("Observation");
        assert_eq!(domain(obs), Domain::Laboratory);
    }

    #[test]
    fn grams_are_read_as_text() {
        for good in ["15", "9.5", "0.1", "1000", "1000.00", "001"] {
            assert!(grams_ok(good), "{good}");
        }
        for bad in ["0", "0.00", "-3", "1000.5", "1e2", "10000", ".5"] {
            assert!(!grams_ok(bad), "{bad}");
        }
    }
}
