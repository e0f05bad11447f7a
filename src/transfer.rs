//! Reading the log out (`events tail`, `events show`, `export`) and back in (`import`).

use std::collections::HashMap;
use std::io::{BufRead, Write};

use store::{
    Direction, EventFilter, ExpectedVersion, NewEvent, Position, ReadAll, RecordedEvent, StoreUrl, Subscription,
};

use crate::cli::TailArgs;
use crate::failure::Failure;
use crate::progress::Bar;
use crate::store_open::{open, open_migrated};

/// Writes one JSON line, secrets redacted; a closed stdout (as with `| head`) ends the
/// command quietly.
fn emit(out: &mut impl Write, e: &RecordedEvent) -> Result<bool, Failure> {
    let mut shown = e.clone();
    domain::user::redact(&shown.event_type, &mut shown.data);
    write_line(out, &shown)
}

/// Writes one JSON line as stored (exports keep secrets so that a restored store keeps its
/// accounts); a closed stdout ends the command quietly.
fn write_line(out: &mut impl Write, e: &RecordedEvent) -> Result<bool, Failure> {
    let line = serde_json::to_string(e).map_err(|e| Failure::Runtime(e.to_string()))?;
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(err.into()),
    }
}

pub async fn tail(url: &StoreUrl, args: TailArgs) -> Result<(), Failure> {
    let store = open_migrated(url).await?;
    let after = args.from.map_or(Position::START, Position::just_before);
    let filter = EventFilter { category: args.category, ..Default::default() };
    let mut out = std::io::stdout().lock();
    if args.follow {
        let mut sub = Subscription::new(store.events(), after, filter);
        loop {
            let batch = tokio::select! {
                b = sub.next_batch() => b?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            for e in &batch {
                if !emit(&mut out, e)? {
                    return Ok(());
                }
            }
            out.flush()?;
        }
    }
    let events = store.events();
    let mut from = after;
    loop {
        let page = events.read_all(&ReadAll { filter: filter.clone(), ..ReadAll::forward(from, 1000) }).await?;
        let Some(last) = page.last() else { return Ok(()) };
        from = last.position;
        for e in &page {
            if !emit(&mut out, e)? {
                return Ok(());
            }
        }
    }
}

pub async fn show(url: &StoreUrl, stream: &str) -> Result<(), Failure> {
    let store = open_migrated(url).await?;
    let events = store.events();
    let mut out = std::io::stdout().lock();
    let mut version = 0;
    loop {
        let page = events.read_stream(stream, version, Direction::Forward, 1000).await?;
        if page.is_empty() && version == 0 {
            return Err(Failure::Usage(format!("no stream '{stream}' in {url}")));
        }
        let Some(last) = page.last() else { return Ok(()) };
        version = last.stream_version + 1;
        for e in &page {
            if !emit(&mut out, e)? {
                return Ok(());
            }
        }
    }
}

pub async fn export(url: &StoreUrl, until: Option<commands::AsOf>) -> Result<(), Failure> {
    let store = open_migrated(url).await?;
    let events = store.events();
    let total = events.count_after(Position::START, u64::MAX).await?;
    let bar = Bar::new("export", total);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut from = Position::START;
    let mut done = 0;
    loop {
        let page = events.read_all(&ReadAll::forward(from, 2000)).await?;
        let Some(last) = page.last() else { break };
        from = last.position;
        for e in &page {
            if until.is_some_and(|u| !u.includes(e)) {
                out.flush()?;
                bar.finish(done);
                return Ok(());
            }
            if !write_line(&mut out, e)? {
                return Ok(());
            }
            done += 1;
        }
        bar.set(done);
    }
    out.flush()?;
    bar.finish(done);
    Ok(())
}

/// Parses and checks a whole log before writing anything: a bad line means nothing is imported.
fn read_log(input: impl BufRead) -> Result<Vec<RecordedEvent>, Failure> {
    let mut events = Vec::new();
    let mut next_version: HashMap<String, u64> = HashMap::new();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let e: RecordedEvent = serde_json::from_str(&line)
            .map_err(|err| Failure::Usage(format!("line {}: not an exported event: {err}", n + 1)))?;
        let expected = next_version.entry(e.stream_id.clone()).or_insert(0);
        if e.stream_version != *expected {
            return Err(Failure::Usage(format!(
                "line {}: {} has version {} where {} was expected; the log is incomplete or out of order",
                n + 1,
                e.stream_id,
                e.stream_version,
                expected
            )));
        }
        *expected += 1;
        events.push(e);
    }
    Ok(events)
}

/// Imports into an empty store, creating its schema first as `serve` does.
pub async fn import(url: &StoreUrl) -> Result<(), Failure> {
    let store = open(url).await?;
    let _lock = store.lock_exclusive("import")?;
    for m in store.migrate().await? {
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    let events = store.events();
    if events.head().await?.is_some() {
        return Err(Failure::Usage(format!("{url} already holds events; import only into an empty store")));
    }
    let log = read_log(std::io::stdin().lock())?;
    let bar = Bar::new("import", log.len() as u64);
    let mut done = 0u64;
    // Consecutive events of one stream go in one append, keeping their versions.
    for run in log.chunk_by(|a, b| a.stream_id == b.stream_id) {
        for chunk in run.chunks(500) {
            let first = chunk[0].stream_version;
            let expected = if first == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(first - 1) };
            let batch = chunk
                .iter()
                .map(|e| NewEvent {
                    event_id: e.event_id,
                    event_type: e.event_type.clone(),
                    schema_version: e.schema_version,
                    data: e.data.clone(),
                    metadata: e.metadata.clone(),
                    recorded_at: Some(e.recorded_at),
                })
                .collect();
            events.append(&chunk[0].stream_id, expected, batch).await?;
            done += chunk.len() as u64;
            bar.set(done);
        }
    }
    bar.finish(done);
    eprintln!("imported {done} events into {url}");
    Ok(())
}
