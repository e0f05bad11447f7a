//! What the audit records for every event of every audited aggregate: tables of (history,
//! event, expected changes). Each table also checks that it has a row for every event type
//! (the `kind` functions match without a wildcard, so a new event type does not compile until
//! it is given a number, and the table fails until it has a row).

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use domain::audit::{apply, Audited, Change};
use domain::canned::{CannedEvent, CannedResponse};
use domain::channel::{Channel, ChannelEvent, ChannelOptions, LeaveReason};
use domain::chatbot::{Answer, Chatbot, ChatbotEvent, Script, Step, StepType};
use domain::rules::{Rule, RuleAction, RuleChatbot};
use domain::session::{Assignment, BotOutcome, CloseReason, Party, Session, SessionEvent};
use domain::user::{Role, Status, StatusReason, User, UserEvent};
use domain::values::{Color, Country, Email};
use domain::Aggregate;
use serde_json::{json, Value};
use uuid::Uuid;

const ADMIN: Uuid = Uuid::from_u128(1);
const ADA: Uuid = Uuid::from_u128(2);
const BOB: Uuid = Uuid::from_u128(3);
const R1: Uuid = Uuid::from_u128(21);
const R2: Uuid = Uuid::from_u128(22);
const SUPPORT: Uuid = Uuid::from_u128(10);
const SALES: Uuid = Uuid::from_u128(11);

/// A change of a field.
fn ch(field: &str, before: Value, after: Value) -> Change {
    Change { field: field.into(), item: None, before, after }
}

/// A change about item `item` of a collection.
fn it(field: &str, item: Uuid, before: Value, after: Value) -> Change {
    Change { field: field.into(), item: Some(item.to_string()), before, after }
}

const NULL: Value = Value::Null;

/// One row: after `given`, `when` records `then`.
struct Row<A: Aggregate> {
    name: &'static str,
    given: Vec<A::Event>,
    when: A::Event,
    then: Vec<Change>,
}

/// Runs the rows and checks that every event type (numbered by `kind`, `0..count`) has one.
fn check<A: Audited>(rows: Vec<Row<A>>, kind: fn(&A::Event) -> usize, count: usize) {
    let mut seen = BTreeSet::new();
    for row in rows {
        let mut state = A::from_history(&row.given);
        assert_eq!(apply(&mut state, &row.when), row.then, "{}", row.name);
        seen.insert(kind(&row.when));
    }
    let missing: Vec<usize> = (0..count).filter(|k| !seen.contains(k)).collect();
    assert!(missing.is_empty(), "event types without a row: {missing:?}");
}

// ---------------------------------------------------------------------------------------------
// Channels

fn channel_kind(e: &ChannelEvent) -> usize {
    use ChannelEvent::*;
    match e {
        ChannelCreated { .. } => 0,
        ChannelRenamed { .. } => 1,
        ChannelArchived {} => 2,
        ChannelOptionsChanged { .. } => 3,
        ChannelColorsReset {} => 4,
        OperatorAdded { .. } => 5,
        OperatorRemoved { .. } => 6,
        RuleAdded { .. } => 7,
        RuleUpdated { .. } => 8,
        RuleRemoved { .. } => 9,
        RulesReordered { .. } => 10,
        OperatorJoined { .. } => 11,
        OperatorLeft { .. } => 12,
    }
}

fn color(raw: &str) -> Color {
    Color::parse("c", raw).unwrap()
}

fn created() -> ChannelEvent {
    ChannelEvent::ChannelCreated { channel_id: SUPPORT, name: "Support".into(), options: ChannelOptions::default() }
}

fn rule(id: Uuid, url: &str) -> Rule {
    Rule {
        rule_id: id,
        action: RuleAction::Show,
        timer_seconds: 0,
        url_regex: url.into(),
        countries: vec![],
        chatbot: None,
    }
}

fn rule_json(id: Uuid, url: &str) -> Value {
    json!({"id": id, "action": "show", "timer_seconds": 0, "url_regex": url, "countries": [], "chatbot": null})
}

