//! Report aggregation: filters, groupings and measures over the `report_conversations` rows.
//! Pure (no I/O) except [`Facts::refresh`], which reads the rows changed since its last call.
//!
//! Why an in-memory index rather than pre-aggregated bucket documents: a bucket's key depends
//! on the conversation (its start day, channel, operator, country, rating), while a projector
//! names the documents it touches from the event alone, so it cannot find the bucket to move a
//! conversation out of. Instead each node keeps every row as a compact fact (~130 bytes with
//! its lookup entry) and folds them per request: a million facts aggregate in tens of
//! milliseconds, percentiles are exact, and a request reads only the rows changed since the
//! previous one (row sort keys are the position of their last change). Definitions:
//! `docs/reports.md`.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use projections::reports::{ReportRow, VIEW};
use serde_json::{Map, Value};
use store::{StoreError, ViewStore};
use uuid::Uuid;

use crate::problem::FieldError;

/// Which report: one row per conversation, or one per (conversation, operator who handled it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Conversations,
    Operators,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Conversations => "conversations",
            Kind::Operators => "operators",
        }
    }
}

/// What rows can be grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Channel,
    Operator,
    Day,
    Week,
    Month,
    Hour,
    Weekday,
    Country,
    Rating,
}

pub const DIMENSIONS: &[(&str, Dimension)] = &[
    ("channel", Dimension::Channel),
    ("operator", Dimension::Operator),
    ("day", Dimension::Day),
    ("week", Dimension::Week),
    ("month", Dimension::Month),
    ("hour", Dimension::Hour),
    ("weekday", Dimension::Weekday),
    ("country", Dimension::Country),
    ("rating", Dimension::Rating),
];

/// What is computed for each group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Count,
    MessagesAvg,
    DurationAvg,
    TimeToAnswerAvg,
    TimeToAnswerP50,
    TimeToAnswerP90,
    Unanswered,
    UnansweredPercent,
    SatisfactionPercent,
    RatingAvg,
    Abandoned,
}

pub const MEASURES: &[(&str, Measure)] = &[
    ("count", Measure::Count),
    ("messages_avg", Measure::MessagesAvg),
    ("duration_avg", Measure::DurationAvg),
    ("time_to_answer_avg", Measure::TimeToAnswerAvg),
    ("time_to_answer_p50", Measure::TimeToAnswerP50),
    ("time_to_answer_p90", Measure::TimeToAnswerP90),
    ("unanswered", Measure::Unanswered),
    ("unanswered_percent", Measure::UnansweredPercent),
    ("satisfaction_percent", Measure::SatisfactionPercent),
    ("rating_avg", Measure::RatingAvg),
    ("abandoned", Measure::Abandoned),
];

fn dimension_name(d: Dimension) -> &'static str {
    DIMENSIONS.iter().find(|(_, x)| *x == d).map(|(n, _)| *n).unwrap_or("?")
}

fn measure_name(m: Measure) -> &'static str {
    MEASURES.iter().find(|(_, x)| *x == m).map(|(n, _)| *n).unwrap_or("?")
}

/// A report request.
#[derive(Clone, Debug)]
pub struct Query {
    pub kind: Kind,
    /// Conversations started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Conversations started before.
    pub to: Option<DateTime<Utc>>,
    pub channel: Option<Uuid>,
    /// Conversations this operator handled (in the operators report: their rows only).
    pub operator: Option<Uuid>,
    /// An ISO code, or `none` for conversations of unknown country.
    pub country: Option<String>,
    pub group_by: Vec<Dimension>,
    pub measures: Vec<Measure>,
    /// Also count conversations in which the visitor never wrote.
    pub include_empty: bool,
}

impl Query {
    pub fn new(kind: Kind) -> Self {
        Query {
            kind,
            from: None,
            to: None,
            channel: None,
            operator: None,
            country: None,
            group_by: vec![],
            measures: MEASURES.iter().map(|(_, m)| *m).collect(),
            include_empty: false,
        }
    }

