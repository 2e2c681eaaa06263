//! `audit verify`: the whole log recomputed from its entries, every checkpoint's signature and
//! their order checked, the first problem named.

use ehrshare_core::audit::AuditEntry;
use ehrshare_core::audit::checkpoint::{Checkpoint, Finding};
use ehrshare_core::audit::merkle::{self, Frontier, Hash, ProofPlan};
use ehrshare_store::Db;

use crate::AppError;
use crate::checkpoint::CheckpointFile;
use crate::signer::{self};

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The recomputed root of all entries.
    pub root: Hash,
    /// The first problem, if any.
    pub finding: Option<Finding>,
    /// What is worth knowing but no problem: remains of failed writes in the checkpoint file.
    pub notices: Vec<String>,
}

/// Entries read per query while verifying.
const VERIFY_PAGE: u32 = 10_000;

/// Recomputes the tree from the entries, checks every checkpoint's signature and that each
/// extends the one before, and names the first problem. `progress(done, total)` is called as
/// entries are checked.
pub async fn verify(
    db: &Db,
    checkpoints: &CheckpointFile,
    public_key: &[u8; 32],
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<VerifyReport, AppError> {
    let instance = db.instance_id().await?;
    let read = checkpoints
        .read_all()
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    let mut notices = Vec::new();
    for line in &read.torn_prefixes {
        notices.push(format!(
            "checkpoint file line {line}: starts with the remains of a failed write (ignored); the checkpoint after it was verified"
        ));
    }
    if let Some(line) = read.torn_tail {
        notices.push(format!(
            "checkpoint file line {line}: an unfinished write (a failed append; ignored, and removed by the next append)"
        ));
    }
    let lines = read.lines;
    let mut previous = 0u64;
    let mut heads: Vec<Checkpoint> = Vec::new();
    let report = |entries: u64, root: Hash, count: usize, finding: Finding| VerifyReport {
        entries,
        checkpoints: count,
        root,
        finding: Some(finding),
        notices: Vec::new(),
    };
    for (i, line) in lines.into_iter().enumerate() {
        let n = i + 1;
        let c = match line {
            Ok(c) => c,
            Err(line) => {
                return Ok(report(
                    0,
                    merkle::empty_root(),
                    i,
                    Finding::UnreadableCheckpoint { line },
                ));
            }
        };
        if !signer::verify_signature(public_key, &c.message(), &c.signature) {
            return Ok(report(
                0,
                merkle::empty_root(),
                i,
                Finding::BadSignature { checkpoint: n },
            ));
        }
        if c.instance != instance {
            return Ok(report(
                0,
                merkle::empty_root(),
                i,
                Finding::WrongInstance { checkpoint: n },
            ));
        }
        match c.rollback {
            // A rollback names the head before it exactly (so it cannot be moved), and keeps
            // only the earlier heads the database still agrees with: those above describe
            // history that is no longer in it.
            Some(r) => {
                if r.from != previous || r.kept > c.size || r.kept > r.from.max(c.size) {
                    return Ok(report(
                        0,
                        merkle::empty_root(),
                        i,
                        Finding::NotExtending { checkpoint: n },
                    ));
                }
                heads.retain(|h| h.size <= r.kept);
                notices.push(format!(
                    "checkpoint {n}: a rollback accepted at {} (serve --accept-rollback): the database went back from {} to {} entries; signed history after entry {} is not in this database",
                    c.time, r.from, c.size, r.kept
                ));
            }
            None => {
                if heads.last().is_some_and(|prev| prev.size > c.size) {
                    return Ok(report(
                        0,
                        merkle::empty_root(),
                        i,
                        Finding::NotExtending { checkpoint: n },
                    ));
                }
            }
        }
        previous = c.size;
        heads.push(c);
    }

    let total = db.audit_size().await?;
    let mut frontier = Frontier::new();
    let mut next_head = 0usize;
    // Checkpoints of the empty log.
    if let Some(finding) = check_heads(db, &heads, &mut next_head, &frontier).await? {
        return Ok(report(0, frontier.root(), next_head, finding));
    }
    let mut from = 0u64;
    let mut disclosure: Option<Finding> = None;
    'pages: loop {
        let page = db.audit_entries_checked(from, VERIFY_PAGE).await?;
        let Some(&(last, _)) = page.last() else { break };
        from = last + 1;
        // What vouches for each entry: its stored leaf (logs from before ADR 0023), else the
        // tag in its row; and the stored subtrees of 32 and up that this page completes,
        // found by building them ahead on a copy of the frontier.
        let leaf_indices: Vec<u64> = page.iter().map(|(seq, _)| 2 * seq).collect();
        let stored = db.audit_nodes(&leaf_indices).await?;
        let tags = db.audit_leaf_tags(page[0].0, last + 1).await?;
        let mut ahead = frontier.clone();
        let mut completed = Vec::new();
        for (seq, entry) in &page {
            let Ok(entry) = entry else { break };
            if *seq != ahead.size() {
                break;
            }
            completed.extend(
                ahead
                    .push(entry.leaf_hash())
                    .into_iter()
                    .map(|(index, _)| index)
                    .filter(|index| merkle::is_stored(*index)),
            );
        }
        let subtrees = db.audit_nodes(&completed).await?;
        for (seq, entry) in &page {
            let expected = frontier.size();
            if *seq != expected {
                let finding = Finding::Missing { seq: expected };
                return Ok(report(expected, frontier.root(), next_head, finding));
            }
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let finding = Finding::Undecodable {
                        seq: *seq,
                        cause: e.to_string(),
                    };
                    return Ok(report(expected, frontier.root(), next_head, finding));
                }
            };
            let leaf = entry.leaf_hash();
            let recorded = match (stored.get(&(2 * entry.seq)), tags.get(&entry.seq)) {
                (Some(full), _) => Some(Recorded::Leaf(*full)),
                (None, Some(tag)) => Some(Recorded::Tag(*tag)),
                // Every entry has one or the other: a tag set to NULL is an edit.
                (None, None) => None,
            };
            if !recorded.is_some_and(|r| r.matches(&leaf)) {
                let finding = match find_moved(db, entry, recorded).await? {
                    Some(other) => Finding::Reordered {
                        seq: entry.seq,
                        other,
                    },
                    None => Finding::Edited { seq: entry.seq },
                };
                return Ok(report(expected, frontier.root(), next_head, finding));
            }
            for (index, hash) in frontier.push(leaf) {
                if merkle::is_stored(index) && subtrees.get(&index) != Some(&hash) {
                    let from = merkle::start_of(index);
                    let finding = Finding::Subtree {
                        from,
                        to: from + (1 << merkle::level_of(index)),
                    };
                    return Ok(report(frontier.size(), frontier.root(), next_head, finding));
                }
            }
            if let Some(finding) = check_heads(db, &heads, &mut next_head, &frontier).await? {
                return Ok(report(frontier.size(), frontier.root(), next_head, finding));
            }
        }
        // A read whose disclosure the record history no longer gives back is named once the
        // tree is checked to its end: the log's own integrity comes first.
        if disclosure.is_none() {
            disclosure = check_disclosures(db, &page).await?;
        }
        progress(frontier.size(), total);
        if page.len() < VERIFY_PAGE as usize {
            break 'pages;
        }
    }

    let entries = frontier.size();
    let recorded = db.audit_leaf_count().await?;
    let finding = if recorded > entries {
        Some(Finding::TruncatedTail { entries, recorded })
    } else if let Some((i, head)) = heads.iter().enumerate().skip(next_head).last() {
        Some(Finding::OlderThanCheckpoint {
            entries,
            checkpoint: i + 1,
            signed: head.size,
        })
    } else {
        disclosure
    };
    Ok(VerifyReport {
        entries,
        checkpoints: next_head,
        root: frontier.root(),
        finding,
        notices,
    })
}

