//! The views as they were at a point of the log: a separate store holding the events up to
//! it, with every view rebuilt from them. Shared by `replay` and `serve --as-of`.

use commands::AsOf;
use store::{ExpectedVersion, NewEvent, Position, ReadAll, Store, StoreUrl};

use crate::failure::Failure;
use crate::progress::Bar;

/// Appends consecutive events of one stream, keeping their ids, versions and times.
async fn append_run(target: &Store, run: Vec<store::RecordedEvent>) -> Result<u64, Failure> {
    let Some(first) = run.first() else { return Ok(0) };
    let (stream, version) = (first.stream_id.clone(), first.stream_version);
    let expected = if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version - 1) };
    let n = run.len() as u64;
    let batch = run
        .into_iter()
        .map(|e| NewEvent {
            event_id: e.event_id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            data: e.data,
            metadata: e.metadata,
            recorded_at: Some(e.recorded_at),
        })
        .collect();
    target.events().append(&stream, expected, batch).await?;
    Ok(n)
}

/// A new store at `into` holding the events of `source` up to `until`, with every view
/// rebuilt from them.
pub async fn replayed(source: &Store, until: AsOf, into: &StoreUrl) -> Result<Store, Failure> {
    let target = Store::open(into).await.map_err(|e| Failure::Usage(format!("cannot open {into}: {e}")))?;
    target.migrate().await?;
    if target.events().head().await?.is_some() {
        return Err(Failure::Usage(format!("{into} already holds events; replay into an empty store")));
    }
    let total = source.events().count_after(Position::START, u64::MAX).await?;
    let bar = Bar::new("copy", total);
    let (mut after, mut copied) = (Position::START, 0u64);
    // Consecutive events of one stream go in one append (one commit), as `import` does.
    let mut run: Vec<store::RecordedEvent> = Vec::new();
    'log: loop {
        let page = source.events().read_all(&ReadAll::forward(after, 1000)).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in page {
            // The log is in position order, and (within a stream) in time order.
            if !until.includes(&e) {
                break 'log;
            }
            if run.first().is_some_and(|r| r.stream_id != e.stream_id) || run.len() == 500 {
                copied += append_run(&target, std::mem::take(&mut run)).await?;
                bar.set(copied);
            }
            run.push(e);
        }
    }
    copied += append_run(&target, run).await?;
    bar.finish(copied);
    for p in projections::all() {
        let _ownership = target.views().try_own(p.name()).await?;
        let bar = Bar::new(p.name(), copied);
        let report = projections::rebuild(
            p.as_ref(),
            target.events().as_ref(),
            target.views().as_ref(),
            &Default::default(),
            |pr| bar.set(pr.done),
        )
        .await?;
        bar.finish(report.events);
    }
    Ok(target)
}
