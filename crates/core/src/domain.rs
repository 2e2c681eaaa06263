//! The sharable data domains (SPEC 2): what a record is about, and so who may see it.
//!
//! The codes are stable (they are stored with records and named in the access profiles); the
//! FHIR resource types each domain holds are fixed here, the one place that maps between them.

crate::coded_enum! {
    /// A domain of the record.
    #[derive(PartialOrd, Ord)]
    pub enum Domain {
        Demographics = "demographics", "Personal identification and demographics", "個人識別及人口資料";
        Allergy = "allergy", "Allergies and adverse drug reactions", "過敏及藥物不良反應";
        Diagnosis = "diagnosis", "Diagnoses and problems", "診斷及健康問題";
        Procedure = "procedure", "Procedures", "程序";
        Medication = "medication", "Prescribing and dispensing", "處方及配藥";
        Encounter = "encounter", "Encounters and appointments", "就診及預約";
        ClinicalNote = "clinical-note", "Clinical notes and summaries", "臨床紀錄及摘要";
        Immunisation = "immunisation", "Birth and immunisation records", "出生及免疫接種紀錄";
        Laboratory = "laboratory", "Laboratory reports", "化驗報告";
        Radiology = "radiology", "Radiology reports and images", "放射報告及影像";
        OtherInvestigation = "other-investigation", "Other investigation reports", "其他檢查報告";
        Referral = "referral", "Healthcare referrals", "轉介";
        CmDiagnosis = "cm-diagnosis", "Chinese medicine diagnosis", "中醫診斷";
        CmPrescription = "cm-prescription", "Chinese medicine prescription", "中醫處方";
        CmTreatment = "cm-treatment", "Chinese medicine treatment", "中醫治療";
    }
}

/// Why a resource has no domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("resource type {0:?} is not shared")]
    UnsharedType(String),
}

/// LOINC codes and their LOINC class (`config/loinc-classes.tsv`): how an investigation whose
/// category does not name its domain is filed.
#[derive(Debug, Clone, Default)]
pub struct LoincClasses {
    classes: std::collections::HashMap<String, String>,
}

impl LoincClasses {
    /// The shipped table, parsed once.
    pub fn shipped() -> &'static LoincClasses {
        static ONCE: std::sync::OnceLock<LoincClasses> = std::sync::OnceLock::new();
        ONCE.get_or_init(|| LoincClasses::parse(include_str!("../../../config/loinc-classes.tsv")))
    }

    /// Parses `code <TAB> class` lines; `#` starts a comment line.
    pub fn parse(text: &str) -> LoincClasses {
        let classes = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.split_once('\t'))
            .map(|(code, class)| (code.trim().to_owned(), class.trim().to_owned()))
            .collect();
        LoincClasses { classes }
    }

    /// The class of a LOINC code, if the table has it.
    pub fn class_of(&self, code: &str) -> Option<&str> {
        self.classes.get(code).map(String::as_str)
    }

    /// The domain a LOINC class files into.
    pub fn domain_of_class(class: &str) -> Domain {
        let class = class.strip_prefix("PANEL.").unwrap_or(class);
        if class.starts_with("RAD") {
            Domain::Radiology
        } else if ["CARD", "EKG", "PULM", "EYE", "HRTRATE"]
            .iter()
            .any(|p| class.starts_with(p))
        {
            Domain::OtherInvestigation
        } else {
            Domain::Laboratory
        }
    }
}

/// What decides an investigation's domain: its category codes, the LOINC classes of its
/// code (looked up in [`LoincClasses`]), and whether it carries the Chinese medicine marker
/// (a CM code system on a Condition or Procedure, the CM extension on a MedicationRequest).
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    pub categories: &'a [&'a str],
    pub code_classes: &'a [&'a str],
    pub cm: bool,
}

/// The domain of a FHIR resource, from its type and, where the type spans domains, its
/// evidence. A DiagnosticReport or Observation is filed by its category (LAB or laboratory;
/// RAD or imaging), else by its code's LOINC class, else by default: a DiagnosticReport in
/// other investigations, an Observation in laboratory (SPEC 2). Never refused for lacking
/// an optional element.
pub fn domain_of(resource_type: &str, evidence: Evidence<'_>) -> Result<Domain, DomainError> {
    let Evidence {
        categories,
        code_classes,
        cm,
    } = evidence;
    let named = |codes: [&str; 2]| {
        categories
            .iter()
            .any(|c| codes.iter().any(|k| c.eq_ignore_ascii_case(k)))
    };
    let investigation = |default: Domain| {
        if named(["LAB", "laboratory"]) {
            Domain::Laboratory
        } else if named(["RAD", "imaging"]) {
            Domain::Radiology
        } else if let Some(class) = code_classes.first() {
            LoincClasses::domain_of_class(class)
        } else {
            default
        }
    };
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
        "Observation" => investigation(Domain::Laboratory),
        "ImagingStudy" => Domain::Radiology,
        "ServiceRequest" => Domain::Referral,
        "DiagnosticReport" => investigation(Domain::OtherInvestigation),
        other => return Err(DomainError::UnsharedType(other.to_owned())),
    })
}

