//! `ehrshare connect`: the connection component a clinic runs beside its own system (issue 25,
//! item 7; the seed's 中醫藥互通連接元件). It takes the FHIR resources or Bundles the clinic's
//! system exports (files dropped in a watched folder, or standard input), keeps them in a
//! durable local queue, and deposits each as one FHIR transaction, authenticated by SMART
//! Backend Services (a JWT signed with the clinic's own key, ADR 0015).
//!
//! Nothing is lost and nothing is stored twice:
//! - an export enters the queue (written, flushed to disk, renamed into place) before its file
//!   leaves the watched folder; a crash in between leaves it in both, and sending it twice
//!   stores it once, because
//! - each export becomes a transaction of `PUT {type}/{the clinic's id}` entries
//!   (`ehrshare_fhir::export`): the same transaction again changes nothing on the server;
//! - a queued export leaves the queue only when the server has answered it: 200 (stored, the
//!   log says what became of each resource), or a refusal that sending again cannot change
//!   (the export moves to `refused/` with the server's OperationOutcome in the log). Anything
//!   else (no server, a timeout, 429, 5xx, an expired token) is tried again, with a backoff
//!   that doubles up to `--max-backoff-secs` and honours `Retry-After`.
//!
//! The log (`connect.log` in the queue folder) is for the clinic: one line per export sent,
//! refused or waiting, in plain words. The token is `smart_client`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::smart_client::{SmartArgs, SmartClient, said};

/// Options of `connect`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub smart: SmartArgs,
    /// The queue folder (pending exports, refused ones, and the log).
    #[arg(long, default_value = "ehrshare-connect")]
    pub queue: PathBuf,
    /// A folder the clinic system exports into (`*.json`, `*.ndjson`; write a file elsewhere
    /// and rename it in, so that no half-written file is taken). Without it, standard input.
    #[arg(long)]
    pub watch: Option<PathBuf>,
    /// Exit once the queue is empty (with standard input, always).
    #[arg(long)]
    pub once: bool,
    /// The longest wait between two tries, in seconds.
    #[arg(long, default_value_t = 300)]
    pub max_backoff_secs: u64,
}

/// What became of one send.
enum Sent {
    /// 200: every entry's answer.
    Stored(Value),
    /// Refused for good: the status and what the server said.
    Refused(u16, String),
    /// To try again: why, and how long the server asked to wait.
    Later(String, Option<u64>),
}

struct Queue {
    pending: PathBuf,
    refused: PathBuf,
    log: std::fs::File,
    seq: u64,
}

impl Queue {
    fn open(dir: &Path) -> anyhow::Result<Queue> {
        let pending = dir.join("pending");
        let refused = dir.join("refused");
        std::fs::create_dir_all(&pending).with_context(|| format!("{}", pending.display()))?;
        std::fs::create_dir_all(&refused).with_context(|| format!("{}", refused.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("connect.log"))
            .context("the log")?;
        Ok(Queue {
            pending,
            refused,
            log,
            seq: 0,
        })
    }

    fn say(&mut self, line: &str) {
        use std::io::Write;
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = format!("{at} {line}\n");
        // The log is the clinic's view; a full disk must not stop deliveries.
        let _ = self.log.write_all(line.as_bytes());
        let _ = self.log.flush();
        eprint!("{line}");
    }

    /// Adds a transaction to the queue, durably, under a name that sorts after every earlier
    /// one.
    fn push(&mut self, name: &str, transaction: &Value) -> anyhow::Result<()> {
        use std::io::Write;
        self.seq += 1;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let safe: String = name
            .trim_end_matches(".json")
            .trim_end_matches(".ndjson")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let file = format!("{now:024}-{:06}-{safe}.json", self.seq);
        let tmp = self.pending.join(format!(".{file}.tmp"));
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
        f.write_all(transaction.to_string().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.pending.join(&file))?;
        sync_dir(&self.pending)?;
        Ok(())
    }

    /// The oldest queued transaction.
    fn next(&self) -> anyhow::Result<Option<PathBuf>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.pending)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        names.sort();
        Ok(names.into_iter().next())
    }

    fn len(&self) -> usize {
        std::fs::read_dir(&self.pending)
            .map(|d| d.filter_map(Result::ok).count())
            .unwrap_or(0)
    }

    fn done(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::remove_file(path)?;
        sync_dir(&self.pending)
    }

    fn refuse(&self, path: &Path) -> anyhow::Result<PathBuf> {
        let to = self.refused.join(path.file_name().unwrap_or_default());
        std::fs::rename(path, &to)?;
        sync_dir(&self.pending)?;
        Ok(to)
    }
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The documents in an export file's text: one JSON document, or one per line (NDJSON).
fn documents(text: &str) -> Result<Vec<Value>, String> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(vec![v]);
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("line {}: not JSON ({e})", i + 1))
        })
        .collect()
}

