use uuid::Uuid;

use super::*;
use crate::event::{decode, encode};
use crate::testing::{given, then, History};

impl History for SessionEvent {
    type State = Session;
}

const ADA: Uuid = Uuid::from_u128(1);
const BOB: Uuid = Uuid::from_u128(2);
const CHANNEL: Uuid = Uuid::from_u128(10);
const ADA_: Party = Party::Operator { id: ADA };
const BOB_: Party = Party::Operator { id: BOB };

fn id(n: u128) -> Uuid {
    Uuid::from_u128(1000 + n)
}

fn begin(operator: Option<Uuid>, name: Option<&str>) -> Vec<SessionEvent> {
    start(
        &Session::default(),
        Start {
            session_id: Uuid::from_u128(99),
            channel_id: CHANNEL,
            visitor_name: name.map(String::from),
            visitor_number: 7,
            page_url: "/shop".into(),
            country: None,
            languages: vec!["fr".into()],
            visitor_token_sha256: "digest".into(),
            operator: operator.map(|o| (o, "Ada from Support".into())),
            welcome_message_id: id(0),
            welcome_text: "Hello, how may I help you?".into(),
        },
    )
    .unwrap()
}

#[test]
fn a_routed_conversation_opens_with_the_welcome_message_from_its_operator() {
    let h = begin(Some(ADA), None);
    assert!(
        matches!(&h[0], SessionEvent::SessionStarted { visitor_name, anonymous: true, .. } if visitor_name == "Visitor #7")
    );
    assert_eq!(
        h[1],
        SessionEvent::OperatorAssigned {
            operator_id: ADA,
            display_name: "Ada from Support".into(),
            how: Assignment::Routed
        }
    );
    assert_eq!(
        h[2],
        SessionEvent::MessagePosted {
            message_id: id(0),
            author: ADA_,
            text: "Hello, how may I help you?".into(),
            welcome: true
        }
    );
    let s = given(&h);
    assert_eq!((s.status, s.operator, s.handlers.clone()), (SessionStatus::Active, Some(ADA), vec![ADA]));
}

#[test]
fn a_start_input_is_parsed_whole_with_every_bad_field_named() {
    // Given a visitor's name, page and languages
    let ok = VisitorInput::parse(Some("  Marie "), None, &["FR-be".into(), "en".into()]).unwrap();
    // Then they are normalised; no name is anonymous and no URL is the home page
    assert_eq!(
        ok,
        VisitorInput { name: Some("Marie".into()), page_url: "/".into(), languages: vec!["fr_BE".into(), "en".into()] }
    );
    assert_eq!(VisitorInput::parse(Some("  "), Some(""), &[]).unwrap().name, None);
    // When every part is wrong, then every part is named
    let long_url = format!("/{}", "a".repeat(MAX_URL_CHARS));
    let bad = VisitorInput::parse(Some("Ma\0rie"), Some(&long_url), &["english".into()]).unwrap_err();
    let fields: Vec<&str> = bad.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "url", "languages[0]"]);
    let too_long = VisitorInput::parse(Some(&"x".repeat(MAX_VISITOR_NAME_CHARS + 1)), None, &[]).unwrap_err();
    assert_eq!(too_long[0].field, "name");
    let many = vec!["en".to_string(); MAX_LANGUAGES + 1];
    assert_eq!(VisitorInput::parse(None, None, &many).unwrap_err()[0].field, "languages");
}

#[test]
fn with_nobody_available_it_waits_and_the_visitor_can_still_write() {
    let h = begin(None, Some("Marie"));
    assert_eq!(h.last(), Some(&SessionEvent::SessionQueued {}));
    let h = then(&h, post(&given(&h), Party::Visitor, id(1), "Anyone there?").unwrap());
    assert_eq!(post(&given(&h), ADA_, id(2), "Hi"), Err(SessionError::NotYours), "not taken yet");
    let h = then(&h, take(&given(&h), ADA, "Ada", Assignment::Taken).unwrap());
    assert_eq!(
        take(&given(&h), BOB, "Bob", Assignment::Taken),
        Err(SessionError::AlreadyTaken),
        "exactly one takes it"
    );
    assert!(post(&given(&h), ADA_, id(2), "Hi Marie").is_ok());
}

