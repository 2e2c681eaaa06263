//! Signed tree heads ("checkpoints") and the rules `audit verify` applies to a log.
//!
//! A checkpoint says: "database `instance` held `size` entries whose Merkle root was `root`, at
//! `time`", signed with the server's Ed25519 key. Checkpoints are appended to a file outside the
//! database. Verification recomputes the tree from the entries and compares; this module holds
//! the pure parts: the signed message and the verdicts. Signature checking itself is done by
//! the caller with the public key (this crate stays free of key handling).

use std::fmt;

use super::merkle::Hash;

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The database's instance id (`ehrshare_meta.instance_id`).
    pub instance: String,
    pub size: u64,
    pub root: Hash,
    /// When it was signed, RFC 3339 UTC.
    pub time: String,
    /// First 8 bytes of SHA-256 of the public key, hex: which key signed.
    pub key_id: String,
    pub signature: [u8; 64],
    /// Set on the head signed when an operator accepted a database behind the last checkpoint
    /// (`serve --accept-rollback`, issue 22): the history after `kept` is not in it.
    pub rollback: Option<Rollback>,
}

/// What an accepted rollback abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollback {
    /// The size of the checkpoint before it (the head given up), 0 if there was none.
    pub from: u64,
    /// The largest earlier signed size the database still agrees with: heads above it
    /// describe history that is no longer in the database.
    pub kept: u64,
}

impl Checkpoint {
    /// The exact bytes that are signed.
    pub fn signed_message(instance: &str, size: u64, root: &Hash, time: &str) -> Vec<u8> {
        format!(
            "ehrshare audit checkpoint v1\ninstance {instance}\nsize {size}\nroot {}\ntime {time}\n",
            hex(root)
        )
        .into_bytes()
    }

    /// The exact bytes signed for a rollback's head: apart from a checkpoint's, so that no
    /// checkpoint's signature can pass for a rollback's.
    pub fn rollback_message(
        instance: &str,
        size: u64,
        root: &Hash,
        time: &str,
        rollback: Rollback,
    ) -> Vec<u8> {
        format!(
            "ehrshare audit rollback v1\ninstance {instance}\nfrom {}\nkept {}\nsize {size}\nroot {}\ntime {time}\n",
            rollback.from,
            rollback.kept,
            hex(root)
        )
        .into_bytes()
    }

