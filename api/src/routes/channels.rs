//! Channels: the dashboard, Odoo's channel form tab by tab (name, options, operators,
//! rules) and operators joining or leaving. Writes need an admin, except joining and
//! leaving, which operators do for themselves.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use commands::channels::{self as use_cases, ChannelChange};
use commands::{stream_id, Outcome};
use domain::channel::{Channel, ChannelOptions, OptionsInput};
use domain::rules::{Rule, RuleInput};
use domain::user::Status;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::{context, etag, if_match, json_body, mark_position, path_id, refused, Body};
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/channels", get(dashboard).post(create))
        .route("/api/v1/channels/{id}", get(form).patch(rename))
        .route("/api/v1/channels/{id}/archive", post(archive))
        .route("/api/v1/channels/{id}/options", put(options))
        .route("/api/v1/channels/{id}/options/reset-colors", post(reset_colors))
        .route("/api/v1/channels/{id}/operators", post(add_operator))
        .route("/api/v1/channels/{id}/operators/new", post(create_operator))
        .route("/api/v1/channels/{id}/operators/{user_id}", delete(remove_operator))
        .route("/api/v1/channels/{id}/rules", post(add_rule))
        .route("/api/v1/channels/{id}/rules/order", put(reorder_rules))
        .route("/api/v1/channels/{id}/rules/{rule_id}", put(update_rule).delete(remove_rule))
        .route("/api/v1/channels/{id}/join", post(join))
        .route("/api/v1/channels/{id}/leave", post(leave))
        .route("/api/v1/channels/{id}/presence", get(presence))
}

/// One card of the dashboard (Odoo's kanban).
#[derive(Serialize, ToSchema)]
pub struct ChannelCard {
    pub channel_id: Uuid,
    pub name: String,
    pub operator_count: usize,
    /// Operators joined now.
    pub joined_count: usize,
    /// Whether the caller is joined (the Join/Leave button).
    pub is_joined: bool,
    /// Whether the caller is one of the channel's operators (may join).
    pub is_operator: bool,
    /// Conversations so far, abandoned ones (the visitor never wrote) left out.
    pub conversation_count: u64,
    /// Share of happy ratings among the conversations rated in the last 14 days, in percent
    /// (Odoo's `rating_percentage_satisfaction`); null when none were rated (Odoo's -1).
    pub satisfaction_percent: Option<u8>,
}

/// The dashboard: every active channel.
#[derive(Serialize, ToSchema)]
pub struct Dashboard {
    pub channels: Vec<ChannelCard>,
}

/// An operator of a channel, as the form lists them.
#[derive(Serialize, ToSchema)]
pub struct OperatorEntry {
    pub user_id: Uuid,
    pub name: String,
    /// What visitors see.
    pub display_name: String,
    #[schema(value_type = String, example = "online")]
    pub status: Status,
    pub joined: bool,
}

/// The whole channel form.
#[derive(Serialize, ToSchema)]
pub struct ChannelForm {
    pub channel_id: Uuid,
    pub name: String,
    pub archived: bool,
    #[schema(value_type = Object)]
    pub options: ChannelOptions,
    pub operators: Vec<OperatorEntry>,
    /// In sequence order: the first matching rule applies.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<Rule>,
    /// The channel's stream version, also sent as `ETag`.
    pub version: u64,
}

/// Reads a channel from its stream: always current, whatever the views' lag.
async fn current(state: &AppState, id: Uuid) -> Result<(Channel, u64), Problem> {
    Ok(use_cases::current(state, id).await?)
}

async fn build_form(state: &AppState, c: Channel, version: u64) -> Result<ChannelForm, Problem> {
    let mut operators = Vec::new();
    for &user_id in &c.operators {
        let u = state.users.get(state.events.as_ref(), user_id).await?;
        operators.push(OperatorEntry {
            user_id,
            name: u.name.clone(),
            display_name: u.display_name().to_string(),
            status: u.status,
            joined: c.joined.contains(&user_id),
        });
    }
    Ok(ChannelForm {
        channel_id: c.id.unwrap_or_default(),
        name: c.name,
        archived: c.archived,
        options: c.options,
        operators,
        rules: c.rules,
        version,
    })
}

