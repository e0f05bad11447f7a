//! The generic core: load a stream, fold it, decide (pure, in `domain`), append with the
//! expected version, and retry when someone else wrote in between. The use cases are a layer
//! on top of it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::aggregate::{decode_versioned, encode, Aggregate, DecodeError};
use domain::metadata::{Actor, Metadata};
use store::{Direction, EventStore, ExpectedVersion, NewEvent, Position, StoreError};
use uuid::Uuid;

use crate::serial;

/// Who asks, when, and how to recognise a retried request.
#[derive(Clone, Debug)]
pub struct Context {
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub request_id: Option<String>,
    /// From the `Idempotency-Key` header: makes event ids deterministic, so a retried request
    /// returns the first result instead of writing twice.
    pub idempotency_key: Option<String>,
    /// The client's address as recorded in metadata (see `Metadata::client`).
    pub client: Option<String>,
    pub now: DateTime<Utc>,
}

impl Context {
    pub fn new(actor: Actor, now: DateTime<Utc>) -> Self {
        Context { actor, correlation_id: Uuid::now_v7(), request_id: None, idempotency_key: None, client: None, now }
    }

    fn metadata(&self) -> serde_json::Value {
        let m = Metadata {
            actor: self.actor.clone(),
            correlation_id: self.correlation_id,
            causation_id: None,
            request_id: self.request_id.clone(),
            client: self.client.clone(),
        };
        serde_json::to_value(m).expect("metadata serializes")
    }

    /// The id of a resource this request creates: with an `Idempotency-Key`, derived from the
    /// actor, the key and `scope`, so that a retry lands on the same resource; else fresh.
    pub fn new_id(&self, scope: &str) -> Uuid {
        match &self.idempotency_key {
            Some(key) => {
                let actor = self.actor.id.map(|a| a.to_string()).unwrap_or_default();
                Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("livechat/{scope}/{actor}/{key}").as_bytes())
            }
            None => Uuid::now_v7(),
        }
    }

    /// The events of a decision, as this request appends them to `stream`.
    fn new_events<A: Aggregate>(&self, stream: &str, decided: &[A::Event]) -> Vec<NewEvent> {
        let metadata = self.metadata();
        decided
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let (event_type, data) = encode(e);
                NewEvent {
                    event_id: self.event_id(stream, i),
                    schema_version: domain::upcast::current_version(&event_type),
                    event_type,
                    data,
                    metadata: metadata.clone(),
                    recorded_at: None,
                }
            })
            .collect()
    }

    /// The id of the `index`-th event this request appends to `stream`.
    fn event_id(&self, stream: &str, index: usize) -> Uuid {
        match &self.idempotency_key {
            Some(key) => {
                let actor = self.actor.id.map(|a| a.to_string()).unwrap_or_default();
                Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("livechat/{actor}/{key}/{stream}/{index}").as_bytes())
            }
            None => Uuid::now_v7(),
        }
    }
}

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The decision refused it (the domain error says why).
    #[error("{0}")]
    Domain(E),
    /// The caller edited an older version (`If-Match`): only a conditional write gets this.
    #[error("the resource changed: it is now at version {current:?}")]
    Conflict { current: Option<u64> },
    /// Other nodes kept winning the race for the stream for [`RETRY_FOR`]: nothing was
    /// written, and trying again later is safe.
    #[error("the resource is busy: other writers kept winning for {RETRY_FOR:?}")]
    Busy,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An aggregate with the version of its stream.
#[derive(Clone, Debug)]
pub struct Loaded<A> {
    pub state: A,
    /// Version of the last event, `None` for a stream without events.
    pub version: Option<u64>,
    pub(crate) ids: Vec<Uuid>,
    pub(crate) last_position: Option<Position>,
    pub(crate) last_recorded_at: Option<DateTime<Utc>>,
}

/// What a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Stream version after the command (the resource's ETag).
    pub version: Option<u64>,
    /// Position of the last event written (for `min_position` reads); `None` if nothing was.
    pub position: Option<Position>,
    /// Events written.
    pub written: usize,
    /// When the last event written was recorded; `None` if nothing was.
    pub recorded_at: Option<DateTime<Utc>>,
}

/// The stream of aggregate `A` with this id (one rule, in `domain`, shared with the views).
pub use domain::event::stream_id;

/// Events per read when loading a stream.
const PAGE: usize = 1000;

