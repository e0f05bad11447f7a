//! The handle every use case takes: the stores, the clock, this node's caches and the
//! configuration. Cheap to clone (everything shared is behind an `Arc`).

use std::sync::Arc;

use domain::session::Session;
use store::{EventStore, ViewStore};

use crate::clock::{Clock, SystemClock};
use crate::users::UserCache;
use crate::{Cache, Config};

/// Conversations kept in memory per node (a few KB each).
const SESSION_CACHE: usize = 20_000;

#[derive(Clone)]
pub struct App {
    pub events: Arc<dyn EventStore>,
    pub views: Arc<dyn ViewStore>,
    pub clock: Arc<dyn Clock>,
    /// Users by id, refolded only when their stream moved.
    pub users: Arc<UserCache>,
    /// Conversations recently written or read on this node (checked against their streams).
    pub sessions: Arc<Cache<Session>>,
    pub config: Config,
}

impl App {
    /// The use cases over these stores, with the system clock and empty caches.
    pub fn new(events: Arc<dyn EventStore>, views: Arc<dyn ViewStore>, config: Config) -> Self {
        App {
            events,
            views,
            clock: Arc::new(SystemClock),
            users: Arc::default(),
            sessions: Arc::new(Cache::new(SESSION_CACHE)),
            config,
        }
    }
}