/// Support, Ada and Bob its operators, Ada joined, two rules.
fn support() -> Vec<ChannelEvent> {
    vec![
        created(),
        ChannelEvent::OperatorAdded { user_id: ADA },
        ChannelEvent::OperatorAdded { user_id: BOB },
        ChannelEvent::OperatorJoined { user_id: ADA },
        ChannelEvent::RuleAdded { rule: rule(R1, "/a") },
        ChannelEvent::RuleAdded { rule: rule(R2, "/b") },
    ]
}

fn with(mut h: Vec<ChannelEvent>, more: impl IntoIterator<Item = ChannelEvent>) -> Vec<ChannelEvent> {
    h.extend(more);
    h
}

fn options_with(f: impl FnOnce(&mut ChannelOptions)) -> ChannelOptions {
    let mut o = ChannelOptions::default();
    f(&mut o);
    o
}

#[test]
fn channel_events() {
    let dark = options_with(|o| o.button_color = color("#112233"));
    let rows: Vec<Row<Channel>> = vec![
        Row {
            name: "a creation lists every setting it sets",
            given: vec![],
            when: created(),
            then: vec![
                ch("archived", NULL, json!(false)),
                ch("name", NULL, json!("Support")),
                ch("options.button_color", NULL, json!("#875A7B")),
                ch("options.button_text_color", NULL, json!("#FFFFFF")),
                ch("options.header_color", NULL, json!("#875A7B")),
                ch("options.header_text_color", NULL, json!("#FFFFFF")),
                ch("options.input_placeholder", NULL, json!("")),
                ch("options.notification_text", NULL, json!("Have a Question? Chat with us.")),
                ch("options.ratings_public", NULL, json!(false)),
                ch("options.welcome_message", NULL, json!("Hello, how may I help you?")),
            ],
        },
        Row {
            name: "rename",
            given: support(),
            when: ChannelEvent::ChannelRenamed { name: "Help".into() },
            then: vec![ch("name", json!("Support"), json!("Help"))],
        },
        Row {
            name: "archive",
            given: support(),
            when: ChannelEvent::ChannelArchived {},
            then: vec![ch("archived", json!(false), json!(true))],
        },
        Row {
            name: "an options change records each option it changes, not the whole object",
            given: support(),
            when: ChannelEvent::ChannelOptionsChanged {
                options: options_with(|o| {
                    o.button_color = color("#112233");
                    o.max_conversations_per_operator = Some(3);
                }),
            },
            then: vec![
                ch("options.button_color", json!("#875A7B"), json!("#112233")),
                ch("options.max_conversations_per_operator", NULL, json!(3)),
            ],
        },
        Row {
            name: "after a color reset, another admin's option change records only that option",
            given: with(
                support(),
                [ChannelEvent::ChannelOptionsChanged { options: dark.clone() }, ChannelEvent::ChannelColorsReset {}],
            ),
            when: ChannelEvent::ChannelOptionsChanged { options: options_with(|o| o.welcome_message = "Hi".into()) },
            then: vec![ch("options.welcome_message", json!("Hello, how may I help you?"), json!("Hi"))],
        },
        Row {
            name: "a color reset records the values it reset",
            given: with(support(), [ChannelEvent::ChannelOptionsChanged { options: dark.clone() }]),
            when: ChannelEvent::ChannelColorsReset {},
            then: vec![ch("options.button_color", json!("#112233"), json!("#875A7B"))],
        },
        Row {
            name: "resetting default colors changes nothing",
            given: support(),
            when: ChannelEvent::ChannelColorsReset {},
            then: vec![],
        },
        Row {
            name: "an operator added is an item of the operators",
            given: support(),
            when: ChannelEvent::OperatorAdded { user_id: ADMIN },
            then: vec![it("operators", ADMIN, NULL, json!({"id": ADMIN, "joined": false}))],
        },
        Row {
            name: "an operator removed",
            given: support(),
            when: ChannelEvent::OperatorRemoved { user_id: BOB },
            then: vec![it("operators", BOB, json!({"id": BOB, "joined": false}), NULL)],
        },
        Row {
            name: "a second rule is an addition, not a replacement of the first",
            given: with(support()[..5].to_vec(), []),
            when: ChannelEvent::RuleAdded { rule: rule(R2, "/b") },
            then: vec![it("rules", R2, NULL, rule_json(R2, "/b"))],
        },
        Row {
            name: "a rule updated records the fields of that rule that changed",
            given: support(),
            when: ChannelEvent::RuleUpdated {
                rule: Rule {
                    action: RuleAction::Hide,
                    chatbot: Some(RuleChatbot { chatbot_id: SALES, only_if_no_operator: true }),
                    countries: vec![Country::parse("c", "BE").unwrap()],
                    ..rule(R1, "/a")
                },
            },
            then: vec![
                it("rules.action", R1, json!("show"), json!("hide")),
                it("rules.chatbot.chatbot_id", R1, NULL, json!(SALES)),
                it("rules.chatbot.only_if_no_operator", R1, NULL, json!(true)),
                it("rules.countries", R1, json!([]), json!(["BE"])),
            ],
        },
        Row {
            name: "a rule removed",
            given: support(),
            when: ChannelEvent::RuleRemoved { rule_id: R1 },
            then: vec![it("rules", R1, rule_json(R1, "/a"), NULL)],
        },
        Row {
            name: "rules reordered",
            given: support(),
            when: ChannelEvent::RulesReordered { rule_ids: vec![R2, R1] },
            then: vec![ch("rules.order", json!([R1, R2]), json!([R2, R1]))],
        },
        Row {
            name: "an operator joined: that operator's joined state, nobody replaced",
            given: support(),
            when: ChannelEvent::OperatorJoined { user_id: BOB },
            then: vec![it("operators.joined", BOB, json!(false), json!(true))],
        },
        Row {
            name: "an operator left",
            given: support(),
            when: ChannelEvent::OperatorLeft { user_id: ADA, reason: LeaveReason::Inactive },
            then: vec![it("operators.joined", ADA, json!(true), json!(false))],
        },
    ];
    check(rows, channel_kind, 13);
}

