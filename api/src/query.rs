//! Strict query-string parsing: unknown parameters and bad values become problem documents.

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::problem::{FieldError, Problem};

/// The query parameters of a request, consumed field by field, collecting every error.
pub struct Params {
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(values) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad-query", e.body_text()))?;
        Ok(Params { values, errors: vec![] })
    }
}

impl Params {
    /// A text parameter; empty counts as absent.
    pub fn text(&mut self, name: &str) -> Option<String> {
        self.values.remove(name).filter(|v| !v.is_empty())
    }

    /// A parameter exactly as given, empty included: for lists, where `name=` is a mistake to
    /// report rather than an absent parameter.
    pub fn as_given(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// A parsed parameter; a value that does not parse is recorded as a field error.
    pub fn parse<T: FromStr>(&mut self, name: &str, expected: &str) -> Option<T> {
        let raw = self.text(name)?;
        match raw.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(name, format!("'{raw}' is not {expected}"));
                None
            }
        }
    }

    /// `limit`: 1..=max, default `default`.
    pub fn limit(&mut self, default: usize, max: usize) -> usize {
        match self.parse::<usize>("limit", "a whole number") {
            Some(n) if (1..=max).contains(&n) => n,
            Some(n) => {
                self.error("limit", format!("{n} is out of range 1..={max}"));
                default
            }
            None => default,
        }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError { field: field.to_string(), message: message.into() });
    }

    /// Fails on unknown parameters (400) or invalid values (422).
    pub fn finish(self) -> Result<(), Problem> {
        if !self.values.is_empty() {
            let mut names: Vec<_> = self.values.into_keys().collect();
            names.sort();
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "unknown-parameter",
                format!("unknown query parameter(s): {}", names.join(", ")),
            ));
        }
        if !self.errors.is_empty() {
            return Err(Problem::invalid(self.errors));
        }
        Ok(())
    }
}
