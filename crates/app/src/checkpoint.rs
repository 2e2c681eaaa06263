//! Signed checkpoints of the audit log (ADR 0008): the file of signed tree heads, when to sign
//! one, and the check at start that the database still begins with the last head signed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ehrshare_core::audit::checkpoint::{Checkpoint, Rollback, hex, unhex};
use ehrshare_core::audit::merkle::{self, Hash, ProofPlan};
use ehrshare_store::Db;
use ehrshare_store::audit::TreeHead;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use crate::AppError;
use crate::signer::{self, Signer};

/// When to sign a new tree head.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// After this many new entries.
    pub every_entries: u64,
    /// Or after this long, if any entry was added.
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every_entries: 10_000,
            every: Duration::from_secs(60),
        }
    }
}

/// Signs `size` and `root` as a checkpoint, or as a rollback's head.
pub(crate) fn sign_head(
    instance: &str,
    signer: &dyn Signer,
    size: u64,
    root: Hash,
    at: time::OffsetDateTime,
    rollback: Option<Rollback>,
) -> Result<Checkpoint, AppError> {
    let time = at
        .format(&Rfc3339)
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    let message = match rollback {
        None => Checkpoint::signed_message(instance, size, &root, &time),
        Some(r) => Checkpoint::rollback_message(instance, size, &root, &time, r),
    };
    Ok(Checkpoint {
        instance: instance.to_owned(),
        size,
        root,
        time,
        key_id: signer::key_id(&signer.public_key()),
        signature: signer.sign(&message),
        rollback,
    })
}

