//! The visitor side of channels and the widget tab: `init`, the loader script, the direct-link
//! page, the admin snippet, and where visitors' countries come from.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::geo::CountryResolver;
use api::{router, ApiConfig, AppState};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use commands::{execute, stream_id, Context};
use domain::channel::{self, Channel, ChannelOptions, OptionsInput};
use domain::metadata::Actor;
use domain::rules::{RuleAction, RuleInput};
use domain::user::{self, ProfileInput, Role, Status, StatusReason, User};
use domain::values::Email;
use projections::{Runner, RunnerConfig};
use serde_json::{json, Value};
use store::{Store, StoreUrl};
use tokio::sync::watch;
use tower::ServiceExt;
use uuid::Uuid;

const ADMIN: Uuid = Uuid::from_u128(0xA1);
/// An operator of SHOP, joined.
const ADA: Uuid = Uuid::from_u128(0xB1);
/// An operator of nothing, with a token.
const BOB: Uuid = Uuid::from_u128(0xB2);
const SHOP: Uuid = Uuid::from_u128(0xC1);
/// No rules, nobody joined.
const QUIET: Uuid = Uuid::from_u128(0xC2);
const ARCHIVED: Uuid = Uuid::from_u128(0xC3);

const R_CHECKOUT: u128 = 0xD1;
const R_SHOP: u128 = 0xD2;
const R_SHOP_BE: u128 = 0xD3;
const R_BLOG: u128 = 0xD4;
const R_HELP_BOT: u128 = 0xD5;
const R_FAQ_BOT: u128 = 0xD6;
const BOT_IF_NOBODY: Uuid = Uuid::from_u128(0xE1);
const BOT_ALWAYS: Uuid = Uuid::from_u128(0xE2);

/// The header the trusted proxy of these tests sets.
const COUNTRY_HEADER: &str = "x-test-country";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn ctx() -> Context {
    Context::new(Actor::system(), Utc::now())
}

/// A store with users and channels, and (optionally) the users and channels projectors.
struct World {
    store: Store,
    admin_token: String,
    bob_token: String,
    stop: watch::Sender<bool>,
    projectors: bool,
}

impl World {
    fn state(&self, geo: CountryResolver) -> AppState {
        AppState::new(self.store.events(), self.store.views(), ApiConfig::default()).with_geo(geo)
    }

    /// A router whose country source is the test header.
    fn app(&self) -> Router {
        router(self.state(CountryResolver::default().with_header(COUNTRY_HEADER).unwrap()))
    }

    /// Waits until the views show every event written so far.
    async fn sync(&self) {
        if !self.projectors {
            return;
        }
        let Some(head) = self.store.events().head().await.unwrap() else { return };
        for projector in ["users", "channels"] {
            let views = self.store.views();
            let caught_up = projections::wait_for(views.as_ref(), projector, head, Duration::from_secs(10)).await;
            assert!(caught_up.unwrap(), "{projector} caught up");
        }
    }

