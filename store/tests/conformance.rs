//! The store conformance suite, run against every backend.

use store::testkit::scratch_dir;
use store::{Store, StoreUrl};

async fn open(url: StoreUrl) -> Store {
    let store = Store::open(&url).await.expect("open store");
    store.migrate().await.expect("migrate");
    store
}

mod memory {
    use super::*;
    store::conformance_suite!(Some(open(StoreUrl::Memory).await));
}

mod sqlite {
    use super::*;
    store::conformance_suite!(Some(open(StoreUrl::Sqlite(scratch_dir().join("conformance.db"))).await));
}

mod postgres {
    use super::*;
    async fn pg() -> Option<Store> {
        Some(open(StoreUrl::Postgres(store::testkit::pg::fresh_database().await?)).await)
    }
    store::conformance_suite!(pg().await);
}
