//! Chatbot scripts: create, edit (the script, its steps, their answers) and dry runs. Every
//! write answers with the script as it is after it, read back from its stream.

use domain::chatbot::{self, Chatbot, ChatbotError, ChatbotEvent, Step, StepType};
use domain::session::{self, BotError, BotTest, SessionEvent};
use domain::Aggregate;
use store::StoreError;
use uuid::Uuid;

use crate::{execute, load, stream_id, App, CommandError, Context, Outcome, StoreOrDecode};

/// Why a chatbot use case did not go through (`api` maps each to a problem document).
#[derive(Debug, thiserror::Error)]
pub enum ChatbotUseError {
    #[error(transparent)]
    Chatbot(#[from] CommandError<ChatbotError>),
    /// A dry run's conversation refused the step.
    #[error(transparent)]
    Bot(#[from] CommandError<BotError>),
    #[error("the chatbot has no steps to test")]
    NoSteps,
    #[error("no such dry run")]
    NoDryRun,
    /// A stored dry-run event could not be decoded.
    #[error("stored dry-run event unreadable")]
    Unreadable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<StoreOrDecode> for ChatbotUseError {
    fn from(e: StoreOrDecode) -> Self {
        ChatbotUseError::Chatbot(e.into())
    }
}

/// A script after a write: the outcome (its `version` is the script's version now) and the
/// script.
pub type Written = (Outcome, Chatbot);

/// An edit of an existing script.
#[derive(Clone, Debug)]
pub enum ScriptEdit {
    /// Title, author name (`""` follows the title again), active flag.
    Change {
        title: Option<String>,
        author_name: Option<String>,
        active: Option<bool>,
    },
    EditStep {
        step_id: Uuid,
        step_type: Option<StepType>,
        message: Option<String>,
        only_if: Option<Vec<Uuid>>,
    },
    RemoveStep {
        step_id: Uuid,
    },
    OrderSteps {
        order: Vec<Uuid>,
    },
    EditAnswer {
        step_id: Uuid,
        answer_id: Uuid,
        label: Option<String>,
        redirect_link: Option<String>,
    },
    RemoveAnswer {
        step_id: Uuid,
        answer_id: Uuid,
    },
    OrderAnswers {
        step_id: Uuid,
        order: Vec<Uuid>,
    },
}

/// A live script as stored now, with its version; `NotFound` if there is none.
pub async fn current(app: &App, id: Uuid) -> Result<(Chatbot, u64), ChatbotUseError> {
    let loaded = load::<Chatbot>(app.events.as_ref(), &stream_id::<Chatbot>(id)).await?;
    match (loaded.state.exists(), loaded.version) {
        (true, Some(v)) => Ok((loaded.state, v)),
        _ => Err(ChatbotUseError::Chatbot(CommandError::Domain(ChatbotError::NotFound))),
    }
}

/// Runs a decision on a script (`expected`: the `If-Match` version) and reads it back.
async fn write(
    app: &App,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    decide: impl Fn(&Chatbot) -> Result<Vec<ChatbotEvent>, ChatbotError>,
) -> Result<Written, ChatbotUseError> {
    let stream = stream_id::<Chatbot>(id);
    let outcome = execute::<Chatbot, ChatbotError>(app.events.as_ref(), &stream, ctx, expected, decide).await?;
    let loaded = load::<Chatbot>(app.events.as_ref(), &stream).await?;
    Ok((Outcome { version: Some(loaded.version.unwrap_or_default()), ..outcome }, loaded.state))
}

/// The id a new script of this request gets (a retry with the same key gets the same).
pub fn new_id(ctx: &Context) -> Uuid {
    ctx.new_id("chatbot")
}

/// Creates a script (no steps yet) with id [`new_id`].
pub async fn create(
    app: &App,
    ctx: &Context,
    expected: Option<u64>,
    title: &str,
    author_name: Option<&str>,
    active: bool,
) -> Result<Written, ChatbotUseError> {
    let id = new_id(ctx);
    write(app, ctx, id, expected, |c| {
        if c.exists() && ctx.idempotency_key.is_some() {
            return Ok(vec![]);
        }
        chatbot::create(c, id, title, author_name, active)
    })
    .await
}

/// Adds a step (last, or at `index`).
pub async fn add_step(
    app: &App,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    step_type: StepType,
    message: &str,
    index: Option<usize>,
) -> Result<Written, ChatbotUseError> {
    let step_id = ctx.new_id("chatbot-step");
    write(app, ctx, id, expected, |c| {
        if ctx.idempotency_key.is_some() && c.steps.iter().any(|s| s.step_id == step_id) {
            return Ok(vec![]);
        }
        chatbot::add_step(c, step_id, step_type, message, index)
    })
    .await
}

/// Adds an answer to a `question_selection` step.
pub async fn add_answer(
    app: &App,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    step_id: Uuid,
    label: &str,
    redirect_link: Option<&str>,
) -> Result<Written, ChatbotUseError> {
    let answer_id = ctx.new_id("chatbot-answer");
    write(app, ctx, id, expected, |c| {
        let exists = c.steps.iter().flat_map(|s| &s.answers).any(|a| a.answer_id == answer_id);
        if ctx.idempotency_key.is_some() && exists {
            return Ok(vec![]);
        }
        chatbot::add_answer(c, step_id, answer_id, label, redirect_link)
    })
    .await
}

/// Edits an existing script.
pub async fn edit(
    app: &App,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    edit: &ScriptEdit,
) -> Result<Written, ChatbotUseError> {
    write(app, ctx, id, expected, |c| match edit {
        ScriptEdit::Change { title, author_name, active } => {
            chatbot::change(c, title.as_deref(), author_name.as_deref(), *active)
        }
        ScriptEdit::EditStep { step_id, step_type, message, only_if } => {
            chatbot::edit_step(c, *step_id, *step_type, message.as_deref(), only_if.as_deref())
        }
        ScriptEdit::RemoveStep { step_id } => chatbot::remove_step(c, *step_id),
        ScriptEdit::OrderSteps { order } => chatbot::reorder_steps(c, order),
        ScriptEdit::EditAnswer { step_id, answer_id, label, redirect_link } => {
            chatbot::edit_answer(c, *step_id, *answer_id, label.as_deref(), redirect_link.as_deref())
        }
        ScriptEdit::RemoveAnswer { step_id, answer_id } => chatbot::remove_answer(c, *step_id, *answer_id),
        ScriptEdit::OrderAnswers { step_id, order } => chatbot::reorder_answers(c, *step_id, order),
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Dry runs

/// Who says a message of a dry run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Author {
    Bot,
    Visitor,
    System,
}

/// Where a dry run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Finished,
    Redirected,
}

/// A dry run's messages and where it stands.
#[derive(Clone, Debug)]
pub struct DryRun {
    pub test_id: Uuid,
    /// The script version it follows.
    pub version: u64,
    pub state: RunState,
    /// The step the bot waits on.
    pub expects: Option<Step>,
    pub messages: Vec<(Author, String)>,
    /// What a dry run does differently: forwards route to nobody.
    pub notes: Vec<String>,
}

/// A visitor's answer in a dry run.
#[derive(Clone, Debug)]
pub struct DryAnswer {
    pub step_id: Uuid,
    pub message_id: Uuid,
    pub answer_id: Option<Uuid>,
    pub text: Option<String>,
}

const DRY_FORWARD: &str =
    "forward_operator: a dry run routes to nobody, so the script went on as when no operator is available";

async fn test_write(
    app: &App,
    ctx: &Context,
    test_id: Uuid,
    decide: impl Fn(&BotTest) -> Result<Vec<SessionEvent>, BotError>,
) -> Result<(), ChatbotUseError> {
    execute::<BotTest, BotError>(app.events.as_ref(), &stream_id::<BotTest>(test_id), ctx, None, decide).await?;
    Ok(())
}

/// Settles the forwards a dry run reached as if nobody were available.
async fn settle_test(app: &App, ctx: &Context, test_id: Uuid) -> Result<(), ChatbotUseError> {
    for _ in 0..=chatbot::MAX_STEPS {
        let run = load::<BotTest>(app.events.as_ref(), &stream_id::<BotTest>(test_id)).await?.state;
        let Some(bot) = run.0.bot.as_ref().filter(|b| b.forwarding && b.running()) else { return Ok(()) };
        let Some(step_id) = bot.at.map(|i| bot.script.steps[i].step_id) else { return Ok(()) };
        let seed = Uuid::now_v7();
        test_write(app, ctx, test_id, |t| session::bot_forwarded(&t.0, step_id, None, seed)).await?;
    }
    Ok(())
}

/// The dry run as it stands, from its stream; `NoDryRun` unless it tests chatbot `id`.
pub async fn dry_run(app: &App, id: Uuid, test_id: Uuid) -> Result<DryRun, ChatbotUseError> {
    let stream = stream_id::<BotTest>(test_id);
    let recorded = store::read_whole_stream(app.events.as_ref(), &stream, 0).await?;
    let mut run = BotTest::default();
    let (mut messages, mut notes) = (vec![], vec![]);
    for e in &recorded {
        let event: SessionEvent = domain::aggregate::decode_versioned(&e.event_type, e.schema_version, &e.data)
            .map_err(|err| {
                tracing::error!(error = %err, %stream, "stored dry-run event unreadable");
                ChatbotUseError::Unreadable
            })?;
        match &event {
            SessionEvent::ChatbotStepPosted { text, .. } | SessionEvent::ChatbotSaid { text, .. } => {
                messages.push((Author::Bot, text.clone()))
            }
            SessionEvent::ChatbotRestarted { .. } => {
                messages.push((Author::Bot, domain::bot_runtime::RESTARTING.to_string()))
            }
            SessionEvent::ChatbotAnswered { text, .. } => messages.push((Author::Visitor, text.clone())),
            SessionEvent::MessagePosted { text, .. } => messages.push((Author::System, text.clone())),
            SessionEvent::ChatbotForwarding { .. } if !notes.contains(&DRY_FORWARD.to_string()) => {
                notes.push(DRY_FORWARD.to_string())
            }
            _ => {}
        }
        run.apply(&event);
    }
    let bot = run.0.bot.as_ref().filter(|b| b.script.chatbot_id == id).ok_or(ChatbotUseError::NoDryRun)?;
    let state = match &bot.ended {
        None => RunState::Running,
        Some(session::BotOutcome::Redirected { .. }) => RunState::Redirected,
        Some(_) => RunState::Finished,
    };
    Ok(DryRun { test_id, version: bot.script.version, state, expects: bot.awaited().cloned(), messages, notes })
}

/// Starts a dry run of script `id` as it is now (active or not): the bot's welcome, in a
/// conversation of its own that no report, count or queue ever sees.
pub async fn start_test(app: &App, ctx: &Context, id: Uuid) -> Result<DryRun, ChatbotUseError> {
    let (script, version) = current(app, id).await?;
    if script.steps.is_empty() {
        return Err(ChatbotUseError::NoSteps);
    }
    let script = script.script(version);
    let test_id = ctx.new_id("chatbot-test");
    let start = session::Start {
        session_id: test_id,
        channel_id: Uuid::nil(),
        visitor_name: Some("Test visitor".into()),
        visitor_number: 0,
        page_url: "/".into(),
        country: None,
        languages: vec![],
        visitor_token_sha256: String::new(),
        operator: None,
        welcome_message_id: Uuid::now_v7(),
        welcome_text: String::new(),
    };
    test_write(app, ctx, test_id, |t| {
        if t.0.exists() && ctx.idempotency_key.is_some() {
            return Ok(vec![]);
        }
        Ok(session::start_with_bot(&t.0, start.clone(), script.clone())?)
    })
    .await?;
    settle_test(app, ctx, test_id).await?;
    dry_run(app, id, test_id).await
}

/// Answers the step a dry run of script `id` waits on, as a visitor would.
pub async fn answer_test(
    app: &App,
    ctx: &Context,
    id: Uuid,
    test_id: Uuid,
    a: &DryAnswer,
) -> Result<DryRun, ChatbotUseError> {
    dry_run(app, id, test_id).await?;
    test_write(app, ctx, test_id, |t| {
        session::bot_answer(&t.0, a.step_id, a.message_id, a.answer_id, a.text.as_deref())
    })
    .await?;
    settle_test(app, ctx, test_id).await?;
    dry_run(app, id, test_id).await
}
