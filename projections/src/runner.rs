//! The projector runner: owns a projector across processes, catches up in batches, tails
//! the log, parks events it cannot apply, rebuilds into shadow documents and swaps.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::views::shadow_name;
use store::{
    Commit, DocChange, EventStore, Ownership, ParkedEvent, Position, ReadAll, RecordedEvent, StoreError, ViewStore,
};
use tokio::sync::watch;

use crate::projector::{Docs, Draft, ProjectionError, Projector};

/// Tuning of a runner.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Events per transaction while tailing.
    pub batch_size: usize,
    /// Events per transaction while rebuilding.
    pub rebuild_batch_size: usize,
    /// How often to look for events written by other processes.
    pub poll: Duration,
    /// How often an idle owner records that it is alive.
    pub heartbeat: Duration,
    /// Attempts at applying one event before parking it.
    pub attempts: u32,
    /// How often a standby runner tries to become the owner.
    pub standby_retry: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            batch_size: 500,
            rebuild_batch_size: 5000,
            poll: Duration::from_millis(250),
            heartbeat: Duration::from_secs(5),
            attempts: 3,
            standby_retry: Duration::from_secs(2),
        }
    }
}

/// What a runner is doing.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Role {
    Starting,
    /// This process runs the projector.
    Owner,
    /// Another process runs it; this one waits to take over.
    Standby,
    Rebuilding {
        done: u64,
        total: u64,
    },
    Stopped,
}

/// Live status of one runner in this process.
#[derive(Clone, Debug, Serialize)]
pub struct RunnerStatus {
    pub projector: &'static str,
    pub version: u32,
    #[serde(flatten)]
    pub role: Role,
    pub checkpoint: Option<Position>,
    /// Events applied by this process since it started.
    pub processed: u64,
    /// Events parked by this process since it started.
    pub parked: u64,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Where a run writes: under the projector's own names, or under its shadow names.
struct Target<'a> {
    projector: &'a dyn Projector,
    shadow: bool,
}

impl Target<'_> {
    fn name(&self) -> String {
        if self.shadow {
            shadow_name(self.projector.name())
        } else {
            self.projector.name().to_string()
        }
    }

    fn view(&self, view: &str) -> String {
        if self.shadow {
            shadow_name(view)
        } else {
            view.to_string()
        }
    }
}

/// Outcome of one batch.
struct Step {
    applied: u64,
    parked: u64,
}

/// How far a run has read, and how far the store knows it has.
///
/// A batch that changes no document (events this projector ignores) need not be committed at
/// once: the checkpoint only moves in memory, and is written with the next batch that does
/// change something, when the run catches up, every half second under load, or at shutdown.
/// That keeps projectors that ignore most events from adding a write per batch.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    /// The checkpoint as stored (what the next commit expects).
    committed: Option<Position>,
    /// The last event applied.
    read_to: Option<Position>,
    last_event_at: Option<DateTime<Utc>>,
    pending_since: Option<Instant>,
}

impl Cursor {
    fn at(committed: Option<Position>) -> Self {
        Cursor { committed, read_to: committed, ..Default::default() }
    }

    fn pending(&self) -> bool {
        self.read_to != self.committed
    }
}

/// Writes a checkpoint that only moved in memory.
async fn flush(target: &Target<'_>, views: &dyn ViewStore, cursor: &mut Cursor) -> Result<(), StoreError> {
    let Some(to) = cursor.read_to.filter(|_| cursor.pending()) else { return Ok(()) };
    views
        .commit(Commit {
            projector: target.name(),
            projector_version: target.projector.version(),
            expected: cursor.committed,
            checkpoint: to,
            last_event_at: cursor.last_event_at,
            changes: vec![],
            parked: vec![],
            now: Utc::now(),
        })
        .await?;
    cursor.committed = Some(to);
    cursor.pending_since = None;
    Ok(())
}

