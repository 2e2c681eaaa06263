//! `ehrshare import FILE...`: a clinic's or a hospital's history loaded through
//! `POST /fhir/$import` (ADR 0025), authenticated as `ehrshare connect` is (SMART Backend
//! Services, `smart_client`).
//!
//! A file is NDJSON, one FHIR resource a line. Its lines go as they are, in requests of at
//! most `--chunk-lines` lines and `--chunk-bytes` bytes, `--parallel` requests in flight. The
//! server reads, decides and audits each line on its own, so a bad line costs no other.
//! - Every line answered is written to `FILE.outcome.ndjson`, flushed a request at a time:
//!   `{"line":17,"fingerprint":"…","status":201,"location":"Observation/…/_history/1"}`, or
//!   the refusal's `status`, `code`, a readable `said` and the server's `outcome`. The file's
//!   first line names the server and the client, so that `--resume` goes on only where it
//!   started.
//! - A request the server could not take (no answer, 408, 429, 5xx, lines answered 429 or 5xx
//!   inside a 200) is sent again after a wait that doubles up to `--max-backoff-secs` and
//!   honours `Retry-After`. Sending a line twice stores it once: each line is `PUT
//!   {type}/{id}` by the provider's own id, and a line without one gets an id derived from
//!   its content.
//! - Lines that name one resource apply in the file's order: the server keeps a request's
//!   order, and a request holding a resource that another request in flight holds waits for
//!   it (a line's resource is read from its `resourceType` and `id`).
//! - The import stops when nothing has been answered for `--give-up-after-secs`, when the
//!   server refuses the requests themselves (a scope not granted, a body over its limit), or
//!   when the file or the outcome file fails; what was answered is in the outcome file, and
//!   `--resume` sends only the lines it does not show stored (a line is known by its number
//!   and its content's fingerprint).
//!
//! A progress bar on standard error when it is a terminal; otherwise a plain line every ten
//! seconds. Standard output stays empty. Exit 0 when every line was stored, 1 when some were
//! refused, 2 when the command cannot run as given (a file, the credentials), 4 when it
//! stopped before every line was answered (run it again with `--resume`).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::smart_client::{SmartArgs, SmartClient, Unsent, code_of, passing, printable, said};

/// The most lines the server takes in one request (`MAX_ENTRIES`).
const MOST_LINES: usize = 1000;

/// The shortest wait before a request is sent again, whatever `Retry-After` says.
const LEAST_WAIT: Duration = Duration::from_millis(250);

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
    /// Go on from an earlier run's outcome file: send only the lines it does not show stored.
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Start again from the first line, replacing an earlier run's outcome file.
    #[arg(long)]
    pub restart: bool,
    /// The longest wait between two tries of a request, in seconds.
    #[arg(long, default_value_t = 60)]
    pub max_backoff_secs: u64,
    /// Stop (exit 4) when the server has answered nothing for this long, in seconds.
    #[arg(long, default_value_t = 600)]
    pub give_up_after_secs: u64,
    /// The longest wait for the answer to one request, in seconds.
    #[arg(long, default_value_t = 300)]
    pub request_timeout_secs: u64,
}

/// The import stopped before every line was answered (exit 4): run it again with `--resume`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unfinished(pub String);

/// The import cannot run as given (exit 2): nothing was sent.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

fn unusable(message: String) -> anyhow::Error {
    Unusable(message).into()
}

