//! The change history of one resource, folded straight from its stream (always current, and
//! exactly what the log holds).

use domain::audit::Audited;
use projections::audit::AuditEntry;
use uuid::Uuid;

use crate::{stream_id, App, StoreOrDecode};

/// Why a history could not be read (`api` maps each to a problem document).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The stream has no events.
    #[error("no such resource")]
    NotFound,
    #[error(transparent)]
    Load(#[from] StoreOrDecode),
}

/// The history of resource `id` of kind `A`, newest first.
pub async fn history<A: Audited>(app: &App, id: Uuid) -> Result<Vec<AuditEntry>, HistoryError> {
    let events =
        store::read_whole_stream(app.events.as_ref(), &stream_id::<A>(id), 0).await.map_err(StoreOrDecode::from)?;
    let mut out = projections::audit::history::<A>(&events).map_err(StoreOrDecode::from)?;
    if out.is_empty() {
        return Err(HistoryError::NotFound);
    }
    out.reverse();
    Ok(out)
}