/// Every domain a resource of `resource_type` can be filed in ([`domain_of`] over all
/// evidence): where a search of that type must look. Empty for a type not shared.
pub fn domains_holding(resource_type: &str) -> &'static [Domain] {
    const INVESTIGATIONS: &[Domain] = &[
        Domain::Laboratory,
        Domain::Radiology,
        Domain::OtherInvestigation,
    ];
    match resource_type {
        "Patient" => &[Domain::Demographics],
        "AllergyIntolerance" => &[Domain::Allergy],
        "Condition" => &[Domain::Diagnosis, Domain::CmDiagnosis],
        "Procedure" => &[Domain::Procedure, Domain::CmTreatment],
        "MedicationRequest" => &[Domain::Medication, Domain::CmPrescription],
        "MedicationDispense" | "MedicationStatement" => &[Domain::Medication],
        "Encounter" | "Appointment" => &[Domain::Encounter],
        "DocumentReference" => &[Domain::ClinicalNote],
        "Immunization" => &[Domain::Immunisation],
        "Observation" | "DiagnosticReport" => INVESTIGATIONS,
        "ImagingStudy" => &[Domain::Radiology],
        "ServiceRequest" => &[Domain::Referral],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_is_only_ever_filed_in_the_domains_said_to_hold_it() {
        let categories: [&[&str]; 3] = [&[], &["LAB"], &["RAD"]];
        let classes: [&[&str]; 4] = [&[], &["CHEM"], &["RAD.CT"], &["EKG.MEAS"]];
        for t in [
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
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for c in categories {
                for k in classes {
                    for cm in [false, true] {
                        let evidence = Evidence {
                            categories: c,
                            code_classes: k,
                            cm,
                        };
                        seen.insert(domain_of(t, evidence).unwrap());
                    }
                }
            }
            let said: std::collections::BTreeSet<Domain> =
                domains_holding(t).iter().copied().collect();
            assert_eq!(seen, said, "{t}");
        }
        assert!(domains_holding("Group").is_empty());
    }

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
        &'static [&'static str],
        bool,
        Result<Domain, DomainError>,
    );

    #[test]
    fn resources_map_to_domains() {
        let cases: [Case; 13] = [
            ("Patient", &[], &[], false, Ok(Domain::Demographics)),
            ("Condition", &[], &[], false, Ok(Domain::Diagnosis)),
            ("Condition", &[], &[], true, Ok(Domain::CmDiagnosis)),
            (
                "MedicationRequest",
                &[],
                &[],
                true,
                Ok(Domain::CmPrescription),
            ),
            (
                "MedicationDispense",
                &[],
                &[],
                false,
                Ok(Domain::Medication),
            ),
            (
                "DiagnosticReport",
                &["LAB"],
                &["RAD"],
                false,
                Ok(Domain::Laboratory),
            ),
            (
                "DiagnosticReport",
                &["RAD"],
                &[],
                false,
                Ok(Domain::Radiology),
            ),
            (
                "DiagnosticReport",
                &["ECG"],
                &[],
                false,
                Ok(Domain::OtherInvestigation),
            ),
            // Without a category that names the domain: the code's class, else the default.
            (
                "DiagnosticReport",
                &[],
                &["RAD"],
                false,
                Ok(Domain::Radiology),
            ),
            (
                "DiagnosticReport",
                &[],
                &[],
                false,
                Ok(Domain::OtherInvestigation),
            ),
            (
                "Observation",
                &["vital-signs"],
                &[],
                false,
                Ok(Domain::Laboratory),
            ),
            (
                "Observation",
                &[],
                &["EKG.ATOM"],
                false,
                Ok(Domain::OtherInvestigation),
            ),
            (
                "Basic",
                &[],
                &[],
                false,
                Err(DomainError::UnsharedType("Basic".into())),
            ),
        ];
        for (t, categories, code_classes, cm, expected) in cases {
            let evidence = Evidence {
                categories,
                code_classes,
                cm,
            };
            assert_eq!(
                domain_of(t, evidence),
                expected,
                "{t} {categories:?} {code_classes:?}"
            );
        }
    }

    #[test]
    fn the_shipped_loinc_table_files_by_class() {
        let t = LoincClasses::shipped();
        assert_eq!(t.class_of("38269-7"), Some("RAD"));
        assert_eq!(t.class_of("718-7"), Some("HEM/BC"));
        assert_eq!(t.class_of("no-such"), None);
        assert_eq!(
            LoincClasses::domain_of_class("PANEL.CHEM"),
            Domain::Laboratory
        );
        assert_eq!(
            LoincClasses::domain_of_class("EKG.ATOM"),
            Domain::OtherInvestigation
        );
    }
}
