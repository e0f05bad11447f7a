//! The visitor widget in a real browser: Debian's headless `chromium` driven through
//! `chromedriver` (W3C WebDriver, a small client below), against the real server.
//!
//! The host pages come from a second server on another port, so the widget runs cross-origin
//! as on a customer's site. Without a browser or driver each test prints that it was skipped,
//! unless `LIVECHAT_REQUIRE_BROWSER=1` (CI), where it fails. Screenshots land in
//! `target/browser-artifacts/`.

use std::time::Duration;

use crate::common::Env;
use axum::extract::Path;
use axum::response::Html;
use reqwest::Method;
use serde_json::{json, Value};
use webdriver::Browser;

/// The options the tests configure, to find them again in the page.
const HEADER_COLOR: &str = "#1E6B52";
const HEADER_TEXT_COLOR: &str = "#FFF7E0";
const BUTTON_COLOR: &str = "#C2410C";
const BUTTON_TEXT_COLOR: &str = "#FFFFFF";
const NOTIFICATION: &str = "Questions? Talk to Green Shop";
const WELCOME: &str = "Welcome to Green Shop! How can we help?";
const PLACEHOLDER: &str = "Ask us anything";

/// `#RRGGBB` as the browser reports computed colors.
fn rgb(hex: &str) -> String {
    let n = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
    format!("rgb({}, {}, {})", n(1), n(3), n(5))
}

/// Non-null once the page's `init` request has its answer.
const INIT_ANSWERED: &str =
    "return performance.getEntriesByType('resource').some(e => e.name.includes('/init?') && e.responseEnd > 0) || null;";

/// Reads the widget's shadow root: `S` in `body` is the root, or null before the widget drew.
fn in_widget(body: &str) -> String {
    format!(
        "const H = document.querySelector('[data-livechat-channel]'); const S = H && H.shadowRoot; \
         const shown = (e) => !!e && e.getClientRects().length > 0; {body}"
    )
}