/// One line of a file: its text (empty when it is too long to send) and, when it names one,
/// the resource it writes.
struct Line {
    number: u64,
    fingerprint: u64,
    text: Vec<u8>,
    length: u64,
    resource: Option<u64>,
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
            .map(|o| printable(code_of(&o["issue"][0])))
            .unwrap_or_else(|| self.status.to_string())
    }

    fn record(&self, line: &Line) -> Value {
        let mut v = json!({"line": line.number, "fingerprint": hex(line.fingerprint),
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

/// Lines with their answers.
type Answered = Vec<(Line, Answer)>;

/// A request's lines and how many of the file's bytes they cover (for the progress bar).
struct Chunk {
    lines: Vec<Line>,
    bytes: u64,
}

impl Chunk {
    fn resources(&self) -> impl Iterator<Item = u64> + '_ {
        self.lines.iter().filter_map(|l| l.resource)
    }
}

/// What became of a request: every line answered, or the import must stop (with the lines
/// answered before it did, and the resources the request held).
struct Delivered {
    answered: Answered,
    bytes: u64,
    resources: Vec<u64>,
    stop: Option<String>,
}

/// How requests are tried again, and the flag that stops them all.
#[derive(Clone)]
struct Patience {
    max_backoff: Duration,
    give_up_after: Duration,
    stopping: Arc<AtomicBool>,
}

/// Runs `import`: `Ok(true)` when every line of every file was stored, `Ok(false)` when some
/// were refused; `Err(Unusable)` before anything was sent, `Err(Unfinished)` when it stopped
/// early.
pub async fn run(args: &ImportArgs) -> anyhow::Result<bool> {
    for file in &args.files {
        let name = file.to_string_lossy().to_lowercase();
        if name.ends_with(".outcome.ndjson") {
            return Err(unusable(format!(
                "{}: an outcome file of an earlier import, not a file to import",
                file.display()
            )));
        }
        if name.ends_with(".json") {
            return Err(unusable(format!(
                "{}: a .json file is one document; `ehrshare import` takes NDJSON (one \
                 resource a line), and `ehrshare connect` deposits a Bundle whole",
                file.display()
            )));
        }
        std::fs::File::open(file).map_err(|e| unusable(format!("{}: {e}", file.display())))?;
        let outcome = outcome_path(file);
        let earlier = std::fs::metadata(&outcome).map(|m| m.len()).unwrap_or(0);
        if earlier > 0 && !args.resume && !args.restart {
            return Err(unusable(format!(
                "{} holds an earlier run's answers: --resume to go on from it, --restart to \
                 start again",
                outcome.display()
            )));
        }
        if args.resume {
            check_header(&outcome, &args.smart)?;
        }
    }
    let client = Arc::new(
        SmartClient::new(
            &args.smart,
            Duration::from_secs(args.request_timeout_secs.max(1)),
        )
        .map_err(|e| unusable(format!("{e:#}")))?,
    );
    let patience = Patience {
        max_backoff: Duration::from_secs(args.max_backoff_secs.max(1)),
        give_up_after: Duration::from_secs(args.give_up_after_secs.max(1)),
        stopping: Arc::new(AtomicBool::new(false)),
    };
    // The credentials first: a wrong key or scope is said before anything is sent.
    first_token(&client, &patience).await?;
    let mut all_stored = true;
    for file in &args.files {
        all_stored &= import_file(&client, file, args, &patience).await?;
    }
    Ok(all_stored)
}

/// A token, waited for while the server cannot give one; refused credentials are unusable.
async fn first_token(client: &SmartClient, patience: &Patience) -> anyhow::Result<()> {
    let since = Instant::now();
    let mut wait = LEAST_WAIT;
    loop {
        match client.token().await {
            Ok(_) => return Ok(()),
            Err(Unsent::Refused(why)) => return Err(unusable(format!("no token: {why}"))),
            Err(e) => {
                if since.elapsed() >= patience.give_up_after {
                    return Err(Unfinished(format!(
                        "nothing sent: no token for {} s ({e})",
                        patience.give_up_after.as_secs()
                    ))
                    .into());
                }
                tracing::warn!(why = %e, "import: asking for a token again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(patience.max_backoff);
            }
        }
    }
}

/// The outcome file next to `file`.
fn outcome_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".outcome.ndjson");
    PathBuf::from(name)
}

/// The first line of an outcome file: where the lines went.
fn header(smart: &SmartArgs) -> Value {
    json!({"import": {"server": smart.server.trim_end_matches('/'), "client_id": smart.client_id}})
}

/// Refuses to resume into an outcome file of another server or client.
fn check_header(outcome: &Path, smart: &SmartArgs) -> anyhow::Result<()> {
    let file = match std::fs::File::open(outcome) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unusable(format!("{}: {e}", outcome.display()))),
    };
    let mut first = Vec::new();
    std::io::BufReader::new(std::io::Read::take(file, 64 * 1024))
        .read_until(b'\n', &mut first)
        .map_err(|e| unusable(format!("{}: {e}", outcome.display())))?;
    let found: Value = serde_json::from_slice(&first).unwrap_or(Value::Null);
    if found != header(smart) {
        return Err(unusable(format!(
            "{} was written for another server or client ({}); --restart to import into {} as \
             {}",
            outcome.display(),
            printable(&found["import"].to_string()),
            smart.server,
            smart.client_id
        )));
    }
    Ok(())
}

