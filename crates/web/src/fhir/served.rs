//! What `/fhir` serves: the table the handlers consult and the CapabilityStatement is made
//! from, and where the API is.

use ehrshare_fhir::capability::{SearchKind, SearchParam, TypeInteraction, TypeSupport};
use time::OffsetDateTime;

/// Where the FHIR API is, as clients reach it, and since when this process serves it.
#[derive(Debug, Clone)]
pub struct FhirBase {
    /// `{public_base_url}/fhir`.
    pub url: String,
    pub started: OffsetDateTime,
}

const RECORD_INTERACTIONS: &[TypeInteraction] = &[
    TypeInteraction::Read,
    TypeInteraction::Vread,
    TypeInteraction::HistoryInstance,
    TypeInteraction::SearchType,
    TypeInteraction::Create,
    TypeInteraction::Update,
    TypeInteraction::Delete,
];

macro_rules! params {
    ($($name:literal: $kind:ident),+) => {
        &[$(SearchParam { name: $name, kind: SearchKind::$kind }),+]
    };
}

macro_rules! records {
    ($($t:literal: [$($name:literal: $kind:ident),+]),+) => {
        &[PATIENT, AUDIT_EVENT, CONSENT, ORGANIZATION, LOCATION, PRACTITIONER_ROLE, $(TypeSupport {
            resource_type: $t,
            interactions: RECORD_INTERACTIONS,
            search_params: params!($($name: $kind),+ , "_id": Token, "_lastUpdated": Date),
            operations: &[],
        }),+]
    };
}