    /// Parses `group_by` (one or two names) and `measures`, each comma-separated, as given
    /// (`None`: not given, the default). Both lists follow one rule: every name known, none
    /// twice, none empty (`measures=` and `a,,b` are mistakes, not "nothing"); every mistake
    /// becomes a field error.
    pub fn parse_names(&mut self, group_by: Option<&str>, measures: Option<&str>, errors: &mut Vec<FieldError>) {
        if let Some(g) = group_by {
            self.group_by = list("group_by", g, DIMENSIONS, errors);
            if self.group_by.len() > 2 {
                errors.push(FieldError { field: "group_by".into(), message: "at most two groupings".into() });
            }
        }
        if let Some(m) = measures {
            self.measures = list("measures", m, MEASURES, errors);
        }
    }
}

/// A comma-separated list of names from `known` (spaces around a name are ignored).
fn list<T: Copy + PartialEq>(field: &str, raw: &str, known: &[(&str, T)], errors: &mut Vec<FieldError>) -> Vec<T> {
    let mut error = |message: String| errors.push(FieldError { field: field.into(), message });
    if raw.trim().is_empty() {
        error(format!("is empty: name one or more of {} (or leave it out)", names(known)));
        return vec![];
    }
    let mut out = vec![];
    for name in raw.split(',').map(str::trim) {
        match known.iter().find(|(n, _)| *n == name) {
            Some((_, x)) if out.contains(x) => error(format!("'{name}' is given twice")),
            Some((_, x)) => out.push(*x),
            None if name.is_empty() => error("has an empty name (two commas in a row, or one at an end)".into()),
            None => error(format!("'{name}' is not one of {}", names(known))),
        }
    }
    out
}

fn names<T>(list: &[(&str, T)]) -> String {
    list.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

const NONE: u32 = u32::MAX;
/// A span that is not there (no messages, no answer), in a microsecond field.
const NO_SPAN: i64 = i64::MIN;

/// A conversation reduced to what reports read.
#[derive(Clone, Debug)]
struct Fact {
    started: i64,
    day: i32,
    month: i32,
    channel: u32,
    operator: u32,
    /// The first two operators who handled it (`NONE` when fewer), inline so that reading
    /// them costs no pointer chase; the rare others in `more_operators`.
    operators: [u32; 2],
    more_operators: Box<[u32]>,
    country: u32,
    hour: u8,
    weekday: u8,
    rating: u8,
    answered: bool,
    abandoned: bool,
    visitor_wrote: bool,
    messages: u32,
    /// Microseconds (`NO_SPAN` when none): sums of integers are exact, sums of floats not.
    duration: i64,
    answer: i64,
}

impl Fact {
    fn handlers(&self) -> impl Iterator<Item = u32> + '_ {
        self.operators.iter().copied().take_while(|o| *o != NONE).chain(self.more_operators.iter().copied())
    }

    fn handled_by(&self, o: u32) -> bool {
        self.operators.contains(&o) || self.more_operators.contains(&o)
    }
}

/// Interned ids and country codes.
#[derive(Default)]
struct Names {
    list: Vec<String>,
    index: HashMap<String, u32>,
}

impl Names {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    fn find(&self, s: &str) -> u32 {
        self.index.get(s).copied().unwrap_or(NONE - 1)
    }

    fn label(&self, i: u32) -> Value {
        self.list.get(i as usize).map_or(Value::Null, |s| Value::String(s.clone()))
    }
}

/// Every conversation's report row, compacted, and where to resume reading changes.
#[derive(Default)]
pub struct Facts {
    facts: Vec<Fact>,
    by_session: HashMap<Uuid, usize>,
    names: Names,
    after: Option<(String, String)>,
    /// The projector version the rows were read at: a rebuild to another version rewrites
    /// rows without moving their sort keys, so the facts are read again from scratch.
    version: Option<u32>,
}

