//! Orchestration of conversations across aggregates: routing a new conversation (or one from
//! the queue) to an operator, with the operator's slot taken on their own stream first, so
//! that the per-operator maximum holds even when several servers assign at once.

use chrono::{DateTime, Utc};
use commands::{execute, execute_cached, stream_id, CommandError, Context, Outcome};
use domain::channel::Channel;
use domain::routing::{choose, Candidate, Visitor};
use domain::session::{self, Assignment, Session, SessionStatus};
use domain::user::{
    claim_slot, release_slot, release_stale, stale_reason, ReleaseReason, Status, User, UserError, UserEvent,
};
use projections::conversations::{ConversationSummary, QUEUE, VIEW};
use uuid::Uuid;

use crate::commanding::{read, refused};
use crate::problem::Problem;
use crate::AppState;

/// A channel as routing needs it, read from its stream.
pub async fn channel(state: &AppState, channel_id: Uuid) -> Result<Channel, Problem> {
    let c = read::<Channel>(state, channel_id).await?.state;
    if c.id.is_none() || c.archived {
        return Err(Problem::not_found("no such channel"));
    }
    Ok(c)
}

/// The joined, online, active operators of a channel with their load.
pub async fn candidates(state: &AppState, c: &Channel, now: DateTime<Utc>) -> Result<Vec<Candidate>, Problem> {
    let max = c.options.max_conversations_per_operator;
    let mut out = Vec::new();
    for &user_id in &c.joined {
        let u = state.users.get(state.events.as_ref(), user_id).await?;
        if !u.active || u.status != Status::Online {
            continue;
        }
        let recent = recent_conversations(state, user_id, now).await?;
        let mut open = u.open_conversations.len();
        // The load only decides against a maximum: the claims are checked when they reach it.
        if may_be_full(&u, max) {
            open -= stale_claims(state, user_id, &u, now).await?.len();
        }
        out.push(Candidate {
            user_id,
            languages: u.languages.clone(),
            country: u.country.clone(),
            active_conversations: recent,
            open_conversations: open as u32,
            last_assigned_at: u.last_assigned_at,
        });
    }
    Ok(out)
}

/// Whether the operator's claims, stale ones included, reach `max`.
fn may_be_full(u: &User, max: Option<u32>) -> bool {
    max.is_some_and(|m| u.open_conversations.len() as u32 >= m)
}

/// How long a claim not (yet) named by its conversation still counts.
fn claim_bound(state: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(state.config.claim_timeout).unwrap_or(chrono::Duration::seconds(10))
}

/// The conversation as its stream holds it now, `None` when there is no such stream.
async fn current_session(state: &AppState, session_id: Uuid) -> Result<Option<Session>, Problem> {
    let loaded = state
        .sessions
        .current(state.events.as_ref(), &stream_id::<Session>(session_id))
        .await
        .map_err(|e| refused::<Problem>(e.into()))?;
    Ok(loaded.version.map(|_| loaded.state))
}

/// The claims of `operator` (state `u`) that hold no slot any more at `now`, with why: their
/// conversation is closed, or does not name them `claim_timeout` after the claim (see
/// `domain::user::stale_reason`). Each is checked against its conversation's stream.
pub async fn stale_claims(
    state: &AppState,
    operator: Uuid,
    u: &User,
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, ReleaseReason)>, Problem> {
    let bound = claim_bound(state);
    let mut out = Vec::new();
    for claim in &u.open_conversations {
        let conversation = current_session(state, claim.session_id).await?;
        if let Some(reason) = stale_reason(claim, operator, conversation.as_ref(), now, bound) {
            out.push((claim.session_id, reason));
        }
    }
    Ok(out)
}

