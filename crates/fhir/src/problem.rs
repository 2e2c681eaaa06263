//! A problem found in a resource: what every check (JSON, R4, our rules) reports.

/// The most problems one answer lists: enough to fix a resource, bounded whatever is sent.
pub const MAX_PROBLEMS: usize = 100;

/// One structural problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a FHIRPath-like path.
    pub path: String,
    pub message: String,
}