/// Checks every checkpoint the recomputed tree has reached: its root is the root of that many
/// entries, and it extends the checkpoint before it.
/// Whether the record history still gives back what each read of `page` says left (ADR 0023):
/// the first entry it does not is named. One history read per recipient of the page.
async fn check_disclosures(
    db: &Db,
    page: &[(u64, Result<AuditEntry, ehrshare_store::StoreError>)],
) -> Result<Option<Finding>, AppError> {
    use ehrshare_core::audit::{Disclosed, VersionFact};
    let mut histories: std::collections::HashMap<uuid::Uuid, Vec<VersionFact>> =
        std::collections::HashMap::new();
    for (seq, entry) in page {
        let Ok(entry) = entry else { continue };
        let e = &entry.entry;
        let (Some(disclosed), Some(recipient)) = (&e.disclosed, e.recipient) else {
            continue;
        };
        let history = match histories.entry(recipient) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(db.record_history(recipient).await?)
            }
        };
        let cause = match disclosed {
            Disclosed::Version { version, .. } => e
                .record_ids
                .first()
                .filter(|id| {
                    history
                        .iter()
                        .any(|v| v.record == **id && v.version == *version)
                })
                .is_none()
                .then(|| format!("the recipient's record has no version {version}")),
            Disclosed::Set(set) => ehrshare_core::audit::disclosed::reconstruct(history, set)
                .err()
                .map(|m| m.to_string()),
        };
        if let Some(cause) = cause {
            return Ok(Some(Finding::Disclosure { seq: *seq, cause }));
        }
    }
    Ok(None)
}

