//! Opening the store named by `--store`, for the commands that share it.

use store::{Store, StoreUrl};

use crate::failure::Failure;

/// Opens the store with the default bounds.
pub async fn open(url: &StoreUrl) -> Result<Store, Failure> {
    open_with(url, store::Timeouts::default()).await
}

/// Opens the store with these bounds on its calls.
pub async fn open_with(url: &StoreUrl, timeouts: store::Timeouts) -> Result<Store, Failure> {
    Store::open_with(url, timeouts).await.map_err(|e| Failure::Usage(format!("cannot open store {url}: {e}")))
}

/// Opens the store for a read or write that needs the schema in place.
pub async fn open_migrated(url: &StoreUrl) -> Result<Store, Failure> {
    let store = open(url).await?;
    store.check_schema().await?;
    Ok(store)
}