impl Facts {
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    /// Adds or replaces a conversation's row.
    pub fn upsert(&mut self, r: &ReportRow) {
        let mut id = |u: Option<&Uuid>| u.map_or(NONE, |u| self.names.intern(&u.to_string()));
        let channel = id(Some(&r.channel_id));
        let operator = id(r.operator_id.as_ref());
        let all: Vec<u32> = r.operators.iter().map(|o| id(Some(o))).collect();
        let operators = [all.first().copied().unwrap_or(NONE), all.get(1).copied().unwrap_or(NONE)];
        let more_operators: Box<[u32]> = all.iter().skip(2).copied().collect();
        let country = r.country.as_deref().map_or(NONE, |c| self.names.intern(c));
        let date = r.started_at.date_naive();
        let fact = Fact {
            started: r.started_at.timestamp_micros(),
            day: date.num_days_from_ce(),
            month: date.year() * 12 + date.month0() as i32,
            channel,
            operator,
            operators,
            more_operators,
            country,
            hour: r.start_hour,
            weekday: r.start_weekday,
            rating: r.rating.unwrap_or(0),
            // The same as `r.answered` (an answer has a time), which the sums rely on.
            answered: r.time_to_answer_micros().is_some(),
            abandoned: r.abandoned,
            visitor_wrote: r.visitor_messages > 0,
            messages: r.messages,
            duration: r.duration_micros().unwrap_or(NO_SPAN),
            answer: r.time_to_answer_micros().unwrap_or(NO_SPAN),
        };
        match self.by_session.get(&r.session_id) {
            Some(i) => self.facts[*i] = fact,
            None => {
                self.by_session.insert(r.session_id, self.facts.len());
                self.facts.push(fact);
            }
        }
    }

    /// Reads the rows changed since the last call (all of them the first time).
    pub async fn refresh(&mut self, views: &dyn ViewStore) -> Result<usize, StoreError> {
        let version = views.projector_state("reports").await?.map(|s| s.projector_version);
        if version != self.version {
            *self = Facts { version, ..Facts::default() };
        }
        let mut read = 0;
        loop {
            let after = self.after.as_ref().map(|(s, i)| (s.as_str(), i.as_str()));
            let page = views.list(VIEW, None, after, 5_000).await?;
            let Some(last) = page.last() else { return Ok(read) };
            self.after = Some((last.sort_key.clone(), last.id.clone()));
            read += page.len();
            for d in page {
                match serde_json::from_value::<ReportRow>(d.body) {
                    Ok(r) => self.upsert(&r),
                    Err(err) => tracing::warn!(id = %d.id, %err, "unreadable report row skipped"),
                }
            }
        }
    }

