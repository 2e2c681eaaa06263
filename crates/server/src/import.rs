//! `ehrshare import FILE...`: a clinic's or a hospital's history loaded through
//! `POST /fhir/$import` (ADR 0025), authenticated as `ehrshare connect` is (SMART Backend
//! Services, `smart_client`).
//!
//! A file is NDJSON, one FHIR resource a line. Its lines go unparsed, in requests of at most
//! `--chunk-lines` lines and `--chunk-bytes` bytes, `--parallel` requests in flight. The
//! server reads, decides and audits each line on its own, so a bad line costs no other.
//! - Every line answered is written to `FILE.outcome.ndjson`, flushed a request at a time:
//!   `{"line":17,"fingerprint":"…","status":201,"location":"Observation/…/_history/1"}`, or
//!   the refusal's `status`, `code`, a readable `said` and the server's `outcome`.
//! - A request the server could not take (unreachable, 429, 5xx, a line answered 503) is sent
//!   again, after a wait that doubles up to `--max-backoff-secs` and honours `Retry-After`.
//!   Sending a line twice stores it once: each line is `PUT {type}/{id}` by the provider's own
//!   id, and a line without one gets an id derived from its content.
//! - When nothing has been answered for `--give-up-after-secs`, or the server refuses the
//!   requests themselves (a wrong scope, a body over its limit), the import stops; what was
//!   answered is in the outcome file. `--resume` sends only the lines not yet stored there
//!   (a line is known by its number and its content's fingerprint).
//!
//! A progress bar on standard error when it is a terminal; otherwise a plain line every ten
//! seconds. Standard output stays empty. Exit 0 when every line was stored, 1 when some were
//! refused, 2 when the import did not finish.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::smart_client::{SmartArgs, SmartClient, Unsent, code_of, said};

/// The most lines the server takes in one request (`MAX_ENTRIES`).
const MOST_LINES: usize = 1000;

/// Options of `import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// NDJSON files: one FHIR resource a line, as a clinic system or a FHIR Bulk Data export
    /// writes them. (A Bundle is deposited whole by `ehrshare connect`.)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub smart: SmartArgs,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub parallel: u16,
    /// Most lines in one request (the server takes at most 1,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub chunk_lines: u16,
    /// Most bytes in one request; keep it under the server's `body_limit_bytes`. A longer line
    /// is not sent, and is answered `line-too-long` in the outcome file.
    #[arg(long, default_value_t = 1536 * 1024, value_parser = clap::value_parser!(u64).range(1024..))]
    pub chunk_bytes: u64,
    /// Send only the lines the outcome file of an earlier run does not show stored.
    #[arg(long)]
    pub resume: bool,
    /// The longest wait between two tries of a request, in seconds.
    #[arg(long, default_value_t = 60)]
    pub max_backoff_secs: u64,
    /// Stop (exit 2) when the server has answered nothing for this long, in seconds.
    #[arg(long, default_value_t = 600)]
    pub give_up_after_secs: u64,
}

/// The import stopped before every line was answered (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unfinished(pub String);

/// One line of a file.
struct Line {
    number: u64,
    fingerprint: String,
    text: Vec<u8>,
}

/// What the server (or, for a line it cannot take, the importer) answered for a line.
struct Answer {
    status: u16,
    location: Option<String>,
    outcome: Option<Value>,
}

impl Answer {
    fn stored(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn code(&self) -> String {
        self.outcome
            .as_ref()
            .map(|o| code_of(&o["issue"][0]).to_owned())
            .unwrap_or_else(|| self.status.to_string())
    }

    fn record(&self, line: &Line) -> Value {
        let mut v = json!({"line": line.number, "fingerprint": line.fingerprint,
            "status": self.status});
        if let Some(l) = &self.location {
            v["location"] = json!(l);
        }
        if let Some(o) = &self.outcome {
            v["code"] = json!(self.code());
            v["said"] = json!(said(o));
            v["outcome"] = o.clone();
        }
        v
    }
}

/// A request's lines and how many of the file's bytes they cover (for the progress bar).
struct Chunk {
    lines: Vec<Line>,
    bytes: u64,
}

/// What became of a request: every line answered, or the import must stop (with the lines
/// answered before it did).
struct Delivered {
    answered: Vec<(Line, Answer)>,
    bytes: u64,
    stop: Option<String>,
}

/// How requests are tried again.
#[derive(Clone, Copy)]
struct Patience {
    max_backoff: Duration,
    give_up_after: Duration,
}

/// Runs `import`: `Ok(true)` when every line of every file was stored, `Ok(false)` when some
/// were refused, `Err(Unfinished)` when it stopped early.
pub async fn run(args: &ImportArgs) -> anyhow::Result<bool> {
    for file in &args.files {
        if file.extension().is_some_and(|e| e == "json") {
            anyhow::bail!(
                "{}: a .json file is one document; `ehrshare import` takes NDJSON (one resource \
                 a line), and `ehrshare connect` deposits a Bundle whole",
                file.display()
            );
        }
        std::fs::metadata(file).with_context(|| format!("{}", file.display()))?;
    }
    let client = Arc::new(SmartClient::new(&args.smart, Duration::from_secs(120))?);
    let patience = Patience {
        max_backoff: Duration::from_secs(args.max_backoff_secs.max(1)),
        give_up_after: Duration::from_secs(args.give_up_after_secs.max(1)),
    };
    let mut all_stored = true;
    for file in &args.files {
        all_stored &= import_file(&client, file, args, patience).await?;
    }
    Ok(all_stored)
}

/// The outcome file next to `file`.
fn outcome_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".outcome.ndjson");
    PathBuf::from(name)
}

