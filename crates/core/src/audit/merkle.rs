//! RFC 6962 Merkle tree maths for the audit log, over a tree stored as its perfect subtrees.
//!
//! Hashes: a leaf is `SHA-256(0x00 || entry bytes)`, an interior node `SHA-256(0x01 || l || r)`.
//!
//! Storage model: the store keeps the hash of every *perfect* subtree (a complete subtree of
//! 2^level leaves starting at a multiple of 2^level) of [`STORED_FROM_LEVEL`] or more, keyed by
//! its in-order index (leaf `i` is `2i`; the node over leaves `[s, s + 2^l)` is
//! `(s >> l) << (l + 1) | (2^l - 1)`). A lower one is computed when needed from the at most
//! 16 entries it covers ([`subtree_hash`]); logs written before ADR 0023 keep every level, and
//! a stored node is always used. Perfect
//! subtrees never change once written, so the stored tree is append-only. Nodes on the right edge
//! of a tree whose size is not a power of two are not stored: their value is the RFC 6962 hash
//! of the leaf range they cover, computed from at most `log2 n` stored perfect subtrees.
//!
//! The proof *shapes* (which nodes an inclusion or consistency proof needs) and the proof
//! *verification* come from `ct-merkle`; this module maps those nodes to stored perfect subtrees
//! ([`ProofPlan`]), so a proof costs O(log n) reads in one query.

use std::collections::{BTreeMap, BTreeSet};

use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::{Digest, Sha256};

/// A SHA-256 output.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256()` (RFC 6962 2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The lowest level of perfect subtree the store keeps (ADR 0023): 32 leaves and up, about one
/// node row every 16 entries instead of two an entry. Fixed: a log relies on finding every node
/// at this level and above.
pub const STORED_FROM_LEVEL: u32 = 5;

/// The level of the node at in-order index `index` (0 for a leaf).
pub fn level_of(index: u64) -> u32 {
    index.trailing_ones()
}

/// The first leaf of the perfect subtree at in-order index `index`.
pub fn start_of(index: u64) -> u64 {
    let level = level_of(index);
    (index >> (level + 1)) << level
}

/// Whether the store keeps the perfect subtree at in-order index `index`.
pub fn is_stored(index: u64) -> bool {
    level_of(index) >= STORED_FROM_LEVEL
}

/// The hash of a perfect subtree from its leaves' hashes, left to right (a power of two of
/// them; `None` otherwise).
pub fn subtree_hash(leaves: &[Hash]) -> Option<Hash> {
    if !leaves.len().is_power_of_two() {
        return None;
    }
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level.first().copied()
}

/// The first four bytes of a leaf hash, kept in the entry's row (ADR 0023): `audit verify`
/// names an entry changed without it, where no stored leaf exists any more to compare.
pub fn leaf_tag(leaf: &Hash) -> i32 {
    i32::from_be_bytes([leaf[0], leaf[1], leaf[2], leaf[3]])
}

/// In-order index of the perfect subtree of `2^level` leaves starting at leaf `start`
/// (`start` must be a multiple of `2^level`).
pub fn perfect_index(level: u32, start: u64) -> u64 {
    ((start >> level) << (level + 1)) | ((1u64 << level) - 1)
}

/// The perfect subtrees that make up leaves `[start, end)`, left to right, when `start` is
/// aligned to the largest of them (always so for the ranges RFC 6962 trees use). Each is
/// `(level, start)`.
fn decompose(start: u64, end: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let remaining = end - at;
        // Largest power of two <= remaining that keeps `at` aligned.
        let mut level = 63 - remaining.leading_zeros();
        while level > 0 && !at.is_multiple_of(1u64 << level) {
            level -= 1;
        }
        out.push((level, at));
        at += 1u64 << level;
    }
    out
}

/// Folds perfect subtree hashes, left to right, into the RFC 6962 hash of the range they cover.
fn fold_right(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

/// The leaf range covered by ct-merkle's in-order node `index` in a tree of `size` leaves.
fn covered_range(index: u64, size: u64) -> (u64, u64) {
    let level = index.trailing_ones();
    let start = (index >> (level + 1)) << level;
    let end = start.saturating_add(1u64 << level).min(size);
    (start, end)
}

/// The right edge of the tree: the perfect subtrees whose sizes are the binary digits of the tree
/// size. Appending a leaf needs nothing else, so the writer keeps it in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)`, largest first.
    peaks: Vec<(u32, Hash)>,
}