/// The form as a response, with `ETag` and the position of the write that produced it.
async fn respond(
    state: &AppState,
    id: Uuid,
    status: StatusCode,
    outcome: Option<Outcome>,
) -> Result<Response, Problem> {
    let (c, version) = current(state, id).await?;
    let form = build_form(state, c, version).await?;
    let mut res = (status, Json(form)).into_response();
    if let Some((k, v)) = etag(Some(version)) {
        res.headers_mut().insert(k, v);
    }
    mark_position(&mut res, outcome.and_then(|o| o.position));
    if status == StatusCode::CREATED {
        if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/channels/{id}")) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    }
    Ok(res)
}

/// Runs a change of the form for an admin and answers with the updated form.
async fn admin_write(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    raw_id: &str,
    change: ChannelChange,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let id = path_id(raw_id, "channel")?;
    let ctx = context(state, caller.actor(), headers);
    let outcome = use_cases::change(state, &ctx, id, if_match(headers)?, change).await?;
    respond(state, id, StatusCode::OK, Some(outcome)).await
}

/// The dashboard: each active channel with its operators, who is joined and whether the
/// caller is.
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels",
    responses((status = 200, body = Dashboard), (status = 401, body = ProblemDocument)))]
pub async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
    mut q: Params,
) -> Result<Json<Dashboard>, Problem> {
    let min_position = q.parse("min_position", "a position (TX:POS)");
    q.finish()?;
    wait_for_view(&state, "channels", min_position).await?;
    wait_for_view(&state, "ratings", min_position).await?;
    let counts = projections::conversations::counts_by_channel(state.views.as_ref()).await?;
    let count_of = |id: Uuid| counts.get(&id).map_or(0, |c| c.conversations());
    let now = state.clock.now();
    let mut channels = Vec::new();
    for doc in commands::conversations::active_channels(&state).await? {
        channels.push(ChannelCard {
            channel_id: doc.channel_id,
            satisfaction_percent: commands::ratings::satisfaction(&state, doc.channel_id, now).await?,
            name: doc.name,
            operator_count: doc.operators.len(),
            joined_count: doc.joined.len(),
            is_joined: doc.joined.contains(&caller.user_id),
            is_operator: doc.operators.contains(&caller.user_id),
            conversation_count: count_of(doc.channel_id),
        });
    }
    Ok(Json(Dashboard { channels }))
}

/// A new channel.
#[derive(Deserialize, ToSchema)]
pub struct NewChannel {
    pub name: String,
}

/// Creates a channel with Odoo's default options; the creator becomes its operator.
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", request_body = NewChannel,
    responses((status = 201, body = ChannelForm), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body<NewChannel>,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let new = json_body(body)?;
    let ctx = context(&state, caller.actor(), &headers);
    let (id, outcome) = use_cases::create(&state, &ctx, &new.name, Some(caller.user_id)).await?;
    respond(&state, id, StatusCode::CREATED, Some(outcome)).await
}

/// The whole channel form (operators, options, rules), read from the channel's stream;
/// `?as_of=` (an RFC 3339 time or a position) answers with the channel as it was then
/// (operators' names as they are now).
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels",
    params(("as_of" = Option<String>, Query, description = "RFC 3339 time or position TX:POS")),
    responses((status = 200, body = ChannelForm), (status = 404, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn form(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    mut q: crate::query::Params,
) -> Result<Response, Problem> {
    let as_of: Option<commands::AsOf> = q.parse("as_of", "an RFC 3339 time or a position (TX:POS)");
    q.finish()?;
    let id = path_id(&id, "channel")?;
    let Some(as_of) = as_of else { return respond(&state, id, StatusCode::OK, None).await };
    let loaded = commands::load_as_of::<Channel>(state.events.as_ref(), &stream_id::<Channel>(id), as_of)
        .await
        .map_err(|e| refused::<Problem>(e.into()))?;
    match (loaded.state.id, loaded.version) {
        (Some(_), Some(version)) => Ok(Json(build_form(&state, loaded.state, version).await?).into_response()),
        _ => Err(Problem::not_found("no such channel at that time")),
    }
}

/// A new name.
#[derive(Deserialize, ToSchema)]
pub struct Rename {
    pub name: String,
}

/// Renames a channel (`If-Match` guards against overwriting someone else's edit).
#[utoipa::path(patch, path = "/api/v1/channels/{id}", tag = "channels", request_body = Rename,
    responses((status = 200, body = ChannelForm), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<Rename>,
) -> Result<Response, Problem> {
    let r = json_body(body)?;
    admin_write(&state, &caller, &headers, &id, ChannelChange::Rename(r.name)).await
}

/// Archives a channel; joined operators leave it.
#[utoipa::path(post, path = "/api/v1/channels/{id}/archive", tag = "channels",
    responses((status = 200, body = ChannelForm), (status = 404, body = ProblemDocument)))]
