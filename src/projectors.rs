//! `projections status`, `projections rebuild` and `projections parked`.

use chrono::Utc;
use projections::{Projector, RunnerConfig};
use store::StoreUrl;

use crate::cli::RebuildArgs;
use crate::failure::Failure;
use crate::progress::Bar;
use crate::store_open::open_migrated;

pub async fn status(url: &StoreUrl, json: bool) -> Result<(), Failure> {
    let store = open_migrated(url).await?;
    let mut rows = Vec::new();
    for p in projections::all() {
        rows.push(projections::health(p.as_ref(), store.events().as_ref(), store.views().as_ref()).await?);
    }
    let horizon = store.events().horizon_age().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| Failure::Runtime(e.to_string()))?);
        return Ok(());
    }
    println!(
        "{:<16} {:>8} {:>14} {:>10} {:>9} {:>7} {:>11}",
        "PROJECTOR", "VERSION", "CHECKPOINT", "LAG", "LAG (s)", "PARKED", "HEARTBEAT"
    );
    for h in &rows {
        let version = match h.stored_version {
            Some(v) if v == h.version => v.to_string(),
            Some(v) => format!("{v}->{}", h.version),
            None => format!("-/{}", h.version),
        };
        let checkpoint = h.checkpoint.map_or("-".to_string(), |c| c.to_string());
        let heartbeat =
            h.heartbeat_at.map_or("never".to_string(), |t| format!("{}s ago", (Utc::now() - t).num_seconds()));
        println!(
            "{:<16} {:>8} {:>14} {:>10} {:>9.1} {:>7} {:>11}",
            h.projector, version, checkpoint, h.lag_events, h.lag_seconds, h.parked, heartbeat
        );
    }
    for h in rows.iter().filter(|h| h.last_error.is_some()) {
        let ago = h.last_error_at.map_or(String::new(), |t| format!(" {}s ago", (Utc::now() - t).num_seconds()));
        println!("\n{}: last attempt failed{ago}: {}", h.projector, h.last_error.as_deref().unwrap_or_default());
    }
    if let Some(age) = horizon.filter(|a| *a >= 1.0) {
        println!("\nAn append has been in flight for {age:.0} s: events committed since stay invisible to projectors until it ends.");
    }
    Ok(())
}

/// The projector called `name`, or a usage error listing the known ones.
fn projector(name: &str) -> Result<std::sync::Arc<dyn Projector>, Failure> {
    projections::by_name(name).ok_or_else(|| {
        let names: Vec<_> = projections::all().iter().map(|p| p.name()).collect();
        Failure::Usage(format!("no projector '{name}'; known: {}", names.join(", ")))
    })
}

pub async fn parked(url: &StoreUrl, name: &str, limit: usize) -> Result<(), Failure> {
    let p = projector(name)?;
    let store = open_migrated(url).await?;
    for event in store.views().parked(p.name(), limit).await? {
        println!("{}", serde_json::to_string(&event).map_err(|e| Failure::Runtime(e.to_string()))?);
    }
    Ok(())
}

pub async fn rebuild(url: &StoreUrl, args: RebuildArgs) -> Result<(), Failure> {
    let store = open_migrated(url).await?;
    let chosen: Vec<_> = match (&args.name, args.all) {
        (_, true) => projections::all(),
        (Some(name), false) => vec![projector(name)?],
        (None, false) => return Err(Failure::Usage("name a projector or pass --all".into())),
    };
    for p in chosen {
        rebuild_one(&store, p.as_ref()).await?;
    }
    Ok(())
}

async fn rebuild_one(store: &store::Store, p: &dyn Projector) -> Result<(), Failure> {
    let views = store.views();
    let Some(_ownership) = views.try_own(p.name()).await? else {
        return Err(Failure::Usage(format!(
            "projector '{}' is being run by a live server; stop it first (a server rebuilds by itself when the projector version changes)",
            p.name()
        )));
    };
    let bar = Bar::new(p.name(), 0);
    let report = projections::rebuild(p, store.events().as_ref(), views.as_ref(), &RunnerConfig::default(), |pr| {
        bar.set_length(pr.total.max(pr.done));
        bar.set(pr.done);
    })
    .await?;
    bar.finish(report.events);
    if report.parked > 0 {
        eprintln!(
            "{}: {} events could not be applied and were parked (see projections status)",
            p.name(),
            report.parked
        );
    }
    Ok(())
}