/// Reads and folds a stream.
pub async fn load<A: Aggregate>(events: &dyn EventStore, stream: &str) -> Result<Loaded<A>, StoreOrDecode> {
    let mut loaded =
        Loaded { state: A::default(), version: None, ids: Vec::new(), last_position: None, last_recorded_at: None };
    catch_up(events, stream, &mut loaded).await?;
    Ok(loaded)
}

/// Folds the events written after `loaded.version` into it; returns how many there were.
async fn catch_up<A: Aggregate>(
    events: &dyn EventStore,
    stream: &str,
    loaded: &mut Loaded<A>,
) -> Result<usize, StoreOrDecode> {
    let mut from = loaded.version.map_or(0, |v| v + 1);
    let mut read = 0;
    loop {
        let page = events.read_stream(stream, from, Direction::Forward, PAGE).await?;
        let Some(last) = page.last() else { break };
        from = last.stream_version + 1;
        for e in &page {
            loaded.state.apply(&decode_versioned::<A::Event>(&e.event_type, e.schema_version, &e.data)?);
            loaded.ids.push(e.event_id);
        }
        read += page.len();
        loaded.version = Some(last.stream_version);
        loaded.last_position = Some(last.position);
        loaded.last_recorded_at = Some(last.recorded_at);
        // A short page is the end of the stream: no need for one more (empty) read.
        if page.len() < PAGE {
            break;
        }
    }
    Ok(read)
}

/// A point in the log's history: a time, or a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    Time(DateTime<Utc>),
    Position(Position),
}

impl std::str::FromStr for AsOf {
    type Err = String;

    /// An RFC 3339 time, or a position `TX:POS` (a bare number on embedded stores).
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(AsOf::Time(t.with_timezone(&Utc)));
        }
        s.parse::<Position>()
            .map(AsOf::Position)
            .map_err(|_| format!("'{s}' is neither an RFC 3339 time nor a position"))
    }
}

impl AsOf {
    /// Whether the event had happened at this point.
    pub fn includes(&self, e: &store::RecordedEvent) -> bool {
        match self {
            AsOf::Time(t) => e.recorded_at <= *t,
            AsOf::Position(p) => e.position <= *p,
        }
    }
}

/// Reads and folds a stream as it was at `as_of` (its events up to the first one after it).
pub async fn load_as_of<A: Aggregate>(
    events: &dyn EventStore,
    stream: &str,
    as_of: AsOf,
) -> Result<Loaded<A>, StoreOrDecode> {
    let mut loaded =
        Loaded { state: A::default(), version: None, ids: Vec::new(), last_position: None, last_recorded_at: None };
    let mut from = 0;
    loop {
        let page = events.read_stream(stream, from, Direction::Forward, PAGE).await?;
        let Some(last) = page.last() else { break };
        from = last.stream_version + 1;
        let full = page.len() == PAGE;
        for e in page.iter() {
            if !as_of.includes(e) {
                return Ok(loaded);
            }
            loaded.state.apply(&decode_versioned::<A::Event>(&e.event_type, e.schema_version, &e.data)?);
            loaded.version = Some(e.stream_version);
            loaded.last_position = Some(e.position);
            loaded.last_recorded_at = Some(e.recorded_at);
        }
        if !full {
            break;
        }
    }
    Ok(loaded)
}

/// A read failure: the store, or an event this code cannot read.
#[derive(Debug, thiserror::Error)]
pub enum StoreOrDecode {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl<E> From<StoreOrDecode> for CommandError<E> {
    fn from(e: StoreOrDecode) -> Self {
        match e {
            StoreOrDecode::Store(e) => CommandError::Store(e),
            StoreOrDecode::Decode(e) => CommandError::Decode(e),
        }
    }
}

/// How long a command without `If-Match` keeps deciding again after losing races for its
/// stream. Writers on one node take turns ([`serial`]), so only other nodes make it lose;
/// a bound in time, not in attempts, so that a burst never turns into a refusal.
pub const RETRY_FOR: Duration = Duration::from_secs(10);

/// Deciding again after a lost race: at once the first time, then after a short, growing,
/// jittered pause (nodes racing in step would otherwise collide again), until [`RETRY_FOR`].
struct Retry {
    deadline: Instant,
    lost: u32,
}

impl Retry {
    fn new() -> Self {
        Retry { deadline: Instant::now() + RETRY_FOR, lost: 0 }
    }