    /// The signed bytes of this checkpoint.
    pub fn message(&self) -> Vec<u8> {
        match self.rollback {
            None => Checkpoint::signed_message(&self.instance, self.size, &self.root, &self.time),
            Some(r) => {
                Checkpoint::rollback_message(&self.instance, self.size, &self.root, &self.time, r)
            }
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex into exactly `N` bytes.
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != N * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The first problem `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Entry `seq` does not match the leaf recorded for it: its content was changed.
    Edited { seq: u64 },
    /// Entry `seq` holds what was written as entry `other`: entries were reordered.
    Reordered { seq: u64, other: u64 },
    /// There is no entry `seq`, though later entries exist: it was deleted.
    Missing { seq: u64 },
    /// The log ends at `entries`, but the tree shows `recorded` were written: the tail was cut.
    TruncatedTail { entries: u64, recorded: u64 },
    /// The database holds `entries`, fewer than checkpoint `checkpoint` signed (`signed`), and
    /// nothing shows it ever held more: an older copy of the database was restored.
    OlderThanCheckpoint {
        entries: u64,
        checkpoint: usize,
        signed: u64,
    },
    /// Checkpoint `checkpoint`'s root is not the root of the first `size` entries: entries
    /// before `size` were rewritten together with the tree.
    RootMismatch { checkpoint: usize, size: u64 },
    /// Checkpoint `checkpoint`'s signature does not verify with the given key.
    BadSignature { checkpoint: usize },
    /// Checkpoint `checkpoint` is for another database.
    WrongInstance { checkpoint: usize },
    /// Checkpoint `checkpoint` is smaller than the one before it, or its consistency proof
    /// from the one before it fails: it does not extend it.
    NotExtending { checkpoint: usize },
    /// A line of the checkpoint file cannot be read.
    UnreadableCheckpoint { line: usize },
    /// Entry `seq`'s stored fields no longer decode (`cause`): they were altered.
    Undecodable { seq: u64, cause: String },
    /// Entries `[from, to)` match what was recorded of each, but not the tree's stored subtree
    /// over them: an entry there was changed together with its leaf tag, or the node was.
    Subtree { from: u64, to: u64 },
    /// Entry `seq` is intact, but the record history no longer gives back the records and
    /// versions it says left (`cause`): the history was altered (ADR 0023).
    Disclosure { seq: u64, cause: String },
}

impl Finding {
    /// The sequence number where the log first goes wrong, if the finding names one.
    pub fn first_bad_seq(&self) -> Option<u64> {
        match self {
            Finding::Edited { seq }
            | Finding::Reordered { seq, .. }
            | Finding::Missing { seq }
            | Finding::Undecodable { seq, .. }
            | Finding::Disclosure { seq, .. } => Some(*seq),
            Finding::Subtree { from, .. } => Some(*from),
            Finding::TruncatedTail { entries, .. }
            | Finding::OlderThanCheckpoint { entries, .. } => Some(*entries),
            Finding::RootMismatch { .. }
            | Finding::BadSignature { .. }
            | Finding::WrongInstance { .. }
            | Finding::NotExtending { .. }
            | Finding::UnreadableCheckpoint { .. } => None,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Edited { seq } => write!(
                f,
                "entry {seq}: edited (its content does not match its recorded leaf hash)"
            ),
            Finding::Reordered { seq, other } => write!(
                f,
                "entry {seq}: reordered (it holds what was written as entry {other})"
            ),
            Finding::Missing { seq } => {
                write!(f, "entry {seq}: missing (deleted; later entries exist)")
            }
            Finding::TruncatedTail { entries, recorded } => write!(
                f,
                "entry {entries}: truncated tail (the log ends at {entries} entries but {recorded} were written)"
            ),
            Finding::OlderThanCheckpoint {
                entries,
                checkpoint,
                signed,
            } => write!(
                f,
                "entry {entries}: database older than the last checkpoint (it holds {entries} entries; checkpoint {checkpoint} signed {signed})"
            ),
            Finding::RootMismatch { checkpoint, size } => write!(
                f,
                "checkpoint {checkpoint}: the first {size} entries do not have the signed root (entries and tree were rewritten)"
            ),
            Finding::BadSignature { checkpoint } => {
                write!(f, "checkpoint {checkpoint}: bad signature")
            }
            Finding::WrongInstance { checkpoint } => {
                write!(f, "checkpoint {checkpoint}: signed for another database")
            }
            Finding::NotExtending { checkpoint } => write!(
                f,
                "checkpoint {checkpoint}: does not extend the checkpoint before it"
            ),
            Finding::UnreadableCheckpoint { line } => {
                write!(f, "checkpoint file line {line}: unreadable")
            }
            Finding::Undecodable { seq, cause } => write!(
                f,
                "entry {seq}: cannot be decoded (its stored fields were altered: {cause})"
            ),
            Finding::Subtree { from, to } => write!(
                f,
                "entry {from}: entries {from} to {} do not match the tree's stored node over them (one was changed together with what its row records of it, or the node was)",
                to - 1
            ),
            Finding::Disclosure { seq, cause } => write!(
                f,
                "entry {seq}: the record history no longer gives what it disclosed ({cause})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex::<4>("0001ABff"), Some(bytes));
        assert_eq!(unhex::<4>("0001ab"), None);
        assert_eq!(unhex::<2>("zz00"), None);
        assert_eq!(unhex::<2>("é0"), None);
    }

    #[test]
    fn signed_message_names_everything_signed() {
        let m = Checkpoint::signed_message("abc", 7, &[0x11; 32], "2026-01-15T01:30:00Z");
        let text = String::from_utf8(m).unwrap();
        assert!(text.starts_with("ehrshare audit checkpoint v1\n"));
        assert!(text.contains("instance abc\n"));
        assert!(text.contains("size 7\n"));
        assert!(text.contains(&format!("root {}\n", "11".repeat(32))));
        assert!(text.ends_with("time 2026-01-15T01:30:00Z\n"));
    }

    #[test]
    fn findings_name_the_first_bad_position() {
        assert_eq!(Finding::Edited { seq: 5 }.first_bad_seq(), Some(5));
        assert_eq!(
            Finding::Missing { seq: 3 }.to_string(),
            "entry 3: missing (deleted; later entries exist)"
        );
        assert_eq!(
            Finding::TruncatedTail {
                entries: 10,
                recorded: 12
            }
            .first_bad_seq(),
            Some(10)
        );
        assert_eq!(
            Finding::BadSignature { checkpoint: 2 }.first_bad_seq(),
            None
        );
    }
}
