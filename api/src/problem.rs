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

/// An API error; it answers as an `application/problem+json` [`ProblemDocument`].
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// On a version conflict: the resource's current version.
    pub current_version: Option<u64>,
}

/// The body of every error response (RFC 7807).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDocument<'a> {
    /// A URI naming the kind of problem, `urn:problem-type:livechat:<code>`: stable, so
    /// clients can branch on it.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'a str,
    pub status: u16,
    /// The last segment of `type`.
    pub code: &'a str,
    pub detail: &'a str,
    /// One entry per invalid input field (on 422).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub errors: &'a [FieldError],
    /// On 409 `version-conflict`: the version to send in `If-Match` after reloading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem { status, code, detail: detail.into(), errors: vec![], current_version: None }
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

    pub fn document(&self) -> ProblemDocument<'_> {
        ProblemDocument {
            kind: format!("urn:problem-type:livechat:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            code: self.code,
            detail: &self.detail,
            errors: &self.errors,
            current_version: self.current_version,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.document())).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
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
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "the store is unavailable; retry later",
                )
            }
        }
    }
}