#[test]
fn a_retried_post_is_one_message_and_a_reused_id_is_refused() {
    let h = begin(Some(ADA), None);
    let h = then(&h, post(&given(&h), Party::Visitor, id(1), "Hello").unwrap());
    assert_eq!(post(&given(&h), Party::Visitor, id(1), "Hello"), Ok(vec![]));
    assert_eq!(post(&given(&h), Party::Visitor, id(1), "Other"), Err(SessionError::MessageIdReused));
    assert_eq!(post(&given(&h), BOB_, id(3), "Hi"), Err(SessionError::NotYours));
}

#[test]
fn messages_are_validated_but_kept_verbatim() {
    let h = begin(Some(ADA), None);
    let s = given(&h);
    assert!(matches!(post(&s, Party::Visitor, id(1), "   "), Err(SessionError::Invalid(_))));
    assert!(matches!(post(&s, Party::Visitor, id(1), &"x".repeat(4001)), Err(SessionError::Invalid(_))));
    let html = "<b>bold</b> & \"quotes\"\n";
    let posted = post(&s, Party::Visitor, id(1), html).unwrap();
    assert!(matches!(&posted[0], SessionEvent::MessagePosted { text, .. } if text == html));
    assert!(post(&s, Party::Visitor, id(2), &"é".repeat(4000)).is_ok(), "characters, not bytes");
}

#[test]
fn operators_edit_and_delete_only_their_own_messages() {
    let h = begin(Some(ADA), None);
    let h = then(&h, post(&given(&h), Party::Visitor, id(1), "Hi").unwrap());
    let h = then(&h, post(&given(&h), ADA_, id(2), "Helo").unwrap());
    assert_eq!(edit(&given(&h), ADA_, id(1), "x"), Err(SessionError::NotAuthor));
    let h = then(&h, edit(&given(&h), ADA_, id(2), "Hello").unwrap());
    let m = &given(&h).messages[2];
    assert_eq!((m.text.as_str(), m.edited), ("Hello", true));
    let h = then(&h, delete(&given(&h), ADA_, id(2)).unwrap());
    assert_eq!(delete(&given(&h), ADA_, id(2)), Err(SessionError::MessageNotFound));
    assert_eq!(edit(&given(&h), ADA_, id(9), "x"), Err(SessionError::MessageNotFound));
}

#[test]
fn seen_marks_only_move_forward() {
    let h = begin(Some(ADA), None);
    let h = then(&h, post(&given(&h), Party::Visitor, id(1), "a").unwrap());
    let h = then(&h, post(&given(&h), Party::Visitor, id(2), "b").unwrap());
    let h = then(&h, seen(&given(&h), ADA_, id(2)).unwrap());
    assert_eq!(seen(&given(&h), ADA_, id(1)), Ok(vec![]));
    assert_eq!(given(&h).seen_by_operator, Some(id(2)));
    assert_eq!(seen(&given(&h), BOB_, id(2)), Err(SessionError::NotYours));
    assert_eq!(seen(&given(&h), Party::Visitor, id(5)), Err(SessionError::MessageNotFound));
}

#[test]
fn a_transfer_keeps_who_handled_it_when() {
    let h = begin(Some(ADA), None);
    let h = then(&h, transfer(&given(&h), ADA_, false, CHANNEL, Some((BOB, "Bob".into()))).unwrap());
    let s = given(&h);
    assert_eq!((s.operator, s.handlers.clone()), (Some(BOB), vec![ADA, BOB]));
    assert_eq!(transfer(&s, ADA_, false, CHANNEL, None), Err(SessionError::NotYours), "Ada no longer has it");
    let to_queue = transfer(&s, BOB_, false, Uuid::from_u128(11), None).unwrap();
    let s = given(&then(&h, to_queue));
    assert_eq!((s.status, s.channel_id), (SessionStatus::Waiting, Some(Uuid::from_u128(11))));
}