/// Reads one batch after the cursor, applies it and commits documents, parked events and the
/// new checkpoint together (or, with `defer` and nothing to write, only moves the cursor).
/// Returns `None` when there was nothing to read.
///
/// A commit the store refuses because of the data ([`StoreError::is_about_data`]) is retried
/// event by event, and the events whose own commit is refused are parked without their
/// documents, so that one unstorable document does not stop the projector. Any other failure
/// (the database unreachable...) is returned with nothing parked: the caller retries.
async fn step(
    target: &Target<'_>,
    events: &dyn EventStore,
    views: &dyn ViewStore,
    cursor: &mut Cursor,
    batch: usize,
    attempts: u32,
    defer: bool,
) -> Result<Option<Step>, StoreError> {
    let page = events.read_all(&ReadAll::forward(cursor.read_to.unwrap_or(Position::START), batch)).await?;
    let Some(last) = page.last() else { return Ok(None) };
    let (changes, parked) = apply(target, views, &page, attempts).await?;
    let step = Step { applied: (page.len() - parked.len()) as u64, parked: parked.len() as u64 };
    if defer && changes.is_empty() && parked.is_empty() {
        cursor.read_to = Some(last.position);
        cursor.last_event_at = Some(last.recorded_at);
        cursor.pending_since.get_or_insert_with(Instant::now);
        return Ok(Some(step));
    }
    match commit(target, views, cursor, last, changes, parked).await {
        Ok(()) => Ok(Some(step)),
        Err(e) if e.is_about_data() => {
            tracing::warn!(
                projector = target.projector.name(),
                events = page.len(),
                error = %e,
                "the store refused a batch; committing its events one by one"
            );
            one_by_one(target, views, cursor, &page, attempts).await.map(Some)
        }
        Err(e) => Err(e),
    }
}

