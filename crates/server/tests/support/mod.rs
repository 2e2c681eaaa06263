//! What the tests that run the real binary share: a server process, one HTTP/1.1 request over
//! a fresh connection, and a demo login.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ehrshare");

/// The binary with a clean environment, the test's data folder and database, and `env`.
pub fn ehrshare(data: &std::path::Path, url: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EHRSHARE_DATA_DIR", data)
        .env("EHRSHARE_DATABASE_URL", url)
        .env("EHRSHARE_LOG_LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A server process and the address it listens on.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    /// `serve` on a free loopback port; waits for the line that names it.
    pub fn start(data: &std::path::Path, url: &str, env: &[(&str, &str)], args: &[&str]) -> Server {
        match Server::try_start(data, url, env, args) {
            Ok(server) => server,
            Err(status) => panic!("the server exited: {status}"),
        }
    }

    /// [`Server::start`], or the exit status of a server that did not start.
    pub fn try_start(
        data: &std::path::Path,
        url: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<Server, std::process::ExitStatus> {
        let mut child = ehrshare(data, url, env)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("ehrshare listening on http://") {
                        let addr = rest.split_whitespace().next().unwrap().to_owned();
                        return Ok(Server { child, addr });
                    }
                }
                Err(_) => {
                    if let Some(status) = child.try_wait().unwrap() {
                        return Err(status);
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(120),
                        "the server did not start"
                    );
                }
            }
        }
    }

    /// SIGKILL: no drain, no final checkpoint.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; the exit status and how long it took.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        (status, started.elapsed())
    }
}

/// A test that fails leaves no server behind.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The session a request is sent with.
#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// One HTTP/1.1 request on a connection of its own: status, headers, body; `None` if the
/// connection failed.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    session: Option<&Session>,
    body: Option<&str>,
) -> Option<(u16, String, String)> {
    request_with(addr, method, path, &[], session, body)
}

/// [`request`] with more header lines.
pub fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    session: Option<&Session>,
    body: Option<&str>,
) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(s) = session {
        head.push_str(&format!(
            "Cookie: {}\r\nX-CSRF-Token: {}\r\n",
            s.cookie, s.csrf
        ));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let (headers, body) = response.split_once("\r\n\r\n")?;
    Some((status, headers.to_owned(), body.to_owned()))
}

/// A demo account's current security code (`ehrshare demo code`).
pub fn demo_code(data: &std::path::Path, url: &str, user: &str) -> String {
    let out = ehrshare(data, url, &[])
        .args(["demo", "code", user])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A login attempt: the status and body, and the session when it succeeded.
pub fn try_log_in(
    addr: &str,
    user: &str,
    password: &str,
    code: &str,
) -> (u16, String, Option<Session>) {
    let body = serde_json::json!({"user_name": user, "password": password, "totp": code});
    let (status, headers, body) = request(
        addr,
        "POST",
        "/api/v1/session",
        None,
        Some(&body.to_string()),
    )
    .unwrap();
    if status != 201 {
        return (status, body, None);
    }
    let cookie = headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().unwrap().to_owned())
        })
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let session = Session {
        cookie,
        csrf: json["csrf_token"].as_str().unwrap().to_owned(),
    };
    (status, body, Some(session))
}

/// The demo accounts' password.
pub const DEMO_PASSWORD: &str = "Demo-2026-ehrshare";

/// Logs a demo account in with its current security code.
pub fn log_in(data: &std::path::Path, url: &str, addr: &str, user: &str) -> Session {
    let code = demo_code(data, url, user);
    let (status, body, session) = try_log_in(addr, user, DEMO_PASSWORD, &code);
    assert_eq!(status, 201, "{body}");
    session.unwrap()
}

/// The first demo adult, under the demo hospital's care with its consent.
pub fn patient(addr: &str, session: &Session) -> String {
    let body = serde_json::json!({"document": {"number": "A100000(7)"}}).to_string();
    let (status, _, body) = request(
        addr,
        "POST",
        "/api/v1/recipients/find",
        Some(session),
        Some(&body),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["id"].as_str().unwrap().to_owned()
}

/// `/healthz`'s answer as JSON.
pub fn health(addr: &str) -> serde_json::Value {
    let (status, _, body) = request(addr, "GET", "/healthz", None, None).unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `ehrshare audit verify` passes; its output.
pub fn verify(data: &std::path::Path, url: &str) -> String {
    let out = ehrshare(data, url, &[])
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
