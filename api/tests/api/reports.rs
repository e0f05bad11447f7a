//! Reports over real HTTP. The hand-computed history is written to the log with chosen times
//! (as `livechat import` writes an old log), so every duration is known; the numbers are
//! worked out in the comments and in docs/reports.md's definitions.

use crate::common::{Answer, Env};
use chrono::{DateTime, Duration, Utc};
use domain::aggregate::encode;
use domain::session::{Assignment, CloseReason, Party, SessionEvent};
use domain::values::Country;
use reqwest::Method;
use serde_json::json;
use store::{ExpectedVersion, NewEvent};
use uuid::Uuid;

const SHOP: Uuid = Uuid::from_u128(0xa1);
const HELP: Uuid = Uuid::from_u128(0xb2);
const ADA: Uuid = Uuid::from_u128(0xada);
const BOB: Uuid = Uuid::from_u128(0xb0b);

fn time(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// One conversation's events, each some time after its start.
struct Script {
    id: Uuid,
    start: DateTime<Utc>,
    events: Vec<(Duration, SessionEvent)>,
}

impl Script {
    fn new(n: u128, channel: Uuid, start: &str, country: Option<&str>) -> Script {
        let id = Uuid::from_u128(0x5e55_0000 + n);
        let started = SessionEvent::SessionStarted {
            session_id: id,
            channel_id: channel,
            visitor_name: format!("Visitor #{n}"),
            anonymous: true,
            page_url: "/shop".into(),
            country: country.map(|c| Country::parse("country", c).unwrap()),
            languages: vec![],
            visitor_token_sha256: String::new(),
        };
        Script { id, start: time(start), events: vec![(Duration::zero(), started)] }
    }

    fn at(self, seconds: i64, e: SessionEvent) -> Self {
        self.after(Duration::seconds(seconds), e)
    }

    fn after(mut self, d: Duration, e: SessionEvent) -> Self {
        self.events.push((d, e));
        self
    }

    fn assigned(self, seconds: i64, operator_id: Uuid) -> Self {
        self.at(
            seconds,
            SessionEvent::OperatorAssigned { operator_id, display_name: "op".into(), how: Assignment::Routed },
        )
    }

    fn says(self, seconds: i64, author: Party) -> Self {
        self.post(seconds, author, false)
    }

    fn welcome(self, seconds: i64, operator: Uuid) -> Self {
        self.post(seconds, Party::Operator { id: operator }, true)
    }

    fn post(self, seconds: i64, author: Party, welcome: bool) -> Self {
        let e = SessionEvent::MessagePosted { message_id: Uuid::now_v7(), author, text: "…".into(), welcome };
        self.at(seconds, e)
    }

    fn closed(self, seconds: i64, reason: CloseReason) -> Self {
        self.at(seconds, SessionEvent::SessionClosed { by: Party::System, reason, started_channel_id: None })
    }

    fn rated(self, seconds: i64, value: u8, operator_id: Uuid, channel_id: Uuid) -> Self {
        let e = SessionEvent::ConversationRated {
            message_id: Uuid::now_v7(),
            value,
            feedback: None,
            operator_id,
            channel_id,
        };
        self.at(seconds, e)
    }
}

fn visitor() -> Party {
    Party::Visitor
}

fn op(id: Uuid) -> Party {
    Party::Operator { id }
}

/// Writes the history; returns the position to wait for.
async fn write(env: &Env, scripts: Vec<Script>) -> String {
    let mut position = String::new();
    for s in scripts {
        let events = s
            .events
            .iter()
            .map(|(d, e)| {
                let (event_type, data) = encode(e);
                NewEvent { recorded_at: Some(s.start + *d), ..NewEvent::new(event_type, data) }
            })
            .collect();
        let r = env.state.events.append(&format!("session-{}", s.id), ExpectedVersion::NoStream, events).await.unwrap();
        position = r.position.to_string();
    }
    position
}

/// The hand-computed history (times UTC; 2026-11-23 is a Monday of ISO week 48):
///
/// | # | channel | country | start | messages | duration | answer | rating | |
/// |---|---|---|---|---|---|---|---|---|
/// | 1 | Shop | BE | Mon 23 09:00 | 4 (welcome, V, Ada, V) | 100 s | 30 s | 5 | |
/// | 2 | Shop | FR | Mon 23 09:30 | 3 (V, Ada, Bob) | 185 s | 120 s (queued) | 1 | Ada then Bob |
/// | 3 | Help | - | Tue 24 14:00 | 1 (V) | 0 s | none | - | visitor left |
/// | 4 | Shop | - | Tue 24 15:00 | 1 (welcome) | - | - | - | abandoned: left out |
/// | 5 | Help | BE | Sun 29 23:59 | 3 (V, bot, Bob) | 60 s | 60 s (the bot is no answer) | 3 | |
/// | 6 | Shop | BE | Tue Dec 1 10:00 | 2 (V, Ada) | 10 s | 10 s | - | |
///
/// Totals without #4: 5 conversations, 13 messages (2.6 each), 355 s of duration (71 s each),
/// answers 10/30/60/120 s (avg 55, p50 30, p90 120), 1 unanswered (20 %), ratings 5/1/3
/// (avg 3, 33.33 % happy), 1 abandoned.
async fn history(env: &Env) -> String {
    let c1 = Script::new(1, SHOP, "2026-11-23T09:00:00Z", Some("BE"))
        .assigned(0, ADA)
        .welcome(0, ADA)
        .says(10, visitor())
        .says(40, op(ADA))
        .says(100, visitor())
        .closed(110, CloseReason::ClosedByOperator)
        .rated(120, 5, ADA, SHOP);
    let c2 = Script::new(2, SHOP, "2026-11-23T09:30:00Z", Some("FR"))
        .at(0, SessionEvent::SessionQueued {})
        .says(5, visitor())
        .assigned(65, ADA)
        .says(125, op(ADA))
        .at(130, SessionEvent::SessionTransferred { from_operator: Some(ADA), to_channel: SHOP })
        .assigned(130, BOB)
        .says(190, op(BOB))
        .at(191, SessionEvent::MessageEdited { message_id: Uuid::nil(), text: "edited".into() })
        .rated(200, 1, ADA, SHOP);
    let c3 = Script::new(3, HELP, "2026-11-24T14:00:00Z", None)
        .assigned(0, BOB)
        .says(20, visitor())
        .closed(50, CloseReason::VisitorLeft);
    let c4 = Script::new(4, SHOP, "2026-11-24T15:00:00Z", None)
        .assigned(0, ADA)
        .welcome(0, ADA)
        .closed(3600, CloseReason::Abandoned);
    let c5 = Script::new(5, HELP, "2026-11-29T23:59:00Z", Some("BE"))
        .says(0, visitor())
        .says(1, Party::System)
        .assigned(30, BOB)
        .says(60, op(BOB))
        .rated(90, 3, BOB, HELP);
    let c6 =
        Script::new(6, SHOP, "2026-12-01T10:00:00Z", Some("BE")).assigned(0, ADA).says(0, visitor()).says(10, op(ADA));
    write(env, vec![c1, c2, c3, c4, c5, c6]).await
}

async fn report(env: &Env, token: &str, path: &str, position: &str) -> Answer {
    let sep = if path.contains('?') { '&' } else { '?' };
    env.call(Method::GET, &format!("{path}{sep}min_position={position}"), Some(token), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversations_report_on_a_hand_computed_history() {
    let env = Env::start().await;
    let at = history(&env).await;

    let total = report(&env, &env.admin, "/api/v1/reports/conversations", &at).await;
    assert_eq!(total.status, 200, "{}", total.body);
    assert_eq!(
        total.body["total"],
        json!({
            "count": 5, "messages_avg": 2.6, "duration_avg": 71.0, "time_to_answer_avg": 55.0,
            "time_to_answer_p50": 30.0, "time_to_answer_p90": 120.0, "unanswered": 1, "unanswered_percent": 20.0,
            "satisfaction_percent": 33.33, "rating_avg": 3.0, "abandoned": 1
        })
    );
    assert_eq!(total.body["rows"], json!([total.body["total"]]), "no grouping: one row, the total");

    let by_channel = report(&env, &env.admin, "/api/v1/reports/conversations?group_by=channel", &at).await;
    assert_eq!(by_channel.status, 200, "{}", by_channel.body);
    insta::assert_json_snapshot!("by_channel", by_channel.body);

    let by_week_and_rating = report(
        &env,
        &env.admin,
        "/api/v1/reports/conversations?group_by=week,rating&measures=count,satisfaction_percent,rating_avg",
        &at,
    )
    .await;
    insta::assert_json_snapshot!("by_week_and_rating", by_week_and_rating.body);

    // Filters: Belgium in November (the half-open period leaves out #6 of December 1st).
    let belgium = report(
        &env,
        &env.admin,
        "/api/v1/reports/conversations?country=BE&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&measures=count,messages_avg",
        &at,
    )
    .await;
    assert_eq!(belgium.body["total"], json!({"count": 2, "messages_avg": 3.5}), "#1 and #5");
    let unknown_country =
        report(&env, &env.admin, "/api/v1/reports/conversations?country=none&measures=count", &at).await;
    assert_eq!(unknown_country.body["total"], json!({"count": 1}), "#3 (#4 is empty)");
    let bobs =
        report(&env, &env.admin, &format!("/api/v1/reports/conversations?operator_id={BOB}&measures=count"), &at).await;
    assert_eq!(bobs.body["total"], json!({"count": 3}), "#2 (after the transfer), #3 and #5");

    // Empty conversations only when asked for; the abandoned one is counted either way.
    let with_empty = report(
        &env,
        &env.admin,
        "/api/v1/reports/conversations?include_empty=true&measures=count,abandoned,messages_avg",
        &at,
    )
    .await;
    assert_eq!(with_empty.body["total"], json!({"count": 6, "abandoned": 1, "messages_avg": 2.33}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_report_counts_a_transferred_conversation_for_each_operator() {
    let env = Env::start().await;
    let at = history(&env).await;
    let a = report(&env, &env.admin, "/api/v1/reports/operators?group_by=operator", &at).await;
    assert_eq!(a.status, 200, "{}", a.body);
    insta::assert_json_snapshot!("operators", a.body);
    let count = |who: Uuid| {
        a.body["rows"].as_array().unwrap().iter().find(|r| r["operator"] == who.to_string()).unwrap()["count"].clone()
    };
    assert_eq!((count(ADA), count(BOB)), (json!(3), json!(3)), "Ada: #1 #2 #6; Bob: #2 #3 #5");
    // Without a grouping, one row: the total, each conversation once (#2 is not counted twice).
    let total = report(&env, &env.admin, "/api/v1/reports/operators?measures=count,unanswered", &at).await;
    assert_eq!(total.status, 200, "{}", total.body);
    assert_eq!(
        total.body,
        json!({
            "report": "operators", "group_by": [], "measures": ["count", "unanswered"],
            "rows": [{"count": 5, "unanswered": 1}], "total": {"count": 5, "unanswered": 1}
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_total_leaves_out_conversations_no_operator_ever_had() {
    let env = Env::start().await;
    // #1 answered by Ada; #2 a chatbot's alone; #3 waited in the queue, the visitor wrote, nobody came.
    let at = write(
        &env,
        vec![
            Script::new(1, SHOP, "2026-11-23T09:00:00Z", None).assigned(0, ADA).says(1, visitor()).says(2, op(ADA)),
            Script::new(2, SHOP, "2026-11-23T10:00:00Z", None).says(1, visitor()).says(2, Party::System),
            Script::new(3, SHOP, "2026-11-23T11:00:00Z", None)
                .at(0, SessionEvent::SessionQueued {})
                .says(1, visitor())
                .closed(600, CloseReason::VisitorLeft),
        ],
    )
    .await;
    let conversations = report(&env, &env.admin, "/api/v1/reports/conversations?measures=count", &at).await;
    assert_eq!(conversations.body["total"], json!({"count": 3}), "{}", conversations.body);
    let operators = report(&env, &env.admin, "/api/v1/reports/operators?measures=count", &at).await;
    assert_eq!(operators.body["total"], json!({"count": 1}), "only #1 had an operator: {}", operators.body);
    assert_eq!(operators.body["rows"], json!([{"count": 1}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn averages_round_from_exact_microseconds_half_away_from_zero() {
    let env = Env::start().await;
    // Answers after exactly 2.010000 s and 2.020000 s: 2.015 s on average, 2.02 to 2 decimals
    // (a float sum makes it 2.0149999... and 2.01).
    let answered = |n: u128, start: &str, micros: i64| {
        Script::new(n, SHOP, start, None).assigned(0, ADA).says(0, visitor()).after(
            Duration::microseconds(micros),
            SessionEvent::MessagePosted {
                message_id: Uuid::now_v7(),
                author: op(ADA),
                text: "…".into(),
                welcome: false,
            },
        )
    };
    let at = write(
        &env,
        vec![answered(1, "2026-11-23T09:00:00Z", 2_010_000), answered(2, "2026-11-23T10:00:00Z", 2_020_000)],
    )
    .await;
    let a =
        report(&env, &env.admin, "/api/v1/reports/conversations?measures=time_to_answer_avg,duration_avg", &at).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["total"], json!({"time_to_answer_avg": 2.02, "duration_avg": 2.02}));
    let csv = env
        .call_with(
            Method::GET,
            &format!("/api/v1/reports/conversations?measures=time_to_answer_avg&min_position={at}"),
            Some(&env.admin),
            None,
            &[("Accept", "text/csv")],
        )
        .await;
    assert_eq!(csv.body.as_str(), Some("time_to_answer_avg\r\n2.02\r\n"), "the one row, the total");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_with_accept_text_csv() {
    let env = Env::start().await;
    let at = history(&env).await;
    let a = env
        .call_with(
            Method::GET,
            &format!("/api/v1/reports/conversations?group_by=day&measures=count,time_to_answer_avg,unanswered&min_position={at}"),
            Some(&env.admin),
            None,
            &[("Accept", "text/csv")],
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["content-type"], "text/csv; charset=utf-8");
    insta::assert_snapshot!("by_day_csv", a.body.as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_groupings_and_measures_are_field_errors() {
    let env = Env::start().await;
    let a = env
        .call(
            Method::GET,
            "/api/v1/reports/conversations?group_by=channel,planet&measures=count,mood&country=XX&from=yesterday",
            Some(&env.admin),
            None,
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    let mut fields: Vec<&str> =
        a.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["country", "from", "group_by", "measures"], "{}", a.body);
    let three =
        env.call(Method::GET, "/api/v1/reports/operators?group_by=day,hour,channel", Some(&env.admin), None).await;
    assert_eq!(three.status, 422, "{}", three.body);
    assert_eq!(three.body["errors"][0]["message"], "at most two groupings");
    let none = env.call(Method::GET, "/api/v1/reports/operators?measures=,", Some(&env.admin), None).await;
    assert_eq!((none.status, none.body["errors"][0]["field"].clone()), (422, json!("measures")));
    // An empty list or an empty name is a mistake, not "the default" (every list the same way).
    for query in ["measures=", "measures=count,,rating_avg", "measures=count,", "group_by=", "group_by=channel,,day"] {
        for kind in ["conversations", "operators"] {
            let a = env.call(Method::GET, &format!("/api/v1/reports/{kind}?{query}"), Some(&env.admin), None).await;
            let field = query.split('=').next().unwrap();
            assert_eq!(a.status, 422, "{kind}?{query}: {}", a.body);
            assert_eq!(a.body["errors"].as_array().map(Vec::len), Some(1), "{kind}?{query}: {}", a.body);
            assert_eq!(a.body["errors"][0]["field"], field, "{kind}?{query}: {}", a.body);
        }
    }
    let unknown = env.call(Method::GET, "/api/v1/reports/operators?colour=red", Some(&env.admin), None).await;
    assert_eq!(unknown.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_only_the_conversations_they_handled() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let (bob, _) = env.operator("bob@example.com", "Bob").await;
    let channel: Uuid = env.channel("Shop", &[ada, bob]).await.parse().unwrap();
    let at = write(
        &env,
        vec![
            Script::new(1, channel, "2026-11-23T09:00:00Z", None).assigned(0, ada).says(1, visitor()).says(2, op(ada)),
            Script::new(2, channel, "2026-11-23T10:00:00Z", None).assigned(0, bob).says(1, visitor()),
        ],
    )
    .await;
    let own = report(&env, &ada_token, "/api/v1/reports/conversations?measures=count,unanswered", &at).await;
    assert_eq!(own.body["total"], json!({"count": 1, "unanswered": 0}), "{}", own.body);
    let theirs = report(&env, &ada_token, &format!("/api/v1/reports/operators?operator_id={bob}"), &at).await;
    assert_eq!(theirs.status, 403, "{}", theirs.body);
    let all = report(&env, &env.admin, "/api/v1/reports/conversations?measures=count,unanswered", &at).await;
    assert_eq!(all.body["total"], json!({"count": 2, "unanswered": 1}));
    let nobody = env.call(Method::GET, "/api/v1/reports/conversations", None, None).await;
    assert_eq!(nobody.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_through_the_api_is_reported_once_the_view_has_it() {
    let env = Env::start().await;
    let (ada, ada_token) = env.operator("ada@example.com", "Ada").await;
    let channel = env.channel("Shop", &[ada]).await;
    let joined = env.call(Method::POST, &format!("/api/v1/channels/{channel}/join"), Some(&ada_token), None).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let before =
        report(&env, &env.admin, "/api/v1/reports/operators?group_by=operator&measures=count,unanswered", "0:0").await;
    assert_eq!(before.body["rows"], json!([]));
    let started = env
        .call(
            Method::POST,
            &format!("/api/v1/public/channels/{channel}/sessions"),
            None,
            Some(json!({"name": "Marie"})),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.body);
    let (id, token) = (started.body["session_id"].as_str().unwrap(), started.body["visitor_token"].as_str().unwrap());
    let said = env
        .call(
            Method::POST,
            &format!("/api/v1/public/sessions/{id}/messages"),
            Some(token),
            Some(json!({"text": "Hello?"})),
        )
        .await;
    assert_eq!(said.status, 201, "{}", said.body);
    let after = report(
        &env,
        &env.admin,
        "/api/v1/reports/operators?group_by=operator&measures=count,unanswered",
        &said.position(),
    )
    .await;
    assert_eq!(after.body["rows"], json!([{"operator": ada.to_string(), "count": 1, "unanswered": 1}]));
    let answered = env
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
            Some(&ada_token),
            Some(json!({"text": "Hi!"})),
        )
        .await;
    assert_eq!(answered.status, 201, "{}", answered.body);
    let later = report(
        &env,
        &env.admin,
        "/api/v1/reports/operators?group_by=operator&measures=count,unanswered",
        &answered.position(),
    )
    .await;
    assert_eq!(later.body["rows"][0]["unanswered"], 0, "{}", later.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_path_reading_the_view_from_the_store_gives_the_apis_numbers() {
    let env = Env::start().await;
    let at = history(&env).await;
    let path = "/api/v1/reports/operators?group_by=operator,day&include_empty=true";
    let http = report(&env, &env.admin, path, &at).await;
    assert_eq!(http.status, 200, "{}", http.body);
    // What `livechat report` does: a fresh read of the whole view, then the same fold.
    let mut facts = api::reports::Facts::default();
    facts.refresh(env.state.views.as_ref()).await.unwrap();
    let mut q = api::reports::Query::new(api::reports::Kind::Operators);
    q.include_empty = true;
    let mut errors = vec![];
    q.parse_names(Some("operator,day"), None, &mut errors);
    assert!(errors.is_empty());
    assert_eq!(serde_json::to_value(facts.report(&q)).unwrap(), http.body);
    assert_eq!(facts.len(), 6);
}