    /// Whether to decide again (after the pause); `false` once time is up.
    async fn again(&mut self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        self.lost += 1;
        if self.lost > 1 {
            let cap_ms = 1u64 << self.lost.min(6); // 4, 8, ... 64 ms
            let jitter = (Uuid::now_v7().as_u128() as u64) % cap_ms;
            tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
        }
        true
    }
}

/// Runs `decide` against the current state of `stream` and appends what it decides.
///
/// `if_match`: the version the caller last saw; a different current version is a
/// [`CommandError::Conflict`], never a silent overwrite. Without it, a concurrent write makes
/// the command load and decide again, for up to [`RETRY_FOR`] (then [`CommandError::Busy`]):
/// a race the caller did not ask about never reaches it. Writers of one stream take turns
/// within this process.
pub async fn execute<A, E>(
    events: &dyn EventStore,
    stream: &str,
    ctx: &Context,
    if_match: Option<u64>,
    decide: impl Fn(&A) -> Result<Vec<A::Event>, E>,
) -> Result<Outcome, CommandError<E>>
where
    A: Aggregate,
{
    let _turn = serial::LOCKS.lock(stream).await;
    let mut retry = Retry::new();
    loop {
        let loaded: Loaded<A> = load(events, stream).await?;
        // A retried request whose first attempt already landed: answer as the first did.
        if ctx.idempotency_key.is_some() {
            let first = ctx.event_id(stream, 0);
            if let Some(i) = loaded.ids.iter().position(|id| *id == first) {
                let written =
                    loaded.ids[i..].iter().enumerate().take_while(|(k, id)| **id == ctx.event_id(stream, *k)).count();
                return Ok(Outcome {
                    version: loaded.version,
                    position: loaded.last_position,
                    written,
                    recorded_at: loaded.last_recorded_at,
                });
            }
        }
        if if_match.is_some() && if_match != loaded.version {
            return Err(CommandError::Conflict { current: loaded.version });
        }
        let decided = decide(&loaded.state).map_err(CommandError::Domain)?;
        if decided.is_empty() {
            return Ok(Outcome { version: loaded.version, position: None, written: 0, recorded_at: None });
        }
        let batch = ctx.new_events::<A>(stream, &decided);
        let expected = loaded.version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        match events.append(stream, expected, batch).await {
            Ok(r) => {
                return Ok(Outcome {
                    version: Some(r.last_version),
                    position: Some(r.position),
                    written: decided.len(),
                    recorded_at: Some(r.recorded_at),
                })
            }
            Err(StoreError::WrongExpectedVersion { actual, .. }) if if_match.is_some() => {
                return Err(CommandError::Conflict { current: actual })
            }
            Err(StoreError::WrongExpectedVersion { .. }) => {
                tracing::debug!(stream, "concurrent write; deciding again");
                if !retry.again().await {
                    return Err(CommandError::Busy);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Aggregates kept in memory per stream with their versions, for hot streams (a
/// conversation takes a message every few seconds). A command decides on the cached state
/// and appends expecting its exact version, so an entry made stale by another node costs a
/// refused append and a read of the stream's tail, never a decision on old state.
pub struct Cache<A> {
    entries: std::sync::Mutex<std::collections::HashMap<String, Loaded<A>>>,
    capacity: usize,
}

impl<A: Aggregate + Clone> Cache<A> {
    /// A cache of at most `capacity` streams (an arbitrary one is dropped when full).
    pub fn new(capacity: usize) -> Self {
        Cache { entries: Default::default(), capacity: capacity.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Loaded<A>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, stream: &str) -> Option<Loaded<A>> {
        self.lock().get(stream).cloned()
    }

    fn put(&self, stream: &str, mut loaded: Loaded<A>) {
        // Event ids only serve `Idempotency-Key` retries, which do not use the cache.
        loaded.ids.clear();
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(stream) {
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(stream.to_string(), loaded);
    }

    fn forget(&self, stream: &str) {
        self.lock().remove(stream);
    }

    /// The stream's current state: the cached one brought up to date with the stream's tail
    /// (one short read), or the whole stream when not cached.
    pub async fn current(&self, events: &dyn EventStore, stream: &str) -> Result<Loaded<A>, StoreOrDecode> {
        let Some(mut hit) = self.get(stream) else { return self.state(events, stream).await };
        if catch_up(events, stream, &mut hit).await? > 0 {
            self.put(stream, hit.clone());
        }
        Ok(hit)
    }

    /// The stream's state: from the cache when there, else read and cached. It may lag
    /// writes made by another node; use it for what never changes once written (a
    /// session's token digest) or as a starting point, as [`execute_cached`] does.
    pub async fn state(&self, events: &dyn EventStore, stream: &str) -> Result<Loaded<A>, StoreOrDecode> {
        if let Some(hit) = self.get(stream) {
            return Ok(hit);
        }
        let loaded = load::<A>(events, stream).await?;
        if loaded.version.is_some() {
            self.put(stream, loaded.clone());
        }
        Ok(loaded)
    }
}

/// [`execute`] starting from the cached state; returns the state after the command too.
///
/// A refusal or a no-op decided on a cached state is checked against the stream's tail
/// first (the cache may lag another node); requests with an `Idempotency-Key` or an
/// `If-Match` take the uncached path. Writers of one stream take turns within this process
/// (so the cached state is this node's latest), and a write lost to another node is decided
/// again on the tail, as [`execute`] does.
pub async fn execute_cached<A, E>(
    events: &dyn EventStore,
    cache: &Cache<A>,
    stream: &str,
    ctx: &Context,
    decide: impl Fn(&A) -> Result<Vec<A::Event>, E>,
) -> Result<(Outcome, A), CommandError<E>>
where
    A: Aggregate + Clone,
{
    if ctx.idempotency_key.is_some() {
        cache.forget(stream);
        let outcome = execute(events, stream, ctx, None, &decide).await?;
        return Ok((outcome, cache.state(events, stream).await?.state));
    }
    let _turn = serial::LOCKS.lock(stream).await;
    let (mut loaded, mut fresh) = match cache.get(stream) {
        Some(hit) => (hit, false),
        None => (load::<A>(events, stream).await?, true),
    };
    let mut retry = Retry::new();
    loop {
        let decided = match decide(&loaded.state) {
            Ok(d) if !d.is_empty() => d,
            other => {
                if !fresh {
                    fresh = true;
                    if catch_up(events, stream, &mut loaded).await? > 0 {
                        continue;
                    }
                }
                let decided = other.map_err(CommandError::Domain)?;
                debug_assert!(decided.is_empty());
                cache.put(stream, loaded.clone());
                let outcome = Outcome { version: loaded.version, position: None, written: 0, recorded_at: None };
                return Ok((outcome, loaded.state));
            }
        };
        let expected = loaded.version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        match events.append(stream, expected, ctx.new_events::<A>(stream, &decided)).await {
            Ok(r) => {
                for e in &decided {
                    loaded.state.apply(e);
                }
                loaded.version = Some(r.last_version);
                loaded.last_position = Some(r.position);
                loaded.last_recorded_at = Some(r.recorded_at);
                cache.put(stream, loaded.clone());
                let outcome = Outcome {
                    version: Some(r.last_version),
                    position: Some(r.position),
                    written: decided.len(),
                    recorded_at: Some(r.recorded_at),
                };
                return Ok((outcome, loaded.state));
            }
            Err(StoreError::WrongExpectedVersion { .. }) => {
                tracing::debug!(stream, "stream moved on; deciding again on its tail");
                if !retry.again().await {
                    cache.forget(stream);
                    return Err(CommandError::Busy);
                }
                fresh = true;
                catch_up(events, stream, &mut loaded).await?;
            }
            Err(e) => {
                cache.forget(stream);
                return Err(e.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::sync::Arc;
    use store::memory::MemoryEventStore;

    /// A counter that refuses to go above 3.
    #[derive(Clone, Default, Debug)]
    struct Counter(u32);

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "event_type", content = "data")]
    enum CounterEvent {
        Incremented {},
    }

    impl Aggregate for Counter {
        type Event = CounterEvent;
        const CATEGORY: &'static str = "counter";
        fn apply(&mut self, _: &CounterEvent) {
            self.0 += 1;
        }
    }

    fn increment(c: &Counter) -> Result<Vec<CounterEvent>, &'static str> {
        if c.0 >= 3 {
            Err("full")
        } else {
            Ok(vec![CounterEvent::Incremented {}])
        }
    }

    fn ctx() -> Context {
        Context::new(Actor::system(), Utc::now())
    }

    #[tokio::test]
    async fn it_decides_on_the_current_state_and_reports_domain_errors() {
        let store = MemoryEventStore::new();
        for v in 0..3 {
            let out = execute(&store, "counter-1", &ctx(), None, increment).await.unwrap();
            assert_eq!((out.version, out.written), (Some(v), 1));
        }
        let full = execute(&store, "counter-1", &ctx(), None, increment).await;
        assert!(matches!(full, Err(CommandError::Domain("full"))));
        let stored = store.read_stream("counter-1", 0, Direction::Forward, 10).await.unwrap();
        assert_eq!(stored[0].metadata["actor"]["kind"], "system");
    }

    #[tokio::test]
    async fn a_stale_if_match_is_a_conflict_with_the_current_version() {
        let store = MemoryEventStore::new();
        execute(&store, "counter-1", &ctx(), None, increment).await.unwrap();
        execute(&store, "counter-1", &ctx(), Some(0), increment).await.unwrap();
        let stale = execute(&store, "counter-1", &ctx(), Some(0), increment).await;
        assert!(matches!(stale, Err(CommandError::Conflict { current: Some(1) })), "{stale:?}");
    }

    #[tokio::test]
    async fn an_idempotency_key_makes_a_retry_return_the_first_result() {
        let store = MemoryEventStore::new();
        let mut keyed = ctx();
        keyed.idempotency_key = Some("req-1".into());
        let first = execute(&store, "counter-1", &keyed, None, increment).await.unwrap();
        let again = execute(&store, "counter-1", &keyed, None, increment).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(store.stream_version("counter-1").await.unwrap(), Some(0), "written once");
        keyed.idempotency_key = Some("req-2".into());
        assert_eq!(execute(&store, "counter-1", &keyed, None, increment).await.unwrap().version, Some(1));
    }

    #[tokio::test]
    async fn a_cache_made_stale_by_another_writer_never_decides_on_old_state() {
        let store = MemoryEventStore::new();
        let cache = Cache::<Counter>::new(10);
        let (out, state) = execute_cached(&store, &cache, "counter-1", &ctx(), increment).await.unwrap();
        assert_eq!((out.version, state.0), (Some(0), 1));
        assert!(out.recorded_at.is_some());
        // Another node writes twice behind this cache's back.
        for _ in 0..2 {
            execute(&store, "counter-1", &ctx(), None, increment).await.unwrap();
        }
        let full = execute_cached(&store, &cache, "counter-1", &ctx(), increment).await;
        assert!(matches!(full, Err(CommandError::Domain("full"))), "decided on the tail, not the cached 1");
        assert_eq!(store.stream_version("counter-1").await.unwrap(), Some(2), "nothing written on stale state");
    }

    #[tokio::test]
    async fn a_refusal_on_cached_state_is_checked_against_the_tail() {
        let store = MemoryEventStore::new();
        let cache = Cache::<Counter>::new(10);
        execute_cached(&store, &cache, "counter-1", &ctx(), increment).await.unwrap();
        execute(&store, "counter-1", &ctx(), None, increment).await.unwrap();
        let needs_two = |c: &Counter| if c.0 < 2 { Err("too early") } else { Ok(vec![CounterEvent::Incremented {}]) };
        let (out, state) = execute_cached(&store, &cache, "counter-1", &ctx(), needs_two).await.unwrap();
        assert_eq!((out.version, state.0), (Some(2), 3));
        let (again, _) = execute_cached(&store, &cache, "counter-1", &ctx(), |_| Ok::<_, &str>(vec![])).await.unwrap();
        assert_eq!((again.version, again.written), (Some(2), 0), "a no-op writes nothing");
    }

    #[tokio::test]
    async fn a_full_cache_drops_an_entry_and_still_answers() {
        let store = MemoryEventStore::new();
        let cache = Cache::<Counter>::new(1);
        for stream in ["counter-1", "counter-2", "counter-1"] {
            execute_cached(&store, &cache, stream, &ctx(), increment).await.unwrap();
        }
        assert_eq!(cache.lock().len(), 1);
        assert_eq!(cache.state(&store, "counter-1").await.unwrap().state.0, 2);
        assert_eq!(cache.state(&store, "counter-2").await.unwrap().state.0, 1);
    }

    /// A store shared with "another node" that wins the race for the stream the first
    /// `losses` times this node appends (it appends first, so the expected version fails).
    struct RacedStore {
        inner: MemoryEventStore,
        losses: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl EventStore for RacedStore {
        fn backend(&self) -> store::Backend {
            self.inner.backend()
        }
        async fn append(
            &self,
            stream: &str,
            expected: ExpectedVersion,
            events: Vec<NewEvent>,
        ) -> Result<store::AppendResult, StoreError> {
            use std::sync::atomic::Ordering;
            if self.losses.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                let other = Context::new(Actor::system(), Utc::now());
                let theirs = other.new_events::<Unbounded>(stream, &[CounterEvent::Incremented {}]);
                self.inner.append(stream, ExpectedVersion::Any, theirs).await?;
            }
            self.inner.append(stream, expected, events).await
        }
        async fn read_stream(
            &self,
            stream: &str,
            from: u64,
            direction: Direction,
            limit: usize,
        ) -> Result<Vec<store::RecordedEvent>, StoreError> {
            self.inner.read_stream(stream, from, direction, limit).await
        }
        async fn read_all(&self, query: &store::ReadAll) -> Result<Vec<store::RecordedEvent>, StoreError> {
            self.inner.read_all(query).await
        }
        async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
            self.inner.stream_version(stream).await
        }
        async fn head(&self) -> Result<Option<Position>, StoreError> {
            self.inner.head().await
        }
        async fn count_after(&self, after: Position, cap: u64) -> Result<u64, StoreError> {
            self.inner.count_after(after, cap).await
        }
        fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
            self.inner.commits()
        }
    }

    /// A counter without a limit.
    #[derive(Clone, Default, Debug)]
    struct Unbounded(u32);

    impl Aggregate for Unbounded {
        type Event = CounterEvent;
        const CATEGORY: &'static str = "unbounded";
        fn apply(&mut self, _: &CounterEvent) {
            self.0 += 1;
        }
    }

    fn always(_: &Unbounded) -> Result<Vec<CounterEvent>, &'static str> {
        Ok(vec![CounterEvent::Incremented {}])
    }

    #[tokio::test]
    async fn losing_to_another_node_many_times_in_a_row_still_writes_without_if_match() {
        // Given another node that wins the next 12 races (more than any small attempt count)
        let store = RacedStore { inner: MemoryEventStore::new(), losses: 12.into() };
        // When this node writes, uncached and cached, without If-Match
        let out = execute(&store, "unbounded-1", &ctx(), None, always).await.unwrap();
        store.losses.store(12, std::sync::atomic::Ordering::SeqCst);
        let cache = Cache::<Unbounded>::new(10);
        let (cached, state) = execute_cached(&store, &cache, "unbounded-1", &ctx(), always).await.unwrap();
        // Then each lands once, after the other node's writes
        assert_eq!((out.version, out.written), (Some(12), 1));
        assert_eq!((cached.version, state.0), (Some(25), 26));
    }

    #[tokio::test]
    async fn a_conditional_write_that_loses_the_race_is_a_conflict_at_once() {
        let store = RacedStore { inner: MemoryEventStore::new(), losses: 0.into() };
        execute(&store, "unbounded-1", &ctx(), None, always).await.unwrap();
        store.losses.store(1, std::sync::atomic::Ordering::SeqCst);
        let lost = execute(&store, "unbounded-1", &ctx(), Some(0), always).await;
        assert!(matches!(lost, Err(CommandError::Conflict { current: Some(1) })), "{lost:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_writers_of_one_stream_on_one_node_all_land() {
        let store = Arc::new(MemoryEventStore::new());
        let cache = Arc::new(Cache::<Unbounded>::new(10));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (store, cache) = (store.clone(), cache.clone());
                tokio::spawn(async move {
                    match i % 2 {
                        0 => execute(store.as_ref(), "unbounded-1", &ctx(), None, always).await.map(|o| o.written),
                        _ => execute_cached(store.as_ref(), &cache, "unbounded-1", &ctx(), always)
                            .await
                            .map(|(o, _)| o.written),
                    }
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 1);
        }
        assert_eq!(store.stream_version("unbounded-1").await.unwrap(), Some(63));
    }

    #[tokio::test]
    async fn concurrent_commands_are_decided_again_not_lost() {
        let store = Arc::new(MemoryEventStore::new());
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { execute(store.as_ref(), "counter-1", &ctx(), None, increment).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(store.stream_version("counter-1").await.unwrap(), Some(2));
    }
}