/// Frees every operator's stale slots (the sweeper's pass), each with its reason, then
/// routes the queues of the channels of whoever got a slot back. Returns the slots freed
/// (operator, conversation, reason).
pub async fn release_stale_claims(state: &AppState) -> Result<Vec<(Uuid, Uuid, ReleaseReason)>, Problem> {
    let now = state.clock.now();
    let ctx = Context::new(domain::metadata::Actor::system(), now);
    let mut freed = Vec::new();
    for d in store::views::list_all(state.views.as_ref(), projections::users::VIEW, None).await? {
        let Ok(summary) = serde_json::from_value::<projections::users::UserSummary>(d.body) else { continue };
        let user_id = summary.user_id;
        // One operator's failure does not keep the others' slots leaked.
        match release_stale_of(state, &ctx, user_id).await {
            Ok(stale) => freed.extend(stale.into_iter().map(|(s, r)| (user_id, s, r))),
            Err(e) => tracing::warn!(%user_id, error = %e.detail, "cannot free stale conversation slots"),
        }
    }
    Ok(freed)
}

/// Frees one operator's stale slots; the slots freed.
async fn release_stale_of(
    state: &AppState,
    ctx: &Context,
    user_id: Uuid,
) -> Result<Vec<(Uuid, ReleaseReason)>, Problem> {
    let u = state.users.get(state.events.as_ref(), user_id).await?;
    if u.open_conversations.is_empty() {
        return Ok(vec![]);
    }
    let stale = stale_claims(state, user_id, &u, ctx.now).await?;
    if stale.is_empty() {
        return Ok(vec![]);
    }
    // Guarded by the stream's version; a slot freed meanwhile by another path is not freed twice.
    let outcome =
        execute::<User, _>(state.events.as_ref(), &stream_id::<User>(user_id), ctx, None, |u| release_stale(u, &stale))
            .await
            .map_err(refused)?;
    if outcome.written == 0 {
        return Ok(vec![]);
    }
    tracing::info!(%user_id, slots = ?stale, "freed stale conversation slots");
    dispatch_for(state, ctx, user_id).await?;
    Ok(stale)
}

/// Odoo's "active" count: conversations open, or with a message in the last 30 minutes.
async fn recent_conversations(state: &AppState, operator: Uuid, now: DateTime<Utc>) -> Result<u32, Problem> {
    let since = now - chrono::Duration::minutes(30);
    // Newest activity first: stop at the first conversation older than the window.
    let page = state.views.list(VIEW, Some(&operator.to_string()), None, 200).await?;
    let mut n = 0;
    for d in page {
        let Ok(c) = serde_json::from_value::<ConversationSummary>(d.body) else { continue };
        if c.status != SessionStatus::Closed || c.last_activity_at >= since {
            n += 1;
        } else {
            break;
        }
    }
    Ok(n)
}

/// What a claim did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// This call took the slot: a path that then loses gives it back ([`give_back`]).
    Took,
    /// The operator already held it (another path for the same conversation is in flight):
    /// not this call's to give back.
    Held,
    /// The operator is at their maximum, or deactivated.
    Full,
}

/// Takes a slot on the operator's stream for `session_id`. Stale claims are freed in the same
/// append (reason given) and never count against `max`.
pub async fn claim(
    state: &AppState,
    ctx: &Context,
    operator: Uuid,
    session_id: Uuid,
    max: Option<u32>,
) -> Result<Claimed, Problem> {
    let u = state.users.get(state.events.as_ref(), operator).await?;
    // Stale claims matter here only against a maximum (the sweeper frees the others), and
    // for this very conversation (a stale claim for it is taken anew, to count again).
    let stale = match may_be_full(&u, max) || u.holds(session_id) {
        true => stale_claims(state, operator, &u, ctx.now).await?,
        false => vec![],
    };
    let took = std::sync::atomic::AtomicBool::new(false);
    let result = execute::<User, _>(state.events.as_ref(), &stream_id::<User>(operator), ctx, None, |u| {
        let events = claim_slot(u, session_id, ctx.now, max, &stale)?;
        // The last decision is the one written.
        let assigned = events.iter().any(|e| matches!(e, UserEvent::ConversationAssigned { .. }));
        took.store(assigned, std::sync::atomic::Ordering::Relaxed);
        Ok(events)
    })
    .await;
    match result {
        Ok(_) if took.load(std::sync::atomic::Ordering::Relaxed) => Ok(Claimed::Took),
        Ok(_) => Ok(Claimed::Held),
        Err(CommandError::Domain(UserError::AtCapacity)) | Err(CommandError::Domain(UserError::Deactivated)) => {
            Ok(Claimed::Full)
        }
        Err(e) => Err(refused(e)),
    }
}

