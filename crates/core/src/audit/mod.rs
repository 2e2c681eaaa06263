//! The audit log's domain: what an entry says, its canonical bytes, and the Merkle maths that
//! make the log tamper-evident (SPEC 3.9).

pub mod checkpoint;
pub mod disclosed;
pub mod entry;
pub mod merkle;

pub use disclosed::{Disclosed, SetRef, VersionFact};
pub use entry::{Actor, ActorKind, AuditEntry, EntryError, NewAuditEntry, Outcome};
pub use merkle::{Frontier, Hash, ProofError, ProofPlan};