/// Queues every document of an export; the export's own problems are said and returned.
fn take(queue: &mut Queue, name: &str, text: &str) -> Result<usize, String> {
    let docs = documents(text)?;
    let mut transactions = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        let t = ehrshare_fhir::export::transaction_of(d)
            .map_err(|e| format!("document {}: {e}", i + 1))?;
        transactions.push(t);
    }
    for (i, t) in transactions.iter().enumerate() {
        let n = if transactions.len() == 1 {
            name.to_owned()
        } else {
            format!("{name}-{}", i + 1)
        };
        queue
            .push(&n, t)
            .map_err(|e| format!("cannot queue: {e}"))?;
    }
    Ok(transactions.len())
}

/// Moves what the clinic system exported into the queue; an export that is not one goes to
/// `refused/` with the reason in the log.
fn take_folder(queue: &mut Queue, folder: &Path) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("{}", folder.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| e == "json" || e == "ndjson")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                queue.say(&format!("CANNOT READ {name}: {e}"));
                continue;
            }
        };
        match take(queue, &name, &text) {
            Ok(n) => {
                std::fs::remove_file(&file)?;
                queue.say(&format!("QUEUED {name}: {n} transaction(s)"));
            }
            Err(reason) => {
                // Never over an earlier refused export of the same name.
                let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
                let to = queue.refused.join(format!("{stamp}-{name}"));
                std::fs::rename(&file, &to)?;
                queue.say(&format!(
                    "REFUSED {name} before sending: {reason}; moved to {}",
                    to.display()
                ));
            }
        }
    }
    Ok(())
}

/// Sends one queued transaction.
async fn send(client: &SmartClient, transaction: &[u8]) -> Sent {
    let r = match client
        .post("/fhir", "application/fhir+json", transaction.to_vec())
        .await
    {
        Ok(r) => r,
        Err(e) => return Sent::Later(e.to_string(), None),
    };
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let outcome = || said(&body);
    match r.status {
        200 => Sent::Stored(body),
        401 => Sent::Later(
            "the token was refused; a new one will be asked".to_owned(),
            None,
        ),
        409 if outcome().contains("changed-meanwhile") => {
            Sent::Later(format!("409 {}", outcome()), r.retry_after)
        }
        400 | 403 | 404 | 405 | 409 | 412 | 413 | 415 | 422 => Sent::Refused(r.status, outcome()),
        s => Sent::Later(
            format!("the server answered {s} {}", outcome()),
            r.retry_after,
        ),
    }
}

/// What each entry of a transaction became, in a line.
fn stored(transaction: &Value, answer: &Value) -> String {
    let asked = transaction["entry"].as_array().cloned().unwrap_or_default();
    let answered = answer["entry"].as_array().cloned().unwrap_or_default();
    asked
        .iter()
        .zip(answered.iter())
        .map(|(a, b)| {
            format!(
                "{} {}",
                a["request"]["url"].as_str().unwrap_or("?"),
                b["response"]["status"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the connection component until stopped (or, with `--once` or standard input, until
/// the queue is empty).
pub async fn run(args: &ConnectArgs) -> anyhow::Result<()> {
    let client = SmartClient::new(&args.smart, Duration::from_secs(30))?;
    let mut queue = Queue::open(&args.queue)?;
    let once = args.once || args.watch.is_none();
    if args.watch.is_none() {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("standard input")?;
        if !text.trim().is_empty() {
            match take(&mut queue, "stdin", &text) {
                Ok(n) => queue.say(&format!("QUEUED stdin: {n} transaction(s)")),
                Err(reason) => queue.say(&format!("REFUSED stdin before sending: {reason}")),
            }
        }
    }
    let max = Duration::from_secs(args.max_backoff_secs.max(1));
    let mut wait = Duration::from_millis(500);
    loop {
        if let Some(folder) = &args.watch {
            take_folder(&mut queue, folder)?;
        }
        let Some(next) = queue.next()? else {
            if once {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let name = next
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(&next)?;
        let transaction: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match send(&client, &bytes).await {
            Sent::Stored(answer) => {
                queue.done(&next)?;
                queue.say(&format!("STORED {name}: {}", stored(&transaction, &answer)));
                wait = Duration::from_millis(500);
            }
            Sent::Refused(status, outcome) => {
                let to = queue.refuse(&next)?;
                queue.say(&format!(
                    "REFUSED {name}: {status} {outcome}; nothing of it was stored; kept in {}",
                    to.display()
                ));
            }
            Sent::Later(reason, retry_after) => {
                let pause = retry_after.map_or(wait, |s| Duration::from_secs(s).min(max));
                queue.say(&format!(
                    "WAITING {} queued: {reason}; next try in {:.1} s",
                    queue.len(),
                    pause.as_secs_f64()
                ));
                tokio::time::sleep(pause).await;
                wait = (wait * 2).min(max);
            }
        }
    }
}