/// Why a frontier could not be rebuilt from stored nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored tree node {index} is missing")]
pub struct MissingNode {
    pub index: u64,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The in-order indices of the stored nodes [`Frontier::restore`] needs for a tree of `size`.
    pub fn indices_for(size: u64) -> Vec<u64> {
        decompose(0, size)
            .into_iter()
            .map(|(l, s)| perfect_index(l, s))
            .collect()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its stored perfect subtrees.
    pub fn restore(size: u64, nodes: &BTreeMap<u64, Hash>) -> Result<Frontier, MissingNode> {
        let mut peaks = Vec::new();
        for (level, start) in decompose(0, size) {
            let index = perfect_index(level, start);
            let hash = nodes.get(&index).ok_or(MissingNode { index })?;
            peaks.push((level, *hash));
        }
        Ok(Frontier { size, peaks })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; returns the perfect subtrees this completes (the leaf itself first), as
    /// `(in-order index, hash)`, for the store to keep.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u64, Hash)> {
        let leaf_at = self.size;
        let mut created = vec![(perfect_index(0, leaf_at), leaf)];
        self.peaks.push((0, leaf));
        while self.peaks.len() >= 2 {
            let n = self.peaks.len();
            let (lr, right) = self.peaks[n - 1];
            let (ll, left) = self.peaks[n - 2];
            if ll != lr {
                break;
            }
            self.peaks.truncate(n - 2);
            let parent = node_hash(&left, &right);
            let level = lr + 1;
            let start = (leaf_at >> level) << level;
            created.push((perfect_index(level, start), parent));
            self.peaks.push((level, parent));
        }
        self.size += 1;
        created
    }

    /// The tree head: RFC 6962 root of the current tree.
    pub fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.peaks.iter().map(|(_, h)| *h).collect();
        fold_right(&hashes).unwrap_or_else(empty_root)
    }
}

/// Why a proof cannot be made or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of {size} leaves")]
    OutOfRange { index: u64, size: u64 },
    #[error("a consistency proof needs a non-empty old tree no larger than the new one")]
    BadSizes,
    #[error("stored tree node {0} is missing")]
    MissingNode(u64),
    #[error("the proof does not verify")]
    Invalid,
}

/// Which stored nodes a proof needs and how to combine them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    /// One element of the proof per entry: the stored perfect subtrees whose fold it is.
    parts: Vec<Vec<u64>>,
}

impl ProofPlan {
    /// The plan of the inclusion proof of leaf `index` in a tree of `size` leaves.
    pub fn inclusion(size: u64, index: u64) -> Result<ProofPlan, ProofError> {
        if index >= size || index > u64::MAX / 2 {
            return Err(ProofError::OutOfRange { index, size });
        }
        let nodes = ct_merkle::indices_for_inclusion_proof(size, index);
        Ok(ProofPlan::for_nodes(&nodes, size))
    }

    /// The plan of the consistency proof from a tree of `old_size` leaves to one of `new_size`.
    pub fn consistency(old_size: u64, new_size: u64) -> Result<ProofPlan, ProofError> {
        if old_size == 0 || old_size > new_size || new_size > u64::MAX / 2 {
            return Err(ProofError::BadSizes);
        }
        let nodes = ct_merkle::indices_for_consistency_proof(old_size, new_size - old_size);
        Ok(ProofPlan::for_nodes(&nodes, new_size))
    }

    fn for_nodes(nodes: &[u64], size: u64) -> ProofPlan {
        let parts = nodes
            .iter()
            .map(|&node| {
                let (start, end) = covered_range(node, size);
                decompose(start, end)
                    .into_iter()
                    .map(|(l, s)| perfect_index(l, s))
                    .collect()
            })
            .collect();
        ProofPlan { parts }
    }