// ---------------------------------------------------------------------------------------------
// Users

fn user_kind(e: &UserEvent) -> usize {
    use UserEvent::*;
    match e {
        UserCreated { .. } => 0,
        UserProfileUpdated { .. } => 1,
        UserRoleChanged { .. } => 2,
        PasswordChanged { .. } => 3,
        UserDeactivated {} => 4,
        UserReactivated {} => 5,
        TokenIssued { .. } => 6,
        StatusChanged { .. } => 7,
        ConversationAssigned { .. } => 8,
        ConversationReleased { .. } => 9,
    }
}

fn ada() -> Vec<UserEvent> {
    let at = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    vec![
        UserEvent::UserCreated {
            user_id: ADA,
            name: "Ada".into(),
            login: Email::parse("l", "ada@example.com").unwrap(),
            chat_name: None,
            languages: vec!["fr".into()],
            country: None,
            role: Role::Operator,
            password_hash: "$argon2id$one".into(),
        },
        UserEvent::TokenIssued { token_sha256: "t1".into(), expires_at: at },
        UserEvent::StatusChanged { status: Status::Online, reason: StatusReason::Chosen },
        UserEvent::ConversationAssigned { session_id: SUPPORT, at },
    ]
}

#[test]
fn user_events() {
    let at = Utc.with_ymd_and_hms(2030, 1, 2, 0, 0, 0).unwrap();
    let rows: Vec<Row<User>> = vec![
        Row {
            name: "a creation: the password shows as redacted",
            given: vec![],
            when: ada()[0].clone(),
            then: vec![
                ch("active", NULL, json!(true)),
                ch("languages", NULL, json!(["fr"])),
                ch("login", NULL, json!("ada@example.com")),
                ch("name", NULL, json!("Ada")),
                ch("password", NULL, json!("[redacted]")),
                ch("role", NULL, json!("operator")),
                ch("status", NULL, json!("offline")),
                ch("tokens", NULL, json!(0)),
            ],
        },
        Row {
            name: "a profile update records what it changed",
            given: ada(),
            when: UserEvent::UserProfileUpdated {
                name: "Ada".into(),
                chat_name: Some("Ada L.".into()),
                languages: vec!["fr".into()],
                country: Some(Country::parse("c", "BE").unwrap()),
            },
            then: vec![ch("chat_name", NULL, json!("Ada L.")), ch("country", NULL, json!("BE"))],
        },
        Row {
            name: "role",
            given: ada(),
            when: UserEvent::UserRoleChanged { role: Role::Admin },
            then: vec![ch("role", json!("operator"), json!("admin"))],
        },
        Row {
            name: "a new password is a change of password, redacted, and revokes the tokens",
            given: ada(),
            when: UserEvent::PasswordChanged { password_hash: "$argon2id$two".into() },
            then: vec![ch("password", json!("[redacted]"), json!("[redacted]")), ch("tokens", json!(1), json!(0))],
        },
        Row {
            name: "deactivated",
            given: ada(),
            when: UserEvent::UserDeactivated {},
            then: vec![
                ch("active", json!(true), json!(false)),
                ch("status", json!("online"), json!("offline")),
                ch("tokens", json!(1), json!(0)),
            ],
        },
        Row {
            name: "reactivated",
            given: [ada(), vec![UserEvent::UserDeactivated {}]].concat(),
            when: UserEvent::UserReactivated {},
            then: vec![ch("active", json!(false), json!(true))],
        },
        Row {
            name: "a token issued: one more live token, its digest never shown",
            given: ada(),
            when: UserEvent::TokenIssued { token_sha256: "t2".into(), expires_at: at },
            then: vec![ch("tokens", json!(1), json!(2))],
        },
        Row {
            name: "status",
            given: ada(),
            when: UserEvent::StatusChanged { status: Status::Away, reason: StatusReason::Inactive },
            then: vec![ch("status", json!("online"), json!("away"))],
        },
        Row {
            name: "a conversation assigned",
            given: ada(),
            when: UserEvent::ConversationAssigned { session_id: SALES, at },
            then: vec![it("open_conversations", SALES, NULL, json!({"id": SALES}))],
        },
        Row {
            name: "a conversation released",
            given: ada(),
            when: UserEvent::ConversationReleased { session_id: SUPPORT, reason: None },
            then: vec![it("open_conversations", SUPPORT, json!({"id": SUPPORT}), NULL)],
        },
    ];
    check(rows, user_kind, 10);
}

