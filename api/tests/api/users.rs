//! Users over HTTP: accounts, who may do what, passwords, deactivation, login throttling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::{router, ApiConfig, AppState};
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chrono::{TimeZone, Utc};
use commands::clock::ManualClock;
use commands::{execute, load, stream_id, Context};
use domain::channel::{self, Channel, ChannelEvent, LeaveReason};
use domain::metadata::Actor;
use serde_json::{json, Value};
use store::{Store, StoreUrl};
use tower::ServiceExt;

const ADMIN: &str = "admin@example.com";
const PASSWORD: &str = "correct horse battery staple";
const ADA_PASSWORD: &str = "ada's long secret";

struct App {
    state: AppState,
    router: axum::Router,
    clock: Arc<ManualClock>,
    admin: String,
    admin_id: String,
    /// The first start's channel.
    channel_id: uuid::Uuid,
    _stop: tokio::sync::watch::Sender<bool>,
}

struct Res {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Res {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// A memory store with the first admin (logged in) and the users and channels projectors running.
async fn app() -> App {
    let store = Store::open(&StoreUrl::Memory).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()));
    let state = AppState::new(store.events(), store.views(), ApiConfig::default()).with_clock(clock.clone());
    let first = api::bootstrap::bootstrap(&state, ADMIN, Some(PASSWORD.into())).await.unwrap().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let projectors: Vec<Arc<dyn projections::Projector>> =
        vec![Arc::new(projections::users::Users), Arc::new(projections::channels::Channels)];
    for p in projectors {
        let runner = projections::Runner::new(p, store.events(), store.views(), Default::default());
        tokio::spawn(runner.run(stopped.clone()));
    }
    let mut app = App {
        router: router(state.clone()),
        state,
        clock,
        admin: String::new(),
        admin_id: String::new(),
        channel_id: first.channel_id.unwrap(),
        _stop: stop,
    };
    let (token, id) = login_ok(&app, ADMIN, PASSWORD).await;
    app.admin = token;
    app.admin_id = id;
    app
}