#[test]
fn the_visitor_leaving_closes_it_with_a_system_message_and_nothing_more_is_posted() {
    let h = begin(Some(ADA), None);
    let closing = close(&given(&h), Party::Visitor, false, id(5)).unwrap();
    assert_eq!(
        closing,
        vec![
            SessionEvent::MessagePosted {
                message_id: id(5),
                author: Party::System,
                text: VISITOR_LEFT.into(),
                welcome: false
            },
            SessionEvent::SessionClosed {
                by: Party::Visitor,
                reason: CloseReason::VisitorLeft,
                started_channel_id: Some(CHANNEL)
            }
        ]
    );
    let h = then(&h, closing);
    assert_eq!(post(&given(&h), Party::Visitor, id(6), "wait"), Err(SessionError::Closed));
    assert_eq!(post(&given(&h), ADA_, id(6), "bye"), Err(SessionError::Closed));
    assert_eq!(close(&given(&h), ADA_, false, id(7)), Ok(vec![]));
    assert_eq!(close(&given(&begin(Some(ADA), None)), BOB_, false, id(7)), Err(SessionError::NotYours));
    assert!(close(&given(&begin(Some(ADA), None)), BOB_, true, id(7)).is_ok(), "admins may close any");
}

#[test]
fn only_conversations_the_visitor_never_wrote_in_are_abandoned() {
    let h = begin(Some(ADA), None);
    assert_eq!(
        abandon(&given(&h)).unwrap(),
        vec![SessionEvent::SessionClosed {
            by: Party::System,
            reason: CloseReason::Abandoned,
            started_channel_id: Some(CHANNEL)
        }]
    );
    let h = then(&h, post(&given(&h), Party::Visitor, id(1), "hi").unwrap());
    assert_eq!(abandon(&given(&h)), Ok(vec![]));
}

fn rated(message_id: Uuid, value: u8, feedback: Option<&str>) -> SessionEvent {
    SessionEvent::ConversationRated {
        message_id,
        value,
        feedback: feedback.map(String::from),
        operator_id: ADA,
        channel_id: CHANNEL,
    }
}

#[test]
fn the_visitor_rates_a_closed_conversation_and_the_rating_shows_as_a_system_message() {
    let h = begin(Some(ADA), None);
    let h = then(&h, close(&given(&h), Party::Visitor, false, id(5)).unwrap());
    let rating = rate(&given(&h), Party::Visitor, 1, Some("Too slow.\nNo answer."), id(6)).unwrap();
    assert_eq!(rating, vec![rated(id(6), 1, Some("Too slow.\nNo answer."))]);
    let s = given(&then(&h, rating));
    let m = s.messages.last().unwrap();
    assert_eq!(
        (m.message_id, m.author, m.text.as_str()),
        (id(6), Party::System, "Rating: Unhappy\nToo slow.\nNo answer.")
    );
    assert_eq!(s.rating.map(|r| (r.value, r.operator_id)), Some((1, ADA)));
}

#[test]
fn an_open_conversation_can_be_rated_without_feedback() {
    let h = begin(Some(ADA), None);
    assert_eq!(rate(&given(&h), Party::Visitor, 5, None, id(1)), Ok(vec![rated(id(1), 5, None)]));
    assert_eq!(
        rate(&given(&h), Party::Visitor, 3, Some("  \n "), id(1)),
        Ok(vec![rated(id(1), 3, None)]),
        "blank feedback is none"
    );
    assert_eq!(rating_message(3, None), "Rating: Neutral");
}

#[test]
fn a_later_rating_replaces_the_earlier_one_and_keeps_who_was_rated() {
    let h = begin(Some(ADA), None);
    let h = then(&h, rate(&given(&h), Party::Visitor, 1, Some("bad"), id(1)).unwrap());
    // Handed to Bob afterwards: the rating still rates Ada in the first channel.
    let h = then(&h, transfer(&given(&h), ADA_, false, Uuid::from_u128(11), Some((BOB, "Bob".into()))).unwrap());
    let again = rate(&given(&h), Party::Visitor, 5, Some("sorted out"), id(2)).unwrap();
    assert_eq!(again, vec![rated(id(2), 5, Some("sorted out"))]);
    let s = given(&then(&h, again));
    assert_eq!(s.rating.as_ref().map(|r| (r.value, r.message_id)), Some((5, id(2))));
    let texts: Vec<&str> = s.messages.iter().filter(|m| m.author == Party::System).map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["Rating: Unhappy\nbad", "Rating: Happy\nsorted out"], "both stay in the history");
}

