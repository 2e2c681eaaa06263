//! `OperationOutcome` (FHIR R4): how an error under `/fhir` is reported (`web::error`).

use serde::{Deserialize, Serialize};

pub use crate::datatypes::{CodeableConcept, Coding};

/// IssueSeverity (http://hl7.org/fhir/issue-severity), R4 required binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

/// IssueType (http://hl7.org/fhir/issue-type), the subset ehrshare reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    Security,
    Login,
    Forbidden,
    Suppressed,
    Processing,
    NotSupported,
    Duplicate,
    NotFound,
    Conflict,
    TooLong,
    Throttled,
    Timeout,
    Transient,
    Exception,
    Informational,
}

/// One issue of an OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    /// FHIRPath expressions naming the elements at fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
}

/// The OperationOutcome resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "OperationOutcome")]
pub struct OperationOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub issue: Vec<Issue>,
}

/// The code system of ehrshare's own stable error codes, used in `Issue.details`.
pub const ERROR_CODE_SYSTEM: &str = "urn:ehrshare:problem";

impl OperationOutcome {
    /// An outcome with one error issue carrying ehrshare's stable `code` in `details`.
    pub fn error(
        issue_type: IssueType,
        code: &str,
        text: &str,
        diagnostics: Option<String>,
    ) -> Self {
        OperationOutcome {
            id: None,
            issue: vec![Issue {
                severity: Severity::Error,
                code: issue_type,
                details: Some(CodeableConcept {
                    coding: vec![Coding {
                        system: Some(ERROR_CODE_SYSTEM.to_owned()),
                        code: Some(code.to_owned()),
                        display: None,
                    }],
                    text: Some(text.to_owned()),
                }),
                diagnostics,
                expression: Vec::new(),
            }],
        }
    }

    /// An outcome that reports success (`information`), for `Prefer: return=OperationOutcome`.
    pub fn information(text: &str) -> Self {
        OperationOutcome {
            id: None,
            issue: vec![Issue {
                severity: Severity::Information,
                code: IssueType::Informational,
                details: Some(CodeableConcept {
                    coding: Vec::new(),
                    text: Some(text.to_owned()),
                }),
                diagnostics: None,
                expression: Vec::new(),
            }],
        }
    }

    /// Adds FHIRPath expressions to the first issue.
    pub fn with_expressions(mut self, expressions: Vec<String>) -> Self {
        if let Some(first) = self.issue.first_mut() {
            first.expression = expressions;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_r4_operation_outcome() {
        let oo = OperationOutcome::error(
            IssueType::NotFound,
            "not-found",
            "No such resource",
            Some("request id abc".into()),
        );
        let json = serde_json::to_value(&oo).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "resourceType": "OperationOutcome",
                "issue": [{
                    "severity": "error",
                    "code": "not-found",
                    "details": {
                        "coding": [{"system": "urn:ehrshare:problem", "code": "not-found"}],
                        "text": "No such resource"
                    },
                    "diagnostics": "request id abc"
                }]
            })
        );
        let back: OperationOutcome = serde_json::from_value(json).unwrap();
        assert_eq!(back, oo);
    }

    #[test]
    fn issue_types_use_fhir_spelling() {
        let s = serde_json::to_string(&IssueType::NotSupported).unwrap();
        assert_eq!(s, "\"not-supported\"");
        let s = serde_json::to_string(&IssueType::TooLong).unwrap();
        assert_eq!(s, "\"too-long\"");
    }
}