/// The lines an earlier run's outcome file shows stored, with their fingerprints.
fn stored_before(path: &Path) -> anyhow::Result<HashMap<u64, String>> {
    let mut stored = HashMap::new();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(stored),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("{}", path.display()))?;
        // A line cut short by a crash is no answer.
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let (Some(n), Some(fp), Some(status)) = (
            v["line"].as_u64(),
            v["fingerprint"].as_str(),
            v["status"].as_u64(),
        ) {
            if (200..300).contains(&status) {
                stored.insert(n, fp.to_owned());
            } else {
                stored.remove(&n);
            }
        }
    }
    Ok(stored)
}

/// Ends an outcome file a crash cut mid-line with a newline, so that what is appended starts
/// a line of its own.
fn end_with_newline(path: &Path) -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}

fn fingerprint(text: &[u8]) -> String {
    let d = Sha256::digest(text);
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Reads a file's lines into requests.
struct Lines {
    reader: std::io::BufReader<std::fs::File>,
    number: u64,
    carried: Option<(Line, u64)>,
    done: bool,
    stored: HashMap<u64, String>,
    max_lines: usize,
    max_bytes: u64,
}

/// What reading found besides requests: lines skipped (blank, or stored by an earlier run)
/// and lines too long to send.
#[derive(Default)]
struct Aside {
    bytes: u64,
    too_long: Vec<Line>,
    resumed: u64,
}

impl Lines {
    /// The next request's lines, or `None` at the end of the file.
    fn next_chunk(&mut self, aside: &mut Aside) -> anyhow::Result<Option<Chunk>> {
        let mut chunk = Chunk {
            lines: Vec::new(),
            bytes: 0,
        };
        let mut body = 0u64;
        if let Some((line, bytes)) = self.carried.take() {
            body += line.text.len() as u64 + 1;
            chunk.bytes += bytes;
            chunk.lines.push(line);
        }
        while chunk.lines.len() < self.max_lines && !self.done {
            let mut text = Vec::new();
            let read = self.reader.read_until(b'\n', &mut text)? as u64;
            if read == 0 {
                self.done = true;
                break;
            }
            self.number += 1;
            if text.last() == Some(&b'\n') {
                text.pop();
            }
            if text.last() == Some(&b'\r') {
                text.pop();
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                aside.bytes += read;
                continue;
            }
            let line = Line {
                number: self.number,
                fingerprint: fingerprint(&text),
                text,
            };
            if self.stored.get(&line.number) == Some(&line.fingerprint) {
                aside.bytes += read;
                aside.resumed += 1;
                continue;
            }
            if line.text.len() as u64 + 1 > self.max_bytes {
                aside.bytes += read;
                aside.too_long.push(line);
                continue;
            }
            if body + line.text.len() as u64 + 1 > self.max_bytes {
                self.carried = Some((line, read));
                break;
            }
            body += line.text.len() as u64 + 1;
            chunk.bytes += read;
            chunk.lines.push(line);
        }
        Ok((!chunk.lines.is_empty()).then_some(chunk))
    }
}

/// Imports one file; `Ok(true)` when every line was stored.
async fn import_file(
    client: &Arc<SmartClient>,
    file: &Path,
    args: &ImportArgs,
    patience: Patience,
) -> anyhow::Result<bool> {
    let name = file.display().to_string();
    let opened = std::fs::File::open(file).with_context(|| name.clone())?;
    let total = opened.metadata().with_context(|| name.clone())?.len();
    let outcome_at = outcome_path(file);
    let stored = if args.resume {
        stored_before(&outcome_at)?
    } else {
        HashMap::new()
    };
    if args.resume {
        end_with_newline(&outcome_at)?;
    }
    let mut outcome = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(args.resume)
            .truncate(!args.resume)
            .open(&outcome_at)
            .with_context(|| format!("{}", outcome_at.display()))?,
    );
    let mut lines = Lines {
        reader: std::io::BufReader::with_capacity(1 << 20, opened),
        number: 0,
        carried: None,
        done: false,
        stored,
        max_lines: usize::from(args.chunk_lines).min(MOST_LINES),
        max_bytes: args.chunk_bytes,
    };
    let mut progress = Progress::new(&name, total);
    let mut tally = Tally::default();
    let mut inflight = JoinSet::new();
    let mut stop: Option<String> = None;
    let mut aside = Aside::default();
    loop {
        while stop.is_none() && inflight.len() < usize::from(args.parallel) {
            let next = lines.next_chunk(&mut aside)?;
            progress.advance(std::mem::take(&mut aside.bytes));
            tally.resumed += std::mem::take(&mut aside.resumed);
            for line in std::mem::take(&mut aside.too_long) {
                let answer = Answer {
                    status: 413,
                    location: None,
                    outcome: Some(too_long_outcome(line.text.len(), args.chunk_bytes)),
                };
                write_answer(&mut outcome, &outcome_at, &line, &answer)?;
                tally.count(&answer);
            }
            match next {
                Some(chunk) => {
                    inflight.spawn(deliver(client.clone(), chunk, patience));
                }
                None => break,
            }
        }
        let Some(done) = inflight.join_next().await else {
            break;
        };
        let delivered = match done {
            Ok(d) => d,
            Err(e) => {
                stop.get_or_insert(format!("a request failed: {e}"));
                continue;
            }
        };
        for (line, answer) in &delivered.answered {
            write_answer(&mut outcome, &outcome_at, line, answer)?;
            tally.count(answer);
        }
        outcome
            .flush()
            .with_context(|| format!("{}", outcome_at.display()))?;
        if delivered.stop.is_none() {
            progress.advance(delivered.bytes);
        }
        if let Some(reason) = delivered.stop {
            stop.get_or_insert(reason);
        }
        progress.say(&tally);
    }
    outcome
        .flush()
        .with_context(|| format!("{}", outcome_at.display()))?;
    progress.finish();
    eprintln!(
        "{}",
        tally.summary(&name, &outcome_at.display().to_string())
    );
    if let Some(reason) = stop {
        return Err(Unfinished(format!(
            "{name}: stopped before every line was answered: {reason}; what was answered is in \
             {}; run again with --resume to send the rest",
            outcome_at.display()
        ))
        .into());
    }
    Ok(tally.refused.is_empty())
}

