//! What R4's token and date search parameters read of each shared type (the expressions of
//! R4's SearchParameter definitions: `clinical-code`, `clinical-date`, `clinical-identifier`
//! and each type's own `category` and `status`), and how a token matches a CodeableConcept, a
//! code or an Identifier and a date parameter a date element. A type whose R4 definition has
//! no such parameter has none here, so the server refuses it by name.

use ehrshare_core::search::{DateParam, range};
use serde_json::Value;
use time::OffsetDateTime;

/// What a token parameter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A CodeableConcept, or a list of them: any coding.
    Concept,
    /// A `code`: its value (a token's system, if given, must be empty or absent).
    Code,
    /// A list of Identifiers.
    Identifier,
}

/// The element a token parameter (`category`, `status`, `identifier`; `code` is
/// [`code_elements`]) reads of a resource type, and its shape; `None`: R4 defines no such
/// parameter on the type.
pub fn token_element(resource_type: &str, param: &str) -> Option<(&'static str, Shape)> {
    let with_status = !matches!(resource_type, "Condition" | "AllergyIntolerance");
    match param {
        "identifier" if crate::resource::SHARED_TYPES.contains(&resource_type) => {
            Some(("identifier", Shape::Identifier))
        }
        "status" if with_status && crate::resource::SHARED_TYPES.contains(&resource_type) => {
            Some(("status", Shape::Code))
        }
        "category" => match resource_type {
            "AllergyIntolerance" => Some(("category", Shape::Code)),
            "Condition"
            | "Observation"
            | "DiagnosticReport"
            | "ServiceRequest"
            | "MedicationRequest"
            | "MedicationStatement"
            | "DocumentReference"
            | "Procedure" => Some(("category", Shape::Concept)),
            _ => None,
        },
        _ => None,
    }
}

/// Whether any of `tokens` matches the element `param` reads of `resource` (see
/// [`token_element`]). `served_identifier` is the identifier the server adds when it serves
/// the record (the provider's own id in the provider's system), which the stored body lacks.
pub fn token_matches(
    resource_type: &str,
    resource: &Value,
    param: &str,
    tokens: &[Token],
    served_identifier: Option<(&str, &str)>,
) -> bool {
    let Some((element, shape)) = token_element(resource_type, param) else {
        return false;
    };
    let value = resource.get(element);
    let values = || -> Vec<&Value> {
        match value {
            Some(Value::Array(list)) => list.iter().collect(),
            Some(v) => vec![v],
            None => Vec::new(),
        }
    };
    match shape {
        Shape::Concept => values().iter().any(|c| {
            c.get("coding")
                .and_then(Value::as_array)
                .is_some_and(|codings| {
                    codings
                        .iter()
                        .any(|k| tokens.iter().any(|t| t.matches_coding(k)))
                })
        }),
        Shape::Code => values().iter().filter_map(|v| v.as_str()).any(|code| {
            tokens.iter().any(|t| {
                t.system.as_deref().is_none_or(str::is_empty)
                    && t.code.as_deref().is_none_or(|c| c == code)
            })
        }),
        Shape::Identifier => {
            let stored = values().into_iter().any(|i| {
                let id = serde_json::json!({"system": i.get("system"), "code": i.get("value")});
                tokens.iter().any(|t| t.matches_coding(&id))
            });
            let served = served_identifier.is_some_and(|(system, value)| {
                let id = serde_json::json!({"system": system, "code": value});
                tokens.iter().any(|t| t.matches_coding(&id))
            });
            stored || served
        }
    }
}

/// The elements `code` reads of a resource type (none: the type has no `code` parameter).
pub fn code_elements(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "AllergyIntolerance" | "Condition" | "Procedure" | "Observation" | "DiagnosticReport"
        | "ServiceRequest" => &["code"],
        "MedicationRequest" | "MedicationDispense" | "MedicationStatement" => {
            &["medicationCodeableConcept"]
        }
        _ => &[],
    }
}

/// The elements `date` reads of a resource type (a choice `[x]` is any of its forms).
pub fn date_elements(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "AllergyIntolerance" => &["recordedDate"],
        "Procedure" => &["performedDateTime", "performedPeriod"],
        "Observation" | "DiagnosticReport" => {
            &["effectiveDateTime", "effectivePeriod", "effectiveInstant"]
        }
        "Encounter" => &["period"],
        "Immunization" => &["occurrenceDateTime"],
        "Appointment" => &["start"],
        "DocumentReference" => &["date"],
        _ => &[],
    }
}

/// A token parameter's value: `[system]|[code]`, `code` alone (any system), `|code` (no
/// system), or `system|` (any code of the system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// `None`: any system; `Some("")`: no system.
    pub system: Option<String>,
    /// `None`: any code.
    pub code: Option<String>,
}

impl Token {
    /// Parses a token; `None` when it names nothing (empty, or `|`).
    pub fn parse(text: &str) -> Option<Token> {
        let (system, code) = match text.split_once('|') {
            Some((s, c)) => (Some(s.to_owned()), (!c.is_empty()).then(|| c.to_owned())),
            None => (None, (!text.is_empty()).then(|| text.to_owned())),
        };
        (code.is_some() || system.as_deref().is_some_and(|s| !s.is_empty()))
            .then_some(Token { system, code })
    }

