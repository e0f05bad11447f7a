//! Channels over real HTTP: an in-process server on a socket, real stores, projectors
//! running, and a manual clock so that inactivity does not take 30 real minutes.

use std::time::Duration;

use crate::common::{Env, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_story_from_default_channel_to_an_idle_operator_leaving() {
    let env = Env::start().await;
    let admin = env.admin.clone();

    // The default channel exists, with Odoo's defaults.
    let dash = env.call(Method::GET, "/api/v1/channels", Some(&admin), None).await;
    assert_eq!(dash.status, 200, "{}", dash.body);
    let default = &dash.body["channels"][0];
    assert_eq!(default["name"], "YourWebsite.com");
    let default_id = default["channel_id"].as_str().unwrap();
    let form = env.call(Method::GET, &format!("/api/v1/channels/{default_id}"), Some(&admin), None).await;
    assert_eq!(form.body["options"]["welcome_message"], "Hello, how may I help you?");
    assert_eq!(form.body["options"]["notification_text"], "Have a Question? Chat with us.");
    assert_eq!(form.body["options"]["button_color"], "#875A7B");
    assert_eq!(form.body["options"]["header_text_color"], "#FFFFFF");

    // An admin creates "Support" and is its operator.
    let created = env.call(Method::POST, "/api/v1/channels", Some(&admin), Some(json!({"name": "Support"}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["channel_id"].as_str().unwrap().to_string();
    assert_eq!(created.headers["location"], format!("/api/v1/channels/{id}").as_str());
    assert_eq!(created.body["operators"][0]["name"], "Administrator");
    let path = |rest: &str| format!("/api/v1/channels/{id}{rest}");

    // A second operator, created right in the operators tab.
    let new_operator = json!({"login": "ada@example.com", "password": PASSWORD, "name": "Ada Lovelace", "languages": ["en", "fr_BE"], "country": "BE"});
    let added = env.call(Method::POST, &path("/operators/new"), Some(&admin), Some(new_operator)).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["operators"].as_array().unwrap().len(), 2);
    let ada: Uuid = added.body["operators"][1]["user_id"].as_str().unwrap().parse().unwrap();
    let ada_token = env.login("ada@example.com").await;
    // And an existing user added to it.
    let (bob, _) = env.operator("bob@example.com", "Bob").await;
    let bob_added = env.call(Method::POST, &path("/operators"), Some(&admin), Some(json!({"user_id": bob}))).await;
    assert_eq!(bob_added.body["operators"].as_array().unwrap().len(), 3);

    // Options, then a color reset that keeps the texts.
    let opts =
        json!({"button_color": "#000000", "welcome_message": "Hi! How can we help?", "input_placeholder": "Ask us"});
    let changed = env.call(Method::PUT, &path("/options"), Some(&admin), Some(opts)).await;
    assert_eq!((changed.status, changed.body["options"]["button_color"].as_str()), (200, Some("#000000")));
    let reset = env.call(Method::POST, &path("/options/reset-colors"), Some(&admin), None).await;
    assert_eq!(reset.body["options"]["button_color"], "#875A7B");
    assert_eq!(reset.body["options"]["welcome_message"], "Hi! How can we help?");

    // Rules, in order.
    let rules = [
        json!({"action": "show", "url_regex": "/shop"}),
        json!({"action": "open_automatically", "timer_seconds": 5, "url_regex": "/shop", "countries": ["BE"]}),
        json!({"action": "hide", "url_regex": "^/checkout"}),
    ];
    for r in rules {
        let a = env.call(Method::POST, &path("/rules"), Some(&admin), Some(r)).await;
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let form = env.call(Method::GET, &path(""), Some(&admin), None).await;
    let actions: Vec<_> =
        form.body["rules"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["show", "open_automatically", "hide"]);
    assert_eq!(form.headers["etag"], format!("\"{}\"", form.body["version"]).as_str());

    // The operator sets the name visitors see.
    let me =
        env.call(Method::PATCH, "/api/v1/me", Some(&ada_token), Some(json!({"chat_name": "Ada from Support"}))).await;
    assert_eq!((me.status, me.body["display_name"].as_str()), (200, Some("Ada from Support")), "{}", me.body);

    // Before anyone joins, the widget shows no button on /shop.
    let init_url = format!("/api/v1/public/channels/{id}/init?url=/shop");
    let env_ref = &env;
    let init = |country: &'static str| {
        let url = init_url.clone();
        async move { env_ref.call_with(Method::GET, &url, None, None, &[("CF-IPCountry", country)]).await }
    };
    let before = init("BE").await;
    assert_eq!((before.status, before.body["show_button"].as_bool()), (200, Some(false)), "{}", before.body);

    // The operator joins and appears on the dashboard; admins see who is joined.
    let joined = env.call(Method::POST, &path("/join"), Some(&ada_token), None).await;
    assert_eq!((joined.status, joined.body["joined"].as_bool()), (200, Some(true)), "{}", joined.body);
    let at = joined.position();
    let dash = env.call(Method::GET, &format!("/api/v1/channels?min_position={at}"), Some(&ada_token), None).await;
    let support =
        dash.body["channels"].as_array().unwrap().iter().find(|c| c["channel_id"] == id.as_str()).unwrap().clone();
    assert_eq!((support["is_joined"].as_bool(), support["joined_count"].as_u64()), (Some(true), Some(1)));
    assert_eq!(support["operator_count"], 3);
    let presence = env.call(Method::GET, &path("/presence"), Some(&admin), None).await;
    assert_eq!(presence.body["joined"][0]["user_id"], ada.to_string());
    assert_eq!(presence.body["joined"][0]["status"], "online", "joining brings an operator online");
    assert_eq!(presence.body["joined"][0]["display_name"], "Ada from Support");

    // A visitor from Belgium on /shop gets the Belgian rule; from France, the generic one.
    let mut from_be = init("BE").await;
    for _ in 0..100 {
        if from_be.body["operator_available"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await; // the users view catches up
        from_be = init("BE").await;
    }
    assert_eq!(from_be.body["rule"]["action"], "open_automatically", "{}", from_be.body);
    assert_eq!(
        (from_be.body["rule"]["timer_seconds"].as_u64(), from_be.body["show_button"].as_bool()),
        (Some(5), Some(true))
    );
    assert_eq!(from_be.body["options"]["welcome_message"], "Hi! How can we help?");
    let from_fr = init("FR").await;
    assert_eq!(from_fr.body["rule"]["action"], "show");
    let checkout = env.call(Method::GET, &format!("/api/v1/public/channels/{id}/init?url=/checkout"), None, None).await;
    assert_eq!(
        (checkout.body["rule"]["action"].as_str(), checkout.body["show_button"].as_bool()),
        (Some("hide"), Some(false))
    );

    // The widget snippet, its loader script and the direct-link page are served.
    let widget = env.call(Method::GET, &path("/widget"), Some(&admin), None).await;
    let script = widget.body["script"].as_str().unwrap();
    assert!(script.contains(&format!("/widget/{id}/loader.js")), "{script}");
    let loader = env.call(Method::GET, &format!("/widget/{id}/loader.js"), None, None).await;
    assert_eq!(loader.status, 200);
    assert!(loader.headers["content-type"].to_str().unwrap().starts_with("application/javascript"));
    assert!(loader.body.as_str().unwrap().contains(&format!("\"{id}\"")), "the loader names its channel");
    let link = widget.body["direct_link"].as_str().unwrap();
    let page = env.http.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));

    // 31 minutes without activity: the operator is removed from the channel and offline.
    env.clock.advance(chrono::Duration::minutes(31));
    // The admin's own requests are activity; the operator's absence is what counts.
    let gone = commands::presence::sweep(&env.state).await.unwrap();
    assert_eq!(gone, vec![ada]);
    let presence = env.call(Method::GET, &path("/presence"), Some(&admin), None).await;
    assert_eq!(presence.body["joined"], json!([]));
    let log = env
        .call(Method::GET, &format!("/api/v1/events?stream=channel-{id}&order=desc&limit=1"), Some(&admin), None)
        .await;
    assert_eq!(log.body["events"][0]["event_type"], "OperatorLeft");
    assert_eq!(log.body["events"][0]["data"]["reason"], "inactive");
    let user_log = env
        .call(Method::GET, &format!("/api/v1/events?stream=user-{ada}&order=desc&limit=1"), Some(&admin), None)
        .await;
    assert_eq!(user_log.body["events"][0]["data"], json!({"status": "offline", "reason": "inactive"}));
    assert!(commands::presence::sweep(&env.state).await.unwrap().is_empty(), "once is enough");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_is_a_clear_problem_and_writes_nothing() {
    let env = Env::start().await;
    let admin = env.admin.clone();
    let created = env.call(Method::POST, "/api/v1/channels", Some(&admin), Some(json!({"name": "Support"}))).await;
    let id = created.body["channel_id"].as_str().unwrap().to_string();
    let path = |rest: &str| format!("/api/v1/channels/{id}{rest}");
    let version_before = created.body["version"].as_u64().unwrap();

    let bad_regex = env.call(Method::POST, &path("/rules"), Some(&admin), Some(json!({"url_regex": "/shop("}))).await;
    assert_eq!(bad_regex.status, 422);
    assert_eq!(bad_regex.body["errors"][0]["field"], "url_regex");
    assert!(bad_regex.body["errors"][0]["message"].as_str().unwrap().contains('^'), "points at the error");
    let huge =
        env.call(Method::POST, &path("/rules"), Some(&admin), Some(json!({"url_regex": "(a{1000}){1000}"}))).await;
    assert_eq!(huge.status, 422);
    assert!(huge.body["errors"][0]["message"].as_str().unwrap().contains("too complex"));
    let country = env.call(Method::POST, &path("/rules"), Some(&admin), Some(json!({"countries": ["BE", "XX"]}))).await;
    assert_eq!((country.status, country.body["errors"][0]["field"].as_str()), (422, Some("countries[1]")));
    let color = env.call(Method::PUT, &path("/options"), Some(&admin), Some(json!({"header_color": "blue"}))).await;
    insta::assert_json_snapshot!("bad_color", color.body);
    let empty_name = env.call(Method::POST, "/api/v1/channels", Some(&admin), Some(json!({"name": " "}))).await;
    assert_eq!((empty_name.status, empty_name.body["errors"][0]["field"].as_str()), (422, Some("name")));
    let not_json = env
        .call_with(Method::POST, "/api/v1/channels", Some(&admin), None, &[("content-type", "application/json")])
        .await;
    assert_eq!(not_json.status, 400);

    let admin_id = env.call(Method::GET, &path(""), Some(&admin), None).await.body["operators"][0]["user_id"].clone();
    let twice = env.call(Method::POST, &path("/operators"), Some(&admin), Some(json!({"user_id": admin_id}))).await;
    assert_eq!((twice.status, twice.body["code"].as_str()), (409, Some("already-operator")));
    let stranger = Uuid::now_v7();
    let unknown = env.call(Method::POST, &path("/operators"), Some(&admin), Some(json!({"user_id": stranger}))).await;
    assert_eq!((unknown.status, unknown.body["code"].as_str()), (422, Some("unknown-user")));
    let not_op = env.call(Method::DELETE, &path(&format!("/operators/{stranger}")), Some(&admin), None).await;
    assert_eq!((not_op.status, not_op.body["code"].as_str()), (409, Some("not-operator")));
    let no_rule = env.call(Method::DELETE, &path(&format!("/rules/{stranger}")), Some(&admin), None).await;
    assert_eq!(no_rule.status, 404);

    // Nothing above wrote anything.
    let form = env.call(Method::GET, &path(""), Some(&admin), None).await;
    assert_eq!(form.body["version"].as_u64().unwrap(), version_before);

    // A stale If-Match is a conflict that names the current version.
    let renamed = env
        .call_with(
            Method::PATCH,
            &path(""),
            Some(&admin),
            Some(json!({"name": "Help"})),
            &[("if-match", &format!("\"{version_before}\""))],
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let stale = env
        .call_with(
            Method::PATCH,
            &path(""),
            Some(&admin),
            Some(json!({"name": "Aid"})),
            &[("if-match", &format!("\"{version_before}\""))],
        )
        .await;
    assert_eq!((stale.status, stale.body["code"].as_str()), (409, Some("version-conflict")));
    assert_eq!(stale.body["current_version"].as_u64(), Some(version_before + 1));
    let garbage = env
        .call_with(Method::PATCH, &path(""), Some(&admin), Some(json!({"name": "Aid"})), &[("if-match", "yesterday")])
        .await;
    assert_eq!(garbage.status, 400);

    // An archived channel cannot be edited or joined.
    assert_eq!(env.call(Method::POST, &path("/archive"), Some(&admin), None).await.status, 200);
    let edit = env.call(Method::PATCH, &path(""), Some(&admin), Some(json!({"name": "Again"}))).await;
    assert_eq!((edit.status, edit.body["code"].as_str()), (409, Some("channel-archived")));
    let join = env.call(Method::POST, &path("/join"), Some(&admin), None).await;
    assert_eq!(join.status, 409);
    let missing = env.call(Method::GET, &format!("/api/v1/channels/{}", Uuid::now_v7()), Some(&admin), None).await;
    assert_eq!(missing.status, 404);
    let malformed = env.call(Method::GET, "/api/v1/channels/not-a-uuid", Some(&admin), None).await;
    assert_eq!(malformed.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_edited_reordered_and_removed() {
    let env = Env::start().await;
    let admin = env.admin.clone();
    let created = env.call(Method::POST, "/api/v1/channels", Some(&admin), Some(json!({"name": "Sales"}))).await;
    let id = created.body["channel_id"].as_str().unwrap().to_string();
    let path = |rest: &str| format!("/api/v1/channels/{id}{rest}");
    let first = env.call(Method::POST, &path("/rules"), Some(&admin), Some(json!({"url_regex": "/a"}))).await;
    let second = env.call(Method::POST, &path("/rules"), Some(&admin), Some(json!({"url_regex": "/b"}))).await;
    let ids: Vec<String> =
        second.body["rules"].as_array().unwrap().iter().map(|r| r["rule_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(first.headers["location"], format!("/api/v1/channels/{id}/rules/{}", ids[0]).as_str());
    let edited = env
        .call(
            Method::PUT,
            &path(&format!("/rules/{}", ids[0])),
            Some(&admin),
            Some(json!({"action": "hide", "url_regex": "/a"})),
        )
        .await;
    assert_eq!(edited.body["rules"][0]["action"], "hide");
    let bad_order =
        env.call(Method::PUT, &path("/rules/order"), Some(&admin), Some(json!({"rule_ids": [ids[1]]}))).await;
    assert_eq!(bad_order.status, 422);
    let reordered =
        env.call(Method::PUT, &path("/rules/order"), Some(&admin), Some(json!({"rule_ids": [ids[1], ids[0]]}))).await;
    assert_eq!(reordered.body["rules"][0]["url_regex"], "/b");
    let removed = env.call(Method::DELETE, &path(&format!("/rules/{}", ids[1])), Some(&admin), None).await;
    assert_eq!(removed.body["rules"].as_array().unwrap().len(), 1);
}

/// Who may call what: no token, a visitor's (not an operator's) token, an operator, an admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix() {
    let env = Env::start().await;
    let admin = env.admin.clone();
    let (_, operator) = env.operator("op@example.com", "Op").await;
    let created = env.call(Method::POST, "/api/v1/channels", Some(&admin), Some(json!({"name": "Matrix"}))).await;
    let id = created.body["channel_id"].as_str().unwrap().to_string();
    let rule = env.call(Method::POST, &format!("/api/v1/channels/{id}/rules"), Some(&admin), Some(json!({}))).await;
    let rule_id = rule.body["rules"][0]["rule_id"].as_str().unwrap().to_string();
    let c = |rest: &str| format!("/api/v1/channels/{id}{rest}");
    let someone = Uuid::now_v7();

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Who {
        AnyOperator,
        Admin,
    }
    let routes: Vec<(Method, String, Option<Value>, Who)> = vec![
        (Method::GET, "/api/v1/channels".into(), None, Who::AnyOperator),
        (Method::GET, c(""), None, Who::AnyOperator),
        (Method::POST, "/api/v1/channels".into(), Some(json!({"name": "X"})), Who::Admin),
        (Method::PATCH, c(""), Some(json!({"name": "Matrix"})), Who::Admin),
        (Method::PUT, c("/options"), Some(json!({})), Who::Admin),
        (Method::POST, c("/options/reset-colors"), None, Who::Admin),
        (Method::POST, c("/operators"), Some(json!({"user_id": someone})), Who::Admin),
        (Method::DELETE, c(&format!("/operators/{someone}")), None, Who::Admin),
        (Method::POST, c("/rules"), Some(json!({})), Who::Admin),
        (Method::PUT, c(&format!("/rules/{rule_id}")), Some(json!({})), Who::Admin),
        (Method::PUT, c("/rules/order"), Some(json!({"rule_ids": []})), Who::Admin),
        (Method::DELETE, c(&format!("/rules/{someone}")), None, Who::Admin),
        (Method::POST, c("/leave"), None, Who::AnyOperator),
        (Method::GET, c("/presence"), None, Who::Admin),
        (Method::GET, "/api/v1/events".into(), None, Who::Admin),
        (Method::GET, "/api/v1/streams".into(), None, Who::Admin),
        (Method::POST, c("/archive"), None, Who::Admin),
    ];
    let visitor = format!("vt_{}_not-an-operator-token", Uuid::now_v7().simple());
    for (method, path, body, who) in routes {
        let none = env.call(method.clone(), &path, None, body.clone()).await;
        assert_eq!(none.status, 401, "{method} {path} without a token");
        assert!(none.headers.contains_key("www-authenticate"));
        let vis = env.call(method.clone(), &path, Some(&visitor), body.clone()).await;
        assert_eq!(vis.status, 401, "{method} {path} with a visitor's token");
        let op = env.call(method.clone(), &path, Some(&operator), body.clone()).await;
        match who {
            Who::Admin => assert_eq!(
                (op.status, op.body["code"].as_str()),
                (403, Some("forbidden")),
                "{method} {path} as operator"
            ),
            Who::AnyOperator => assert!(op.status < 400, "{method} {path} as operator: {} {}", op.status, op.body),
        }
        let ad = env.call(method.clone(), &path, Some(&admin), body.clone()).await;
        assert!(ad.status != 401 && ad.status != 403, "{method} {path} as admin: {} {}", ad.status, ad.body);
    }
}