/// Whether the database's tree of `head` begins with the tree `(size, root)` a checkpoint
/// signed, by the stored tree's consistency proof.
pub(crate) async fn agrees(
    db: &Db,
    size: u64,
    root: &Hash,
    head: &TreeHead,
) -> Result<bool, AppError> {
    if size > head.size {
        return Ok(false);
    }
    if size == 0 {
        return Ok(*root == merkle::empty_root());
    }
    if size == head.size {
        return Ok(*root == head.root);
    }
    let plan =
        ProofPlan::consistency(size, head.size).map_err(|e| AppError::Internal(Box::new(e)))?;
    match db.audit_proof(&plan).await {
        Ok(proof) => {
            Ok(merkle::verify_consistency(root, size, &head.root, head.size, &proof).is_ok())
        }
        Err(ehrshare_store::StoreError::Corrupt(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Reads the checkpoint file at start and holds the database to it (issue 22): a database
/// whose audit log does not begin with the last head this server signed (an older copy, a
/// restored backup, or one written to since it was restored), or that has entries while the
/// file has no checkpoint of it (a lost or misplaced file), is refused, so that no sequence
/// number is used twice and no forked history is signed, unless `accept_rollback`: then the
/// rollback is signed into the file as the new head, and `audit verify` names it. A file of
/// another database is refused always. On the first start (an empty database, no checkpoint)
/// the empty tree is signed at once, so that a later loss of the file cannot pass for a first
/// start.
pub(crate) async fn open_checkpoints(
    db: &Db,
    audit: &ehrshare_store::AuditLog,
    signer: Box<dyn Signer>,
    file: CheckpointFile,
    now: time::OffsetDateTime,
    accept_rollback: bool,
) -> Result<Checkpoints, AppError> {
    let instance = db.instance_id().await?;
    let read = file
        .read_all()
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    // The head as committed now, read after the file: every head in it was signed of a log
    // the database had committed, so a server sharing the file and the database that signed
    // one meanwhile (ADR 0024) cannot make this one look behind.
    let head = audit.sync().await?;
    let public_key = signer.public_key();
    // Only what this server's key signed counts: a forged line cannot force a refusal.
    let own: Vec<Checkpoint> = read
        .lines
        .into_iter()
        .filter_map(Result::ok)
        .filter(|c| signer::verify_signature(&public_key, &c.message(), &c.signature))
        .collect();
    let refuse = |code: &'static str, message: String| {
        Err(AppError::Conflict {
            code,
            message: format!("refusing to start: {message}"),
        })
    };
    let path = file.path().display().to_string();
    if let Some(last) = own.last()
        && last.instance != instance
    {
        return refuse(
            "audit-checkpoints-other-database",
            format!(
                "checkpoint file {path} was signed for database {}, not this one ({instance}); point audit_checkpoint_file at this database's file",
                last.instance
            ),
        );
    }
    let write = |c: &Checkpoint| -> Result<(), AppError> {
        file.append(&CheckpointLine::from(c))
            .map_err(|e| AppError::Internal(Box::new(e)))
    };
    let hint = "Restore the newer database, or, if going back is intended, run `ehrshare serve --accept-rollback` once: the rollback is signed into the checkpoint file and named by `ehrshare audit verify`.";
    let from = match own.last() {
        None if head.size == 0 => {
            write(&sign_head(
                &instance,
                signer.as_ref(),
                0,
                head.root,
                now,
                None,
            )?)?;
            return Ok(Checkpoints {
                instance,
                signer,
                file,
                last_size: tokio::sync::Mutex::new(Some(0)),
                published: Default::default(),
            });
        }
        Some(last) if agrees(db, last.size, &last.root, &head).await? => {
            return Ok(Checkpoints {
                instance,
                signer,
                file,
                last_size: tokio::sync::Mutex::new(Some(last.size)),
                published: Default::default(),
            });
        }
        None if !accept_rollback => {
            return refuse(
                "audit-checkpoints-missing",
                format!(
                    "the database holds {} audit entries but checkpoint file {path} holds no checkpoint of them: if the file was moved, set audit_checkpoint_file (EHRSHARE_AUDIT_CHECKPOINT_FILE) to it; if it is lost, `ehrshare serve --accept-rollback` starts a new signed chain here (recorded)",
                    head.size
                ),
            );
        }
        Some(last) if !accept_rollback && last.size > head.size => {
            return refuse(
                "audit-database-behind",
                format!(
                    "the database holds {} audit entries but checkpoint file {path} signed {} at {}: it is an older copy (a restored backup?), and serving it would use sequence numbers {}.. again and sign a forked history. {hint}",
                    head.size, last.size, last.time, head.size
                ),
            );
        }
        Some(last) if !accept_rollback => {
            return refuse(
                "audit-history-diverged",
                format!(
                    "the database's audit log ({} entries) does not begin with the {} entries checkpoint file {path} signed at {}: it was restored and written to since, or altered. {hint}",
                    head.size, last.size, last.time
                ),
            );
        }
        None => 0,
        Some(last) => last.size,
    };
    // Accepted: the largest earlier signed size the database still agrees with is kept.
    let mut kept = 0;
    for c in own.iter().rev() {
        if c.size <= head.size && agrees(db, c.size, &c.root, &head).await? {
            kept = c.size;
            break;
        }
    }
    let rollback = Rollback { from, kept };
    write(&sign_head(
        &instance,
        signer.as_ref(),
        head.size,
        head.root,
        now,
        Some(rollback),
    )?)?;
    tracing::warn!(
        from,
        kept,
        to = head.size,
        "audit rollback accepted and signed into the checkpoint file"
    );
    Ok(Checkpoints {
        instance,
        signer,
        file,
        last_size: tokio::sync::Mutex::new(Some(head.size)),
        published: Default::default(),
    })
}

/// The checkpoint state an [`App`] holds when checkpoints are enabled.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    pub(crate) instance: String,
    pub(crate) signer: Box<dyn Signer>,
    pub(crate) file: CheckpointFile,
    pub(crate) last_size: tokio::sync::Mutex<Option<u64>>,
    /// The heads published (`transparency`), read from the file as it grows.
    pub(crate) published: tokio::sync::Mutex<Published>,
}

/// The heads the server publishes (`transparency`, ADR 0020), read from the checkpoint file
/// as it grows.
/// The published heads read so far: what describes the log (oldest first, sizes increasing), and how
/// far into the file they were read.
#[derive(Debug, Default)]
pub struct Published {
    pub(crate) offset: u64,
    pub(crate) heads: Vec<Checkpoint>,
}

impl Published {
    /// Takes a head read from the file (already checked: this instance, the audit key's).
    /// After an accepted rollback, the heads above its `kept` size described history the
    /// database no longer holds: they are dropped.
    pub(crate) fn take(&mut self, c: Checkpoint) {
        if let Some(r) = c.rollback {
            self.heads.retain(|earlier| earlier.size <= r.kept);
        }
        // A head never shrinks the list's order: a rollback's head is the new last.
        self.heads
            .retain(|earlier| earlier.size < c.size || c.rollback.is_some());
        self.heads.push(c);
    }
}

/// Reads the lines appended to `path` since `from`: whether the file was replaced (shorter
/// than `from`: read from the start, and the caller starts over), the offset after the
/// complete lines read, and those lines (a line still being written waits for the next read).
pub(crate) fn read_from(
    path: &std::path::Path,
    from: u64,
) -> std::io::Result<(bool, u64, Vec<String>)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((from > 0, 0, Vec::new())),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let (reset, start) = if len < from { (true, 0) } else { (false, from) };
    if len == start {
        return Ok((reset, start, Vec::new()));
    }
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(len - start).read_to_end(&mut bytes)?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = String::from_utf8_lossy(&bytes[..complete])
        .lines()
        .map(str::to_owned)
        .collect();
    Ok((reset, start + complete as u64, lines))
}

/// The append-only file of signed tree heads, one JSON object per line.
#[derive(Debug, Clone)]
pub struct CheckpointFile {
    path: PathBuf,
}

/// One line of the checkpoint file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointLine {
    pub instance: String,
    pub size: u64,
    pub root: String,
    pub time: String,
    pub key_id: String,
    pub signature: String,
    /// On a rollback's head only: the size of the head given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_from: Option<u64>,
    /// On a rollback's head only: the largest earlier signed size still in the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_kept: Option<u64>,
}