async fn check_heads(
    db: &Db,
    heads: &[Checkpoint],
    next_head: &mut usize,
    frontier: &Frontier,
) -> Result<Option<Finding>, AppError> {
    while let Some(head) = heads.get(*next_head) {
        if head.size > frontier.size() {
            break;
        }
        if head.root != frontier.root() {
            return Ok(Some(Finding::RootMismatch {
                checkpoint: *next_head + 1,
                size: head.size,
            }));
        }
        if *next_head > 0 && !extends(db, &heads[*next_head - 1], head).await? {
            return Ok(Some(Finding::NotExtending {
                checkpoint: *next_head + 1,
            }));
        }
        *next_head += 1;
    }
    Ok(None)
}

/// Whether `new` extends `old` by the stored tree's consistency proof.
async fn extends(db: &Db, old: &Checkpoint, new: &Checkpoint) -> Result<bool, AppError> {
    if old.size == 0 || old.size == new.size {
        return Ok(old.size != new.size || old.root == new.root);
    }
    let plan =
        ProofPlan::consistency(old.size, new.size).map_err(|e| AppError::Internal(Box::new(e)))?;
    let proof = db.audit_proof(&plan).await?;
    Ok(merkle::verify_consistency(&old.root, old.size, &new.root, new.size, &proof).is_ok())
}

/// What the database recorded of an entry's leaf when it was written.
#[derive(Debug, Clone, Copy)]
enum Recorded {
    /// The leaf itself, as a tree node (logs from before ADR 0023).
    Leaf(Hash),
    /// Its first four bytes, in the entry's row.
    Tag(i32),
}

impl Recorded {
    fn matches(self, leaf: &Hash) -> bool {
        match self {
            Recorded::Leaf(full) => full == *leaf,
            Recorded::Tag(tag) => tag == merkle::leaf_tag(leaf),
        }
    }
}

/// When `entry` does not match its recorded leaf: the later entry whose content, put at this
/// position, does (the two were swapped or moved), if any.
async fn find_moved(
    db: &Db,
    entry: &AuditEntry,
    recorded: Option<Recorded>,
) -> Result<Option<u64>, AppError> {
    let Some(recorded) = recorded else {
        return Ok(None);
    };
    let mut from = entry.seq + 1;
    loop {
        // Later entries that no longer decode are passed over here: the scan reaches them.
        let page = db.audit_entries_checked(from, VERIFY_PAGE).await?;
        let Some(&(last, _)) = page.last() else {
            return Ok(None);
        };
        from = last + 1;
        for other in page.iter().filter_map(|(_, e)| e.as_ref().ok()) {
            let placed = AuditEntry {
                seq: entry.seq,
                entry: other.entry.clone(),
            };
            if recorded.matches(&placed.leaf_hash()) {
                // Four bytes of a tag match by chance among many entries: a move is named only
                // when it is mutual (this entry's content fits the other's place as well).
                if let Recorded::Tag(_) = recorded {
                    let back = AuditEntry {
                        seq: other.seq,
                        entry: entry.entry.clone(),
                    };
                    let theirs = db.audit_leaf_tags(other.seq, other.seq + 1).await?;
                    if theirs.get(&other.seq).copied() != Some(merkle::leaf_tag(&back.leaf_hash()))
                    {
                        continue;
                    }
                }
                return Ok(Some(other.seq));
            }
        }
    }
}
