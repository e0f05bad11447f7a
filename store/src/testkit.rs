//! Shared test support: the store conformance suite, a throw-away PostgreSQL cluster and a
//! view store that fails on demand.

pub mod conformance;
pub mod faulty;
pub mod pg;
pub mod view_strings;

/// A new empty folder under the system's temporary directory, for one test.
pub fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("livechat-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