fn too_long_outcome(length: usize, limit: u64) -> Value {
    use ehrshare_fhir::operation_outcome::{IssueType, OperationOutcome};
    let outcome = OperationOutcome::error(
        IssueType::TooLong,
        "line-too-long",
        &format!(
            "a line of {length} bytes is longer than a request may be (--chunk-bytes {limit}); \
             it was not sent"
        ),
        None,
    );
    serde_json::to_value(outcome).unwrap_or(Value::Null)
}

fn write_answer(
    out: &mut impl Write,
    path: &Path,
    line: &Line,
    answer: &Answer,
) -> anyhow::Result<()> {
    let mut text = answer.record(line).to_string();
    text.push('\n');
    out.write_all(text.as_bytes())
        .with_context(|| format!("{}", path.display()))
}

/// Sends one request until every line is answered, or the import must stop.
async fn deliver(client: Arc<SmartClient>, chunk: Chunk, patience: Patience) -> Delivered {
    let mut pending = chunk.lines;
    let mut answered = Vec::with_capacity(pending.len());
    let mut wait = Duration::from_millis(250);
    let mut since = Instant::now();
    let mut refused_token = false;
    let stop = loop {
        let mut body = Vec::with_capacity(pending.iter().map(|l| l.text.len() + 1).sum());
        for line in &pending {
            body.extend_from_slice(&line.text);
            body.push(b'\n');
        }
        let (why, retry_after) = match client
            .post("/fhir/$import", "application/fhir+ndjson", body)
            .await
        {
            Err(e @ (Unsent::Unreachable(_) | Unsent::NoToken(_))) => (e.to_string(), None),
            Ok(r) if r.status == 200 => {
                let entries = serde_json::from_slice::<Value>(&r.body)
                    .ok()
                    .and_then(|v| v["entry"].as_array().cloned())
                    .unwrap_or_default();
                if entries.len() != pending.len() {
                    break Some(format!(
                        "the server answered {} entries for {} lines",
                        entries.len(),
                        pending.len()
                    ));
                }
                let mut again = Vec::new();
                for (line, entry) in pending.into_iter().zip(entries) {
                    let answer = answer_of(&entry["response"]);
                    // A line the server could not take now is sent again.
                    if answer.status == 429 || answer.status >= 500 {
                        again.push(line);
                    } else {
                        answered.push((line, answer));
                        since = Instant::now();
                    }
                }
                pending = again;
                if pending.is_empty() {
                    break None;
                }
                ("some lines were answered 503".to_owned(), None)
            }
            Ok(r) if r.status == 401 && !refused_token => {
                // The token expired or the server restarted with new keys: one new token.
                refused_token = true;
                continue;
            }
            Ok(r) if matches!(r.status, 408 | 429) || r.status >= 500 => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                (
                    format!("the server answered {} {}", r.status, said(&body)),
                    r.retry_after,
                )
            }
            Ok(r) => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                let hint = if r.status == 413 {
                    " (lower --chunk-bytes below the server's body limit)"
                } else {
                    ""
                };
                break Some(format!(
                    "the server refused the request: {} {}{hint}",
                    r.status,
                    said(&body)
                ));
            }
        };
        refused_token = false;
        if since.elapsed() >= patience.give_up_after {
            break Some(format!(
                "nothing answered for {} s; last: {why}",
                patience.give_up_after.as_secs()
            ));
        }
        let pause = retry_after
            .map_or(wait, Duration::from_secs)
            .min(patience.max_backoff);
        tracing::warn!(%why, wait_secs = pause.as_secs_f64(), "import: trying again");
        tokio::time::sleep(pause).await;
        wait = (wait * 2).min(patience.max_backoff);
    };
    Delivered {
        answered,
        bytes: chunk.bytes,
        stop,
    }
}

