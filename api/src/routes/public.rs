//! The visitor side of a channel and its widget tab.
//!
//! Public routes (no token, `Access-Control-Allow-Origin: *`, since the widget runs on other
//! sites): `init` says what the widget does on a page (Odoo's `/im_livechat/init`), the loader
//! script adds the widget (`/widget/widget.js` and `.css`, plain files in `api/assets/`), and
//! `/chat/{id}` is the direct-link page. The admin route gives the snippet to paste into a
//! website. [`cors`] is the CORS layer of every route the widget calls.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Extension, Json, Router};
use commands::{load, stream_id, StoreOrDecode};
use domain::channel::Channel;
use domain::rules::{match_rule, Rule, RuleAction};
use domain::user::Status;
use domain::values::Country;
use projections::channels;
use projections::users;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::AppState;

use domain::limits::MAX_URL_CHARS;

/// How long browsers and proxies may keep the loader script and the direct-link page.
const ASSET_CACHE: &str = "public, max-age=300";

const LOADER_JS: &str = include_str!("../../assets/loader.js");
const CHAT_HTML: &str = include_str!("../../assets/chat.html");
/// The widget itself: the same for every channel (the loader passes the channel id).
pub const WIDGET_JS: &str = include_str!("../../assets/widget.js");
pub const WIDGET_CSS: &str = include_str!("../../assets/widget.css");
/// Where the loader template takes the channel id, as a JSON string.
const LOADER_SLOT: &str = "__LIVECHAT_CHANNEL_ID__";
/// Where the page template takes the channel id (a UUID: hex digits and hyphens only).
const PAGE_SLOT: &str = "{{CHANNEL_ID}}";

pub fn routes() -> Router<AppState> {
    let public = Router::new()
        .route("/api/v1/public/channels/{id}/init", get(init).options(preflight))
        .layer(middleware::from_fn(cors))
        .route("/widget/{id}/loader.js", get(loader))
        .route("/widget/widget.js", get(widget_js))
        .route("/widget/widget.css", get(widget_css))
        .route("/chat/{id}", get(chat_page))
        .layer(middleware::map_response(allow_any_origin));
    let admin = Router::new().route("/api/v1/channels/{id}/widget", get(widget));
    public.merge(admin)
}

/// Public routes answer any site: the widget calls them from the pages it is embedded in.
/// No credentials are involved (the widget sends none), so `*` is safe.
async fn allow_any_origin(mut res: Response) -> Response {
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

/// CORS for the routes the widget calls from other sites (with [`preflight`] on each): every
/// answer, errors included, is readable by any origin. Nothing rides on cookies (the widget
/// sends none), so `*` is safe.
pub async fn cors(req: Request, next: Next) -> Response {
    allow_any_origin(next.run(req).await).await
}

/// Answers the browser's CORS preflight of a widget route: the widget's posts carry JSON and
/// the visitor token in `Authorization`, which a cross-origin request may only send once
/// allowed.
pub async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "accept, authorization, content-type, idempotency-key"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

/// What the widget does on a page.
#[derive(Debug, Serialize, ToSchema)]
pub struct InitResponse {
    pub channel_id: Uuid,
    /// The visitor's ISO 3166-1 alpha-2 country, from the server's country sources.
    pub country: Option<String>,
    /// False when no source knows the country: rules restricted to countries did not apply.
    pub country_known: bool,
    /// Some joined operator of the channel is online.
    pub operator_available: bool,
    /// The rule that applies to the page, if any.
    pub rule: Option<InitRule>,
    /// Whether to show the chat button at all.
    pub show_button: bool,
    /// The chatbot to start, if the rule has one and it applies now.
    pub chatbot: Option<InitChatbot>,
    pub options: WidgetOptions,
}

/// The applicable rule, as the widget needs it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InitRule {
    pub rule_id: Uuid,
    pub action: InitAction,
    /// Seconds before the window opens by itself (`open_automatically` only).
    pub timer_seconds: u32,
    pub url_regex: String,
}