    fn matches_coding(&self, coding: &Value) -> bool {
        let system = coding.get("system").and_then(Value::as_str);
        let code = coding.get("code").and_then(Value::as_str);
        let system_ok = match self.system.as_deref() {
            None => true,
            Some("") => system.is_none(),
            Some(s) => system == Some(s),
        };
        system_ok && self.code.as_deref().is_none_or(|c| code == Some(c))
    }
}

/// Whether any of `tokens` (a comma-separated value: any of them) matches a coding of the
/// `code` elements of `resource`.
pub fn code_matches(resource_type: &str, resource: &Value, tokens: &[Token]) -> bool {
    code_elements(resource_type).iter().any(|e| {
        resource
            .get(*e)
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array)
            .is_some_and(|codings| {
                codings
                    .iter()
                    .any(|c| tokens.iter().any(|t| t.matches_coding(c)))
            })
    })
}

/// The ranges the `date` elements of `resource` cover (a Period from its start to its end; an
/// open end reaches the end of time).
fn date_ranges(resource_type: &str, resource: &Value) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut out = Vec::new();
    for e in date_elements(resource_type) {
        match resource.get(*e) {
            Some(Value::String(s)) => out.extend(range(s)),
            Some(Value::Object(period)) => {
                let start = period.get("start").and_then(Value::as_str).and_then(range);
                let end = period.get("end").and_then(Value::as_str).and_then(range);
                match (start, end) {
                    (Some((low, _)), Some((_, high))) => out.push((low, high)),
                    (Some((low, _)), None) => out.push((
                        low,
                        OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT),
                    )),
                    (None, Some((_, high))) => out.push((
                        OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT),
                        high,
                    )),
                    (None, None) => {}
                }
            }
            _ => {}
        }
    }
    out
}

/// When a resource's `date` elements start (the earliest), for `_sort=date`; `None` when it
/// has none.
pub fn date_start(resource_type: &str, resource: &Value) -> Option<OffsetDateTime> {
    date_ranges(resource_type, resource)
        .into_iter()
        .map(|(low, _)| low)
        .min()
}

/// Whether `resource` satisfies every date parameter (a resource without the date satisfies
/// none).
pub fn date_matches(resource_type: &str, resource: &Value, params: &[DateParam]) -> bool {
    let ranges = date_ranges(resource_type, resource);
    params.iter().all(|p| {
        ranges
            .iter()
            .any(|(low, high)| p.matches_range(*low, *high))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_match_system_and_code_as_r4_says() {
        let obs = json!({"resourceType": "Observation",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}, {"code": "local-1"}]}});
        let m = |t: &str| code_matches("Observation", &obs, &[Token::parse(t).unwrap()]);
        assert!(m("http://loinc.org|2345-7"));
        assert!(m("2345-7"));
        assert!(m("http://loinc.org|"));
        assert!(m("|local-1"));
        assert!(!m("|2345-7"), "it has a system");
        assert!(!m("http://snomed.info/sct|2345-7"));
        assert!(!m("2345-8"));
        assert_eq!(Token::parse(""), None);
        assert_eq!(Token::parse("|"), None);
        assert!(!code_matches(
            "Immunization",
            &obs,
            &[Token::parse("2345-7").unwrap()]
        ));
    }

    #[test]
    fn category_status_and_identifier_read_what_r4_says() {
        let obs = json!({"status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "identifier": [{"system": "urn:lab", "value": "L-1"}]});
        let t = |s: &str| vec![Token::parse(s).unwrap()];
        assert!(token_matches(
            "Observation",
            &obs,
            "category",
            &t("laboratory"),
            None
        ));
        assert!(!token_matches(
            "Observation",
            &obs,
            "category",
            &t("imaging"),
            None
        ));
        assert!(token_matches(
            "Observation",
            &obs,
            "status",
            &t("final"),
            None
        ));
        assert!(token_matches(
            "Observation",
            &obs,
            "identifier",
            &t("urn:lab|L-1"),
            None
        ));
        assert!(!token_matches(
            "Observation",
            &obs,
            "identifier",
            &t("urn:lab|L-2"),
            None
        ));
        assert!(token_matches(
            "Observation",
            &obs,
            "identifier",
            &t("urn:mine|o-1"),
            Some(("urn:mine", "o-1"))
        ));
        let allergy = json!({"category": ["food"]});
        assert!(token_matches(
            "AllergyIntolerance",
            &allergy,
            "category",
            &t("food"),
            None
        ));
        assert_eq!(
            token_element("Condition", "status"),
            None,
            "Condition has clinical-status"
        );
        assert_eq!(token_element("Encounter", "category"), None);
    }

    #[test]
    fn dates_match_their_element_per_type() {
        let obs = json!({"effectiveDateTime": "2026-03-04T10:00:00+08:00"});
        let d = |t: &str| DateParam::parse(t).unwrap();
        assert!(date_matches("Observation", &obs, &[d("2026-03-04")]));
        assert!(date_matches(
            "Observation",
            &obs,
            &[d("ge2026-03"), d("lt2026-04")]
        ));
        assert!(!date_matches("Observation", &obs, &[d("2026-03-05")]));
        let enc = json!({"period": {"start": "2026-03-01", "end": "2026-03-10"}});
        assert!(date_matches("Encounter", &enc, &[d("ge2026-03-05")]));
        assert!(
            !date_matches("Encounter", &enc, &[d("2026-03-05")]),
            "the stay is longer than the day"
        );
        assert!(date_matches("Encounter", &enc, &[d("2026-03")]));
        assert!(!date_matches("Observation", &json!({}), &[d("2026")]));
    }
}
