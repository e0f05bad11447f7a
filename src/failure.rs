//! What a command returns when it fails, and the exit code it maps to.

/// A failure, split by who can fix it.
#[derive(Debug)]
pub enum Failure {
    /// The operator's mistake (bad flag, unreachable store, file in use): exit code 2.
    Usage(String),
    /// Something broke while working: exit code 1.
    Runtime(String),
}

impl From<store::StoreError> for Failure {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Database(_) | store::StoreError::Corrupt(_) | store::StoreError::Timeout { .. } => {
                Failure::Runtime(e.to_string())
            }
            _ => Failure::Usage(e.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Runtime(e.to_string())
    }
}