/// The lines an earlier run's outcome file shows stored: each line's fingerprint, by number
/// (0 for none), 8 bytes a line of the file.
fn stored_before(path: &Path) -> anyhow::Result<Vec<u64>> {
    #[derive(serde::Deserialize)]
    struct Said {
        line: u64,
        fingerprint: String,
        status: u16,
    }
    let mut stored = Vec::new();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(stored),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    let mut reader = std::io::BufReader::new(file);
    let mut text = Vec::new();
    loop {
        text.clear();
        if reader
            .read_until(b'\n', &mut text)
            .with_context(|| format!("{}", path.display()))?
            == 0
        {
            break;
        }
        // The header, or a line cut short by a crash: no answer.
        let Ok(said) = serde_json::from_slice::<Said>(&text) else {
            continue;
        };
        let (Ok(index), Ok(fingerprint)) = (
            usize::try_from(said.line),
            u64::from_str_radix(&said.fingerprint, 16),
        ) else {
            continue;
        };
        if stored.len() <= index {
            stored.resize(index + 1, 0);
        }
        stored[index] = if (200..300).contains(&said.status) {
            fingerprint
        } else {
            0
        };
    }
    Ok(stored)
}

/// The first 8 bytes of a line's SHA-256, never 0 (0 is "not stored").
fn fingerprint(text: &[u8]) -> u64 {
    let d = Sha256::digest(text);
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b).max(1)
}

fn hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

/// The resource a line writes, when it names one (`resourceType` and `id`), as a hash: two
/// lines with one are kept in order. A line without an id is named by its content, which
/// another line can only repeat.
fn resource_of(text: &[u8]) -> Option<u64> {
    let (resource_type, id) = ehrshare_fhir::resource::type_and_id(text)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    resource_type.hash(&mut h);
    id.hash(&mut h);
    Some(h.finish())
}

