//! Event store and view store: the contract and its backends (memory, SQLite, PostgreSQL).
//!
//! Architecture invariant: this crate knows nothing about chat. It stores opaque JSON events
//! in streams and opaque JSON documents in views; the `domain` and `projections` crates give
//! them meaning.

pub mod bounded;
pub mod connect;
pub mod error;
pub mod event;
pub mod events;
pub mod memory;
pub mod memory_views;
pub mod migrate;
pub mod postgres;
pub mod sqlite;
pub mod subscribe;
pub mod url;
pub mod views;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use bounded::{Bounded, Timeouts};
pub use connect::{Store, StoreUrl};
pub use error::StoreError;
pub use event::{category_of, NewEvent, Position, RecordedEvent};
pub use events::{
    read_whole_stream, AppendResult, Backend, Direction, EventFilter, EventStore, ExpectedVersion, ReadAll,
};
pub use subscribe::Subscription;
pub use views::{Commit, Doc, DocChange, Ownership, ParkedEvent, ProjectorState, ViewStore};