    /// The report `q` asks for.
    pub fn report(&self, q: &Query) -> Report {
        let channel = q.channel.map(|c| self.names.find(&c.to_string()));
        let operator = q.operator.map(|o| self.names.find(&o.to_string()));
        let country = q.country.as_deref().map(|c| if c == "none" { NONE } else { self.names.find(c) });
        let (from, to) = (q.from.map(|t| t.timestamp_micros()), q.to.map(|t| t.timestamp_micros()));
        let mut groups: Groups = Groups::default();
        let mut total = Acc::default();
        let mut key = [0i64; 2];
        for f in &self.facts {
            if from.is_some_and(|t| f.started < t)
                || to.is_some_and(|t| f.started >= t)
                || channel.is_some_and(|c| f.channel != c)
                || country.is_some_and(|c| f.country != c)
                || operator.is_some_and(|o| !f.handled_by(o))
            {
                continue;
            }
            let counted = q.include_empty || f.visitor_wrote;
            if !counted && !f.abandoned {
                continue;
            }
            let each = |o: u32, key: &mut [i64; 2], groups: &mut Groups| {
                for (slot, d) in q.group_by.iter().enumerate() {
                    key[slot] = dimension_value(f, *d, o);
                }
                groups.entry(*key).or_default().add(f, counted);
            };
            match q.kind {
                // Without groupings the one row is the total (below).
                _ if q.group_by.is_empty() => {}
                Kind::Conversations => each(f.operator, &mut key, &mut groups),
                Kind::Operators => {
                    for o in f.handlers().filter(|o| operator.is_none_or(|x| x == *o)) {
                        each(o, &mut key, &mut groups);
                    }
                }
            }
            // The operators report is about operators: a conversation nobody handled (bot
            // only, abandoned in the queue) is in none of its rows, so not in its total either.
            if q.kind == Kind::Conversations || f.operators[0] != NONE {
                total.add(f, counted);
            }
        }
        let mut keys: Vec<[i64; 2]> = groups.keys().copied().collect();
        keys.sort_by(|a, b| {
            let order = |k: &[i64; 2], i: usize| self.sort_label(q.group_by[i], k[i]);
            (0..q.group_by.len())
                .map(|i| order(a, i).cmp(&order(b, i)))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut rows: Vec<Map<String, Value>> = keys
            .into_iter()
            .map(|k| {
                let mut row = Map::new();
                for (i, d) in q.group_by.iter().enumerate() {
                    row.insert(dimension_name(*d).into(), self.label(*d, k[i]));
                }
                groups.get_mut(&k).expect("a listed group").measure(&q.measures, &mut row);
                row
            })
            .collect();
        let mut total_row = Map::new();
        total.measure(&q.measures, &mut total_row);
        if q.group_by.is_empty() {
            rows.push(total_row.clone());
        }
        Report {
            report: q.kind.name().into(),
            group_by: q.group_by.iter().map(|d| dimension_name(*d).to_string()).collect(),
            measures: q.measures.iter().map(|m| measure_name(*m).to_string()).collect(),
            rows,
            total: total_row,
        }
    }

    /// Groups sort by time for time dimensions, by label otherwise; "none" last.
    fn sort_label(&self, d: Dimension, v: i64) -> (i64, String) {
        match d {
            Dimension::Channel | Dimension::Operator | Dimension::Country => match self.names.label(v as u32) {
                Value::String(s) => (0, s),
                _ => (1, String::new()),
            },
            Dimension::Rating => (-v, String::new()),
            _ => (v, String::new()),
        }
    }

    fn label(&self, d: Dimension, v: i64) -> Value {
        let date = |days: i64| NaiveDate::from_num_days_from_ce_opt(days as i32);
        match d {
            Dimension::Channel | Dimension::Operator | Dimension::Country => self.names.label(v as u32),
            Dimension::Day => date(v).map_or(Value::Null, |d| d.to_string().into()),
            Dimension::Week => date(v).map_or(Value::Null, |d| {
                let w = d.iso_week();
                format!("{}-W{:02}", w.year(), w.week()).into()
            }),
            Dimension::Month => format!("{}-{:02}", v.div_euclid(12), v.rem_euclid(12) + 1).into(),
            Dimension::Hour => v.into(),
            Dimension::Weekday => ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
                .get((v - 1) as usize)
                .map_or(Value::Null, |s| (*s).into()),
            Dimension::Rating => match v {
                0 => Value::Null,
                v => domain::session::rating_label(v as u8).into(),
            },
        }
    }
}

fn dimension_value(f: &Fact, d: Dimension, operator: u32) -> i64 {
    match d {
        Dimension::Channel => f.channel as i64,
        Dimension::Operator => operator as i64,
        Dimension::Day => f.day as i64,
        // The Monday of the ISO week, as days from the common era.
        Dimension::Week => (f.day - (f.day - 1).rem_euclid(7)) as i64,
        Dimension::Month => f.month as i64,
        Dimension::Hour => f.hour as i64,
        Dimension::Weekday => f.weekday as i64,
        Dimension::Country => f.country as i64,
        Dimension::Rating => f.rating as i64,
    }
}

/// Group keys are two small integers: a multiply-xor hash is enough and several times faster
/// than SipHash over a million rows (keys come from the view, not from the request).
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type Groups = HashMap<[i64; 2], Acc, std::hash::BuildHasherDefault<KeyHasher>>;

/// Sums of one group, in integers (microseconds for spans) so that nothing is lost before the
/// one rounding of each measure.
#[derive(Default)]
struct Acc {
    count: u64,
    messages: u64,
    durations: i128,
    timed: u64,
    answers: Vec<i64>,
    unanswered: u64,
    rated: u64,
    happy: u64,
    ratings: u64,
    abandoned: u64,
}

impl Acc {
    fn add(&mut self, f: &Fact, counted: bool) {
        if f.abandoned {
            self.abandoned += 1;
        }
        if !counted {
            return;
        }
        self.count += 1;
        self.messages += f.messages as u64;
        if f.duration != NO_SPAN {
            self.durations += f.duration as i128;
            self.timed += 1;
        }
        if f.answered {
            self.answers.push(f.answer);
        } else {
            self.unanswered += 1;
        }
        if f.rating > 0 {
            self.rated += 1;
            self.ratings += f.rating as u64;
            if f.rating >= 4 {
                self.happy += 1;
            }
        }
    }

    fn measure(&mut self, measures: &[Measure], out: &mut Map<String, Value>) {
        // `part / whole`, where `unit` of `part` make one of the measure (1 for counts, 100
        // for percentages, 1,000,000 microseconds for seconds), to 2 decimals.
        let ratio = |part: i128, unit: i128, whole: u64| {
            if whole == 0 {
                Value::Null
            } else {
                round2(part, unit * whole as i128).into()
            }
        };
        let answered = self.answers.len() as u64;
        for m in measures {
            let v: Value = match m {
                Measure::Count => self.count.into(),
                Measure::MessagesAvg => ratio(self.messages.into(), 1, self.count),
                Measure::DurationAvg => ratio(self.durations, MICROS, self.timed),
                Measure::TimeToAnswerAvg => ratio(self.answers.iter().map(|a| *a as i128).sum(), MICROS, answered),
                Measure::TimeToAnswerP50 => percentile(&mut self.answers, 50),
                Measure::TimeToAnswerP90 => percentile(&mut self.answers, 90),
                Measure::Unanswered => self.unanswered.into(),
                Measure::UnansweredPercent => ratio(100 * self.unanswered as i128, 1, self.count),
                Measure::SatisfactionPercent => ratio(100 * self.happy as i128, 1, self.rated),
                Measure::RatingAvg => ratio(self.ratings.into(), 1, self.rated),
                Measure::Abandoned => self.abandoned.into(),
            };
            out.insert(measure_name(*m).into(), v);
        }
    }
}

const MICROS: i128 = 1_000_000;

/// Nearest rank: the smallest value with at least `p`% of the values at or below it, in
/// seconds to 2 decimals. Selects in linear time rather than sorting (reorders `values`).
fn percentile(values: &mut [i64], p: usize) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    let rank = (p * values.len()).div_ceil(100).max(1);
    let (_, v, _) = values.select_nth_unstable(rank - 1);
    round2(*v as i128, MICROS).into()
}

/// `num / den` (`den > 0`) to 2 decimals, rounded half away from zero from the exact integer
/// quotient, as decimal arithmetic would: 4.030000 s / 2 is 2.02 (a float sum gives 2.01).
/// The result is the double nearest to that decimal, which JSON prints as the decimal.
fn round2(num: i128, den: i128) -> f64 {
    let (q, r) = (num * 100 / den, num * 100 % den);
    let away = if 2 * r.abs() >= den { num.signum() } else { 0 };
    (q + away) as f64 / 100.0
}

/// A computed report.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Report {
    /// `conversations` or `operators`.
    pub report: String,
    pub group_by: Vec<String>,
    pub measures: Vec<String>,
    /// One object per group: the group's values by dimension name, then the measures.
    /// Without groupings, one object: the total.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
    /// The measures over every conversation the filters keep, each counted once (in the
    /// operators report, only those an operator handled).
    #[schema(value_type = Object)]
    pub total: Map<String, Value>,
}

