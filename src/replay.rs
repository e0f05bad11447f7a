//! `livechat replay` (and `serve --read-only --as-of`): the views as they were at a point of
//! the log, rebuilt from the events up to it into a separate store. The live views are
//! never touched.

use clap::Args;
use commands::AsOf;
use store::{ExpectedVersion, NewEvent, Position, ReadAll, Store, StoreUrl};

use crate::cli::open_migrated;
use crate::progress::Bar;
use crate::Failure;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The point in the log: an RFC 3339 time (`2026-11-01T12:00:00Z`) or a position
    /// (`TX:POS`, as in `events tail`); the events after it are left out.
    #[arg(long, value_parser = parse_as_of)]
    pub until: AsOf,
    /// Print this view's documents as JSON lines (`{view, id, partition, sort_key, body}`);
    /// without it, the number of documents of each view.
    #[arg(long)]
    pub view: Option<String>,
    /// Where to rebuild: `memory:` (gone when the command ends) or a new `sqlite:PATH` to keep.
    #[arg(long, default_value = "memory:")]
    pub into: StoreUrl,
}

pub fn parse_as_of(raw: &str) -> Result<AsOf, String> {
    raw.parse()
}

pub async fn run(url: &StoreUrl, args: ReplayArgs) -> Result<(), Failure> {
    let source = open_migrated(url).await?;
    let target = replayed(&source, args.until, &args.into).await?;
    let views = target.views();
    match args.view {
        Some(name) => {
            if !projections::all().iter().any(|p| p.views().contains(&name.as_str())) {
                return Err(Failure::Usage(format!("no view called '{name}' (see `projections status`)")));
            }
            for d in store::views::list_all(views.as_ref(), &name, None).await? {
                let line = serde_json::json!({
                    "view": name, "id": d.id, "partition": d.partition, "sort_key": d.sort_key, "body": d.body,
                });
                println!("{line}");
            }
        }
        None => {
            for p in projections::all() {
                for view in p.views() {
                    let n = store::views::list_all(views.as_ref(), view, None).await?.len();
                    println!("{view}\t{n}");
                }
            }
        }
    }
    Ok(())
}

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
