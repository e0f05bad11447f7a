//! The one conformance suite every backend must pass (ARCHITECTURE.md section 3).
//!
//! Each check takes an opened, migrated, empty [`Store`] and panics on a violation. The
//! `conformance_suite!` macro turns them into one `#[tokio::test]` per check for a backend.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{NewEvent, Position, RecordedEvent};
use crate::events::{Direction, EventFilter, EventStore, ExpectedVersion, ReadAll};
use crate::subscribe::Subscription;
use crate::views::{shadow_name, Commit, DocChange, ParkedEvent};
use crate::Store;

fn ev(n: u64) -> NewEvent {
    NewEvent::new("Tested", json!({ "n": n }))
}

fn all(limit: usize) -> ReadAll {
    ReadAll::forward(Position::START, limit)
}

/// Waits until `n` events are visible in the global log. On PostgreSQL a committed event
/// stays invisible while any older transaction in the cluster is still running (other tests
/// share the cluster), which is the very guarantee that keeps readers from skipping it.
pub async fn settle(store: &dyn EventStore, n: u64) {
    for _ in 0..400 {
        if store.count_after(Position::START, u64::MAX).await.unwrap() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} events did not become visible within 10 s");
}

async fn seed(store: &dyn EventStore, stream: &str, count: u64) {
    for n in 0..count {
        store.append(stream, ExpectedVersion::Any, vec![ev(n)]).await.expect("seed append");
    }
}

/// Every expected-version state against an absent stream and a stream at version 1.
pub async fn expected_version_matrix(store: Store) {
    let s = store.events();
    use ExpectedVersion::*;
    let cases: &[(ExpectedVersion, bool, bool)] = &[
        // (expected, ok on absent stream, ok on stream at version 1)
        (Any, true, true),
        (NoStream, true, false),
        (StreamExists, false, true),
        (Exact(0), false, false),
        (Exact(1), false, true),
        (Exact(5), false, false),
    ];
    for (i, &(expected, ok_absent, ok_present)) in cases.iter().enumerate() {
        let absent = format!("absent{i}-1");
        let result = s.append(&absent, expected, vec![ev(0)]).await;
        match (ok_absent, result) {
            (true, Ok(r)) => assert_eq!((r.first_version, r.last_version), (0, 0), "{expected:?} on absent stream"),
            (false, Err(StoreError::WrongExpectedVersion { actual: None, expected: e, .. })) => assert_eq!(e, expected),
            (_, other) => panic!("{expected:?} on absent stream gave {other:?}"),
        }

        let present = format!("present{i}-1");
        seed(s.as_ref(), &present, 2).await;
        let result = s.append(&present, expected, vec![ev(2), ev(3)]).await;
        match (ok_present, result) {
            (true, Ok(r)) => assert_eq!((r.first_version, r.last_version), (2, 3), "{expected:?} on stream at 1"),
            (false, Err(StoreError::WrongExpectedVersion { actual: Some(1), .. })) => {}
            (_, other) => panic!("{expected:?} on stream at 1 gave {other:?}"),
        }
        let expected_len = if ok_present { 4 } else { 2 };
        assert_eq!(s.read_stream(&present, 0, Direction::Forward, 100).await.unwrap().len(), expected_len);
        assert_eq!(s.stream_version(&present).await.unwrap(), Some(expected_len as u64 - 1));
    }
    assert_eq!(s.stream_version("nothing-here").await.unwrap(), None);
}

/// N writers race for each version of one stream: exactly one wins, the others are told
/// the actual version, and nothing is lost or duplicated.
pub async fn concurrent_writers_one_winner_per_version(store: Store) {
    let s = store.events();
    const WRITERS: usize = 8;
    const ROUNDS: u64 = 10;
    s.append("race-1", ExpectedVersion::NoStream, vec![ev(0)]).await.unwrap();
    for round in 0..ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (s, barrier) = (s.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.append("race-1", ExpectedVersion::Exact(round), vec![ev(w as u64)]).await
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => {
                    wins += 1;
                    assert_eq!(r.last_version, round + 1);
                }
                Err(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, Some(round + 1)),
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(wins, 1, "round {round}: exactly one writer must win");
    }
    let events = s.read_stream("race-1", 0, Direction::Forward, 1000).await.unwrap();
    assert_eq!(events.len() as u64, ROUNDS + 1);
    assert!(events.iter().enumerate().all(|(i, e)| e.stream_version == i as u64));
}