#[test]
fn a_conversation_moved_to_another_channel_is_rated_in_the_channel_it_started_in() {
    // Given: started in CHANNEL with Ada, handed to Bob in another channel.
    let h = begin(Some(ADA), None);
    let h = then(&h, transfer(&given(&h), ADA_, false, Uuid::from_u128(11), Some((BOB, "Bob".into()))).unwrap());
    // When the visitor rates, then the rating names Bob and the channel it started in.
    let rating = rate(&given(&h), Party::Visitor, 5, None, id(1)).unwrap();
    let [SessionEvent::ConversationRated { operator_id, channel_id, .. }] = rating.as_slice() else {
        panic!("{rating:?}")
    };
    assert_eq!((*operator_id, *channel_id), (BOB, CHANNEL));
}

#[test]
fn a_retried_rating_is_one_rating_and_a_reused_message_id_is_refused() {
    let h = begin(Some(ADA), None);
    let h = then(&h, rate(&given(&h), Party::Visitor, 3, Some("ok"), id(1)).unwrap());
    assert_eq!(rate(&given(&h), Party::Visitor, 3, Some("ok"), id(1)), Ok(vec![]));
    assert_eq!(rate(&given(&h), Party::Visitor, 5, Some("ok"), id(1)), Err(SessionError::MessageIdReused));
    assert_eq!(
        rate(&given(&h), Party::Visitor, 5, None, id(0)),
        Err(SessionError::MessageIdReused),
        "the welcome message's id"
    );
}

#[test]
fn only_the_visitor_rates_and_only_a_conversation_that_exists() {
    let h = begin(Some(ADA), None);
    assert_eq!(rate(&given(&h), ADA_, 5, None, id(1)), Err(SessionError::NotYours), "its operator");
    assert_eq!(rate(&given(&h), BOB_, 5, None, id(1)), Err(SessionError::NotYours));
    assert_eq!(rate(&given(&h), Party::System, 5, None, id(1)), Err(SessionError::NotYours));
    assert_eq!(rate(&Session::default(), Party::Visitor, 5, None, id(1)), Err(SessionError::NotFound));
}

#[test]
fn a_rating_is_5_3_or_1_with_at_most_4000_characters_of_feedback() {
    let s = given(&begin(Some(ADA), None));
    for bad in [0, 2, 4, 6, -1, 256 + 5] {
        let refused = rate(&s, Party::Visitor, bad, None, id(1));
        assert!(matches!(&refused, Err(SessionError::Invalid(i)) if i.field == "value"), "{bad}: {refused:?}");
    }
    let long = rate(&s, Party::Visitor, 5, Some(&"é".repeat(4001)), id(1));
    assert!(matches!(&long, Err(SessionError::Invalid(i)) if i.field == "feedback"), "{long:?}");
    assert!(rate(&s, Party::Visitor, 5, Some(&"é".repeat(4000)), id(1)).is_ok(), "characters, not bytes");
    let nul = rate(&s, Party::Visitor, 5, Some("a\0b"), id(1));
    assert!(matches!(&nul, Err(SessionError::Invalid(i)) if i.field == "feedback"), "{nul:?}");
}

#[test]
fn a_conversation_nobody_answered_cannot_be_rated() {
    let s = given(&begin(None, None));
    assert!(matches!(rate(&s, Party::Visitor, 5, None, id(1)), Err(SessionError::Invalid(_))));
}

