//! `livechat replay` and `serve --as-of`: views as of a past point, the live ones untouched.

use serde_json::{json, Value};

use crate::harness::*;

async fn send(server: &Server, method: reqwest::Method, path: &str, body: Value) -> (u16, Value, String) {
    let res = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(server.token.as_deref().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    let position =
        res.headers().get("x-livechat-position").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null), position)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_serve_as_of_show_the_channel_before_its_rename() {
    let url = sqlite_url(&scratch());
    let mut live = Server::start(&url);
    live.login().await;
    let (status, created, position) =
        send(&live, reqwest::Method::POST, "/api/v1/channels", json!({"name": "Support"})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["channel_id"].as_str().unwrap().to_string();
    let (status, _, _) =
        send(&live, reqwest::Method::PATCH, &format!("/api/v1/channels/{id}"), json!({"name": "Help"})).await;
    assert_eq!(status, 200);
    let (code, _) = live.terminate();
    assert_eq!(code, Some(0));

    // The channels view as of the creation: "Support", not "Help".
    let mut replay = livechat(&url);
    replay.args(["replay", "--until", &position, "--view", "channels"]);
    let out = run(replay, "");
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = lines(&stdout(&out));
    let doc = docs
        .iter()
        .find(|d| d["body"]["channel_id"].as_str() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("{docs:?}"));
    assert_eq!(doc["body"]["name"], "Support", "{doc}");
    let mut bad = livechat(&url);
    bad.args(["replay", "--until", "yesterday"]);
    let out = run(bad, "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Served read-only from a copy in memory: reads and logins work, writes are refused.
    let mut past = Server::start_with(&url, &["--as-of", &position]);
    past.login().await;
    let (status, form) = past.get(&format!("/api/v1/channels/{id}")).await;
    assert_eq!((status, form["name"].as_str()), (200, Some("Support")), "{form}");
    let (status, refused, _) = send(&past, reqwest::Method::POST, "/api/v1/channels", json!({"name": "X"})).await;
    assert_eq!((status, refused["code"].as_str()), (405, Some("read-only")), "{refused}");
    drop(past);

    // The live store still says "Help", and got nothing from the replays (no token event).
    let mut live = Server::start(&url);
    live.login().await;
    let (_, form) = live.get(&format!("/api/v1/channels/{id}")).await;
    assert_eq!(form["name"], "Help");
}

/// A log written by an earlier livechat (channel events at schema version 1, before options had
/// a per-operator maximum and a public ratings page) imports, serves, replays and exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_log_is_upcast_on_read_and_exported_as_it_was_written() {
    let fixture = include_str!("fixtures/v1-channel.jsonl");
    let url = sqlite_url(&scratch());
    let mut migrate = livechat(&url);
    migrate.arg("migrate");
    assert!(run(migrate, "").status.success());
    let mut import = livechat(&url);
    import.arg("import");
    let out = run(import, fixture);
    assert!(out.status.success(), "{}", stderr(&out));

    let mut server = Server::start(&url);
    server.login().await;
    let id = "01a0e4a7-0000-7000-8000-000000000001";
    let (status, form) = server.get(&format!("/api/v1/channels/{id}")).await;
    assert_eq!(status, 200, "{form}");
    assert_eq!(form["options"]["welcome_message"], "Hi! What can we do for you?", "{form}");
    assert_eq!(
        (&form["options"]["ratings_public"], &form["options"]["max_conversations_per_operator"]),
        (&json!(false), &Value::Null)
    );
    // The projected dashboard reads it too.
    let (status, dashboard) = server.get("/api/v1/channels").await;
    assert_eq!(status, 200);
    assert!(dashboard.to_string().contains("Support"), "{dashboard}");
    // New writes use the current version; the old events keep theirs.
    let (status, _, _) =
        send(&server, reqwest::Method::PUT, &format!("/api/v1/channels/{id}/options"), json!({"ratings_public": true}))
            .await;
    assert_eq!(status, 200);
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));

    let mut export = livechat(&url);
    export.args(["export", "--until", "0:2"]);
    let out = run(export, "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&stdout(&out)), lines(fixture), "exported exactly as written (schema version 1 kept)");
    let mut all = livechat(&url);
    all.arg("export");
    let exported = lines(&stdout(&run(all, "")));
    let changed = exported.iter().rev().find(|e| e["event_type"] == "ChannelOptionsChanged").unwrap();
    assert_eq!(
        (changed["schema_version"].as_u64(), &changed["data"]["options"]["ratings_public"]),
        (Some(2), &json!(true))
    );

    let mut replay = livechat(&url);
    replay.args(["replay", "--until", "0:2", "--view", "channels"]);
    let out = run(replay, "");
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = lines(&stdout(&out));
    assert_eq!(docs[0]["body"]["options"]["input_placeholder"], "Type here", "{docs:?}");
}