/// Concurrent `Any` appends all land: none is silently dropped.
pub async fn concurrent_any_appends_all_land(store: Store) {
    let s = store.events();
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move { s.append("any-1", ExpectedVersion::Any, vec![ev(n), ev(n + 100)]).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("Any never conflicts");
    }
    let events = s.read_stream("any-1", 0, Direction::Forward, 1000).await.unwrap();
    assert_eq!(events.len(), 40);
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (0..40).collect::<Vec<_>>());
    // Each append's two events are adjacent: appends are atomic.
    for pair in events.chunks(2) {
        assert_eq!(pair[0].data["n"].as_u64().unwrap() + 100, pair[1].data["n"].as_u64().unwrap());
    }
}

/// A burst of appends, some refused: every accepted one lands whole with the time reads show,
/// no refused one writes anything (an embedded store may commit a burst together).
pub async fn refused_appends_in_a_burst_leave_the_others(store: Store) {
    let s = store.events();
    let tasks: Vec<_> = (0..40u64)
        .map(|n| {
            let s = s.clone();
            // Every fourth expects a version its stream does not have.
            let expected = if n % 4 == 0 { ExpectedVersion::Exact(7) } else { ExpectedVersion::NoStream };
            tokio::spawn(async move { (n, s.append(&format!("burst-{n}"), expected, vec![ev(n), ev(n)]).await) })
        })
        .collect();
    for t in tasks {
        let (n, result) = t.await.unwrap();
        let stored = s.read_stream(&format!("burst-{n}"), 0, Direction::Forward, 10).await.unwrap();
        if n % 4 == 0 {
            assert!(matches!(result, Err(StoreError::WrongExpectedVersion { .. })), "{n}: {result:?}");
            assert!(stored.is_empty(), "a refused append writes nothing");
        } else {
            let r = result.expect("an append expecting a new stream lands");
            assert_eq!((r.first_version, r.last_version, stored.len()), (0, 1, 2));
            assert_eq!((r.position, r.recorded_at), (stored[1].position, stored[1].recorded_at));
        }
    }
}

/// Same ids, same place: the original result. Same ids elsewhere: a conflict.
pub async fn idempotent_retry_by_event_id(store: Store) {
    let s = store.events();
    let batch = vec![ev(1), ev(2)];
    let first = s.append("idem-1", ExpectedVersion::NoStream, batch.clone()).await.unwrap();
    let again = s.append("idem-1", ExpectedVersion::NoStream, batch.clone()).await.unwrap();
    assert_eq!(first, again, "a retry returns the original result (time included)");
    let again_any = s.append("idem-1", ExpectedVersion::Any, batch.clone()).await.unwrap();
    assert_eq!(first, again_any);
    assert_eq!(s.read_stream("idem-1", 0, Direction::Forward, 10).await.unwrap().len(), 2, "nothing written twice");

    let dup = |r: Result<_, StoreError>| matches!(r, Err(StoreError::DuplicateEventId { .. }));
    assert!(dup(s.append("idem-2", ExpectedVersion::Any, batch.clone()).await), "same ids in another stream");
    assert!(dup(s.append("idem-1", ExpectedVersion::Exact(5), batch.clone()).await), "same ids at other versions");
    let reversed = vec![batch[1].clone(), batch[0].clone()];
    assert!(dup(s.append("idem-1", ExpectedVersion::Any, reversed).await), "same ids in another order");
    let partial = vec![batch[0].clone(), ev(3)];
    assert!(dup(s.append("idem-1", ExpectedVersion::Any, partial).await), "partly stored batch");
    assert_eq!(s.read_stream("idem-1", 0, Direction::Forward, 10).await.unwrap().len(), 2);
    assert_eq!(s.stream_version("idem-2").await.unwrap(), None, "a refused append writes nothing");

    // The stream moved on: the retry still gets its own original result.
    s.append("idem-1", ExpectedVersion::Exact(1), vec![ev(4)]).await.unwrap();
    assert_eq!(s.append("idem-1", ExpectedVersion::NoStream, batch).await.unwrap(), first);
}