/// Frees the operator's slot for `session_id`.
pub async fn release(state: &AppState, ctx: &Context, operator: Uuid, session_id: Uuid) -> Result<(), Problem> {
    execute::<User, _>(state.events.as_ref(), &stream_id::<User>(operator), ctx, None, |u| release_slot(u, session_id))
        .await
        .map_err(refused)?;
    Ok(())
}

/// After a path that claimed a slot failed to write the conversation: gives the slot back
/// only if this path took it (`Took`), and not if the conversation is now the operator's
/// anyway (another path for it won with this very claim: the claim is confirmed). A path
/// never frees a slot it did not take; one it took and that confirms nothing is freed here
/// or, if this fails, by the sweeper after `claim_timeout`.
pub async fn give_back(
    state: &AppState,
    ctx: &Context,
    operator: Uuid,
    session_id: Uuid,
    claimed: Claimed,
) -> Result<(), Problem> {
    if claimed != Claimed::Took {
        return Ok(());
    }
    let confirmed = current_session(state, session_id)
        .await?
        .is_some_and(|s| s.status != SessionStatus::Closed && s.operator == Some(operator));
    if confirmed {
        return Ok(());
    }
    release(state, ctx, operator, session_id).await
}

/// The operator a conversation was routed to.
#[derive(Clone, Debug)]
pub struct Routed {
    pub operator: Uuid,
    /// The name visitors see.
    pub name: String,
    pub claimed: Claimed,
}

impl Routed {
    /// The operator and their name, as a conversation's assignment takes them.
    pub fn assignee(&self) -> (Uuid, String) {
        (self.operator, self.name.clone())
    }
}

/// Routes to an operator with a free slot, trying the next best when one fills up meanwhile.
/// Returns the operator with their slot, or `None` when nobody is available.
pub async fn route(
    state: &AppState,
    ctx: &Context,
    c: &Channel,
    visitor: &Visitor,
    session_id: Uuid,
) -> Result<Option<Routed>, Problem> {
    let max = c.options.max_conversations_per_operator;
    let mut pool = candidates(state, c, ctx.now).await?;
    while let Some(chosen) = choose(&pool, visitor, max) {
        let claimed = claim(state, ctx, chosen, session_id, max).await?;
        if claimed != Claimed::Full {
            let u = state.users.get(state.events.as_ref(), chosen).await?;
            return Ok(Some(Routed { operator: chosen, name: u.display_name().to_string(), claimed }));
        }
        pool.retain(|p| p.user_id != chosen);
    }
    Ok(None)
}

/// Routes the oldest waiting conversations of a channel while operators are available.
/// Called when someone joins, comes online or frees a slot; safe to call from anywhere and
/// concurrently (a conversation is assigned at most once: its stream's version decides).
pub async fn dispatch(state: &AppState, ctx: &Context, channel_id: Uuid) -> Result<usize, Problem> {
    let Ok(c) = channel(state, channel_id).await else { return Ok(0) };
    let waiting = state.views.list(QUEUE, Some(&channel_id.to_string()), None, 50).await?;
    let mut routed = 0;
    for d in waiting {
        let Ok(summary) = serde_json::from_value::<ConversationSummary>(d.body) else { continue };
        let session_id = summary.session_id;
        let (s, _) = session(state, session_id).await?;
        if s.status != SessionStatus::Waiting {
            continue;
        }
        let visitor = Visitor { previous_operator: None, languages: s.languages.clone(), country: s.country.clone() };
        let Some(to) = route(state, ctx, &c, &visitor, session_id).await? else { break };
        let assigned =
            on_session(state, ctx, session_id, |s| session::take(s, to.operator, &to.name, Assignment::FromQueue))
                .await;
        match assigned {
            Ok(_) => routed += 1,
            // Someone took it meanwhile: give the slot back (if this pass took it).
            Err(_) => give_back(state, ctx, to.operator, session_id, to.claimed).await?,
        }
    }
    Ok(routed)
}

