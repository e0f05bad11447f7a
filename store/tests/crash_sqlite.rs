//! Crash safety on SQLite: a writer killed with SIGKILL mid-stream loses no acknowledged event.
//!
//! The test re-runs this test binary as a child that appends in a loop and prints `ACK <id>`
//! after each acknowledged append; the parent kills it and checks the file.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use store::{ExpectedVersion, NewEvent, Position, ReadAll, Store, StoreUrl};

const CHILD_ENV: &str = "LIVECHAT_CRASH_CHILD_SQLITE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_appends_until_killed() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let store = Store::open(&StoreUrl::Sqlite(path.into())).await.unwrap();
    let events = store.events();
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        let e = NewEvent::new("Appended", serde_json::json!({ "n": n }));
        let id = e.event_id;
        events.append(&format!("crash-{}", n % 4), ExpectedVersion::Any, vec![e]).await.unwrap();
        writeln!(out, "ACK {id}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let path = store::testkit::scratch_dir().join("crash.db");
    let store = Store::open(&StoreUrl::Sqlite(path.clone())).await.unwrap();
    store.migrate().await.unwrap();
    drop(store);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_appends_until_killed", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reader = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let started = Instant::now();
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.parse::<uuid::Uuid>().unwrap());
        }
        if acked.len() >= 300 || started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL, in the middle of the stream of appends
    child.wait().unwrap();
    assert!(acked.len() >= 50, "the child acknowledged too few appends: {}", acked.len());

    let store = Store::open(&StoreUrl::Sqlite(path)).await.unwrap();
    store.check_schema().await.unwrap();
    let log = store.events().read_all(&ReadAll::forward(Position::START, 100_000)).await.unwrap();
    let stored: std::collections::HashSet<_> = log.iter().map(|e| e.event_id).collect();
    let lost: Vec<_> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
    let mut next: HashMap<&str, u64> = HashMap::new();
    for e in &log {
        let v = next.entry(e.stream_id.as_str()).or_default();
        assert_eq!(e.stream_version, *v, "versions stay consecutive in {}", e.stream_id);
        *v += 1;
    }
    // The store still takes writes after the crash.
    store
        .events()
        .append("crash-0", ExpectedVersion::Any, vec![NewEvent::new("After", serde_json::json!({}))])
        .await
        .unwrap();
}
