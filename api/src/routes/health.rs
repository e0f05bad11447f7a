//! Liveness and readiness, for load balancers and orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use store::views::shadow_name;
use utoipa::ToSchema;

use crate::AppState;
use projections::ProjectorHealth;

/// `GET /healthz` body.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /readyz` body.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`; `unavailable` (the store cannot be read), `stuck` (a projector with work to do,
    /// or failing, has shown no sign of life for longer than the bound) or `lagging` (a
    /// projector's oldest visible unapplied event is older than the bound): 503.
    pub status: &'static str,
    /// Why the node is not ready, one cause per projector (absent when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub store: StoreReadiness,
    /// Each projector's health as stored, with `last_error` while its runner keeps failing.
    pub projectors: Vec<ProjectorHealth>,
}

#[derive(Serialize, ToSchema)]
pub struct StoreReadiness {
    pub reachable: bool,
    pub backend: String,
    /// Newest visible position (`null` on an empty store).
    pub head: Option<String>,
    /// PostgreSQL: seconds the oldest append still in flight has held back what readers can
    /// see (0 when none; transactions that do not append never hold it). Reported, never a
    /// cause of unreadiness by itself: what it holds back is not visible to anyone yet, and
    /// the append ends with its transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizon_age_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Ready when the store answers and no projector is behind or stuck (503 otherwise, with the
/// reason): only what restarting or fixing this service can act on.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    // Draining before exit: the balancer should send nothing more here.
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        let problem = crate::problem::Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "this server is shutting down",
        );
        return problem.into_response();
    }
    let backend = format!("{:?}", state.events.backend()).to_lowercase();
    let unavailable = |backend: String, e: store::StoreError, projectors: Vec<ProjectorHealth>| {
        let reason = Some(format!("the store cannot be read: {e}"));
        let store = StoreReadiness {
            reachable: false,
            backend,
            head: None,
            horizon_age_seconds: None,
            error: Some(e.to_string()),
        };
        let body = Readiness { status: "unavailable", reason, store, projectors };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    };
    let head = match state.events.head().await {
        Ok(h) => h,
        Err(e) => return unavailable(backend, e, vec![]),
    };
    let bound = state.http.ready_max_lag;
    let mut projectors = Vec::new();
    let (mut stuck, mut lagging) = (Vec::new(), Vec::new());
    for p in &state.projectors {
        let h = match projections::health(p.as_ref(), state.events.as_ref(), state.views.as_ref()).await {
            Ok(h) => h,
            Err(e) => return unavailable(backend, e, projectors),
        };
        match silence(&state, &h, bound).await {
            Ok(Some(why)) => stuck.push(why),
            Ok(None) => {}
            Err(e) => return unavailable(backend, e, projectors),
        }
        if h.lag_seconds > bound.as_secs_f64() {
            lagging.push(format!(
                "projector {} is {:.1} s behind ({} events, bound {} s)",
                h.projector,
                h.lag_seconds,
                h.lag_events,
                bound.as_secs()
            ));
        }
        projectors.push(h);
    }
    // Best effort, and information only (see `StoreReadiness::horizon_age_seconds`).
    let horizon_age_seconds = state.events.horizon_age().await.ok().flatten();
    let status = match (stuck.is_empty(), lagging.is_empty()) {
        (true, true) => "ready",
        (false, _) => "stuck",
        (true, false) => "lagging",
    };
    let causes: Vec<String> = stuck.into_iter().chain(lagging).collect();
    let body = Readiness {
        status,
        reason: (!causes.is_empty()).then(|| causes.join("; ")),
        store: StoreReadiness {
            reachable: true,
            backend,
            head: head.map(|h| h.to_string()),
            horizon_age_seconds,
            error: None,
        },
        projectors,
    };
    let code = if status == "ready" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

/// Why the projector of `h` counts as stuck: no runner anywhere has shown a sign of life (a
/// commit or a heartbeat, every few seconds while it runs) for longer than `bound`, although
/// there are visible events for it or its last attempt failed since. An idle projector nobody
/// heard of for a while is not stuck (a node just started heartbeats after a few seconds);
/// one rebuilding shows its life on its shadow checkpoint.
async fn silence(state: &AppState, h: &ProjectorHealth, bound: Duration) -> Result<Option<String>, store::StoreError> {
    let Some(beat) = h.heartbeat_at else { return Ok(None) };
    let now = Utc::now();
    let silent = (now - beat).to_std().unwrap_or_default();
    let failed = h.last_error_at.is_some_and(|at| at >= beat);
    if silent <= bound || !(failed || h.lag_events > 0) {
        return Ok(None);
    }
    let shadow = state.views.projector_state(&shadow_name(&h.projector)).await?;
    if shadow.is_some_and(|s| (now - s.heartbeat_at).to_std().unwrap_or_default() <= bound) {
        return Ok(None);
    }
    let why = match (&h.last_error, failed) {
        (Some(e), true) => format!("failing: {e}"),
        _ => format!("{} events waiting", h.lag_events),
    };
    Ok(Some(format!("projector {} has shown no sign of life for {} s ({why})", h.projector, silent.as_secs())))
}