pub async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    admin_write(&state, &caller, &headers, &id, ChannelChange::Archive).await
}

/// Changes the options tab; absent fields keep their value. Colors are `#RRGGBB`.
#[utoipa::path(put, path = "/api/v1/channels/{id}/options", tag = "channels", request_body = Object,
    responses((status = 200, body = ChannelForm), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn options(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<OptionsInput>,
) -> Result<Response, Problem> {
    let input = json_body(body)?;
    admin_write(&state, &caller, &headers, &id, ChannelChange::Options(input)).await
}

/// Restores Odoo's default colors.
#[utoipa::path(post, path = "/api/v1/channels/{id}/options/reset-colors", tag = "channels",
    responses((status = 200, body = ChannelForm)))]
pub async fn reset_colors(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    admin_write(&state, &caller, &headers, &id, ChannelChange::ResetColors).await
}

/// A user to add as operator.
#[derive(Deserialize, ToSchema)]
pub struct OperatorRef {
    pub user_id: Uuid,
}

/// Adds an existing, active user as an operator of the channel.
#[utoipa::path(post, path = "/api/v1/channels/{id}/operators", tag = "channels", request_body = OperatorRef,
    responses((status = 200, body = ChannelForm), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn add_operator(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<OperatorRef>,
) -> Result<Response, Problem> {
    let user_id = json_body(body)?.user_id;
    admin_write(&state, &caller, &headers, &id, ChannelChange::AddOperator(user_id)).await
}

/// Creates a new user and makes them an operator of the channel, in one request (Odoo's
/// "create" in the operators tab). The body is the same as `POST /api/v1/users`.
#[utoipa::path(post, path = "/api/v1/channels/{id}/operators/new", tag = "channels", request_body = crate::routes::users::NewUser,
    responses((status = 201, body = ChannelForm), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn create_operator(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<crate::routes::users::NewUser>,
) -> Result<Response, Problem> {
    caller.require_admin()?;
    let channel_id = path_id(&id, "channel")?;
    let new = json_body(body)?;
    let ctx = context(&state, caller.actor(), &headers);
    let outcome = commands::accounts::create_operator(&state, &ctx, channel_id, new.into()).await?;
    respond(&state, channel_id, StatusCode::CREATED, Some(outcome)).await
}

/// Removes an operator (making them leave first if joined).
#[utoipa::path(delete, path = "/api/v1/channels/{id}/operators/{user_id}", tag = "channels",
    responses((status = 200, body = ChannelForm), (status = 409, body = ProblemDocument)))]
pub async fn remove_operator(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let user_id = path_id(&user_id, "operator")?;
    admin_write(&state, &caller, &headers, &id, ChannelChange::RemoveOperator(user_id)).await
}

/// Appends a rule (rules apply in order).
#[utoipa::path(post, path = "/api/v1/channels/{id}/rules", tag = "channels", request_body = Object,
    responses((status = 201, body = ChannelForm), (status = 422, body = ProblemDocument)))]