// ---------------------------------------------------------------------------------------------
// Chatbot scripts

fn chatbot_kind(e: &ChatbotEvent) -> usize {
    use ChatbotEvent::*;
    match e {
        ChatbotCreated { .. } => 0,
        ChatbotChanged { .. } => 1,
        ChatbotStepAdded { .. } => 2,
        ChatbotStepEdited { .. } => 3,
        ChatbotStepRemoved { .. } => 4,
        ChatbotStepsReordered { .. } => 5,
        ChatbotAnswerAdded { .. } => 6,
        ChatbotAnswerEdited { .. } => 7,
        ChatbotAnswerRemoved { .. } => 8,
        ChatbotAnswersReordered { .. } => 9,
    }
}

const S1: Uuid = Uuid::from_u128(31);
const S2: Uuid = Uuid::from_u128(32);
const S3: Uuid = Uuid::from_u128(33);
const YES: Uuid = Uuid::from_u128(41);
const NO: Uuid = Uuid::from_u128(42);

/// A question (S1: yes or no), then a text step S2 only if "yes".
fn bot() -> Vec<ChatbotEvent> {
    vec![
        ChatbotEvent::ChatbotCreated { chatbot_id: SALES, title: "Sales".into(), author_name: None, active: true },
        ChatbotEvent::ChatbotStepAdded {
            step_id: S1,
            step_type: StepType::QuestionSelection,
            message: "Buy?".into(),
            index: 0,
        },
        ChatbotEvent::ChatbotAnswerAdded { step_id: S1, answer_id: YES, label: "Yes".into(), redirect_link: None },
        ChatbotEvent::ChatbotAnswerAdded { step_id: S1, answer_id: NO, label: "No".into(), redirect_link: None },
        ChatbotEvent::ChatbotStepAdded { step_id: S2, step_type: StepType::Text, message: "Great".into(), index: 1 },
        ChatbotEvent::ChatbotStepEdited {
            step_id: S2,
            step_type: StepType::Text,
            message: "Great".into(),
            only_if: vec![YES],
        },
    ]
}

