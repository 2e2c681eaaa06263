//! ehrshare-fhir: FHIR R4 wire structures (serde) for the resources ehrshare serves.
//!
//! Invariant: this is the only crate that knows FHIR JSON. It maps to and from `core` types and
//! never does IO. Structures are hand-written for the resources we serve (generated FHIR crates
//! cost minutes of build time and lack R4).

pub mod audit_event;
pub mod build;
pub mod bundle;
pub mod capability;
pub mod consent;
pub mod datatypes;
pub mod directory;
pub mod export;
pub mod headline;
pub mod json;
pub mod operation_outcome;
pub mod problem;
pub mod r4;
pub mod resource;
pub mod search;
pub mod served;
pub mod subject;

/// The media type of FHIR JSON (R4).
pub const FHIR_JSON: &str = "application/fhir+json";