async fn join(env: &Env, channel: &str, token: &str) {
    let a = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// A channel with the test's colors and texts, these rules, and `operators`.
async fn shop(env: &Env, operators: &[uuid::Uuid], rules: &[Value]) -> String {
    let channel = env.channel("Green Shop", operators).await;
    let options = json!({
        "header_color": HEADER_COLOR, "header_text_color": HEADER_TEXT_COLOR,
        "button_color": BUTTON_COLOR, "button_text_color": BUTTON_TEXT_COLOR,
        "notification_text": NOTIFICATION, "welcome_message": WELCOME, "input_placeholder": PLACEHOLDER,
    });
    let a =
        env.call(Method::PUT, &format!("/api/v1/channels/{channel}/options"), Some(&env.admin), Some(options)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    for rule in rules {
        let a = env
            .call(Method::POST, &format!("/api/v1/channels/{channel}/rules"), Some(&env.admin), Some(rule.clone()))
            .await;
        assert!(a.status == 200 || a.status == 201, "{}", a.body);
    }
    channel
}

/// A website on its own port whose every page embeds the channel's snippet, as an admin copies
/// it from the widget tab. Its styles try hard to restyle every button and every `.lc-*`
/// element, and it has an element named like the widget's own classes, to show that nothing
/// crosses the shadow root either way.
async fn website(env: &Env, channel: &str) -> String {
    let snippet = env.call(Method::GET, &format!("/api/v1/channels/{channel}/widget"), Some(&env.admin), None).await;
    assert_eq!(snippet.status, 200, "{}", snippet.body);
    let script = snippet.body["script"].as_str().unwrap().to_string();
    let page = move |path: String| {
        let script = script.clone();
        async move {
            Html(format!(
                "<!doctype html><html><head><meta charset=utf-8>\
                 <meta name=viewport content=\"width=device-width, initial-scale=1\"><title>Green Shop {path}</title>\
                 <script>{SOCKETS}</script>{script}\
                 <style>button, .lc-button, .lc-window {{ background: lime !important; color: red !important; \
                 font-size: 40px !important; }}</style></head>\
                 <body><h1>Green Shop</h1><div class=\"lc-button\" id=\"probe\">not the widget</div></body></html>"
            ))
        }
    };
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get({
                let page = page.clone();
                move || page(String::new())
            }),
        )
        .route("/{*path}", axum::routing::get(move |Path(p): Path<String>| page(p)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// The host page keeps the widget's WebSockets, so a test can cut one as a network drop would.
const SOCKETS: &str = "window.__sockets = []; const Real = WebSocket; \
     window.WebSocket = function (url) { const s = new Real(url); __sockets.push(s); return s; };";

/// The operator's WebSocket.
type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(env: &Env, token: &str) -> Ws {
    let url = format!("{}/api/v1/stream?access_token={token}", env.base.replacen("http://", "ws://", 1));
    tokio_tungstenite::connect_async(url).await.expect("websocket").0
}

/// The next event frame of this type, within 10 s.
async fn next_event(socket: &mut Ws, event_type: &str) -> Value {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {event_type} in time"))
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "event" && v["event_type"] == event_type {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_button_follows_the_channel_rules_on_another_site() {
    let Some(browser) = Browser::start("rules", (1280, 900)).await else { return };
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let rules = [
        json!({"action": "hide", "url_regex": "/checkout"}),
        json!({"action": "open_automatically", "timer_seconds": 1, "url_regex": "/welcome"}),
        json!({"action": "show_with_notification", "url_regex": "/promo"}),
    ];
    let channel = shop(&env, &[ada], &rules).await;
    join(&env, &channel, &ada_token).await;
    let site = website(&env, &channel).await;

    // No rule: the button, in the channel's colors and with its text, and nothing else
    // (read once the widget's stylesheet has loaded: it arrives after the button).
    browser.go(&format!("{site}/shop")).await;
    let button = browser
        .wait_for(
            "the button",
            &in_widget(
                "const b = S && S.querySelector('.lc-button'); if (!shown(b) || !S.querySelector('link').sheet) return null; \
                 const c = getComputedStyle(b); \
                 return {bg: c.backgroundColor, fg: c.color, label: b.getAttribute('aria-label'), \
                 size: c.width, window: shown(S.querySelector('.lc-window')), bubble: shown(S.querySelector('.lc-bubble'))};",
            ),
        )
        .await;
    assert_eq!(button["bg"], rgb(BUTTON_COLOR), "the host's `button {{ background: lime !important }}` stays out");
    assert_eq!(button["fg"], rgb(BUTTON_TEXT_COLOR));
    assert_eq!(button["label"], NOTIFICATION);
    assert_eq!(button["size"], "56px");
    assert_eq!((button["window"].as_bool(), button["bubble"].as_bool()), (Some(false), Some(false)));
    // And the widget's styles stay in: the host's own `.lc-button` is untouched.
    let probe = browser
        .run("const p = getComputedStyle(document.getElementById('probe')); return [p.borderRadius, p.position];")
        .await;
    assert_eq!(probe, json!(["0px", "static"]));
    // Keyboard: the button is focusable and opens the window, with the focus in the input.
    let opened = browser
        .wait_for(
            "the window opened by keyboard",
            &in_widget(
                "const b = S.querySelector('.lc-button'); if (!window.__pressed) { window.__pressed = 1; b.focus(); \
                 b.click(); } const w = S.querySelector('.lc-window'); if (!shown(w)) return null; \
                 return [b.getAttribute('aria-expanded'), S.activeElement && S.activeElement.className];",
            ),
        )
        .await;
    assert_eq!(opened, json!(["true", "lc-input"]));

    // show_with_notification: the bubble with the notification text.
    browser.go(&format!("{site}/promo")).await;
    let bubble = browser
        .wait_for(
            "the bubble",
            &in_widget("const b = S && S.querySelector('.lc-bubble'); return shown(b) ? b.textContent : null;"),
        )
        .await;
    assert_eq!(bubble, NOTIFICATION);

    // open_automatically after 1 s: closed at first, then open by itself.
    browser.go(&format!("{site}/welcome")).await;
    let first = browser
        .wait_for(
            "the button on /welcome",
            &in_widget(
                "const b = S && S.querySelector('.lc-button'); if (!shown(b)) return null; \
                 return {window: shown(S.querySelector('.lc-window')), at: performance.now()};",
            ),
        )
        .await;
    if first["at"].as_f64().unwrap() < 900.0 {
        assert_eq!(first["window"], false, "not before the timer");
    }
    let auto = browser
        .wait_for(
            "the window opened by itself",
            &in_widget(
                "const w = S && S.querySelector('.lc-window'); return shown(w) ? \
                 [performance.now(), w.querySelector('.lc-title').textContent] : null;",
            ),
        )
        .await;
    assert!(auto[0].as_f64().unwrap() >= 1000.0, "after the timer: {auto}");
    assert_eq!(auto[1], "Green Shop");
    // Once per browser: the next visit does not open it again.
    browser.go(&format!("{site}/welcome")).await;
    browser.wait_for("the button again", &in_widget("return shown(S && S.querySelector('.lc-button')) || null;")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = browser.run(&in_widget("return shown(S.querySelector('.lc-window'));")).await;
    assert_eq!(again, false, "the popup opens once per browser");

    // hide on /checkout: init answers, and nothing is drawn.
    browser.go(&format!("{site}/checkout")).await;
    browser.wait_for("init answered", INIT_ANSWERED).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let drawn = browser.run("return document.querySelectorAll('[data-livechat-channel]').length;").await;
    assert_eq!(drawn, 0, "hidden on /checkout");

    // Nobody available (Ada leaves the channel): no button anywhere.
    let left = env.call(Method::POST, &format!("/api/v1/channels/{channel}/leave"), Some(&ada_token), None).await;
    assert_eq!(left.status, 200, "{}", left.body);
    browser.go(&format!("{site}/shop")).await;
    browser.wait_for("init answered again", INIT_ANSWERED).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let drawn = browser.run("return document.querySelectorAll('[data-livechat-channel]').length;").await;
    assert_eq!(drawn, 0, "no button when nobody can answer");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_reloads_without_losing_or_repeating_and_rates() {
    let Some(browser) = Browser::start("chat", (1280, 900)).await else { return };
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = shop(&env, &[ada], &[]).await;
    join(&env, &channel, &ada_token).await;
    let site = website(&env, &channel).await;
    let mut operator = ws(&env, &ada_token).await;

    browser.go(&format!("{site}/products")).await;
    let button =
        browser.wait_for("the button", &in_widget("return shown(S && S.querySelector('.lc-button')) || null;")).await;
    assert_eq!(button, true);
    browser.click(&in_widget("return S.querySelector('.lc-button');")).await;
    let window = browser
        .wait_for(
            "the open window",
            &in_widget(
                "const w = S.querySelector('.lc-window'); if (!shown(w)) return null; \
                 const h = getComputedStyle(w.querySelector('.lc-header')); const i = w.querySelector('.lc-input'); \
                 return {bg: h.backgroundColor, fg: h.color, title: w.querySelector('.lc-title').textContent, \
                 placeholder: i.placeholder, label: i.getAttribute('aria-label'), \
                 texts: [...w.querySelectorAll('.lc-text')].map(e => e.textContent), \
                 log: w.querySelector('.lc-log').getAttribute('aria-live')};",
            ),
        )
        .await;
    assert_eq!(window["bg"], rgb(HEADER_COLOR));
    assert_eq!(window["fg"], rgb(HEADER_TEXT_COLOR));
    assert_eq!(window["title"], "Green Shop");
    assert_eq!((window["placeholder"].as_str(), window["label"].as_str()), (Some(PLACEHOLDER), Some(PLACEHOLDER)));
    assert_eq!(window["texts"], json!([WELCOME]));
    assert_eq!(window["log"], "polite", "screen readers hear new messages");

    // The visitor types and presses Enter: the conversation starts with that message.
    let input = in_widget("return S.querySelector('.lc-input');");
    browser.keys(&input, "Hello, do you ship to Belgium?\u{E007}").await;
    let posted = next_event(&mut operator, "MessagePosted").await;
    let posted =
        if posted["data"]["welcome"] == true { next_event(&mut operator, "MessagePosted").await } else { posted };
    assert_eq!(posted["data"]["text"], "Hello, do you ship to Belgium?");
    assert_eq!(posted["data"]["author"]["kind"], "visitor");
    let session = posted["stream_id"].as_str().unwrap().trim_start_matches("session-").to_string();
    let visitor_message = posted["data"]["message_id"].as_str().unwrap().to_string();
    let header = browser
        .wait_for(
            "the operator's name in the header",
            &in_widget("const t = S.querySelector('.lc-title').textContent; return t === 'Green Shop' ? null : t;"),
        )
        .await;
    assert_eq!(header, "Ada (support)", "the operator's chat name");

    // The operator types, then answers: the visitor sees both.
    use futures_util::SinkExt;
    let typing = json!({"type": "typing", "session_id": session, "typing": true}).to_string();
    operator.send(tokio_tungstenite::tungstenite::Message::Text(typing.into())).await.unwrap();
    let indicator = browser
        .wait_for("the typing indicator", &in_widget("return S.querySelector('.lc-typing').textContent || null;"))
        .await;
    assert_eq!(indicator, "Ada (support) is typing\u{2026}");
    let reply = env
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{session}/messages"),
            Some(&ada_token),
            Some(json!({"text": "Yes, within 3 days."})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let shown = browser
        .wait_for(
            "the reply",
            &in_widget(
                "const m = [...S.querySelectorAll('.lc-msg')]; if (m.length < 3) return null; \
                 return m.map(x => [x.querySelector('.lc-author').textContent, x.querySelector('.lc-text').textContent, \
                 x.querySelector('time').textContent.length > 0]);",
            ),
        )
        .await;
    let expected = json!([
        ["Ada (support)", WELCOME, true],
        ["You", "Hello, do you ship to Belgium?", true],
        ["Ada (support)", "Yes, within 3 days.", true]
    ]);
    assert_eq!(shown, expected);
    assert_eq!(browser.run(&in_widget("return S.querySelector('.lc-typing').textContent;")).await, "");

    // The operator has seen the visitor's message: "Seen" under it.
    let seen = env
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{session}/seen"),
            Some(&ada_token),
            Some(json!({"up_to": visitor_message})),
        )
        .await;
    assert_eq!(seen.status, 204, "{}", seen.body);
    let mark = browser
        .wait_for(
            "the seen mark",
            &in_widget(
                "const s = S.querySelector('.lc-seen'); return s ? [s.closest('.lc-msg').dataset.messageId, s.textContent] : null;",
            ),
        )
        .await;
    assert_eq!(mark, json!([visitor_message, "Seen"]));
    browser.screenshot("chat-window").await;

    // The visitor goes elsewhere; meanwhile the operator writes; the next page has everything
    // once, and reports the page view.
    browser.go("about:blank").await;
    let later = env
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{session}/messages"),
            Some(&ada_token),
            Some(json!({"text": "Anything else?"})),
        )
        .await;
    assert_eq!(later.status, 201);
    browser.go(&format!("{site}/about")).await;
    let after = browser
        .wait_for(
            "the conversation after the reload",
            &in_widget(
                "if (!S) return null; const m = [...S.querySelectorAll('.lc-msg')]; if (m.length < 4) return null; \
                 return {texts: m.map(x => x.querySelector('.lc-text').textContent), \
                 ids: new Set(m.map(x => x.dataset.messageId)).size, open: shown(S.querySelector('.lc-window')), \
                 title: S.querySelector('.lc-title').textContent};",
            ),
        )
        .await;
    assert_eq!(
        after["texts"],
        json!([WELCOME, "Hello, do you ship to Belgium?", "Yes, within 3 days.", "Anything else?"]),
        "nothing lost, nothing twice"
    );
    assert_eq!((after["ids"].as_u64(), after["open"].as_bool()), (Some(4), Some(true)));
    assert_eq!(after["title"], "Ada (support)");
    let page = next_event(&mut operator, "PageVisited").await;
    assert_eq!(page["data"]["url"], "/about");
    // The network drops: what the operator writes meanwhile arrives once, from where the
    // widget's stream stopped (no history is read on a reconnect).
    browser.run("__sockets[__sockets.length - 1].close(); return null;").await;
    let dropped = env
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{session}/messages"),
            Some(&ada_token),
            Some(json!({"text": "Bye for now"})),
        )
        .await;
    assert_eq!(dropped.status, 201);
    let last = browser
        .wait_for(
            "the message sent during the drop",
            &in_widget(
                "const m = S.querySelectorAll('.lc-msg'); return m.length === 5 ? \
                 [m[4].querySelector('.lc-text').textContent, __sockets.length, __sockets[__sockets.length - 1].url] : null;",
            ),
        )
        .await;
    assert_eq!(last[0], "Bye for now");
    assert_eq!(last[1], 2, "one reconnection");
    assert!(last[2].as_str().unwrap().contains("&from="), "resumed from its position: {last}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(browser.run(&in_widget("return S.querySelectorAll('.lc-msg').length;")).await, 5);

    // Closing ends the conversation and asks for feedback: unhappy, with a comment.
    browser.click(&in_widget("return S.querySelector('.lc-close');")).await;
    next_event(&mut operator, "SessionClosed").await;
    browser.click(&in_widget("return S.querySelector('.lc-face[aria-label=Unhappy]');")).await;
    browser.keys(&in_widget("return S.querySelector('.lc-comment');"), "Too slow").await;
    browser.click(&in_widget("return S.querySelector('.lc-check input');")).await;
    browser.keys(&in_widget("return S.querySelector('.lc-email');"), "marie@example.com").await;
    browser.screenshot("feedback-panel").await;
    browser.click(&in_widget("return S.querySelector('.lc-feedback .lc-send');")).await;
    let thanks =
        browser.wait_for("the thanks", &in_widget("return S.querySelector('.lc-result').textContent || null;")).await;
    assert_eq!(thanks, "Thank you for your feedback.");
    let mut ratings = Value::Null;
    for _ in 0..100 {
        ratings =
            env.call(Method::GET, &format!("/api/v1/ratings?channel_id={channel}"), Some(&env.admin), None).await.body;
        if ratings["ratings"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rating = &ratings["ratings"][0];
    assert_eq!((rating["value"].as_u64(), rating["feedback"].as_str()), (Some(1), Some("Too slow")), "{ratings}");
    // And the transcript is on its way to the address given.
    let outbox =
        env.call(Method::GET, &format!("/api/v1/events?stream=transcript-{session}"), Some(&env.admin), None).await;
    let requested = outbox.body.to_string();
    assert!(requested.contains("TranscriptRequested") && requested.contains("marie@example.com"), "{requested}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nobody_online_the_direct_link_takes_a_message_for_the_queue_on_a_phone() {
    let Some(browser) = Browser::start("nobody", (390, 844)).await else { return };
    let env = Env::start().await;
    // Ada is the channel's operator but has not joined: nobody is available.
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = shop(&env, &[ada], &[]).await;
    browser.go(&format!("{}/chat/{channel}", env.base)).await;
    let notice = browser
        .wait_for(
            "the nobody-available notice",
            &in_widget(
                "const n = S && S.querySelector('.lc-notice'); if (!shown(n)) return null; \
                 const w = S.querySelector('.lc-window').getBoundingClientRect(); \
                 return {text: n.textContent, width: w.width, viewport: innerWidth, title: document.title, \
                 messages: S.querySelectorAll('.lc-msg').length};",
            ),
        )
        .await;
    assert!(notice["text"].as_str().unwrap().starts_with("No available collaborator"), "{notice}");
    assert!(notice["text"].as_str().unwrap().contains("leave a message"), "{notice}");
    assert_eq!((notice["width"].as_f64(), notice["viewport"].as_f64()), (Some(390.0), Some(390.0)), "a phone's screen");
    assert_eq!((notice["title"].as_str(), notice["messages"].as_u64()), (Some("Green Shop"), Some(0)));
    browser.screenshot("nobody-available-phone").await;

    browser.keys(&in_widget("return S.querySelector('.lc-input');"), "Please call me back").await;
    browser.click(&in_widget("return S.querySelector('.lc-send');")).await;
    let queued = browser
        .wait_for(
            "the queue position",
            &in_widget(
                "const t = S.querySelector('.lc-notice').textContent; \
                 return t.includes('in the queue') && S.querySelectorAll('.lc-msg').length === 1 ? t : null;",
            ),
        )
        .await;
    assert_eq!(queued, "No available collaborator, please try again later. You are number 1 in the queue.");
    let mut queue = Value::Null;
    for _ in 0..100 {
        queue = env.call(Method::GET, &format!("/api/v1/channels/{channel}/queue"), Some(&ada_token), None).await.body;
        if queue["conversations"].as_array().is_some_and(|c| !c.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(queue["conversations"].as_array().map(Vec::len), Some(1), "{queue}");
    let session = queue["conversations"][0]["session_id"].as_str().expect("a session id").to_string();
    let history =
        env.call(Method::GET, &format!("/api/v1/conversations/{session}/messages"), Some(&env.admin), None).await;
    let texts: Vec<_> = history.body["messages"].as_array().unwrap().iter().map(|m| m["text"].clone()).collect();
    assert_eq!(texts, vec![json!("Please call me back")], "{}", history.body);
    // Ada comes in and gets the conversation: the page hears it live (its stream works under
    // the page's content security policy).
    join(&env, &channel, &ada_token).await;
    let taken = browser
        .wait_for(
            "the operator's arrival",
            &in_widget(
                "const t = S.querySelector('.lc-title').textContent; \
                 return t === 'Green Shop' ? null : [t, shown(S.querySelector('.lc-notice'))];",
            ),
        )
        .await;
    assert_eq!(taken, json!(["Ada (support)", false]));
    browser.quit().await;
}

/// The chatbot's name and lines, to find them again in the page.
const BOT: &str = "Green Shop bot";
const GREETING: &str = "Hello! I am the Green Shop bot.";
const QUESTION: &str = "What brings you here?";
const EMAIL_QUESTION: &str = "What is your email?";
const FORWARD: &str = "Let me find someone for you.";

/// An active script: a greeting, a choice between two answers, an email question, a forward.
async fn shop_bot(env: &Env) -> String {
    let created = env.call(Method::POST, "/api/v1/chatbots", Some(&env.admin), Some(json!({"title": BOT}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["chatbot_id"].as_str().unwrap().to_string();
    let steps = [
        ("text", GREETING),
        ("question_selection", QUESTION),
        ("question_email", EMAIL_QUESTION),
        ("forward_operator", FORWARD),
    ];
    let mut choice_step = String::new();
    for (step_type, message) in steps {
        let body = json!({"step_type": step_type, "message": message});
        let a = env.call(Method::POST, &format!("/api/v1/chatbots/{id}/steps"), Some(&env.admin), Some(body)).await;
        assert_eq!(a.status, 201, "{}", a.body);
        if step_type == "question_selection" {
            choice_step = a.body["steps"][1]["step_id"].as_str().unwrap().to_string();
        }
    }
    for label in ["Buy something", "Track my order"] {
        let path = format!("/api/v1/chatbots/{id}/steps/{choice_step}/answers");
        let a = env.call(Method::POST, &path, Some(&env.admin), Some(json!({"label": label}))).await;
        assert_eq!(a.status, 201, "{}", a.body);
    }
    id
}

/// The window's messages as `[author, text]`.
const MESSAGES: &str = "[...S.querySelectorAll('.lc-msg')].map(m => \
     [m.querySelector('.lc-author').textContent, m.querySelector('.lc-text').textContent])";

/// How many answers the page posted to the bot.
const ANSWERS_SENT: &str =
    "performance.getEntriesByType('resource').filter(e => e.name.includes('/bot/answer')).length";
/// How many conversations the page started.
const STARTS: &str = "performance.getEntriesByType('resource').filter(e => e.name.endsWith('/sessions')).length";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_asks_with_buttons_checks_the_email_and_hands_over_to_an_operator() {
    let Some(browser) = Browser::start("chatbot", (1280, 900)).await else { return };
    let env = Env::start().await;
    let chatbot = shop_bot(&env).await;
    // Ada is the channel's operator but has not joined: nobody is available, so the bot answers.
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let rule = json!({"action": "show", "chatbot_id": chatbot, "chatbot_only_if_no_operator": true});
    let channel = shop(&env, &[ada], &[rule]).await;
    let site = website(&env, &channel).await;

    // The greeting and the question's answers as buttons, before any conversation exists.
    browser.go(&format!("{site}/products")).await;
    browser.click(&in_widget("const b = S && S.querySelector('.lc-button'); return shown(b) ? b : null;")).await;
    let opened = browser
        .wait_for(
            "the bot's greeting and choices",
            &in_widget(&format!(
                "const w = S.querySelector('.lc-window'); const c = [...w.querySelectorAll('.lc-choice')]; \
                 if (!shown(w) || c.length < 2) return null; const g = w.querySelector('.lc-choices'); \
                 return {{title: w.querySelector('.lc-title').textContent, messages: {MESSAGES}, \
                 choices: c.map(b => [b.textContent, b.type, shown(b)]), \
                 group: [g.getAttribute('role'), g.getAttribute('aria-label')], \
                 focus: S.activeElement && S.activeElement.textContent, input: w.querySelector('.lc-input').disabled, \
                 notice: shown(S.querySelector('.lc-notice')), restart: shown(S.querySelector('.lc-restart')), \
                 colors: [getComputedStyle(c[0]).backgroundColor, getComputedStyle(c[0]).color]}};"
            )),
        )
        .await;
    assert_eq!(opened["title"], BOT);
    assert_eq!(opened["messages"], json!([[BOT, GREETING], [BOT, QUESTION]]));
    assert_eq!(opened["choices"], json!([["Buy something", "button", true], ["Track my order", "button", true]]));
    assert_eq!(opened["group"], json!(["group", QUESTION]), "screen readers hear what the buttons answer");
    assert_eq!(opened["focus"], "Buy something", "the keyboard lands on the first choice");
    assert_eq!(opened["input"], true, "a choice is answered with the buttons");
    assert_eq!((opened["notice"].as_bool(), opened["restart"].as_bool()), (Some(false), Some(false)), "{opened}");
    assert_eq!(opened["colors"], json!([rgb(BUTTON_COLOR), rgb(BUTTON_TEXT_COLOR)]));
    browser.screenshot("chatbot-choices").await;

    // A double click: one conversation, one answer; the buttons go away and the email is asked.
    browser.double_click(&in_widget("return S.querySelector('.lc-choice');")).await;
    let asked = browser
        .wait_for(
            "the email question",
            &in_widget(&format!(
                "const m = {MESSAGES}; if (m.length < 4) return null; const i = S.querySelector('.lc-input'); \
                 return {{messages: m, choices: shown(S.querySelector('.lc-choices')), input: i.disabled, \
                 placeholder: i.placeholder, focus: S.activeElement === i, restart: shown(S.querySelector('.lc-restart')), \
                 answers: {ANSWERS_SENT}, starts: {STARTS}}};"
            )),
        )
        .await;
    assert_eq!(
        asked["messages"],
        json!([[BOT, GREETING], [BOT, QUESTION], ["You", "Buy something"], [BOT, EMAIL_QUESTION]]),
        "the stored welcome replaced the drawn one, nothing twice"
    );
    assert_eq!((asked["choices"].as_bool(), asked["input"].as_bool()), (Some(false), Some(false)), "{asked}");
    assert_eq!((asked["placeholder"].as_str(), asked["focus"].as_bool()), (Some("Your email"), Some(true)));
    assert_eq!((asked["restart"].as_bool(), asked["answers"].as_u64()), (Some(true), Some(1)), "answered once");
    assert_eq!(asked["starts"], 1, "one conversation");

    // Restart: the bot starts over and asks again; this time the keyboard picks the other answer.
    browser.click(&in_widget("return S.querySelector('.lc-restart');")).await;
    browser
        .wait_for(
            "the choices after the restart",
            &in_widget("return S.querySelectorAll('.lc-choice:enabled').length === 2 || null;"),
        )
        .await;
    // Another page of the site: the same conversation, the same question, nothing twice.
    browser.go(&format!("{site}/about")).await;
    let resumed = browser
        .wait_for(
            "the conversation on the next page",
            &in_widget(&format!(
                "if (!S || S.querySelectorAll('.lc-choice').length < 2) return null; const m = {MESSAGES}; \
                 if (m.length < 7) return null; return {{messages: m, title: S.querySelector('.lc-title').textContent, \
                 focus: S.activeElement && S.activeElement.textContent}};"
            )),
        )
        .await;
    assert_eq!(
        resumed["messages"],
        json!([
            [BOT, GREETING],
            [BOT, QUESTION],
            ["You", "Buy something"],
            [BOT, EMAIL_QUESTION],
            [BOT, "Restarting conversation..."],
            [BOT, GREETING],
            [BOT, QUESTION],
        ])
    );
    assert_eq!((resumed["title"].as_str(), resumed["focus"].as_str()), (Some(BOT), Some("Buy something")));
    browser.keys(&in_widget("return S.querySelectorAll('.lc-choice')[1];"), "\u{E007}").await;
    browser
        .wait_for(
            "the email question again",
            &in_widget(&format!(
                "const m = {MESSAGES}; return m.length === 9 && !S.querySelector('.lc-input').disabled || null;"
            )),
        )
        .await;

    // An invalid email: the bot says so and asks again.
    let input = in_widget("return S.querySelector('.lc-input');");
    browser.keys(&input, "marie@\u{E007}").await;
    let retry = "'marie@' does not look like a valid email. Can you please try again?";
    browser
        .wait_for(
            "the invalid email message",
            &in_widget(&format!("return {MESSAGES}.some(m => m[1] === {retry:?}) || null;")),
        )
        .await;

    // Ada joins meanwhile; the valid email ends the questions and the bot forwards to her.
    let mut operator = ws(&env, &ada_token).await;
    join(&env, &channel, &ada_token).await;
    browser.keys(&input, "marie@example.com\u{E007}").await;
    let assigned = next_event(&mut operator, "OperatorAssigned").await;
    let session = assigned["stream_id"].as_str().unwrap().trim_start_matches("session-").to_string();
    let header = browser
        .wait_for(
            "the operator's name in the header",
            &in_widget(
                "const t = S.querySelector('.lc-title').textContent; return t === 'Green Shop bot' ? null : \
                 [t, shown(S.querySelector('.lc-restart')), shown(S.querySelector('.lc-choices'))];",
            ),
        )
        .await;
    assert_eq!(header, json!(["Ada (support)", false, false]), "the bot is done");
    let reply = env
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{session}/messages"),
            Some(&ada_token),
            Some(json!({"text": "Hi Marie, where is your order from?"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let log = browser
        .wait_for(
            "the operator's reply",
            &in_widget(&format!("const m = {MESSAGES}; return m.length === 14 ? m : null;")),
        )
        .await;
    assert_eq!(
        log,
        json!([
            [BOT, GREETING],
            [BOT, QUESTION],
            ["You", "Buy something"],
            [BOT, EMAIL_QUESTION],
            [BOT, "Restarting conversation..."],
            [BOT, GREETING],
            [BOT, QUESTION],
            ["You", "Track my order"],
            [BOT, EMAIL_QUESTION],
            ["You", "marie@"],
            [BOT, retry],
            ["You", "marie@example.com"],
            [BOT, FORWARD],
            ["Ada (support)", "Hi Marie, where is your order from?"],
        ])
    );
    let sent = browser.run(&in_widget(&format!("return [{ANSWERS_SENT}, {STARTS}];"))).await;
    assert_eq!(sent, json!([1, 0]), "on this page: one answer, and no new conversation");
    browser.screenshot("chatbot-handed-over").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_choice_with_a_redirect_link_sends_the_visitor_there_on_a_phone() {
    let Some(browser) = Browser::start("chatbot-redirect", (390, 844)).await else { return };
    let env = Env::start().await;
    let created = env.call(Method::POST, "/api/v1/chatbots", Some(&env.admin), Some(json!({"title": BOT}))).await;
    let chatbot = created.body["chatbot_id"].as_str().unwrap().to_string();
    let step = json!({"step_type": "question_selection", "message": QUESTION});
    let a = env.call(Method::POST, &format!("/api/v1/chatbots/{chatbot}/steps"), Some(&env.admin), Some(step)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let step_id = a.body["steps"][0]["step_id"].as_str().unwrap().to_string();
    for (label, link) in [("Talk to us", None), ("Read the docs", Some("/docs"))] {
        let path = format!("/api/v1/chatbots/{chatbot}/steps/{step_id}/answers");
        let body = json!({"label": label, "redirect_link": link});
        let a = env.call(Method::POST, &path, Some(&env.admin), Some(body)).await;
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let rule = json!({"action": "show", "chatbot_id": chatbot, "chatbot_only_if_no_operator": true});
    let channel = shop(&env, &[], &[rule]).await;
    let site = website(&env, &channel).await;

    browser.go(&format!("{site}/products")).await;
    browser.click(&in_widget("const b = S && S.querySelector('.lc-button'); return shown(b) ? b : null;")).await;
    let fits = browser
        .wait_for(
            "the choices on a phone",
            &in_widget(
                "const c = [...S.querySelectorAll('.lc-choice')]; if (c.length < 2 || !shown(c[1])) return null; \
                 const r = c.map(b => b.getBoundingClientRect()); \
                 return [innerWidth, r.every(x => x.left >= 0 && x.right <= innerWidth && x.bottom <= innerHeight)];",
            ),
        )
        .await;
    assert_eq!(fits, json!([390, true]), "the buttons fit a phone's screen");
    browser.screenshot("chatbot-choices-phone").await;
    browser
        .click(&in_widget("return [...S.querySelectorAll('.lc-choice')].find(b => b.textContent === 'Read the docs');"))
        .await;
    browser.wait_for("the docs page", "return location.pathname === '/docs' || null;").await;
    // The conversation follows: the answer is there, and nothing is asked any more.
    let after = browser
        .wait_for(
            "the conversation on the docs page",
            &in_widget(&format!(
                "if (!S) return null; const m = {MESSAGES}; if (m.length < 2) return null; \
                 return {{messages: m, choices: shown(S.querySelector('.lc-choices'))}};"
            )),
        )
        .await;
    assert_eq!(after["messages"], json!([[BOT, QUESTION], ["You", "Read the docs"]]));
    assert_eq!(after["choices"], false);
    browser.quit().await;
}

/// A small W3C WebDriver client over `reqwest`: just what these tests use.
mod webdriver {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use base64::Engine;
    use serde_json::{json, Value};

    const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
    /// How long `wait_for` polls before failing.
    const PATIENCE: Duration = Duration::from_secs(10);

    pub struct Browser {
        http: reqwest::Client,
        driver: Child,
        port: u16,
        session: String,
    }

    fn find(names: &[&str]) -> Option<String> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        names.iter().find_map(|n| {
            std::env::split_paths(&path).map(|d| d.join(n)).find(|p| p.is_file()).map(|p| p.display().to_string())
        })
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    impl Browser {
        /// Starts chromedriver and a headless Chromium window of `size`; `None` (after saying
        /// so) when either is missing, unless `LIVECHAT_REQUIRE_BROWSER=1`.
        pub async fn start(test: &str, size: (u32, u32)) -> Option<Browser> {
            let required = std::env::var("LIVECHAT_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
            let (Some(driver), Some(chromium)) =
                (find(&["chromedriver"]), find(&["chromium", "chromium-browser", "google-chrome"]))
            else {
                assert!(!required, "LIVECHAT_REQUIRE_BROWSER=1 but chromium or chromedriver is not installed");
                // Straight to stderr: the harness would swallow `eprintln!` of a passing test.
                let _ = writeln!(
                    std::io::stderr(),
                    "browser test {test} skipped: no chromium or chromedriver (apt-get install chromium chromium-driver)"
                );
                return None;
            };
            let port = free_port();
            let child = Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts");
            let mut browser = Browser { http: reqwest::Client::new(), driver: child, port, session: String::new() };
            let deadline = Instant::now() + PATIENCE;
            loop {
                let ready = browser.http.get(browser.url("/status")).send().await;
                if let Ok(r) = ready {
                    if r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true) {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "chromedriver did not become ready");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut chrome = json!({"binary": chromium, "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--lang=en-US", format!("--window-size={},{}", size.0, size.1),
            ]});
            // Windows have a minimum width; a phone's viewport needs emulation.
            if size.0 < 500 {
                chrome["mobileEmulation"] =
                    json!({"deviceMetrics": {"width": size.0, "height": size.1, "pixelRatio": 1.0, "touch": true}});
            }
            let caps =
                json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": chrome}}});
            let created = browser.post("/session", caps).await;
            browser.session = created["sessionId"].as_str().expect("a session").to_string();
            Some(browser)
        }

        fn url(&self, path: &str) -> String {
            format!("http://127.0.0.1:{}{path}", self.port)
        }

        async fn post(&self, path: &str, body: Value) -> Value {
            let res = self.http.post(self.url(path)).json(&body).send().await.expect("chromedriver answers");
            let status = res.status();
            let v: Value = res.json().await.expect("json from chromedriver");
            assert!(status.is_success(), "{path}: {v}");
            v["value"].clone()
        }

        fn at(&self, path: &str) -> String {
            format!("/session/{}{path}", self.session)
        }

        pub async fn go(&self, url: &str) {
            self.post(&self.at("/url"), json!({ "url": url })).await;
        }

        /// Runs a script (a function body) and returns its value.
        pub async fn run(&self, script: &str) -> Value {
            self.post(&self.at("/execute/sync"), json!({"script": script, "args": []})).await
        }

        /// Polls `script` until it returns something other than null, within 10 s.
        pub async fn wait_for(&self, what: &str, script: &str) -> Value {
            let deadline = Instant::now() + PATIENCE;
            loop {
                let v = self.run(script).await;
                if !v.is_null() {
                    return v;
                }
                if Instant::now() > deadline {
                    self.screenshot(&format!("failed-{}", what.replace(' ', "-"))).await;
                    panic!("timed out waiting for {what}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        /// The element a script returns (waiting for it), as a WebDriver reference.
        async fn element(&self, script: &str) -> String {
            let v = self.wait_for("an element", script).await;
            v[ELEMENT].as_str().unwrap_or_else(|| panic!("the script returns an element, not {v}")).to_string()
        }

        /// A real click (the driver moves the pointer and clicks), not a scripted one.
        pub async fn click(&self, script: &str) {
            let e = self.element(script).await;
            self.post(&self.at(&format!("/element/{e}/click")), json!({})).await;
        }

        /// A real double click on the element (pointer actions).
        pub async fn double_click(&self, script: &str) {
            let e = self.element(script).await;
            let (down, up) = (json!({"type": "pointerDown", "button": 0}), json!({"type": "pointerUp", "button": 0}));
            let mouse = json!({"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
                {"type": "pointerMove", "duration": 0, "origin": {ELEMENT: e}, "x": 0, "y": 0},
                down, up, down, up,
            ]});
            self.post(&self.at("/actions"), json!({ "actions": [mouse] })).await;
        }

        /// Types into the element as a keyboard would (`\u{E007}` is Enter).
        pub async fn keys(&self, script: &str, text: &str) {
            let e = self.element(script).await;
            self.post(&self.at(&format!("/element/{e}/value")), json!({ "text": text })).await;
        }

        /// Saves a PNG of the viewport under `target/browser-artifacts/`.
        pub async fn screenshot(&self, name: &str) {
            let res = self.http.get(self.url(&self.at("/screenshot"))).send().await;
            let Ok(v) = (match res {
                Ok(r) => r.json::<Value>().await,
                Err(e) => Err(e),
            }) else {
                return;
            };
            let Some(b64) = v["value"].as_str() else { return };
            let png = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64 png");
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }

        pub async fn quit(mut self) {
            let session = std::mem::take(&mut self.session);
            let _ = self.http.delete(self.url(&format!("/session/{session}"))).send().await;
        }
    }

    impl Drop for Browser {
        /// A failed test still closes its browser: a plain blocking DELETE (no runtime in
        /// `drop`), then the driver goes.
        fn drop(&mut self) {
            if !self.session.is_empty() {
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let req = format!(
                        "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        self.session
                    );
                    if s.write_all(req.as_bytes()).is_ok() {
                        let _ = s.read_to_end(&mut Vec::new());
                    }
                }
            }
            let _ = self.driver.kill();
            let _ = self.driver.wait();
        }
    }
}
