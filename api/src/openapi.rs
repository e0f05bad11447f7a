//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::OpenApi;

use crate::problem::{FieldError, ProblemDocument};
use crate::routes::{events, health, streams};

#[derive(OpenApi)]
#[openapi(
    info(title = "livechat", description = "Event-sourced live-chat backend. Errors are RFC 7807 problem documents."),
    paths(health::healthz, health::readyz, events::list, streams::list, openapi_json),
    components(schemas(
        ProblemDocument,
        FieldError,
        events::EventSchema,
        events::EventPage,
        streams::StreamPage,
        projections::stream_index::StreamSummary,
        projections::ProjectorHealth
    ))
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
