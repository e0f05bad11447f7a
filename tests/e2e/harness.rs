//! Starting the binary, writing logs, talking HTTP.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_livechat");
pub const ADMIN_LOGIN: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A command line for the binary with a clean environment.
pub fn livechat(store: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DATABASE_URL")
        .env_remove("LIVECHAT_LISTEN")
        .env_remove("LIVECHAT_PUBLIC_URL")
        .env("RUST_LOG", "info")
        .env("LIVECHAT_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .arg("--store")
        .arg(store);
    cmd
}

/// Runs to completion, feeding `stdin`.
pub fn run(mut cmd: Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn livechat");
    // A command that refuses early (exit 2) may not read its input: a broken pipe is fine.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("livechat.db").display())
}

/// An exported log of `n` events over three streams, with fixed ids and times.
pub fn sample_log(n: u64) -> String {
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let mut versions = std::collections::HashMap::new();
    let mut out = String::new();
    for i in 0..n {
        let stream = ["room-a", "visit-b", "ticket-c"][(i % 3) as usize];
        let v = versions.entry(stream).or_insert(0u64);
        let e = json!({
            "position": format!("0:{}", i + 1),
            "event_id": uuid::Uuid::from_u128(0xabc0_0000 + i as u128),
            "stream_id": stream,
            "stream_version": *v,
            "event_type": if *v == 0 { "Started" } else { "Touched" },
            "schema_version": 1,
            "data": { "i": i, "text": "héllo" },
            "metadata": { "actor": { "kind": "system", "id": null }, "correlation_id": format!("c-{i}") },
            "recorded_at": (at + chrono::Duration::microseconds(1_000_123 * i as i64)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        });
        *v += 1;
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}

/// Parses JSON lines.
pub fn lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A running `livechat serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The first admin's token, once [`Server::login`] ran.
    pub token: Option<String>,
}

impl Server {
    pub fn start(store: &str) -> Server {
        Server::start_with(store, &[])
    }

    /// `serve` with these extra arguments.
    pub fn start_with(store: &str, extra: &[&str]) -> Server {
        Server::spawn(livechat(store), extra)
    }

    /// `serve` from a prepared command line (environment, store) with these extra arguments.
    pub fn spawn(mut cmd: Command, extra: &[&str]) -> Server {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let url = line[i + "listening on ".len()..].split_whitespace().next().unwrap().to_string();
                    let _ = tx.send(url);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!("server did not start: {:?}", log.lock().unwrap());
        });
        Server { child, base, log, token: None }
    }

    /// Logs in as the first admin; later requests carry the token.
    pub async fn login(&mut self) {
        let body = json!({ "login": ADMIN_LOGIN, "password": ADMIN_PASSWORD });
        let res =
            reqwest::Client::new().post(format!("{}/api/v1/auth/token", self.base)).json(&body).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "admin login");
        let body: Value = res.json().await.unwrap();
        self.token = Some(body["access_token"].as_str().unwrap().to_string());
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.log.lock().unwrap().clone());
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn scratch() -> PathBuf {
    store::testkit::scratch_dir()
}