fn s1_json() -> Value {
    json!({"id": S1, "step_type": "question_selection", "message": "Buy?", "only_if": [], "answers": [
        {"id": YES, "label": "Yes", "redirect_link": null},
        {"id": NO, "label": "No", "redirect_link": null},
    ]})
}

#[test]
fn chatbot_events() {
    let rows: Vec<Row<Chatbot>> = vec![
        Row {
            name: "a creation; the author name visitors see is the title",
            given: vec![],
            when: bot()[0].clone(),
            then: vec![
                ch("active", NULL, json!(true)),
                ch("author_name", NULL, json!("Sales")),
                ch("title", NULL, json!("Sales")),
            ],
        },
        Row {
            name: "changed",
            given: bot(),
            when: ChatbotEvent::ChatbotChanged {
                title: "Sales".into(),
                author_name: Some("Max".into()),
                active: false,
            },
            then: vec![ch("active", json!(true), json!(false)), ch("author_name", json!("Sales"), json!("Max"))],
        },
        Row {
            name: "a step added first: the step and the new order",
            given: bot(),
            when: ChatbotEvent::ChatbotStepAdded {
                step_id: S3,
                step_type: StepType::ForwardOperator,
                message: "Wait".into(),
                index: 0,
            },
            then: vec![
                it(
                    "steps",
                    S3,
                    NULL,
                    json!({"id": S3, "step_type": "forward_operator", "message": "Wait", "answers": [], "only_if": []}),
                ),
                ch("steps.order", json!([S1, S2]), json!([S3, S1, S2])),
            ],
        },
        Row {
            name: "a step edited",
            given: bot(),
            when: ChatbotEvent::ChatbotStepEdited {
                step_id: S2,
                step_type: StepType::Text,
                message: "Super".into(),
                only_if: vec![YES, NO],
            },
            then: vec![
                it("steps.message", S2, json!("Great"), json!("Super")),
                it("steps.only_if", S2, json!([YES]), json!([YES, NO])),
            ],
        },
        Row {
            name: "a step removed: with its answers, and the conditions on them",
            given: bot(),
            when: ChatbotEvent::ChatbotStepRemoved { step_id: S1 },
            then: vec![it("steps.only_if", S2, json!([YES]), json!([])), it("steps", S1, s1_json(), NULL)],
        },
        Row {
            name: "steps reordered: the order, and the conditions it pruned",
            given: bot(),
            when: ChatbotEvent::ChatbotStepsReordered { order: vec![S2, S1], pruned: vec![YES] },
            then: vec![
                it("steps.only_if", S2, json!([YES]), json!([])),
                ch("steps.order", json!([S1, S2]), json!([S2, S1])),
            ],
        },
        Row {
            name: "an answer added to a step",
            given: bot(),
            when: ChatbotEvent::ChatbotAnswerAdded {
                step_id: S1,
                answer_id: S3,
                label: "Maybe".into(),
                redirect_link: Some("/faq".into()),
            },
            then: vec![it("steps.answers", S3, NULL, json!({"id": S3, "label": "Maybe", "redirect_link": "/faq"}))],
        },
        Row {
            name: "an answer edited",
            given: bot(),
            when: ChatbotEvent::ChatbotAnswerEdited {
                step_id: S1,
                answer_id: NO,
                label: "Nope".into(),
                redirect_link: None,
            },
            then: vec![it("steps.answers.label", NO, json!("No"), json!("Nope"))],
        },
        Row {
            name: "an answer removed, and the conditions on it",
            given: bot(),
            when: ChatbotEvent::ChatbotAnswerRemoved { step_id: S1, answer_id: YES },
            then: vec![
                it("steps.answers", YES, json!({"id": YES, "label": "Yes", "redirect_link": null}), NULL),
                it("steps.only_if", S2, json!([YES]), json!([])),
            ],
        },
        Row {
            name: "answers reordered: the order of that step's answers",
            given: bot(),
            when: ChatbotEvent::ChatbotAnswersReordered { step_id: S1, order: vec![NO, YES] },
            then: vec![it("steps.answers.order", S1, json!([YES, NO]), json!([NO, YES]))],
        },
    ];
    check(rows, chatbot_kind, 10);
}

