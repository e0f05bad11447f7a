//! Conformance of view stores for every string a projector may produce: document ids,
//! partitions, sort keys and bodies either round-trip and list in byte order on every
//! backend, or are refused (`StoreError::Invalid`) by every backend alike, before anything is
//! written (see [`crate::views::check_doc`]). Run by `conformance_suite!` with the rest.

use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{Position, RecordedEvent};
use crate::views::{
    Commit, Doc, DocChange, ParkedEvent, MAX_ID_BYTES, MAX_PARTITION_BYTES, MAX_SORT_KEY_BYTES, MAX_VIEW_BYTES,
};
use crate::Store;

/// Strings that break naive storage: control characters, SQL wildcards and quotes, escapes,
/// combining and 4-byte characters, byte-order neighbours.
fn awkward() -> Vec<String> {
    let mut s: Vec<String> = [
        "",
        "a",
        "A",
        "Z",
        "a b",
        "a\u{1f}b",
        "a\u{1}",
        "a\u{7f}",
        "tab\there",
        "line\nbreak",
        "cr\r",
        "%",
        "a%",
        "_",
        "a_",
        "ab",
        "'",
        "''",
        "\"",
        "\\",
        "\\u0000",
        "\\\"",
        "é",
        "e\u{301}",
        "İ",
        "ß",
        "😀",
        "😀😀",
        "\u{10FFFF}",
        "\u{FFFD}",
        "\u{FEFF}bom",
        "中文",
        "%_'\"\\;--",
        "{\"json\": [1]}",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    s.push("x".repeat(500));
    s.push("é".repeat(256)); // 512 bytes: the longest id
    s
}

/// `len` bytes that compress badly (PostgreSQL compresses long index entries when it can,
/// which would hide an entry that is too big).
fn incompressible(len: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (b'!' + ((x >> 33) % 94) as u8) as char
        })
        .collect()
}

fn put(view: &str, id: &str, partition: &str, sort_key: &str, body: Value) -> DocChange {
    DocChange::Put { view: view.into(), id: id.into(), partition: partition.into(), sort_key: sort_key.into(), body }
}

fn commit(expected: Option<u64>, to: u64, changes: Vec<DocChange>) -> Commit {
    Commit {
        projector: "strings".into(),
        projector_version: 1,
        expected: expected.map(|p| Position::new(0, p)),
        checkpoint: Position::new(0, to),
        last_event_at: None,
        changes,
        parked: vec![],
        now: Utc::now(),
    }
}

/// Every document of a view (or partition), read in keyset pages of 3 so that awkward
/// strings also serve as cursors.
async fn pages_of_three(store: &Store, view: &str, partition: Option<&str>) -> Vec<Doc> {
    let v = store.views();
    let mut all: Vec<Doc> = Vec::new();
    loop {
        let after = all.last().map(|d| (d.sort_key.clone(), d.id.clone()));
        let page = v.list(view, partition, after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())), 3).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) -> String {
    match r {
        Err(StoreError::Invalid(msg)) => msg,
        other => panic!("{what}: expected Invalid, got {other:?}"),
    }
}

