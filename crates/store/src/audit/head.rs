//! The log's head, and what an append answers.

use ehrshare_core::audit::merkle::Hash;

/// The log's size and Merkle root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

/// What an append returns: the entry's position and the tree head that includes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub head: TreeHead,
}
