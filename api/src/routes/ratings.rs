//! Conversation ratings (Odoo's `rating.rating` for livechat): the visitor rates, operators
//! and admins list ratings, the dashboard shows each channel's share of happy ratings over
//! 14 days, and a channel's admin may publish a ratings page (JSON and plain HTML).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use chrono::{DateTime, Utc};
use commands::ratings as use_case;
use domain::channel::Channel;
use domain::session;
use projections::ratings::{newest_first, RatingCounts, RatingDoc, BY_OPERATOR, VIEW};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::commanding::{context, json_body, path_id, Body};
use crate::history::MessageView;
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::visitor::VisitorCaller;
use crate::AppState;
use commands::conversations as conversation;

/// How many of the latest ratings the public page shows (Odoo shows 100).
pub const PUBLIC_LATEST: usize = 100;

pub fn routes() -> Router<AppState> {
    let public = Router::new()
        .route("/api/v1/public/sessions/{id}/rating", post(rate).options(crate::routes::public::preflight))
        .route("/api/v1/public/channels/{id}/ratings", get(public_ratings))
        .route("/livechat/channel/{id}", get(public_page))
        .layer(middleware::map_response(allow_any_origin));
    Router::new().route("/api/v1/ratings", get(list)).merge(public)
}

/// The widget rates from the sites it is embedded in; no cookies are involved.
async fn allow_any_origin(mut res: Response) -> Response {
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

/// A visitor's rating.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRating {
    /// 5 (happy), 3 (neutral) or 1 (unhappy).
    pub value: i64,
    /// Optional, at most 4,000 characters.
    pub feedback: Option<String>,
    /// Client-made id of the rating's message: a retry with it is one rating.
    pub message_id: Option<Uuid>,
}

/// The visitor rates the conversation, open or closed; rating again replaces the rating.
/// Answers with the system message the rating shows as in the history.
#[utoipa::path(post, path = "/api/v1/public/sessions/{id}/rating", tag = "visitors", request_body = NewRating,
    responses((status = 201, body = MessageView), (status = 401, body = ProblemDocument),
              (status = 403, body = ProblemDocument), (status = 409, body = ProblemDocument),
              (status = 422, body = ProblemDocument)))]
pub async fn rate(
    State(state): State<AppState>,
    caller: VisitorCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body<NewRating>,
) -> Result<Response, Problem> {
    let id = caller.own(&id)?;
    let r = json_body(body)?;
    let message_id = r.message_id.unwrap_or_else(Uuid::now_v7);
    let actor = domain::metadata::Actor { kind: domain::metadata::ActorKind::Visitor, id: None };
    let ctx = context(&state, actor, &headers);
    let decided = use_case::rate(&state, &ctx, id, r.value, r.feedback.as_deref(), message_id).await?;
    crate::routes::sessions::posted(&state, id, message_id, decided).await
}