/// Routes the queues of every channel `user_id` is joined to (they became available).
pub async fn dispatch_for(state: &AppState, ctx: &Context, user_id: Uuid) -> Result<(), Problem> {
    for doc in crate::presence::channels_of(state, user_id).await? {
        if doc.joined.contains(&user_id) {
            dispatch(state, ctx, doc.channel_id).await?;
        }
    }
    Ok(())
}

/// Runs a session command; `Outcome` or the problem.
pub async fn on_session(
    state: &AppState,
    ctx: &Context,
    session_id: Uuid,
    decide: impl Fn(&Session) -> Result<Vec<session::SessionEvent>, session::SessionError>,
) -> Result<Outcome, Problem> {
    Ok(decide_on_session(state, ctx, session_id, decide).await?.0)
}

/// Runs a session command (from this node's cache of sessions); the outcome and the session
/// after it.
pub async fn decide_on_session(
    state: &AppState,
    ctx: &Context,
    session_id: Uuid,
    decide: impl Fn(&Session) -> Result<Vec<session::SessionEvent>, session::SessionError>,
) -> Result<(Outcome, Session), Problem> {
    let stream = stream_id::<Session>(session_id);
    execute_cached(state.events.as_ref(), &state.sessions, &stream, ctx, decide).await.map_err(refused)
}

/// A session as it is now (this node's cached copy brought up to date), or 404.
pub async fn session(state: &AppState, session_id: Uuid) -> Result<(Session, u64), Problem> {
    let loaded = state
        .sessions
        .current(state.events.as_ref(), &stream_id::<Session>(session_id))
        .await
        .map_err(|e| refused::<Problem>(e.into()))?;
    match (loaded.state.exists(), loaded.version) {
        (true, Some(v)) => Ok((loaded.state, v)),
        _ => Err(Problem::not_found("no such conversation")),
    }
}

/// Who wrote a message, as shown to either side (never a login or an email).
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuthorView {
    /// `operator`, `visitor`, `system` or `bot`.
    pub kind: &'static str,
    /// The operator's id (operators' side only needs it; visitors see it too, it is opaque).
    pub id: Option<Uuid>,
    /// The online chat name of an operator, or the visitor's name.
    pub name: String,
}

impl AuthorView {
    fn named(kind: &'static str, id: Option<Uuid>, name: String) -> Self {
        AuthorView { kind, id, name }
    }

    fn system() -> Self {
        AuthorView { kind: "system", id: None, name: String::new() }
    }
}

/// A message of a conversation's history.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub message_id: Uuid,
    pub author: AuthorView,
    /// Verbatim text (escape it when rendering HTML); empty once deleted.
    pub text: String,
    pub edited: bool,
    pub deleted: bool,
    pub welcome: bool,
    pub posted_at: DateTime<Utc>,
}

impl MessageView {
    /// A message as first posted (not edited, not deleted, not the welcome message).
    fn new(message_id: Uuid, author: AuthorView, text: String, posted_at: DateTime<Utc>) -> Self {
        MessageView { message_id, author, text, edited: false, deleted: false, welcome: false, posted_at }
    }
}