/// Awkward ids, partitions and sort keys come back exactly; listings follow byte order
/// (ties by id), and a partition matches only itself (no wildcards, no normalisation).
pub async fn view_keys_round_trip_in_byte_order(store: Store) {
    let v = store.views();
    let strings = awkward();
    let mut sort_keys = strings.clone();
    sort_keys.push("y".repeat(1000)); // 1,000 characters
    sort_keys.push("😀".repeat(MAX_SORT_KEY_BYTES / 4)); // the longest sort key, 4-byte characters
    let mut changes = Vec::new();
    for (i, s) in sort_keys.iter().enumerate() {
        changes.push(put("by_sort", &format!("d{i:02}"), "", s, json!({ "i": i })));
    }
    changes.push(put("by_sort", "tie", "", "a%", json!({}))); // same sort key as another: id decides
    for (i, s) in strings.iter().enumerate() {
        changes.push(put("by_id", s, "p", "", json!({ "i": i })));
        changes.push(put("by_partition", &format!("p{i:02}"), s, "k", json!({ "i": i })));
    }
    v.commit(commit(None, 1, changes)).await.unwrap();

    let listed = pages_of_three(&store, "by_sort", None).await;
    let mut expected: Vec<(String, String)> =
        sort_keys.iter().enumerate().map(|(i, s)| (s.clone(), format!("d{i:02}"))).collect();
    expected.push(("a%".into(), "tie".into()));
    expected.sort_by(|a, b| (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes())));
    let got: Vec<(String, String)> = listed.iter().map(|d| (d.sort_key.clone(), d.id.clone())).collect();
    assert_eq!(got, expected, "sort keys list in byte order, ties by id");

    for (i, s) in strings.iter().enumerate() {
        let d = v.get("by_id", s).await.unwrap().unwrap_or_else(|| panic!("id {s:?} not found"));
        assert_eq!((d.id.as_str(), d.body["i"].as_u64()), (s.as_str(), Some(i as u64)), "id {s:?}");
        let only = v.list("by_partition", Some(s), None, 10).await.unwrap();
        let ids: Vec<&str> = only.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, vec![format!("p{i:02}")], "partition {s:?} matches only itself");
        assert_eq!(only[0].partition, *s);
    }
    let mut by_id: Vec<String> = pages_of_three(&store, "by_id", Some("p")).await.into_iter().map(|d| d.id).collect();
    let mut expected_ids = strings.clone();
    expected_ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(by_id, expected_ids, "equal sort keys list by id in byte order");
    let mut many: Vec<String> = v.get_many("by_id", &strings).await.unwrap().into_iter().map(|d| d.id).collect();
    many.sort();
    by_id.sort();
    assert_eq!(many, by_id);

    // Awkward ids are deleted as exactly as they are found.
    let deletes = strings.iter().map(|s| DocChange::Delete { view: "by_id".into(), id: s.clone() }).collect();
    v.commit(commit(Some(1), 2, deletes)).await.unwrap();
    assert!(v.list("by_id", None, None, 10).await.unwrap().is_empty());
}

/// The longest keys round-trip; a byte more, or 1,000 four-byte characters, is refused.
pub async fn view_key_lengths_are_bounded_alike(store: Store) {
    let v = store.views();
    let (view, id, partition, sort_key) = (
        incompressible(MAX_VIEW_BYTES, 1),
        incompressible(MAX_ID_BYTES, 2),
        incompressible(MAX_PARTITION_BYTES, 3),
        incompressible(MAX_SORT_KEY_BYTES, 4),
    );
    v.commit(commit(None, 1, vec![put(&view, &id, &partition, &sort_key, json!({}))])).await.unwrap();
    let d = v.get(&view, &id).await.unwrap().expect("the longest keys are stored");
    assert_eq!((d.partition.as_str(), d.sort_key.as_str()), (partition.as_str(), sort_key.as_str()));
    assert_eq!(v.list(&view, Some(&partition), None, 10).await.unwrap().len(), 1);

    let longer = |s: &str| format!("{s}x");
    let too_long = [
        ("view", put(&longer(&view), "i", "", "", json!({}))),
        ("id", put("v", &longer(&id), "", "", json!({}))),
        ("partition", put("v", "i", &longer(&partition), "", json!({}))),
        ("sort key", put("v", "i", "", &longer(&sort_key), json!({}))),
        ("sort key", put("v", "i", "", &"😀".repeat(1000), json!({}))),
        ("id", DocChange::Delete { view: "v".into(), id: longer(&id) }),
    ];
    for (what, change) in too_long {
        let msg = is_invalid(v.commit(commit(Some(1), 2, vec![change.clone()])).await, what);
        assert!(msg.contains(what) && msg.contains("bytes"), "{what}: {msg}");
    }
    assert_eq!(v.projector_state("strings").await.unwrap().unwrap().position, Position::new(0, 1));
}

