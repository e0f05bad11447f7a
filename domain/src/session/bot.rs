//! A chatbot's run in a conversation: what the bot says, the visitor's answers, forwards
//! and restarts (the script's logic is in `bot_runtime`).

use uuid::Uuid;

use super::errors::{BotError, SessionError};
use super::events::{Assignment, BotOutcome, Party, SessionEvent};
use super::start::{start, Start};
use super::state::{open, BotRun, Session};
use crate::bot_runtime::{self, Reply, Stop};
use crate::chatbot::{Script, StepType};
use crate::event::Aggregate;

/// Message ids the bot's events take, derived from the id of what caused them so that a
/// decision made again (after a conflict) names the same messages.
fn derived(seed: Uuid, n: usize) -> Uuid {
    Uuid::new_v5(&seed, format!("bot/{n}").as_bytes())
}

/// A system message summing up what the bot collected, for the operator.
pub fn collected_summary(run: &BotRun) -> Option<String> {
    if run.answers.is_empty() {
        return None;
    }
    let lines: Vec<String> = run
        .answers
        .iter()
        .map(|a| {
            let label = match a.step_type {
                StepType::QuestionEmail => "Email".to_string(),
                StepType::QuestionPhone => "Phone".to_string(),
                _ => a.question.chars().take(80).collect(),
            };
            format!("{label}: {}", a.answer)
        })
        .collect();
    Some(format!("Collected by {}:\n{}", run.script.author_name, lines.join("\n")))
}

/// What the bot says from `after` with the answers chosen so far: its text steps up to a
/// question, a forward (routing then decides) or the end, where a conversation without an
/// operator goes to the queue with what the bot collected.
fn proceed(run: &BotRun, after: Option<usize>, chosen: &[Uuid], seed: Uuid) -> Vec<SessionEvent> {
    let plan = bot_runtime::plan(&run.script, after, chosen);
    let mut n = 0;
    let mut next_id = || {
        n += 1;
        derived(seed, n)
    };
    let mut events: Vec<SessionEvent> = plan
        .say
        .iter()
        .map(|&i| {
            let step = &run.script.steps[i];
            SessionEvent::ChatbotStepPosted { message_id: next_id(), step_id: step.step_id, text: step.message.clone() }
        })
        .collect();
    match plan.stop {
        Stop::Await(_) => {}
        Stop::Forward(i) => events.push(SessionEvent::ChatbotForwarding { step_id: run.script.steps[i].step_id }),
        Stop::End => {
            events.push(SessionEvent::ChatbotEnded { outcome: BotOutcome::Finished });
            if let Some(text) = collected_summary(run) {
                events.push(SessionEvent::MessagePosted {
                    message_id: next_id(),
                    author: Party::System,
                    text,
                    welcome: false,
                });
            }
            events.push(SessionEvent::SessionQueued {});
        }
    }
    events
}

/// Starts a conversation that a chatbot answers (no routing, no welcome message): the bot
/// says its welcome steps at once.
pub fn start_with_bot(state: &Session, s: Start, script: Script) -> Result<Vec<SessionEvent>, SessionError> {
    let seed = s.welcome_message_id;
    let mut events = start(state, Start { operator: None, welcome_text: String::new(), ..s })?;
    // `start` queues a conversation nobody answers; the bot answers this one.
    events.retain(|e| !matches!(e, SessionEvent::SessionQueued {}));
    events.push(SessionEvent::ChatbotStarted { script: script.clone() });
    let run = BotRun { script, ..Default::default() };
    events.extend(proceed(&run, None, &[], seed));
    Ok(events)
}

fn running(state: &Session) -> Result<&BotRun, BotError> {
    open(state)?;
    match &state.bot {
        Some(run) if run.running() && state.operator.is_none() => Ok(run),
        _ => Err(BotError::NotRunning),
    }
}

/// The visitor answers `step_id`: a choice (`answer_id`) or text. Answering a step already
/// answered (a double click, a retry with the same message id) changes nothing; an invalid
/// email is said back and asked again; a redirect answer ends the script.
pub fn bot_answer(
    state: &Session,
    step_id: Uuid,
    message_id: Uuid,
    answer_id: Option<Uuid>,
    text: Option<&str>,
) -> Result<Vec<SessionEvent>, BotError> {
    if let Some(m) = state.position(message_id).map(|i| &state.messages[i]) {
        return if m.author == Party::Visitor { Ok(vec![]) } else { Err(SessionError::MessageIdReused.into()) };
    }
    if state.bot.as_ref().is_some_and(|run| run.answers.iter().any(|a| a.step_id == step_id)) {
        return Ok(vec![]);
    }
    let run = running(state)?;
    let step = match run.awaited() {
        Some(s) if s.step_id == step_id => s,
        _ => return Err(BotError::NotAwaited),
    };
    let reply = bot_runtime::check_answer(step, answer_id, text)?;
    let answered = |answer_id, text: String, accepted| SessionEvent::ChatbotAnswered {
        message_id,
        step_id,
        answer_id,
        text,
        accepted,
    };
    Ok(match reply {
        Reply::Retry { raw, message } => {
            vec![
                answered(None, raw, false),
                SessionEvent::ChatbotSaid { message_id: derived(message_id, 1), text: message },
            ]
        }
        Reply::Chosen { answer_id, label, redirect_link: Some(link) } => {
            vec![
                answered(Some(answer_id), label, true),
                SessionEvent::ChatbotEnded { outcome: BotOutcome::Redirected { link } },
            ]
        }
        Reply::Chosen { answer_id: chosen, label, redirect_link: None } => {
            then_proceed(state, answered(Some(chosen), label, true), message_id)?
        }
        Reply::Text(t) => then_proceed(state, answered(None, t, true), message_id)?,
    })
}

