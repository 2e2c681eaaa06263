//! What `/fhir` serves: the table the handlers consult and the CapabilityStatement is made
//! from, and where the API is.

use ehrshare_fhir::capability::{TypeInteraction, TypeSupport};
use time::OffsetDateTime;

/// Where the FHIR API is, as clients reach it, and since when this process serves it.
#[derive(Debug, Clone)]
pub struct FhirBase {
    /// `{public_base_url}/fhir`.
    pub url: String,
    pub started: OffsetDateTime,
}

const RECORD_INTERACTIONS: &[TypeInteraction] = &[TypeInteraction::Read, TypeInteraction::Vread];

macro_rules! records {
    ($($t:literal),+) => {
        &[$(TypeSupport {
            resource_type: $t,
            interactions: RECORD_INTERACTIONS,
            search_params: &[],
        }),+]
    };
}

/// Every resource type served and what may be done with it. The clinical types are records
/// (each read through the access decision, audited); Patient, the recipient, comes with the
/// recipient's own view.
pub const SERVED: &[TypeSupport] = records!(
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
    "ServiceRequest"
);

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
    fn every_served_type_is_a_shared_record_type() {
        for t in SERVED {
            assert!(
                ehrshare_fhir::resource::SHARED_TYPES.contains(&t.resource_type),
                "{}",
                t.resource_type
            );
        }
        assert!(serves("Condition", TypeInteraction::Vread));
        assert!(!serves("Patient", TypeInteraction::Read));
        assert!(!serves("Condition", TypeInteraction::Delete));
    }
}
