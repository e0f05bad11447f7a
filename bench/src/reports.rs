//! The `reports` scenario: fills the `report_conversations` view with N conversations' rows
//! directly through the view store (as the projector would have written them), then times
//! the first read of every row into the in-memory index, each single grouping, a few pairs,
//! and a report after 1,000 rows changed (the incremental path every request takes).

use std::time::Instant;

use anyhow::{ensure, Result};
use api::reports::{Index, Kind, Query, DIMENSIONS};
use projections::reports::{change_key, ReportRow, Reports, VIEW};
use projections::Projector;
use serde_json::{json, Value};
use store::{Commit, DocChange, Position, Store};
use uuid::Uuid;

const BATCH: u64 = 5_000;

/// A small deterministic generator (SplitMix64): the same rows on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn time(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// One conversation over a year (2025), 8 channels, 200 operators, 40 countries.
fn row(rng: &mut Rng, n: u64) -> Value {
    let start = 1_735_689_600 + rng.below(365 * 86_400) as i64; // 2025-01-01 + up to a year
    let days = start.div_euclid(86_400);
    let channel = Uuid::from_u128(0xc0 + rng.below(8) as u128);
    let operators: Vec<Uuid> =
        (0..1 + (rng.below(10) == 0) as u64).map(|_| Uuid::from_u128(0x0b + rng.below(200) as u128)).collect();
    let wrote = rng.below(10) != 0;
    let abandoned = !wrote && rng.below(2) == 0;
    let answered = wrote && rng.below(8) != 0;
    let answer = rng.below(600) as i64 + 1;
    let duration = rng.below(1800) as i64 + answer;
    let messages = if wrote { 2 + rng.below(20) } else { 1 };
    let rating = [None, None, None, Some(5u8), Some(5), Some(3), Some(1)][rng.below(7) as usize];
    let countries = ["BE", "FR", "DE", "US", "GB", "NL", "ES", "IT", "IN", "BR"];
    let country = if rng.below(40) < 10 { Some(countries[rng.below(10) as usize]) } else { None };
    json!({
        "session_id": Uuid::from_u128(0x5e55_0000_0000 + n as u128),
        "channel_id": channel,
        "channels": [channel],
        "operator_id": operators.last(),
        "operators": operators,
        "started_at": time(start),
        "start_hour": (start.rem_euclid(86_400) / 3600) as u8,
        "start_weekday": ((days + 3).rem_euclid(7) + 1) as u8,
        "country": country,
        "anonymous": rng.below(2) == 0,
        "queued": rng.below(5) == 0,
        "messages": messages,
        "visitor_messages": if wrote { 1 + messages / 2 } else { 0 },
        "speakers": if wrote { 2 } else { 1 },
        "first_message_at": time(start),
        "last_message_at": time(start + duration),
        "first_visitor_message_at": if wrote { Some(time(start)) } else { None },
        "first_answer_at": if answered { Some(time(start + answer)) } else { None },
        "duration_seconds": duration as f64,
        "time_to_answer_seconds": if answered { Some(answer as f64) } else { None },
        "answered": answered,
        "rating": rating,
        "rating_text": rating.map(domain_label),
        "closed": true,
        "abandoned": abandoned,
        "speaker_list": [],
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn domain_label(v: u8) -> &'static str {
    match v {
        5 => "Happy",
        3 => "Neutral",
        _ => "Unhappy",
    }
}

/// Writes rows in commits of `BATCH`, continuing the `reports` checkpoint.
async fn write(
    store: &Store,
    rows: impl Iterator<Item = (u64, Value)>,
    checkpoint: &mut Option<Position>,
) -> Result<()> {
    let views = store.views();
    let mut changes = Vec::new();
    let mut pos = checkpoint.map_or(0, |p| p.pos);
    for (n, body) in rows {
        pos += 1;
        changes.push(DocChange::Put {
            view: VIEW.into(),
            id: Uuid::from_u128(0x5e55_0000_0000 + n as u128).to_string(),
            partition: String::new(),
            sort_key: change_key(Position::new(0, pos)),
            body,
        });
        if changes.len() as u64 == BATCH {
            commit(&*views, std::mem::take(&mut changes), checkpoint, pos).await?;
        }
    }
    if !changes.is_empty() {
        commit(&*views, std::mem::take(&mut changes), checkpoint, pos).await?;
    }
    Ok(())
}

async fn commit(
    views: &dyn store::ViewStore,
    changes: Vec<DocChange>,
    checkpoint: &mut Option<Position>,
    pos: u64,
) -> Result<()> {
    let next = Position::new(0, pos);
    views
        .commit(Commit {
            projector: "reports".into(),
            projector_version: Reports.version(),
            expected: *checkpoint,
            checkpoint: next,
            last_event_at: None,
            changes,
            parked: vec![],
            // Typed by the field: the bench does not depend on chrono itself.
            now: serde_json::from_value(json!(time(unix_now())))?,
        })
        .await?;
    *checkpoint = Some(next);
    Ok(())
}

pub async fn bench(store: &Store, backend: &str, conversations: u64) -> Result<()> {
    println!("## reports ({backend}, {conversations} conversations)\n");
    let mut rng = Rng(42);
    ensure!(serde_json::from_value::<ReportRow>(row(&mut Rng(1), 0)).is_ok(), "generated rows must be report rows");
    let views = store.views();
    let mut checkpoint = views.projector_state("reports").await?.map(|s| s.position);
    let t = Instant::now();
    write(store, (0..conversations).map(|n| (n, row(&mut rng, n))), &mut checkpoint).await?;
    println!("Filled the view through the view store in {:.1} s.\n", t.elapsed().as_secs_f64());

    let index = Index::default();
    let all = Query::new(Kind::Conversations);
    let t = Instant::now();
    index.report(&*views, &all).await?;
    println!("First report (reads every row into the node's index): {:.1} s.\n", t.elapsed().as_secs_f64());

    println!("| report | group by | groups | best ms | median ms | worst ms |");
    println!("|---|---|---|---|---|---|");
    let mut cases: Vec<(Kind, Vec<&str>)> = vec![(Kind::Conversations, vec![])];
    cases.extend(DIMENSIONS.iter().map(|(d, _)| (Kind::Conversations, vec![*d])));
    cases.push((Kind::Operators, vec!["operator"]));
    cases.push((Kind::Conversations, vec!["channel", "week"]));
    cases.push((Kind::Operators, vec!["operator", "month"]));
    cases.push((Kind::Conversations, vec!["day", "hour"]));
    for (kind, dims) in cases {
        let mut q = Query::new(kind);
        let mut errors = vec![];
        // No groupings is no `group_by` at all (an empty one is refused).
        let group_by = dims.join(",");
        q.parse_names((!dims.is_empty()).then_some(group_by.as_str()), None, &mut errors);
        ensure!(errors.is_empty(), "{errors:?}");
        let mut ms = Vec::new();
        let mut groups = 0;
        for _ in 0..7 {
            let t = Instant::now();
            let r = index.report(&*views, &q).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            groups = r.rows.len();
        }
        ms.sort_by(f64::total_cmp);
        let name = if dims.is_empty() { "(total)".to_string() } else { dims.join(", ") };
        println!("| {} | {name} | {groups} | {:.1} | {:.1} | {:.1} |", kind.name(), ms[0], ms[3], ms[6]);
    }

    // 1,000 conversations change (as a busy minute would): the next report reads only those.
    let t0 = Instant::now();
    write(store, (0..1000).map(|n| n * 997 % conversations).map(|n| (n, row(&mut rng, n))), &mut checkpoint).await?;
    let written = t0.elapsed();
    let mut by_operator = Query::new(Kind::Operators);
    by_operator.parse_names(Some("operator"), None, &mut vec![]);
    let t = Instant::now();
    index.report(&*views, &by_operator).await?;
    println!(
        "\nAfter 1,000 rows changed ({:.0} ms to write them): the next operators report took {:.1} ms.\n",
        written.as_secs_f64() * 1000.0,
        t.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