/// Bad appends are refused without writing anything.
pub async fn invalid_appends_are_refused(store: Store) {
    let s = store.events();
    let invalid = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Invalid(_)));
    assert!(invalid(s.append("empty-1", ExpectedVersion::Any, vec![]).await));
    assert!(invalid(s.append("", ExpectedVersion::Any, vec![ev(0)]).await));
    assert!(invalid(s.append("has space", ExpectedVersion::Any, vec![ev(0)]).await));
    let e = ev(0);
    assert!(invalid(s.append("twice-1", ExpectedVersion::Any, vec![e.clone(), e]).await));
    let nul = NewEvent::new("Said", json!({"text": "a\u{0}b"}));
    assert!(invalid(s.append("nul-1", ExpectedVersion::Any, vec![nul]).await), "NUL is refused on every backend");
    let nul_key = NewEvent::new("Said", json!({"nested": [{"k\u{0}": 1}]}));
    assert!(invalid(s.append("nul-1", ExpectedVersion::Any, vec![nul_key]).await));
    assert_eq!(s.head().await.unwrap(), None);
}

/// Envelopes round-trip exactly, including imported timestamps and metadata.
pub async fn envelopes_round_trip(store: Store) {
    let s = store.events();
    let at = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 58).unwrap() + chrono::Duration::microseconds(123_456);
    let mut e = NewEvent::new("ChannelCreated", json!({"name": "Ünïcode ✓", "n": [1, 2.5, null]}))
        .with_metadata(json!({"actor": {"kind": "system", "id": null}, "correlation_id": Uuid::now_v7()}));
    e.schema_version = 3;
    e.recorded_at = Some(at);
    let before = Utc::now();
    s.append("channel-1", ExpectedVersion::NoStream, vec![e.clone(), ev(1)]).await.unwrap();
    let got = s.read_stream("channel-1", 0, Direction::Forward, 10).await.unwrap();
    assert_eq!(got[0].event_id, e.event_id);
    assert_eq!(got[0].event_type, "ChannelCreated");
    assert_eq!(got[0].schema_version, 3);
    assert_eq!(got[0].data, e.data);
    assert_eq!(got[0].metadata, e.metadata);
    assert_eq!(got[0].recorded_at, at, "an imported timestamp is kept to the microsecond");
    assert_eq!(got[0].category(), "channel");
    assert!(got[1].recorded_at >= before - chrono::Duration::seconds(5), "new events get the commit time");
}