// ---------------------------------------------------------------------------------------------
// Canned responses

fn canned_kind(e: &CannedEvent) -> usize {
    use CannedEvent::*;
    match e {
        CannedResponseCreated { .. } => 0,
        CannedResponseEdited { .. } => 1,
        CannedResponseShared {} => 2,
        CannedResponseUnshared {} => 3,
        CannedResponseDeleted {} => 4,
        CannedResponseUsed { .. } => 5,
    }
}

fn hello() -> Vec<CannedEvent> {
    vec![CannedEvent::CannedResponseCreated {
        canned_id: R1,
        owner_id: ADA,
        shortcut: "hello".into(),
        text: "Hello!".into(),
        shared: false,
    }]
}

#[test]
fn canned_events() {
    let at = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let rows: Vec<Row<CannedResponse>> = vec![
        Row {
            name: "a creation",
            given: vec![],
            when: hello()[0].clone(),
            then: vec![
                ch("deleted", NULL, json!(false)),
                ch("owner_id", NULL, json!(ADA)),
                ch("shared", NULL, json!(false)),
                ch("shortcut", NULL, json!("hello")),
                ch("text", NULL, json!("Hello!")),
                ch("use_count", NULL, json!(0)),
            ],
        },
        Row {
            name: "edited: only the text changed",
            given: hello(),
            when: CannedEvent::CannedResponseEdited { shortcut: "hello".into(), text: "Hi!".into() },
            then: vec![ch("text", json!("Hello!"), json!("Hi!"))],
        },
        Row {
            name: "shared",
            given: hello(),
            when: CannedEvent::CannedResponseShared {},
            then: vec![ch("shared", json!(false), json!(true))],
        },
        Row {
            name: "unshared",
            given: [hello(), vec![CannedEvent::CannedResponseShared {}]].concat(),
            when: CannedEvent::CannedResponseUnshared {},
            then: vec![ch("shared", json!(true), json!(false))],
        },
        Row {
            name: "deleted",
            given: hello(),
            when: CannedEvent::CannedResponseDeleted {},
            then: vec![ch("deleted", json!(false), json!(true))],
        },
        Row {
            name: "used",
            given: hello(),
            when: CannedEvent::CannedResponseUsed { by: BOB, session_id: SUPPORT, at },
            then: vec![ch("last_used_at", NULL, json!("2030-01-01T00:00:00Z")), ch("use_count", json!(0), json!(1))],
        },
    ];
    check(rows, canned_kind, 6);
}

// ---------------------------------------------------------------------------------------------
// Conversations (their history route)

fn session_kind(e: &SessionEvent) -> usize {
    use SessionEvent::*;
    match e {
        SessionStarted { .. } => 0,
        SessionQueued {} => 1,
        OperatorAssigned { .. } => 2,
        MessagePosted { .. } => 3,
        MessageEdited { .. } => 4,
        MessageDeleted { .. } => 5,
        MessagesSeen { .. } => 6,
        PageVisited { .. } => 7,
        SessionTransferred { .. } => 8,
        SessionClosed { .. } => 9,
        ConversationRated { .. } => 10,
        ChatbotStarted { .. } => 11,
        ChatbotStepPosted { .. } => 12,
        ChatbotForwarding { .. } => 13,
        ChatbotAnswered { .. } => 14,
        ChatbotSaid { .. } => 15,
        ChatbotRestarted { .. } => 16,
        ChatbotEnded { .. } => 17,
    }
}

const M1: Uuid = Uuid::from_u128(51);
const M2: Uuid = Uuid::from_u128(52);
const M3: Uuid = Uuid::from_u128(53);

fn started() -> SessionEvent {
    SessionEvent::SessionStarted {
        session_id: SALES,
        channel_id: SUPPORT,
        visitor_name: "Visitor #1".into(),
        anonymous: true,
        page_url: "/shop".into(),
        country: None,
        languages: vec![],
        visitor_token_sha256: "digest".into(),
    }
}