    /// Every stored node the proof needs (fetch these in one query).
    pub fn needed(&self) -> BTreeSet<u64> {
        self.parts.iter().flatten().copied().collect()
    }

    /// The proof's hashes, in order, from the fetched nodes.
    pub fn assemble(&self, nodes: &BTreeMap<u64, Hash>) -> Result<Vec<Hash>, ProofError> {
        self.parts
            .iter()
            .map(|part| {
                let hashes = part
                    .iter()
                    .map(|i| nodes.get(i).copied().ok_or(ProofError::MissingNode(*i)))
                    .collect::<Result<Vec<Hash>, ProofError>>()?;
                fold_right(&hashes).ok_or(ProofError::Invalid)
            })
            .collect()
    }
}

/// Checks that `entry_bytes` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    root: &Hash,
    size: u64,
    index: u64,
    entry_bytes: &[u8],
    proof: &[Hash],
) -> Result<(), ProofError> {
    let root = RootHash::<Sha256>::new((*root).into(), size);
    let proof = InclusionProof::<Sha256>::from_digests(proof.iter().map(|h| h.into()));
    root.verify_inclusion(&entry_bytes, index, &proof)
        .map_err(|_| ProofError::Invalid)
}

/// Checks that the tree (`new_root`, `new_size`) extends the tree (`old_root`, `old_size`).
pub fn verify_consistency(
    old_root: &Hash,
    old_size: u64,
    new_root: &Hash,
    new_size: u64,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::BadSizes);
    }
    let old = RootHash::<Sha256>::new((*old_root).into(), old_size);
    let new = RootHash::<Sha256>::new((*new_root).into(), new_size);
    let proof = ConsistencyProof::<Sha256>::from_digests(proof.iter().map(|h| h.into()));
    new.verify_consistency(&old, &proof)
        .map_err(|_| ProofError::Invalid)
}

#[cfg(test)]
mod tests {
    //! Checked against a naive recursive implementation of RFC 6962 section 2.1, written from
    //! the RFC's text and sharing nothing with the code above but the two hash functions.
    use proptest::prelude::*;

