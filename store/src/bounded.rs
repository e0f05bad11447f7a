//! Every store call within a bound, on every backend.
//!
//! A database that accepts connections but never answers (a stopped server, a full disk, a
//! lost network path without resets) would otherwise hold a caller forever: server-side
//! limits (`statement_timeout`, SQLite's busy timeout) cannot fire on a server that does not
//! run. [`Bounded`] wraps an event store or a view store and gives each call its bound
//! client-side; a call that runs out is [`StoreError::Timeout`], and says whether it may
//! have written (`outcome_unknown`: a write whose statement may have reached the database).
//!
//! A call cut short is dropped like any future. Backends keep nothing of it half done: the
//! PostgreSQL backend discards a pooled connection dropped during a cancelled call
//! ([`cancelling`]), so no later call waits behind its statement, and tokio-postgres rolls
//! back a transaction dropped before its `COMMIT`; SQLite's blocking work runs to its end
//! on its own thread, with nobody waiting for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::{NewEvent, Position, RecordedEvent};
use crate::events::{AppendResult, Backend, Direction, EventStore, ExpectedVersion, ReadAll};
use crate::views::{Commit, Doc, Ownership, ParkedEvent, ProjectorState, ViewStore};

/// How long the store may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// One store call, from its start to its answer, whatever it waits for (a pooled
    /// connection, a new one, the statement). Also PostgreSQL's `statement_timeout` and
    /// SQLite's busy timeout, so the database gives up about when the caller does.
    pub call: Duration,
    /// Opening a PostgreSQL connection (TCP and startup).
    pub connect: Duration,
    /// Waiting for a free pooled PostgreSQL connection when all are in use.
    pub pool_wait: Duration,
}

impl Timeouts {
    pub const DEFAULT: Timeouts =
        Timeouts { call: Duration::from_secs(5), connect: Duration::from_secs(5), pool_wait: Duration::from_secs(3) };

    /// The bound of the calls that move whole views at once (`reset`, `swap_shadow` of a
    /// rebuild): they may legitimately take longer than a request's call.
    pub fn maintenance(&self) -> Duration {
        self.call.saturating_mul(12)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::DEFAULT
    }
}

tokio::task_local! {
    /// Set while a future cut short by its bound is being dropped.
    static CANCELLING: ();
}

/// True while dropping a store call that [`Bounded`] cut short (its bound ran out, or its
/// caller gave up on it): a backend's resources dropped now were in the middle of something.
pub fn cancelling() -> bool {
    CANCELLING.try_with(|_| ()).is_ok()
}

/// Drops `value` as [`cancelling`] a store call: for a caller that abandons work holding
/// store calls (a request past its deadline).
pub fn cancel<T>(value: T) {
    CANCELLING.sync_scope((), move || drop(value));
}

/// A call in progress; dropped before it finished, it is dropped as cancelled.
struct Call<F>(Option<Pin<Box<F>>>);

impl<F> Drop for Call<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            cancel(f);
        }
    }
}

/// Runs `call` within `bound`; past it, the call is dropped and `op` timed out.
pub async fn within<T>(
    op: &'static str,
    bound: Duration,
    writes: bool,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut call = Call(Some(Box::pin(call)));
    let running = call.0.as_mut().expect("set above");
    match tokio::time::timeout(bound, running).await {
        Ok(result) => {
            // Finished: nothing of it is half done.
            call.0 = None;
            result
        }
        Err(_) => {
            tracing::warn!(op, bound_ms = bound.as_millis() as u64, "store call timed out");
            drop(call);
            Err(StoreError::Timeout { op, after: bound, outcome_unknown: writes })
        }
    }
}

/// A store whose every call is bounded by [`Timeouts`].
pub struct Bounded<S: ?Sized> {
    inner: Arc<S>,
    timeouts: Timeouts,
}

impl Bounded<dyn EventStore> {
    pub fn events(inner: Arc<dyn EventStore>, timeouts: Timeouts) -> Arc<dyn EventStore> {
        Arc::new(Bounded { inner, timeouts })
    }
}

