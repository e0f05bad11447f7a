//! Choosing a backend from a URL: `memory:`, `sqlite:PATH` or `postgres://...`.

use std::sync::Arc;

use crate::bounded::{Bounded, Timeouts};
use crate::error::StoreError;
use crate::events::EventStore;
use crate::memory::MemoryEventStore;
use crate::memory_views::MemoryViewStore;
use crate::migrate::Migration;
use crate::postgres::PgStore;
use crate::sqlite::{Durability, SqliteStore};
pub use crate::url::StoreUrl;
use crate::views::ViewStore;

/// An opened backend: the same object serves events and views, every call of which is
/// bounded by the store's [`Timeouts`].
#[derive(Clone)]
pub struct Store {
    opened: Opened,
    timeouts: Timeouts,
}

#[derive(Clone)]
enum Opened {
    Memory(Arc<MemoryEventStore>, Arc<MemoryViewStore>),
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Connects with the default [`Timeouts`]; does not migrate. An unreachable database is
    /// an error here, not later.
    pub async fn open(url: &StoreUrl) -> Result<Store, StoreError> {
        Store::open_with(url, Timeouts::default()).await
    }

    /// Connects with these bounds; does not migrate.
    pub async fn open_with(url: &StoreUrl, timeouts: Timeouts) -> Result<Store, StoreError> {
        let opened = match url {
            StoreUrl::Memory => Opened::Memory(Arc::default(), Arc::default()),
            StoreUrl::Sqlite(path) => {
                let durability = match std::env::var("LIVECHAT_SQLITE_SYNC").as_deref() {
                    Ok("normal") | Ok("NORMAL") => Durability::Normal,
                    _ => Durability::Full,
                };
                Opened::Sqlite(SqliteStore::open_with(path, durability, timeouts.call)?)
            }
            StoreUrl::Postgres(url) => Opened::Postgres(PgStore::connect_with(url, timeouts).await?),
        };
        Ok(Store { opened, timeouts })
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    pub fn events(&self) -> Arc<dyn EventStore> {
        let raw: Arc<dyn EventStore> = match &self.opened {
            Opened::Memory(e, _) => e.clone(),
            Opened::Sqlite(s) => Arc::new(s.clone()),
            Opened::Postgres(p) => Arc::new(p.clone()),
        };
        Bounded::events(raw, self.timeouts)
    }

    pub fn views(&self) -> Arc<dyn ViewStore> {
        let raw: Arc<dyn ViewStore> = match &self.opened {
            Opened::Memory(_, v) => v.clone(),
            Opened::Sqlite(s) => Arc::new(s.clone()),
            Opened::Postgres(p) => Arc::new(p.clone()),
        };
        Bounded::views(raw, self.timeouts)
    }

    /// Applies missing migrations; returns those applied. Not bounded beyond connecting: a
    /// migration may take long on a large database, and runs before anything is served.
    pub async fn migrate(&self) -> Result<Vec<&'static Migration>, StoreError> {
        match &self.opened {
            Opened::Memory(..) => Ok(vec![]),
            Opened::Sqlite(s) => s.migrate().await,
            Opened::Postgres(p) => p.migrate().await,
        }
    }

    /// Refuses a schema that is newer than this binary, or not yet migrated.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        match &self.opened {
            Opened::Memory(..) => Ok(()),
            Opened::Sqlite(s) => {
                crate::bounded::within("check_schema", self.timeouts.call, false, s.check_schema()).await
            }
            Opened::Postgres(p) => {
                crate::bounded::within("check_schema", self.timeouts.call, false, p.check_schema()).await
            }
        }
    }

    /// For a file database, a lock that keeps a second server away; `None` for shared databases.
    pub fn lock_exclusive(&self, what: &str) -> Result<Option<std::fs::File>, StoreError> {
        match &self.opened {
            Opened::Sqlite(s) => s.lock_exclusive(what).map(Some),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_parses_every_store_url_form() {
        assert_eq!("memory:".parse(), Ok(StoreUrl::Memory));
        assert_eq!("sqlite:./data/x.db".parse(), Ok(StoreUrl::Sqlite("./data/x.db".into())));
        assert_eq!("sqlite:///tmp/x.db".parse(), Ok(StoreUrl::Sqlite("/tmp/x.db".into())));
        assert!(matches!("postgres://u@h/db".parse(), Ok(StoreUrl::Postgres(_))));
        assert!("mysql://x".parse::<StoreUrl>().is_err());
        assert!("sqlite:".parse::<StoreUrl>().is_err());
    }

    #[test]
    fn it_never_prints_a_password() {
        let url: StoreUrl = "postgres://me:secret@localhost/db".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://me:***@localhost/db");
    }
}