impl From<&Checkpoint> for CheckpointLine {
    fn from(c: &Checkpoint) -> Self {
        CheckpointLine {
            instance: c.instance.clone(),
            size: c.size,
            root: hex(&c.root),
            time: c.time.clone(),
            key_id: c.key_id.clone(),
            signature: hex(&c.signature),
            rollback_from: c.rollback.map(|r| r.from),
            rollback_kept: c.rollback.map(|r| r.kept),
        }
    }
}

/// One line of the checkpoint file as a checkpoint, if it is one (its signature unchecked).
pub(crate) fn parse_line(text: &str) -> Option<Checkpoint> {
    serde_json::from_str::<CheckpointLine>(text.trim())
        .ok()
        .and_then(|l| l.parse())
}

impl CheckpointLine {
    fn parse(&self) -> Option<Checkpoint> {
        Some(Checkpoint {
            instance: self.instance.clone(),
            size: self.size,
            root: unhex::<32>(&self.root)?,
            time: self.time.clone(),
            key_id: self.key_id.clone(),
            signature: unhex::<64>(&self.signature)?,
            rollback: match (self.rollback_from, self.rollback_kept) {
                (None, None) => None,
                (Some(from), Some(kept)) => Some(Rollback { from, kept }),
                _ => return None,
            },
        })
    }
}

