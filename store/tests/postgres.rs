//! PostgreSQL-specific regression tests against a real server (see `store::testkit::pg`):
//! the horizon (an append held open, a rolled-back append, unrelated transactions in this
//! and another database), projector ownership, migrations and crash safety.
//!
//! Skipped (with a message) when no PostgreSQL is available, unless `LIVECHAT_REQUIRE_PG=1`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use serde_json::json;
use store::postgres::PgStore;
use store::testkit::pg::fresh_database;
use store::views::shadow_name;
use store::{
    Commit, Direction, DocChange, EventFilter, EventStore, ExpectedVersion, NewEvent, ParkedEvent, Position, ReadAll,
    RecordedEvent, StoreError, Subscription, ViewStore,
};
use tokio::time::timeout;
use tokio_postgres::NoTls;
use uuid::Uuid;

/// Generous bound for anything that must happen: other tests share the machine.
const LONG: Duration = Duration::from_secs(30);

/// The horizon tests hold transactions open on purpose: run them one at a time so that one
/// test's open transaction never explains another test's observation.
static HORIZON: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn open(url: &str) -> PgStore {
    let store = PgStore::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("raw connection");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn ev(event_type: &str) -> NewEvent {
    NewEvent::new(event_type, json!({ "type": event_type }))
}

fn ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

/// Appends one event with the store's own statement inside the caller's open transaction.
async fn append_held(tx: &tokio_postgres::Transaction<'_>, stream: &str, id: Uuid) {
    let empty = serde_json::json!({});
    tx.query_one(
        store::postgres::APPEND,
        &[
            &stream,
            &0i32,
            &None::<i64>,
            &vec![id],
            &vec!["Held"],
            &vec![1i32],
            &vec![&empty],
            &vec![&empty],
            &vec![chrono::Utc::now()],
        ],
    )
    .await
    .expect("held append");
}

/// Every event `read_all` returns now, page by page.
async fn visible(store: &PgStore) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.read_all(&ReadAll::forward(after, 97)).await.expect("read_all");
        let Some(last) = page.last() else { return all };
        after = last.position;
        all.extend(page);
    }
}

