//! Reading the log out and moving it between backends.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

/// Imports into a new store: `import` creates the schema itself, as `serve` does.
fn import_into(url: &str, log: &str) -> std::process::Output {
    let mut cmd = livechat(url);
    cmd.arg("import");
    run(cmd, log)
}

fn export(url: &str) -> Vec<Value> {
    let mut cmd = livechat(url);
    cmd.arg("export");
    let out = run(cmd, "");
    assert!(out.status.success(), "{}", stderr(&out));
    lines(&stdout(&out))
}

/// Everything but the position, which each backend assigns.
fn portable(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .map(|mut e| {
            e.as_object_mut().unwrap().remove("position");
            e
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_round_trip_between_backends() {
    let log = sample_log(50);
    let original = portable(lines(&log));
    let a = sqlite_url(&scratch());
    assert!(import_into(&a, &log).status.success());
    let from_a = export(&a);
    assert_eq!(portable(from_a.clone()), original, "sqlite keeps ids, streams, versions, times, metadata");
    assert_eq!(from_a[49]["position"], "0:50");
    let mut until = livechat(&a);
    until.args(["export", "--until", "0:20"]);
    let out = run(until, "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(portable(lines(&stdout(&out))), original[..20].to_vec(), "--until stops at that position");

    let mut hops = vec![a];
    if let Some(pg) = store::testkit::pg::fresh_database().await {
        hops.push(pg);
    }
    hops.push(sqlite_url(&scratch()));
    for pair in hops.windows(2) {
        let text: String = export(&pair[0]).iter().map(|e| format!("{e}\n")).collect();
        let out = import_into(&pair[1], &text);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("imported 50 events"));
        assert_eq!(portable(export(&pair[1])), original, "{} -> {}", pair[0], pair[1]);
    }
}

#[test]
fn import_refuses_a_non_empty_store_and_a_broken_log_writes_nothing() {
    let url = sqlite_url(&scratch());
    assert!(import_into(&url, &sample_log(5)).status.success());
    let mut again = livechat(&url);
    again.arg("import");
    let out = run(again, &sample_log(5));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already holds events"), "{}", stderr(&out));

    let empty = sqlite_url(&scratch());
    let mut broken = sample_log(6);
    broken.push_str("{not json\n");
    let out = import_into(&empty, &broken);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 7: not an exported event"), "{}", stderr(&out));
    assert!(export(&empty).is_empty(), "nothing imported from a broken log");

    let gap: String =
        sample_log(9).lines().filter(|l| !l.contains("\"stream_version\":1}")).map(|l| format!("{l}\n")).collect();
    let out = import_into(&sqlite_url(&scratch()), &gap);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has version 2 where 1 was expected"), "{}", stderr(&out));
}

#[test]
fn events_tail_show_and_projections_from_the_cli() {
    let url = sqlite_url(&scratch());
    assert!(import_into(&url, &sample_log(9)).status.success());
    let mut tail = livechat(&url);
    tail.args(["events", "tail", "--from", "0:7"]);
    let got = lines(&stdout(&run(tail, "")));
    assert_eq!(got.iter().map(|e| e["position"].as_str().unwrap()).collect::<Vec<_>>(), vec!["0:7", "0:8", "0:9"]);

    let mut show = livechat(&url);
    show.args(["events", "show", "visit-b"]);
    let got = lines(&stdout(&run(show, "")));
    assert_eq!(got.iter().map(|e| e["stream_version"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
    let mut missing = livechat(&url);
    missing.args(["events", "show", "user-zzz"]);
    assert_eq!(run(missing, "").status.code(), Some(2));

    let mut status = livechat(&url);
    status.args(["projections", "status", "--json"]);
    let before: Value = serde_json::from_str(&stdout(&run(status, ""))).unwrap();
    assert_eq!(before[0]["lag_events"], 9);
    let mut rebuild = livechat(&url);
    rebuild.args(["projections", "rebuild", "--all"]);
    let out = run(rebuild, "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("stream_index: 9 events in"), "{}", stderr(&out));
    let mut status = livechat(&url);
    status.args(["projections", "status", "--json"]);
    let after: Value = serde_json::from_str(&stdout(&run(status, ""))).unwrap();
    assert_eq!((after[0]["lag_events"].as_u64(), after[0]["checkpoint"].as_str()), (Some(0), Some("0:9")));
    let mut table = livechat(&url);
    table.args(["projections", "status"]);
    let text = stdout(&run(table, ""));
    assert!(text.contains("stream_index") && text.contains("0:9"), "{text}");
    let mut parked = livechat(&url);
    parked.args(["projections", "parked", "stream_index"]);
    let out = run(parked, "");
    assert!(out.status.success() && stdout(&out).is_empty(), "nothing parked: {}", stdout(&out));
    let mut unknown = livechat(&url);
    unknown.args(["projections", "rebuild", "nope"]);
    let out = run(unknown, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no projector 'nope'; known: stream_index"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_events_are_listed_with_stream_position_and_error() {
    let dir = scratch();
    let url = sqlite_url(&dir);
    assert!(import_into(&url, &sample_log(3)).status.success());
    // Park an event the way a runner does, through the store.
    let store = store::Store::open(&url.parse().unwrap()).await.unwrap();
    let event = store.events().read_all(&store::ReadAll::forward(store::Position::START, 1)).await.unwrap().remove(0);
    let parked = store::ParkedEvent::new(
        "stream_index",
        &event,
        "cannot decode Started v1: missing field `name`".into(),
        3,
        chrono::Utc::now(),
    );
    let commit = store::Commit {
        projector: "stream_index".into(),
        projector_version: 1,
        expected: None,
        checkpoint: event.position,
        last_event_at: Some(event.recorded_at),
        changes: vec![],
        parked: vec![parked],
        now: chrono::Utc::now(),
    };
    store.views().commit(commit).await.unwrap();
    drop(store);

    let mut cmd = livechat(&url);
    cmd.args(["projections", "parked", "stream_index"]);
    let listed = lines(&stdout(&run(cmd, "")));
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0]["stream_id"].as_str(), listed[0]["position"].as_str()), (Some("room-a"), Some("0:1")));
    assert!(listed[0]["error"].as_str().unwrap().contains("missing field `name`"));
    let mut status = livechat(&url);
    status.args(["projections", "status", "--json"]);
    let health: Value = serde_json::from_str(&stdout(&run(status, ""))).unwrap();
    assert_eq!(health[0]["parked"], 1);
}

#[test]
fn events_tail_follow_prints_events_as_they_arrive() {
    let url = sqlite_url(&scratch());
    let mut m = livechat(&url);
    m.arg("migrate");
    assert!(run(m, "").status.success());
    let mut follow = livechat(&url);
    follow.args(["events", "tail", "--follow"]).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = follow.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut import = livechat(&url);
    import.arg("import");
    assert!(run(import, &sample_log(4)).status.success());
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("follow delivers new events");
        seen.push(serde_json::from_str::<Value>(&line).unwrap()["position"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, vec!["0:1", "0:2", "0:3", "0:4"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_never_shows_password_hashes_but_exports_keep_them() {
    let url = sqlite_url(&scratch());
    // The first start creates the admin.
    let server = Server::start(&url);
    drop(server);
    let mut tail = livechat(&url);
    tail.args(["events", "tail"]);
    let shown = stdout(&run(tail, ""));
    assert!(shown.contains("\"password_hash\":\"[redacted]\""), "{shown}");
    assert!(!shown.contains("$argon2"), "no hash in `events tail`");
    let exported: String = export(&url).iter().map(|e| e.to_string()).collect();
    assert!(exported.contains("$argon2id$"), "the export keeps the hash, so accounts survive a restore");
}