/// Started, Ada assigned, the visitor said "hi" (M1).
fn chat() -> Vec<SessionEvent> {
    vec![
        started(),
        SessionEvent::OperatorAssigned { operator_id: ADA, display_name: "Ada".into(), how: Assignment::Routed },
        SessionEvent::MessagePosted { message_id: M1, author: Party::Visitor, text: "hi".into(), welcome: false },
    ]
}

fn message(id: Uuid, author: Value, text: &str) -> Value {
    json!({"id": id, "author": author, "text": text, "edited": false, "deleted": false, "welcome": false})
}

fn script() -> Script {
    Script {
        chatbot_id: SALES,
        version: 5,
        title: "Sales".into(),
        author_name: "Max".into(),
        steps: vec![
            Step {
                step_id: S1,
                step_type: StepType::QuestionSelection,
                message: "Buy?".into(),
                answers: vec![Answer { answer_id: YES, label: "Yes".into(), redirect_link: None }],
                only_if: vec![],
            },
            Step {
                step_id: S2,
                step_type: StepType::ForwardOperator,
                message: "Wait".into(),
                answers: vec![],
                only_if: vec![],
            },
        ],
    }
}

/// Started with a bot that asked S1 (M1) and got "Yes" (M2).
fn bot_chat() -> Vec<SessionEvent> {
    vec![
        started(),
        SessionEvent::ChatbotStarted { script: script() },
        SessionEvent::ChatbotStepPosted { message_id: M1, step_id: S1, text: "Buy?".into() },
        SessionEvent::ChatbotAnswered {
            message_id: M2,
            step_id: S1,
            answer_id: Some(YES),
            text: "Yes".into(),
            accepted: true,
        },
    ]
}