impl CheckpointFile {
    /// The file at `path` (created on first append).
    pub fn new(path: impl Into<PathBuf>) -> CheckpointFile {
        CheckpointFile { path: path.into() }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one checkpoint as one whole line and waits until it is on disk (issue 22).
    ///
    /// A write that fails halfway (a full disk) must not leave half a line for the next one to
    /// be appended onto: the half line is cut off again at once, and if even that fails, before
    /// the next append (a line without its newline was never reported written, so it is no
    /// signed checkpoint and removing it removes no evidence). The file is only ever appended
    /// to otherwise, so it may be kept append-only or shipped by tailing; the folder is synced
    /// when the file is new.
    pub fn append(&self, line: &CheckpointLine) -> std::io::Result<()> {
        self.append_unless(line, |_| false).map(drop)
    }

    /// [`CheckpointFile::append`], unless the file's last line, read under the same lock, is
    /// one that `covered` says makes this one needless (another process sharing the file
    /// signed as much or more, ADR 0024): then nothing is written and `false` answered, so
    /// that the heads in a shared file only grow.
    pub fn append_unless(
        &self,
        line: &CheckpointLine,
        covered: impl Fn(&str) -> bool,
    ) -> std::io::Result<bool> {
        use std::io::{Seek, SeekFrom};
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let created = !self.path.exists();
        let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)?;
        // Two writers (a demo load and a server) must not take each other's line in progress
        // for a torn one.
        file.lock()?;
        let keep = drop_torn_tail(&mut file)?;
        if last_line(&mut file, keep)?.is_some_and(|last| covered(&last)) {
            return Ok(false);
        }
        if let Err(e) = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
        {
            let _ = file.set_len(keep);
            let _ = file.sync_all();
            return Err(e);
        }
        file.seek(SeekFrom::End(0))?;
        if created
            && let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            d.sync_all()?;
        }
        Ok(true)
    }

    /// Every line, parsed; an unreadable line is `Err(line number)` (from 1).
    pub fn read(&self) -> std::io::Result<Vec<Result<Checkpoint, usize>>> {
        Ok(self.read_all()?.lines)
    }

    /// Every line, parsed, and what failed writes left: a last line without its newline
    /// (torn by a failed append, never a signed checkpoint) is not among the lines; a line
    /// that starts with such a remnant and goes on with a whole checkpoint (as files written
    /// before issue 22 may hold) is read as that checkpoint. Any other line that is not a
    /// checkpoint is `Err(line number)`: the file was edited.
    pub fn read_all(&self) -> std::io::Result<CheckpointRead> {
        use std::io::BufRead;
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CheckpointRead::default());
            }
            Err(e) => return Err(e),
        };
        let mut reader = std::io::BufReader::new(file);
        let mut out = CheckpointRead::default();
        let mut buf = Vec::new();
        let mut n = 0;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            n += 1;
            if buf.last() != Some(&b'\n') {
                out.torn_tail = Some(n);
                break;
            }
            let Ok(text) = std::str::from_utf8(&buf) else {
                out.lines.push(Err(n));
                continue;
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let parse = |t: &str| {
                serde_json::from_str::<CheckpointLine>(t)
                    .ok()
                    .and_then(|l| l.parse())
            };
            match parse(text) {
                Some(c) => out.lines.push(Ok(c)),
                None => {
                    // A remnant of a torn write, then a whole checkpoint appended onto it.
                    let after = text
                        .match_indices("{\"")
                        .skip_while(|(i, _)| *i == 0)
                        .find_map(|(i, _)| parse(&text[i..]));
                    match after {
                        Some(c) => {
                            out.torn_prefixes.push(n);
                            out.lines.push(Ok(c));
                        }
                        None => out.lines.push(Err(n)),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// What [`CheckpointFile::read_all`] found.
#[derive(Debug, Default)]
pub struct CheckpointRead {
    /// The lines, parsed; an unreadable one is `Err(line number)`.
    pub lines: Vec<Result<Checkpoint, usize>>,
    /// A last line without its newline: an append that failed halfway.
    pub torn_tail: Option<usize>,
    /// Lines that began with the remnant of a failed append before a whole checkpoint.
    pub torn_prefixes: Vec<usize>,
}

/// Cuts a last line without its newline (an append that failed halfway) off the file; returns
/// the file's length after.
/// The last whole line of the first `len` bytes of `file` (which end with a newline), if any.
fn last_line(file: &mut std::fs::File, len: u64) -> std::io::Result<Option<String>> {
    use std::io::{Read, Seek, SeekFrom};
    // A checkpoint line is a few hundred bytes.
    let start = len.saturating_sub(16 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(len - start).read_to_end(&mut tail)?;
    let text = String::from_utf8_lossy(&tail);
    Ok(text
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .map(str::to_owned)
        .filter(|l| !l.is_empty()))
}

fn drop_torn_tail(file: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(len);
    }
    // Back to the last newline, a block at a time.
    let mut end = len;
    let mut keep = 0;
    let mut block = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let size = usize::try_from(end - start).unwrap_or(0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..size])?;
        if let Some(i) = block[..size].iter().rposition(|b| *b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    tracing::warn!(
        dropped = len - keep,
        "the checkpoint file ended with an unfinished line (a failed write): removed it"
    );
    file.set_len(keep)?;
    file.sync_all()?;
    Ok(keep)
}

#[cfg(test)]
mod published_tests {

    use ehrshare_core::audit::checkpoint::Rollback;

    use super::*;

    fn head(size: u64, rollback: Option<Rollback>) -> Checkpoint {
        Checkpoint {
            instance: "i".to_owned(),
            size,
            root: [0; 32],
            time: String::new(),
            key_id: String::new(),
            signature: [0; 64],
            rollback,
        }
    }

    #[test]
    fn heads_of_abandoned_history_are_dropped() {
        let mut p = Published::default();
        for c in [
            head(5, None),
            head(9, None),
            head(7, Some(Rollback { from: 9, kept: 5 })),
            head(12, None),
        ] {
            p.take(c);
        }
        let sizes: Vec<u64> = p.heads.iter().map(|c| c.size).collect();
        assert_eq!(sizes, vec![5, 7, 12]);
    }

    #[test]
    fn only_complete_lines_are_read_and_a_replaced_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heads");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        assert_eq!(
            read_from(&path, 0).unwrap(),
            (false, 8, vec!["one".to_owned(), "two".to_owned()])
        );
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        assert_eq!(
            read_from(&path, 8).unwrap(),
            (false, 14, vec!["three".to_owned()])
        );
        assert_eq!(read_from(&path, 14).unwrap(), (false, 14, Vec::new()));
        std::fs::write(&path, "x\n").unwrap();
        assert_eq!(
            read_from(&path, 14).unwrap(),
            (true, 2, vec!["x".to_owned()]),
            "shorter: replaced"
        );
    }
}