/// One stream, forward and backward, with bounds and limits.
pub async fn read_stream_both_ways(store: Store) {
    let s = store.events();
    seed(s.as_ref(), "order-1", 10).await;
    seed(s.as_ref(), "other-1", 3).await;
    let versions = |v: Vec<RecordedEvent>| v.iter().map(|e| e.stream_version).collect::<Vec<_>>();
    assert_eq!(
        versions(s.read_stream("order-1", 0, Direction::Forward, 100).await.unwrap()),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(versions(s.read_stream("order-1", 7, Direction::Forward, 100).await.unwrap()), vec![7, 8, 9]);
    assert_eq!(versions(s.read_stream("order-1", 2, Direction::Forward, 2).await.unwrap()), vec![2, 3]);
    assert_eq!(versions(s.read_stream("order-1", u64::MAX, Direction::Backward, 3).await.unwrap()), vec![9, 8, 7]);
    assert_eq!(versions(s.read_stream("order-1", 1, Direction::Backward, 5).await.unwrap()), vec![1, 0]);
    assert!(s.read_stream("order-1", 10, Direction::Forward, 5).await.unwrap().is_empty());
    assert!(s.read_stream("missing-1", 0, Direction::Forward, 5).await.unwrap().is_empty());
}

/// The global log: order, pagination both ways, filters, head and counts.
pub async fn read_all_pages_and_filters(store: Store) {
    let s = store.events();
    for n in 0..30u64 {
        let stream = format!("{}-{}", ["alpha", "beta", "gamma"][(n % 3) as usize], n % 2);
        let mut e = ev(n);
        e.event_type = if n % 5 == 0 { "Fifth".into() } else { "Tested".into() };
        s.append(&stream, ExpectedVersion::Any, vec![e]).await.unwrap();
    }
    settle(s.as_ref(), 30).await;
    let everything = s.read_all(&all(1000)).await.unwrap();
    assert_eq!(everything.len(), 30);
    assert!(everything.windows(2).all(|w| w[0].position < w[1].position), "strictly increasing positions");
    assert_eq!(
        everything.iter().map(|e| e.data["n"].as_u64().unwrap()).collect::<Vec<_>>(),
        (0..30).collect::<Vec<_>>()
    );
    assert_eq!(s.head().await.unwrap(), Some(everything[29].position));
    assert_eq!(s.count_after(Position::START, 1000).await.unwrap(), 30);
    assert_eq!(s.count_after(everything[9].position, 1000).await.unwrap(), 20);
    assert_eq!(s.count_after(everything[9].position, 5).await.unwrap(), 5, "counting stops at the cap");

    // Forward pages of 7 cover everything once.
    let mut seen = Vec::new();
    let mut after = Position::START;
    loop {
        let page = s.read_all(&ReadAll::forward(after, 7)).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        seen.extend(page.into_iter().map(|e| e.event_id));
    }
    assert_eq!(seen, everything.iter().map(|e| e.event_id).collect::<Vec<_>>());

    // Backward pages, newest first.
    let mut back = Vec::new();
    let mut before = None;
    loop {
        let q = ReadAll { from: before, direction: Direction::Backward, limit: 4, filter: EventFilter::default() };
        let page = s.read_all(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.position);
        back.extend(page.into_iter().map(|e| e.event_id));
    }
    back.reverse();
    assert_eq!(back, seen);

    // Inclusive start: reading after `just_before(p)` starts at p.
    let from_tenth = s.read_all(&ReadAll::forward(everything[10].position.just_before(), 1)).await.unwrap();
    assert_eq!(from_tenth[0].event_id, everything[10].event_id);

    let filtered = |filter: EventFilter| {
        let s = s.clone();
        async move { s.read_all(&ReadAll { filter, ..all(1000) }).await.unwrap() }
    };
    let by_category = filtered(EventFilter { category: Some("beta".into()), ..Default::default() }).await;
    assert_eq!(by_category.len(), 10);
    assert!(by_category.iter().all(|e| e.stream_id.starts_with("beta-")));
    let by_stream = filtered(EventFilter { stream: Some("gamma-1".into()), ..Default::default() }).await;
    assert_eq!(by_stream.len(), 5);
    assert!(by_stream.iter().all(|e| e.stream_id == "gamma-1"));
    let by_type = filtered(EventFilter { event_types: vec!["Fifth".into()], ..Default::default() }).await;
    assert_eq!(by_type.iter().map(|e| e.data["n"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 5, 10, 15, 20, 25]);
    let both = filtered(EventFilter {
        category: Some("alpha".into()),
        event_types: vec!["Fifth".into(), "Nope".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(both.iter().map(|e| e.data["n"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 15]);
}

/// A subscription catches up on history, then tails concurrent writers with no gap,
/// duplicate or reordering.
pub async fn subscription_catches_up_then_tails(store: Store) {
    let s = store.events();
    seed(s.as_ref(), "history-1", 50).await;
    let mut sub = Subscription::new(s.clone(), Position::START, EventFilter::default())
        .batch_size(16)
        .poll_interval(Duration::from_millis(20));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                for n in 0..50u64 {
                    s.append(&format!("live{w}-1"), ExpectedVersion::Any, vec![ev(n)]).await.unwrap();
                    if n % 10 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let mut delivered = Vec::new();
    while delivered.len() < 250 {
        let e = tokio::time::timeout(Duration::from_secs(20), sub.next()).await.expect("subscription stalled").unwrap();
        delivered.push(e);
    }
    for w in writers {
        w.await.unwrap();
    }
    let log = s.read_all(&all(1000)).await.unwrap();
    assert_eq!(
        delivered.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        log.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        "the subscription delivers exactly the log, in order"
    );
    assert_eq!(delivered.iter().map(|e| e.event_id).collect::<HashSet<_>>().len(), 250);
    // Nothing more is pending.
    assert!(tokio::time::timeout(Duration::from_millis(100), sub.next()).await.is_err());
    // A filtered subscription sees only its category.
    let mut cat = Subscription::new(
        s.clone(),
        Position::START,
        EventFilter { category: Some("live2".into()), ..Default::default() },
    );
    let batch = cat.next_batch().await.unwrap();
    assert!(!batch.is_empty() && batch.iter().all(|e| e.stream_id == "live2-1"));
}

fn put(view: &str, id: &str, partition: &str, sort_key: &str, n: u64) -> DocChange {
    DocChange::Put {
        view: view.into(),
        id: id.into(),
        partition: partition.into(),
        sort_key: sort_key.into(),
        body: json!({ "n": n }),
    }
}

fn commit(projector: &str, expected: Option<u64>, to: u64, changes: Vec<DocChange>) -> Commit {
    Commit {
        projector: projector.into(),
        projector_version: 1,
        expected: expected.map(|p| Position::new(0, p)),
        checkpoint: Position::new(0, to),
        last_event_at: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
        changes,
        parked: vec![],
        now: Utc::now(),
    }
}

/// Documents: put, update (version bump), delete, get, get_many, keyset listing.
pub async fn view_documents(store: Store) {
    let v = store.views();
    let changes = (0..25)
        .map(|i| put("things", &format!("t{i:02}"), ["even", "odd"][i % 2], &format!("k{:02}", 24 - i), i as u64))
        .collect();
    v.commit(commit("p", None, 25, changes)).await.unwrap();
    let d = v.get("things", "t03").await.unwrap().unwrap();
    assert_eq!(
        (d.partition.as_str(), d.sort_key.as_str(), d.body["n"].as_u64(), d.version),
        ("odd", "k21", Some(3), 1)
    );
    assert_eq!(v.get("things", "nope").await.unwrap(), None);
    assert_eq!(v.get("other", "t03").await.unwrap(), None);

    v.commit(commit(
        "p",
        Some(25),
        26,
        vec![put("things", "t03", "odd", "k21", 99), DocChange::Delete { view: "things".into(), id: "t04".into() }],
    ))
    .await
    .unwrap();
    let d = v.get("things", "t03").await.unwrap().unwrap();
    assert_eq!((d.body["n"].as_u64(), d.version), (Some(99), 2));
    assert_eq!(v.get("things", "t04").await.unwrap(), None);

    let mut many = v.get_many("things", &["t01".into(), "t04".into(), "t05".into()]).await.unwrap();
    many.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(many.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), vec!["t01", "t05"]);

    // Keyset pages over one partition, ordered by sort key.
    let mut ids = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page =
            v.list("things", Some("odd"), after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())), 5).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.sort_key.clone(), last.id.clone()));
        ids.extend(page.into_iter().map(|d| d.id));
    }
    let expected: Vec<String> = (0..25).rev().filter(|i| i % 2 == 1).map(|i| format!("t{i:02}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(v.list("things", None, None, 100).await.unwrap().len(), 24);
}

/// Documents and checkpoint are written together or not at all.
pub async fn view_commit_is_atomic_with_checkpoint(store: Store) {
    let v = store.views();
    v.commit(commit("p", None, 10, vec![put("things", "a", "", "a", 1)])).await.unwrap();
    // A commit from a runner that believes in another checkpoint writes nothing.
    let stale =
        v.commit(commit("p", Some(5), 20, vec![put("things", "b", "", "b", 2), put("things", "a", "", "a", 9)])).await;
    assert!(matches!(stale, Err(StoreError::Busy(_))), "got {stale:?}");
    assert_eq!(v.get("things", "b").await.unwrap(), None);
    assert_eq!(v.get("things", "a").await.unwrap().unwrap().body["n"], 1);
    let none_expected = v.commit(commit("p", None, 30, vec![put("things", "c", "", "c", 3)])).await;
    assert!(none_expected.is_err());
    assert_eq!(v.get("things", "c").await.unwrap(), None);
    let state = v.projector_state("p").await.unwrap().unwrap();
    assert_eq!(state.position, Position::new(0, 10));
    assert_eq!(state.projector_version, 1);
    assert_eq!(v.projector_state("q").await.unwrap(), None);

    // Parked events are written with the checkpoint and counted.
    let e = RecordedEvent {
        position: Position::new(0, 11),
        event_id: Uuid::now_v7(),
        stream_id: "x-1".into(),
        stream_version: 0,
        event_type: "Broken".into(),
        schema_version: 1,
        data: json!({}),
        metadata: json!({}),
        recorded_at: Utc::now(),
    };
    let mut c = commit("p", Some(10), 11, vec![]);
    c.parked = vec![ParkedEvent::new("p", &e, "missing field `name`".into(), 3, Utc::now())];
    v.commit(c).await.unwrap();
    let parked = v.parked("p", 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].stream_id.as_str(), parked[0].position, parked[0].attempts), ("x-1", e.position, 3));
    assert_eq!(parked[0].error, "missing field `name`");
    let state = v.projector_state("p").await.unwrap().unwrap();
    assert_eq!((state.position, state.parked), (Position::new(0, 11), 1));

    let later = Utc::now() + chrono::Duration::seconds(5);
    v.heartbeat("p", later).await.unwrap();
    let beat = v.projector_state("p").await.unwrap().unwrap().heartbeat_at;
    assert!((beat - later).num_milliseconds().abs() < 2, "heartbeat stored");
}

/// A shadow copy replaces the live documents, checkpoint and parked events in one step.
pub async fn view_shadow_swap(store: Store) {
    let v = store.views();
    v.commit(commit("p", None, 5, vec![put("things", "old", "", "a", 1), put("things", "both", "", "b", 1)]))
        .await
        .unwrap();
    v.commit(commit("other", None, 5, vec![put("unrelated", "u", "", "u", 1)])).await.unwrap();
    let shadow = shadow_name("p");
    let view = shadow_name("things");
    v.commit(commit(&shadow, None, 9, vec![put(&view, "both", "", "b", 2), put(&view, "new", "", "c", 2)]))
        .await
        .unwrap();
    assert_eq!(v.list("things", None, None, 10).await.unwrap().len(), 2, "the live view is untouched while rebuilding");

    v.swap_shadow("p", &["things"]).await.unwrap();
    let live: Vec<_> = v
        .list("things", None, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.body["n"].as_u64().unwrap()))
        .collect();
    assert_eq!(live, vec![("both".to_string(), 2), ("new".to_string(), 2)]);
    assert!(v.list(&view, None, None, 10).await.unwrap().is_empty());
    assert_eq!(v.projector_state("p").await.unwrap().unwrap().position, Position::new(0, 9));
    assert_eq!(v.projector_state(&shadow).await.unwrap(), None);
    assert_eq!(v.list("unrelated", None, None, 10).await.unwrap().len(), 1);

    v.reset("p", &["things"]).await.unwrap();
    assert!(v.list("things", None, None, 10).await.unwrap().is_empty());
    assert_eq!(v.projector_state("p").await.unwrap(), None);
}

