//! A deposited record's lifecycle: current, or marked entered-in-error by its source provider
//! (FHIR's `entered-in-error`: the record and its versions are kept, but no longer listed).

crate::coded_enum! {
    /// A record's status.
    pub enum RecordStatus {
        /// The latest version stands.
        Current = "current";
        /// Withdrawn by its source provider as a mistake.
        EnteredInError = "entered-in-error";
    }
}
