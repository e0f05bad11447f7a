//! In-memory view store, paired with [`crate::memory::MemoryEventStore`].

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::views::{
    check_commit, check_lookup, printable, shadow_name, Commit, Doc, DocChange, Ownership, ParkedEvent, ProjectorState,
    ViewStore,
};

#[derive(Default, Clone)]
struct Tables {
    docs: BTreeMap<(String, String), Doc>,
    checkpoints: BTreeMap<String, ProjectorState>,
    parked: Vec<ParkedEvent>,
    activity: BTreeMap<String, DateTime<Utc>>,
}

/// Documents in ordered maps behind a mutex.
#[derive(Default)]
pub struct MemoryViewStore {
    tables: Mutex<Tables>,
    owners: Arc<Mutex<HashSet<String>>>,
}

impl MemoryViewStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Owned {
    name: String,
    owners: Arc<Mutex<HashSet<String>>>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.owners.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.name);
    }
}

fn rename_view(view: &str, from: &[String], to: &[&str]) -> Option<String> {
    from.iter().position(|v| v == view).map(|i| to[i].to_string())
}

#[async_trait]
impl ViewStore for MemoryViewStore {
    async fn get(&self, view: &str, id: &str) -> Result<Option<Doc>, StoreError> {
        check_lookup([view, id])?;
        Ok(self.lock().docs.get(&(view.to_string(), id.to_string())).cloned())
    }

    async fn get_many(&self, view: &str, ids: &[String]) -> Result<Vec<Doc>, StoreError> {
        check_lookup(std::iter::once(view).chain(ids.iter().map(String::as_str)))?;
        let t = self.lock();
        Ok(ids.iter().filter_map(|id| t.docs.get(&(view.to_string(), id.clone())).cloned()).collect())
    }

    async fn list(
        &self,
        view: &str,
        partition: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        check_lookup([Some(view), partition, after.map(|a| a.0), after.map(|a| a.1)].into_iter().flatten())?;
        let t = self.lock();
        let mut docs: Vec<&Doc> = t
            .docs
            .values()
            .filter(|d| d.view == view && partition.is_none_or(|p| p == d.partition))
            .filter(|d| after.is_none_or(|(s, i)| (d.sort_key.as_str(), d.id.as_str()) > (s, i)))
            .collect();
        docs.sort_by(|a, b| (&a.sort_key, &a.id).cmp(&(&b.sort_key, &b.id)));
        Ok(docs.into_iter().take(limit).cloned().collect())
    }

    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        check_commit(&c)?;
        let mut t = self.lock();
        let current = t.checkpoints.get(&c.projector).map(|s| s.position);
        if current != c.expected {
            return Err(StoreError::Busy(format!(
                "checkpoint of '{}' moved (expected {:?}, found {:?}): another runner is active",
                c.projector, c.expected, current
            )));
        }
        for change in c.changes {
            match change {
                DocChange::Put { view, id, partition, sort_key, body } => {
                    let key = (view.clone(), id.clone());
                    let version = t.docs.get(&key).map_or(1, |d| d.version + 1);
                    t.docs.insert(key, Doc { view, id, partition, sort_key, body, version });
                }
                DocChange::Delete { view, id } => {
                    t.docs.remove(&(view, id));
                }
            }
        }
        let parked = t.parked.iter().filter(|p| p.projector == c.projector).count() as u64 + c.parked.len() as u64;
        t.parked.extend(c.parked);
        t.checkpoints.insert(
            c.projector.clone(),
            ProjectorState {
                projector: c.projector,
                position: c.checkpoint,
                projector_version: c.projector_version,
                last_event_at: c.last_event_at,
                updated_at: c.now,
                heartbeat_at: c.now,
                parked,
                last_error: None,
                last_error_at: None,
            },
        );
        Ok(())
    }

    async fn record_error(&self, projector: &str, error: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(s) = self.lock().checkpoints.get_mut(projector) {
            s.last_error = Some(printable(error));
            s.last_error_at = Some(crate::event::store_time(at));
        }
        Ok(())
    }

    async fn projector_state(&self, projector: &str) -> Result<Option<ProjectorState>, StoreError> {
        Ok(self.lock().checkpoints.get(projector).cloned())
    }

    async fn heartbeat(&self, projector: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(s) = self.lock().checkpoints.get_mut(projector) {
            s.heartbeat_at = now;
        }
        Ok(())
    }

    async fn parked(&self, projector: &str, limit: usize) -> Result<Vec<ParkedEvent>, StoreError> {
        let t = self.lock();
        Ok(t.parked.iter().filter(|p| p.projector == projector).take(limit).cloned().collect())
    }

    async fn reset(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        let mut t = self.lock();
        t.docs.retain(|(v, _), _| !views.contains(&v.as_str()));
        t.checkpoints.remove(projector);
        t.parked.retain(|p| p.projector != projector);
        Ok(())
    }

    async fn swap_shadow(&self, projector: &str, views: &[&str]) -> Result<(), StoreError> {
        let mut t = self.lock();
        let shadows: Vec<String> = views.iter().map(|v| shadow_name(v)).collect();
        let shadow_projector = shadow_name(projector);
        let mut next = t.clone();
        next.docs.retain(|(v, _), _| !views.contains(&v.as_str()));
        for ((v, id), doc) in std::mem::take(&mut next.docs).into_iter() {
            match rename_view(&v, &shadows, views) {
                Some(live) => {
                    next.docs.insert((live.clone(), id), Doc { view: live, ..doc });
                }
                None => {
                    next.docs.insert((v, id), doc);
                }
            }
        }
        next.checkpoints.remove(projector);
        if let Some(mut s) = next.checkpoints.remove(&shadow_projector) {
            s.projector = projector.to_string();
            next.checkpoints.insert(projector.to_string(), s);
        }
        next.parked.retain(|p| p.projector != projector);
        for p in next.parked.iter_mut().filter(|p| p.projector == shadow_projector) {
            p.projector = projector.to_string();
        }
        *t = next;
        Ok(())
    }

    async fn touch(&self, subject: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut t = self.lock();
        let slot = t.activity.entry(subject.to_string()).or_insert(at);
        *slot = (*slot).max(at);
        Ok(())
    }

    async fn last_touched(&self, subject: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.lock().activity.get(subject).copied())
    }

    async fn try_own(&self, projector: &str) -> Result<Option<Ownership>, StoreError> {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if !owners.insert(projector.to_string()) {
            return Ok(None);
        }
        let owned = Owned { name: projector.to_string(), owners: self.owners.clone() };
        Ok(Some(Ownership::new(owned, |_| true)))
    }
}