async fn send(
    router: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Res {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    };
    let res = router.clone().oneshot(req.unwrap()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    Res { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

impl App {
    async fn call(&self, method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Res {
        send(&self.router, method, uri, token, body, &[]).await
    }

    async fn admin(&self, method: Method, uri: &str, body: Option<Value>) -> Res {
        self.call(method, uri, Some(&self.admin), body).await
    }

    /// Creates an operator; returns their id.
    async fn operator(&self, login: &str, name: &str) -> String {
        let body = json!({ "login": login, "password": ADA_PASSWORD, "name": name });
        let res = self.admin(Method::POST, "/api/v1/users", Some(body)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["user_id"].as_str().unwrap().to_string()
    }
}

async fn login(app: &App, login: &str, password: &str) -> Res {
    let body = json!({ "login": login, "password": password });
    app.call(Method::POST, "/api/v1/auth/token", None, Some(body)).await
}

/// Logs in; returns the token and the user id.
async fn login_ok(app: &App, who: &str, password: &str) -> (String, String) {
    let res = login(app, who, password).await;
    assert_eq!(res.status, StatusCode::OK, "login {who}: {}", res.body);
    (res.body["access_token"].as_str().unwrap().to_string(), res.body["user_id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn an_admin_creates_gets_patches_and_lists_users() {
    let app = app().await;
    let body = json!({
        "login": " Ada@Example.com ", "password": ADA_PASSWORD, "name": "Ada Lovelace",
        "chat_name": "Ada", "languages": ["en", "fr-be"], "country": "be",
    });
    let created = app.admin(Method::POST, "/api/v1/users", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["user_id"].as_str().unwrap().to_string();
    assert_eq!(created.header("location"), Some(format!("/api/v1/users/{id}").as_str()));
    assert_eq!(created.header("etag"), Some("\"0\""));
    assert!(created.header("x-livechat-position").is_some());
    assert!(created.body.get("password_hash").is_none() && !created.body.to_string().contains("argon2"));
    insta::assert_json_snapshot!("user_created", created.body, { ".user_id" => "[id]" });

    let got = app.admin(Method::GET, &format!("/api/v1/users/{id}"), None).await;
    assert_eq!((got.status, got.header("etag")), (StatusCode::OK, Some("\"0\"")));
    assert_eq!(got.body, created.body);

    // An edit based on version 0 goes through; a second one based on 0 is stale.
    let uri = format!("/api/v1/users/{id}");
    let patch = json!({ "chat_name": "Ada from Support", "languages": ["de"] });
    let edited = send(&app.router, Method::PATCH, &uri, Some(&app.admin), Some(patch), &[("if-match", "\"0\"")]).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.header("etag"), Some("\"1\""));
    assert_eq!(edited.body["display_name"], "Ada from Support");
    assert_eq!(edited.body["languages"], json!(["de"]));
    assert_eq!(edited.body["name"], "Ada Lovelace", "absent fields keep their value");
    assert_eq!(edited.body["country"], "BE");
    let stale =
        send(&app.router, Method::PATCH, &uri, Some(&app.admin), Some(json!({"name": "A"})), &[("if-match", "\"0\"")])
            .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(
        (stale.body["code"].as_str(), stale.body["current_version"].as_u64()),
        (Some("version-conflict"), Some(1))
    );
    assert_eq!(app.admin(Method::GET, &uri, None).await.body["name"], "Ada Lovelace", "nothing written");
    let bad = send(&app.router, Method::PATCH, &uri, Some(&app.admin), Some(json!({})), &[("if-match", "soon")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // null clears; an unchanged profile writes nothing.
    let cleared = app.admin(Method::PATCH, &uri, Some(json!({ "chat_name": null, "country": "" }))).await;
    assert_eq!((cleared.body["chat_name"].clone(), cleared.body["country"].clone()), (Value::Null, Value::Null));
    assert_eq!(cleared.body["display_name"], "Ada Lovelace");
    let same = app.admin(Method::PATCH, &uri, Some(json!({ "name": "Ada Lovelace" }))).await;
    assert_eq!((same.status, same.header("etag")), (StatusCode::OK, Some("\"2\"")));
    assert!(same.header("x-livechat-position").is_none(), "nothing written");
    let unknown = app.admin(Method::PATCH, &uri, Some(json!({ "nmae": "typo" }))).await;
    assert_eq!((unknown.status, unknown.body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad-json")));

    // The list reads the view: min_position waits for the last write.
    let bob = app.operator("bob@example.com", "Bob").await;
    let last = app.admin(Method::PATCH, &format!("/api/v1/users/{bob}"), Some(json!({ "name": "Bob B." }))).await;
    let position = last.header("x-livechat-position").unwrap().to_string();
    let page = app.admin(Method::GET, &format!("/api/v1/users?limit=2&min_position={position}"), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let logins: Vec<_> = page.body["users"].as_array().unwrap().iter().map(|u| u["login"].as_str().unwrap()).collect();
    assert_eq!(logins, vec!["ada@example.com", "admin@example.com"]);
    assert_eq!(page.body["users"][0]["version"], 2, "the view's version is the stream's");
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app.admin(Method::GET, &format!("/api/v1/users?limit=2&cursor={cursor}"), None).await;
    assert_eq!(next.body["users"][0]["name"], "Bob B.");
    assert_eq!(next.body["users"].as_array().unwrap().len(), 1);
    assert!(next.body.get("next_cursor").is_none());
    let bad = app.admin(Method::GET, "/api/v1/users?cursor=nope&limit=0&sort=x", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "unknown parameter first");
    let bad = app.admin(Method::GET, "/api/v1/users?cursor=nope&limit=0", None).await;
    let fields: Vec<_> = bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!((bad.status, fields), (StatusCode::UNPROCESSABLE_ENTITY, vec!["cursor", "limit"]));
}

#[tokio::test]
async fn operators_read_and_edit_only_themselves_and_never_roles() {
    let app = app().await;
    let ada = app.operator("ada@example.com", "Ada").await;
    let bob = app.operator("bob@example.com", "Bob").await;
    let (ada_token, _) = login_ok(&app, "ada@example.com", ADA_PASSWORD).await;
    let ada_uri = format!("/api/v1/users/{ada}");
    let bob_uri = format!("/api/v1/users/{bob}");

    assert_eq!(app.call(Method::GET, &bob_uri, None, None).await.status, StatusCode::UNAUTHORIZED);
    let wrong = app.call(Method::GET, &bob_uri, Some("lc_nope"), None).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, &bob_uri, Some(&ada_token), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::GET, &ada_uri, Some(&ada_token), None).await.status, StatusCode::OK);
    assert_eq!(app.admin(Method::GET, &bob_uri, None).await.status, StatusCode::OK);
    let missing = app.admin(Method::GET, &format!("/api/v1/users/{}", uuid::Uuid::now_v7()), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(app.admin(Method::GET, "/api/v1/users/not-a-uuid", None).await.status, StatusCode::NOT_FOUND);

    let rename = Some(json!({ "name": "Someone else" }));
    assert_eq!(app.call(Method::PATCH, &bob_uri, Some(&ada_token), rename.clone()).await.status, StatusCode::FORBIDDEN);
    let own = app.call(Method::PATCH, &ada_uri, Some(&ada_token), rename.clone()).await;
    assert_eq!((own.status, own.body["name"].as_str()), (StatusCode::OK, Some("Someone else")));
    let me = app.call(Method::PATCH, "/api/v1/me", Some(&ada_token), Some(json!({ "chat_name": "Ada" }))).await;
    assert_eq!((me.status, me.body["display_name"].as_str()), (StatusCode::OK, Some("Ada")));
    let promote = Some(json!({ "role": "admin" }));
    assert_eq!(
        app.call(Method::PATCH, &ada_uri, Some(&ada_token), promote.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::PATCH, "/api/v1/me", Some(&ada_token), promote.clone()).await.status,
        StatusCode::FORBIDDEN
    );

    for (method, uri) in [
        (Method::GET, "/api/v1/users".to_string()),
        (Method::POST, "/api/v1/users".to_string()),
        (Method::POST, format!("{bob_uri}/deactivate")),
        (Method::POST, format!("{ada_uri}/reactivate")),
        (Method::PUT, format!("{bob_uri}/password")),
    ] {
        let body = (method != Method::GET).then(|| json!({ "password": "0123456789ab" }));
        let res = app.call(method.clone(), &uri, Some(&ada_token), body).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{method} {uri}: {}", res.body);
    }

    let promoted = app.admin(Method::PATCH, &ada_uri, promote).await;
    assert_eq!((promoted.status, promoted.body["role"].as_str()), (StatusCode::OK, Some("admin")));
    let now_admin = app.call(Method::GET, &bob_uri, Some(&ada_token), None).await;
    assert_eq!(now_admin.status, StatusCode::OK, "the role applies to existing tokens");
    let demote_self = app.admin(Method::PATCH, "/api/v1/me", Some(json!({ "role": "operator" }))).await;
    assert_eq!(
        (demote_self.status, demote_self.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("cannot-demote-self"))
    );
    let me = app.admin(Method::GET, "/api/v1/me", None).await;
    assert_eq!((me.body["role"].as_str(), me.body["login"].as_str()), (Some("admin"), Some(ADMIN)));
    assert_eq!(me.header("etag"), Some(format!("\"{}\"", me.body["version"]).as_str()));
}

#[tokio::test]
async fn a_login_is_unique_and_every_invalid_field_is_reported() {
    let app = app().await;
    app.operator("ada@example.com", "Ada").await;
    let again = json!({ "login": "ADA@example.com", "password": ADA_PASSWORD, "name": "Other Ada" });
    let dup = app.admin(Method::POST, "/api/v1/users", Some(again)).await;
    assert_eq!((dup.status, dup.body["code"].as_str()), (StatusCode::CONFLICT, Some("login-taken")), "{}", dup.body);
    assert_eq!(dup.body["errors"][0]["field"], "login");

    let bad = json!({
        "login": "ada", "password": "short", "name": " ", "languages": ["en", "klingon!"],
        "country": "XX", "role": "boss",
    });
    let res = app.admin(Method::POST, "/api/v1/users", Some(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.header("content-type"), Some("application/problem+json"));
    insta::assert_json_snapshot!("user_invalid", res.body);
    let empty = app.admin(Method::POST, "/api/v1/users", Some(json!({}))).await;
    let fields: Vec<_> =
        empty.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["login", "password", "name"]);
    let patch =
        app.admin(Method::PATCH, "/api/v1/me", Some(json!({ "name": "", "country": "XX", "role": "boss" }))).await;
    let fields: Vec<_> =
        patch.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!((patch.status, fields), (StatusCode::UNPROCESSABLE_ENTITY, vec!["name", "country", "role"]));

    // The same Idempotency-Key twice creates one user and answers the same.
    let body = json!({ "login": "cy@example.com", "password": ADA_PASSWORD, "name": "Cy" });
    let key = [("idempotency-key", "create-cy-1")];
    let first = send(&app.router, Method::POST, "/api/v1/users", Some(&app.admin), Some(body.clone()), &key).await;
    let retry = send(&app.router, Method::POST, "/api/v1/users", Some(&app.admin), Some(body.clone()), &key).await;
    assert_eq!((first.status, retry.status), (StatusCode::CREATED, StatusCode::CREATED), "{}", retry.body);
    assert_eq!(first.body, retry.body);
    let other = app.admin(Method::POST, "/api/v1/users", Some(body)).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "without the key it is another user");
}

#[tokio::test]
async fn a_password_change_revokes_tokens() {
    let app = app().await;
    let ada = app.operator("ada@example.com", "Ada").await;
    let (token, _) = login_ok(&app, "ada@example.com", ADA_PASSWORD).await;
    let uri = format!("/api/v1/users/{ada}/password");
    let new = "a brand new secret";

    let missing = app.call(Method::PUT, &uri, Some(&token), Some(json!({ "password": "short" }))).await;
    let fields: Vec<_> =
        missing.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!((missing.status, fields), (StatusCode::UNPROCESSABLE_ENTITY, vec!["password", "current_password"]));
    let wrong = json!({ "password": new, "current_password": "not my password" });
    let res = app.call(Method::PUT, &uri, Some(&token), Some(wrong)).await;
    assert_eq!((res.status, res.body["code"].as_str()), (StatusCode::FORBIDDEN, Some("wrong-password")));
    assert_eq!(app.call(Method::GET, "/api/v1/me", Some(&token), None).await.status, StatusCode::OK, "still valid");

    let right = json!({ "password": new, "current_password": ADA_PASSWORD });
    let res = app.call(Method::PUT, &uri, Some(&token), Some(right)).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    assert!(res.header("etag").is_some() && res.header("x-livechat-position").is_some());
    assert_eq!(app.call(Method::GET, "/api/v1/me", Some(&token), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "ada@example.com", ADA_PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    let (token, _) = login_ok(&app, "ada@example.com", new).await;

    // An administrator sets anyone's password without the current one.
    let res = app.admin(Method::PUT, &uri, Some(json!({ "password": "set by the admin" }))).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    assert_eq!(app.call(Method::GET, "/api/v1/me", Some(&token), None).await.status, StatusCode::UNAUTHORIZED);
    login_ok(&app, "ada@example.com", "set by the admin").await;
    // ...but their own needs it, like anyone's.
    let own = app
        .admin(Method::PUT, &format!("/api/v1/users/{}/password", app.admin_id), Some(json!({ "password": new })))
        .await;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn deactivation_revokes_tokens_refuses_login_and_leaves_channels() {
    let app = app().await;
    let ada = app.operator("ada@example.com", "Ada").await;
    let ada_id = uuid::Uuid::parse_str(&ada).unwrap();
    let (token, _) = login_ok(&app, "ada@example.com", ADA_PASSWORD).await;
    // Ada is an operator of the default channel and joined it.
    let ctx = Context::new(Actor::system(), Utc::now());
    let stream = stream_id::<Channel>(app.channel_id);
    let events = app.state.events.as_ref();
    execute::<Channel, _>(events, &stream, &ctx, None, |c| channel::add_operator(c, ada_id, true)).await.unwrap();
    let joined = execute::<Channel, _>(events, &stream, &ctx, None, |c| channel::join(c, ada_id)).await.unwrap();
    let views = app.state.views.as_ref();
    assert!(projections::wait_for(views, "channels", joined.position.unwrap(), Duration::from_secs(5)).await.unwrap());

    let me = app.call(Method::PUT, "/api/v1/me/status", Some(&token), Some(json!({ "status": "online" }))).await;
    assert_eq!(me.body["status"], "online");
    let self_off = app.admin(Method::POST, &format!("/api/v1/users/{}/deactivate", app.admin_id), None).await;
    assert_eq!(
        (self_off.status, self_off.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("cannot-deactivate-self"))
    );

    let off = app.admin(Method::POST, &format!("/api/v1/users/{ada}/deactivate"), None).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!((off.body["active"].as_bool(), off.body["status"].as_str()), (Some(false), Some("offline")));
    assert_eq!(app.call(Method::GET, "/api/v1/me", Some(&token), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "ada@example.com", ADA_PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    let c = load::<Channel>(events, &stream).await.unwrap();
    assert!(!c.state.joined.contains(&ada_id), "left the channel");
    let recorded = events.read_stream(&stream, 0, store::Direction::Forward, 100).await.unwrap();
    let last: ChannelEvent =
        domain::aggregate::decode(&recorded.last().unwrap().event_type, &recorded.last().unwrap().data).unwrap();
    assert_eq!(last, ChannelEvent::OperatorLeft { user_id: ada_id, reason: LeaveReason::Deactivated });
    let again = app.admin(Method::POST, &format!("/api/v1/users/{ada}/deactivate"), None).await;
    assert_eq!((again.status, again.header("etag")), (StatusCode::OK, off.header("etag")), "idempotent");
    let edit = app.admin(Method::PATCH, &format!("/api/v1/users/{ada}"), Some(json!({ "name": "X" }))).await;
    assert_eq!((edit.status, edit.body["code"].as_str()), (StatusCode::CONFLICT, Some("user-deactivated")));

    let on = app.admin(Method::POST, &format!("/api/v1/users/{ada}/reactivate"), None).await;
    assert_eq!((on.status, on.body["active"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", Some(&token), None).await.status,
        StatusCode::UNAUTHORIZED,
        "old tokens stay revoked"
    );
    login_ok(&app, "ada@example.com", ADA_PASSWORD).await;
    let missing = app.admin(Method::POST, &format!("/api/v1/users/{}/deactivate", uuid::Uuid::now_v7()), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_login_until_the_window_frees() {
    let app = app().await;
    app.operator("ada@example.com", "Ada").await;
    let garbled = app.call(Method::POST, "/api/v1/auth/token", None, Some(json!({ "login": "ada@example.com" }))).await;
    assert_eq!((garbled.status, garbled.body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad-json")));
    // A success resets the login's count.
    for _ in 0..4 {
        assert_eq!(login(&app, "ada@example.com", "wrong password").await.status, StatusCode::UNAUTHORIZED);
    }
    login_ok(&app, "ada@example.com", ADA_PASSWORD).await;
    for _ in 0..4 {
        assert_eq!(login(&app, "ada@example.com", "wrong password").await.status, StatusCode::UNAUTHORIZED);
    }
    app.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(login(&app, "Ada@Example.com", "wrong password").await.status, StatusCode::UNAUTHORIZED, "5th");
    let blocked = login(&app, "ada@example.com", ADA_PASSWORD).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS, "even with the right password");
    assert_eq!(blocked.body["code"], "too-many-attempts");
    assert_eq!(blocked.header("retry-after"), Some("600"), "the first failure leaves the window in 10 minutes");
    assert_eq!(login(&app, "nobody@example.com", "x").await.status, StatusCode::UNAUTHORIZED, "per login");
    login_ok(&app, ADMIN, PASSWORD).await;

    app.clock.advance(chrono::Duration::minutes(10) - chrono::Duration::seconds(1));
    let still = login(&app, "ada@example.com", ADA_PASSWORD).await;
    assert_eq!((still.status, still.header("retry-after")), (StatusCode::TOO_MANY_REQUESTS, Some("1")));
    app.clock.advance(chrono::Duration::seconds(1));
    login_ok(&app, "ada@example.com", ADA_PASSWORD).await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_client_address() {
    let app = app().await;
    let from = |ip: [u8; 4]| app.router.clone().layer(MockConnectInfo(SocketAddr::from((ip, 40000))));
    let (one, two) = (from([192, 0, 2, 1]), from([192, 0, 2, 2]));
    let try_login = |router: axum::Router, login: String, password: &'static str| async move {
        let body = json!({ "login": login, "password": password });
        send(&router, Method::POST, "/api/v1/auth/token", None, Some(body), &[]).await
    };
    for i in 0..20 {
        let res = try_login(one.clone(), format!("guess{i}@example.com"), "wrong password").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let blocked = try_login(one.clone(), ADMIN.to_string(), PASSWORD).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(blocked.header("retry-after"), Some("900"));
    let elsewhere = try_login(two.clone(), ADMIN.to_string(), PASSWORD).await;
    assert_eq!(elsewhere.status, StatusCode::OK, "another address is not affected");
    app.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(try_login(one, ADMIN.to_string(), PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn guessing_the_current_password_with_a_token_is_throttled_too() {
    let app = app().await;
    let ada = app.operator("ada@example.com", "Ada").await;
    let (token, _) = login_ok(&app, "ada@example.com", ADA_PASSWORD).await;
    let uri = format!("/api/v1/users/{ada}/password");
    let guess = json!({ "password": "a brand new secret", "current_password": "guess" });
    for _ in 0..5 {
        assert_eq!(app.call(Method::PUT, &uri, Some(&token), Some(guess.clone())).await.status, StatusCode::FORBIDDEN);
    }
    let right = json!({ "password": "a brand new secret", "current_password": ADA_PASSWORD });
    let res = app.call(Method::PUT, &uri, Some(&token), Some(right)).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.header("retry-after").is_some());
    assert_eq!(login(&app, "ada@example.com", ADA_PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn operators_set_their_own_status() {
    let app = app().await;
    app.operator("ada@example.com", "Ada").await;
    let (token, _) = login_ok(&app, "ada@example.com", ADA_PASSWORD).await;
    let away = app.call(Method::PUT, "/api/v1/me/status", Some(&token), Some(json!({ "status": "away" }))).await;
    assert_eq!((away.status, away.body["status"].as_str()), (StatusCode::OK, Some("away")), "{}", away.body);
    let position = away.header("x-livechat-position").unwrap().to_string();
    assert_eq!(app.call(Method::GET, "/api/v1/me", Some(&token), None).await.body["status"], "away");
    let bad = app.call(Method::PUT, "/api/v1/me/status", Some(&token), Some(json!({ "status": "busy" }))).await;
    assert_eq!(
        (bad.status, bad.body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    let same = app.call(Method::PUT, "/api/v1/me/status", Some(&token), Some(json!({ "status": "away" }))).await;
    assert!(same.status == StatusCode::OK && same.header("x-livechat-position").is_none(), "no change, no write");
    assert_eq!(
        app.call(Method::PUT, "/api/v1/me/status", None, Some(json!({ "status": "away" }))).await.status,
        StatusCode::UNAUTHORIZED
    );
    let list = app.admin(Method::GET, &format!("/api/v1/users?min_position={position}"), None).await;
    let ada = list.body["users"].as_array().unwrap().iter().find(|u| u["login"] == "ada@example.com").unwrap().clone();
    assert_eq!(ada["status"], "away");
}
