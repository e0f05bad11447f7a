//! The router without a socket: status codes, problem documents and response shapes.

use std::sync::Arc;
use std::time::Duration;

use api::{router, ApiConfig, AppState};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use store::{ExpectedVersion, NewEvent, Store, StoreUrl};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";

/// A router over a memory store, with the first admin created; `get` calls it as that admin.
struct App {
    router: axum::Router,
    token: String,
}

async fn app() -> (Store, App) {
    let store = Store::open(&StoreUrl::Memory).await.unwrap();
    let state = AppState::new(store.events(), store.views(), ApiConfig::default());
    api::bootstrap::bootstrap(&state, "admin@example.com", Some(PASSWORD.into())).await.unwrap().unwrap();
    let router = router(state);
    let login = json!({"login": "admin@example.com", "password": PASSWORD}).to_string();
    let req = Request::post("/api/v1/auth/token").header("content-type", "application/json").body(Body::from(login));
    let res = router.clone().oneshot(req.unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap()).unwrap();
    (store, App { router, token: body["access_token"].as_str().unwrap().to_string() })
}

async fn get(app: &App, uri: &str) -> (StatusCode, String, Value) {
    let req = Request::get(uri).header("authorization", format!("Bearer {}", app.token)).body(Body::empty());
    let res = app.router.clone().oneshot(req.unwrap()).await.unwrap();
    let status = res.status();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Fixed ids and times so that snapshots are stable; returns the events' positions.
async fn seed(store: &Store) -> Vec<String> {
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let mut positions = Vec::new();
    for n in 0..5u128 {
        let stream = if n % 2 == 0 { "room-a" } else { "room-b" };
        let e = NewEvent {
            event_id: uuid::Uuid::from_u128(n + 1),
            event_type: if n == 0 { "ChannelCreated".into() } else { "Touched".into() },
            schema_version: 1,
            data: json!({ "n": n }),
            metadata: json!({ "actor": { "kind": "system" } }),
            recorded_at: Some(at + chrono::Duration::seconds(n as i64)),
        };
        positions
            .push(store.events().append(stream, ExpectedVersion::Any, vec![e]).await.unwrap().position.to_string());
    }
    positions
}

#[tokio::test]
async fn the_event_log_pages_with_a_cursor_in_both_orders() {
    let (store, app) = app().await;
    let p = seed(&store).await;
    let rooms = "/api/v1/events?category=room";
    let (status, _, first) = get(&app, &format!("{rooms}&limit=2")).await;
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("events_first_page", first, { ".events[].position" => "[position]", ".next_cursor" => "[position]" });
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, _, second) = get(&app, &format!("{rooms}&limit=2&cursor={cursor}")).await;
    let ns: Vec<_> = second["events"].as_array().unwrap().iter().map(|e| e["data"]["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, vec![2, 3]);
    let (_, _, last) = get(&app, &format!("{rooms}&limit=2&cursor={}", second["next_cursor"].as_str().unwrap())).await;
    assert_eq!(last["events"].as_array().unwrap().len(), 1);
    assert!(last.get("next_cursor").is_none(), "no cursor on the last page");

    let (_, _, desc) = get(&app, &format!("{rooms}&order=desc&limit=3")).await;
    let ns: Vec<_> = desc["events"].as_array().unwrap().iter().map(|e| e["data"]["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, vec![4, 3, 2]);
    let (_, _, desc2) =
        get(&app, &format!("{rooms}&order=desc&limit=3&cursor={}", desc["next_cursor"].as_str().unwrap())).await;
    let ns: Vec<_> = desc2["events"].as_array().unwrap().iter().map(|e| e["data"]["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, vec![1, 0]);

    let (_, _, from) = get(&app, &format!("{rooms}&from={}", p[2])).await;
    assert_eq!(from["events"][0]["position"], p[2], "from is inclusive");
    let (_, _, from_desc) = get(&app, &format!("{rooms}&from={}&order=desc", p[2])).await;
    let ps: Vec<_> = from_desc["events"].as_array().unwrap().iter().map(|e| e["position"].as_str().unwrap()).collect();
    assert_eq!(ps, vec![p[2].as_str(), p[1].as_str(), p[0].as_str()]);
}

#[tokio::test]
async fn the_event_log_filters_by_stream_category_and_type_and_hides_secrets() {
    let (store, app) = app().await;
    seed(&store).await;
    let count = |v: &Value| v["events"].as_array().unwrap().len();
    assert_eq!(count(&get(&app, "/api/v1/events?stream=room-b").await.2), 2);
    assert_eq!(count(&get(&app, "/api/v1/events?category=room").await.2), 5);
    assert_eq!(count(&get(&app, "/api/v1/events?event_type=ChannelCreated&category=room").await.2), 1);
    assert_eq!(count(&get(&app, "/api/v1/events?event_type=ChannelCreated,Touched&category=room").await.2), 5);
    assert_eq!(count(&get(&app, "/api/v1/events?stream=nope-1").await.2), 0);
    let (_, _, users) = get(&app, "/api/v1/events?event_type=UserCreated,TokenIssued").await;
    let users = users["events"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["data"]["password_hash"], "[redacted]");
    assert_eq!(users[1]["data"]["token_sha256"], "[redacted]");
}

#[tokio::test]
async fn bad_query_parameters_get_problem_documents() {
    let (_, app) = app().await;
    let (status, content_type, body) = get(&app, "/api/v1/events?limit=5000&from=abc&order=sideways").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(content_type, "application/problem+json");
    insta::assert_json_snapshot!("events_invalid_query", body);
    let (status, _, body) = get(&app, "/api/v1/events?strem=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "unknown-parameter");
    let (status, _, body) = get(&app, "/api/v1/streams?min_position=x:y&limit=-1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    let (status, content_type, body) = get(&app, "/api/v1/nothing").await;
    assert_eq!(
        (status, content_type.as_str(), body["code"].as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json", Some("not-found"))
    );
    let res = app.router.clone().oneshot(Request::post("/api/v1/events").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn streams_wait_for_min_position_then_list_by_category() {
    let (store, app) = app().await;
    let p = seed(&store).await;
    let last = &p[4];
    // No runner yet: a read that demands the last position waits, then says the view lags.
    let started = std::time::Instant::now();
    let (status, _, body) = get(&app, &format!("/api/v1/streams?min_position={last}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "view-lagging");
    assert!(started.elapsed() >= Duration::from_secs(4));

    let runner = projections::Runner::new(
        Arc::new(projections::stream_index::StreamIndex),
        store.events(),
        store.views(),
        Default::default(),
    );
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(runner.run(stopped));
    let (status, _, body) = get(&app, &format!("/api/v1/streams?category=room&min_position={last}")).await;
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("streams_all", body, { ".streams[].last_position" => "[position]" });
    let (_, _, page) = get(&app, "/api/v1/streams?category=room&limit=1").await;
    assert_eq!(page["streams"][0]["stream_id"], "room-a");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, _, next) = get(&app, &format!("/api/v1/streams?category=room&limit=1&cursor={cursor}")).await;
    assert_eq!(next["streams"][0]["stream_id"], "room-b");
    assert!(next.get("next_cursor").is_none());
    let (_, _, all) = get(&app, "/api/v1/streams").await;
    let categories: Vec<_> =
        all["streams"].as_array().unwrap().iter().map(|s| s["category"].as_str().unwrap()).collect();
    assert_eq!(categories, vec!["channel", "login", "room", "room", "user"]);
}

#[tokio::test]
async fn readiness_reports_projector_lag() {
    let (store, app) = app().await;
    let (status, _, body) = get(&app, "/readyz").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")), "{body}");
    // The projector catches up on the first start's events, then stops running.
    let index = projections::stream_index::StreamIndex;
    let _owned = store.views().try_own("stream_index").await.unwrap().unwrap();
    projections::rebuild(&index, store.events().as_ref(), store.views().as_ref(), &Default::default(), |_| {})
        .await
        .unwrap();
    // An event that has waited longer than the bound with no runner: lagging.
    let mut e = NewEvent::new("Old", json!({}));
    e.recorded_at = Some(Utc::now() - chrono::Duration::minutes(5));
    store.events().append("old-1", ExpectedVersion::Any, vec![e]).await.unwrap();
    let (status, _, body) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "lagging");
    assert_eq!(body["projectors"][0]["lag_events"], 1);
    assert!(body["projectors"][0]["lag_seconds"].as_f64().unwrap() >= 299.0);
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_the_event_format() {
    let (store, app) = app().await;
    let (status, _, doc) = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut paths: Vec<_> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    paths.sort();
    // Every route the router serves (keep in step with `api::router` and the route modules).
    let served = [
        "/api/v1/audit",
        "/api/v1/auth/token",
        "/api/v1/canned-responses",
        "/api/v1/canned-responses/{id}",
        "/api/v1/channels",
        "/api/v1/channels/{id}",
        "/api/v1/channels/{id}/archive",
        "/api/v1/channels/{id}/history",
        "/api/v1/channels/{id}/join",
        "/api/v1/channels/{id}/leave",
        "/api/v1/channels/{id}/operators",
        "/api/v1/channels/{id}/operators/new",
        "/api/v1/channels/{id}/operators/{user_id}",
        "/api/v1/channels/{id}/options",
        "/api/v1/channels/{id}/options/reset-colors",
        "/api/v1/channels/{id}/presence",
        "/api/v1/channels/{id}/queue",
        "/api/v1/channels/{id}/rules",
        "/api/v1/channels/{id}/rules/order",
        "/api/v1/channels/{id}/rules/{rule_id}",
        "/api/v1/channels/{id}/widget",
        "/api/v1/chatbots",
        "/api/v1/chatbots/{id}",
        "/api/v1/chatbots/{id}/history",
        "/api/v1/chatbots/{id}/steps",
        "/api/v1/chatbots/{id}/steps/order",
        "/api/v1/chatbots/{id}/steps/{step_id}",
        "/api/v1/chatbots/{id}/steps/{step_id}/answers",
        "/api/v1/chatbots/{id}/steps/{step_id}/answers/order",
        "/api/v1/chatbots/{id}/steps/{step_id}/answers/{answer_id}",
        "/api/v1/chatbots/{id}/test",
        "/api/v1/chatbots/{id}/test/{test_id}/answer",
        "/api/v1/conversations",
        "/api/v1/conversations/{id}",
        "/api/v1/conversations/{id}/close",
        "/api/v1/conversations/{id}/history",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/conversations/{id}/messages/{message_id}",
        "/api/v1/conversations/{id}/seen",
        "/api/v1/conversations/{id}/take",
        "/api/v1/conversations/{id}/transcript",
        "/api/v1/conversations/{id}/transfer",
        "/api/v1/events",
        "/api/v1/me",
        "/api/v1/me/status",
        "/api/v1/openapi.json",
        "/api/v1/public/channels/{id}/init",
        "/api/v1/public/channels/{id}/ratings",
        "/api/v1/public/channels/{id}/sessions",
        "/api/v1/public/sessions/{id}",
        "/api/v1/public/sessions/{id}/bot/answer",
        "/api/v1/public/sessions/{id}/bot/restart",
        "/api/v1/public/sessions/{id}/leave",
        "/api/v1/public/sessions/{id}/messages",
        "/api/v1/public/sessions/{id}/pages",
        "/api/v1/public/sessions/{id}/rating",
        "/api/v1/public/sessions/{id}/seen",
        "/api/v1/public/sessions/{id}/transcript",
        "/api/v1/public/sessions/{id}/transcripts/{transcript_id}",
        "/api/v1/ratings",
        "/api/v1/reports/conversations",
        "/api/v1/reports/operators",
        "/api/v1/stream",
        "/api/v1/streams",
        "/api/v1/transcripts/{id}",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/deactivate",
        "/api/v1/users/{id}/history",
        "/api/v1/users/{id}/password",
        "/api/v1/users/{id}/reactivate",
        "/chat/{id}",
        "/healthz",
        "/livechat/channel/{id}",
        "/readyz",
        "/widget/widget.css",
        "/widget/widget.js",
        "/widget/{id}/loader.js",
    ];
    assert_eq!(paths, served);
    // Each documented operation is really served: nothing answers 404 "no such route".
    for path in served {
        let concrete = path
            .replace("{id}", &uuid::Uuid::nil().to_string())
            .replace("{user_id}", &uuid::Uuid::nil().to_string())
            .replace("{rule_id}", &uuid::Uuid::nil().to_string())
            .replace("{message_id}", &uuid::Uuid::nil().to_string())
            .replace("{transcript_id}", &uuid::Uuid::nil().to_string())
            .replace("{step_id}", &uuid::Uuid::nil().to_string())
            .replace("{answer_id}", &uuid::Uuid::nil().to_string())
            .replace("{test_id}", &uuid::Uuid::nil().to_string());
        for method in doc["paths"][path].as_object().unwrap().keys() {
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header("authorization", format!("Bearer {}", app.token))
                .body(Body::empty())
                .unwrap();
            let res = app.router.clone().oneshot(req).await.unwrap();
            assert_ne!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not served");
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            assert_ne!(body["detail"], "no such route", "{method} {path} is documented but not served");
        }
    }
    // The documented event schema has exactly the fields the API serializes.
    seed(&store).await;
    let (_, _, page) = get(&app, "/api/v1/events?limit=1").await;
    let mut served: Vec<_> = page["events"][0].as_object().unwrap().keys().cloned().collect();
    let mut documented: Vec<_> =
        doc["components"]["schemas"]["EventSchema"]["properties"].as_object().unwrap().keys().cloned().collect();
    served.sort();
    documented.sort();
    assert_eq!(served, documented);
}