    async fn set_status(&self, user_id: Uuid, status: Status) {
        execute::<User, _>(self.store.events().as_ref(), &stream_id::<User>(user_id), &ctx(), None, |u| {
            user::set_status(u, status, StatusReason::Chosen)
        })
        .await
        .unwrap();
        self.sync().await;
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn create_user(store: &Store, id: Uuid, login: &str, role: Role) {
    let profile = ProfileInput { name: login.split('@').next().unwrap().into(), ..Default::default() }.parse().unwrap();
    let login = Email::parse("login", login).unwrap();
    execute::<User, _>(store.events().as_ref(), &stream_id::<User>(id), &ctx(), None, |u| {
        user::create(u, id, login.clone(), profile.clone(), role, "not-a-real-hash".into())
    })
    .await
    .unwrap();
}

/// A bearer token for `id`, issued as a login would.
async fn token(store: &Store, id: Uuid) -> String {
    let (token, digest) = api::auth::mint(id);
    let expires = Utc::now() + chrono::Duration::hours(1);
    execute::<User, _>(store.events().as_ref(), &stream_id::<User>(id), &ctx(), None, |u| {
        user::issue_token(u, digest.clone(), expires)
    })
    .await
    .unwrap();
    token
}

async fn on_channel<F>(store: &Store, id: Uuid, decide: F)
where
    F: Fn(&Channel) -> Result<Vec<channel::ChannelEvent>, channel::ChannelError>,
{
    execute::<Channel, _>(store.events().as_ref(), &stream_id::<Channel>(id), &ctx(), None, decide).await.unwrap();
}

fn rule(action: RuleAction, url_regex: &str, countries: &[&str]) -> RuleInput {
    RuleInput {
        action: Some(action),
        url_regex: url_regex.into(),
        countries: countries.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    }
}

fn bot(action: RuleAction, url_regex: &str, chatbot: Uuid, only_if_no_operator: bool) -> RuleInput {
    RuleInput {
        chatbot_id: Some(chatbot),
        chatbot_only_if_no_operator: only_if_no_operator,
        ..rule(action, url_regex, &[])
    }
}

/// SHOP: rules in this order (a generic hide, a generic and a Belgian rule for /shop, a
/// notification on the blog, two chatbots), ADA joined and online. QUIET: nothing. ARCHIVED.
async fn world(run_projectors: bool) -> World {
    let store = Store::open(&StoreUrl::Memory).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    if run_projectors {
        let config = RunnerConfig { poll: Duration::from_millis(20), ..Default::default() };
        let projectors: [Arc<dyn projections::Projector>; 2] =
            [Arc::new(projections::users::Users), Arc::new(projections::channels::Channels)];
        for p in projectors {
            tokio::spawn(Runner::new(p, store.events(), store.views(), config.clone()).run(stopped.clone()));
        }
    }
    create_user(&store, ADMIN, "admin@example.com", Role::Admin).await;
    create_user(&store, ADA, "ada@example.com", Role::Operator).await;
    create_user(&store, BOB, "bob@example.com", Role::Operator).await;
    let admin_token = token(&store, ADMIN).await;
    let bob_token = token(&store, BOB).await;

    on_channel(&store, SHOP, |c| channel::create(c, SHOP, "Shop", Some(ADMIN), ChannelOptions::default())).await;
    let options = OptionsInput {
        welcome_message: Some("Hi! <b>Ask</b> us & we'll answer".into()),
        button_color: Some("#112233".into()),
        ..Default::default()
    };
    on_channel(&store, SHOP, |c| channel::change_options(c, &options)).await;
    on_channel(&store, SHOP, |c| channel::add_operator(c, ADA, true)).await;
    let timed = RuleInput { timer_seconds: 7, ..rule(RuleAction::OpenAutomatically, "/shop", &["BE"]) };
    let rules = [
        (R_CHECKOUT, rule(RuleAction::Hide, "^/checkout", &[])),
        (R_SHOP, rule(RuleAction::Show, "/shop", &[])),
        (R_SHOP_BE, timed),
        (R_BLOG, rule(RuleAction::ShowWithNotification, "^/blog", &[])),
        (R_HELP_BOT, bot(RuleAction::Show, "^/help", BOT_IF_NOBODY, true)),
        (R_FAQ_BOT, bot(RuleAction::Hide, "^/faq", BOT_ALWAYS, false)),
    ];
    for (id, input) in &rules {
        on_channel(&store, SHOP, |c| channel::add_rule(c, Uuid::from_u128(*id), input)).await;
    }
    on_channel(&store, SHOP, |c| channel::join(c, ADA)).await;

    on_channel(&store, QUIET, |c| channel::create(c, QUIET, "Quiet", Some(ADMIN), ChannelOptions::default())).await;
    on_channel(&store, ARCHIVED, |c| channel::create(c, ARCHIVED, "Old", Some(ADMIN), ChannelOptions::default())).await;
    on_channel(&store, ARCHIVED, channel::archive).await;

    let w = World { store, admin_token, bob_token, stop, projectors: run_projectors };
    w.set_status(ADA, Status::Online).await;
    w
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec();
    Reply { status, headers, body }
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn init_uri(channel: Uuid, url: Option<&str>) -> String {
    let base = format!("/api/v1/public/channels/{channel}/init");
    match url {
        Some(u) => format!("{base}?url={}", encode(u)),
        None => base,
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `init` for `url`, with the proxy's country header when given.
async fn init(app: &Router, channel: Uuid, url: Option<&str>, country: Option<&str>) -> Reply {
    let mut req = Request::get(init_uri(channel, url));
    if let Some(c) = country {
        req = req.header(COUNTRY_HEADER, c);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

/// (rule id, show_button, chatbot id) of an init answer.
fn outcome(body: &Value) -> (Option<u128>, bool, Option<Uuid>) {
    let id = |v: &Value| v.as_str().map(|s| Uuid::parse_str(s).unwrap());
    (
        id(&body["rule"]["rule_id"]).map(|u| u.as_u128()),
        body["show_button"].as_bool().unwrap(),
        id(&body["chatbot"]["chatbot_id"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_picks_the_rule_as_odoo_does_with_an_operator_online() {
    let w = world(true).await;
    let app = w.app();
    // (country header, url) -> (rule, show_button, chatbot, country in the answer)
    type Row<'a> = (Option<&'a str>, Option<&'a str>, Option<u128>, bool, Option<Uuid>, Option<&'a str>);
    let table: &[Row] = &[
        (Some("BE"), Some("/shop"), Some(R_SHOP_BE), true, None, Some("BE")), // the country rule wins
        (Some("be"), Some("/shop/shoes?size=9"), Some(R_SHOP_BE), true, None, Some("BE")),
        (Some("FR"), Some("/shop"), Some(R_SHOP), true, None, Some("FR")), // falls back to the generic rule
        (None, Some("/shop"), Some(R_SHOP), true, None, None),             // country unknown: generic only
        (Some("XX"), Some("/shop"), Some(R_SHOP), true, None, None),       // not a country: unknown
        (Some("BE"), Some("/checkout/pay"), Some(R_CHECKOUT), false, None, Some("BE")), // hidden
        (Some("BE"), Some("/about"), None, true, None, Some("BE")),        // no rule: shown, an operator is online
        (None, None, None, true, None, None),                              // url defaults to "/"
        (None, Some("/blog/news"), Some(R_BLOG), true, None, None),
        (None, Some("/help"), Some(R_HELP_BOT), true, None, None), // the bot waits for no operator
        (None, Some("/faq"), Some(R_FAQ_BOT), true, Some(BOT_ALWAYS), None), // a bot shows even a hidden button
    ];
    for (country, url, rule, show, chatbot, answered) in table {
        let res = init(&app, SHOP, *url, *country).await;
        assert_eq!(res.status, StatusCode::OK, "{url:?} from {country:?}: {}", res.text());
        let body = res.json();
        assert_eq!(outcome(&body), (*rule, *show, *chatbot), "{url:?} from {country:?}: {body}");
        assert_eq!(body["country"].as_str(), *answered, "{url:?} from {country:?}");
        assert_eq!(body["country_known"], answered.is_some());
        assert_eq!(body["operator_available"], true);
    }
    let body = init(&app, SHOP, Some("/blog"), None).await.json();
    assert_eq!(body["rule"]["action"], "show_with_notification");
    let body = init(&app, SHOP, Some("/shop"), Some("BE")).await.json();
    assert_eq!(
        (body["rule"]["action"].as_str(), body["rule"]["timer_seconds"].as_u64()),
        (Some("open_automatically"), Some(7))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_country_source_country_rules_never_match() {
    let w = world(true).await;
    let app = router(w.state(CountryResolver::default()));
    // The visitor (or anyone) sending the header changes nothing: it is not a configured source.
    let body = init(&app, SHOP, Some("/shop"), Some("BE")).await.json();
    assert_eq!(outcome(&body), (Some(R_SHOP), true, None));
    assert_eq!((body["country"].clone(), body["country_known"].clone()), (Value::Null, json!(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_operator_away_only_chatbots_show_the_button() {
    let w = world(true).await;
    let app = w.app();
    w.set_status(ADA, Status::Away).await;
    let table: &[(&str, Option<u128>, bool, Option<Uuid>)] = &[
        ("/about", None, false, None),
        ("/shop", Some(R_SHOP), false, None),
        ("/help", Some(R_HELP_BOT), true, Some(BOT_IF_NOBODY)),
        ("/faq", Some(R_FAQ_BOT), true, Some(BOT_ALWAYS)),
    ];
    for (url, rule, show, chatbot) in table {
        let body = init(&app, SHOP, Some(url), None).await.json();
        assert_eq!(outcome(&body), (*rule, *show, *chatbot), "{url}: {body}");
        assert_eq!(body["operator_available"], false);
    }
    assert_eq!(
        init(&app, SHOP, Some("/help"), None).await.json()["chatbot"],
        json!({"chatbot_id": BOT_IF_NOBODY, "only_if_no_operator": true})
    );
    // Online again: the button is back.
    w.set_status(ADA, Status::Online).await;
    assert_eq!(outcome(&init(&app, SHOP, Some("/about"), None).await.json()), (None, true, None));
    // A channel nobody joined shows nothing, even with every operator online.
    let body = init(&app, QUIET, Some("/about"), None).await.json();
    assert_eq!((outcome(&body), body["operator_available"].as_bool()), ((None, false, None), Some(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_answer_has_the_options_and_allows_any_origin() {
    let w = world(true).await;
    let res = init(&w.app(), SHOP, Some("/shop"), Some("BE")).await;
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    insta::assert_json_snapshot!("init_shop_from_belgium", res.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refuses_unknown_channels_and_bad_queries() {
    let w = world(true).await;
    let app = w.app();
    for (uri, status, code) in [
        (init_uri(ARCHIVED, Some("/")), StatusCode::NOT_FOUND, "not-found"),
        (init_uri(Uuid::from_u128(0xDEAD), Some("/")), StatusCode::NOT_FOUND, "not-found"),
        ("/api/v1/public/channels/not-a-uuid/init".to_string(), StatusCode::NOT_FOUND, "not-found"),
        (format!("{}&page=2", init_uri(SHOP, Some("/"))), StatusCode::BAD_REQUEST, "unknown-parameter"),
        (
            init_uri(SHOP, Some(&format!("/{}", "a".repeat(2000)))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        ),
    ] {
        let res = get(&app, &uri).await;
        assert_eq!((res.status, res.json()["code"].as_str()), (status, Some(code)), "{uri}");
        assert_eq!(res.header("content-type"), Some("application/problem+json"));
        assert_eq!(res.header("access-control-allow-origin"), Some("*"), "the widget reads errors too");
    }
    let long = get(&app, &init_uri(SHOP, Some(&format!("/{}", "é".repeat(2000))))).await;
    assert_eq!(long.json()["errors"][0]["field"], "url");
    let at_limit = get(&app, &init_uri(SHOP, Some(&format!("/{}", "é".repeat(1999))))).await;
    assert_eq!(at_limit.status, StatusCode::OK, "2000 characters are fine, whatever their bytes");

    let preflight = send(
        &app,
        Request::options(init_uri(SHOP, None))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(preflight.header("access-control-allow-methods"), Some("GET, POST, OPTIONS"));
}

/// Every route the widget calls from another site answers the browser's preflight with what
/// the widget sends (JSON, the visitor token); operators' routes do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_routes_answer_preflights_and_only_they_do() {
    let w = world(true).await;
    let app = w.app();
    let preflight = |uri: String, method: &'static str| {
        Request::options(uri)
            .header("origin", "https://shop.example")
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization, content-type")
            .body(Body::empty())
            .unwrap()
    };
    let s = Uuid::from_u128(0x5E55);
    for (uri, method) in [
        (format!("/api/v1/public/channels/{SHOP}/init"), "GET"),
        (format!("/api/v1/public/channels/{SHOP}/sessions"), "POST"),
        (format!("/api/v1/public/sessions/{s}"), "GET"),
        (format!("/api/v1/public/sessions/{s}/messages"), "POST"),
        (format!("/api/v1/public/sessions/{s}/pages"), "POST"),
        (format!("/api/v1/public/sessions/{s}/seen"), "POST"),
        (format!("/api/v1/public/sessions/{s}/leave"), "POST"),
        (format!("/api/v1/public/sessions/{s}/rating"), "POST"),
        (format!("/api/v1/public/sessions/{s}/transcript"), "POST"),
    ] {
        let res = send(&app, preflight(uri.clone(), method)).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{uri}");
        assert_eq!(res.header("access-control-allow-origin"), Some("*"), "{uri}");
        assert_eq!(res.header("access-control-allow-methods"), Some("GET, POST, OPTIONS"), "{uri}");
        let allowed = res.header("access-control-allow-headers").unwrap_or_default();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{uri}: {allowed}");
    }
    // A refused visitor request is still readable by the widget (it shows the problem).
    let refused = send(
        &app,
        Request::post(format!("/api/v1/public/sessions/{s}/messages"))
            .header("origin", "https://shop.example")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"text":"hi"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.header("access-control-allow-origin"), Some("*"));
    for uri in [format!("/api/v1/channels/{SHOP}/widget"), "/api/v1/conversations".to_string()] {
        let res = send(&app, preflight(uri.clone(), "GET")).await;
        assert_eq!(res.header("access-control-allow-origin"), None, "{uri} is not for other sites");
        assert_ne!(res.status, StatusCode::NO_CONTENT, "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_views_have_them_channels_and_operators_are_read_from_their_streams() {
    let w = world(false).await;
    assert!(w.store.views().get("channels", &stream_id::<Channel>(SHOP)).await.unwrap().is_none());
    let body = init(&w.app(), SHOP, Some("/shop"), Some("BE")).await.json();
    assert_eq!(outcome(&body), (Some(R_SHOP_BE), true, None));
    assert_eq!(body["operator_available"], true, "ADA's status comes from her stream");
    assert_eq!(get(&w.app(), &init_uri(ARCHIVED, None)).await.status, StatusCode::NOT_FOUND);
}

/// A GET as `token`, with these extra headers.
async fn get_as(app: &Router, uri: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::get(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_tab_gives_admins_the_snippet_for_the_host_they_called() {
    let w = world(true).await;
    let app = w.app();
    let uri = format!("/api/v1/channels/{SHOP}/widget");
    let host = [("host", "chat.example.com:8080")];
    assert_eq!(get_as(&app, &uri, None, &host).await.status, StatusCode::UNAUTHORIZED);
    let operator = get_as(&app, &uri, Some(&w.bob_token), &host).await;
    assert_eq!((operator.status, operator.json()["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));

    let res = get_as(&app, &uri, Some(&w.admin_token), &host).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.header("access-control-allow-origin"), None, "an admin route is not for other sites");
    assert_eq!(
        res.json(),
        json!({
            "script": format!("<script src=\"http://chat.example.com:8080/widget/{SHOP}/loader.js\" defer></script>"),
            "direct_link": format!("http://chat.example.com:8080/chat/{SHOP}"),
        })
    );
    let tls =
        get_as(&app, &uri, Some(&w.admin_token), &[("host", "chat.example.com"), ("x-forwarded-proto", "https")]).await;
    assert_eq!(tls.json()["direct_link"], format!("https://chat.example.com/chat/{SHOP}"));

    let bad_host = get_as(&app, &uri, Some(&w.admin_token), &[("host", "x\"><script>")]).await;
    assert_eq!((bad_host.status, bad_host.json()["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad-host")));
    let unknown =
        get_as(&app, &format!("/api/v1/channels/{}/widget", Uuid::from_u128(0xDEAD)), Some(&w.admin_token), &host)
            .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let extra = get_as(&app, &format!("{uri}?x=1"), Some(&w.admin_token), &host).await;
    assert_eq!(extra.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loader_script_and_the_direct_link_page_carry_the_channel_id() {
    let w = world(true).await;
    let app = w.app();
    let js = get(&app, &format!("/widget/{SHOP}/loader.js")).await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(js.header("content-type"), Some("application/javascript; charset=utf-8"));
    assert_eq!(js.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(js.header("x-content-type-options"), Some("nosniff"));
    let text = js.text();
    assert!(text.contains(&format!("var CHANNEL_ID = \"{SHOP}\";")), "the id, JSON-encoded");
    assert!(!text.contains("__LIVECHAT_CHANNEL_ID__"));
    assert!(text.contains("/widget/widget.js") && text.contains("s.async = true"), "adds the widget without blocking");
    assert!(!text.contains("innerHTML"), "server texts go in with textContent only");

    for (uri, content_type, body) in [
        ("/widget/widget.js", "application/javascript; charset=utf-8", api::routes::public::WIDGET_JS),
        ("/widget/widget.css", "text/css; charset=utf-8", api::routes::public::WIDGET_CSS),
    ] {
        let res = get(&app, uri).await;
        assert_eq!((res.status, res.header("content-type")), (StatusCode::OK, Some(content_type)), "{uri}");
        assert_eq!(res.header("cache-control"), Some("public, max-age=300"));
        assert_eq!(res.text(), body);
    }
    assert!(!api::routes::public::WIDGET_JS.contains("innerHTML"), "server texts go in with textContent only");
    assert!(api::routes::public::WIDGET_JS.len() < 32 * 1024, "the widget stays small");

    let page = get(&app, &format!("/chat/{SHOP}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self' 'unsafe-inline'"), "{csp}");
    let html = page.text();
    assert!(html.contains(&format!("<script src=\"../widget/{SHOP}/loader.js\" data-livechat-open defer>")), "{html}");
    assert!(!html.contains("{{"), "no slot left: {html}");

    for uri in [
        format!("/widget/{ARCHIVED}/loader.js"),
        format!("/chat/{ARCHIVED}"),
        format!("/widget/{}/loader.js", Uuid::from_u128(0xDEAD)),
        "/chat/nope".to_string(),
    ] {
        assert_eq!(get(&app, &uri).await.status, StatusCode::NOT_FOUND, "{uri}");
    }
}

/// The loader template and the widget are valid JavaScript (checked with node, where there is one).
#[test]
fn the_loader_script_parses() {
    for (name, script) in
        [("loader", api::routes::public::loader_script(SHOP)), ("widget", api::routes::public::WIDGET_JS.to_string())]
    {
        let path = std::env::temp_dir().join(format!("livechat-{name}-{}.js", std::process::id()));
        std::fs::write(&path, &script).unwrap();
        match std::process::Command::new("node").arg("--check").arg(&path).output() {
            Ok(out) => assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("skipped: node is not available ({e})"),
        }
        let _ = std::fs::remove_file(path);
    }
}

// --- Country sources ----------------------------------------------------------------------

fn database() -> CountryResolver {
    CountryResolver::default().with_database_file(&fixture("countries.mmdb")).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn code(c: Option<domain::values::Country>) -> Option<String> {
    c.map(|c| c.to_string())
}

#[test]
fn the_country_database_answers_for_the_fixture_ranges() {
    let db = database();
    assert!(db.configured());
    let table = [
        ("192.0.2.1", Some("BE")),
        ("192.0.2.255", Some("BE")),
        ("198.51.100.7", Some("NL")),
        ("2001:db8::1", Some("FR")),
        ("::ffff:192.0.2.9", Some("BE")), // an IPv4 peer on a dual-stack socket
        ("203.0.113.5", None),            // only a registered country: not where the visitor is
        ("192.0.3.1", None),              // next to a known range
        ("127.0.0.1", None),
        ("2001:db9::1", None),
    ];
    for (addr, expected) in table {
        assert_eq!(code(db.lookup(ip(addr))).as_deref(), expected, "{addr}");
        assert_eq!(code(db.country(&HeaderMap::new(), Some(ip(addr)))).as_deref(), expected, "{addr}");
    }
    assert_eq!(db.country(&HeaderMap::new(), None), None, "no peer, no lookup");
    assert!(db.describe().contains("livechat-test-Country built 2026-01-01"), "{}", db.describe());
}

#[test]
fn a_present_proxy_header_wins_over_the_peer_address() {
    let both = database().with_header("X-Test-Country").unwrap();
    let headers = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert(COUNTRY_HEADER, v.parse().unwrap());
        h
    };
    let belgian_peer = Some(ip("192.0.2.1"));
    assert_eq!(code(both.country(&headers(" nl "), belgian_peer)).as_deref(), Some("NL"));
    // The proxy says it does not know (Cloudflare's XX, T1 for Tor): the peer is the proxy.
    assert_eq!(both.country(&headers("XX"), belgian_peer), None);
    assert_eq!(code(both.country(&HeaderMap::new(), belgian_peer)).as_deref(), Some("BE"), "no header: the peer");

    let header_only = CountryResolver::default().with_header(COUNTRY_HEADER).unwrap();
    assert_eq!(header_only.country(&HeaderMap::new(), belgian_peer), None, "no database: the peer tells nothing");
    assert_eq!(code(header_only.country(&headers("FR"), None)).as_deref(), Some("FR"));
    let none = CountryResolver::default();
    assert!(!none.configured());
    assert_eq!(none.country(&headers("FR"), belgian_peer), None);
}

#[test]
fn unusable_sources_are_refused_with_one_line() {
    let missing = CountryResolver::default().with_database_file(&fixture("nope.mmdb")).err().unwrap().to_string();
    assert!(missing.starts_with("cannot read ") && missing.contains("nope.mmdb"), "{missing}");
    let not_a_db = CountryResolver::default().with_database_file(&fixture("make_countries_mmdb.py")).err().unwrap();
    assert!(not_a_db.to_string().contains("is not a MaxMind-format database"), "{not_a_db}");
    assert!(!not_a_db.to_string().contains('\n'));
    assert!(CountryResolver::default().with_header("bad header").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_looks_the_peer_address_up_in_the_country_database() {
    let w = world(true).await;
    let app = router(w.state(database().with_header(COUNTRY_HEADER).unwrap()));
    let from = |addr: &str, header: Option<&str>| {
        let mut req = Request::get(init_uri(SHOP, Some("/shop")));
        if let Some(h) = header {
            req = req.header(COUNTRY_HEADER, h);
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip(addr), 50_000)));
        req
    };
    let table = [
        ("192.0.2.10", None, Some("BE"), R_SHOP_BE),
        ("198.51.100.7", None, Some("NL"), R_SHOP),
        ("203.0.113.5", None, None, R_SHOP),
        ("192.0.2.10", Some("FR"), Some("FR"), R_SHOP), // the proxy's header wins
    ];
    for (addr, header, country, rule) in table {
        let body = send(&app, from(addr, header)).await.json();
        assert_eq!(body["country"].as_str(), country, "{addr} {header:?}: {body}");
        assert_eq!(outcome(&body).0, Some(rule), "{addr} {header:?}");
    }
    // Without connection info (as here under oneshot), only the header can tell.
    let body = init(&app, SHOP, Some("/shop"), None).await.json();
    assert_eq!((body["country_known"].as_bool(), outcome(&body).0), (Some(false), Some(R_SHOP)));
}
