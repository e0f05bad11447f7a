//! `livechat-bench`: measures the event store against a raw baseline on the same database,
//! in the same run (these machines are noisy: only ratios within one run mean much).
//!
//! For each backend: single-event appends at 1, 4 and 16 concurrent writers (throughput,
//! p50, p99) beside a plain single-row INSERT of the same payload through the same kind of
//! connection; then catch-up read speed and stream-index rebuild speed over a filled log.

mod baseline;
mod measure;
mod messages;
mod reports;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use store::{EventStore, ExpectedVersion, NewEvent, Position, ReadAll, Store, StoreUrl};

use crate::baseline::{RawInsert, Table};
use crate::measure::{run_writers, Sample};

/// Benchmark the livechat event store against raw INSERTs on the same database.
#[derive(Parser, Debug)]
#[command(name = "livechat-bench")]
struct Args {
    /// Seconds per measured point.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent writers to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    writers: Vec<usize>,
    /// Events in the log for the read and rebuild measurements.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// PostgreSQL server to use (a fresh database is created in it); by default a durable
    /// throw-away cluster is started with the local PostgreSQL binaries.
    #[arg(long, env = "LIVECHAT_BENCH_PG")]
    pg: Option<String>,
    /// Folder for the SQLite files.
    #[arg(long, default_value = "target/bench")]
    dir: PathBuf,
    /// What to measure: `store` (appends, reads, rebuilds), `messages` (HTTP posts) or
    /// `reports` (report latency over --report-rows conversations).
    #[arg(long, value_delimiter = ',', default_value = "store")]
    scenarios: Vec<String>,
    /// Concurrent HTTP clients for the messages scenario.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Open conversations for the messages scenario.
    #[arg(long, default_value_t = 1000)]
    conversations: usize,
    /// Conversations in the reports scenario.
    #[arg(long, default_value_t = 1_000_000)]
    report_rows: u64,
}

/// The 310-byte chat message of the reference measurements.
pub fn payload(seq: u64) -> serde_json::Value {
    serde_json::json!({
        "room_id": "room-42",
        "message_id": format!("m-{seq:012}"),
        "author": { "id": "u-1", "name": "Ada Lovelace" },
        "body": "Hello! I would like to know whether my order #12345 has shipped yet, thanks a lot.",
        "mentions": [],
        "client_ts": "2026-11-25T12:00:00.000Z",
        "seq": seq
    })
}

pub fn metadata() -> serde_json::Value {
    serde_json::json!({ "correlation_id": "c-1", "user": "u-1" })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "# livechat-bench ({} s per point, writers {:?}, {} events for reads)\n",
        args.seconds, args.writers, args.events
    );
    for backend in &args.backends {
        let (url, raw) = match backend.as_str() {
            "sqlite" => {
                std::fs::create_dir_all(&args.dir)?;
                let path = args.dir.join(format!("bench-{}.db", std::process::id()));
                (StoreUrl::Sqlite(path.clone()), RawInsert::sqlite(&path)?)
            }
            "postgres" => {
                let url = match &args.pg {
                    Some(server) => baseline::fresh_pg_database(server).await?,
                    None => baseline::durable_cluster_database().await?,
                };
                (StoreUrl::Postgres(url.clone()), RawInsert::postgres(&url).await?)
            }
            other => bail!("unknown backend '{other}': use sqlite or postgres"),
        };
        let store = Store::open(&url).await.with_context(|| format!("open {url}"))?;
        store.migrate().await?;
        raw.prepare().await?;
        for scenario in &args.scenarios {
            match scenario.as_str() {
                "store" => bench_backend(&args, backend, &store, Arc::new(raw.clone_handle())).await?,
                "messages" => messages::bench(&store, backend, args.seconds, args.clients, args.conversations).await?,
                "reports" => reports::bench(&store, backend, args.report_rows).await?,
                other => bail!("unknown scenario '{other}': use store, messages or reports"),
            }
        }
    }
    Ok(())
}

async fn bench_backend(args: &Args, name: &str, store: &Store, raw: Arc<RawInsert>) -> Result<()> {
    let seconds = Duration::from_secs(args.seconds);
    println!("## {name}\n");
    println!("Raw INSERT into a minimal table (R1), into a copy of `events` (R2), and the store's append.");
    println!("Each cell: events/s, p50 ms, p99 ms.\n");
    println!("| writers | R1 raw, minimal table | R2 raw, same schema | append | append / R1 | append / R2 |");
    println!("|---|---|---|---|---|---|");
    let events = store.events();
    for &writers in &args.writers {
        // Baselines and store back to back, in the same window.
        let run = uuid::Uuid::now_v7().simple().to_string();
        let mut baselines = Vec::new();
        for table in [Table::Minimal, Table::SameSchema] {
            let sample: Sample = run_writers(writers, seconds, {
                let (raw, run) = (raw.clone(), run.clone());
                move |w, n| {
                    let raw = raw.clone();
                    let stream = format!("raw{}-{w}-{}", &run[24..], n % 64);
                    async move { raw.insert(table, &stream, n / 64, payload(n)).await }
                }
            })
            .await?;
            baselines.push(sample);
        }
        let ours: Sample = run_writers(writers, seconds, {
            let events = events.clone();
            move |w, n| {
                let events = events.clone();
                let stream = format!("bench{}-{w}-{}", &run[24..], n % 64);
                let expected = if n < 64 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(n / 64 - 1) };
                async move {
                    let e = NewEvent::new("MessagePosted", payload(n)).with_metadata(metadata());
                    events.append(&stream, expected, vec![e]).await.map(|_| ()).map_err(anyhow::Error::from)
                }
            }
        })
        .await?;
        let cell = |s: &Sample| format!("{:.0} / {:.2} / {:.2}", s.rate(), s.p(0.50), s.p(0.99));
        println!(
            "| {writers} | {} | {} | {} | {:.2} | {:.2} |",
            cell(&baselines[0]),
            cell(&baselines[1]),
            cell(&ours),
            ours.rate() / baselines[0].rate(),
            ours.rate() / baselines[1].rate()
        );
    }

    fill(events.as_ref(), args.events).await?;
    let total = events.count_after(Position::START, u64::MAX).await?;
    let started = Instant::now();
    let mut after = Position::START;
    let mut read = 0u64;
    loop {
        let page = events.read_all(&ReadAll::forward(after, 1000)).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        read += page.len() as u64;
    }
    let read_rate = read as f64 / started.elapsed().as_secs_f64();

    let views = store.views();
    let projector = projections::stream_index::StreamIndex;
    let _own = views.try_own("stream_index").await?.context("stream_index is owned by another process")?;
    let report = projections::rebuild(&projector, events.as_ref(), views.as_ref(), &Default::default(), |_| {}).await?;
    println!();
    println!("| log size | catch-up read (pages of 1000) | stream index rebuild |");
    println!("|---|---|---|");
    println!(
        "| {total} events | {read_rate:.0} events/s | {:.0} events/s ({:.1} s) |\n",
        report.events_per_second, report.seconds
    );
    Ok(())
}

/// Grows the log to `target` events with batched appends over 1000 streams.
async fn fill(events: &dyn EventStore, target: u64) -> Result<()> {
    let mut have = events.count_after(Position::START, u64::MAX).await?;
    let mut n = 0u64;
    while have < target {
        let batch: Vec<_> =
            (0..100).map(|i| NewEvent::new("MessagePosted", payload(n * 100 + i)).with_metadata(metadata())).collect();
        events.append(&format!("room-{}", n % 1000), ExpectedVersion::Any, batch).await?;
        have += 100;
        n += 1;
    }
    Ok(())
}