/// The step a visitor's typed text answers, if any: while the bot waits for text (a free
/// input, an email, a phone number; not a choice) and no operator has the conversation,
/// what the visitor writes is the answer (as in Odoo), not a message to post.
pub fn text_answers(state: &Session) -> Option<Uuid> {
    let run = state.bot.as_ref().filter(|_| state.operator.is_none())?;
    run.awaited().filter(|s| s.step_type != StepType::QuestionSelection).map(|s| s.step_id)
}

/// An accepted answer, then what the bot says next with it counted.
fn then_proceed(state: &Session, answer: SessionEvent, seed: Uuid) -> Result<Vec<SessionEvent>, BotError> {
    let mut after = state.clone();
    after.apply(&answer);
    let run = after.bot.as_ref().ok_or(BotError::NotRunning)?;
    let mut events = vec![answer.clone()];
    events.extend(proceed(run, run.at, &run.chosen(), seed));
    Ok(events)
}

/// Settles a forward: with an operator (id, the name visitors see) they join ("NAME has
/// joined") with what the bot collected and the bot stops; without one the script goes on
/// silently. A forward already settled changes nothing.
pub fn bot_forwarded(
    state: &Session,
    step_id: Uuid,
    operator: Option<(Uuid, String)>,
    seed: Uuid,
) -> Result<Vec<SessionEvent>, BotError> {
    let run = running(state)?;
    let step = match run.at.map(|i| &run.script.steps[i]) {
        Some(s) if run.forwarding && s.step_id == step_id => s,
        _ => return Ok(vec![]),
    };
    let Some((operator_id, display_name)) = operator else {
        return Ok(proceed(run, run.at, &run.chosen(), seed));
    };
    let mut events = vec![];
    if !step.message.is_empty() {
        events.push(SessionEvent::ChatbotStepPosted {
            message_id: derived(seed, 1),
            step_id,
            text: step.message.clone(),
        });
    }
    events.push(SessionEvent::OperatorAssigned {
        operator_id,
        display_name: display_name.clone(),
        how: Assignment::Routed,
    });
    let system = |n, text| SessionEvent::MessagePosted {
        message_id: derived(seed, n),
        author: Party::System,
        text,
        welcome: false,
    };
    events.push(system(2, bot_runtime::joined(&display_name)));
    if let Some(summary) = collected_summary(run) {
        events.push(system(3, summary));
    }
    events.push(SessionEvent::ChatbotEnded { outcome: BotOutcome::Forwarded { operator_id } });
    Ok(events)
}

/// The visitor restarts the script ("Restarting conversation..."): earlier answers stay in
/// the log but no longer count. Possible until an operator has the conversation.
pub fn bot_restart(state: &Session, message_id: Uuid) -> Result<Vec<SessionEvent>, BotError> {
    if let Some(m) = state.position(message_id).map(|i| &state.messages[i]) {
        let same = m.author == Party::System && m.text == bot_runtime::RESTARTING;
        return if same { Ok(vec![]) } else { Err(SessionError::MessageIdReused.into()) };
    }
    open(state)?;
    let run = match &state.bot {
        Some(run) if state.operator.is_none() => run,
        _ => return Err(BotError::NotRunning),
    };
    let mut events = vec![SessionEvent::ChatbotRestarted { message_id }];
    let fresh = BotRun { script: run.script.clone(), ..Default::default() };
    events.extend(proceed(&fresh, None, &[], message_id));
    Ok(events)
}

/// An administrator's dry run of a chatbot: a conversation's events in a stream category of
/// its own (`bottest-<uuid>`), which no projection, report or count reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BotTest(pub Session);

impl Aggregate for BotTest {
    type Event = SessionEvent;
    const CATEGORY: &'static str = "bottest";

    fn apply(&mut self, e: &SessionEvent) {
        self.0.apply(e)
    }
}
