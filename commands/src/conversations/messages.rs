//! Writing in a conversation: the visitor's and the operators' posts, the authors' edits and
//! deletes, seen marks and the pages the visitor reports.

use domain::session::{self, text_answers, Party, Session};
use uuid::Uuid;

use super::bot;
use super::lookup::{decide_on_session, on_session, session};
use super::ConversationError;
use crate::{App, Context, Outcome};

/// The visitor writes (also while waiting for an operator). While the bot waits for typed
/// text, what the visitor writes is the answer (as in Odoo), and the forwards it reaches are
/// settled. The outcome and the conversation after the post (or the answer).
pub async fn visitor_post(
    app: &App,
    ctx: &Context,
    session_id: Uuid,
    message_id: Uuid,
    text: &str,
) -> Result<(Outcome, Session), ConversationError> {
    let (now, _) = session(app, session_id).await?;
    if let Some(step_id) = text_answers(&now) {
        return bot::answer(app, ctx, session_id, step_id, message_id, None, Some(text)).await;
    }
    decide_on_session(app, ctx, session_id, |s| session::post(s, Party::Visitor, message_id, text)).await
}

/// Operator `by` writes in the conversation; the outcome and the conversation after it.
pub async fn operator_post(
    app: &App,
    ctx: &Context,
    by: Uuid,
    session_id: Uuid,
    message_id: Uuid,
    text: &str,
) -> Result<(Outcome, Session), ConversationError> {
    decide_on_session(app, ctx, session_id, |s| session::post(s, Party::Operator { id: by }, message_id, text)).await
}

/// Operator `by` edits a message of theirs.
pub async fn edit(
    app: &App,
    ctx: &Context,
    by: Uuid,
    session_id: Uuid,
    message_id: Uuid,
    text: &str,
) -> Result<Outcome, ConversationError> {
    on_session(app, ctx, session_id, |s| session::edit(s, Party::Operator { id: by }, message_id, text)).await
}

/// Operator `by` deletes a message of theirs.
pub async fn delete(
    app: &App,
    ctx: &Context,
    by: Uuid,
    session_id: Uuid,
    message_id: Uuid,
) -> Result<Outcome, ConversationError> {
    on_session(app, ctx, session_id, |s| session::delete(s, Party::Operator { id: by }, message_id)).await
}

/// `by` (the visitor or an operator) has seen the messages up to `up_to`.
pub async fn seen(
    app: &App,
    ctx: &Context,
    by: Party,
    session_id: Uuid,
    up_to: Uuid,
) -> Result<Outcome, ConversationError> {
    on_session(app, ctx, session_id, |s| session::seen(s, by, up_to)).await
}

/// The visitor reports a page they visited during the conversation.
pub async fn visit(app: &App, ctx: &Context, session_id: Uuid, url: &str) -> Result<Outcome, ConversationError> {
    on_session(app, ctx, session_id, |s| session::visit(s, url)).await
}

/// The visitor leaves: the conversation closes ("Visitor left the conversation.").
pub async fn leave(app: &App, ctx: &Context, session_id: Uuid) -> Result<Outcome, ConversationError> {
    super::close(app, ctx, Party::Visitor, false, session_id).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::chatbot::{Script, Step, StepType};
    use domain::metadata::{Actor, ActorKind};
    use domain::session::{start, start_with_bot, Start};

    use super::*;
    use crate::conversations::{readable, run_command, ConversationError, Operator};

    fn app() -> App {
        let events = Arc::new(store::memory::MemoryEventStore::default());
        let views = Arc::new(store::memory_views::MemoryViewStore::default());
        App::new(events, views, crate::Config::default())
    }

    fn visitor(app: &App) -> Context {
        Context::new(Actor { kind: ActorKind::Visitor, id: None }, app.clock.now())
    }

    fn begin(session_id: Uuid) -> Start {
        Start {
            session_id,
            channel_id: Uuid::now_v7(),
            visitor_name: None,
            visitor_number: 7,
            page_url: "/shop".into(),
            country: None,
            languages: vec![],
            visitor_token_sha256: "digest".into(),
            operator: None,
            welcome_message_id: Uuid::now_v7(),
            welcome_text: "Hello".into(),
        }
    }

    fn step(step_type: StepType, message: &str) -> Step {
        Step { step_id: Uuid::now_v7(), step_type, message: message.into(), answers: vec![], only_if: vec![] }
    }

    #[tokio::test]
    async fn typed_text_while_the_bot_waits_for_it_is_the_answer_not_a_message() {
        let app = app();
        let ctx = visitor(&app);
        let id = Uuid::now_v7();
        let script = Script {
            author_name: "Robin".into(),
            steps: vec![step(StepType::QuestionEmail, "Your email?"), step(StepType::Text, "Thanks!")],
            ..Script::default()
        };
        on_session(&app, &ctx, id, |s| start_with_bot(s, begin(id), script.clone())).await.unwrap();

        let (outcome, after) = visitor_post(&app, &ctx, id, Uuid::now_v7(), "marie@example.com").await.unwrap();
        assert!(outcome.written > 0);
        let run = after.bot.as_ref().expect("the bot runs");
        assert_eq!(run.answers.iter().map(|a| a.answer.as_str()).collect::<Vec<_>>(), vec!["marie@example.com"]);
        assert_eq!(text_answers(&after), None, "answered: the bot waits no more");

        let (_, later) = visitor_post(&app, &ctx, id, Uuid::now_v7(), "thank you").await.unwrap();
        assert_eq!(later.bot.as_ref().map(|r| r.answers.len()), Some(1), "a post after the answer is a message");
    }

    #[tokio::test]
    async fn only_those_who_may_read_a_conversation_run_commands_in_it() {
        let app = app();
        let ctx = visitor(&app);
        let id = Uuid::now_v7();
        let ada = Uuid::now_v7();
        let answered = Start { operator: Some((ada, "Ada".into())), ..begin(id) };
        on_session(&app, &ctx, id, |s| start(s, answered.clone())).await.unwrap();
        on_session(&app, &ctx, id, |s| session::visit(s, "/pricing")).await.unwrap();
        let history = || domain::chat_command::ChatCommand::History;

        let stranger = Operator { id: Uuid::now_v7(), admin: false };
        let refused = run_command(&app, &ctx, stranger, id, history(), vec![]).await;
        assert!(matches!(refused, Err(ConversationError::NotYours)), "{refused:?}");
        assert!(matches!(readable(&app, stranger, id).await, Err(ConversationError::NotYours)));

        let admin = Operator { id: Uuid::now_v7(), admin: true };
        assert!(readable(&app, admin, id).await.is_ok(), "admins read every conversation");
        let operator = Operator { id: ada, admin: false };
        let answer = run_command(&app, &ctx, operator, id, history(), vec![]).await.unwrap();
        assert_eq!((answer.command, answer.lines), ("history", vec!["/shop".to_string(), "/pricing".to_string()]));
    }
}
