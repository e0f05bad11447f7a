//! Liveness and readiness, for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
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
    /// `ready`, `lagging` (a projector, or the PostgreSQL horizon, is behind by more than the
    /// bound) or `unavailable`.
    pub status: &'static str,
    pub store: StoreReadiness,
    /// Each projector's health as stored, with `last_error` while its runner keeps failing
    /// (the lag grows meanwhile, and turns the status `lagging` past the bound).
    pub projectors: Vec<ProjectorHealth>,
}

#[derive(Serialize, ToSchema)]
pub struct StoreReadiness {
    pub reachable: bool,
    pub backend: String,
    /// Newest visible position (`null` on an empty store).
    pub head: Option<String>,
    /// PostgreSQL: seconds the oldest running write transaction in the cluster has held back
    /// what readers can see; new events stay invisible to projectors meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizon_age_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The store is reachable and every projector is within the lag bound (503 otherwise).
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
        let store = StoreReadiness {
            reachable: false,
            backend,
            head: None,
            horizon_age_seconds: None,
            error: Some(e.to_string()),
        };
        let body = Readiness { status: "unavailable", store, projectors };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    };
    let head = match state.events.head().await {
        Ok(h) => h,
        Err(e) => return unavailable(backend, e, vec![]),
    };
    let mut projectors = Vec::new();
    for p in &state.projectors {
        match projections::health(p.as_ref(), state.events.as_ref(), state.views.as_ref()).await {
            Ok(h) => projectors.push(h),
            Err(e) => return unavailable(backend, e, projectors),
        }
    }
    // A held horizon hides new events from projectors without counting as their lag.
    let horizon_age_seconds = state.events.horizon_age().await.ok().flatten();
    let bound = state.config.ready_max_lag.as_secs_f64();
    let lagging = projectors.iter().any(|h| h.lag_seconds > bound) || horizon_age_seconds.is_some_and(|a| a > bound);
    let body = Readiness {
        status: if lagging { "lagging" } else { "ready" },
        store: StoreReadiness {
            reachable: true,
            backend,
            head: head.map(|h| h.to_string()),
            horizon_age_seconds,
            error: None,
        },
        projectors,
    };
    let status = if lagging { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (status, Json(body)).into_response()
}
