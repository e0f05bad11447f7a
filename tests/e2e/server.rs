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
    // A new database: import migrates it first.
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

/// Without `LIVECHAT_ADMIN_PASSWORD`, the first start prints the generated password once, on
/// its own framed lines on stderr (never inside a log line), and it signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_admin_password_is_printed_once_on_its_own_and_signs_in() {
    let url = sqlite_url(&scratch());
    let mut cmd = livechat(&url);
    cmd.env_remove("LIVECHAT_ADMIN_PASSWORD");
    let server = Server::spawn(cmd, &[]);
    let log = server.log.lock().unwrap().clone();
    let line = log.iter().find(|l| l.starts_with("|   password: ")).unwrap_or_else(|| panic!("{log:?}"));
    let password = line.trim_start_matches("|   password: ").trim_end_matches('|').trim().to_string();
    assert_eq!(password.len(), 20, "{line}");
    assert!(log.iter().any(|l| l.contains("livechat user passwd admin@example.com")), "{log:?}");
    let showing: Vec<_> = log.iter().filter(|l| l.contains(&password)).collect();
    assert_eq!(showing, vec![line], "only the framed line shows it, never a log line");
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/token", server.base))
        .json(&serde_json::json!({ "login": ADMIN_LOGIN, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(server.terminate().0, Some(0));

    // The second start creates nobody and prints no password.
    let mut cmd = livechat(&url);
    cmd.env_remove("LIVECHAT_ADMIN_PASSWORD");
    let again = Server::spawn(cmd, &[]);
    let log = again.log.lock().unwrap().clone();
    assert!(!log.iter().any(|l| l.contains("password:")), "{log:?}");
}

/// `--public-url` is where the snippet and the direct link point, whatever `Host` the admin
/// used; a malformed one is an operator mistake (exit 2, one line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_snippet_uses_the_public_url() {
    let url = sqlite_url(&scratch());
    let mut bad = livechat(&url);
    bad.args(["serve", "--public-url", "chat.example.com\"><script>"]);
    let out = run(bad, "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--public-url"), "{}", stderr(&out));

    let mut server = Server::start_with(&url, &["--public-url", "https://chat.example.com/"]);
    server.login().await;
    // The default channel, once the channels view has it.
    let mut id = None;
    for _ in 0..100 {
        let (_, dashboard) = server.get("/api/v1/channels").await;
        id = dashboard["channels"][0]["channel_id"].as_str().map(str::to_string);
        if id.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let id = id.expect("the default channel is listed");
    let (status, widget) = server.get(&format!("/api/v1/channels/{id}/widget")).await;
    assert_eq!(status, 200, "{widget}");
    assert_eq!(
        widget["script"],
        format!("<script src=\"https://chat.example.com/widget/{id}/loader.js\" defer></script>")
    );
    assert_eq!(widget["direct_link"], format!("https://chat.example.com/chat/{id}"));
}
