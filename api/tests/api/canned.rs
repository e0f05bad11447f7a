//! Canned responses and chat commands over real HTTP: operators manage their responses,
//! answer with them by id or by typing `:shortcut` (counted, most used first), and type
//! commands whose answers only they see.

use crate::common::{Answer, Env};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const CANNED: &str = "/api/v1/canned-responses";

async fn create(env: &Env, token: &str, body: Value) -> Answer {
    env.call(Method::POST, CANNED, Some(token), Some(body)).await
}

/// A conversation of the channel, routed to its only joined operator; (session, visitor token).
async fn conversation(env: &Env, channel: &str, operator_token: &str) -> (String, String) {
    let joined = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(operator_token), None).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let started = env
        .call(
            Method::POST,
            &format!("/api/v1/public/channels/{channel}/sessions"),
            None,
            Some(json!({"name": "Marie", "url": "/shop"})),
        )
        .await;
    assert_eq!((started.status, started.body["status"].as_str()), (201, Some("active")), "{}", started.body);
    let session = started.body["session_id"].as_str().unwrap().to_string();
    (session, started.body["visitor_token"].as_str().unwrap().to_string())
}

async fn texts(env: &Env, session: &str, token: &str) -> Vec<String> {
    let a = env.call(Method::GET, &format!("/api/v1/conversations/{session}/messages"), Some(token), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_string()).collect()
}