/// A batch-response entry's `response`.
fn answer_of(response: &Value) -> Answer {
    let status = response["status"]
        .as_str()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        location: response["location"].as_str().map(str::to_owned),
        outcome: response.get("outcome").cloned(),
    }
}

/// Counts of what the lines became.
#[derive(Default)]
struct Tally {
    created: u64,
    kept: u64,
    refused: BTreeMap<String, u64>,
    resumed: u64,
}

impl Tally {
    fn count(&mut self, answer: &Answer) {
        match answer.status {
            201 => self.created += 1,
            _ if answer.stored() => self.kept += 1,
            _ => *self.refused.entry(answer.code()).or_default() += 1,
        }
    }

    fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }

    fn answered(&self) -> u64 {
        self.created + self.kept + self.refused_total()
    }

    fn summary(&self, name: &str, outcome: &str) -> String {
        let mut s = format!(
            "{name}: {} lines answered: {} stored ({} new, {} already there or a new version), \
             {} refused",
            self.answered(),
            self.created + self.kept,
            self.created,
            self.kept,
            self.refused_total()
        );
        if !self.refused.is_empty() {
            let by: Vec<String> = self
                .refused
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            s.push_str(&format!(" ({})", by.join(", ")));
        }
        if self.resumed > 0 {
            s.push_str(&format!(
                "; {} stored by an earlier run, not sent",
                self.resumed
            ));
        }
        s.push_str(&format!("; each line's answer is in {outcome}"));
        s
    }
}

/// The progress bar on a terminal, or a plain line every ten seconds.
struct Progress {
    bar: ProgressBar,
    plain: bool,
    name: String,
    total: u64,
    done: u64,
    started: Instant,
    last_said: Instant,
}

