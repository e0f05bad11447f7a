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
    /// On a failure that may leave a write half known (the store timed out or failed): what
    /// became of the request. `None` on a store failure until [`settle_outcome`] decides it
    /// from the request's method.
    pub outcome: Option<Outcome>,
    /// Seconds after which a retry makes sense (`Retry-After`).
    pub retry_after: Option<u32>,
}

/// What a failed request did, as far as the server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It may have been applied, in part or in whole: the store did not confirm a write that
    /// had reached it. Retry with the same message id or `Idempotency-Key`: it is applied
    /// once at most.
    Unknown,
    /// Nothing was written: retrying cannot apply it twice.
    NotApplied,
}

/// Seconds a client should wait before retrying after the store failed.
const STORE_RETRY_AFTER: u32 = 2;

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
    pub detail: String,
    /// One entry per invalid input field (on 422).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub errors: &'a [FieldError],
    /// On 409 `version-conflict`: the version to send in `If-Match` after reloading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// On 503 `store-timeout`, `store-unavailable` and `deadline-exceeded`: `unknown` (a write
    /// may have been applied) or `not-applied` (nothing was written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// With `outcome`: true, retrying the same request (same message id, same
    /// `Idempotency-Key`) is safe; it is applied at most once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_safe: Option<bool>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            errors: vec![],
            current_version: None,
            outcome: None,
            retry_after: None,
        }
    }

    /// 503: the store failed or did not answer in time. `outcome` `None`: decided later from
    /// the request's method ([`settle_outcome`]).
    pub fn store_failure(code: &'static str, detail: &str, outcome: Option<Outcome>) -> Self {
        let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, detail);
        p.outcome = outcome;
        p.retry_after = Some(STORE_RETRY_AFTER);
        p
    }

    /// 503 `deadline-exceeded`: the request did not finish within `bound`. A write may have
    /// been applied (outcome unknown); a read wrote nothing.
    pub fn deadline(bound: std::time::Duration, writes: bool) -> Self {
        let outcome = if writes { Outcome::Unknown } else { Outcome::NotApplied };
        Problem::store_failure(
            "deadline-exceeded",
            &format!("the request did not finish within {} ms", bound.as_millis()),
            Some(outcome),
        )
    }

    /// The detail, followed by what the outcome means for the client.
    fn detail_with_outcome(&self) -> String {
        match self.outcome {
            None => self.detail.clone(),
            Some(Outcome::Unknown) => format!(
                "{}; it may have been applied: retry with the same message id or Idempotency-Key, it is applied at most once",
                self.detail
            ),
            Some(Outcome::NotApplied) => format!("{}; nothing was written: retrying is safe", self.detail),
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

    pub fn document(&self) -> ProblemDocument<'_> {
        ProblemDocument {
            kind: format!("urn:problem-type:livechat:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            code: self.code,
            detail: self.detail_with_outcome(),
            errors: &self.errors,
            current_version: self.current_version,
            outcome: self.outcome,
            retry_safe: self.outcome.map(|_| true),
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
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.retry_after.is_some() {
            // For `settle_outcome`, which knows the request.
            res.extensions_mut().insert(self);
        }
        res
    }
}

/// Completes a store failure's problem document once the request is known: a failure whose
/// outcome the store could not tell is `unknown` for a write and `not-applied` for a read;
/// a write that had already appended something (`X-Livechat-Position`) before failing is
/// `unknown` whatever the failing call was.
pub fn settle_outcome(mut res: Response, writes: bool) -> Response {
    let Some(problem) = res.extensions_mut().remove::<Problem>() else { return res };
    let wrote = res.headers().contains_key(crate::written::POSITION_HEADER);
    let outcome = match (problem.outcome, writes) {
        (None, true) => Outcome::Unknown,
        (None, false) => Outcome::NotApplied,
        (Some(Outcome::NotApplied), true) if wrote => Outcome::Unknown,
        (Some(o), _) => o,
    };
    if problem.outcome == Some(outcome) {
        return res;
    }
    let settled = Problem { outcome: Some(outcome), ..problem };
    match serde_json::to_vec(&settled.document()) {
        Ok(body) => {
            res.headers_mut().remove(header::CONTENT_LENGTH);
            *res.body_mut() = axum::body::Body::from(body);
        }
        Err(e) => tracing::error!(error = %e, "cannot write a problem document"),
    }
    res
}

impl From<StoreError> for Problem {
    /// Store failures the caller cannot fix are 503 with an opaque body; the cause is logged.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(detail) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request", detail),
            StoreError::WrongExpectedVersion { .. } | StoreError::DuplicateEventId { .. } => {
                Problem::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::Timeout { op, after, outcome_unknown } => {
                tracing::warn!(op, after_ms = after.as_millis() as u64, outcome_unknown, "store call timed out");
                let outcome = if outcome_unknown { Outcome::Unknown } else { Outcome::NotApplied };
                Problem::store_failure("store-timeout", "the store did not answer in time", Some(outcome))
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Problem::store_failure("store-unavailable", "the store is unavailable", None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn body(res: Response) -> serde_json::Value {
        serde_json::from_slice(&axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_store_failure_says_what_became_of_the_request() {
        let failed = || Problem::from(StoreError::Database("connection reset".into())).into_response();
        let write = body(settle_outcome(failed(), true)).await;
        assert_eq!((write["code"].as_str(), write["outcome"].as_str()), (Some("store-unavailable"), Some("unknown")));
        assert_eq!(write["retry_safe"], true);
        let read = settle_outcome(failed(), false);
        assert_eq!(read.headers()[header::RETRY_AFTER], "2");
        assert_eq!(body(read).await["outcome"], "not-applied");

        let timeout =
            |unknown| StoreError::Timeout { op: "x", after: Duration::from_secs(5), outcome_unknown: unknown };
        // A read that timed out during a write that already appended something: unknown.
        let mut res = Problem::from(timeout(false)).into_response();
        res.headers_mut().insert(crate::written::POSITION_HEADER, HeaderValue::from_static("0:7"));
        assert_eq!(body(settle_outcome(res, true)).await["outcome"], "unknown");
        let res = Problem::from(timeout(false)).into_response();
        assert_eq!(body(settle_outcome(res, true)).await["outcome"], "not-applied");
        let res = Problem::from(timeout(true)).into_response();
        assert_eq!(body(settle_outcome(res, false)).await["outcome"], "unknown", "never hidden");

        // Other problems are left alone.
        let res = settle_outcome(Problem::not_found("no such thing").into_response(), true);
        assert!(body(res).await.get("outcome").is_none());
    }
}