#[test]
fn conversation_events() {
    let system = json!({"kind": "system"});
    let visitor = json!({"kind": "visitor"});
    let rows: Vec<Row<Session>> = vec![
        Row {
            name: "started: the visitor's token is not shown",
            given: vec![],
            when: started(),
            then: vec![
                ch("channel_id", NULL, json!(SUPPORT)),
                ch("page", NULL, json!("/shop")),
                ch("status", NULL, json!("waiting")),
                ch("visitor_name", NULL, json!("Visitor #1")),
            ],
        },
        Row {
            name: "queued right away: it was waiting already",
            given: vec![started()],
            when: SessionEvent::SessionQueued {},
            then: vec![],
        },
        Row {
            name: "an operator assigned",
            given: vec![started()],
            when: SessionEvent::OperatorAssigned {
                operator_id: ADA,
                display_name: "Ada".into(),
                how: Assignment::Routed,
            },
            then: vec![
                ch("operator.id", NULL, json!(ADA)),
                ch("operator.name", NULL, json!("Ada")),
                ch("status", json!("waiting"), json!("active")),
            ],
        },
        Row {
            name: "a second message is a message added, not a change of the first one's text",
            given: chat(),
            when: SessionEvent::MessagePosted {
                message_id: M2,
                author: Party::Operator { id: ADA },
                text: "hello".into(),
                welcome: false,
            },
            then: vec![it("messages", M2, NULL, message(M2, json!({"kind": "operator", "id": ADA}), "hello"))],
        },
        Row {
            name: "a message edited",
            given: chat(),
            when: SessionEvent::MessageEdited { message_id: M1, text: "hi there".into() },
            then: vec![
                it("messages.edited", M1, json!(false), json!(true)),
                it("messages.text", M1, json!("hi"), json!("hi there")),
            ],
        },
        Row {
            name: "a message deleted",
            given: chat(),
            when: SessionEvent::MessageDeleted { message_id: M1 },
            then: vec![it("messages.deleted", M1, json!(false), json!(true))],
        },
        Row {
            name: "seen",
            given: chat(),
            when: SessionEvent::MessagesSeen { by: Party::Operator { id: ADA }, up_to: M1 },
            then: vec![ch("seen_by_operator", NULL, json!(M1))],
        },
        Row {
            name: "a page visited",
            given: chat(),
            when: SessionEvent::PageVisited { url: "/cart".into() },
            then: vec![ch("page", json!("/shop"), json!("/cart"))],
        },
        Row {
            name: "transferred to another channel",
            given: chat(),
            when: SessionEvent::SessionTransferred { from_operator: Some(ADA), to_channel: SALES },
            then: vec![
                ch("channel_id", json!(SUPPORT), json!(SALES)),
                ch("operator.id", json!(ADA), NULL),
                ch("operator.name", json!("Ada"), NULL),
                ch("status", json!("active"), json!("waiting")),
            ],
        },
        Row {
            name: "closed",
            given: chat(),
            when: SessionEvent::SessionClosed {
                by: Party::Visitor,
                reason: CloseReason::VisitorLeft,
                started_channel_id: Some(SUPPORT),
            },
            then: vec![ch("status", json!("active"), json!("closed"))],
        },
        Row {
            name: "rated: the rating set and its message added; no feedback is no change",
            given: chat(),
            when: SessionEvent::ConversationRated {
                message_id: M2,
                value: 5,
                feedback: None,
                operator_id: ADA,
                channel_id: SUPPORT,
            },
            then: vec![
                it("messages", M2, NULL, message(M2, system.clone(), "Rating: Happy")),
                ch("rating.channel_id", NULL, json!(SUPPORT)),
                ch("rating.operator_id", NULL, json!(ADA)),
                ch("rating.value", NULL, json!(5)),
            ],
        },
        Row {
            name: "a chatbot started",
            given: vec![started()],
            when: SessionEvent::ChatbotStarted { script: script() },
            then: vec![
                ch("bot.awaiting", NULL, json!(false)),
                ch("bot.chatbot_id", NULL, json!(SALES)),
                ch("bot.forwarding", NULL, json!(false)),
                ch("bot.title", NULL, json!("Sales")),
                ch("bot.version", NULL, json!(5)),
                ch("status", json!("waiting"), json!("bot")),
            ],
        },
        Row {
            name: "a step posted: the bot's message and where it is",
            given: bot_chat()[..2].to_vec(),
            when: bot_chat()[2].clone(),
            then: vec![
                ch("bot.awaiting", json!(false), json!(true)),
                ch("bot.step", NULL, json!(S1)),
                it("messages", M1, NULL, message(M1, system.clone(), "Buy?")),
            ],
        },
        Row {
            name: "forwarding",
            given: bot_chat(),
            when: SessionEvent::ChatbotForwarding { step_id: S2 },
            then: vec![ch("bot.forwarding", json!(false), json!(true)), ch("bot.step", json!(S1), json!(S2))],
        },
        Row {
            name: "answered: the visitor's message and the answer collected",
            given: bot_chat()[..3].to_vec(),
            when: bot_chat()[3].clone(),
            then: vec![
                it("bot.answers", S1, NULL, json!({"id": S1, "question": "Buy?", "answer_id": YES, "answer": "Yes"})),
                ch("bot.awaiting", json!(true), json!(false)),
                it("messages", M2, NULL, message(M2, visitor.clone(), "Yes")),
            ],
        },
        Row {
            name: "the bot said something",
            given: bot_chat(),
            when: SessionEvent::ChatbotSaid { message_id: M3, text: "Again?".into() },
            then: vec![it("messages", M3, NULL, message(M3, system.clone(), "Again?"))],
        },
        Row {
            name: "restarted: the answers no longer count",
            given: bot_chat(),
            when: SessionEvent::ChatbotRestarted { message_id: M3 },
            then: vec![
                it("bot.answers", S1, json!({"id": S1, "question": "Buy?", "answer_id": YES, "answer": "Yes"}), NULL),
                ch("bot.step", json!(S1), NULL),
                it("messages", M3, NULL, message(M3, system.clone(), "Restarting conversation...")),
            ],
        },
        Row {
            name: "the bot ended",
            given: bot_chat(),
            when: SessionEvent::ChatbotEnded { outcome: BotOutcome::Forwarded { operator_id: ADA } },
            then: vec![ch("bot.ended.kind", NULL, json!("forwarded")), ch("bot.ended.operator_id", NULL, json!(ADA))],
        },
    ];
    check(rows, session_kind, 18);
}