/// A page of ratings.
#[derive(Serialize, ToSchema)]
pub struct RatingPage {
    pub ratings: Vec<RatingDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn parse_value(q: &mut Params) -> Option<u8> {
    match q.text("value").as_deref() {
        None => None,
        Some("5" | "happy") => Some(5),
        Some("3" | "neutral") => Some(3),
        Some("1" | "unhappy") => Some(1),
        Some(other) => {
            q.error("value", format!("'{other}' is not 5 (happy), 3 (neutral) or 1 (unhappy)"));
            None
        }
    }
}

/// Ratings, newest first: admins see every one, operators those of conversations they were
/// rated for. Filters: `channel_id`, `operator_id`, `value` (5/3/1 or happy/neutral/unhappy),
/// `from`/`to` (RFC 3339, inclusive); cursor-paginated (`cursor`, `limit`).
#[utoipa::path(get, path = "/api/v1/ratings", tag = "ratings",
    params(("channel_id" = Option<Uuid>, Query,), ("operator_id" = Option<Uuid>, Query,),
           ("value" = Option<String>, Query, description = "5, 3, 1, happy, neutral or unhappy"),
           ("from" = Option<String>, Query, description = "RFC 3339"), ("to" = Option<String>, Query, description = "RFC 3339"),
           ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,), ("min_position" = Option<String>, Query,)),
    responses((status = 200, body = RatingPage), (status = 401, body = ProblemDocument),
              (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
pub async fn list(State(state): State<AppState>, caller: Caller, mut q: Params) -> Result<Json<RatingPage>, Problem> {
    let channel: Option<Uuid> = q.parse("channel_id", "a channel id");
    let mut operator: Option<Uuid> = q.parse("operator_id", "an operator id");
    let value = parse_value(&mut q);
    let from: Option<DateTime<Utc>> = q.parse("from", "an RFC 3339 time");
    let to: Option<DateTime<Utc>> = q.parse("to", "an RFC 3339 time");
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            q.error("from", "is after `to`");
        }
    }
    let cursor = q.text("cursor");
    let min_position = q.parse("min_position", "a position (TX:POS)");
    let limit = q.limit(50, 200);
    q.finish()?;
    if !caller.is_admin() {
        match operator {
            Some(o) if o != caller.user_id => {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "an operator sees only the ratings of their own conversations",
                ))
            }
            _ => operator = Some(caller.user_id),
        }
    }
    wait_for_view(&state, "ratings", min_position).await?;
    // The narrowest listing: one operator's or one channel's; each is newest first.
    let (view, partition) = match (operator, channel) {
        (Some(o), _) => (BY_OPERATOR, Some(o.to_string())),
        (None, Some(c)) => (VIEW, Some(c.to_string())),
        (None, None) => (VIEW, None),
    };
    let mut after = match cursor.as_deref() {
        Some(c) => Some(c.split_once('.').map(|(s, i)| (s.to_string(), i.to_string())).ok_or_else(|| {
            Problem::invalid(vec![crate::problem::FieldError {
                field: "cursor".into(),
                message: "is not a cursor from an earlier page".into(),
            }])
        })?),
        // Start at `to`: later ratings sort before it (an empty id sorts before every id).
        None => to.map(|t| (newest_first(t), String::new())),
    };
    let mut out = Vec::new();
    let mut next_cursor = None;
    'pages: loop {
        let page = state
            .views
            .list(view, partition.as_deref(), after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())), 200)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.sort_key.clone(), last.id.clone()));
        for d in page {
            let key = format!("{}.{}", d.sort_key, d.id);
            let Ok(r) = serde_json::from_value::<RatingDoc>(d.body) else { continue };
            if from.is_some_and(|f| r.rated_at < f) {
                break 'pages; // newest first: the rest is older still
            }
            if to.is_some_and(|t| r.rated_at > t)
                || channel.is_some_and(|c| c != r.channel_id)
                || value.is_some_and(|v| v != r.value)
            {
                continue;
            }
            if out.len() == limit {
                break 'pages;
            }
            out.push(r);
            next_cursor = Some(key);
        }
        next_cursor = None;
    }
    if out.len() < limit {
        next_cursor = None;
    }
    Ok(Json(RatingPage { ratings: out, next_cursor }))
}

/// Shares of the three grades, in percent with one decimal (Odoo's public page).
#[derive(Serialize, ToSchema, Default, PartialEq, Debug)]
pub struct Shares {
    pub happy: f64,
    pub neutral: f64,
    pub unhappy: f64,
}

fn shares(c: &RatingCounts) -> Shares {
    let total = c.total();
    if total == 0 {
        return Shares::default();
    }
    let share = |n: u64| (n as f64 * 1000.0 / total as f64).round() / 10.0;
    Shares { happy: share(c.happy), neutral: share(c.neutral), unhappy: share(c.unhappy) }
}

/// A rating as the public sees it: no visitor, no conversation id.
#[derive(Serialize, ToSchema)]
pub struct PublicRating {
    pub value: u8,
    /// `happy`, `neutral` or `unhappy`.
    pub rating: String,
    pub feedback: Option<String>,
    /// The name the visitor saw for the rated operator.
    pub operator_name: String,
    pub rated_at: DateTime<Utc>,
}

/// A channel's published ratings.
#[derive(Serialize, ToSchema)]
pub struct PublicRatings {
    pub channel_id: Uuid,
    pub name: String,
    /// Rated conversations, all time.
    pub rating_count: u64,
    pub percentages: Shares,
    /// The latest 100 ratings, newest first.
    pub latest: Vec<PublicRating>,
}

/// The channel, if it exists, is not archived and its ratings are published; 404 otherwise
/// (an unpublished page does not reveal that the channel exists).
async fn published_channel(state: &AppState, raw_id: &str) -> Result<Channel, Problem> {
    let id = path_id(raw_id, "channel")?;
    // The view first: one document, while the stream grows with every join and leave.
    let c = match projections::channels::get(state.views.as_ref(), id).await? {
        Some(d) => Channel {
            id: Some(d.channel_id),
            name: d.name,
            archived: d.archived,
            options: d.options,
            ..Default::default()
        },
        None => conversation::channel(state, id).await?,
    };
    if c.archived || !c.options.ratings_public {
        return Err(Problem::not_found("no published ratings for this channel"));
    }
    Ok(c)
}

