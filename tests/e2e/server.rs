//! `serve`: the HTTP API over a real store, one server per file, graceful SIGTERM.

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_store_answers_health_events_and_streams_then_stops_on_sigterm() {
    let dir = scratch();
    let url = sqlite_url(&dir);
    let mut migrate = livechat(&url);
    migrate.arg("migrate");
    assert!(run(migrate, "").status.success());
    let mut import = livechat(&url);
    import.arg("import");
    let out = run(import, &sample_log(30));
    assert!(out.status.success(), "{}", stderr(&out));

    let mut server = Server::start(&url);
    assert_eq!(server.get("/healthz").await, (200, serde_json::json!({"status": "ok"})));
    assert_eq!(server.get("/api/v1/events").await.0, 401, "the log is for admins");
    server.login().await;
    let (status, streams) = server.get("/api/v1/streams?category=room&min_position=0:30").await;
    assert_eq!(status, 200, "{streams}");
    let (_, rooms) = server.get("/api/v1/streams?category=room").await;
    assert_eq!(rooms["streams"].as_array().unwrap().len(), 1);
    let (_, all) = server.get("/api/v1/streams?min_position=0:30").await;
    let listed: Vec<_> = all["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stream_id"].as_str().unwrap().to_string(), s["event_count"].as_u64().unwrap()))
        .collect();
    let imported: Vec<_> = listed
        .iter()
        .filter(|(s, _)| !s.starts_with("channel-") && !s.starts_with("login-") && !s.starts_with("user-"))
        .cloned()
        .collect();
    assert_eq!(imported, vec![("room-a".into(), 10), ("ticket-c".into(), 10), ("visit-b".into(), 10)]);
    let (status, ready) = server.get("/readyz").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")), "{ready}");
    assert!(ready["projectors"][0]["checkpoint"].is_string(), "{ready}");
    let (_, events) = server.get("/api/v1/events?category=visit&limit=3").await;
    assert_eq!(events["events"][0]["stream_id"], "visit-b", "{events}");
    assert_eq!(events["events"].as_array().unwrap().len(), 3);
    assert!(events["next_cursor"].is_string());

    // A second server on the same file is refused, and the first one keeps working.
    let mut second = livechat(&url);
    second.args(["serve", "--listen", "127.0.0.1:0"]);
    let out = run(second, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already in use by another livechat process"), "{}", stderr(&out));
    assert_eq!(server.get("/healthz").await.0, 200);

    // A rebuild from the CLI is refused while the server owns the projector.
    let mut rebuild = livechat(&url);
    rebuild.args(["projections", "rebuild", "stream_index"]);
    let out = run(rebuild, "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("being run by a live server"));

    let (code, log) = server.terminate();
    assert_eq!(code, Some(0), "{log:?}");
    assert!(log.iter().any(|l| l.contains("shutting down")), "{log:?}");
    assert!(log.last().unwrap().contains("stopped"), "{log:?}");

    // After a clean stop the file can be served again.
    let again = Server::start(&url);
    assert_eq!(again.get("/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_postgres() {
    let Some(pg) = store::testkit::pg::fresh_database().await else { return };
    let mut import = livechat(&pg);
    import.arg("migrate");
    assert!(run(import, "").status.success());
    let mut import = livechat(&pg);
    import.arg("import");
    let out = run(import, &sample_log(12));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut server = Server::start(&pg);
    server.login().await;
    let (_, events) = server.get("/api/v1/events?category=room&limit=100").await;
    let events = events["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 4);
    let last = events.last().unwrap()["position"].as_str().unwrap().to_string();
    let (status, streams) = server.get(&format!("/api/v1/streams?category=room&min_position={last}")).await;
    assert_eq!(status, 200, "{streams}");
    assert_eq!(streams["streams"].as_array().unwrap().len(), 1);
    let (status, ready) = server.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["store"]["backend"], "postgres");
    assert!(ready["store"]["horizon_age_seconds"].is_number(), "{ready}");
    assert_eq!(server.terminate().0, Some(0));
}