/// Polls `read_all` until it shows `n` events.
async fn wait_visible(store: &PgStore, n: usize) -> Vec<RecordedEvent> {
    let deadline = Instant::now() + LONG;
    loop {
        let all = visible(store).await;
        if all.len() >= n || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// B must stay out of the global log (and the subscription) for a while.
async fn assert_stays_hidden(store: &PgStore, sub: &mut Subscription, why: &str) {
    for _ in 0..5 {
        assert_eq!(ids(&visible(store).await), Vec::<Uuid>::new(), "read_all delivered B while {why}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(store.head().await.unwrap(), None, "head showed B while {why}");
    assert_eq!(store.count_after(Position::START, 100).await.unwrap(), 0, "count_after counted B while {why}");
    if let Ok(e) = timeout(Duration::from_millis(400), sub.next()).await {
        panic!("the subscription delivered {e:?} while {why}");
    }
}

fn subscribe(store: &PgStore) -> Subscription {
    Subscription::new(Arc::new(store.clone()), Position::START, EventFilter::default())
        .poll_interval(Duration::from_millis(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_held_open_is_neither_skipped_nor_overtaken() {
    let Some(url) = fresh_database().await else { return };
    let _serial = HORIZON.lock().await;
    let store = open(&url).await;
    let mut sub = subscribe(&store);

    // `early` gets its transaction id first but inserts last (taking the appenders' lock
    // first, as a transaction must that does anything before appending); `held` appends
    // before B.
    let (mut c1, mut c2) = (raw(&url).await, raw(&url).await);
    let early = c1.transaction().await.unwrap();
    early.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&store::postgres::APPEND_LOCK]).await.unwrap();
    early.query_one("SELECT pg_current_xact_id()", &[]).await.unwrap();
    let held = c2.transaction().await.unwrap();
    let a = Uuid::now_v7();
    append_held(&held, "held-1", a).await;

    let b = ev("B");
    let b_id = b.event_id;
    let b_at = store.append("other-1", ExpectedVersion::NoStream, vec![b]).await.unwrap();
    // B is committed, and its own stream shows it at once...
    assert_eq!(ids(&store.read_stream("other-1", 0, Direction::Forward, 10).await.unwrap()), vec![b_id]);
    assert_eq!(store.stream_version("other-1").await.unwrap(), Some(0));
    // ...but the global log must not: A, still in flight, will come before it.
    assert_stays_hidden(&store, &mut sub, "an older append was in flight").await;

    let e = Uuid::now_v7();
    append_held(&early, "early-1", e).await;
    // A commits, but a still older transaction may yet commit before both.
    held.commit().await.unwrap();
    assert_stays_hidden(&store, &mut sub, "the oldest transaction was in flight").await;

    early.commit().await.unwrap();
    let mut delivered = Vec::new();
    for _ in 0..3 {
        delivered.push(timeout(LONG, sub.next()).await.expect("an event was never delivered").unwrap());
    }
    // Transaction order, not position order: E has the highest global_position.
    assert_eq!(ids(&delivered), vec![e, a, b_id], "delivered out of transaction order");
    assert!(delivered[0].position < delivered[1].position && delivered[1].position < delivered[2].position);
    assert_eq!(delivered[2].position, b_at.position, "the append reported B's position");
    assert_eq!(ids(&visible(&store).await), vec![e, a, b_id]);
    assert_eq!(store.head().await.unwrap(), Some(b_at.position));
    assert_eq!(store.count_after(Position::START, 100).await.unwrap(), 3);
    assert_eq!(store.count_after(delivered[0].position, 100).await.unwrap(), 2);
    assert_eq!(ids(&store.read_all(&ReadAll::forward(delivered[0].position, 100)).await.unwrap()), vec![a, b_id]);
    let backward = ReadAll { from: None, direction: Direction::Backward, limit: 10, filter: EventFilter::default() };
    assert_eq!(ids(&store.read_all(&backward).await.unwrap()), vec![b_id, a, e]);
    let before_b = ReadAll { from: Some(b_at.position), ..backward };
    assert_eq!(ids(&store.read_all(&before_b).await.unwrap()), vec![a, e]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_append_leaves_no_trace() {
    let Some(url) = fresh_database().await else { return };
    let _serial = HORIZON.lock().await;
    let store = open(&url).await;
    let mut sub = subscribe(&store);

    let mut client = raw(&url).await;
    let held = client.transaction().await.unwrap();
    let a = Uuid::now_v7();
    append_held(&held, "held-1", a).await;
    let b = ev("B");
    let b_id = b.event_id;
    store.append("other-1", ExpectedVersion::NoStream, vec![b]).await.unwrap();
    assert_stays_hidden(&store, &mut sub, "an older append was in flight").await;

    assert!(store.horizon_age().await.unwrap().unwrap() > 0.0, "the held append holds the horizon");
    held.rollback().await.unwrap();
    // The rollback releases the horizon at once.
    let rolled_back = Instant::now();
    let first = timeout(LONG, sub.next()).await.expect("B was never delivered").unwrap();
    assert!(rolled_back.elapsed() < Duration::from_millis(200), "took {:?}", rolled_back.elapsed());
    assert_eq!(first.event_id, b_id);
    assert!(store.horizon_age().await.unwrap().unwrap() < 0.3, "released with the rollback");
    assert_eq!(ids(&visible(&store).await), vec![b_id]);
    assert!(timeout(Duration::from_millis(300), sub.next()).await.is_err(), "something of A was delivered");
    assert_eq!(store.read_stream("held-1", 0, Direction::Forward, 10).await.unwrap(), vec![]);
    assert_eq!(store.stream_version("held-1").await.unwrap(), None);
    // Neither its stream version nor its event id are taken.
    let again = store.append("held-1", ExpectedVersion::NoStream, vec![ev("A2")]).await.unwrap();
    assert_eq!(again.first_version, 0);
    let reuse = NewEvent { event_id: a, ..ev("A3") };
    store.append("elsewhere-1", ExpectedVersion::NoStream, vec![reuse]).await.unwrap();
}

/// A writing transaction that has nothing to do with events, held open on `url` with
/// `pg_sleep` (as a slow batch job would) until cancelled; its backend's pid.
async fn unrelated_writer(url: &str, table: &str) -> i32 {
    let client = raw(url).await;
    client.batch_execute(&format!("CREATE TABLE IF NOT EXISTS {table} (x int)")).await.unwrap();
    let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let sql = format!("BEGIN; INSERT INTO {table} VALUES (1); SELECT pg_sleep(10); COMMIT");
    tokio::spawn(async move {
        // Cancelled at the end of the test: the error is expected.
        let _ = client.batch_execute(&sql).await;
    });
    pid
}

/// Waits until the backend `pid` runs a transaction holding an xid (so it is in every
/// snapshot's list of running transactions); the seconds it has been running.
async fn holds_an_xid(admin: &tokio_postgres::Client, pid: i32) -> f64 {
    let deadline = Instant::now() + LONG;
    loop {
        let row = admin
            .query_opt(
                "SELECT extract(epoch FROM clock_timestamp() - xact_start)::float8 FROM pg_stat_activity
                 WHERE pid = $1 AND backend_xid IS NOT NULL",
                &[&pid],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            return row.get(0);
        }
        assert!(Instant::now() < deadline, "backend {pid} never got a transaction id");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Appends one event and measures how long the subscription takes to yield it after the ack.
async fn delivery_delay(store: &PgStore, sub: &mut Subscription, stream: &str) -> Duration {
    let e = ev("B");
    let id = e.event_id;
    store.append(stream, ExpectedVersion::NoStream, vec![e]).await.unwrap();
    let acked = Instant::now();
    let got = timeout(LONG, sub.next()).await.expect("the event was never delivered").unwrap();
    let delay = acked.elapsed();
    assert_eq!(got.event_id, id);
    delay
}

/// Issue 14: a writing transaction anywhere in the cluster (another database, or an
/// unrelated table of this one) used to hold back every delivery until it ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrelated_writing_transactions_do_not_delay_delivery() {
    let Some(url) = fresh_database().await else { return };
    let Some(other_url) = fresh_database().await else { return };
    let _serial = HORIZON.lock().await;
    let store = open(&url).await;
    let mut sub = subscribe(&store);
    let admin = raw(&url).await;

    let elsewhere = unrelated_writer(&other_url, "busy").await;
    let here = unrelated_writer(&url, "unrelated").await;
    holds_an_xid(&admin, elsewhere).await;
    holds_an_xid(&admin, here).await;
    // Both are older than any event appended from now on.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut delays = Vec::new();
    for i in 0..5 {
        delays.push(delivery_delay(&store, &mut sub, &format!("new-{i}")).await);
    }
    eprintln!("delivery delays with unrelated writers open: {delays:?}");
    let slowest = delays.iter().max().copied().unwrap();
    assert!(slowest < Duration::from_millis(200), "deliveries took {delays:?}");
    // Still running: they were open the whole time.
    assert!(holds_an_xid(&admin, elsewhere).await >= 0.5);
    assert!(holds_an_xid(&admin, here).await >= 0.5);
    assert_eq!(visible(&store).await.len(), 5);
    assert!(store.head().await.unwrap().is_some());
    assert_eq!(store.count_after(Position::START, 100).await.unwrap(), 5);
    // Nothing of ours is in flight: the horizon is not held back.
    let age = store.horizon_age().await.unwrap().expect("PostgreSQL has a horizon");
    assert!(age < 0.3, "unrelated transactions counted in the horizon's age: {age} s");

    for pid in [elsewhere, here] {
        admin.execute("SELECT pg_cancel_backend($1)", &[&pid]).await.unwrap();
    }
}

/// The other side of the same coin: an append held open for seconds still holds back every
/// later event, which is delivered after it, never before and never skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_held_for_seconds_holds_back_later_events_until_it_commits() {
    let Some(url) = fresh_database().await else { return };
    let _serial = HORIZON.lock().await;
    let store = open(&url).await;
    let mut sub = subscribe(&store);

    let mut client = raw(&url).await;
    let held = client.transaction().await.unwrap();
    let a = Uuid::now_v7();
    append_held(&held, "held-1", a).await;
    let mut later = Vec::new();
    for i in 0..3 {
        let e = ev("B");
        later.push(e.event_id);
        store.append(&format!("later-{i}"), ExpectedVersion::NoStream, vec![e]).await.unwrap();
    }
    let open_for = Duration::from_secs(3);
    let since = Instant::now();
    if let Ok(e) = timeout(open_for, sub.next()).await {
        panic!("the subscription delivered {e:?} while an older append was in flight");
    }
    assert_stays_hidden(&store, &mut sub, "an older append was in flight").await;
    let age = store.horizon_age().await.unwrap().unwrap();
    assert!(age >= since.elapsed().as_secs_f64() - 0.1, "the held append's age is reported: {age} s");

    held.commit().await.unwrap();
    let committed = Instant::now();
    let mut delivered = Vec::new();
    for _ in 0..4 {
        delivered.push(timeout(LONG, sub.next()).await.expect("an event was never delivered").unwrap());
    }
    assert!(committed.elapsed() < Duration::from_millis(500), "took {:?} after the commit", committed.elapsed());
    let mut expected = vec![a];
    expected.extend(later);
    assert_eq!(ids(&delivered), expected, "the held append comes first, nothing is skipped");
    assert_eq!(ids(&visible(&store).await), expected);
    assert!(store.horizon_age().await.unwrap().unwrap() < 0.3, "released with the commit");
}

/// An append must hold the appenders' lock before its transaction has an id: a transaction
/// that wrote something else first is refused instead of being overtaken unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_after_another_write_in_its_transaction_is_refused() {
    let Some(url) = fresh_database().await else { return };
    let store = open(&url).await;
    let mut client = raw(&url).await;
    client.batch_execute("CREATE TABLE elsewhere (x int)").await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO elsewhere VALUES (1)", &[]).await.unwrap();
    let err = tx
        .query(
            store::postgres::APPEND_ONE,
            &[&"late-1", &0i32, &None::<i64>, &Uuid::now_v7(), &"Late", &1i32, &json!({}), &json!({}), &Utc::now()],
        )
        .await
        .expect_err("an append after another write is refused");
    let db = err.as_db_error().expect("refused by the database");
    assert!(db.message().contains("before any other write"), "{}", db.message());
    drop(tx);
    // Taking the lock first is the way for a transaction that must write before appending.
    let tx = client.transaction().await.unwrap();
    tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&store::postgres::APPEND_LOCK]).await.unwrap();
    tx.execute("INSERT INTO elsewhere VALUES (1)", &[]).await.unwrap();
    append_held(&tx, "late-1", Uuid::now_v7()).await;
    append_held(&tx, "late-1", Uuid::now_v7()).await;
    tx.commit().await.unwrap();
    assert_eq!(ids(&wait_visible(&store, 2).await).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runner_per_projector_across_processes() {
    let Some(url) = fresh_database().await else { return };
    let one = open(&url).await;
    let two = PgStore::connect(&url).await.unwrap();

    let first = one.try_own("rooms").await.unwrap().expect("nobody owns rooms yet");
    assert!(first.is_alive());
    assert!(two.try_own("rooms").await.unwrap().is_none(), "a second process owns rooms too");
    assert!(one.try_own("rooms").await.unwrap().is_none(), "a second runner in the same process owns rooms too");
    let members = two.try_own("members").await.unwrap().expect("another projector is independent");

    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let second = loop {
        if let Some(o) = two.try_own("rooms").await.unwrap() {
            break o;
        }
        assert!(Instant::now() < deadline, "rooms stayed owned after its owner let go");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(second.is_alive() && members.is_alive());

    // Losing the connection loses the ownership, and says so.
    let admin = raw(&url).await;
    let killed = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(killed, 2, "the two owners hold one advisory lock each");
    let deadline = Instant::now() + Duration::from_secs(5);
    while second.is_alive() || members.is_alive() {
        assert!(Instant::now() < deadline, "an ownership whose connection died still claims to be alive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(one.try_own("rooms").await.unwrap().is_some(), "the lock died with its connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_refuse_a_newer_schema() {
    let Some(url) = fresh_database().await else { return };
    let one = PgStore::connect(&url).await.unwrap();
    let two = PgStore::connect(&url).await.unwrap();
    match one.check_schema().await {
        Err(StoreError::Invalid(msg)) if msg.contains("run `livechat migrate`") => {}
        other => panic!("an empty database must ask for a migration, got {other:?}"),
    }

    // Two servers starting at once: one applies everything, the other nothing, neither fails.
    let (a, b) = tokio::join!(one.migrate(), two.migrate());
    let (a, b) = (a.unwrap(), b.unwrap());
    let known = store::migrate::latest(store::migrate::POSTGRES);
    assert_eq!((a.len() + b.len()) as i64, known, "applied {a:?} and {b:?}");
    assert!(one.migrate().await.unwrap().is_empty(), "a second migrate must be a no-op");
    one.check_schema().await.unwrap();
    let admin = raw(&url).await;
    let versions: Vec<i64> = admin
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=known).collect::<Vec<_>>());

    // A newer binary migrated this database.
    admin
        .execute("INSERT INTO schema_migrations VALUES ($1, 'from the future', now())", &[&(known + 1)])
        .await
        .unwrap();
    let too_new = |r: Result<(), StoreError>| matches!(r, Err(StoreError::SchemaTooNew { found, known: k }) if found == known + 1 && k == known);
    assert!(too_new(one.check_schema().await), "check_schema accepted a newer schema");
    assert!(too_new(one.migrate().await.map(|_| ())), "migrate accepted a newer schema");

    // An older one: asks for a migration.
    admin.execute("DELETE FROM schema_migrations WHERE version >= $1", &[&known]).await.unwrap();
    match one.check_schema().await {
        Err(StoreError::Invalid(msg)) if msg.contains("run `livechat migrate`") => {}
        other => panic!("an old schema must ask for a migration, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_check_versions_and_are_idempotent() {
    let Some(url) = fresh_database().await else { return };
    let store = open(&url).await;
    let commits = store.commits();

    let first = store.append("chat-1", ExpectedVersion::NoStream, vec![ev("Opened")]).await.unwrap();
    assert_eq!((first.first_version, first.last_version), (0, 0));
    assert!(commits.has_changed().unwrap(), "an append must wake local readers");
    let batch = vec![ev("Said"), ev("Said")];
    let second = store.append("chat-1", ExpectedVersion::Exact(0), batch.clone()).await.unwrap();
    assert_eq!((second.first_version, second.last_version), (1, 2));
    assert!(second.position > first.position);

    let wrong = |r: Result<_, StoreError>, want: Option<u64>| match r {
        Err(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, want),
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    };
    wrong(store.append("chat-1", ExpectedVersion::Exact(5), vec![ev("X")]).await, Some(2));
    wrong(store.append("chat-1", ExpectedVersion::NoStream, vec![ev("X")]).await, Some(2));
    wrong(store.append("chat-2", ExpectedVersion::StreamExists, vec![ev("X")]).await, None);
    wrong(store.append("chat-2", ExpectedVersion::Exact(0), vec![ev("X")]).await, None);
    assert_eq!(store.stream_version("chat-1").await.unwrap(), Some(2));
    assert_eq!(store.stream_version("chat-2").await.unwrap(), None);
    let any = store.append("chat-2", ExpectedVersion::Any, vec![ev("Opened")]).await.unwrap();
    assert_eq!(any.first_version, 0);
    let exists = store.append("chat-2", ExpectedVersion::StreamExists, vec![ev("Said")]).await.unwrap();
    assert_eq!(exists.first_version, 1);

    // A retry after a lost reply returns the original result, even though the stream moved.
    assert_eq!(store.append("chat-1", ExpectedVersion::Exact(0), batch.clone()).await.unwrap(), second);
    assert_eq!(store.append("chat-1", ExpectedVersion::Any, batch.clone()).await.unwrap(), second);
    match store.append("chat-3", ExpectedVersion::Any, batch.clone()).await {
        Err(StoreError::DuplicateEventId { event_id }) => assert_eq!(event_id, batch[0].event_id),
        other => panic!("the same ids elsewhere must conflict, got {other:?}"),
    }
    assert_eq!(store.stream_version("chat-3").await.unwrap(), None, "a refused append wrote something");
    assert!(matches!(store.append("chat-1", ExpectedVersion::Any, vec![]).await, Err(StoreError::Invalid(_))));
    assert!(matches!(
        store.append("bad stream", ExpectedVersion::Any, vec![ev("X")]).await,
        Err(StoreError::Invalid(_))
    ));

    // Concurrent writers expecting the same version: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.append("race-1", ExpectedVersion::NoStream, vec![ev("Won")]).await },
        ));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                winners += 1;
                assert_eq!(r.first_version, 0);
            }
            Err(StoreError::WrongExpectedVersion { actual: Some(0), .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(winners, 1);

    // Concurrent retries of one append all get its result, whichever path reports the race.
    for exact in [false, true] {
        let current = store.stream_version("race-1").await.unwrap().unwrap();
        let expected = if exact { ExpectedVersion::Exact(current) } else { ExpectedVersion::Any };
        let events = vec![ev("Retried"), ev("Retried")];
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (store, events) = (store.clone(), events.clone());
            tasks.push(tokio::spawn(async move { store.append("race-1", expected, events).await }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap().expect("a retry failed"));
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
        assert_eq!(results[0].first_version, current + 1);
    }
    assert_eq!(store.stream_version("race-1").await.unwrap(), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_round_trip_events_and_filter() {
    let Some(url) = fresh_database().await else { return };
    let store = open(&url).await;
    let at = Utc.with_ymd_and_hms(2020, 2, 29, 12, 0, 0).unwrap() + chrono::Duration::nanoseconds(123_456_789);
    let imported = NewEvent {
        schema_version: 3,
        metadata: json!({ "by": "import", "n": [1, 2] }),
        recorded_at: Some(at),
        ..NewEvent::new("Imported", json!({ "text": "héllo", "nested": { "a": null } }))
    };
    store.append("room-1", ExpectedVersion::NoStream, vec![imported.clone(), ev("Said")]).await.unwrap();
    store.append("user-1", ExpectedVersion::NoStream, vec![ev("Joined")]).await.unwrap();
    store.append("room-2", ExpectedVersion::NoStream, vec![ev("Said")]).await.unwrap();

    let stream = store.read_stream("room-1", 0, Direction::Forward, 10).await.unwrap();
    let got = &stream[0];
    assert_eq!((got.event_id, got.stream_version, got.schema_version), (imported.event_id, 0, 3));
    assert_eq!((&got.data, &got.metadata), (&imported.data, &imported.metadata));
    assert_eq!(got.recorded_at, store::event::store_time(at), "recorded_at is kept to the microsecond");
    assert_eq!(got.category(), "room");
    let back = store.read_stream("room-1", u64::MAX, Direction::Backward, 1).await.unwrap();
    assert_eq!(back.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1]);
    assert_eq!(store.read_stream("room-1", 1, Direction::Forward, 10).await.unwrap().len(), 1);

    let all = wait_visible(&store, 4).await;
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let read = |filter: EventFilter| {
        let store = store.clone();
        async move { store.read_all(&ReadAll { filter, ..ReadAll::forward(Position::START, 100) }).await.unwrap() }
    };
    let by_category = read(EventFilter { category: Some("room".into()), ..Default::default() }).await;
    assert_eq!(by_category.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["room-1", "room-1", "room-2"]);
    let by_type =
        read(EventFilter { event_types: vec!["Joined".into(), "Imported".into()], ..Default::default() }).await;
    assert_eq!(by_type.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["Imported", "Joined"]);
    let by_stream = read(EventFilter { stream: Some("room-2".into()), ..Default::default() }).await;
    assert_eq!(ids(&by_stream), vec![all[3].event_id]);
    let after_two = store.read_all(&ReadAll::forward(all[1].position, 100)).await.unwrap();
    assert_eq!(ids(&after_two), ids(&all[2..]));
    let limited = store.read_all(&ReadAll::forward(Position::START, 2)).await.unwrap();
    assert_eq!(ids(&limited), ids(&all[..2]));
    assert_eq!(store.count_after(Position::START, 3).await.unwrap(), 3, "count_after stops at its cap");
    // A position of the embedded store (tx 0) lies before every PostgreSQL position.
    assert_eq!(store.read_all(&ReadAll::forward(Position::new(0, 1_000_000), 100)).await.unwrap().len(), 4);
    assert_eq!(store.head().await.unwrap(), Some(all[3].position));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_commits_are_atomic_with_their_checkpoint() {
    let Some(url) = fresh_database().await else { return };
    let store = open(&url).await;
    let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let put = |id: &str, partition: &str, sort_key: &str, n: i64| DocChange::Put {
        view: "rooms".into(),
        id: id.into(),
        partition: partition.into(),
        sort_key: sort_key.into(),
        body: json!({ "n": n }),
    };
    let commit = |expected: Option<Position>, checkpoint: Position, changes: Vec<DocChange>| Commit {
        projector: "rooms".into(),
        projector_version: 1,
        expected,
        checkpoint,
        last_event_at: Some(now),
        changes,
        parked: vec![],
        now,
    };
    let p1 = Position::new(10, 1);
    store
        .commit(commit(
            None,
            p1,
            vec![
                put("a", "x", "2", 1),
                put("b", "x", "1", 1),
                put("c", "y", "1", 1),
                put("Z", "x", "2", 1),
                put("a", "x", "2", 2),
            ],
        ))
        .await
        .unwrap();
    let a = store.get("rooms", "a").await.unwrap().unwrap();
    assert_eq!((a.version, a.body.clone()), (2, json!({ "n": 2 })), "two puts in one commit: version 2");

    // A runner that did not see the last commit is refused, and writes nothing.
    for stale in [None, Some(Position::new(9, 9))] {
        match store.commit(commit(stale, Position::new(11, 1), vec![put("d", "x", "0", 1)])).await {
            Err(StoreError::Busy(_)) => {}
            other => panic!("a stale checkpoint must be refused, got {other:?}"),
        }
    }
    assert_eq!(store.get("rooms", "d").await.unwrap(), None);
    assert_eq!(store.projector_state("rooms").await.unwrap().unwrap().position, p1);

    // Listing: by (sort_key, id) in byte order, keyset pages, partitions.
    let keys = |docs: Vec<store::Doc>| docs.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(keys(store.list("rooms", None, None, 10).await.unwrap()), ["b", "c", "Z", "a"]);
    assert_eq!(keys(store.list("rooms", Some("x"), None, 10).await.unwrap()), ["b", "Z", "a"]);
    assert_eq!(keys(store.list("rooms", Some("x"), Some(("2", "Z")), 10).await.unwrap()), ["a"]);
    assert_eq!(keys(store.list("rooms", None, Some(("1", "b")), 2).await.unwrap()), ["c", "Z"]);
    // The byte order holds whatever the database's locale: the keys are declared COLLATE "C".
    let collations: Vec<(String, Option<String>)> = raw(&url)
        .await
        .query(
            "SELECT column_name::text, collation_name::text FROM information_schema.columns
             WHERE table_name = 'view_docs' AND column_name IN ('id', 'partition', 'sort_key') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(collations.len() == 3 && collations.iter().all(|(_, c)| c.as_deref() == Some("C")), "{collations:?}");
    let mut many = keys(store.get_many("rooms", &["a".into(), "nope".into(), "c".into()]).await.unwrap());
    many.sort();
    assert_eq!(many, ["a", "c"]);

    // Delete then put in one commit: a new document; put then delete: gone. Plus a parked event.
    let event = RecordedEvent {
        position: Position::new(12, 7),
        event_id: Uuid::now_v7(),
        stream_id: "room-1".into(),
        stream_version: 3,
        event_type: "Said".into(),
        schema_version: 1,
        data: json!({}),
        metadata: json!({}),
        recorded_at: now,
    };
    let mut next = commit(
        Some(p1),
        Position::new(12, 7),
        vec![
            DocChange::Delete { view: "rooms".into(), id: "a".into() },
            put("a", "x", "2", 3),
            put("b", "x", "1", 2),
            DocChange::Delete { view: "rooms".into(), id: "b".into() },
        ],
    );
    next.parked = vec![ParkedEvent::new("rooms", &event, "boom".into(), 3, now)];
    next.last_event_at = None;
    store.commit(next).await.unwrap();
    assert_eq!(store.get("rooms", "a").await.unwrap().unwrap().version, 1);
    assert_eq!(store.get("rooms", "b").await.unwrap(), None);
    let state = store.projector_state("rooms").await.unwrap().unwrap();
    assert_eq!((state.position, state.parked, state.last_event_at), (Position::new(12, 7), 1, Some(now)));
    let parked = store.parked("rooms", 10).await.unwrap();
    assert_eq!(parked, vec![ParkedEvent::new("rooms", &event, "boom".into(), 3, now)]);
    let later = now + chrono::Duration::seconds(5);
    store.heartbeat("rooms", later).await.unwrap();
    assert_eq!(store.projector_state("rooms").await.unwrap().unwrap().heartbeat_at, later);

    // A rebuild into the shadow copy, then the swap.
    let shadow = Commit {
        projector: shadow_name("rooms"),
        changes: vec![DocChange::Put {
            view: shadow_name("rooms"),
            id: "new".into(),
            partition: "x".into(),
            sort_key: "0".into(),
            body: json!({ "rebuilt": true }),
        }],
        ..commit(None, Position::new(20, 1), vec![])
    };
    store.commit(shadow).await.unwrap();
    store.swap_shadow("rooms", &["rooms"]).await.unwrap();
    assert_eq!(keys(store.list("rooms", None, None, 10).await.unwrap()), ["new"]);
    assert_eq!(store.projector_state("rooms").await.unwrap().unwrap().position, Position::new(20, 1));
    assert!(store.projector_state(&shadow_name("rooms")).await.unwrap().is_none());
    assert!(store.parked("rooms", 10).await.unwrap().is_empty());
    assert!(store.list(&shadow_name("rooms"), None, None, 10).await.unwrap().is_empty());

    store.reset("rooms", &["rooms"]).await.unwrap();
    assert!(store.list("rooms", None, None, 10).await.unwrap().is_empty());
    assert!(store.projector_state("rooms").await.unwrap().is_none());
}

/// The crash-safety child: appends until killed, printing `ACK <id>` after each acknowledged
/// append. Does nothing unless `LIVECHAT_CRASH_CHILD` names a database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(url) = std::env::var("LIVECHAT_CRASH_CHILD") else { return };
    let store = PgStore::connect(&url).await.expect("child connects");
    let mut writers = Vec::new();
    for s in 0..3 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let stream = format!("crash-{s}");
            let mut expected = ExpectedVersion::NoStream;
            loop {
                let e = ev("Tick");
                let id = e.event_id;
                let r = store.append(&stream, expected, vec![e]).await.expect("child append");
                expected = ExpectedVersion::Exact(r.last_version);
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {id}").and_then(|_| out.flush()).expect("stdout");
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_safety() {
    if std::env::var_os("LIVECHAT_CRASH_CHILD").is_some() {
        return;
    }
    let Some(url) = fresh_database().await else { return };
    let store = open(&url).await;

    let child_url = url.clone();
    let acked: Vec<Uuid> = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("LIVECHAT_CRASH_CHILD", &child_url)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().unwrap();
        let (lines, received) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ACK ") {
                    let _ = lines.send(id.parse::<Uuid>().expect("child printed a bad id"));
                }
            }
        });
        let mut acked = Vec::new();
        // Wait for the child to get going, then let it write for about a second.
        match received.recv_timeout(LONG) {
            Ok(id) => acked.push(id),
            Err(_) => {
                let _ = child.kill();
                panic!("the child acknowledged nothing: {:?}", child.wait());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while acked.len() < 200 {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(id) => acked.push(id),
                Err(_) => break,
            }
        }
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        reader.join().unwrap();
        // Lines printed before the kill count too: each was an acknowledged append.
        acked.extend(received.try_iter());
        acked
    })
    .await
    .unwrap();
    eprintln!("crash_safety: {} appends acknowledged before SIGKILL", acked.len());
    assert!(acked.len() >= 10, "only {} appends acknowledged: the test proves little", acked.len());

    // Reopen, as after a crash, and find every acknowledged event.
    drop(store);
    let store = open(&url).await;
    let deadline = Instant::now() + LONG;
    let all = loop {
        let all = visible(&store).await;
        let have: std::collections::HashSet<Uuid> = all.iter().map(|e| e.event_id).collect();
        let missing = acked.iter().filter(|id| !have.contains(id)).count();
        if missing == 0 {
            break all;
        }
        assert!(Instant::now() < deadline, "{missing} of {} acknowledged events are missing", acked.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut versions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for e in &all {
        versions.entry(&e.stream_id).or_default().push(e.stream_version);
    }
    for (stream, mut v) in versions {
        v.sort_unstable();
        assert_eq!(v, (0..v.len() as u64).collect::<Vec<_>>(), "versions of {stream} have gaps or duplicates");
        let stored = store.read_stream(stream, 0, Direction::Forward, usize::MAX).await.unwrap();
        assert_eq!(stored.len(), v.len(), "read_stream and read_all disagree on {stream}");
    }
}

/// A failure after the checkpoint moved (here a constraint PostgreSQL checks while the
/// documents are written) rolls back the checkpoint too: neither is left behind. Such a
/// refusal is about the data (`Rejected`), not the database being unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_between_documents_and_checkpoint_leaves_neither() {
    let Some(url) = fresh_database().await else { return };
    let store = open(&url).await;
    let put = |id: &str, body: serde_json::Value| DocChange::Put {
        view: "things".into(),
        id: id.into(),
        partition: String::new(),
        sort_key: id.into(),
        body,
    };
    let commit = |expected: Option<Position>, checkpoint: Position, changes: Vec<DocChange>| Commit {
        projector: "things".into(),
        projector_version: 1,
        expected,
        checkpoint,
        last_event_at: None,
        changes,
        parked: vec![],
        now: Utc::now(),
    };
    let p1 = Position::new(5, 1);
    store.commit(commit(None, p1, vec![put("a", json!({"n": 1}))])).await.unwrap();
    raw(&url).await.batch_execute("ALTER TABLE view_docs ADD CONSTRAINT no_c CHECK (id <> 'c')").await.unwrap();
    let failed = store
        .commit(commit(Some(p1), Position::new(6, 2), vec![put("b", json!({"n": 2})), put("c", json!({"n": 3}))]))
        .await;
    match &failed {
        Err(e @ StoreError::Rejected(msg)) => assert!(e.is_about_data() && msg.starts_with("23514"), "{msg}"),
        other => panic!("a check violation is Rejected, got {other:?}"),
    }
    assert_eq!(store.projector_state("things").await.unwrap().unwrap().position, p1, "checkpoint rolled back");
    assert_eq!(store.get("things", "b").await.unwrap(), None, "documents rolled back");
    // The runner can go on from where it was.
    store.commit(commit(Some(p1), Position::new(6, 2), vec![put("b", json!({"n": 2}))])).await.unwrap();
    assert!(store.get("things", "b").await.unwrap().is_some());
}

/// Appends that linger between insert and commit, plain appends and unrelated writers, all
/// at once: a subscription gets every committed event exactly once, in position order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_appends_are_each_delivered_once_in_order() {
    let Some(url) = fresh_database().await else { return };
    let _serial = HORIZON.lock().await;
    let store = open(&url).await;
    let mut sub = subscribe(&store).poll_interval(Duration::from_millis(1));
    raw(&url).await.batch_execute("CREATE TABLE unrelated (x int)").await.unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    // Reads while they write, until a second passes without news after they stopped.
    let reader = tokio::spawn(async move {
        let mut delivered = Vec::new();
        loop {
            match timeout(Duration::from_secs(1), sub.next()).await {
                Ok(e) => delivered.push(e.unwrap()),
                Err(_) if Instant::now() > until => return delivered,
                Err(_) => {}
            }
        }
    });
    let mut writers = Vec::new();
    for w in 0..6 {
        let (store, url) = (store.clone(), url.clone());
        writers.push(tokio::spawn(async move {
            let mut client = raw(&url).await;
            let mut committed = Vec::new();
            let mut n = 0u64;
            while Instant::now() < until {
                n += 1;
                let id = Uuid::now_v7();
                match (w + n) % 3 {
                    // Lingers between its insert and its commit.
                    0 => {
                        let tx = client.transaction().await.unwrap();
                        append_held(&tx, &format!("slow-{w}-{n}"), id).await;
                        tx.execute("SELECT pg_sleep(random() * 0.005)", &[]).await.unwrap();
                        if n.is_multiple_of(5) {
                            tx.rollback().await.unwrap();
                            continue;
                        }
                        tx.commit().await.unwrap();
                    }
                    // Writes elsewhere, never appends.
                    1 => {
                        let tx = client.transaction().await.unwrap();
                        tx.execute("INSERT INTO unrelated VALUES (1)", &[]).await.unwrap();
                        tx.execute("SELECT pg_sleep(random() * 0.005)", &[]).await.unwrap();
                        tx.commit().await.unwrap();
                        continue;
                    }
                    _ => {
                        let e = NewEvent { event_id: id, ..ev("Quick") };
                        store.append(&format!("quick-{w}-{n}"), ExpectedVersion::NoStream, vec![e]).await.unwrap();
                    }
                }
                committed.push(id);
            }
            committed
        }));
    }
    let mut expected = std::collections::HashSet::new();
    for w in writers {
        expected.extend(w.await.unwrap());
    }
    let delivered = reader.await.unwrap();
    assert!(delivered.windows(2).all(|w| w[0].position < w[1].position), "out of order");
    let got: std::collections::HashSet<Uuid> = delivered.iter().map(|e| e.event_id).collect();
    assert_eq!(got.len(), delivered.len(), "delivered twice");
    assert_eq!(got, expected, "skipped or invented");
    eprintln!("racing appends: {} delivered once, in order", delivered.len());
}
