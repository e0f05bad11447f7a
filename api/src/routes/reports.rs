//! Odoo's livechat reports ("Sessions" and "Operator Analysis"), computed by
//! [`crate::reports`]. Admins see every conversation; an operator sees only the conversations
//! they handled (asking for another operator's is 403). JSON, or CSV with `Accept: text/csv`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use commands::AsOf;

use crate::auth::Caller;
use crate::problem::{Problem, ProblemDocument};
use crate::query::Params;
use crate::read_your_writes::wait_for_view;
use crate::reports::{Kind, Query, Report};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports/conversations", get(conversations))
        .route("/api/v1/reports/operators", get(operators))
}

/// Reads the filters, groupings and measures; every bad value is a field error.
fn parse(
    kind: Kind,
    caller: &Caller,
    mut p: Params,
) -> Result<(Query, Option<store::Position>, Option<AsOf>), Problem> {
    let mut q = Query::new(kind);
    q.from = p.parse::<DateTime<Utc>>("from", "an RFC 3339 time");
    q.to = p.parse::<DateTime<Utc>>("to", "an RFC 3339 time");
    if let (Some(f), Some(t)) = (q.from, q.to) {
        if f >= t {
            p.error("from", "is not before `to`");
        }
    }
    q.channel = p.parse::<Uuid>("channel_id", "a channel id");
    q.operator = p.parse::<Uuid>("operator_id", "an operator id");
    q.country = match p.text("country") {
        Some(c) if c == "none" => Some(c),
        Some(c) => match domain::values::Country::parse("country", &c) {
            Ok(c) => Some(c.as_str().to_string()),
            Err(_) => {
                p.error("country", format!("'{c}' is not an ISO 3166-1 alpha-2 code or `none`"));
                None
            }
        },
        None => None,
    };
    q.include_empty = p.parse::<bool>("include_empty", "true or false").unwrap_or(false);
    let mut errors = vec![];
    q.parse_names(p.as_given("group_by").as_deref(), p.as_given("measures").as_deref(), &mut errors);
    for e in errors {
        p.error(&e.field, e.message);
    }
    let min_position = p.parse("min_position", "a position (TX:POS)");
    let as_of = p.parse("as_of", "an RFC 3339 time or a position (TX:POS)");
    p.finish()?;
    if !caller.is_admin() {
        match q.operator {
            Some(o) if o != caller.user_id => {
                return Err(Problem::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "forbidden",
                    "an operator sees only the reports of their own conversations",
                ))
            }
            _ => q.operator = Some(caller.user_id),
        }
    }
    Ok((q, min_position, as_of))
}

async fn answer(
    state: AppState,
    headers: HeaderMap,
    q: Query,
    min: Option<store::Position>,
    as_of: Option<AsOf>,
) -> Result<Response, Problem> {
    let report: Report = match as_of {
        None => {
            wait_for_view(&state, "reports", min).await?;
            state.reports.report(state.views.as_ref(), &q).await?
        }
        Some(as_of) => past_report(&state, as_of, &q).await?,
    };
    let wants_csv = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("text/csv")));
    if wants_csv {
        let mut res = report.to_csv().into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        return Ok(res);
    }
    Ok(Json(report).into_response())
}

/// The report as it would have been at `as_of`: the conversations' events up to then,
/// projected aside in memory (never the live views). Costs a read of the log's conversation
/// events up to that point, so it suits an analyst's question, not a dashboard.
async fn past_report(state: &AppState, as_of: AsOf, q: &Query) -> Result<Report, Problem> {
    use store::{ExpectedVersion, NewEvent, Position, ReadAll};
    let past = store::Store::open(&store::StoreUrl::Memory).await?;
    let mut after = Position::START;
    'log: loop {
        let mut read = ReadAll::forward(after, 1000);
        read.filter.category = Some("session".into());
        let page = state.events.read_all(&read).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in page {
            if !as_of.includes(&e) {
                break 'log;
            }
            let copy = NewEvent {
                event_id: e.event_id,
                event_type: e.event_type,
                schema_version: e.schema_version,
                data: e.data,
                metadata: e.metadata,
                recorded_at: Some(e.recorded_at),
            };
            past.events().append(&e.stream_id, ExpectedVersion::Any, vec![copy]).await?;
        }
    }
    let reports = projections::reports::Reports;
    projections::rebuild(&reports, past.events().as_ref(), past.views().as_ref(), &Default::default(), |_| {}).await?;
    let mut facts = crate::reports::Facts::default();
    facts.refresh(past.views().as_ref()).await?;
    Ok(facts.report(q))
}