    use super::*;

    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn mth(d: &[Vec<u8>]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => leaf_hash(&d[0]),
            n => {
                let k = split(n);
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    fn path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
        let n = d.len();
        if n <= 1 {
            return vec![];
        }
        let k = split(n);
        if m < k {
            let mut p = path(m, &d[..k]);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = path(m - k, &d[k..]);
            p.push(mth(&d[..k]));
            p
        }
    }

    fn subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![mth(d)] };
        }
        let k = split(n);
        if m <= k {
            let mut p = subproof(m, &d[..k], b);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = subproof(m - k, &d[k..], false);
            p.push(mth(&d[..k]));
            p
        }
    }

    #[test]
    fn a_subtree_is_computed_as_the_frontier_builds_it_and_only_high_ones_are_stored() {
        let data = leaves(64);
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let mut f = Frontier::new();
        let mut created = BTreeMap::new();
        for h in &hashes {
            created.extend(f.push(*h));
        }
        for (index, hash) in &created {
            let (start, level) = (start_of(*index) as usize, level_of(*index));
            let computed = subtree_hash(&hashes[start..start + (1 << level)]);
            assert_eq!(computed, Some(*hash), "node {index}");
            assert_eq!(is_stored(*index), level >= STORED_FROM_LEVEL);
        }
        // 64 leaves: two level-5 nodes and one level-6 node are kept.
        let kept: Vec<u64> = created.keys().copied().filter(|i| is_stored(*i)).collect();
        assert_eq!(kept, vec![31, 63, 95]);
        assert_eq!(subtree_hash(&hashes[..3]), None);
        assert_eq!(
            leaf_tag(
                &[0x80, 1, 2, 3]
                    .iter()
                    .chain(&[0; 28])
                    .copied()
                    .collect::<Vec<u8>>()
                    .try_into()
                    .unwrap()
            ),
            i32::from_be_bytes([0x80, 1, 2, 3])
        );
    }

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("entry {i}").into_bytes()).collect()
    }

    /// Builds the stored tree by appending, as the audit writer does.
    fn stored(d: &[Vec<u8>]) -> (Frontier, BTreeMap<u64, Hash>) {
        let mut f = Frontier::new();
        let mut nodes = BTreeMap::new();
        for leaf in d {
            for (i, h) in f.push(leaf_hash(leaf)) {
                assert!(nodes.insert(i, h).is_none(), "node {i} written twice");
            }
        }
        (f, nodes)
    }

    #[test]
    fn known_small_trees() {
        assert_eq!(Frontier::new().root(), empty_root());
        let d = leaves(3);
        let (f, nodes) = stored(&d);
        assert_eq!(f.root(), mth(&d));
        // leaves 0, 2, 4; node 1 = H(l0, l1); nothing else is perfect.
        assert_eq!(nodes.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 4]);
        assert_eq!(perfect_index(2, 0), 3);
        assert_eq!(perfect_index(1, 2), 5);
    }

    proptest! {
        #[test]
        fn root_matches_the_rfc(n in 0usize..300) {
            let d = leaves(n);
            let (f, nodes) = stored(&d);
            prop_assert_eq!(f.root(), mth(&d));
            prop_assert_eq!(f.size(), n as u64);
            let restored = Frontier::restore(n as u64, &nodes).unwrap();
            prop_assert_eq!(restored, f);
        }

        #[test]
        fn inclusion_proofs_match_the_rfc_and_verify(n in 1usize..300, seed in any::<u64>()) {
            let d = leaves(n);
            let m = (seed % n as u64) as usize;
            let (f, nodes) = stored(&d);
            let plan = ProofPlan::inclusion(n as u64, m as u64).unwrap();
            prop_assert!(plan.needed().len() <= 2 * 64);
            let proof = plan.assemble(&nodes).unwrap();
            prop_assert_eq!(&proof, &path(m, &d));
            prop_assert!(verify_inclusion(&f.root(), n as u64, m as u64, &d[m], &proof).is_ok());
            // A tampered leaf, a wrong index or a wrong root fails.
            prop_assert!(verify_inclusion(&f.root(), n as u64, m as u64, b"tampered", &proof).is_err());
            if n > 1 {
                let other = (m + 1) % n;
                prop_assert!(verify_inclusion(&f.root(), n as u64, other as u64, &d[m], &proof).is_err());
            }
            prop_assert!(verify_inclusion(&leaf_hash(b"x"), n as u64, m as u64, &d[m], &proof).is_err());
        }

        #[test]
        fn consistency_proofs_match_the_rfc_and_verify(n in 1usize..300, seed in any::<u64>()) {
            let d = leaves(n);
            let m = 1 + (seed % n as u64) as usize;
            let (f, nodes) = stored(&d);
            let (old, _) = stored(&d[..m]);
            let plan = ProofPlan::consistency(m as u64, n as u64).unwrap();
            let proof = plan.assemble(&nodes).unwrap();
            prop_assert_eq!(&proof, &subproof(m, &d, true));
            prop_assert!(verify_consistency(&old.root(), m as u64, &f.root(), n as u64, &proof).is_ok());
            // A different old tree (one leaf changed) is not extended by the new one.
            let mut forged = d[..m].to_vec();
            forged[m - 1] = b"forged".to_vec();
            prop_assert!(verify_consistency(&mth(&forged), m as u64, &f.root(), n as u64, &proof).is_err());
        }
    }

    #[test]
    fn refuses_impossible_requests_without_panicking() {
        assert_eq!(
            ProofPlan::inclusion(0, 0),
            Err(ProofError::OutOfRange { index: 0, size: 0 })
        );
        assert!(ProofPlan::inclusion(5, 5).is_err());
        assert_eq!(ProofPlan::consistency(0, 3), Err(ProofError::BadSizes));
        assert_eq!(ProofPlan::consistency(4, 3), Err(ProofError::BadSizes));
        let (_, nodes) = stored(&leaves(2));
        let plan = ProofPlan::inclusion(8, 7).unwrap();
        assert!(matches!(
            plan.assemble(&nodes),
            Err(ProofError::MissingNode(_))
        ));
        assert!(verify_consistency(&empty_root(), 0, &empty_root(), 0, &[]).is_err());
    }
}
