//! A view store around a real one that refuses commits on demand: for tests of what the
//! projector runner does when the store fails (data refused, database unreachable).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::views::{Commit, Doc, Ownership, ParkedEvent, ProjectorState, ViewStore};

type Rule = Box<dyn Fn(&Commit) -> Option<StoreError> + Send + Sync>;

/// Passes everything to `inner`, except commits the current rule refuses.
pub struct FaultyViews {
    inner: Arc<dyn ViewStore>,
    rule: Mutex<Option<Rule>>,
    refused: AtomicU64,
}

impl FaultyViews {
    pub fn new(inner: Arc<dyn ViewStore>) -> Arc<Self> {
        Arc::new(FaultyViews { inner, rule: Mutex::new(None), refused: AtomicU64::new(0) })
    }

    /// From now on, a commit for which `rule` gives an error fails with it, writing nothing.
    pub fn fail_commits(&self, rule: impl Fn(&Commit) -> Option<StoreError> + Send + Sync + 'static) {
        *self.rule.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(rule));
    }

    /// Commits pass again.
    pub fn heal(&self) {
        *self.rule.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// How many commits were refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ViewStore for FaultyViews {
    async fn get(&self, view: &str, id: &str) -> Result<Option<Doc>, StoreError> {
        self.inner.get(view, id).await
    }

    async fn get_many(&self, view: &str, ids: &[String]) -> Result<Vec<Doc>, StoreError> {
        self.inner.get_many(view, ids).await
    }

    async fn list(
        &self,
        view: &str,
        partition: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        self.inner.list(view, partition, after, limit).await
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let refusal = self.rule.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|rule| rule(&commit));
        if let Some(e) = refusal {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(e);
        }
        self.inner.commit(commit).await
    }

    async fn record_error(&self, projector: &str, error: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.record_error(projector, error, at).await
    }

    async fn projector_state(&self, projector: &str) -> Result<Option<ProjectorState>, StoreError> {
        self.inner.projector_state(projector).await
    }

    async fn heartbeat(&self, projector: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.heartbeat(projector, now).await
    }

    async fn parked(&self, projector: &str, limit: usize) -> Result<Vec<ParkedEvent>, StoreError> {
        self.inner.parked(projector, limit).await
    }

    async fn reset(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        self.inner.reset(projector, views).await
    }

    async fn swap_shadow(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        self.inner.swap_shadow(projector, views).await
    }

    async fn try_own(&self, projector: &str) -> Result<Option<Ownership>, StoreError> {
        self.inner.try_own(projector).await
    }

    async fn touch(&self, subject: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.touch(subject, at).await
    }

    async fn last_touched(&self, subject: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.inner.last_touched(subject).await
    }
}