/// What the widget does with its button (wire twin of the domain's `RuleAction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InitAction {
    Show,
    /// Show the button and the `notification_text` bubble.
    ShowWithNotification,
    /// Show the button and open the window after `timer_seconds`.
    OpenAutomatically,
    Hide,
}

impl From<RuleAction> for InitAction {
    fn from(a: RuleAction) -> Self {
        match a {
            RuleAction::Show => InitAction::Show,
            RuleAction::ShowWithNotification => InitAction::ShowWithNotification,
            RuleAction::OpenAutomatically => InitAction::OpenAutomatically,
            RuleAction::Hide => InitAction::Hide,
        }
    }
}

/// A chatbot reference (its script comes with the chatbot feature).
#[derive(Debug, Serialize, ToSchema)]
pub struct InitChatbot {
    pub chatbot_id: Uuid,
    pub only_if_no_operator: bool,
    /// The bot's name (the author of its messages); absent when the rule names no script.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Odoo's welcome steps: up to and including the first that is not `text`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub welcome_steps: Vec<domain::chatbot::Step>,
}

/// The channel's options tab, plus its name, for the widget.
#[derive(Debug, Serialize, ToSchema)]
pub struct WidgetOptions {
    /// The text bubble next to the button (`show_with_notification`).
    pub notification_text: String,
    pub welcome_message: String,
    pub input_placeholder: String,
    /// `#RRGGBB`
    pub button_color: String,
    pub button_text_color: String,
    pub header_color: String,
    pub header_text_color: String,
    pub channel_name: String,
}

/// Odoo's `available_for_me` (reference section 2.1), decided in the domain.
fn decide(rule: Option<&Rule>, operator_available: bool) -> (Option<InitChatbot>, bool) {
    let (chatbot, show_button) = domain::rules::widget_decision(rule, operator_available);
    let chatbot = chatbot.map(|c| InitChatbot {
        chatbot_id: c.chatbot_id,
        only_if_no_operator: c.only_if_no_operator,
        name: String::new(),
        welcome_steps: vec![],
    });
    (chatbot, show_button)
}

fn internal() -> Problem {
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
}

/// A channel as visitors see it, or `None` if there is none.
///
/// Read from the `channels` view first: this runs on every page view of every site that
/// embeds the widget, and a view read is one document, while the channel's stream grows with
/// every join and leave and would be folded each time. The view trails the log by the
/// projector's delay (milliseconds), so an edit or an archive reaches visitors that much
/// later, which a widget can afford. When the view has no document yet (a channel created a
/// moment ago, or an id that names nothing), the stream decides: an unknown id is a 404 only
/// when its stream is empty.
async fn read_channel(state: &AppState, id: Uuid) -> Result<Option<Channel>, Problem> {
    let stream = stream_id::<Channel>(id);
    // An undecodable document is logged by the read and the stream decides.
    if let Some(d) = channels::get(state.views.as_ref(), id).await? {
        return Ok(Some(Channel {
            id: Some(d.channel_id),
            name: d.name,
            archived: d.archived,
            options: d.options,
            operators: d.operators,
            joined: d.joined,
            rules: d.rules,
        }));
    }
    let loaded = load::<Channel>(state.events.as_ref(), &stream).await.map_err(|e| match e {
        StoreOrDecode::Store(e) => Problem::from(e),
        StoreOrDecode::Decode(e) => {
            tracing::error!(error = %e, %stream, "stored channel event unreadable");
            internal()
        }
    })?;
    Ok(loaded.state.id.is_some().then_some(loaded.state))
}

/// An existing, not archived channel, or 404.
async fn open_channel(state: &AppState, raw_id: &str) -> Result<Channel, Problem> {
    let id = crate::commanding::path_id(raw_id, "channel")?;
    match read_channel(state, id).await? {
        Some(c) if !c.archived => Ok(c),
        _ => Err(Problem::not_found("no such channel")),
    }
}

