//! The audit trail and resource histories, end to end through HTTP.

use crate::common::{Env, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// `(event_type, field, before, after)` of every change in `entries`, in the order given.
fn changes(entries: &Value) -> Vec<(String, String, Value, Value)> {
    let mut out = Vec::new();
    for e in entries.as_array().unwrap() {
        for c in e["changes"].as_array().unwrap() {
            out.push((
                e["event_type"].as_str().unwrap().to_string(),
                c["field"].as_str().unwrap().to_string(),
                c["before"].clone(),
                c["after"].clone(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_edits_by_two_admins_are_in_the_trail_with_before_and_after() {
    let env = Env::start().await;
    let body = json!({"login": "grace@example.com", "password": PASSWORD, "name": "Grace", "role": "admin"});
    let grace = env.call(Method::POST, "/api/v1/users", Some(&env.admin), Some(body)).await;
    assert_eq!(grace.status, 201, "{}", grace.body);
    let grace_id = grace.body["user_id"].as_str().unwrap().to_string();
    let grace_token = env.login("grace@example.com").await;

    let channel = env.channel("Support", &[]).await;
    let path = format!("/api/v1/channels/{channel}");
    let renamed = env.call(Method::PATCH, &path, Some(&env.admin), Some(json!({"name": "Help desk"}))).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let renamed = env
        .call_with(
            Method::PATCH,
            &path,
            Some(&grace_token),
            Some(json!({"name": "Help"})),
            &[("x-request-id", "req-42")],
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);

    // One resource's history: read from its stream, newest first.
    let history = env.call(Method::GET, &format!("{path}/history"), Some(&env.admin), None).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let names: Vec<_> = changes(&history.body).into_iter().filter(|c| c.1 == "name").collect();
    assert_eq!(
        names,
        vec![
            ("ChannelRenamed".into(), "name".into(), json!("Help desk"), json!("Help")),
            ("ChannelRenamed".into(), "name".into(), json!("Support"), json!("Help desk")),
            ("ChannelCreated".into(), "name".into(), Value::Null, json!("Support")),
        ]
    );
    assert_eq!(history.body[0]["actor"]["id"], grace_id.as_str());
    assert_eq!(history.body[0]["request_id"], "req-42");
    assert_eq!(history.body[0]["client"], "127.0.0.1", "an operator's address as is");

    // The trail: filtered by actor and resource, waiting for the view to catch up.
    let position = renamed.position();
    let by_grace = env
        .call(
            Method::GET,
            &format!("/api/v1/audit?actor={grace_id}&resource=channel&min_position={position}"),
            Some(&env.admin),
            None,
        )
        .await;
    assert_eq!(by_grace.status, 200, "{}", by_grace.body);
    assert_eq!(
        changes(&by_grace.body["entries"]),
        vec![("ChannelRenamed".into(), "name".into(), json!("Help desk"), json!("Help"))],
        "only Grace's edit"
    );
    let everything = env.call(Method::GET, "/api/v1/audit?limit=2", Some(&env.admin), None).await;
    assert_eq!(everything.body["entries"].as_array().unwrap().len(), 2);
    assert_eq!(everything.body["entries"][0]["event_type"], "ChannelRenamed", "newest first");
    let cursor = everything.body["next_cursor"].as_str().expect("more pages").to_string();
    let older = env.call(Method::GET, &format!("/api/v1/audit?limit=2&cursor={cursor}"), Some(&env.admin), None).await;
    assert_eq!(older.status, 200);
    // The page after the two renames: the channel's creation (its creator joined as an operator
    // in the same append, so one time; the later version first).
    let kinds: Vec<_> = older.body["entries"].as_array().unwrap().iter().map(|e| e["event_type"].clone()).collect();
    assert_eq!(kinds, vec![json!("OperatorAdded"), json!("ChannelCreated")]);

    // Secrets never reach the trail.
    let users = env.call(Method::GET, "/api/v1/audit?resource=user", Some(&env.admin), None).await;
    assert!(!users.body.to_string().contains("argon2"), "{}", users.body);

    let bad = env.call(Method::GET, "/api/v1/audit?resource=planet&from=yesterday", Some(&env.admin), None).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let fields: Vec<_> = bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, vec![json!("resource"), json!("from")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_and_operators_see_only_what_is_theirs() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (_, bob_token) = env.operator("bob@example.com", "Bob").await;
    let channel = env.channel("Support", &[ada]).await;
    let joined = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(&ada_token), None).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let started =
        env.call(Method::POST, &format!("/api/v1/public/channels/{channel}/sessions"), None, Some(json!({}))).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let session = started.body["session_id"].as_str().unwrap().to_string();
    let visitor = started.body["visitor_token"].as_str().unwrap().to_string();

    // A visitor token is not an operator's: no trail, no history.
    for path in ["/api/v1/audit".to_string(), format!("/api/v1/conversations/{session}/history")] {
        let a = env.call(Method::GET, &path, Some(&visitor), None).await;
        assert_eq!(a.status, 401, "{path}: {}", a.body);
    }
    // Operators: not the trail, not someone else's conversation, their own yes.
    assert_eq!(env.call(Method::GET, "/api/v1/audit", Some(&ada_token), None).await.status, 403);
    let history = format!("/api/v1/conversations/{session}/history");
    assert_eq!(env.call(Method::GET, &history, Some(&bob_token), None).await.status, 403);
    let own = env.call(Method::GET, &history, Some(&ada_token), None).await;
    assert_eq!(own.status, 200, "{}", own.body);
    let entries = own.body.as_array().unwrap();
    assert_eq!(entries.last().unwrap()["event_type"], "SessionStarted", "oldest last");
    assert!(!own.body.to_string().contains(&visitor[3..]), "the visitor's token never shows");
    assert!(!own.body.to_string().contains("visitor_token"), "not even as a redacted field: {}", own.body);
    let client = entries.last().unwrap()["client"].as_str().unwrap();
    assert!(client.starts_with("h:") && client.len() == 34 && !client.contains("127.0.0.1"), "{client}");
    // Admins read any conversation's history; an unknown one is 404.
    assert_eq!(env.call(Method::GET, &history, Some(&env.admin), None).await.status, 200);
    let unknown = format!("/api/v1/conversations/{}/history", uuid::Uuid::now_v7());
    assert_eq!(env.call(Method::GET, &unknown, Some(&env.admin), None).await.status, 404);
    // A user's own history, not another's.
    assert_eq!(
        env.call(Method::GET, &format!("/api/v1/users/{ada}/history"), Some(&ada_token), None).await.status,
        200
    );
    assert_eq!(
        env.call(Method::GET, &format!("/api/v1/users/{ada}/history"), Some(&bob_token), None).await.status,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_as_of_a_moment_between_two_rule_edits_shows_the_earlier_rules() {
    let env = Env::start().await;
    let channel = env.channel("Support", &[]).await;
    let path = format!("/api/v1/channels/{channel}");
    let first =
        env.call(Method::POST, &format!("{path}/rules"), Some(&env.admin), Some(json!({"url_regex": "/a"}))).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let between = first.position();
    let second =
        env.call(Method::POST, &format!("{path}/rules"), Some(&env.admin), Some(json!({"url_regex": "/b"}))).await;
    assert_eq!(second.status, 201, "{}", second.body);
    let regexes = |form: &Value| -> Vec<Value> {
        form["rules"].as_array().unwrap().iter().map(|r| r["url_regex"].clone()).collect()
    };

    let now = env.call(Method::GET, &path, Some(&env.admin), None).await;
    assert_eq!(regexes(&now.body), vec![json!("/a"), json!("/b")]);
    let then = env.call(Method::GET, &format!("{path}?as_of={between}"), Some(&env.admin), None).await;
    assert_eq!(then.status, 200, "{}", then.body);
    assert_eq!(regexes(&then.body), vec![json!("/a")], "as of the first rule's position");

    // The same by time: the first rule's recording time, read from the channel's history.
    let history = env.call(Method::GET, &format!("{path}/history"), Some(&env.admin), None).await;
    let at = history.body.as_array().unwrap()[1]["recorded_at"].as_str().unwrap().to_string();
    let then = env.call(Method::GET, &format!("{path}?as_of={at}"), Some(&env.admin), None).await;
    assert_eq!(regexes(&then.body), vec![json!("/a")], "as of {at}");
    let before = env.call(Method::GET, &format!("{path}?as_of=2000-01-01T00:00:00Z"), Some(&env.admin), None).await;
    assert_eq!(before.status, 404, "the channel did not exist yet");
    let bad = env.call(Method::GET, &format!("{path}?as_of=yesterday"), Some(&env.admin), None).await;
    assert_eq!((bad.status, bad.body["errors"][0]["field"].as_str()), (422, Some("as_of")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_as_of_a_past_moment_counts_what_had_happened_then() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    assert_eq!(
        env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(&ada_token), None).await.status,
        200
    );
    let mut positions = Vec::new();
    for (i, rating) in [(0, 5), (1, 1)] {
        let started = env
            .call(
                Method::POST,
                &format!("/api/v1/public/channels/{channel}/sessions"),
                None,
                Some(json!({"name": format!("V{i}")})),
            )
            .await;
        let (id, visitor) =
            (started.body["session_id"].as_str().unwrap(), started.body["visitor_token"].as_str().unwrap());
        let said = env
            .call(
                Method::POST,
                &format!("/api/v1/public/sessions/{id}/messages"),
                Some(visitor),
                Some(json!({"text": "hi"})),
            )
            .await;
        assert_eq!(said.status, 201, "{}", said.body);
        let rated = env
            .call(
                Method::POST,
                &format!("/api/v1/public/sessions/{id}/rating"),
                Some(visitor),
                Some(json!({"value": rating})),
            )
            .await;
        assert_eq!(rated.status, 201, "{}", rated.body);
        positions.push(rated.position());
    }
    assert_eq!(report(&env, &channel, format!("min_position={}", positions[1])).await, (json!(2), json!(50.0)), "now");
    assert_eq!(
        report(&env, &channel, format!("as_of={}", positions[0])).await,
        (json!(1), json!(100.0)),
        "after the first conversation only"
    );
    let bad = env.call(Method::GET, "/api/v1/reports/conversations?as_of=soon", Some(&env.admin), None).await;
    assert_eq!((bad.status, bad.body["errors"][0]["field"].as_str()), (422, Some("as_of")));
}

/// `(count, satisfaction_percent)` of the channel's row in the conversations report.
async fn report(env: &Env, channel: &str, query: String) -> (Value, Value) {
    let path = format!("/api/v1/reports/conversations?group_by=channel&measures=count,satisfaction_percent&{query}");
    let a = env.call(Method::GET, &path, Some(&env.admin), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let row = a.body["rows"].as_array().unwrap().iter().find(|r| r["channel"] == channel).cloned().unwrap();
    (row["count"].clone(), row["satisfaction_percent"].clone())
}

/// A second admin, Grace, and her token.
async fn second_admin(env: &Env) -> String {
    let body = json!({"login": "grace@example.com", "password": PASSWORD, "name": "Grace", "role": "admin"});
    let grace = env.call(Method::POST, "/api/v1/users", Some(&env.admin), Some(body)).await;
    assert_eq!(grace.status, 201, "{}", grace.body);
    env.login("grace@example.com").await
}

/// A channel's history (newest first), checked to be what the trail (the projector) holds
/// for it once it has caught up with `position`.
async fn channel_history(env: &Env, channel: &str, position: &str) -> Vec<Value> {
    let history = env.call(Method::GET, &format!("/api/v1/channels/{channel}/history"), Some(&env.admin), None).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let path = format!("/api/v1/audit?resource=channel&limit=200&min_position={position}");
    let trail = env.call(Method::GET, &path, Some(&env.admin), None).await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    let stream = format!("channel-{channel}");
    let in_trail: Vec<Value> =
        trail.body["entries"].as_array().unwrap().iter().filter(|e| e["stream_id"] == stream).cloned().collect();
    assert_eq!(history.body.as_array().unwrap(), &in_trail, "the history and the trail agree");
    in_trail
}

/// `(event_type, changes)` of each entry.
fn by_event(entries: &[Value]) -> Vec<(String, Value)> {
    entries.iter().map(|e| (e["event_type"].as_str().unwrap().to_string(), e["changes"].clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_color_reset_records_what_it_reset_and_the_next_option_change_only_its_own_option() {
    let env = Env::start().await;
    let grace = second_admin(&env).await;
    let channel = env.channel("Support", &[]).await;
    let options = format!("/api/v1/channels/{channel}/options");
    let dark = env.call(Method::PUT, &options, Some(&env.admin), Some(json!({"button_color": "#112233"}))).await;
    assert_eq!(dark.status, 200, "{}", dark.body);
    let reset = env.call(Method::POST, &format!("{options}/reset-colors"), Some(&grace), None).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let hi = env.call(Method::PUT, &options, Some(&env.admin), Some(json!({"welcome_message": "Hi!"}))).await;
    assert_eq!(hi.status, 200, "{}", hi.body);

    let entries = channel_history(&env, &channel, &hi.position()).await;
    assert_eq!(
        by_event(&entries[..3]),
        vec![
            (
                "ChannelOptionsChanged".into(),
                json!([{"field": "options.welcome_message", "before": "Hello, how may I help you?", "after": "Hi!"}])
            ),
            (
                "ChannelColorsReset".into(),
                json!([{"field": "options.button_color", "before": "#112233", "after": "#875A7B"}])
            ),
            (
                "ChannelOptionsChanged".into(),
                json!([{"field": "options.button_color", "before": "#875A7B", "after": "#112233"}])
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rule_is_an_addition_and_an_update_names_its_rule() {
    let env = Env::start().await;
    let channel = env.channel("Support", &[]).await;
    let rules = format!("/api/v1/channels/{channel}/rules");
    let mut ids = Vec::new();
    for url in ["/a", "/b"] {
        let added = env.call(Method::POST, &rules, Some(&env.admin), Some(json!({"url_regex": url}))).await;
        assert_eq!(added.status, 201, "{}", added.body);
        let location = added.headers["location"].to_str().unwrap();
        ids.push(location.rsplit('/').next().unwrap().to_string());
    }
    let (r1, r2) = (&ids[0], &ids[1]);
    let updated =
        env.call(Method::PUT, &format!("{rules}/{r1}"), Some(&env.admin), Some(json!({"url_regex": "/c"}))).await;
    assert_eq!(updated.status, 200, "{}", updated.body);

    let entries = channel_history(&env, &channel, &updated.position()).await;
    assert_eq!(
        by_event(&entries[..2]),
        vec![
            ("RuleUpdated".into(), json!([{"field": "rules.url_regex", "item": r1, "before": "/a", "after": "/c"}])),
            (
                "RuleAdded".into(),
                json!([{"field": "rules", "item": r2, "before": null, "after": {
                    "id": r2, "action": "show", "timer_seconds": 0, "url_regex": "/b", "countries": [], "chatbot": null
                }}])
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_added_joined_and_left_are_changes_of_that_operator_only() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let channel = env.channel("Support", &[ada, bob]).await;
    let path = format!("/api/v1/channels/{channel}");
    for token in [&ada_token, &bob_token] {
        let joined = env.call(Method::POST, &format!("{path}/join"), Some(token), None).await;
        assert_eq!(joined.status, 200, "{}", joined.body);
    }
    let left = env.call(Method::POST, &format!("{path}/leave"), Some(&ada_token), None).await;
    assert_eq!(left.status, 200, "{}", left.body);

    let entries = channel_history(&env, &channel, &left.position()).await;
    let joined = |who: Uuid, before: bool| json!([{"field": "operators.joined", "item": who, "before": before, "after": !before}]);
    assert_eq!(
        by_event(&entries[..4]),
        vec![
            ("OperatorLeft".into(), joined(ada, true)),
            ("OperatorJoined".into(), joined(bob, false)),
            ("OperatorJoined".into(), joined(ada, false)),
            (
                "OperatorAdded".into(),
                json!([{"field": "operators", "item": bob, "before": null, "after": {"id": bob, "joined": false}}])
            ),
        ]
    );
    assert!(!serde_json::to_string(&entries).unwrap().contains("user_id"), "no operator replaces another");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversations_history_adds_each_message_and_a_rating_sets_the_rating() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Support", &[ada]).await;
    let joined = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(&ada_token), None).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let started =
        env.call(Method::POST, &format!("/api/v1/public/channels/{channel}/sessions"), None, Some(json!({}))).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let session = started.body["session_id"].as_str().unwrap().to_string();
    let visitor = started.body["visitor_token"].as_str().unwrap().to_string();
    let said = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{session}/messages"),
            Some(&visitor),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(said.status, 201, "{}", said.body);
    let answered = env
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{session}/messages"),
            Some(&ada_token),
            Some(json!({"text": "hello"})),
        )
        .await;
    assert_eq!(answered.status, 201, "{}", answered.body);
    let rated = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{session}/rating"),
            Some(&visitor),
            Some(json!({"value": 5})),
        )
        .await;
    assert_eq!(rated.status, 201, "{}", rated.body);

    let history =
        env.call(Method::GET, &format!("/api/v1/conversations/{session}/history"), Some(&ada_token), None).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let entries = history.body.as_array().unwrap();
    // Each message (the welcome, "hi", "hello", the rating's) is one item added, nothing else.
    let posted: Vec<&Value> = entries.iter().filter(|e| e["event_type"] == "MessagePosted").collect();
    let texts: Vec<&Value> = posted.iter().map(|e| &e["changes"][0]["after"]["text"]).collect();
    assert_eq!(texts, vec!["hello", "hi", "Hello, how may I help you?"], "newest first");
    for e in &posted {
        let changes = e["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{e}");
        let c = &changes[0];
        assert_eq!(
            (&c["field"], &c["before"], &c["item"]),
            (&json!("messages"), &Value::Null, &c["after"]["id"]),
            "{e}"
        );
    }
    let rating = entries.iter().find(|e| e["event_type"] == "ConversationRated").unwrap();
    let fields: Vec<&Value> = rating["changes"].as_array().unwrap().iter().map(|c| &c["field"]).collect();
    assert_eq!(fields, vec!["messages", "rating.channel_id", "rating.operator_id", "rating.value"], "{rating}");
    assert_eq!(rating["changes"][0]["after"]["text"], "Rating: Happy");
    assert_eq!(rating["changes"][3]["after"], 5);
    assert_eq!(rating["changes"][2]["after"], ada.to_string());
}