impl Progress {
    fn new(name: &str, total: u64) -> Progress {
        let plain = !std::io::stderr().is_terminal();
        let bar = if plain {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {bar:40} {binary_bytes}/{binary_total_bytes} {msg} ({eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(name.to_owned());
            bar
        };
        Progress {
            bar,
            plain,
            name: name.to_owned(),
            total,
            done: 0,
            started: Instant::now(),
            last_said: Instant::now(),
        }
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        self.bar.inc(bytes);
    }

    fn say(&mut self, tally: &Tally) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = tally.answered() as f64 / secs;
        let msg = format!(
            "{} lines, {rate:.0}/s, {} refused",
            tally.answered(),
            tally.refused_total()
        );
        if self.plain {
            if self.last_said.elapsed() >= Duration::from_secs(10) {
                self.last_said = Instant::now();
                eprintln!(
                    "{}: {} of {} bytes, {msg}",
                    self.name, self.done, self.total
                );
            }
        } else {
            self.bar.set_message(msg);
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(
        text: &str,
        stored: HashMap<u64, String>,
        max_lines: usize,
        max_bytes: u64,
    ) -> (Vec<Vec<u64>>, Aside) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.ndjson");
        std::fs::write(&path, text).unwrap();
        let mut lines = Lines {
            reader: std::io::BufReader::new(std::fs::File::open(&path).unwrap()),
            number: 0,
            carried: None,
            done: false,
            stored,
            max_lines,
            max_bytes,
        };
        let mut aside = Aside::default();
        let mut chunks = Vec::new();
        let mut bytes = 0;
        while let Some(c) = lines.next_chunk(&mut aside).unwrap() {
            bytes += c.bytes;
            chunks.push(c.lines.iter().map(|l| l.number).collect());
        }
        assert_eq!(
            bytes + aside.bytes,
            text.len() as u64,
            "every byte is counted once"
        );
        (chunks, aside)
    }

    #[test]
    fn lines_are_chunked_by_count_and_by_bytes_keeping_their_numbers() {
        let text = "{\"a\":1}\r\n\n{\"b\":2}\n  \n{\"c\":3}\n{\"d\":4}";
        let (chunks, aside) = lines_of(text, HashMap::new(), 2, 1 << 20);
        assert_eq!(chunks, vec![vec![1, 3], vec![5, 6]]);
        assert!(aside.too_long.is_empty());
        // Eight bytes a line with its newline: two fit in 16, not in 15.
        let (chunks, _) = lines_of(text, HashMap::new(), 10, 16);
        assert_eq!(chunks, vec![vec![1, 3], vec![5, 6]]);
        let (chunks, _) = lines_of(text, HashMap::new(), 10, 15);
        assert_eq!(chunks, vec![vec![1], vec![3], vec![5], vec![6]]);
    }

    #[test]
    fn a_line_longer_than_a_request_is_set_aside_and_not_sent() {
        let text = format!(
            "{{\"a\":1}}\n{{\"b\":\"{}\"}}\n{{\"c\":3}}\n",
            "x".repeat(100)
        );
        let (chunks, aside) = lines_of(&text, HashMap::new(), 10, 64);
        assert_eq!(chunks, vec![vec![1, 3]]);
        assert_eq!(
            aside.too_long.iter().map(|l| l.number).collect::<Vec<_>>(),
            vec![2]
        );
    }

    #[test]
    fn resuming_skips_a_stored_line_only_if_its_content_is_the_same() {
        let text = "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        let stored = HashMap::from([
            (1, fingerprint(b"{\"a\":1}")),
            // Line 2 was stored with other content: the file changed, so it is sent.
            (2, fingerprint(b"{\"b\":1}")),
        ]);
        let (chunks, aside) = lines_of(text, stored, 10, 1 << 20);
        assert_eq!(chunks, vec![vec![2, 3]]);
        assert_eq!(aside.resumed, 1);
    }

    #[test]
    fn an_outcome_file_says_which_lines_were_stored_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.ndjson.outcome.ndjson");
        std::fs::write(
            &path,
            "{\"line\":1,\"fingerprint\":\"aa\",\"status\":201}\n\
             {\"line\":2,\"fingerprint\":\"bb\",\"status\":422}\n\
             {\"line\":3,\"fingerprint\":\"cc\",\"status\":200}\n\
             {\"line\":3,\"fingerprint\":\"cc\",\"status\":403}\n\
             {\"line\":4,\"fingerpr",
        )
        .unwrap();
        let stored = stored_before(&path).unwrap();
        assert_eq!(stored, HashMap::from([(1, "aa".to_owned())]));
    }

    #[test]
    fn an_entry_answer_is_read_with_its_code() {
        let a =
            answer_of(&json!({"status": "201 Created", "location": "Observation/x/_history/1"}));
        assert_eq!((a.status, a.stored()), (201, true));
        let a = answer_of(&json!({"status": "413 Payload Too Large",
            "outcome": too_long_outcome(2_000_000, 1024)}));
        assert_eq!(
            (a.status, a.stored(), a.code()),
            (413, false, "line-too-long".to_owned())
        );
    }
}