/// Reads a file's lines into requests.
struct Lines {
    reader: std::io::BufReader<std::fs::File>,
    number: u64,
    carried: Option<(Line, u64)>,
    done: bool,
    stored: Vec<u64>,
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
    /// The next line: its text without its line end, unless it is longer than a request may
    /// be (then only its length and fingerprint are kept, whatever its size), and the bytes
    /// it took. `None` at the end of the file.
    fn next_line(&mut self) -> std::io::Result<Option<(Line, u64)>> {
        let cap = usize::try_from(self.max_bytes).unwrap_or(usize::MAX);
        let mut text = Vec::new();
        let mut long = Sha256::new();
        let mut too_long = false;
        let mut read = 0u64;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let (part, end) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            let n = part.len();
            if !too_long && text.len() + n > cap.saturating_add(2) {
                too_long = true;
                long.update(&text);
                text = Vec::new();
            }
            if too_long {
                long.update(part);
            } else {
                text.extend_from_slice(part);
            }
            read += n as u64;
            self.reader.consume(n);
            if end {
                break;
            }
        }
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        if too_long {
            let d = long.finalize();
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[..8]);
            let line = Line {
                number: self.number,
                fingerprint: u64::from_be_bytes(b).max(1),
                text: Vec::new(),
                length: read,
                resource: None,
            };
            return Ok(Some((line, read)));
        }
        if text.last() == Some(&b'\n') {
            text.pop();
        }
        if text.last() == Some(&b'\r') {
            text.pop();
        }
        // Windows tools begin a file with a byte-order mark, which JSON text may not hold.
        if self.number == 1 && text.starts_with(b"\xEF\xBB\xBF") {
            text.drain(..3);
        }
        let line = Line {
            number: self.number,
            fingerprint: fingerprint(&text),
            length: text.len() as u64,
            resource: resource_of(&text),
            text,
        };
        Ok(Some((line, read)))
    }

    /// The next request's lines, or `None` at the end of the file.
    fn next_chunk(&mut self, aside: &mut Aside) -> std::io::Result<Option<Chunk>> {
        let mut chunk = Chunk {
            lines: Vec::new(),
            bytes: 0,
        };
        let mut body = 0u64;
        if let Some((line, bytes)) = self.carried.take() {
            body += line.length + 1;
            chunk.bytes += bytes;
            chunk.lines.push(line);
        }
        while chunk.lines.len() < self.max_lines && !self.done && aside.too_long.len() < 1000 {
            let Some((line, read)) = self.next_line()? else {
                self.done = true;
                break;
            };
            if line.text.iter().all(u8::is_ascii_whitespace)
                && line.length == line.text.len() as u64
            {
                aside.bytes += read;
                continue;
            }
            let index = usize::try_from(line.number).unwrap_or(usize::MAX);
            if self.stored.get(index) == Some(&line.fingerprint) {
                aside.bytes += read;
                aside.resumed += 1;
                continue;
            }
            if line.length + 1 > self.max_bytes {
                aside.bytes += read;
                aside.too_long.push(line);
                continue;
            }
            if body + line.length + 1 > self.max_bytes {
                self.carried = Some((line, read));
                break;
            }
            body += line.length + 1;
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
    patience: &Patience,
) -> anyhow::Result<bool> {
    let name = file.display().to_string();
    let cannot = |e: &dyn std::fmt::Display| Unfinished(format!("{name}: {e}; nothing of it sent"));
    let opened = std::fs::File::open(file).map_err(|e| cannot(&e))?;
    let total = opened.metadata().map_err(|e| cannot(&e))?.len();
    let outcome_at = outcome_path(file);
    let stored = if args.resume {
        stored_before(&outcome_at).map_err(|e| cannot(&format!("{e:#}")))?
    } else {
        Vec::new()
    };
    let mut outcome = Outcome::open(&outcome_at, args.resume, &header(&args.smart))
        .map_err(|e| cannot(&format!("{e:#}")))?;
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
    // How many requests in flight hold each resource.
    let mut held: HashMap<u64, u32> = HashMap::new();
    let mut waiting: Option<Chunk> = None;
    let mut stop: Option<String> = None;
    let mut aside = Aside::default();
    loop {
        while stop.is_none() && inflight.len() < usize::from(args.parallel) {
            let next = match waiting.take() {
                Some(chunk) => Some(chunk),
                None => match lines.next_chunk(&mut aside) {
                    Ok(next) => next,
                    Err(e) => {
                        stop = Some(format!("cannot read {name}: {e}"));
                        None
                    }
                },
            };
            progress.advance(std::mem::take(&mut aside.bytes));
            tally.resumed += std::mem::take(&mut aside.resumed);
            for line in std::mem::take(&mut aside.too_long) {
                let answer = Answer {
                    status: 413,
                    location: None,
                    outcome: Some(too_long_outcome(line.length, args.chunk_bytes)),
                };
                outcome.write(&line, &answer);
                tally.count(&answer);
            }
            let Some(chunk) = next else {
                break;
            };
            // A resource another request holds waits for it: the file's order is kept.
            if chunk.resources().any(|r| held.contains_key(&r)) {
                waiting = Some(chunk);
                break;
            }
            for r in chunk.resources() {
                *held.entry(r).or_default() += 1;
            }
            tally.sent += chunk.lines.len() as u64;
            inflight.spawn(deliver(client.clone(), chunk, patience.clone()));
        }
        let Some(done) = inflight.join_next().await else {
            break;
        };
        let delivered = match done {
            Ok(d) => d,
            Err(e) => {
                stop.get_or_insert(format!("a request failed: {e}"));
                patience.stopping.store(true, Ordering::SeqCst);
                continue;
            }
        };
        for r in &delivered.resources {
            if let Some(n) = held.get_mut(r) {
                *n -= 1;
                if *n == 0 {
                    held.remove(r);
                }
            }
        }
        for (line, answer) in &delivered.answered {
            outcome.write(line, answer);
            tally.count(answer);
        }
        outcome.flush();
        if let Some(e) = outcome.failed.take() {
            stop.get_or_insert(format!("cannot write {}: {e}", outcome_at.display()));
        }
        match delivered.stop {
            None => progress.advance(delivered.bytes),
            Some(reason) => {
                stop.get_or_insert(reason);
            }
        }
        if stop.is_some() {
            // The other requests stop at their next wait.
            patience.stopping.store(true, Ordering::SeqCst);
        }
        progress.say(&tally);
    }
    outcome.flush();
    if let Some(e) = outcome.failed.take() {
        stop.get_or_insert(format!("cannot write {}: {e}", outcome_at.display()));
    }
    progress.finish();
    eprintln!(
        "{}",
        tally.summary(&name, &outcome_at.display().to_string())
    );
    if let Some(reason) = stop {
        return Err(Unfinished(format!(
            "{name}: stopped before every line was answered: {}; what was answered is in {}; \
             run again with --resume to send the rest",
            printable(&reason),
            outcome_at.display()
        ))
        .into());
    }
    Ok(tally.refused.is_empty())
}

/// The outcome file, written a request at a time; its first failure is kept, and stops the
/// import.
struct Outcome {
    out: std::io::BufWriter<std::fs::File>,
    failed: Option<std::io::Error>,
}

impl Outcome {
    fn open(path: &Path, resume: bool, header: &Value) -> anyhow::Result<Outcome> {
        if resume {
            end_with_newline(path)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(resume)
            .truncate(!resume)
            .open(path)
            .with_context(|| format!("{}", path.display()))?;
        let fresh = file.metadata()?.len() == 0;
        let mut outcome = Outcome {
            out: std::io::BufWriter::new(file),
            failed: None,
        };
        if fresh {
            outcome.line(header);
        }
        Ok(outcome)
    }

    fn line(&mut self, v: &Value) {
        if self.failed.is_some() {
            return;
        }
        let mut text = v.to_string();
        text.push('\n');
        if let Err(e) = self.out.write_all(text.as_bytes()) {
            self.failed = Some(e);
        }
    }

    fn write(&mut self, line: &Line, answer: &Answer) {
        self.line(&answer.record(line));
    }

    fn flush(&mut self) {
        if self.failed.is_none()
            && let Err(e) = self.out.flush()
        {
            self.failed = Some(e);
        }
    }
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

fn too_long_outcome(length: u64, limit: u64) -> Value {
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

/// A `batch-response`'s answers sorted: those that stand, and the lines to send again (429
/// or 5xx: the server could not take them now). `None` when the body is no such Bundle, or
/// its entries are not one a line.
fn sort_answers(body: &[u8], pending: Vec<Line>) -> Option<(Answered, Vec<Line>)> {
    let v = serde_json::from_slice::<Value>(body).ok()?;
    if ehrshare_fhir::resource::type_of(&v) != Some("Bundle") || v["type"] != "batch-response" {
        return None;
    }
    let entries = v["entry"].as_array()?;
    if entries.len() != pending.len() {
        return None;
    }
    let mut answered = Vec::new();
    let mut again = Vec::new();
    for (line, entry) in pending.into_iter().zip(entries) {
        let answer = answer_of(&entry["response"]);
        if passing(answer.status) {
            again.push(line);
        } else {
            answered.push((line, answer));
        }
    }
    Some((answered, again))
}

/// Sends one request until every line is answered, or the import must stop.
async fn deliver(client: Arc<SmartClient>, chunk: Chunk, patience: Patience) -> Delivered {
    let resources: Vec<u64> = chunk.resources().collect();
    let mut pending = chunk.lines;
    let mut answered = Vec::with_capacity(pending.len());
    let mut wait = LEAST_WAIT;
    let mut since = Instant::now();
    let mut refused_token = false;
    let stop = loop {
        let mut body = Vec::with_capacity(pending.iter().map(|l| l.text.len() + 1).sum());
        for line in &pending {
            body.extend_from_slice(&line.text);
            body.push(b'\n');
        }
        let until = tokio::time::Instant::from_std(since + patience.give_up_after);
        let sent = tokio::time::timeout_at(
            until,
            client.post("/fhir/$import", "application/fhir+ndjson", body),
        )
        .await;
        let (why, retry_after) = match sent {
            Err(_) => (
                format!("no answer within {} s", patience.give_up_after.as_secs()),
                None,
            ),
            Ok(Err(Unsent::Refused(why))) => break Some(format!("no token: {why}")),
            Ok(Err(e)) => (e.to_string(), None),
            Ok(Ok(r)) if r.status == 200 => match sort_answers(&r.body, pending) {
                Some((done, again)) => {
                    if !done.is_empty() {
                        since = Instant::now();
                    }
                    answered.extend(done);
                    pending = again;
                    if pending.is_empty() {
                        break None;
                    }
                    (format!("{} lines answered 429 or 5xx", pending.len()), None)
                }
                None => {
                    break Some(
                        "the server's answer to a request was not one entry a line".to_owned(),
                    );
                }
            },
            Ok(Ok(r)) if r.status == 401 && !refused_token => {
                // The token expired, or the server restarted with new keys: one new token.
                refused_token = true;
                continue;
            }
            Ok(Ok(r)) if passing(r.status) || !is_json(&r.body) => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                (
                    format!("the server answered {} {}", r.status, said(&body)),
                    r.retry_after,
                )
            }
            Ok(Ok(r)) => {
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
        if patience.stopping.load(Ordering::SeqCst) {
            break Some("stopped with the import".to_owned());
        }
        if since.elapsed() >= patience.give_up_after {
            break Some(format!(
                "nothing answered for {} s; last: {why}",
                patience.give_up_after.as_secs()
            ));
        }
        let pause = pause(wait, retry_after, &patience);
        tracing::warn!(why = %printable(&why), wait_secs = pause.as_secs_f64(), "import: trying again");
        tokio::time::sleep(pause).await;
        wait = (wait * 2).min(patience.max_backoff);
    };
    Delivered {
        answered,
        bytes: chunk.bytes,
        resources,
        stop,
    }
}

/// Whether a body is JSON: a refusal from the server is; a proxy's error page is not, and may
/// pass.
fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// The wait before the next try: the backoff or what the server asked, whichever is longer
/// (its ask bounded by the patience), never less than [`LEAST_WAIT`], with up to a quarter
/// more at random so that requests in flight do not come back together.
fn pause(wait: Duration, retry_after: Option<u64>, patience: &Patience) -> Duration {
    let asked = retry_after.map_or(Duration::ZERO, Duration::from_secs);
    let base = wait
        .min(patience.max_backoff)
        .max(asked.min(patience.give_up_after))
        .max(LEAST_WAIT);
    let jitter = getrandom::u32().unwrap_or(0) % 1000;
    base + base * jitter / 4000
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
    sent: u64,
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
        let answered_of_sent = self.created + self.kept + self.refused_total();
        if self.sent > answered_of_sent {
            s.push_str(&format!(
                "; {} sent and not answered",
                self.sent - answered_of_sent.min(self.sent)
            ));
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
        text: &[u8],
        stored: Vec<u64>,
        max_lines: usize,
        max_bytes: u64,
    ) -> (Vec<Vec<u64>>, Aside) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.ndjson");
        std::fs::write(&path, text).unwrap();
        let mut lines = Lines {
            reader: std::io::BufReader::with_capacity(16, std::fs::File::open(&path).unwrap()),
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
        let mut too_long = Vec::new();
        while let Some(c) = lines.next_chunk(&mut aside).unwrap() {
            bytes += c.bytes;
            chunks.push(c.lines.iter().map(|l| l.number).collect());
            too_long.append(&mut aside.too_long);
        }
        aside.too_long.append(&mut too_long);
        assert_eq!(
            bytes + aside.bytes,
            text.len() as u64,
            "every byte is counted once"
        );
        (chunks, aside)
    }

    #[test]
    fn lines_are_chunked_by_count_and_by_bytes_keeping_their_numbers() {
        let text = b"{\"a\":1}\r\n\n{\"b\":2}\n  \n{\"c\":3}\n{\"d\":4}";
        let (chunks, aside) = lines_of(text, Vec::new(), 2, 1 << 20);
        assert_eq!(chunks, vec![vec![1, 3], vec![5, 6]]);
        assert!(aside.too_long.is_empty());
        // Eight bytes a line with its newline: two fit in 16, not in 15.
        let (chunks, _) = lines_of(text, Vec::new(), 10, 16);
        assert_eq!(chunks, vec![vec![1, 3], vec![5, 6]]);
        let (chunks, _) = lines_of(text, Vec::new(), 10, 15);
        assert_eq!(chunks, vec![vec![1], vec![3], vec![5], vec![6]]);
    }

    #[test]
    fn a_line_longer_than_a_request_is_set_aside_without_its_text() {
        let text = format!(
            "{{\"a\":1}}\n{{\"b\":\"{}\"}}\n{{\"c\":3}}\n",
            "x".repeat(100)
        );
        let (chunks, aside) = lines_of(text.as_bytes(), Vec::new(), 10, 64);
        assert_eq!(chunks, vec![vec![1, 3]]);
        let long: Vec<(u64, u64, usize)> = aside
            .too_long
            .iter()
            .map(|l| (l.number, l.length, l.text.len()))
            .collect();
        assert_eq!(long, vec![(2, 109, 0)]);
        // A file without a line end is one line, held no more than a request's worth.
        let (chunks, aside) = lines_of("x".repeat(10_000).as_bytes(), Vec::new(), 10, 1024);
        assert!(chunks.is_empty());
        assert_eq!(aside.too_long.len(), 1);
    }

    #[test]
    fn a_byte_order_mark_is_dropped_from_the_first_line() {
        let text = b"\xEF\xBB\xBF{\"resourceType\":\"Condition\",\"id\":\"c1\"}\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.ndjson");
        std::fs::write(&path, text).unwrap();
        let mut lines = Lines {
            reader: std::io::BufReader::new(std::fs::File::open(&path).unwrap()),
            number: 0,
            carried: None,
            done: false,
            stored: Vec::new(),
            max_lines: 10,
            max_bytes: 1024,
        };
        let (line, _) = lines.next_line().unwrap().unwrap();
        assert!(line.text.starts_with(b"{"));
        assert_eq!(
            line.resource,
            resource_of(b"{\"id\":\"c1\",\"resourceType\":\"Condition\"}")
        );
        assert!(line.resource.is_some());
    }

    #[test]
    fn resuming_skips_a_stored_line_only_if_its_content_is_the_same() {
        let text = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        // Line 2 was stored with other content: the file changed, so it is sent.
        let stored = vec![0, fingerprint(b"{\"a\":1}"), fingerprint(b"{\"b\":1}")];
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
            "{\"import\":{\"server\":\"http://x\",\"client_id\":\"c\"}}\n\
             {\"line\":1,\"fingerprint\":\"00000000000000aa\",\"status\":201}\n\
             {\"line\":2,\"fingerprint\":\"00000000000000bb\",\"status\":422}\n\
             {\"line\":3,\"fingerprint\":\"00000000000000cc\",\"status\":200}\n\
             {\"line\":3,\"fingerprint\":\"00000000000000cc\",\"status\":403}\n\
             {\"line\":4,\"fingerpr",
        )
        .unwrap();
        let stored = stored_before(&path).unwrap();
        assert_eq!(stored, vec![0, 0xaa, 0, 0]);
        // Appending after a cut line starts a line of its own.
        end_with_newline(&path).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .ends_with("fingerpr\n")
        );
    }

    #[test]
    fn answers_are_sorted_into_those_that_stand_and_those_to_send_again() {
        let line = |n: u64| Line {
            number: n,
            fingerprint: n,
            text: Vec::new(),
            length: 0,
            resource: None,
        };
        use ehrshare_fhir::bundle::{EntryResponse, response};
        let entry = |status: &str, location: Option<&str>, outcome: Option<Value>| EntryResponse {
            status: status.to_owned(),
            location: location.map(str::to_owned),
            etag: None,
            last_modified: None,
            resource: None,
            outcome,
        };
        let body = response(
            false,
            vec![
                entry("201 Created", Some("Condition/x/_history/1"), None),
                entry("503 Service Unavailable", None, None),
                entry(
                    "413 Payload Too Large",
                    None,
                    Some(too_long_outcome(2_000_000, 1024)),
                ),
            ],
        )
        .to_string();
        let (answered, again) =
            sort_answers(body.as_bytes(), vec![line(1), line(2), line(3)]).unwrap();
        let answered: Vec<(u64, u16, String)> = answered
            .iter()
            .map(|(l, a)| (l.number, a.status, a.code()))
            .collect();
        assert_eq!(
            answered,
            vec![
                (1, 201, "201".to_owned()),
                (3, 413, "line-too-long".to_owned())
            ]
        );
        assert_eq!(again.iter().map(|l| l.number).collect::<Vec<_>>(), vec![2]);
        // Not one entry a line, or not a batch-response: no answer to trust.
        assert!(sort_answers(body.as_bytes(), vec![line(1)]).is_none());
        assert!(sort_answers(b"<html>", vec![line(1)]).is_none());
    }

    #[test]
    fn a_wait_is_never_shorter_than_the_least_nor_than_the_server_asked() {
        let patience = Patience {
            max_backoff: Duration::from_secs(60),
            give_up_after: Duration::from_secs(600),
            stopping: Arc::new(AtomicBool::new(false)),
        };
        let p = pause(Duration::ZERO, Some(0), &patience);
        assert!(p >= LEAST_WAIT && p <= LEAST_WAIT * 5 / 4, "{p:?}");
        let p = pause(Duration::from_secs(1), Some(120), &patience);
        assert!(p >= Duration::from_secs(120), "{p:?}");
        let p = pause(Duration::from_secs(1), Some(100_000), &patience);
        assert!(
            p <= Duration::from_secs(750),
            "bounded by the patience: {p:?}"
        );
    }
}
