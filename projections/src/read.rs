//! Decoding view documents into their projection's types, shared by the typed reads of each
//! projection module. A document that does not decode is logged and skipped, in one place,
//! so a reader never has to choose between failing and silently missing it.

use serde::de::DeserializeOwned;
use store::views::{Doc, ViewStore};
use store::StoreError;

/// The body of `doc` as `T`, or `None` (logged) when it does not decode.
pub(crate) fn decode<T: DeserializeOwned>(doc: Doc) -> Option<T> {
    match serde_json::from_value(doc.body) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(view = %doc.view, id = %doc.id, error = %e, "skipping a view document that does not decode");
            None
        }
    }
}

/// Every decodable document among `docs`, in their order.
pub(crate) fn decode_all<T: DeserializeOwned>(docs: Vec<Doc>) -> Vec<T> {
    docs.into_iter().filter_map(decode).collect()
}

/// One document of `view`, decoded; `None` when absent or undecodable (logged).
pub(crate) async fn get<T: DeserializeOwned>(
    views: &dyn ViewStore,
    view: &str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    Ok(views.get(view, id).await?.and_then(decode))
}

/// Every decodable document of `view` (optionally in one partition), in listing order.
pub(crate) async fn all<T: DeserializeOwned>(
    views: &dyn ViewStore,
    view: &str,
    partition: Option<&str>,
) -> Result<Vec<T>, StoreError> {
    Ok(decode_all(store::views::list_all(views, view, partition).await?))
}

/// The first `limit` documents of `view` in `partition`, decoded (undecodable ones skipped).
pub(crate) async fn first<T: DeserializeOwned>(
    views: &dyn ViewStore,
    view: &str,
    partition: Option<&str>,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    Ok(decode_all(views.list(view, partition, None, limit).await?))
}

/// Every decodable document of `view` with its id, in listing order.
pub(crate) async fn all_with_ids<T: DeserializeOwned>(
    views: &dyn ViewStore,
    view: &str,
    partition: Option<&str>,
) -> Result<Vec<(String, T)>, StoreError> {
    let docs = store::views::list_all(views, view, partition).await?;
    Ok(docs
        .into_iter()
        .filter_map(|d| {
            let id = d.id.clone();
            decode(d).map(|t| (id, t))
        })
        .collect())
}

/// The decodable documents among `ids`, in no particular order.
pub(crate) async fn get_many<T: DeserializeOwned>(
    views: &dyn ViewStore,
    view: &str,
    ids: &[String],
) -> Result<Vec<T>, StoreError> {
    Ok(decode_all(views.get_many(view, ids).await?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(id: &str, body: serde_json::Value) -> Doc {
        Doc { view: "v".into(), id: id.into(), partition: String::new(), sort_key: id.into(), body, version: 1 }
    }

    #[test]
    fn undecodable_documents_are_skipped_and_the_rest_kept_in_order() {
        let docs = vec![doc("a", json!(1)), doc("b", json!("not a number")), doc("c", json!(3))];
        assert_eq!(decode_all::<u32>(docs), vec![1, 3]);
    }

    #[tokio::test]
    async fn reads_from_a_store_skip_what_does_not_decode() {
        use store::memory_views::MemoryViewStore;
        use store::views::{Commit, DocChange};
        use store::Position;

        let views = MemoryViewStore::default();
        let put = |id: &str, body: serde_json::Value| DocChange::Put {
            view: "v".into(),
            id: id.into(),
            partition: "p".into(),
            sort_key: id.into(),
            body,
        };
        let changes = vec![put("a", json!(1)), put("b", json!({"not": "a number"})), put("c", json!(3))];
        let commit = Commit {
            projector: "test".into(),
            projector_version: 1,
            expected: None,
            checkpoint: Position::new(1, 1),
            last_event_at: None,
            changes,
            parked: vec![],
            now: chrono::Utc::now(),
        };
        views.commit(commit).await.unwrap();
        assert_eq!(all::<u32>(&views, "v", Some("p")).await.unwrap(), vec![1, 3]);
        assert_eq!(first::<u32>(&views, "v", Some("p"), 2).await.unwrap(), vec![1]);
        assert_eq!(get::<u32>(&views, "v", "b").await.unwrap(), None);
        assert_eq!(get::<u32>(&views, "v", "c").await.unwrap(), Some(3));
        let keyed = all_with_ids::<u32>(&views, "v", None).await.unwrap();
        assert_eq!(keyed, vec![("a".to_string(), 1), ("c".to_string(), 3)]);
        let mut many = get_many::<u32>(&views, "v", &["a".into(), "b".into()]).await.unwrap();
        many.sort();
        assert_eq!(many, vec![1]);
    }
}
