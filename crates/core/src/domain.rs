//! The sharable data domains (SPEC 2): what a record is about, and so who may see it.
//!
//! The codes are stable (they are stored with records and named in the access profiles); the
//! FHIR resource types each domain holds are fixed here, the one place that maps between them.

/// A domain of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    Demographics,
    Allergy,
    Diagnosis,
    Procedure,
    Medication,
    Encounter,
    ClinicalNote,
    Immunisation,
    Laboratory,
    Radiology,
    OtherInvestigation,
    Referral,
    CmDiagnosis,
    CmPrescription,
    CmTreatment,
}

impl Domain {
    /// Every domain, in the order of SPEC 2.
    pub const ALL: [Domain; 15] = [
        Domain::Demographics,
        Domain::Allergy,
        Domain::Diagnosis,
        Domain::Procedure,
        Domain::Medication,
        Domain::Encounter,
        Domain::ClinicalNote,
        Domain::Immunisation,
        Domain::Laboratory,
        Domain::Radiology,
        Domain::OtherInvestigation,
        Domain::Referral,
        Domain::CmDiagnosis,
        Domain::CmPrescription,
        Domain::CmTreatment,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Domain::Demographics => "demographics",
            Domain::Allergy => "allergy",
            Domain::Diagnosis => "diagnosis",
            Domain::Procedure => "procedure",
            Domain::Medication => "medication",
            Domain::Encounter => "encounter",
            Domain::ClinicalNote => "clinical-note",
            Domain::Immunisation => "immunisation",
            Domain::Laboratory => "laboratory",
            Domain::Radiology => "radiology",
            Domain::OtherInvestigation => "other-investigation",
            Domain::Referral => "referral",
            Domain::CmDiagnosis => "cm-diagnosis",
            Domain::CmPrescription => "cm-prescription",
            Domain::CmTreatment => "cm-treatment",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.code() == code)
    }

    /// The English name.
    pub fn name_en(self) -> &'static str {
        match self {
            Domain::Demographics => "Personal identification and demographics",
            Domain::Allergy => "Allergies and adverse drug reactions",
            Domain::Diagnosis => "Diagnoses and problems",
            Domain::Procedure => "Procedures",
            Domain::Medication => "Prescribing and dispensing",
            Domain::Encounter => "Encounters and appointments",
            Domain::ClinicalNote => "Clinical notes and summaries",
            Domain::Immunisation => "Birth and immunisation records",
            Domain::Laboratory => "Laboratory reports",
            Domain::Radiology => "Radiology reports and images",
            Domain::OtherInvestigation => "Other investigation reports",
            Domain::Referral => "Healthcare referrals",
            Domain::CmDiagnosis => "Chinese medicine diagnosis",
            Domain::CmPrescription => "Chinese medicine prescription",
            Domain::CmTreatment => "Chinese medicine treatment",
        }
    }

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Domain::Demographics => "個人識別及人口資料",
            Domain::Allergy => "過敏及藥物不良反應",
            Domain::Diagnosis => "診斷及健康問題",
            Domain::Procedure => "程序",
            Domain::Medication => "處方及配藥",
            Domain::Encounter => "就診及預約",
            Domain::ClinicalNote => "臨床紀錄及摘要",
            Domain::Immunisation => "出生及免疫接種紀錄",
            Domain::Laboratory => "化驗報告",
            Domain::Radiology => "放射報告及影像",
            Domain::OtherInvestigation => "其他檢查報告",
            Domain::Referral => "轉介",
            Domain::CmDiagnosis => "中醫診斷",
            Domain::CmPrescription => "中醫處方",
            Domain::CmTreatment => "中醫治療",
        }
    }
}

/// Why a resource has no domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("resource type {0:?} is not shared")]
    UnsharedType(String),
    #[error("a DiagnosticReport needs a category: LAB, RAD or another investigation code")]
    NoCategory,
}

/// The domain of a FHIR resource, from its type and (where the type spans domains) its
/// category or code system. `cm` says the resource carries the Chinese medicine marker (a CM
/// code system on a Condition or Procedure, the CM extension on a MedicationRequest).
pub fn domain_of(
    resource_type: &str,
    categories: &[&str],
    cm: bool,
) -> Result<Domain, DomainError> {
    Ok(match resource_type {
        "Patient" => Domain::Demographics,
        "AllergyIntolerance" => Domain::Allergy,
        "Condition" if cm => Domain::CmDiagnosis,
        "Condition" => Domain::Diagnosis,
        "Procedure" if cm => Domain::CmTreatment,
        "Procedure" => Domain::Procedure,
        "MedicationRequest" if cm => Domain::CmPrescription,
        "MedicationRequest" | "MedicationDispense" | "MedicationStatement" => Domain::Medication,
        "Encounter" | "Appointment" => Domain::Encounter,
        "DocumentReference" => Domain::ClinicalNote,
        "Immunization" => Domain::Immunisation,
        "Observation" => Domain::Laboratory,
        "ImagingStudy" => Domain::Radiology,
        "ServiceRequest" => Domain::Referral,
        "DiagnosticReport" => {
            if categories.iter().any(|c| c.eq_ignore_ascii_case("LAB")) {
                Domain::Laboratory
            } else if categories.iter().any(|c| c.eq_ignore_ascii_case("RAD")) {
                Domain::Radiology
            } else if categories.is_empty() {
                return Err(DomainError::NoCategory);
            } else {
                Domain::OtherInvestigation
            }
        }
        other => return Err(DomainError::UnsharedType(other.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_names_exist() {
        for d in Domain::ALL {
            assert_eq!(Domain::parse(d.code()), Some(d));
            assert!(!d.name_en().is_empty() && !d.name_zh().is_empty());
        }
        assert_eq!(Domain::parse("everything"), None);
    }

    type Case = (
        &'static str,
        &'static [&'static str],
        bool,
        Result<Domain, DomainError>,
    );

    #[test]
    fn resources_map_to_domains() {
        let cases: [Case; 9] = [
            ("Patient", &[], false, Ok(Domain::Demographics)),
            ("Condition", &[], false, Ok(Domain::Diagnosis)),
            ("Condition", &[], true, Ok(Domain::CmDiagnosis)),
            ("MedicationRequest", &[], true, Ok(Domain::CmPrescription)),
            ("MedicationDispense", &[], false, Ok(Domain::Medication)),
            ("DiagnosticReport", &["LAB"], false, Ok(Domain::Laboratory)),
            ("DiagnosticReport", &["RAD"], false, Ok(Domain::Radiology)),
            (
                "DiagnosticReport",
                &["ECG"],
                false,
                Ok(Domain::OtherInvestigation),
            ),
            (
                "Basic",
                &[],
                false,
                Err(DomainError::UnsharedType("Basic".into())),
            ),
        ];
        for (t, c, cm, expected) in cases {
            assert_eq!(domain_of(t, c, cm), expected, "{t} {c:?} {cm}");
        }
        assert_eq!(
            domain_of("DiagnosticReport", &[], false),
            Err(DomainError::NoCategory)
        );
    }
}