#[test]
fn session_events_round_trip_through_their_stored_form() {
    let mut h = begin(Some(ADA), Some("Marie"));
    h.push(SessionEvent::MessagesSeen { by: Party::Visitor, up_to: id(0) });
    h.push(rated(id(1), 3, Some("fine")));
    h.push(rated(id(2), 5, None));
    for e in h {
        let (t, d) = encode(&e);
        assert_eq!(decode::<SessionEvent>(&t, &d).unwrap(), e, "{t}");
    }
    let (_, d) = encode(&SessionEvent::MessagesSeen { by: ADA_, up_to: id(0) });
    assert_eq!(d["by"], serde_json::json!({"kind": "operator", "id": ADA}));
}

// -----------------------------------------------------------------------------------------
// Chatbot runs

mod bot {
    use super::*;
    use crate::chatbot::{Answer, Script, Step, StepType};

    fn step(n: u128, step_type: StepType, message: &str, answers: &[(u128, Option<&str>)]) -> Step {
        Step {
            step_id: Uuid::from_u128(n),
            step_type,
            message: message.into(),
            answers: answers
                .iter()
                .map(|(a, link)| Answer {
                    answer_id: Uuid::from_u128(*a),
                    label: format!("answer {a}"),
                    redirect_link: link.map(String::from),
                })
                .collect(),
            only_if: vec![],
        }
    }

    const HELLO: u128 = 200;
    const TOPIC: u128 = 201;
    const EMAIL: u128 = 202;
    const FORWARD: u128 = 203;
    const BYE: u128 = 204;
    const SALES: u128 = 21;
    const DOCS: u128 = 22;

    fn script() -> Script {
        use StepType::*;
        Script {
            chatbot_id: Uuid::from_u128(7),
            version: 3,
            title: "Support bot".into(),
            author_name: "Robin".into(),
            steps: vec![
                step(HELLO, Text, "Hello!", &[]),
                step(
                    TOPIC,
                    QuestionSelection,
                    "What about?",
                    &[(SALES, None), (DOCS, Some("https://example.com/docs"))],
                ),
                step(EMAIL, QuestionEmail, "Your email?", &[]),
                step(FORWARD, ForwardOperator, "Let me find someone.", &[]),
                step(BYE, Text, "We will write to you.", &[]),
            ],
        }
    }

    fn started() -> Vec<SessionEvent> {
        started_with(script())
    }

    fn started_with(script: Script) -> Vec<SessionEvent> {
        let s = Start {
            session_id: Uuid::from_u128(99),
            channel_id: CHANNEL,
            visitor_name: None,
            visitor_number: 7,
            page_url: "/".into(),
            country: None,
            languages: vec![],
            visitor_token_sha256: "digest".into(),
            operator: None,
            welcome_message_id: id(0),
            welcome_text: "ignored".into(),
        };
        start_with_bot(&Session::default(), s, script).unwrap()
    }

