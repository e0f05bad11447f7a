//! Channels: creating them, Odoo's channel form tab by tab (name, options, operators, rules),
//! operators joining and leaving. Who may call what (admins, except for joining and leaving)
//! is the caller's check.

use domain::channel::{self, Channel, ChannelError, ChannelEvent, ChannelOptions, LeaveReason, OptionsInput};
use domain::rules::RuleInput;
use domain::user::{set_status, Status, StatusReason, User, UserError};
use store::StoreError;
use uuid::Uuid;

use crate::conversations::{channels_of, dispatch, ConversationError};
use crate::users::UserReadError;
use crate::{execute, load, stream_id, App, CommandError, Context, Outcome, StoreOrDecode};

/// Why a channel use case did not go through (`api` maps each to a problem document).
#[derive(Debug, thiserror::Error)]
pub enum ChannelCommandError {
    /// A rule names a chatbot script that does not exist.
    #[error("no chatbot script {0}")]
    UnknownChatbot(Uuid),
    #[error(transparent)]
    Channel(#[from] CommandError<ChannelError>),
    #[error(transparent)]
    User(#[from] CommandError<UserError>),
    /// Routing the queue of a channel someone joined.
    #[error(transparent)]
    Conversation(#[from] Box<ConversationError>),
    #[error(transparent)]
    Users(#[from] UserReadError),
    #[error(transparent)]
    Load(#[from] StoreOrDecode),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ChannelError> for ChannelCommandError {
    fn from(e: ChannelError) -> Self {
        ChannelCommandError::Channel(CommandError::Domain(e))
    }
}

impl From<ConversationError> for ChannelCommandError {
    fn from(e: ConversationError) -> Self {
        ChannelCommandError::Conversation(Box::new(e))
    }
}

/// One change of the channel form.
#[derive(Clone, Debug)]
pub enum ChannelChange {
    Rename(String),
    /// Joined operators leave it.
    Archive,
    /// Absent fields keep their value.
    Options(OptionsInput),
    /// Odoo's default colors.
    ResetColors,
    /// An existing, active user becomes an operator.
    AddOperator(Uuid),
    /// Makes them leave first if joined.
    RemoveOperator(Uuid),
    /// Appends a rule with this id.
    AddRule(Uuid, RuleInput),
    UpdateRule(Uuid, RuleInput),
    RemoveRule(Uuid),
    /// Every rule, each once, in their new order.
    ReorderRules(Vec<Uuid>),
}

/// A channel as stored now, with its stream version (`NotFound` if there is none).
pub async fn current(app: &App, id: Uuid) -> Result<(Channel, u64), ChannelCommandError> {
    let loaded = load::<Channel>(app.events.as_ref(), &stream_id::<Channel>(id)).await?;
    match (loaded.state.id, loaded.version) {
        (Some(_), Some(v)) => Ok((loaded.state, v)),
        _ => Err(ChannelError::NotFound.into()),
    }
}

async fn run(
    app: &App,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    decide: impl Fn(&Channel) -> Result<Vec<ChannelEvent>, ChannelError>,
) -> Result<Outcome, ChannelCommandError> {
    Ok(execute::<Channel, _>(app.events.as_ref(), &stream_id::<Channel>(id), ctx, expected, decide).await?)
}

/// Creates a channel with Odoo's default options; `creator` becomes its operator. The id
/// comes from `ctx` (the same for a retried request).
pub async fn create(
    app: &App,
    ctx: &Context,
    name: &str,
    creator: Option<Uuid>,
) -> Result<(Uuid, Outcome), ChannelCommandError> {
    let id = ctx.new_id("channel");
    let outcome = run(app, ctx, id, None, |c| channel::create(c, id, name, creator, ChannelOptions::default())).await?;
    Ok((id, outcome))
}

/// Applies one change of the form; `expected` (an `If-Match`) refuses a stale edit.
pub async fn change(
    app: &App,
    ctx: &Context,
    id: Uuid,
    expected: Option<u64>,
    change: ChannelChange,
) -> Result<Outcome, ChannelCommandError> {
    use ChannelChange as C;
    match &change {
        C::AddRule(_, input) | C::UpdateRule(_, input) => known_chatbot(app, input).await?,
        _ => {}
    }
    let active = match change {
        C::AddOperator(user_id) => {
            let user = app.users.get(app.events.as_ref(), user_id).await?;
            user.exists() && user.active
        }
        _ => false,
    };
    run(app, ctx, id, expected, |c| match &change {
        C::Rename(name) => channel::rename(c, name),
        C::Archive => channel::archive(c),
        C::Options(input) => channel::change_options(c, input),
        C::ResetColors => channel::reset_colors(c),
        C::AddOperator(user_id) => channel::add_operator(c, *user_id, active),
        C::RemoveOperator(user_id) => channel::remove_operator(c, *user_id),
        C::AddRule(rule_id, input) => channel::add_rule(c, *rule_id, input),
        C::UpdateRule(rule_id, input) => channel::update_rule(c, *rule_id, input),
        C::RemoveRule(rule_id) => channel::remove_rule(c, *rule_id),
        C::ReorderRules(order) => channel::reorder_rules(c, order),
    })
    .await
}

/// A rule may only start a chatbot script that exists.
async fn known_chatbot(app: &App, input: &RuleInput) -> Result<(), ChannelCommandError> {
    let Some(chatbot_id) = input.chatbot_id else { return Ok(()) };
    let script =
        load::<domain::chatbot::Chatbot>(app.events.as_ref(), &stream_id::<domain::chatbot::Chatbot>(chatbot_id))
            .await?;
    if script.state.exists() {
        return Ok(());
    }
    Err(ChannelCommandError::UnknownChatbot(chatbot_id))
}

/// `user_id` joins the channel (they must be one of its operators). Joining is being at
/// work: an offline operator becomes online, and the channel's waiting conversations are
/// routed.
pub async fn join(app: &App, ctx: &Context, id: Uuid, user_id: Uuid) -> Result<Outcome, ChannelCommandError> {
    let outcome = run(app, ctx, id, None, |c| channel::join(c, user_id)).await?;
    if app.users.get(app.events.as_ref(), user_id).await?.status == Status::Offline {
        execute::<User, _>(app.events.as_ref(), &stream_id::<User>(user_id), ctx, None, |u| {
            set_status(u, Status::Online, StatusReason::Chosen)
        })
        .await?;
    }
    dispatch(app, ctx, id).await?;
    Ok(outcome)
}

/// `user_id` leaves the channel.
pub async fn leave(app: &App, ctx: &Context, id: Uuid, user_id: Uuid) -> Result<Outcome, ChannelCommandError> {
    run(app, ctx, id, None, |c| channel::leave(c, user_id, LeaveReason::Left)).await
}

/// Makes `user_id` leave every channel they are joined to, with `reason`.
pub async fn leave_all(
    app: &App,
    ctx: &Context,
    user_id: Uuid,
    reason: LeaveReason,
) -> Result<(), CommandError<ChannelError>> {
    for doc in channels_of(app, user_id).await? {
        execute::<Channel, _>(app.events.as_ref(), &stream_id::<Channel>(doc.channel_id), ctx, None, |c| {
            channel::leave(c, user_id, reason)
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn rules_name_existing_chatbots_and_only_operators_join() {
        let events = Arc::new(store::memory::MemoryEventStore::default());
        let views = Arc::new(store::memory_views::MemoryViewStore::default());
        let app = App::new(events, views, crate::Config::default());
        let ctx = Context::new(domain::metadata::Actor::system(), app.clock.now());
        let (id, _) = create(&app, &ctx, "Support", None).await.unwrap();

        let chatbot = Uuid::now_v7();
        let input = RuleInput { chatbot_id: Some(chatbot), ..Default::default() };
        let refused = change(&app, &ctx, id, None, ChannelChange::AddRule(Uuid::now_v7(), input)).await;
        assert!(matches!(refused, Err(ChannelCommandError::UnknownChatbot(c)) if c == chatbot), "{refused:?}");

        let stranger = Uuid::now_v7();
        let refused = change(&app, &ctx, id, None, ChannelChange::AddOperator(stranger)).await;
        assert!(
            matches!(refused, Err(ChannelCommandError::Channel(CommandError::Domain(ChannelError::UnknownUser)))),
            "{refused:?}"
        );
        let refused = join(&app, &ctx, id, stranger).await;
        assert!(
            matches!(refused, Err(ChannelCommandError::Channel(CommandError::Domain(ChannelError::NotOperator)))),
            "{refused:?}"
        );
        assert_eq!(current(&app, id).await.unwrap().0.name, "Support");
    }
}