impl Bounded<dyn ViewStore> {
    pub fn views(inner: Arc<dyn ViewStore>, timeouts: Timeouts) -> Arc<dyn ViewStore> {
        Arc::new(Bounded { inner, timeouts })
    }
}

impl<S: ?Sized> Bounded<S> {
    async fn read<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        within(op, self.timeouts.call, false, call).await
    }

    async fn write<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        within(op, self.timeouts.call, true, call).await
    }
}

#[async_trait]
impl EventStore for Bounded<dyn EventStore> {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.write("append", self.inner.append(stream, expected, events)).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read("read_stream", self.inner.read_stream(stream, from_version, direction, limit)).await
    }

    async fn read_all(&self, query: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read("read_all", self.inner.read_all(query)).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        self.read("stream_version", self.inner.stream_version(stream)).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.read("head", self.inner.head()).await
    }

    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, StoreError> {
        self.read("count_after", self.inner.count_after(after, cap)).await
    }

    async fn horizon_age(&self) -> Result<Option<f64>, StoreError> {
        self.read("horizon_age", self.inner.horizon_age()).await
    }

    async fn notify_others(&self, payload: &str) -> Result<(), StoreError> {
        self.write("notify_others", self.inner.notify_others(payload)).await
    }

    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.inner.notices()
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.inner.commits()
    }
}

#[async_trait]
impl ViewStore for Bounded<dyn ViewStore> {
    async fn get(&self, view: &str, id: &str) -> Result<Option<Doc>, StoreError> {
        self.read("get", self.inner.get(view, id)).await
    }

    async fn get_many(&self, view: &str, ids: &[String]) -> Result<Vec<Doc>, StoreError> {
        self.read("get_many", self.inner.get_many(view, ids)).await
    }

    async fn list(
        &self,
        view: &str,
        partition: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        self.read("list", self.inner.list(view, partition, after, limit)).await
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        self.write("commit", self.inner.commit(commit)).await
    }

    async fn record_error(&self, projector: &str, error: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.write("record_error", self.inner.record_error(projector, error, at)).await
    }

    async fn projector_state(&self, projector: &str) -> Result<Option<ProjectorState>, StoreError> {
        self.read("projector_state", self.inner.projector_state(projector)).await
    }

    async fn heartbeat(&self, projector: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.write("heartbeat", self.inner.heartbeat(projector, now)).await
    }

    async fn parked(&self, projector: &str, limit: usize) -> Result<Vec<ParkedEvent>, StoreError> {
        self.read("parked", self.inner.parked(projector, limit)).await
    }

    async fn reset(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        within("reset", self.timeouts.maintenance(), true, self.inner.reset(projector, views)).await
    }

    async fn swap_shadow(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        within("swap_shadow", self.timeouts.maintenance(), true, self.inner.swap_shadow(projector, views)).await
    }

    async fn try_own(&self, projector: &str) -> Result<Option<Ownership>, StoreError> {
        // Writes nothing that outlives the call: a lock taken by a call cut short goes with
        // its connection.
        self.read("try_own", self.inner.try_own(projector)).await
    }

    async fn touch(&self, subject: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.write("touch", self.inner.touch(subject, at)).await
    }