/// Whether a joined operator is online and active: from the `users` view, or from the user's
/// stream (cached) for a user the view does not have yet.
async fn operator_available(state: &AppState, joined: &[Uuid]) -> Result<bool, Problem> {
    if joined.is_empty() {
        return Ok(false);
    }
    let mut seen = Vec::new();
    for u in users::get_many(state.views.as_ref(), joined).await? {
        if u.active && u.status == Status::Online {
            return Ok(true);
        }
        seen.push(u.user_id);
    }
    for &user_id in joined.iter().filter(|u| !seen.contains(u)) {
        let user = state.users.get(state.events.as_ref(), user_id).await?;
        if user.exists() && user.active && user.status == Status::Online {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What the widget does on a page: the applicable rule, whether to show the button, the
/// chatbot to start and the options. `url` is the page's path and query (default `/`).
///
/// The country comes from the server's sources (trusted proxy header, country database over
/// the TCP peer), never from the visitor.
#[utoipa::path(get, path = "/api/v1/public/channels/{id}/init", tag = "public",
    params(("id" = Uuid, Path, description = "channel id"),
           ("url" = Option<String>, Query, description = "the page's path and query, at most 2000 characters; default `/`")),
    responses((status = 200, body = InitResponse),
              (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn init(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    mut params: Params,
) -> Result<Response, Problem> {
    let url = params.text("url").unwrap_or_else(|| "/".to_string());
    if url.chars().count() > MAX_URL_CHARS {
        params.error("url", format!("is longer than {MAX_URL_CHARS} characters"));
    }
    params.finish()?;
    let channel = open_channel(&state, &id).await?;
    let country: Option<Country> = state.geo.country(&headers, peer.map(|Extension(ConnectInfo(a))| a.ip()));
    let available = operator_available(&state, &channel.joined).await?;
    let rule = match_rule(&channel.rules, &url, country.as_ref());
    let (chatbot, show_button) = decide(rule, available);
    // The script gives the bot's name and welcome; an inactive or empty one starts nothing.
    let (chatbot, show_button) = advertise(&state, rule, available, chatbot, show_button).await?;
    let o = channel.options;
    let body = InitResponse {
        channel_id: channel.id.unwrap_or_default(),
        country_known: country.is_some(),
        country: country.map(|c| c.to_string()),
        operator_available: available,
        rule: rule.map(|r| InitRule {
            rule_id: r.rule_id,
            action: r.action.into(),
            timer_seconds: r.timer_seconds,
            url_regex: r.url_regex.clone(),
        }),
        show_button,
        chatbot,
        options: WidgetOptions {
            notification_text: o.notification_text,
            welcome_message: o.welcome_message,
            input_placeholder: o.input_placeholder,
            button_color: o.button_color.as_str().to_string(),
            button_text_color: o.button_text_color.as_str().to_string(),
            header_color: o.header_color.as_str().to_string(),
            header_text_color: o.header_text_color.as_str().to_string(),
            channel_name: channel.name,
        },
    };
    // Depends on who is online right now.
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// How to embed a channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct WidgetSnippet {
    /// The `<script>` tag to paste into a website's pages.
    pub script: String,
    /// A page where visitors chat without a website.
    pub direct_link: String,
}

/// `scheme://host` of the request: the `Host` header (or the URI's authority) and
/// `X-Forwarded-Proto` when a proxy terminating TLS sets it, else `http`. Only an admin reads
/// the result, about their own request; a setting for the public address comes later.
fn base_url(headers: &HeaderMap, uri: &Uri) -> Result<String, Problem> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    // Letters, digits, dots, hyphens, a port, IPv6 brackets: nothing that could leave the
    // attribute the snippet puts it in.
    let valid = !host.is_empty()
        && host.len() <= 255
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "bad-host", "the request has no valid Host header"));
    }
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let scheme = match forwarded.as_deref().or(uri.scheme_str()) {
        Some("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}"))
}

/// The widget tab: the script tag to paste into a website and the direct link.
///
/// URLs start with `--public-url` when the server has one, otherwise with the scheme and
/// host this request was sent to (see `Host` and `X-Forwarded-Proto`).
#[utoipa::path(get, path = "/api/v1/channels/{id}/widget", tag = "channels",
    params(("id" = Uuid, Path, description = "channel id")),
    responses((status = 200, body = WidgetSnippet),
              (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn widget(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    params: Params,
) -> Result<Json<WidgetSnippet>, Problem> {
    caller.require_admin()?;
    params.finish()?;
    let id = crate::commanding::path_id(&id, "channel")?;
    // Archived channels keep their snippet (it shows nothing); unknown ones have none.
    read_channel(&state, id).await?.ok_or_else(|| Problem::not_found("no such channel"))?;
    let base = match &state.http.public_url {
        Some(url) => url.clone(),
        None => base_url(&headers, &uri)?,
    };
    Ok(Json(WidgetSnippet {
        script: format!("<script src=\"{base}/widget/{id}/loader.js\" defer></script>"),
        direct_link: format!("{base}/chat/{id}"),
    }))
}

/// The loader script with the channel id in it.
pub fn loader_script(id: Uuid) -> String {
    let json = serde_json::to_string(&id.to_string()).expect("a string serializes");
    LOADER_JS.replacen(LOADER_SLOT, &json, 1)
}

/// The direct-link page of a channel.
pub fn chat_html(id: Uuid) -> String {
    CHAT_HTML.replace(PAGE_SLOT, &id.hyphenated().to_string())
}

fn asset(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, ASSET_CACHE),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The widget: asks `init` what to do on the page, then shows the button and the window.
#[utoipa::path(get, path = "/widget/{id}/loader.js", tag = "public",
    params(("id" = Uuid, Path, description = "channel id")),
    responses((status = 200, description = "the loader script", content_type = "application/javascript", body = String),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn loader(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, Problem> {
    let channel = open_channel(&state, &id).await?;
    Ok(asset("application/javascript; charset=utf-8", loader_script(channel.id.unwrap_or_default())))
}

/// The widget script (the loader adds it; the same for every channel).
#[utoipa::path(get, path = "/widget/widget.js", tag = "public",
    responses((status = 200, description = "the widget script", content_type = "application/javascript", body = String)))]
pub async fn widget_js() -> Response {
    asset("application/javascript; charset=utf-8", WIDGET_JS.to_string())
}

/// The widget's styles (loaded inside its shadow root).
#[utoipa::path(get, path = "/widget/widget.css", tag = "public",
    responses((status = 200, description = "the widget styles", content_type = "text/css", body = String)))]
pub async fn widget_css() -> Response {
    asset("text/css; charset=utf-8", WIDGET_CSS.to_string())
}

/// The direct link: a page that loads the widget and opens the chat window.
#[utoipa::path(get, path = "/chat/{id}", tag = "public",
    params(("id" = Uuid, Path, description = "channel id")),
    responses((status = 200, description = "the chat page", content_type = "text/html", body = String),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn chat_page(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, Problem> {
    let channel = open_channel(&state, &id).await?;
    let mut res = asset("text/html; charset=utf-8", chat_html(channel.id.unwrap_or_default()));
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; base-uri 'none'; form-action 'none'",
        ),
    );
    res.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(res)
}

/// Completes `init`'s chatbot with its script's name and welcome steps. A script that cannot
/// run (inactive or without steps) is not advertised and the button shows as without it, as in
/// Odoo. A reference to no script at all (rules stored before scripts existed) is passed on
/// unchanged, without name or welcome.
async fn advertise(
    state: &AppState,
    rule: Option<&Rule>,
    available: bool,
    chatbot: Option<InitChatbot>,
    show_button: bool,
) -> Result<(Option<InitChatbot>, bool), Problem> {
    let Some(mut c) = chatbot else { return Ok((None, show_button)) };
    let loaded = crate::commanding::read::<domain::chatbot::Chatbot>(state, c.chatbot_id).await?;
    if !loaded.state.exists() {
        return Ok((Some(c), show_button));
    }
    match commands::conversations::runnable(state, c.chatbot_id).await? {
        Some(script) => {
            c.name = script.author_name.clone();
            c.welcome_steps = script.welcome_steps().to_vec();
            Ok((Some(c), show_button))
        }
        None => {
            let without = rule.map(|r| Rule { chatbot: None, ..r.clone() });
            Ok((None, domain::rules::widget_decision(without.as_ref(), available).1))
        }
    }
}