    fn texts(events: &[SessionEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::ChatbotStepPosted { text, .. } | SessionEvent::ChatbotSaid { text, .. } => {
                    Some(format!("bot: {text}"))
                }
                SessionEvent::ChatbotAnswered { text, .. } => Some(format!("visitor: {text}")),
                SessionEvent::MessagePosted { text, .. } => Some(format!("system: {text}")),
                SessionEvent::ChatbotForwarding { .. } => Some("(forwarding)".into()),
                SessionEvent::ChatbotEnded { outcome } => Some(format!("(ended: {outcome:?})")),
                SessionEvent::SessionQueued {} => Some("(queued)".into()),
                SessionEvent::OperatorAssigned { display_name, .. } => Some(format!("(assigned {display_name})")),
                SessionEvent::ChatbotRestarted { .. } => Some("bot: Restarting conversation...".into()),
                _ => None,
            })
            .collect()
    }

    fn answer(h: &[SessionEvent], step: u128, m: u128, choice: Option<u128>, text: Option<&str>) -> Vec<SessionEvent> {
        bot_answer(&given(h), Uuid::from_u128(step), id(m), choice.map(Uuid::from_u128), text).unwrap()
    }

    /// Greeted, chose sales, gave an email: the bot stands at the forward.
    fn at_forward() -> Vec<SessionEvent> {
        let h = started();
        let h = then(&h, answer(&h, TOPIC, 1, Some(SALES), None));
        then(&h, answer(&h, EMAIL, 2, None, Some("marie@example.com")))
    }

    #[test]
    fn the_bot_says_its_welcome_steps_and_waits_for_the_first_question() {
        let h = started();
        assert!(matches!(&h[1], SessionEvent::ChatbotStarted { script } if script.version == 3));
        assert_eq!(texts(&h), vec!["bot: Hello!", "bot: What about?"]);
        let s = given(&h);
        assert_eq!(s.status, SessionStatus::Bot, "not queued while the bot answers");
        assert_eq!(s.bot.as_ref().unwrap().awaited().map(|s| s.step_id), Some(Uuid::from_u128(TOPIC)));
    }

    #[test]
    fn a_choice_then_an_invalid_email_retried_then_a_valid_one_reach_the_forward() {
        let h = started();
        let chose = answer(&h, TOPIC, 1, Some(SALES), None);
        assert_eq!(texts(&chose), vec!["visitor: answer 21", "bot: Your email?"]);
        let h = then(&h, chose);
        let bad = answer(&h, EMAIL, 2, None, Some("marie@"));
        assert_eq!(
            texts(&bad),
            vec!["visitor: marie@", "bot: 'marie@' does not look like a valid email. Can you please try again?"]
        );
        let h = then(&h, bad);
        let good = answer(&h, EMAIL, 3, None, Some("Marie@Example.com"));
        assert_eq!(texts(&good), vec!["visitor: Marie@example.com", "(forwarding)"]);
        let s = given(&then(&h, good));
        let run = s.bot.unwrap();
        assert!(run.forwarding);
        let collected: Vec<&str> = run.answers.iter().map(|a| a.answer.as_str()).collect();
        assert_eq!(collected, vec!["answer 21", "Marie@example.com"], "the invalid email does not count");
    }

    #[test]
    fn typed_text_answers_the_bot_only_while_it_waits_for_text() {
        let h = started();
        assert_eq!(text_answers(&given(&h)), None, "a choice is not typed");
        let h = then(&h, answer(&h, TOPIC, 1, Some(SALES), None));
        assert_eq!(text_answers(&given(&h)), Some(Uuid::from_u128(EMAIL)));
        let h = then(&h, answer(&h, EMAIL, 2, None, Some("marie@example.com")));
        assert_eq!(text_answers(&given(&h)), None, "at the forward the bot waits for routing");
        let h = then(&h, bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), Some((ADA, "Ada".into())), id(9)));
        assert_eq!(text_answers(&given(&h)), None, "an operator has it");
        assert_eq!(text_answers(&given(&begin(None, None))), None, "no bot");
    }

    #[test]
    fn answering_the_same_step_twice_is_answered_once() {
        let h = started();
        let h = then(&h, answer(&h, TOPIC, 1, Some(SALES), None));
        assert_eq!(answer(&h, TOPIC, 1, Some(SALES), None), vec![], "a retry with the same message id");
        assert_eq!(answer(&h, TOPIC, 5, Some(DOCS), None), vec![], "a double click");
        let early = bot_answer(&given(&h), Uuid::from_u128(FORWARD), id(6), None, Some("x"));
        assert_eq!(early, Err(BotError::NotAwaited));
        let wrong = bot_answer(&given(&h), Uuid::from_u128(EMAIL), id(6), None, None);
        assert!(matches!(wrong, Err(BotError::Session(SessionError::Invalid(i))) if i.field == "text"));
    }

    #[test]
    fn a_forward_with_an_operator_hands_over_with_what_the_bot_collected() {
        let h = at_forward();
        let found = bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), Some((ADA, "Ada".into())), id(9)).unwrap();
        assert_eq!(
            texts(&found),
            vec![
                "bot: Let me find someone.",
                "(assigned Ada)",
                "system: Ada has joined",
                "system: Collected by Robin:\nWhat about?: answer 21\nEmail: marie@example.com",
                "(ended: Forwarded { operator_id: 00000000-0000-0000-0000-000000000001 })",
            ]
        );
        let h = then(&h, found);
        let s = given(&h);
        assert_eq!((s.status, s.operator), (SessionStatus::Active, Some(ADA)));
        assert_eq!(bot_forwarded(&s, Uuid::from_u128(FORWARD), None, id(9)), Err(BotError::NotRunning));
        assert_eq!(bot_restart(&s, id(10)), Err(BotError::NotRunning), "the operator has it now");
    }

    #[test]
    fn without_an_operator_the_script_goes_on_silently_and_ends_in_the_queue() {
        let h = at_forward();
        let none = bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), None, id(9)).unwrap();
        assert_eq!(
            texts(&none),
            vec![
                "bot: We will write to you.",
                "(ended: Finished)",
                "system: Collected by Robin:\nWhat about?: answer 21\nEmail: marie@example.com",
                "(queued)",
            ]
        );
        let s = given(&then(&h, none));
        assert_eq!((s.status, s.operator), (SessionStatus::Waiting, None));
        assert_eq!(bot_forwarded(&s, Uuid::from_u128(FORWARD), None, id(9)), Err(BotError::NotRunning));
    }

    #[test]
    fn a_script_ending_with_an_operator_leaves_the_conversation_to_them() {
        let mut short = script();
        short.steps.truncate(2);
        short.steps.push(step(FORWARD, StepType::ForwardOperator, "", &[]));
        let h = started_with(short);
        let h = then(&h, answer(&h, TOPIC, 1, Some(SALES), None));
        assert_eq!(texts(&h).last().map(String::as_str), Some("(forwarding)"));
        let found = bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), Some((BOB, "Bob".into())), id(2)).unwrap();
        assert_eq!(texts(&found)[0], "(assigned Bob)", "a silent forward says nothing");
        assert!(!texts(&found).contains(&"(queued)".to_string()));
        let s2 = given(&then(&h, found));
        assert_eq!(s2.bot.unwrap().ended, Some(BotOutcome::Forwarded { operator_id: BOB }));
    }

    #[test]
    fn a_redirect_answer_ends_the_script() {
        let h = started();
        let redirected = answer(&h, TOPIC, 1, Some(DOCS), None);
        assert_eq!(
            redirected.last(),
            Some(&SessionEvent::ChatbotEnded {
                outcome: BotOutcome::Redirected { link: "https://example.com/docs".into() }
            })
        );
        let s = given(&then(&h, redirected));
        assert_eq!(bot_answer(&s, Uuid::from_u128(EMAIL), id(2), None, Some("a@b.co")), Err(BotError::NotRunning));
    }

    #[test]
    fn a_restart_starts_over_and_earlier_answers_no_longer_count() {
        let h = at_forward();
        let h = then(&h, bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), None, id(9)).unwrap());
        let restarted = bot_restart(&given(&h), id(10)).unwrap();
        assert_eq!(texts(&restarted), vec!["bot: Restarting conversation...", "bot: Hello!", "bot: What about?"]);
        let h = then(&h, restarted);
        assert_eq!(bot_restart(&given(&h), id(10)), Ok(vec![]), "a retried restart");
        let s = given(&h);
        assert_eq!(s.status, SessionStatus::Bot, "out of the queue again");
        let run = s.bot.clone().unwrap();
        assert!(run.answers.is_empty() && run.running());
        assert!(s.messages.iter().any(|m| m.text == "marie@example.com"), "the log keeps the earlier answers");
        assert_eq!(texts(&answer(&h, TOPIC, 11, Some(SALES), None)).len(), 2, "the topic is asked again");
    }

    #[test]
    fn bot_events_round_trip_through_their_stored_form() {
        let mut h = at_forward();
        h.extend(bot_forwarded(&given(&h), Uuid::from_u128(FORWARD), Some((ADA, "Ada".into())), id(9)).unwrap());
        h.push(SessionEvent::ChatbotRestarted { message_id: id(3) });
        h.push(SessionEvent::ChatbotEnded { outcome: BotOutcome::Redirected { link: "/x".into() } });
        for e in h {
            let (t, d) = encode(&e);
            assert_eq!(decode::<SessionEvent>(&t, &d).unwrap(), e, "{t}");
        }
    }
}
