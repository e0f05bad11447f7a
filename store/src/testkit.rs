//! Shared test support: the store conformance suite and a throw-away PostgreSQL cluster.

pub mod conformance;
pub mod pg;

/// A new empty folder under the system's temporary directory, for one test.
pub fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("livechat-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