pub async fn add_rule(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<RuleInput>,
) -> Result<Response, Problem> {
    let input = json_body(body)?;
    let rule_id = Uuid::now_v7();
    let mut res = admin_write(&state, &caller, &headers, &id, ChannelChange::AddRule(rule_id, input)).await?;
    *res.status_mut() = StatusCode::CREATED;
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/channels/{id}/rules/{rule_id}")) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Replaces a rule's settings.
#[utoipa::path(put, path = "/api/v1/channels/{id}/rules/{rule_id}", tag = "channels", request_body = Object,
    responses((status = 200, body = ChannelForm), (status = 404, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn update_rule(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, rule_id)): Path<(String, String)>,
    body: Body<RuleInput>,
) -> Result<Response, Problem> {
    let input = json_body(body)?;
    let rule_id = path_id(&rule_id, "rule")?;
    admin_write(&state, &caller, &headers, &id, ChannelChange::UpdateRule(rule_id, input)).await
}

/// Removes a rule.
#[utoipa::path(delete, path = "/api/v1/channels/{id}/rules/{rule_id}", tag = "channels",
    responses((status = 200, body = ChannelForm), (status = 404, body = ProblemDocument)))]
pub async fn remove_rule(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, rule_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let rule_id = path_id(&rule_id, "rule")?;
    admin_write(&state, &caller, &headers, &id, ChannelChange::RemoveRule(rule_id)).await
}

/// The new order of every rule of the channel.
#[derive(Deserialize, ToSchema)]
pub struct RuleOrder {
    pub rule_ids: Vec<Uuid>,
}

/// Reorders the rules; the list must name each rule once.
#[utoipa::path(put, path = "/api/v1/channels/{id}/rules/order", tag = "channels", request_body = RuleOrder,
    responses((status = 200, body = ChannelForm), (status = 422, body = ProblemDocument)))]
pub async fn reorder_rules(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<RuleOrder>,
) -> Result<Response, Problem> {
    let order = json_body(body)?;
    admin_write(&state, &caller, &headers, &id, ChannelChange::ReorderRules(order.rule_ids)).await
}

/// Where the caller stands in a channel after joining or leaving.
#[derive(Serialize, ToSchema)]
pub struct Membership {
    pub channel_id: Uuid,
    pub joined: bool,
}

async fn presence_change(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    raw_id: &str,
    joining: bool,
) -> Result<Response, Problem> {
    let id = path_id(raw_id, "channel")?;
    let ctx = context(state, caller.actor(), headers);
    let outcome = match joining {
        true => use_cases::join(state, &ctx, id, caller.user_id).await?,
        false => use_cases::leave(state, &ctx, id, caller.user_id).await?,
    };
    let mut res = Json(Membership { channel_id: id, joined: joining }).into_response();
    mark_position(&mut res, outcome.position);
    Ok(res)
}

/// The caller joins the channel (they must be one of its operators).
#[utoipa::path(post, path = "/api/v1/channels/{id}/join", tag = "presence",
    responses((status = 200, body = Membership), (status = 409, body = ProblemDocument)))]
pub async fn join(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    presence_change(&state, &caller, &headers, &id, true).await
}

/// The caller leaves the channel.
#[utoipa::path(post, path = "/api/v1/channels/{id}/leave", tag = "presence",
    responses((status = 200, body = Membership), (status = 404, body = ProblemDocument)))]
pub async fn leave(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    presence_change(&state, &caller, &headers, &id, false).await
}

/// Who is joined to a channel now, with their status.
#[derive(Serialize, ToSchema)]
pub struct Presence {
    pub channel_id: Uuid,
    pub joined: Vec<OperatorEntry>,
}

/// The presence view of a channel (admins).
#[utoipa::path(get, path = "/api/v1/channels/{id}/presence", tag = "presence",
    responses((status = 200, body = Presence), (status = 403, body = ProblemDocument)))]
pub async fn presence(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Presence>, Problem> {
    caller.require_admin()?;
    let id = path_id(&id, "channel")?;
    let (c, version) = current(&state, id).await?;
    let form = build_form(&state, c, version).await?;
    Ok(Json(Presence { channel_id: id, joined: form.operators.into_iter().filter(|o| o.joined).collect() }))
}