/// Only one owner per projector at a time; dropping the ownership frees it.
pub async fn view_single_owner(store: Store) {
    let v = store.views();
    let first = v.try_own("p").await.unwrap().expect("free at first");
    assert!(first.is_alive());
    assert!(v.try_own("p").await.unwrap().is_none(), "a second owner is refused");
    let other = v.try_own("q").await.unwrap();
    assert!(other.is_some(), "projectors are owned independently");
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        again = v.try_own("p").await.unwrap();
        if again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "released after drop");
}

/// Activity: the latest time wins, whatever order the touches arrive in.
pub async fn view_activity(store: Store) {
    let v = store.views();
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
    assert_eq!(v.last_touched("user-1").await.unwrap(), None);
    v.touch("user-1", t0).await.unwrap();
    v.touch("user-1", t0 + chrono::Duration::seconds(90)).await.unwrap();
    v.touch("user-1", t0 + chrono::Duration::seconds(30)).await.unwrap();
    assert_eq!(v.last_touched("user-1").await.unwrap(), Some(t0 + chrono::Duration::seconds(90)));
    assert_eq!(v.last_touched("user-2").await.unwrap(), None);
}

/// A runner's last error is kept with its checkpoint (every node and the CLI see it) until
/// its next successful commit; a projector without a checkpoint has nowhere to keep one.
pub async fn view_last_error_is_kept_until_the_next_commit(store: Store) {
    let v = store.views();
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap() + chrono::Duration::microseconds(7);
    v.record_error("p", "nowhere to keep it", at).await.unwrap();
    assert_eq!(v.projector_state("p").await.unwrap(), None, "recording an error creates no checkpoint");

    v.commit(commit("p", None, 1, vec![])).await.unwrap();
    let fresh = v.projector_state("p").await.unwrap().unwrap();
    assert_eq!((fresh.last_error, fresh.last_error_at), (None, None));
    v.record_error("p", "database error: connection refused", at).await.unwrap();
    v.heartbeat("p", Utc::now()).await.unwrap();
    let failing = v.projector_state("p").await.unwrap().unwrap();
    assert_eq!(failing.last_error.as_deref(), Some("database error: connection refused"));
    assert_eq!(failing.last_error_at, Some(at));
    assert_eq!(failing.position, Position::new(0, 1), "recording an error moves nothing");
    assert_eq!(v.projector_state("q").await.unwrap(), None);

    v.commit(commit("p", Some(1), 2, vec![])).await.unwrap();
    let recovered = v.projector_state("p").await.unwrap().unwrap();
    assert_eq!((recovered.last_error, recovered.last_error_at), (None, None), "a successful commit clears it");
}

/// Generates one test per conformance check for a backend (this module's and
/// [`super::view_strings`]'s).
///
/// `$open` is an async expression giving `Option<Store>` (None: backend unavailable, skip).
#[macro_export]
macro_rules! conformance_suite {
    ($open:expr) => {
        $crate::conformance_suite!(@tests $open; conformance;
            expected_version_matrix, concurrent_writers_one_winner_per_version, concurrent_any_appends_all_land,
            refused_appends_in_a_burst_leave_the_others,
            idempotent_retry_by_event_id, invalid_appends_are_refused, envelopes_round_trip, read_stream_both_ways,
            read_all_pages_and_filters, subscription_catches_up_then_tails, view_documents,
            view_commit_is_atomic_with_checkpoint, view_shadow_swap, view_single_owner, view_activity,
            view_last_error_is_kept_until_the_next_commit);
        $crate::conformance_suite!(@tests $open; view_strings;
            view_keys_round_trip_in_byte_order, view_key_lengths_are_bounded_alike, view_nul_is_refused_alike,
            view_bodies_round_trip);
    };
    (@tests $open:expr; $module:ident; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(store) = $open else { return };
                $crate::testkit::$module::$name(store).await;
            }
        )*
    };
}
