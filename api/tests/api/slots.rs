//! An operator's conversation slots heal themselves: a claim its conversation never
//! confirmed (a crash between the two writes), or whose conversation is closed, stops
//! counting against the maximum, and the sweeper releases it with the reason. Time is a
//! manual clock; leaked claims are appended to the operator's stream directly, as a crash
//! would leave them.

use crate::common::{Answer, Env};
use chrono::Duration;
use commands::{execute, stream_id, Context};
use domain::metadata::Actor;
use domain::session::{Session, SessionError, SessionEvent};
use domain::user::{User, UserError, UserEvent};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// An operator joined (so online) to a channel allowing one conversation each.
async fn one_slot(env: &Env) -> (Uuid, String, String) {
    let (ada, token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Help", &[ada]).await;
    let set = env
        .call(
            Method::PUT,
            &format!("/api/v1/channels/{channel}/options"),
            Some(&env.admin),
            Some(json!({"max_conversations_per_operator": 1})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let joined = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(&token), None).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    (ada, token, channel)
}

async fn start(env: &Env, channel: &str) -> Answer {
    let a = env.call(Method::POST, &format!("/api/v1/public/channels/{channel}/sessions"), None, Some(json!({}))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a
}

fn session_id(a: &Answer) -> String {
    a.body["session_id"].as_str().or(a.body["session_id"].as_str()).unwrap().to_string()
}

fn system(env: &Env) -> Context {
    Context::new(Actor::system(), env.state.clock.now())
}

/// What a crash between the claim and the conversation's write leaves: a claim on the
/// operator's stream for a conversation that never existed.
async fn leak(env: &Env, operator: Uuid) -> Uuid {
    let ghost = Uuid::now_v7();
    let at = env.state.clock.now();
    execute::<User, _>(env.state.events.as_ref(), &stream_id::<User>(operator), &system(env), None, |_| {
        Ok::<_, UserError>(vec![UserEvent::ConversationAssigned { session_id: ghost, at }])
    })
    .await
    .unwrap();
    ghost
}

/// The operator's stream as (event type, data).
async fn user_events(env: &Env, operator: Uuid) -> Vec<(String, Value)> {
    store::read_whole_stream(env.state.events.as_ref(), &stream_id::<User>(operator), 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type, e.data))
        .collect()
}

fn released(events: &[(String, Value)], session: impl ToString) -> Vec<Value> {
    let session = session.to_string();
    events
        .iter()
        .filter(|(t, d)| t == "ConversationReleased" && d["session_id"] == session.as_str())
        .map(|(_, d)| d.clone())
        .collect()
}

/// Waits until the channel's queue view lists the conversation (dispatch reads that view).
async fn queued(env: &Env, channel: &str, id: &str) {
    for _ in 0..200 {
        let q = env.call(Method::GET, &format!("/api/v1/channels/{channel}/queue"), Some(&env.admin), None).await;
        if q.body["conversations"].as_array().is_some_and(|c| c.iter().any(|c| c["session_id"] == id)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{id} never showed in the queue");
}

/// Past the claim timeout (its default).
fn past_the_bound(env: &Env) {
    let bound = Duration::from_std(commands::Config::default().claim_timeout).unwrap();
    env.clock.advance(bound + Duration::seconds(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_slot_counts_within_the_bound_and_routing_frees_it_after() {
    let env = Env::start().await;
    let (ada, _, channel) = one_slot(&env).await;
    let ghost = leak(&env, ada).await;

    // Within the bound the claim may be in flight: it counts, the visitor waits.
    let first = start(&env, &channel).await;
    assert_eq!(first.body["status"], "waiting", "{}", first.body);
    assert_eq!(first.body["notice"], "No available collaborator, please try again later.");

    past_the_bound(&env);
    let second = start(&env, &channel).await;
    assert_eq!(second.body["status"], "active", "{}", second.body);
    assert_eq!(second.body["operator"]["id"], ada.to_string());
    let events = user_events(&env, ada).await;
    assert_eq!(released(&events, ghost), vec![json!({"session_id": ghost, "reason": "unconfirmed"})]);
    // The maximum still holds: the second conversation is the one slot.
    let third = start(&env, &channel).await;
    assert_eq!(third.body["status"], "waiting", "{}", third.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_take_is_not_refused_for_a_leaked_slot() {
    let env = Env::start().await;
    let (ada, token, channel) = one_slot(&env).await;
    leak(&env, ada).await;
    let waiting = start(&env, &channel).await;
    let id = session_id(&waiting);
    let take = format!("/api/v1/conversations/{id}/take");
    let refused = env.call(Method::POST, &take, Some(&token), None).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body["type"], "urn:problem-type:livechat:operator-at-capacity");

    past_the_bound(&env);
    let taken = env.call(Method::POST, &take, Some(&token), None).await;
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert_eq!(taken.body["operator_id"], ada.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_releases_an_unconfirmed_claim_and_routes_the_queue() {
    let env = Env::start().await;
    let (ada, _, channel) = one_slot(&env).await;
    let ghost = leak(&env, ada).await;
    let waiting = start(&env, &channel).await;
    let id = session_id(&waiting);
    let token = waiting.body["visitor_token"].as_str().unwrap().to_string();
    queued(&env, &channel, &id).await;

    assert!(commands::conversations::release_stale_claims(&env.state).await.unwrap().is_empty(), "within the bound");
    past_the_bound(&env);
    let freed = commands::conversations::release_stale_claims(&env.state).await.unwrap();
    assert_eq!(freed, vec![(ada, ghost, domain::user::ReleaseReason::Unconfirmed)]);
    assert_eq!(
        released(&user_events(&env, ada).await, ghost),
        vec![json!({"session_id": ghost, "reason": "unconfirmed"})]
    );
    // The freed slot went to the waiting visitor.
    let now = env.call(Method::GET, &format!("/api/v1/public/sessions/{id}"), Some(&token), None).await;
    assert_eq!(now.body["status"], "active", "{}", now.body);
    assert_eq!(now.body["operator"]["id"], ada.to_string());
    // That slot is confirmed: later passes leave it, however old.
    env.clock.advance(Duration::hours(2));
    assert!(commands::conversations::release_stale_claims(&env.state).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_conversations_leftover_claim_never_counts() {
    let env = Env::start().await;
    let (ada, _, channel) = one_slot(&env).await;
    let first = start(&env, &channel).await;
    assert_eq!(first.body["operator"]["id"], ada.to_string(), "{}", first.body);
    let id: Uuid = session_id(&first).parse().unwrap();
    // Closed, and the crash came before its slot was freed.
    execute::<Session, _>(env.state.events.as_ref(), &stream_id::<Session>(id), &system(&env), None, |s| {
        domain::session::abandon(s)
    })
    .await
    .unwrap();
    env.state.sessions.current(env.state.events.as_ref(), &stream_id::<Session>(id)).await.unwrap();
    assert!(env.state.users.get(env.state.events.as_ref(), ada).await.unwrap().holds(id), "the slot leaked");

    // At once, not after the bound: a closed conversation never takes an operator again.
    let second = start(&env, &channel).await;
    assert_eq!(second.body["status"], "active", "{}", second.body);
    assert_eq!(second.body["operator"]["id"], ada.to_string());
    assert_eq!(released(&user_events(&env, ada).await, id), vec![json!({"session_id": id, "reason": "closed"})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_twice_frees_the_slot_once() {
    let env = Env::start().await;
    let (ada, token, channel) = one_slot(&env).await;
    let first = start(&env, &channel).await;
    let id = session_id(&first);
    let visitor = first.body["visitor_token"].as_str().unwrap().to_string();
    let close = format!("/api/v1/conversations/{id}/close");
    assert_eq!(env.call(Method::POST, &close, Some(&token), None).await.status, 204);
    assert_eq!(env.call(Method::POST, &close, Some(&token), None).await.status, 204, "closing twice is no error");
    let leave = format!("/api/v1/public/sessions/{id}/leave");
    assert_eq!(env.call(Method::POST, &leave, Some(&visitor), None).await.status, 204);
    assert_eq!(released(&user_events(&env, ada).await, &id), vec![json!({"session_id": id})], "one plain release");
}

/// The primitives of a losing path: it gives back only a slot it took, and not one the
/// conversation now confirms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_losing_path_frees_only_a_slot_it_took_and_nobody_uses() {
    use commands::conversations::{claim, give_back, Claimed};
    let env = Env::start().await;
    let (ada, token, channel) = one_slot(&env).await;
    // Nobody joined: the conversation waits.
    let left = env.call(Method::POST, &format!("/api/v1/channels/{channel}/leave"), Some(&token), None).await;
    assert_eq!(left.status, 200, "{}", left.body);
    let waiting = start(&env, &channel).await;
    let id: Uuid = session_id(&waiting).parse().unwrap();
    let ctx = system(&env);
    let holds = || async { env.state.users.get(env.state.events.as_ref(), ada).await.unwrap().holds(id) };

    assert_eq!(claim(&env.state, &ctx, ada, id, Some(1)).await.unwrap(), Claimed::Took);
    assert_eq!(claim(&env.state, &ctx, ada, id, Some(1)).await.unwrap(), Claimed::Held, "the same one again");
    assert_eq!(claim(&env.state, &ctx, ada, Uuid::now_v7(), Some(1)).await.unwrap(), Claimed::Full);
    // A path that found the claim already there (another path in flight) never frees it.
    give_back(&env.state, &ctx, ada, id, Claimed::Held).await.unwrap();
    assert!(holds().await);
    // The other path won: the conversation is Ada's, with this very claim. It stays.
    execute::<Session, _>(env.state.events.as_ref(), &stream_id::<Session>(id), &ctx, None, |s| {
        domain::session::take(s, ada, "Ada", domain::session::Assignment::FromQueue)
    })
    .await
    .unwrap();
    give_back(&env.state, &ctx, ada, id, Claimed::Took).await.unwrap();
    assert!(holds().await, "confirmed by the conversation");
    // Moved on to the queue: a path that took the slot gives it back.
    execute::<Session, _>(env.state.events.as_ref(), &stream_id::<Session>(id), &ctx, None, |_| {
        Ok::<_, SessionError>(vec![SessionEvent::SessionQueued {}])
    })
    .await
    .unwrap();
    give_back(&env.state, &ctx, ada, id, Claimed::Took).await.unwrap();
    assert!(!holds().await);
}