impl Report {
    /// RFC 4180 CSV: a header of the dimensions then the measures, one line per group.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let columns: Vec<&String> = self.group_by.iter().chain(&self.measures).collect();
        out.push_str(&columns.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
        for row in &self.rows {
            let line: Vec<String> = columns
                .iter()
                .map(|c| match row.get(c.as_str()) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => csv_field(s),
                    Some(v) => v.to_string(),
                })
                .collect();
            let _ = write!(out, "{}\r\n", line.join(","));
        }
        out
    }

    /// An aligned plain-text table, for terminals.
    pub fn to_table(&self) -> String {
        let columns: Vec<&String> = self.group_by.iter().chain(&self.measures).collect();
        let cell = |row: &Map<String, Value>, c: &str| match row.get(c) {
            None | Some(Value::Null) => "-".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        let mut lines: Vec<Vec<String>> = vec![columns.iter().map(|c| c.to_string()).collect()];
        lines.extend(self.rows.iter().map(|r| columns.iter().map(|c| cell(r, c)).collect()));
        let mut total: Vec<String> = self
            .group_by
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "total".into() } else { String::new() })
            .collect();
        total.extend(self.measures.iter().map(|m| cell(&self.total, m)));
        // Without groups the one row is the total already.
        if !self.group_by.is_empty() && !self.rows.is_empty() {
            lines.push(total);
        }
        let widths: Vec<usize> =
            (0..columns.len()).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for l in lines {
            let cells: Vec<String> = l.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A node's facts, shared by its requests.
#[derive(Default)]
pub struct Index {
    facts: tokio::sync::Mutex<Facts>,
}

impl Index {
    /// Reads the view in (the first read of a large view takes seconds), so that the first
    /// report does not wait for it.
    pub async fn warm(&self, views: &dyn ViewStore) -> Result<usize, StoreError> {
        self.facts.lock().await.refresh(views).await
    }

    /// Brings the facts up to date with the view, then computes the report.
    pub async fn report(&self, views: &dyn ViewStore, q: &Query) -> Result<Report, StoreError> {
        let mut guard = self.facts.lock().await;
        guard.refresh(views).await?;
        // Folding a million rows takes tens of milliseconds: off the async workers. Should it
        // panic, the node starts over with an empty index (read again on the next report).
        let (facts, q) = (std::mem::take(&mut *guard), q.clone());
        let (facts, report) = tokio::task::spawn_blocking(move || {
            let report = facts.report(&q);
            (facts, report)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        *guard = facts;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A conversation whose visitor wrote at its start; `answer` microseconds later an
    /// operator answered (the last message), if at all.
    fn row(n: u128, started: &str, answer: Option<i64>, rating: Option<u8>) -> ReportRow {
        let started_at: DateTime<Utc> = started.parse().unwrap();
        let answered_at = answer.map(|a| started_at + chrono::TimeDelta::microseconds(a));
        let seconds = |a: i64| a as f64 / 1e6;
        ReportRow {
            session_id: Uuid::from_u128(n),
            channel_id: Uuid::from_u128(1),
            channels: vec![Uuid::from_u128(1)],
            operator_id: None,
            operators: vec![],
            started_at,
            start_hour: 0,
            start_weekday: 1,
            country: None,
            anonymous: true,
            queued: false,
            messages: 1 + answer.is_some() as u32,
            visitor_messages: 1,
            speakers: 1 + answer.is_some() as u32,
            first_message_at: Some(started_at),
            last_message_at: Some(answered_at.unwrap_or(started_at)),
            first_visitor_message_at: Some(started_at),
            first_answer_at: answered_at,
            duration_seconds: Some(answer.map_or(0.0, seconds)),
            time_to_answer_seconds: answer.map(seconds),
            answered: answer.is_some(),
            rating,
            rating_text: None,
            closed: true,
            abandoned: false,
            speaker_list: vec![],
        }
    }

    fn query(group_by: &str, measures: &str) -> Query {
        let mut q = Query::new(Kind::Conversations);
        let mut errors = vec![];
        q.parse_names((!group_by.is_empty()).then_some(group_by), Some(measures), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        q
    }

    const S: i64 = 1_000_000;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<i64> = (1..=10).rev().map(|s| s * S).collect();
        assert_eq!((percentile(&mut v, 50), percentile(&mut v, 90)), (json(5.0), json(9.0)));
        assert_eq!((percentile(&mut [7 * S], 50), percentile(&mut [7 * S], 90)), (json(7.0), json(7.0)));
        assert_eq!(percentile(&mut [], 50), Value::Null);
        assert_eq!(percentile(&mut [1_005_000], 50), json(1.01), "1.005 s is 1.01, not a float's 1.0");
    }

    fn json(x: f64) -> Value {
        x.into()
    }

    #[test]
    fn every_measure_rounds_half_away_from_zero_from_exact_integers() {
        // (numerator, denominator, two decimals): what a float computation gets wrong too.
        let table: &[(i128, i128, f64)] = &[
            (4_030_000, 2 * 1_000_000, 2.02), // 2.010000 s and 2.020000 s: 2.015
            (1_005_000, 1_000_000, 1.01),     // (1.005 * 100.0).round() / 100.0 is 1.0
            (201, 200, 1.01),                 // 201 messages over 200 conversations
            (100, 8, 12.5),                   // 1 happy of 8, in percent
            (200, 3, 66.67),
            (100, 3, 33.33),
            (11, 3, 3.67), // ratings 5, 5, 1
            (-4_030_000, 2 * 1_000_000, -2.02),
            (-1, 200, -0.01), // -0.005: away from zero
            (-1, 201, 0.0),
            (0, 7, 0.0),
            (i64::MAX as i128 * 3, 3 * 1_000_000, 9_223_372_036_854.78),
        ];
        for (num, den, expected) in table {
            assert_eq!(round2(*num, *den), *expected, "{num} / {den}");
        }
    }

    /// The mean of `micros`, in seconds, as decimal arithmetic rounds it: long division to the
    /// third decimal digit, which decides (5 or more rounds the magnitude up).
    fn decimal_mean(micros: &[i64]) -> String {
        let sum: i128 = micros.iter().map(|m| *m as i128).sum();
        let den = micros.len() as i128 * 1_000_000;
        let mut rem = sum.abs();
        let mut digits = vec![rem / den];
        for _ in 0..3 {
            rem = rem % den * 10;
            digits.push(rem / den);
        }
        let hundredths = digits[0] * 100 + digits[1] * 10 + digits[2] + (digits[3] >= 5) as i128;
        let sign = if sum < 0 && hundredths > 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", hundredths / 100, hundredths % 100)
    }

    #[test]
    fn averages_of_exact_microseconds_round_as_decimal_arithmetic_would() {
        // A fixed seed: the same cases on every run; many land on a half (x.xx5000).
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for case in 0..20_000 {
            let n = rng.gen_range(1..=6);
            let micros: Vec<i64> = (0..n)
                .map(|_| match rng.gen_range(0..3) {
                    // Whole milliseconds and half hundredths: ties are common.
                    0 => rng.gen_range(0..100_000i64) * 5_000,
                    1 => rng.gen_range(0..10_000_000_000i64),
                    _ => rng.gen_range(-500_000..500_000i64),
                })
                .collect();
            let mut acc = Acc::default();
            for m in &micros {
                acc.add(&Fact { duration: *m, answer: *m, answered: true, visitor_wrote: true, ..blank() }, true);
            }
            let mut out = Map::new();
            acc.measure(&[Measure::DurationAvg, Measure::TimeToAnswerAvg], &mut out);
            let expected: f64 = decimal_mean(&micros).parse().unwrap();
            assert_eq!(out["duration_avg"], json(expected), "case {case}: {micros:?}");
            assert_eq!(out["time_to_answer_avg"], json(expected), "case {case}: {micros:?}");
            if n == 1 {
                assert_eq!(percentile(&mut micros.clone(), 50), json(expected), "{micros:?}");
            }
        }
    }

    fn blank() -> Fact {
        Fact {
            started: 0,
            day: 0,
            month: 0,
            channel: NONE,
            operator: NONE,
            operators: [NONE; 2],
            more_operators: Box::new([]),
            country: NONE,
            hour: 0,
            weekday: 1,
            rating: 0,
            answered: false,
            abandoned: false,
            visitor_wrote: false,
            messages: 0,
            duration: NO_SPAN,
            answer: NO_SPAN,
        }
    }

    #[test]
    fn answers_of_2_01_and_2_02_seconds_average_to_2_02() {
        let mut facts = Facts::default();
        facts.upsert(&row(1, "2026-11-23T09:00:00Z", Some(2_010_000), None));
        facts.upsert(&row(2, "2026-11-23T10:00:00Z", Some(2_020_000), None));
        let r = facts.report(&query("", "time_to_answer_avg,duration_avg,time_to_answer_p90"));
        assert_eq!(r.total["time_to_answer_avg"], json(2.02), "2.015 rounds away from zero");
        assert_eq!(r.total["duration_avg"], json(2.02));
        assert_eq!(r.total["time_to_answer_p90"], json(2.02));
    }

    #[test]
    fn weeks_are_iso_weeks_across_the_new_year_and_an_upsert_replaces_the_row() {
        let mut facts = Facts::default();
        facts.upsert(&row(1, "2026-12-31T23:00:00Z", Some(10 * S), Some(5)));
        facts.upsert(&row(2, "2027-01-03T10:00:00Z", None, None));
        facts.upsert(&row(3, "2027-01-04T10:00:00Z", Some(20 * S), Some(1)));
        let r = facts.report(&query("week", "count,unanswered,satisfaction_percent"));
        let weeks: Vec<(Value, Value)> = r.rows.iter().map(|g| (g["week"].clone(), g["count"].clone())).collect();
        assert_eq!(weeks, [("2026-W53".into(), 2.into()), ("2027-W01".into(), 1.into())]);
        // The same conversation again (it got an answer): one row, new values.
        facts.upsert(&row(2, "2027-01-03T10:00:00Z", Some(30 * S), Some(5)));
        let r = facts.report(&query("month", "count,unanswered,time_to_answer_p50,rating_avg"));
        assert_eq!(facts.len(), 3);
        assert_eq!(r.total["unanswered"], 0);
        assert_eq!(r.total["time_to_answer_p50"], json(20.0));
        assert_eq!(r.rows[0]["month"], "2026-12");
        assert_eq!(r.total["rating_avg"], json(3.67));
    }

    #[test]
    fn without_groupings_both_reports_answer_one_row_the_total() {
        let mut facts = Facts::default();
        let ada = Uuid::from_u128(0xada);
        let bob = Uuid::from_u128(0xb0b);
        // Handled by Ada then Bob; by Ada; by nobody (a chatbot's alone).
        facts.upsert(&ReportRow {
            operators: vec![ada, bob],
            operator_id: Some(bob),
            ..row(1, "2026-11-23T09:00:00Z", Some(S), None)
        });
        facts.upsert(&ReportRow {
            operators: vec![ada],
            operator_id: Some(ada),
            ..row(2, "2026-11-23T09:00:00Z", None, None)
        });
        facts.upsert(&row(3, "2026-11-23T09:00:00Z", None, None));
        for (kind, count) in [(Kind::Conversations, 3), (Kind::Operators, 2)] {
            let mut q = Query::new(kind);
            q.parse_names(None, Some("count,unanswered"), &mut vec![]);
            let r = facts.report(&q);
            assert_eq!(r.group_by, Vec::<String>::new(), "{kind:?}");
            assert_eq!(r.rows, vec![r.total.clone()], "{kind:?}");
            assert_eq!(r.total["count"], count, "{kind:?}: the operators' total leaves out #3");
        }
        // Grouped by operator, a transferred conversation is in both operators' rows.
        let mut q = Query::new(Kind::Operators);
        q.parse_names(Some("operator"), Some("count"), &mut vec![]);
        let counts: Vec<Value> = facts.report(&q).rows.iter().map(|r| r["count"].clone()).collect();
        assert_eq!(counts, [json!(2), json!(1)]);
        // Nothing to report: still the one total row.
        let r = Facts::default().report(&Query::new(Kind::Operators));
        assert_eq!(
            (r.rows.len(), r.total["count"].clone(), r.total["duration_avg"].clone()),
            (1, json!(0), Value::Null)
        );
    }

    #[test]
    fn list_parameters_refuse_empty_lists_and_names_unknown_names_and_repeats() {
        let errors = |group_by: Option<&str>, measures: Option<&str>| {
            let mut q = Query::new(Kind::Conversations);
            let mut errors = vec![];
            q.parse_names(group_by, measures, &mut errors);
            errors.into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>()
        };
        assert_eq!(errors(None, None), Vec::<String>::new());
        assert_eq!(errors(Some(" channel , day "), Some("count, rating_avg")), Vec::<String>::new());
        for (group_by, measures, field) in [
            (None, Some(""), "measures"),
            (None, Some(" "), "measures"),
            (None, Some("count,,rating_avg"), "measures"),
            (None, Some("count,"), "measures"),
            (None, Some(","), "measures"),
            (None, Some("count,count"), "measures"),
            (None, Some("mood"), "measures"),
            (Some(""), None, "group_by"),
            (Some("channel,,day"), None, "group_by"),
            (Some("day,day"), None, "group_by"),
            (Some("planet"), None, "group_by"),
            (Some("day,hour,channel"), None, "group_by"),
        ] {
            let found = errors(group_by, measures);
            assert!(
                !found.is_empty() && found.iter().all(|e| e.starts_with(field)),
                "{group_by:?} {measures:?}: {found:?}"
            );
        }
        assert_eq!(errors(None, Some("")), ["measures: is empty: name one or more of count, messages_avg, duration_avg, time_to_answer_avg, time_to_answer_p50, time_to_answer_p90, unanswered, unanswered_percent, satisfaction_percent, rating_avg, abandoned (or leave it out)"]);
        assert_eq!(errors(None, Some("count,,x")), ["measures: has an empty name (two commas in a row, or one at an end)", "measures: 'x' is not one of count, messages_avg, duration_avg, time_to_answer_avg, time_to_answer_p50, time_to_answer_p90, unanswered, unanswered_percent, satisfaction_percent, rating_avg, abandoned"]);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