/// A registered recipient, as the counter finds them: by identity document, then by id.
const PATIENT: TypeSupport = TypeSupport {
    resource_type: "Patient",
    interactions: &[TypeInteraction::Read, TypeInteraction::SearchType],
    search_params: &[SearchParam {
        name: "identifier",
        kind: SearchKind::Token,
    }],
    operations: &[(
        "everything",
        "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    )],
};

/// The caller's provider's users' audit entries, for its user administrators.
const AUDIT_EVENT: TypeSupport = TypeSupport {
    resource_type: "AuditEvent",
    interactions: &[TypeInteraction::Read, TypeInteraction::SearchType],
    search_params: params!("patient": Reference, "date": Date, "agent": Reference),
    operations: &[],
};

/// A patient's sharing consents with the caller's provider, read-only.
const CONSENT: TypeSupport = TypeSupport {
    resource_type: "Consent",
    interactions: &[TypeInteraction::Read, TypeInteraction::SearchType],
    search_params: params!("patient": Reference),
    operations: &[],
};

/// The public directory: providers active now, their locations, their listed professionals.
const ORGANIZATION: TypeSupport = TypeSupport {
    resource_type: "Organization",
    interactions: &[TypeInteraction::Read, TypeInteraction::SearchType],
    search_params: params!("name": String, "type": Token),
    operations: &[],
};
const LOCATION: TypeSupport = TypeSupport {
    resource_type: "Location",
    interactions: &[TypeInteraction::Read, TypeInteraction::SearchType],
    search_params: params!("organization": Reference),
    operations: &[],
};
const PRACTITIONER_ROLE: TypeSupport = TypeSupport {
    resource_type: "PractitionerRole",
    interactions: &[TypeInteraction::Read, TypeInteraction::SearchType],
    search_params: params!("organization": Reference, "role": Token),
    operations: &[],
};

/// Every resource type served and what may be done with it: Patient (a recipient), ehrshare's
/// own objects (AuditEvent, Consent, and the directory's), and the clinical types, which are records (each read through the access decision, audited). A
/// type's search parameters are those R4 defines for it.
pub const SERVED: &[TypeSupport] = records!(
    "AllergyIntolerance": ["patient": Reference, "code": Token, "date": Date,
        "category": Token, "identifier": Token],
    "Condition": ["patient": Reference, "subject": Reference, "code": Token,
        "category": Token, "identifier": Token],
    "Procedure": ["patient": Reference, "subject": Reference, "code": Token, "date": Date,
        "category": Token, "status": Token, "identifier": Token],
    "MedicationRequest": ["patient": Reference, "subject": Reference, "code": Token,
        "category": Token, "status": Token, "identifier": Token],
    "MedicationDispense": ["patient": Reference, "subject": Reference, "code": Token,
        "status": Token, "identifier": Token],
    "MedicationStatement": ["patient": Reference, "subject": Reference, "code": Token,
        "category": Token, "status": Token, "identifier": Token],
    "Encounter": ["patient": Reference, "subject": Reference, "date": Date,
        "status": Token, "identifier": Token],
    "Appointment": ["patient": Reference, "date": Date, "status": Token, "identifier": Token],
    "DocumentReference": ["patient": Reference, "subject": Reference, "date": Date,
        "category": Token, "status": Token, "identifier": Token],
    "Immunization": ["patient": Reference, "date": Date, "status": Token, "identifier": Token],
    "Observation": ["patient": Reference, "subject": Reference, "code": Token, "date": Date,
        "category": Token, "status": Token, "identifier": Token],
    "DiagnosticReport": ["patient": Reference, "subject": Reference, "code": Token, "date": Date,
        "category": Token, "status": Token, "identifier": Token],
    "ImagingStudy": ["patient": Reference, "subject": Reference, "status": Token,
        "identifier": Token],
    "ServiceRequest": ["patient": Reference, "subject": Reference, "code": Token,
        "category": Token, "status": Token, "identifier": Token]
);

/// The types that are ehrshare's own objects, not deposited records.
pub const OWN_OBJECTS: [&str; 5] = [
    "AuditEvent",
    "Consent",
    "Organization",
    "Location",
    "PractitionerRole",
];

/// The support of `resource_type`, if it is served.
pub fn support(resource_type: &str) -> Option<&'static TypeSupport> {
    SERVED.iter().find(|t| t.resource_type == resource_type)
}

/// Whether `interaction` is served on `resource_type`.
pub fn serves(resource_type: &str, interaction: TypeInteraction) -> bool {
    SERVED
        .iter()
        .any(|t| t.resource_type == resource_type && t.interactions.contains(&interaction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_type_is_a_shared_type() {
        for t in SERVED
            .iter()
            .filter(|t| !OWN_OBJECTS.contains(&t.resource_type))
        {
            assert!(
                ehrshare_fhir::resource::SHARED_TYPES.contains(&t.resource_type),
                "{}",
                t.resource_type
            );
        }
        assert!(serves("Condition", TypeInteraction::Vread));
        assert!(serves("Patient", TypeInteraction::Read));
        assert!(!serves("Patient", TypeInteraction::Vread));
        assert!(serves("Condition", TypeInteraction::Delete));
        assert!(!serves("Patient", TypeInteraction::Delete));
        let has = |t: &str, p: &str| {
            support(t)
                .unwrap()
                .search_params
                .iter()
                .any(|s| s.name == p)
        };
        assert!(has("Observation", "subject") && !has("Immunization", "subject"));
        // `code` and `date` exactly where the FHIR crate knows what they read.
        for t in SERVED
            .iter()
            .filter(|t| t.resource_type != "Patient" && !OWN_OBJECTS.contains(&t.resource_type))
        {
            let r = t.resource_type;
            assert_eq!(
                has(r, "code"),
                !ehrshare_fhir::search::code_elements(r).is_empty(),
                "{r}"
            );
            assert_eq!(
                has(r, "date"),
                !ehrshare_fhir::search::date_elements(r).is_empty(),
                "{r}"
            );
            for p in ["category", "status", "identifier"] {
                let known = ehrshare_fhir::search::token_element(r, p).is_some();
                assert_eq!(has(r, p), known, "{r} {p}");
            }
        }
    }
}