/// NUL cannot be stored by PostgreSQL: every backend refuses it in any key or body, before
/// writing any part of the commit, and refuses to look it up.
pub async fn view_nul_is_refused_alike(store: Store) {
    let v = store.views();
    v.commit(commit(None, 1, vec![put("v", "ok", "", "", json!({}))])).await.unwrap();
    let bad = [
        ("id", put("v", "a\u{0}b", "", "", json!({}))),
        ("partition", put("v", "i", "a\u{0}", "", json!({}))),
        ("sort key", put("v", "i", "", "title\u{0}id", json!({}))),
        ("view name", put("v\u{0}", "i", "", "", json!({}))),
        ("body", put("v", "i", "", "", json!({"text": "a\u{0}b"}))),
        ("body", put("v", "i", "", "", json!({"nested": [{"k\u{0}": 1}]}))),
        ("id", DocChange::Delete { view: "v".into(), id: "\u{0}".into() }),
    ];
    for (what, change) in bad {
        let with_good = vec![put("v", "new", "", "", json!({})), change.clone()];
        let msg = is_invalid(v.commit(commit(Some(1), 2, with_good)).await, what);
        assert!(msg.contains(what) && msg.contains("NUL") && !msg.contains('\u{0}'), "{what}: {msg}");
    }
    assert_eq!(v.get("v", "new").await.unwrap(), None, "nothing of a refused commit is written");
    assert_eq!(v.projector_state("strings").await.unwrap().unwrap().position, Position::new(0, 1));

    is_invalid(v.get("v", "a\u{0}").await, "get");
    is_invalid(v.get_many("v", &["ok".into(), "a\u{0}".into()]).await, "get_many");
    is_invalid(v.list("v", Some("\u{0}"), None, 10).await, "list partition");
    is_invalid(v.list("v", None, Some(("\u{0}", "x")), 10).await, "list cursor");

    // Error texts are stored with NUL spelled out, so that parking never fails on them.
    let e = RecordedEvent {
        position: Position::new(0, 2),
        event_id: Uuid::now_v7(),
        stream_id: "x-1".into(),
        stream_version: 0,
        event_type: "Broken".into(),
        schema_version: 1,
        data: json!({}),
        metadata: json!({}),
        recorded_at: Utc::now(),
    };
    let mut c = commit(Some(1), 2, vec![]);
    c.parked = vec![ParkedEvent::new("strings", &e, "bad \u{0} text".into(), 1, Utc::now())];
    v.commit(c).await.unwrap();
    assert_eq!(v.parked("strings", 10).await.unwrap()[0].error, "bad \\u0000 text");
    v.record_error("strings", "failed on \u{0}", Utc::now()).await.unwrap();
    let state = v.projector_state("strings").await.unwrap().unwrap();
    assert_eq!(state.last_error.as_deref(), Some("failed on \\u0000"));
}

/// Bodies come back exactly: awkward strings as values and keys, numbers at the edges,
/// nesting, the text `\u0000` (six characters, not NUL).
pub async fn view_bodies_round_trip(store: Store) {
    let v = store.views();
    let strings = awkward();
    let keyed: serde_json::Map<String, Value> =
        strings.iter().enumerate().map(|(i, s)| (format!("{s}{i}"), json!(s))).collect();
    let bodies = vec![
        json!({ "strings": strings, "keyed": keyed }),
        json!({ "big": u64::MAX, "small": i64::MIN, "zero": 0, "half": 2.5, "neg": -0.125, "one": 1.0 }),
        json!({ "deep": [[[[{ "a": [null, true, false, {}, []] }]]]] }),
        json!({ "long": "ü😀".repeat(20_000) }),
        json!(["not", "an", "object"]),
        json!("just a string \\u0000 \u{1} \u{1f}"),
        json!(null),
    ];
    let changes = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| put("bodies", &format!("b{i}"), "", &format!("{i}"), b.clone()))
        .collect();
    v.commit(commit(None, 1, changes)).await.unwrap();
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(&v.get("bodies", &format!("b{i}")).await.unwrap().unwrap().body, b, "body {i}");
    }
    let listed: Vec<Value> = v.list("bodies", None, None, 100).await.unwrap().into_iter().map(|d| d.body).collect();
    assert_eq!(listed, bodies);
}