fn shortcuts(list: &Answer) -> Vec<String> {
    assert_eq!(list.status, 200, "{}", list.body);
    list.body["canned_responses"].as_array().unwrap().iter().map(|c| c["shortcut"].as_str().unwrap().into()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_answer_with_canned_responses_and_uses_order_them() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let channel = env.channel("Support", &[ada, bob]).await;

    // Ada's own responses; the shortcut is normalised.
    let hello =
        create(&env, &ada_token, json!({"shortcut": ":Hello", "text": "Hello! How can I help you today?"})).await;
    assert_eq!(hello.status, 201, "{}", hello.body);
    assert_eq!(hello.headers["etag"], "\"0\"");
    insta::assert_json_snapshot!("canned_created", hello.body, {
        ".canned_response_id" => "[id]", ".owner_id" => "[id]"
    });
    assert_eq!(hello.body["owner_id"], ada.to_string());
    let hello_id = hello.body["canned_response_id"].as_str().unwrap().to_string();
    let thanks = create(&env, &ada_token, json!({"shortcut": "thanks", "text": "Thank you for your patience."})).await;
    assert_eq!(thanks.status, 201, "{}", thanks.body);

    // Rejections: a duplicate shortcut (per owner), bad fields, sharing without being an admin.
    let duplicate = create(&env, &ada_token, json!({"shortcut": "HELLO", "text": "Hi"})).await;
    insta::assert_json_snapshot!("canned_duplicate_shortcut", duplicate.body);
    let bad = create(&env, &ada_token, json!({"shortcut": "two words", "text": " "})).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let fields: Vec<_> = bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, vec![json!("shortcut"), json!("text")]);
    let share = create(&env, &ada_token, json!({"shortcut": "x", "text": "x", "shared": true})).await;
    assert_eq!((share.status, share.body["code"].as_str()), (403, Some("forbidden")));
    let for_bob = create(&env, &ada_token, json!({"shortcut": "x", "text": "x", "owner_id": bob})).await;
    assert_eq!((for_bob.status, for_bob.body["code"].as_str()), (403, Some("not-your-canned-response")));
    // Bob has his own `hello`: shortcuts are unique per owner only.
    let bobs = create(&env, &bob_token, json!({"shortcut": "hello", "text": "Bob says hi."})).await;
    assert_eq!(bobs.status, 201, "{}", bobs.body);
    let bobs_id = bobs.body["canned_response_id"].as_str().unwrap().to_string();
    // The admin shares one with every operator.
    let bye = create(&env, &env.admin, json!({"shortcut": "bye", "text": "Goodbye!", "shared": true})).await;
    assert_eq!((bye.status, bye.body["shared"].as_bool()), (201, Some(true)), "{}", bye.body);
    let bye_id = bye.body["canned_response_id"].as_str().unwrap().to_string();

    let (session, visitor) = conversation(&env, &channel, &ada_token).await;
    let post = |body: Value| {
        let env = &env;
        let path = format!("/api/v1/conversations/{session}/messages");
        let token = ada_token.clone();
        async move { env.call(Method::POST, &path, Some(&token), Some(body)).await }
    };

    // By id (the shared one), by typing the shortcut (own, any case), and unknown shortcuts as typed.
    let by_id = post(json!({"canned_response_id": bye_id})).await;
    assert_eq!((by_id.status, by_id.body["text"].as_str()), (201, Some("Goodbye!")), "{}", by_id.body);
    env.clock.advance(chrono::Duration::seconds(1));
    let typed = post(json!({"text": ":HELLO"})).await;
    assert_eq!(typed.body["text"], "Hello! How can I help you today?", "{}", typed.body);
    env.clock.advance(chrono::Duration::seconds(1));
    for _ in 0..2 {
        let t = post(json!({"text": " :thanks "})).await;
        assert_eq!(t.body["text"], "Thank you for your patience.");
    }
    let unknown = post(json!({"text": ":nope"})).await;
    assert_eq!((unknown.status, unknown.body["text"].as_str()), (201, Some(":nope")));
    // A retried post (same message id) is counted once.
    let mid = Uuid::now_v7();
    let first = post(json!({"message_id": mid, "canned_response_id": hello_id})).await;
    let again = post(json!({"message_id": mid, "canned_response_id": hello_id})).await;
    assert_eq!((first.status, again.status, &again.body), (201, 201, &first.body));

    // Refused: someone else's unshared response, an unknown id, both text and id, nothing.
    for (body, field) in [
        (json!({"canned_response_id": bobs_id}), "canned_response_id"),
        (json!({"canned_response_id": Uuid::now_v7()}), "canned_response_id"),
        (json!({"canned_response_id": hello_id, "text": "hi"}), "text"),
        (json!({}), "text"),
    ] {
        let a = post(body.clone()).await;
        assert_eq!((a.status, a.body["errors"][0]["field"].as_str()), (422, Some(field)), "{body}: {}", a.body);
    }
    // Visitors cannot use canned responses.
    let visitor_try = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{session}/messages"),
            Some(&visitor),
            Some(json!({"canned_response_id": hello_id})),
        )
        .await;
    assert_eq!(visitor_try.status, 400, "{}", visitor_try.body);

    let seen = texts(&env, &session, &ada_token).await;
    assert_eq!(
        seen[1..],
        [
            "Goodbye!",
            "Hello! How can I help you today?",
            "Thank you for your patience.",
            "Thank you for your patience.",
            ":nope",
            "Hello! How can I help you today?"
        ]
    );

    // Most used first (ties: most recently used first); the caller's own and the shared ones.
    let list =
        env.call(Method::GET, &format!("{CANNED}?min_position={}", first.position()), Some(&ada_token), None).await;
    assert_eq!(shortcuts(&list), vec!["hello", "thanks", "bye"]);
    let counts: Vec<_> =
        list.body["canned_responses"].as_array().unwrap().iter().map(|c| c["use_count"].clone()).collect();
    assert_eq!(counts, vec![json!(2), json!(2), json!(1)]);
    let mut used_at = Vec::new();
    for c in list.body["canned_responses"].as_array().unwrap() {
        used_at.push(c["last_used_at"].as_str().unwrap().to_string());
    }
    assert!(used_at[0] >= used_at[1] && used_at[1] > used_at[2], "{used_at:?}");
    let prefixed = env.call(Method::GET, &format!("{CANNED}?prefix=:TH"), Some(&ada_token), None).await;
    assert_eq!(shortcuts(&prefixed), vec!["thanks"]);
    let bobs_list = env.call(Method::GET, &format!("{CANNED}?prefix=h"), Some(&bob_token), None).await;
    assert_eq!(bobs_list.body["canned_responses"][0]["text"], "Bob says hi.", "Bob's own hello, not Ada's");
    let everyone = env.call(Method::GET, &format!("{CANNED}?scope=all"), Some(&env.admin), None).await;
    assert_eq!(shortcuts(&everyone).len(), 4);
    let not_admin = env.call(Method::GET, &format!("{CANNED}?scope=all"), Some(&ada_token), None).await;
    assert_eq!(not_admin.status, 403);
    let bad_query = env.call(Method::GET, &format!("{CANNED}?scope=some"), Some(&ada_token), None).await;
    assert_eq!(bad_query.status, 422);

    // One response, from its stream: its owner sees it; Bob neither reads nor changes it.
    let one = env.call(Method::GET, &format!("{CANNED}/{hello_id}"), Some(&ada_token), None).await;
    assert_eq!((one.status, one.body["use_count"].as_u64()), (200, Some(2)), "{}", one.body);
    let etag = one.headers["etag"].to_str().unwrap().to_string();
    let bob_reads = env.call(Method::GET, &format!("{CANNED}/{hello_id}"), Some(&bob_token), None).await;
    let bob_edits =
        env.call(Method::PATCH, &format!("{CANNED}/{hello_id}"), Some(&bob_token), Some(json!({"text": "x"}))).await;
    assert_eq!((bob_reads.status, bob_edits.status), (403, 403));
    let bob_reads_shared = env.call(Method::GET, &format!("{CANNED}/{bye_id}"), Some(&bob_token), None).await;
    assert_eq!(bob_reads_shared.status, 200);

    // Renaming: onto a taken shortcut is refused; a free one releases the old shortcut.
    let onto = env
        .call(Method::PATCH, &format!("{CANNED}/{hello_id}"), Some(&ada_token), Some(json!({"shortcut": "thanks"})))
        .await;
    assert_eq!((onto.status, onto.body["code"].as_str()), (409, Some("shortcut-taken")));
    let stale = env
        .call_with(
            Method::PATCH,
            &format!("{CANNED}/{hello_id}"),
            Some(&ada_token),
            Some(json!({"shortcut": "hi"})),
            &[("If-Match", "\"0\"")],
        )
        .await;
    assert_eq!((stale.status, stale.body["code"].as_str()), (409, Some("version-conflict")));
    let renamed = env
        .call_with(
            Method::PATCH,
            &format!("{CANNED}/{hello_id}"),
            Some(&ada_token),
            Some(json!({"shortcut": "hi"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!((renamed.status, renamed.body["shortcut"].as_str()), (200, Some("hi")), "{}", renamed.body);
    let hello_again = create(&env, &ada_token, json!({"shortcut": "hello", "text": "Hello again"})).await;
    assert_eq!(hello_again.status, 201, "the stale If-Match claimed nothing and the rename released hello");
    let share_own =
        env.call(Method::PATCH, &format!("{CANNED}/{hello_id}"), Some(&ada_token), Some(json!({"shared": true}))).await;
    assert_eq!(share_own.status, 403);
    let admin_shares =
        env.call(Method::PATCH, &format!("{CANNED}/{hello_id}"), Some(&env.admin), Some(json!({"shared": true}))).await;
    assert_eq!((admin_shares.status, admin_shares.body["shared"].as_bool()), (200, Some(true)));

    // Deleted: gone, its shortcut free, and no longer postable.
    let deleted = env.call(Method::DELETE, &format!("{CANNED}/{hello_id}"), Some(&ada_token), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let gone = env.call(Method::GET, &format!("{CANNED}/{hello_id}"), Some(&ada_token), None).await;
    let twice = env.call(Method::DELETE, &format!("{CANNED}/{hello_id}"), Some(&ada_token), None).await;
    assert_eq!((gone.status, twice.status), (404, 404));
    let hi = create(&env, &ada_token, json!({"shortcut": "hi", "text": "Hi"})).await;
    assert_eq!(hi.status, 201);
    let posted = post(json!({"canned_response_id": hello_id})).await;
    assert_eq!(posted.status, 422);
    let after =
        env.call(Method::GET, &format!("{CANNED}?min_position={}", hi.position()), Some(&ada_token), None).await;
    assert_eq!(shortcuts(&after), vec!["thanks", "bye", "hello", "hi"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_commands_answer_only_the_operator_who_typed_them() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, bob_token) = env.operator("bob@example.com", "Bob").await;
    let channel = env.channel("Support", &[ada, bob]).await;
    let made = create(&env, &ada_token, json!({"shortcut": "hello", "text": "Hello!"})).await;
    assert_eq!(made.status, 201);
    let (session, visitor) = conversation(&env, &channel, &ada_token).await;
    let visit = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{session}/pages"),
            Some(&visitor),
            Some(json!({"url": "/shop/cart"})),
        )
        .await;
    assert_eq!(visit.status, 204);
    let path = format!("/api/v1/conversations/{session}/messages");
    let command = |token: &str, text: &str| {
        let (env, path, token, text) = (&env, path.clone(), token.to_string(), text.to_string());
        async move { env.call(Method::POST, &path, Some(&token), Some(json!({"text": text}))).await }
    };
    let before = texts(&env, &session, &ada_token).await;

    let help = command(&ada_token, "/help").await;
    assert_eq!(help.status, 200, "{}", help.body);
    insta::assert_json_snapshot!("command_help", help.body);
    let history = command(&ada_token, "/history").await;
    assert_eq!(
        (history.body["command"].as_str(), &history.body["lines"]),
        (Some("history"), &json!(["/shop", "/shop/cart"]))
    );
    let canned = command(&ada_token, "/canned").await;
    assert_eq!(canned.body["lines"], json!([":hello"]), "{}", canned.body);
    for typed in ["/unknown", "/"] {
        let a = command(&ada_token, typed).await;
        assert_eq!((a.status, a.body["command"].as_str()), (200, Some("unknown")), "{typed}: {}", a.body);
        assert!(a.body["lines"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().starts_with("/help")));
    }
    let nobody = command(&ada_token, "/transfer Zoe").await;
    assert_eq!((nobody.status, &nobody.body["effect"]), (200, &Value::Null));
    assert_eq!(
        nobody.body["lines"],
        json!(["Administrator", "Bob (support)"]),
        "the other operators (the creator is one)"
    );
    let escaped = command(&ada_token, "//etc is a folder").await;
    assert_eq!((escaped.status, escaped.body["text"].as_str()), (201, Some("/etc is a folder")));

    // None of the commands became a message; the escaped text did.
    let mut expected = before.clone();
    expected.push("/etc is a folder".into());
    assert_eq!(texts(&env, &session, &ada_token).await, expected);
    let visitor_history =
        env.call(Method::GET, &format!("/api/v1/public/sessions/{session}/messages"), Some(&visitor), None).await;
    assert_eq!(visitor_history.body["messages"].as_array().unwrap().len(), expected.len());

    // /transfer by name (case-insensitive) hands it to Bob through the transfer route's code.
    let moved = command(&ada_token, "/transfer bob").await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["effect"], json!({"kind": "transferred", "operator_id": bob, "name": "Bob (support)"}));
    let detail = env.call(Method::GET, &format!("/api/v1/conversations/{session}"), Some(&bob_token), None).await;
    assert_eq!(detail.body["operator_id"], bob.to_string(), "{}", detail.body);
    let visitor_view = env.call(Method::GET, &format!("/api/v1/public/sessions/{session}"), Some(&visitor), None).await;
    assert_eq!(visitor_view.body["operator"]["name"], "Bob (support)");

    // Ada no longer handles it: /close is refused as the close route refuses it.
    let not_hers = command(&ada_token, "/close").await;
    assert_eq!((not_hers.status, not_hers.body["code"].as_str()), (403, Some("not-your-conversation")));
    let myself = command(&bob_token, "/transfer Bob (support)").await;
    assert_eq!((myself.status, &myself.body["effect"]), (200, &Value::Null), "{}", myself.body);

    let closed = command(&bob_token, "/close").await;
    assert_eq!((closed.status, &closed.body["effect"]), (200, &json!({"kind": "closed"})), "{}", closed.body);
    let detail = env.call(Method::GET, &format!("/api/v1/conversations/{session}"), Some(&bob_token), None).await;
    assert_eq!(detail.body["status"], "closed");
    let inbox = env
        .call(
            Method::GET,
            &format!("/api/v1/conversations?state=closed&min_position={}", closed.position()),
            Some(&bob_token),
            None,
        )
        .await;
    assert_eq!(inbox.body["conversations"][0]["session_id"], session.as_str(), "{}", inbox.body);

    // Someone who cannot read the conversation cannot run commands in it.
    let (_, eve_token) = env.operator("eve@example.com", "Eve").await;
    let eve = command(&eve_token, "/help").await;
    assert_eq!(eve.status, 403);
}