    async fn last_touched(&self, subject: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read("last_touched", self.inner.last_touched(subject)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryEventStore;
    use crate::memory_views::MemoryViewStore;
    use std::sync::atomic::{AtomicBool, Ordering};

    const SHORT: Timeouts =
        Timeouts { call: Duration::from_millis(50), connect: Duration::from_millis(50), pool_wait: Duration::ZERO };

    /// Forwards to a memory store, or never answers while `stuck`.
    struct Stuck {
        inner: MemoryEventStore,
        stuck: AtomicBool,
    }

    impl Stuck {
        async fn gate(&self) {
            if self.stuck.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
        }
    }

    #[async_trait]
    impl EventStore for Stuck {
        fn backend(&self) -> Backend {
            Backend::Memory
        }
        async fn append(
            &self,
            stream: &str,
            expected: ExpectedVersion,
            events: Vec<NewEvent>,
        ) -> Result<AppendResult, StoreError> {
            self.gate().await;
            self.inner.append(stream, expected, events).await
        }
        async fn read_stream(
            &self,
            stream: &str,
            from: u64,
            direction: Direction,
            limit: usize,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            self.gate().await;
            self.inner.read_stream(stream, from, direction, limit).await
        }
        async fn read_all(&self, query: &ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
            self.gate().await;
            self.inner.read_all(query).await
        }
        async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
            self.gate().await;
            self.inner.stream_version(stream).await
        }
        async fn head(&self) -> Result<Option<Position>, StoreError> {
            self.gate().await;
            self.inner.head().await
        }
        async fn count_after(&self, after: Position, cap: u64) -> Result<u64, StoreError> {
            self.gate().await;
            self.inner.count_after(after, cap).await
        }
        fn commits(&self) -> watch::Receiver<u64> {
            self.inner.commits()
        }
    }

    fn event() -> NewEvent {
        NewEvent::new("Happened", serde_json::json!({}))
    }

    #[tokio::test]
    async fn a_call_that_never_answers_times_out_and_says_whether_it_may_have_written() {
        let stuck = Arc::new(Stuck { inner: MemoryEventStore::default(), stuck: AtomicBool::new(true) });
        let events = Bounded::events(stuck.clone(), SHORT);
        let started = std::time::Instant::now();
        let err = events.append("s-1", ExpectedVersion::Any, vec![event()]).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert!(
            matches!(err, StoreError::Timeout { op: "append", outcome_unknown: true, after } if after == SHORT.call),
            "{err:?}"
        );
        assert!(err.outcome_unknown() && !err.is_about_data());
        assert!(err.to_string().contains("may still have been applied"), "{err}");

        let err = events.head().await.unwrap_err();
        assert!(matches!(err, StoreError::Timeout { op: "head", outcome_unknown: false, .. }), "{err:?}");
        assert!(err.to_string().contains("nothing was written"), "{err}");

        // The store answers again: so does the wrapper, with the backend's own results.
        stuck.stuck.store(false, Ordering::SeqCst);
        let written = events.append("s-1", ExpectedVersion::NoStream, vec![event()]).await.unwrap();
        assert_eq!(events.head().await.unwrap(), Some(written.position));
        assert_eq!(events.backend(), Backend::Memory);
    }

    #[tokio::test]
    async fn errors_within_the_bound_pass_unchanged() {
        let events = Bounded::events(Arc::new(MemoryEventStore::default()), SHORT);
        let err = events.append("s-1", ExpectedVersion::Exact(3), vec![event()]).await.unwrap_err();
        assert!(matches!(err, StoreError::WrongExpectedVersion { .. }), "{err:?}");
        let views = Bounded::views(Arc::new(MemoryViewStore::default()), SHORT);
        assert_eq!(views.get("v", "1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_call_cut_short_is_dropped_as_cancelled() {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(cancelling(), Ordering::SeqCst);
            }
        }
        let seen = Arc::new(AtomicBool::new(false));
        let flag = Flag(seen.clone());
        let call = async move {
            let _held = flag;
            std::future::pending::<Result<(), StoreError>>().await
        };
        assert!(within("x", Duration::from_millis(10), false, call).await.is_err());
        assert!(seen.load(Ordering::SeqCst), "dropped while cancelling");

        // A call that finishes is not.
        let seen = Arc::new(AtomicBool::new(true));
        let probe = Flag(seen.clone());
        within("x", Duration::from_secs(1), false, async move {
            drop(probe);
            Ok(())
        })
        .await
        .unwrap();
        assert!(!seen.load(Ordering::SeqCst));
        assert!(!cancelling());

        // A call whose caller gave up on it (a request past its deadline) is cancelled too.
        let seen = Arc::new(AtomicBool::new(false));
        let flag = Flag(seen.clone());
        let call = within("x", Duration::from_secs(60), false, async move {
            let _held = flag;
            std::future::pending::<Result<(), StoreError>>().await
        });
        assert!(tokio::time::timeout(Duration::from_millis(10), call).await.is_err());
        assert!(seen.load(Ordering::SeqCst), "a call dropped by its caller is dropped as cancelled");
    }
}
