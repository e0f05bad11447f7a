//! The envelope every backend stores and returns.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A totally ordered place in the global log: `(transaction, sequence)`.
///
/// SQLite and memory use `tx = 0` and a gapless sequence. PostgreSQL uses the
/// appending transaction's `xid8` and `global_position`; delivery follows
/// `(tx, pos)` order, not the numeric order of `pos` alone. Callers treat it as
/// opaque: it prints and parses as `tx:pos`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub tx: u64,
    pub pos: u64,
}

impl Position {
    /// Before every event.
    pub const START: Position = Position { tx: 0, pos: 0 };

    pub fn new(tx: u64, pos: u64) -> Self {
        Position { tx, pos }
    }

    /// The bound to read *after* so that this position itself is included.
    pub fn just_before(self) -> Position {
        match (self.tx, self.pos) {
            (0, 0) => Position::START,
            (tx, 0) => Position::new(tx - 1, u64::MAX),
            (tx, pos) => Position::new(tx, pos - 1),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tx, self.pos)
    }
}

/// Why a position string was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid position '{0}': expected TX:POS (two unsigned integers, as printed in `position`) or POS")]
pub struct InvalidPosition(pub String);

impl FromStr for Position {
    type Err = InvalidPosition;

    /// Accepts `tx:pos`, or a bare `pos` meaning `0:pos` (the embedded store's form).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidPosition(s.to_string());
        match s.split_once(':') {
            Some((tx, pos)) => Ok(Position::new(tx.parse().map_err(|_| bad())?, pos.parse().map_err(|_| bad())?)),
            None => Ok(Position::new(0, s.parse().map_err(|_| bad())?)),
        }
    }
}

impl Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The stream's category: the part of its id before the first `-`.
pub fn category_of(stream_id: &str) -> &str {
    stream_id.split('-').next().unwrap_or(stream_id)
}

/// An event to append.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
    pub metadata: Value,
    /// Set only when importing a log, to keep the original time; appends leave it
    /// `None` and the store stamps the commit time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<DateTime<Utc>>,
}

impl NewEvent {
    /// A new event with a fresh UUID v7 id, schema version 1 and empty metadata.
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            data,
            metadata: Value::Object(Default::default()),
            recorded_at: None,
        }
    }

    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as stored, with its place in its stream and in the global log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub position: Position,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    pub fn category(&self) -> &str {
        category_of(&self.stream_id)
    }
}

/// Timestamps are kept to the microsecond so that every backend round-trips them exactly.
pub fn store_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_print_and_parse_as_tx_colon_pos() {
        let p = Position::new(7, 42);
        assert_eq!(p.to_string(), "7:42");
        assert_eq!("7:42".parse(), Ok(p));
        assert_eq!("42".parse(), Ok(Position::new(0, 42)), "a bare number is an embedded-store position");
        assert_eq!(serde_json::to_value(p).unwrap(), "7:42");
        for bad in ["", "x", "1:", ":1", "-1:2", "1:2:3", "1.5"] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
    }

    #[test]
    fn positions_order_by_transaction_then_sequence() {
        assert!(Position::new(1, 900) < Position::new(2, 5));
        assert!(Position::new(2, 5) < Position::new(2, 6));
    }

    #[test]
    fn just_before_is_the_tightest_exclusive_bound() {
        assert_eq!(Position::new(0, 5).just_before(), Position::new(0, 4));
        assert_eq!(Position::new(3, 0).just_before(), Position::new(2, u64::MAX));
        assert_eq!(Position::START.just_before(), Position::START, "nothing lies before the start");
        for p in [Position::new(0, 1), Position::new(9, 9)] {
            assert!(p.just_before() < p);
        }
    }

    #[test]
    fn categories_are_the_prefix_before_the_first_dash() {
        assert_eq!(category_of("channel-0190-abcd"), "channel");
        assert_eq!(category_of("plain"), "plain");
    }
}

/// What the writer believes about the stream before appending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "version", rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have this (0-based) version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Does a stream whose last version is `actual` (None: no stream) satisfy this?
    pub fn admits(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        }
    }

    /// Version the first appended event must get, when the expectation pins it.
    pub fn first_version(self) -> Option<u64> {
        match self {
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(v) => Some(v + 1),
            ExpectedVersion::Any | ExpectedVersion::StreamExists => None,
        }
    }
}