async fn published(state: &AppState, raw_id: &str) -> Result<PublicRatings, Problem> {
    let c = published_channel(state, raw_id).await?;
    let channel_id = c.id.unwrap_or_default();
    let counts = projections::ratings::counts(state.views.as_ref(), channel_id).await?.unwrap_or_default();
    let docs = projections::ratings::latest(state.views.as_ref(), channel_id, PUBLIC_LATEST).await?;
    let mut latest = Vec::with_capacity(docs.len());
    for r in docs {
        let operator_name = state.users.get(state.events.as_ref(), r.operator_id).await?.display_name().to_string();
        latest.push(PublicRating {
            value: r.value,
            rating: r.rating,
            feedback: r.feedback,
            operator_name,
            rated_at: r.rated_at,
        });
    }
    Ok(PublicRatings { channel_id, name: c.name, rating_count: counts.total(), percentages: shares(&counts), latest })
}

/// A channel's published ratings: the shares of happy, neutral and unhappy ratings and the
/// latest 100 with their feedback. 404 unless the channel publishes them.
#[utoipa::path(get, path = "/api/v1/public/channels/{id}/ratings", tag = "public",
    responses((status = 200, body = PublicRatings), (status = 404, body = ProblemDocument)))]
pub async fn public_ratings(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PublicRatings>, Problem> {
    Ok(Json(published(&state, &id).await?))
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page: plain HTML, every text escaped, no scripts.
pub fn render_page(p: &PublicRatings) -> String {
    let name = escape(&p.name);
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Ratings of {name}</title>\n</head>\n<body>\n<h1>{name}</h1>\n\
         <p>{count} rated conversations</p>\n<ul class=\"shares\">\n\
         <li>Happy: {h}%</li>\n<li>Neutral: {n}%</li>\n<li>Unhappy: {u}%</li>\n</ul>\n",
        count = p.rating_count,
        h = p.percentages.happy,
        n = p.percentages.neutral,
        u = p.percentages.unhappy,
    );
    html.push_str("<h2>Latest ratings</h2>\n<ol class=\"ratings\">\n");
    for r in &p.latest {
        html.push_str(&format!(
            "<li><strong>{}</strong> for {} on <time datetime=\"{at}\">{day}</time>",
            session::rating_label(r.value),
            escape(&r.operator_name),
            at = r.rated_at.to_rfc3339(),
            day = r.rated_at.format("%Y-%m-%d"),
        ));
        if let Some(f) = &r.feedback {
            html.push_str(&format!("<blockquote>{}</blockquote>", escape(f).replace('\n', "<br>")));
        }
        html.push_str("</li>\n");
    }
    html.push_str("</ol>\n</body>\n</html>\n");
    html
}

/// The published ratings page (Odoo's `/livechat/channel/<id>`), as plain HTML.
#[utoipa::path(get, path = "/livechat/channel/{id}", tag = "public",
    params(("id" = Uuid, Path, description = "channel id")),
    responses((status = 200, description = "the ratings page", content_type = "text/html", body = String),
              (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn public_page(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, Problem> {
    let p = published(&state, &id).await?;
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], render_page(&p)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; base-uri 'none'; form-action 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_have_one_decimal() {
        let c = RatingCounts { happy: 1, neutral: 1, unhappy: 1 };
        assert_eq!(shares(&c), Shares { happy: 33.3, neutral: 33.3, unhappy: 33.3 });
        assert_eq!(shares(&RatingCounts::default()), Shares::default());
    }

    #[test]
    fn the_page_escapes_every_text() {
        let p = PublicRatings {
            channel_id: Uuid::nil(),
            name: "<script>alert(1)</script>".into(),
            rating_count: 1,
            percentages: Shares { happy: 0.0, neutral: 0.0, unhappy: 100.0 },
            latest: vec![PublicRating {
                value: 1,
                rating: "unhappy".into(),
                feedback: Some("\"<img src=x onerror=alert(1)>\"\nsecond line".into()),
                operator_name: "Ada & <b>co</b>".into(),
                rated_at: Utc::now(),
            }],
        };
        let html = render_page(&p);
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&quot;&lt;img src=x onerror=alert(1)&gt;&quot;<br>second line"));
        assert!(html.contains("Ada &amp; &lt;b&gt;co&lt;/b&gt;"));
    }
}