/// Folds session events into messages; `visitor` and `names` carry the names known so far.
fn fold_messages(
    events: &[store::RecordedEvent],
    visitor: &mut String,
    names: &mut std::collections::HashMap<Uuid, String>,
    out: &mut Vec<MessageView>,
) -> Result<(), Problem> {
    use domain::session::{Party, SessionEvent};
    for e in events {
        let event: SessionEvent = domain::aggregate::decode_versioned(&e.event_type, e.schema_version, &e.data)
            .map_err(|err| {
                tracing::error!(error = %err, stream = %e.stream_id, "stored session event unreadable");
                Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            })?;
        let bot = |names: &std::collections::HashMap<Uuid, String>| {
            AuthorView::named("bot", None, names.get(&Uuid::nil()).cloned().unwrap_or_default())
        };
        let message = |message_id, author, text| MessageView::new(message_id, author, text, e.recorded_at);
        match event {
            SessionEvent::SessionStarted { visitor_name, .. } => *visitor = visitor_name,
            SessionEvent::OperatorAssigned { operator_id, display_name, .. } => {
                names.insert(operator_id, display_name);
            }
            SessionEvent::MessagePosted { message_id, author, text, welcome } => {
                let author = match author {
                    Party::Operator { id } => {
                        AuthorView::named("operator", Some(id), names.get(&id).cloned().unwrap_or_default())
                    }
                    Party::Visitor => AuthorView::named("visitor", None, visitor.clone()),
                    Party::System => AuthorView::system(),
                };
                out.push(MessageView { welcome, ..message(message_id, author, text) });
            }
            // A replaced rating stays as it was: each rating is its own message.
            SessionEvent::ConversationRated { message_id, value, feedback, .. } => out.push(message(
                message_id,
                AuthorView::system(),
                domain::session::rating_message(value, feedback.as_deref()),
            )),
            // The bot's name is kept under the nil id, which no operator has.
            SessionEvent::ChatbotStarted { script } => {
                names.insert(Uuid::nil(), script.author_name);
            }
            SessionEvent::ChatbotStepPosted { message_id, text, .. }
            | SessionEvent::ChatbotSaid { message_id, text } => out.push(message(message_id, bot(names), text)),
            SessionEvent::ChatbotRestarted { message_id } => {
                out.push(message(message_id, bot(names), domain::bot_runtime::RESTARTING.into()))
            }
            SessionEvent::ChatbotAnswered { message_id, text, .. } => {
                out.push(message(message_id, AuthorView::named("visitor", None, visitor.clone()), text))
            }
            SessionEvent::MessageEdited { message_id, text } => {
                if let Some(m) = out.iter_mut().find(|m| m.message_id == message_id) {
                    m.text = text;
                    m.edited = true;
                }
            }
            SessionEvent::MessageDeleted { message_id } => {
                if let Some(m) = out.iter_mut().find(|m| m.message_id == message_id) {
                    m.text.clear();
                    m.deleted = true;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The conversation's messages in order, from its stream (always current).
pub async fn history(state: &AppState, session_id: Uuid) -> Result<Vec<MessageView>, Problem> {
    let events = store::read_whole_stream(state.events.as_ref(), &stream_id::<Session>(session_id), 0).await?;
    let (mut visitor, mut names, mut out) = (String::new(), Default::default(), Vec::new());
    fold_messages(&events, &mut visitor, &mut names, &mut out)?;
    Ok(out)
}

/// One message as stored now, read from the end of the stream (a just-posted message is
/// there), falling back to the whole history for an old one.
pub async fn message(state: &AppState, session_id: Uuid, message_id: Uuid) -> Result<MessageView, Problem> {
    let stream = stream_id::<Session>(session_id);
    let mut recent = state.events.read_stream(&stream, u64::MAX, store::Direction::Backward, 100).await?;
    recent.reverse();
    // The visitor's name is in the first event: read it only if the window does not reach it.
    let mut events = match recent.first() {
        Some(e) if e.stream_version == 0 => vec![],
        _ => state.events.read_stream(&stream, 0, store::Direction::Forward, 1).await?,
    };
    events.extend(recent);
    let (mut visitor, mut names, mut out) = (String::new(), std::collections::HashMap::new(), Vec::new());
    fold_messages(&events, &mut visitor, &mut names, &mut out)?;
    let found = match out.into_iter().find(|m| m.message_id == message_id) {
        Some(m) => m,
        None => history(state, session_id)
            .await?
            .into_iter()
            .find(|m| m.message_id == message_id)
            .ok_or_else(|| Problem::not_found("no such message"))?,
    };
    let mut found = found;
    if found.author.kind == "operator" && found.author.name.is_empty() {
        if let Some(id) = found.author.id {
            found.author.name = state.users.get(state.events.as_ref(), id).await?.display_name().to_string();
        }
    }
    Ok(found)
}

/// A message just written, from the session state after the command and the time the
/// store recorded it (no read needed).
pub async fn written_message(
    state: &AppState,
    session: &Session,
    message_id: Uuid,
    posted_at: DateTime<Utc>,
) -> Result<MessageView, Problem> {
    use domain::session::Party;
    let m = session
        .messages
        .iter()
        .find(|m| m.message_id == message_id)
        .ok_or_else(|| Problem::not_found("no such message"))?;
    let author = match m.author {
        Party::Operator { id } => {
            let name = match session.operator_names.get(&id) {
                Some(n) => n.clone(),
                None => state.users.get(state.events.as_ref(), id).await?.display_name().to_string(),
            };
            AuthorView::named("operator", Some(id), name)
        }
        Party::Visitor => AuthorView::named("visitor", None, session.visitor_name.clone()),
        Party::System => AuthorView::system(),
    };
    Ok(MessageView {
        message_id,
        author,
        text: if m.deleted { String::new() } else { m.text.clone() },
        edited: m.edited,
        deleted: m.deleted,
        welcome: m.welcome,
        posted_at,
    })
}

/// A page of history: `limit` messages after `after` or before `before` (newest when neither).
pub fn page(
    all: Vec<MessageView>,
    after: Option<Uuid>,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Vec<MessageView>, Problem> {
    let index = |id: Uuid| {
        all.iter()
            .position(|m| m.message_id == id)
            .ok_or_else(|| Problem::not_found("no such message in this conversation"))
    };
    let (start, end) = match (after, before) {
        (Some(a), _) => {
            let s = index(a)? + 1;
            (s, (s + limit).min(all.len()))
        }
        (None, Some(b)) => {
            let e = index(b)?;
            (e.saturating_sub(limit), e)
        }
        (None, None) => (all.len().saturating_sub(limit), all.len()),
    };
    Ok(all[start..end].to_vec())
}

/// Abandons every open conversation whose visitor never wrote and which started more than
/// `config.abandon_after` ago; frees their operators' slots. Returns how many.
pub async fn abandon_idle(state: &AppState) -> Result<usize, Problem> {
    let now = state.clock.now();
    let limit = chrono::Duration::from_std(state.config.abandon_after).unwrap_or(chrono::Duration::hours(1));
    let ctx = Context::new(domain::metadata::Actor::system(), now);
    let mut n = 0;
    for d in store::views::list_all(state.views.as_ref(), VIEW, None).await? {
        let Ok(c) = serde_json::from_value::<ConversationSummary>(d.body) else { continue };
        let visitor_wrote = c.order.iter().any(|(_, side)| *side == 'v');
        if c.status == SessionStatus::Closed || visitor_wrote || now - c.started_at < limit {
            continue;
        }
        // The operator whose slot is freed is the one at the close that wrote (not one read
        // before it: a transfer may land in between).
        let (outcome, after) = decide_on_session(state, &ctx, c.session_id, session::abandon).await?;
        if outcome.written > 0 {
            if let Some(operator) = after.operator {
                release(state, &ctx, operator, c.session_id).await?;
                if let Some(channel) = after.channel_id {
                    dispatch(state, &ctx, channel).await?;
                }
            }
            n += 1;
        }
    }
    Ok(n)
}