/// Loads the documents `page` touches and applies its events in order. An event that fails
/// `attempts` times, or makes a document no store can hold, leaves no change and is returned
/// to be parked.
async fn apply(
    target: &Target<'_>,
    views: &dyn ViewStore,
    page: &[RecordedEvent],
    attempts: u32,
) -> Result<(Vec<DocChange>, Vec<ParkedEvent>), StoreError> {
    let projector = target.projector;
    let mut docs = Docs::default();
    let mut wanted: HashMap<&'static str, Vec<String>> = HashMap::new();
    for e in page {
        for (view, id) in projector.keys(e) {
            let ids = wanted.entry(view).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    for (view, ids) in wanted {
        let found = views.get_many(&target.view(view), &ids).await?;
        let mut by_id: HashMap<String, Draft> = found.into_iter().map(|d| (d.id.clone(), Draft::from(d))).collect();
        for id in ids {
            let doc = by_id.remove(&id);
            docs.load(view, id, doc);
        }
    }

    let now = Utc::now();
    let mut parked = Vec::new();
    for e in page {
        let mut failure = None;
        for _ in 0..attempts.max(1) {
            docs.begin();
            match projector.apply(e, &mut docs).and_then(|()| docs.take_refusal().map_or(Ok(()), Err)) {
                Ok(()) => {
                    failure = None;
                    break;
                }
                Err(err) => {
                    docs.rollback();
                    failure = Some(err);
                }
            }
        }
        if let Some(err) = failure {
            tracing::error!(
                projector = projector.name(),
                stream = %e.stream_id,
                version = e.stream_version,
                position = %e.position,
                event_type = %e.event_type,
                error = %err,
                "parked an event the projector cannot apply"
            );
            parked.push(ParkedEvent::new(&target.name(), e, err.to_string(), attempts.max(1), now));
        }
    }
    Ok((docs.changes(|v| target.view(v)), parked))
}

/// Commits changes and parked events with the checkpoint moved to `last`, from the cursor's.
async fn commit(
    target: &Target<'_>,
    views: &dyn ViewStore,
    cursor: &mut Cursor,
    last: &RecordedEvent,
    changes: Vec<DocChange>,
    parked: Vec<ParkedEvent>,
) -> Result<(), StoreError> {
    views
        .commit(Commit {
            projector: target.name(),
            projector_version: target.projector.version(),
            expected: cursor.committed,
            checkpoint: last.position,
            last_event_at: Some(last.recorded_at),
            changes,
            parked,
            now: Utc::now(),
        })
        .await?;
    *cursor = Cursor::at(Some(last.position));
    Ok(())
}

/// A refused batch again, one event per commit: an event whose own commit is refused is
/// parked with the store's error, and the checkpoint moves past it without its documents.
async fn one_by_one(
    target: &Target<'_>,
    views: &dyn ViewStore,
    cursor: &mut Cursor,
    page: &[RecordedEvent],
    attempts: u32,
) -> Result<Step, StoreError> {
    let mut step = Step { applied: 0, parked: 0 };
    for e in page {
        let (changes, mut parked) = apply(target, views, std::slice::from_ref(e), attempts).await?;
        match commit(target, views, cursor, e, changes, parked.clone()).await {
            Ok(()) => {}
            Err(refused) if refused.is_about_data() => {
                tracing::error!(
                    projector = target.projector.name(),
                    stream = %e.stream_id,
                    version = e.stream_version,
                    position = %e.position,
                    event_type = %e.event_type,
                    error = %refused,
                    "parked an event whose documents the store refuses"
                );
                let error = ProjectionError::Unstorable(format!("the store refused the event's documents: {refused}"));
                parked = vec![ParkedEvent::new(&target.name(), e, error.to_string(), 1, Utc::now())];
                commit(target, views, cursor, e, vec![], parked.clone()).await?;
            }
            Err(other) => return Err(other),
        }
        step.applied += 1 - parked.len() as u64;
        step.parked += parked.len() as u64;
    }
    Ok(step)
}

/// Progress of a rebuild, reported after every batch.
#[derive(Clone, Copy, Debug)]
pub struct RebuildProgress {
    pub done: u64,
    /// Events in the log when the rebuild started (it also applies those appended meanwhile).
    pub total: u64,
    pub elapsed: Duration,
}

/// What a rebuild did.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RebuildReport {
    pub events: u64,
    pub parked: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Rebuilds `projector` from the start of the log into shadow documents, then swaps them in.
/// The caller must own the projector (see [`ViewStore::try_own`]); the live documents keep
/// being served, unchanged, until the swap.
pub async fn rebuild(
    projector: &dyn Projector,
    events: &dyn EventStore,
    views: &dyn ViewStore,
    config: &RunnerConfig,
    mut progress: impl FnMut(RebuildProgress),
) -> Result<RebuildReport, StoreError> {
    let target = Target { projector, shadow: true };
    let shadow_views: Vec<String> = projector.views().iter().map(|v| target.view(v)).collect();
    let shadow_refs: Vec<&str> = shadow_views.iter().map(String::as_str).collect();
    views.reset(&target.name(), &shadow_refs).await?;
    let total = events.count_after(Position::START, u64::MAX).await?;
    let started = Instant::now();
    let (mut cursor, mut done, mut parked) = (Cursor::default(), 0, 0);
    progress(RebuildProgress { done, total, elapsed: started.elapsed() });
    while let Some(s) =
        step(&target, events, views, &mut cursor, config.rebuild_batch_size, config.attempts, false).await?
    {
        done += s.applied + s.parked;
        parked += s.parked;
        progress(RebuildProgress { done, total, elapsed: started.elapsed() });
    }
    if cursor.committed.is_none() {
        // An empty log still gets a checkpoint, so the new version is recorded.
        views
            .commit(Commit {
                projector: target.name(),
                projector_version: projector.version(),
                expected: None,
                checkpoint: Position::START,
                last_event_at: None,
                changes: vec![],
                parked: vec![],
                now: Utc::now(),
            })
            .await?;
    }
    views.swap_shadow(projector.name(), projector.views()).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RebuildReport { events: done, parked, seconds, events_per_second: done as f64 / seconds.max(1e-9) })
}

/// Runs one projector for the life of the process.
pub struct Runner {
    projector: Arc<dyn Projector>,
    events: Arc<dyn EventStore>,
    views: Arc<dyn ViewStore>,
    config: RunnerConfig,
    status: watch::Sender<RunnerStatus>,
}

impl Runner {
    pub fn new(
        projector: Arc<dyn Projector>,
        events: Arc<dyn EventStore>,
        views: Arc<dyn ViewStore>,
        config: RunnerConfig,
    ) -> Self {
        let status = RunnerStatus {
            projector: projector.name(),
            version: projector.version(),
            role: Role::Starting,
            checkpoint: None,
            processed: 0,
            parked: 0,
            last_error: None,
            updated_at: Utc::now(),
        };
        Runner { projector, events, views, config, status: watch::channel(status).0 }
    }

    /// Follows this runner's status.
    pub fn status(&self) -> watch::Receiver<RunnerStatus> {
        self.status.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut RunnerStatus)) {
        self.status.send_modify(|s| {
            f(s);
            s.updated_at = Utc::now();
        });
    }

    /// Runs until `shutdown` turns true; the batch in flight is committed before it returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let name = self.projector.name();
        const FIRST_BACKOFF: Duration = Duration::from_millis(100);
        let mut backoff = FIRST_BACKOFF;
        while !*shutdown.borrow() {
            let wait = match self.views.try_own(name).await {
                Ok(Some(ownership)) => {
                    self.update(|s| s.role = Role::Owner);
                    tracing::info!(projector = name, "running projector");
                    let started = Instant::now();
                    match self.own(&ownership, &mut shutdown).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(projector = name, error = %e, "projector stopped; retrying");
                            self.report(&e).await;
                            // A failure after a long healthy run starts the backoff afresh.
                            let next =
                                if started.elapsed() > Duration::from_secs(60) { FIRST_BACKOFF } else { backoff * 2 };
                            backoff = next.min(Duration::from_secs(10));
                            backoff
                        }
                    }
                }
                Ok(None) => {
                    self.update(|s| s.role = Role::Standby);
                    self.config.standby_retry
                }
                Err(e) => {
                    tracing::warn!(projector = name, error = %e, "cannot take ownership of projector");
                    self.update(|s| s.last_error = Some(e.to_string()));
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    backoff
                }
            };
            let _ = tokio::time::timeout(wait, shutdown.changed()).await;
        }
        self.update(|s| s.role = Role::Stopped);
    }

    /// Makes a failure of the owner visible: in this process's status, and with the stored
    /// checkpoint for every node and the CLI (best effort: the store may be what failed). A
    /// lost ownership is not written: another runner owns the checkpoint now.
    async fn report(&self, e: &StoreError) {
        let text = e.to_string();
        self.update(|s| s.last_error = Some(text.clone()));
        if matches!(e, StoreError::Busy(_)) {
            return;
        }
        if let Err(again) = self.views.record_error(self.projector.name(), &text, Utc::now()).await {
            tracing::debug!(projector = self.projector.name(), error = %again, "cannot record the projector's error");
        }
    }

    /// The owner's loop: rebuild if the stored version differs, then catch up and tail.
    async fn own(&self, ownership: &Ownership, shutdown: &mut watch::Receiver<bool>) -> Result<(), StoreError> {
        let p = self.projector.as_ref();
        let state = self.views.projector_state(p.name()).await?;
        if let Some(state) = state.filter(|s| s.projector_version != p.version()) {
            tracing::info!(
                projector = p.name(),
                from = state.projector_version,
                to = p.version(),
                "projector version changed; rebuilding"
            );
            self.update(|s| s.role = Role::Rebuilding { done: 0, total: 0 });
            let report = rebuild(p, self.events.as_ref(), self.views.as_ref(), &self.config, |pr| {
                self.update(|s| s.role = Role::Rebuilding { done: pr.done, total: pr.total })
            })
            .await?;
            tracing::info!(projector = p.name(), events = report.events, seconds = report.seconds, "rebuilt");
            self.update(|s| s.role = Role::Owner);
        }
        let mut cursor = Cursor::at(self.views.projector_state(p.name()).await?.map(|s| s.position));
        self.update(|s| s.checkpoint = cursor.committed);
        let target = Target { projector: p, shadow: false };
        let mut commits = self.events.commits();
        let mut last_beat = Instant::now();
        loop {
            if *shutdown.borrow() {
                // What was applied is recorded before stopping.
                return flush(&target, self.views.as_ref(), &mut cursor).await;
            }
            if !ownership.is_alive() {
                return Err(StoreError::Busy(format!("lost ownership of projector '{}'", p.name())));
            }
            commits.borrow_and_update();
            let step = step(
                &target,
                self.events.as_ref(),
                self.views.as_ref(),
                &mut cursor,
                self.config.batch_size,
                self.config.attempts,
                true,
            )
            .await?;
            match step {
                Some(s) => {
                    last_beat = Instant::now();
                    if cursor.pending_since.is_some_and(|t| t.elapsed() >= Duration::from_millis(500)) {
                        flush(&target, self.views.as_ref(), &mut cursor).await?;
                    }
                    self.update(|st| {
                        st.checkpoint = cursor.committed;
                        st.processed += s.applied;
                        st.parked += s.parked;
                        st.last_error = None;
                    });
                }
                None => {
                    // Caught up: nothing is left only in memory while idle.
                    if cursor.pending() {
                        flush(&target, self.views.as_ref(), &mut cursor).await?;
                        self.update(|st| st.checkpoint = cursor.committed);
                        last_beat = Instant::now();
                    }
                    if last_beat.elapsed() >= self.config.heartbeat {
                        self.views.heartbeat(p.name(), Utc::now()).await?;
                        last_beat = Instant::now();
                    }
                    tokio::select! {
                        _ = tokio::time::timeout(self.config.poll, commits.changed()) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
    }
}
