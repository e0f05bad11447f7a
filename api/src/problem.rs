//! RFC 7807 problem documents: every error the API returns.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::StoreError;
use utoipa::ToSchema;

/// One invalid input field.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An `application/problem+json` body.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; stable, so clients can branch on it.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code, the last segment of `type`.
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:problem-type:livechat:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            code: code.to_string(),
            detail: detail.into(),
            errors: vec![],
        }
    }

    /// 422 with one entry per invalid field.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            format!("invalid value for: {}", fields.join(", ")),
        );
        p.errors = errors;
        p
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, axum::Json(&self)).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        res
    }
}

impl From<StoreError> for Problem {
    /// Store failures the caller cannot fix are 503 with an opaque body; the cause is logged.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(detail) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request", detail),
            StoreError::WrongExpectedVersion { .. } | StoreError::DuplicateEventId { .. } => {
                Problem::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", "the store is unavailable; retry later")
            }
        }
    }
}
