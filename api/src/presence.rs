//! Presence across channels moved to `commands::presence` (leaving every channel at once,
//! the inactivity rule and the sweeper); the names stay here for api's callers.

pub use commands::channels::leave_all;
pub use commands::presence::{sweep, PresenceError};