/// One row per group of conversations (Odoo's "Sessions" report). Filters keep conversations
/// started in `[from, to)`, in `channel_id` (where they started), handled by `operator_id`,
/// from `country` (`none`: unknown). `group_by`: one or two of channel, operator (the last
/// one), day, week, month, hour, weekday, country, rating; left out, one row: the total.
/// `measures`: comma-separated, all by default. An empty list or name, an unknown name or one
/// given twice is 422. Averages and percentages are rounded to 2 decimals, half away from zero,
/// from exact sums. Conversations without a visitor message are left out unless
/// `include_empty=true`; `abandoned` counts them regardless. Definitions: docs/reports.md.
#[utoipa::path(get, path = "/api/v1/reports/conversations", tag = "reports",
    params(("from" = Option<String>, Query, description = "RFC 3339, inclusive"),
           ("to" = Option<String>, Query, description = "RFC 3339, exclusive"),
           ("channel_id" = Option<Uuid>, Query,), ("operator_id" = Option<Uuid>, Query,),
           ("country" = Option<String>, Query, description = "ISO 3166-1 alpha-2, or none"),
           ("group_by" = Option<String>, Query, description = "one or two of channel, operator, day, week, month, hour, weekday, country, rating; left out: one total row; empty: 422"),
           ("measures" = Option<String>, Query, description = "count, messages_avg, duration_avg, time_to_answer_avg, time_to_answer_p50, time_to_answer_p90, unanswered, unanswered_percent, satisfaction_percent, rating_avg, abandoned; left out: all; empty: 422"),
           ("include_empty" = Option<bool>, Query,), ("min_position" = Option<String>, Query,),
           ("as_of" = Option<String>, Query, description = "RFC 3339 time or position: the report as it was then")),
    responses((status = 200, content((Report = "application/json"), (String = "text/csv"))),
              (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument),
              (status = 422, body = ProblemDocument)))]
pub async fn conversations(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, Problem> {
    let (q, min, as_of) = parse(Kind::Conversations, &caller, p)?;
    answer(state, headers, q, min, as_of).await
}

/// Like the conversations report, but a conversation counts once for every operator who
/// handled it (Odoo's "Operator Analysis"); `group_by=operator` gives one row per operator,
/// and without `group_by` the one row is the total. The total counts each conversation once,
/// and only conversations an operator handled: those that never had one (a chatbot's alone,
/// abandoned in the queue) are left out, so it can be below the conversations report's.
#[utoipa::path(get, path = "/api/v1/reports/operators", tag = "reports",
    params(("from" = Option<String>, Query, description = "RFC 3339, inclusive"),
           ("to" = Option<String>, Query, description = "RFC 3339, exclusive"),
           ("channel_id" = Option<Uuid>, Query,), ("operator_id" = Option<Uuid>, Query,),
           ("country" = Option<String>, Query, description = "ISO 3166-1 alpha-2, or none"),
           ("group_by" = Option<String>, Query, description = "as for conversations (operator: each operator who handled it); left out: one total row; empty: 422"),
           ("measures" = Option<String>, Query, description = "as for conversations; left out: all; empty: 422"),
           ("include_empty" = Option<bool>, Query,), ("min_position" = Option<String>, Query,),
           ("as_of" = Option<String>, Query, description = "RFC 3339 time or position: the report as it was then")),
    responses((status = 200, content((Report = "application/json"), (String = "text/csv"))),
              (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument),
              (status = 422, body = ProblemDocument)))]
pub async fn operators(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, Problem> {
    let (q, min, as_of) = parse(Kind::Operators, &caller, p)?;
    answer(state, headers, q, min, as_of).await
}
