//! The projector runner against real stores: catch-up, tailing, parking, rebuilds, ownership.

use std::sync::Arc;
use std::time::Duration;

use projections::stream_index::{StreamIndex, VIEW};
use projections::{rebuild, wait_for, Docs, Draft, ProjectionError, Projector, Role, Runner, RunnerConfig};
use serde_json::json;
use store::testkit::faulty::FaultyViews;
use store::testkit::scratch_dir;
use store::{DocChange, EventStore, ExpectedVersion, NewEvent, Position, Store, StoreError, StoreUrl, ViewStore};
use tokio::sync::watch;

async fn open(url: StoreUrl) -> Store {
    let store = Store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

async fn sqlite() -> Store {
    open(StoreUrl::Sqlite(scratch_dir().join("runner.db"))).await
}

fn fast() -> RunnerConfig {
    RunnerConfig { poll: Duration::from_millis(20), standby_retry: Duration::from_millis(50), ..Default::default() }
}

async fn append(events: &dyn EventStore, stream: &str, event_type: &str, data: serde_json::Value) -> Position {
    events.append(stream, ExpectedVersion::Any, vec![NewEvent::new(event_type, data)]).await.unwrap().position
}

fn start(
    store: &Store,
    projector: Arc<dyn Projector>,
) -> (watch::Sender<bool>, watch::Receiver<projections::RunnerStatus>, tokio::task::JoinHandle<()>) {
    let runner = Runner::new(projector, store.events(), store.views(), fast());
    let status = runner.status();
    let (stop, stopped) = watch::channel(false);
    (stop, status, tokio::spawn(runner.run(stopped)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_builds_the_stream_index_from_history_and_keeps_it_live() {
    let store = sqlite().await;
    let events = store.events();
    append(events.as_ref(), "channel-a", "ChannelCreated", json!({})).await;
    append(events.as_ref(), "channel-a", "ChannelRenamed", json!({})).await;
    append(events.as_ref(), "user-b", "UserCreated", json!({})).await;
    let (stop, _, task) = start(&store, Arc::new(StreamIndex));
    let last = append(events.as_ref(), "channel-a", "ChannelArchived", json!({})).await;
    assert!(wait_for(store.views().as_ref(), "stream_index", last, Duration::from_secs(10)).await.unwrap());

    let docs = store.views().list(VIEW, None, None, 10).await.unwrap();
    let bodies: Vec<_> = docs.iter().map(|d| (&d.partition, &d.body)).collect();
    insta::assert_json_snapshot!(bodies, {
        "[][1].first_event_at" => "[time]", "[][1].last_event_at" => "[time]"
    });
    let channels = store.views().list(VIEW, Some("channel"), None, 10).await.unwrap();
    assert_eq!(channels.len(), 1);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("runner stops on shutdown").unwrap();
}

/// Ignores every event: its checkpoint still has to move.
struct Deaf;

impl Projector for Deaf {
    fn name(&self) -> &'static str {
        "deaf"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &["nothing"]
    }
    fn keys(&self, _: &store::RecordedEvent) -> Vec<(&'static str, String)> {
        vec![]
    }
    fn apply(&self, _: &store::RecordedEvent, _: &mut Docs) -> Result<(), ProjectionError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_that_ignores_events_still_records_where_it_is() {
    let store = sqlite().await;
    let events = store.events();
    for n in 0..1200 {
        append(events.as_ref(), &format!("noise-{}", n % 7), "E", json!({})).await;
    }
    let (stop, status, task) = start(&store, Arc::new(Deaf));
    let last = append(events.as_ref(), "noise-x", "E", json!({})).await;
    assert!(
        wait_for(store.views().as_ref(), "deaf", last, Duration::from_secs(10)).await.unwrap(),
        "written once caught up"
    );
    assert_eq!(status.borrow().processed, 1201);
    // While stopping, whatever was applied is recorded.
    let more = append(events.as_ref(), "noise-y", "E", json!({})).await;
    assert!(wait_for(store.views().as_ref(), "deaf", more, Duration::from_secs(10)).await.unwrap());
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(store.views().projector_state("deaf").await.unwrap().unwrap().position, more);
}

/// Decodes `{"name": string}`; anything else is an error.
struct Strict;

impl Projector for Strict {
    fn name(&self) -> &'static str {
        "strict"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &["names"]
    }
    fn keys(&self, e: &store::RecordedEvent) -> Vec<(&'static str, String)> {
        vec![("names", e.stream_id.clone()), ("names", "all".into())]
    }
    fn apply(&self, e: &store::RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        // Touch a document before failing: the runner must undo it.
        let count = docs.get("names", "all").map_or(0, |d| d.body["count"].as_u64().unwrap());
        docs.put(
            "names",
            "all",
            Draft { partition: String::new(), sort_key: String::new(), body: json!({"count": count + 1}) },
        );
        #[derive(serde::Deserialize)]
        struct Named {
            name: String,
        }
        let named: Named = ProjectionError::decode(e)?;
        docs.put(
            "names",
            &e.stream_id,
            Draft { partition: String::new(), sort_key: named.name.clone(), body: json!({"name": named.name}) },
        );
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_parks_an_event_it_cannot_decode_and_goes_on() {
    let store = sqlite().await;
    let events = store.events();
    append(events.as_ref(), "thing-1", "Named", json!({"name": "one"})).await;
    let bad = append(events.as_ref(), "thing-2", "Named", json!({"nom": 2})).await;
    let last = append(events.as_ref(), "thing-3", "Named", json!({"name": "three"})).await;
    let (stop, status, task) = start(&store, Arc::new(Strict));
    assert!(wait_for(store.views().as_ref(), "strict", last, Duration::from_secs(10)).await.unwrap());
    let views = store.views();
    assert!(views.get("names", "thing-1").await.unwrap().is_some());
    assert!(views.get("names", "thing-2").await.unwrap().is_none());
    assert!(views.get("names", "thing-3").await.unwrap().is_some());
    assert_eq!(
        views.get("names", "all").await.unwrap().unwrap().body["count"],
        2,
        "the failed event's changes are undone"
    );
    let parked = views.parked("strict", 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].stream_id.as_str(), parked[0].position, parked[0].attempts), ("thing-2", bad, 3));
    assert!(parked[0].error.contains("missing field `name`"), "{}", parked[0].error);
    assert_eq!(status.borrow().parked, 1);
    let health = projections::health(&Strict, events.as_ref(), views.as_ref()).await.unwrap();
    assert_eq!((health.parked, health.lag_events), (1, 0));
    stop.send(true).unwrap();
    task.await.unwrap();
}

struct IndexV2;

impl Projector for IndexV2 {
    fn name(&self) -> &'static str {
        "stream_index"
    }
    fn version(&self) -> u32 {
        2
    }
    fn views(&self) -> &'static [&'static str] {
        &[VIEW]
    }
    fn keys(&self, e: &store::RecordedEvent) -> Vec<(&'static str, String)> {
        StreamIndex.keys(e)
    }
    fn apply(&self, e: &store::RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        docs.put(
            VIEW,
            &e.stream_id,
            Draft { partition: "v2".into(), sort_key: e.stream_id.clone(), body: json!({"v": 2}) },
        );
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_bump_rebuilds_into_shadow_documents_and_swaps() {
    let store = sqlite().await;
    let events = store.events();
    for n in 0..30 {
        append(events.as_ref(), &format!("s{}-1", n % 7), "E", json!({})).await;
    }
    let views = store.views();
    let own = views.try_own("stream_index").await.unwrap().unwrap();
    let config = RunnerConfig { rebuild_batch_size: 4, ..fast() };
    let mut seen = Vec::new();
    let report = rebuild(&StreamIndex, events.as_ref(), views.as_ref(), &config, |p| seen.push((p.done, p.total)))
        .await
        .unwrap();
    assert_eq!(report.events, 30);
    assert_eq!(seen.first(), Some(&(0, 30)));
    assert_eq!(seen.last(), Some(&(30, 30)));
    assert_eq!(views.list(VIEW, None, None, 100).await.unwrap().len(), 7);
    drop(own);

    // The runner of version 2 finds version 1 stored and rebuilds before tailing.
    let (stop, status, task) = start(&store, Arc::new(IndexV2));
    let last = append(events.as_ref(), "late-1", "E", json!({})).await;
    assert!(wait_for(views.as_ref(), "stream_index", last, Duration::from_secs(10)).await.unwrap());
    let docs = views.list(VIEW, None, None, 100).await.unwrap();
    assert_eq!(docs.len(), 8);
    assert!(docs.iter().all(|d| d.partition == "v2" && d.body == json!({"v": 2})));
    assert_eq!(views.projector_state("stream_index").await.unwrap().unwrap().projector_version, 2);
    assert!(views.list("streams~shadow", None, None, 10).await.unwrap().is_empty());
    assert_eq!(status.borrow().role, Role::Owner);
    stop.send(true).unwrap();
    task.await.unwrap();
}

async fn one_owner_at_a_time(store_a: Store, store_b: Store) {
    let events = store_a.events();
    let (stop_a, status_a, task_a) = start(&store_a, Arc::new(StreamIndex));
    let first = append(events.as_ref(), "x-1", "E", json!({})).await;
    assert!(wait_for(store_a.views().as_ref(), "stream_index", first, Duration::from_secs(10)).await.unwrap());
    let (stop_b, status_b, task_b) = start(&store_b, Arc::new(StreamIndex));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_a.borrow().role, Role::Owner);
    assert_eq!(status_b.borrow().role, Role::Standby, "the second runner waits");

    // The owner goes away: the standby takes over and goes on from the checkpoint.
    stop_a.send(true).unwrap();
    task_a.await.unwrap();
    let second = append(events.as_ref(), "x-1", "E", json!({})).await;
    assert!(wait_for(store_b.views().as_ref(), "stream_index", second, Duration::from_secs(10)).await.unwrap());
    assert_eq!(status_b.borrow().role, Role::Owner);
    assert_eq!(store_b.views().get(VIEW, "x-1").await.unwrap().unwrap().body["event_count"], 2);
    stop_b.send(true).unwrap();
    task_b.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_runner_owns_a_projector_on_sqlite() {
    let path = scratch_dir().join("two.db");
    let a = open(StoreUrl::Sqlite(path.clone())).await;
    let b = open(StoreUrl::Sqlite(path)).await;
    one_owner_at_a_time(a, b).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_runner_owns_a_projector_on_postgres() {
    let Some(url) = store::testkit::pg::fresh_database().await else { return };
    let a = open(StoreUrl::Postgres(url.clone())).await;
    let b = open(StoreUrl::Postgres(url)).await;
    one_owner_at_a_time(a, b).await;
}

/// The chatbots view on every backend: a created script is listed (its sort key once held a
/// NUL, which PostgreSQL text cannot store, and the view never updated there).
async fn a_created_chatbot_is_listed(store: Store) {
    use domain::chatbot::ChatbotEvent;
    use projections::chatbots::{summary, Chatbots, VIEW as CHATBOTS};
    let events = store.events();
    let id = uuid::Uuid::now_v7();
    let (event_type, data) = domain::aggregate::encode(&ChatbotEvent::ChatbotCreated {
        chatbot_id: id,
        title: "Support".into(),
        author_name: None,
        active: true,
    });
    let last = append(events.as_ref(), &format!("chatbot-{id}"), &event_type, data).await;
    let (stop, status, task) = start(&store, Arc::new(Chatbots));
    assert!(
        wait_for(store.views().as_ref(), "chatbots", last, Duration::from_secs(10)).await.unwrap(),
        "the chatbots projector is stuck: {:?}",
        status.borrow().last_error
    );
    let listed = store.views().list(CHATBOTS, None, None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(summary(listed[0].body.clone()).unwrap().title, "Support");
    assert_eq!(store.views().parked("chatbots", 10).await.unwrap(), vec![]);
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_chatbot_is_listed_on_sqlite() {
    a_created_chatbot_is_listed(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_chatbot_is_listed_on_postgres() {
    let Some(url) = store::testkit::pg::fresh_database().await else { return };
    a_created_chatbot_is_listed(open(StoreUrl::Postgres(url)).await).await;
}

fn start_on(
    events: Arc<dyn EventStore>,
    views: Arc<dyn ViewStore>,
    projector: Arc<dyn Projector>,
) -> (watch::Sender<bool>, watch::Receiver<projections::RunnerStatus>, tokio::task::JoinHandle<()>) {
    let runner = Runner::new(projector, events, views, fast());
    let status = runner.status();
    let (stop, stopped) = watch::channel(false);
    (stop, status, tokio::spawn(runner.run(stopped)))
}

/// Like the old chatbots projector: builds keys and bodies with characters no store holds.
/// `Named` is fine; `Keyed` puts NUL in a sort key, `Quoted` in a body; `Poisoned` is fine for
/// the projector API but marked for a store to refuse.
struct Careless;

impl Projector for Careless {
    fn name(&self) -> &'static str {
        "careless"
    }
    fn version(&self) -> u32 {
        1
    }
    fn views(&self) -> &'static [&'static str] {
        &["careless"]
    }
    fn keys(&self, e: &store::RecordedEvent) -> Vec<(&'static str, String)> {
        vec![("careless", e.stream_id.clone())]
    }
    fn apply(&self, e: &store::RecordedEvent, docs: &mut Docs) -> Result<(), ProjectionError> {
        let (sort_key, body) = match e.event_type.as_str() {
            "Keyed" => (format!("title\u{0}{}", e.stream_id), json!({})),
            "Quoted" => (e.stream_id.clone(), json!({"text": "a\u{0}b"})),
            "Poisoned" => (e.stream_id.clone(), json!({"poison": true})),
            _ => (e.stream_id.clone(), json!({})),
        };
        docs.put("careless", &e.stream_id, Draft { partition: String::new(), sort_key, body });
        Ok(())
    }
}

async fn stored_ids(views: &dyn ViewStore) -> Vec<String> {
    views.list("careless", None, None, 100).await.unwrap().into_iter().map(|d| d.id).collect()
}

/// NUL in a key or body is refused by the projector API on every backend: the event is parked
/// like any apply failure and the projector goes on (on PostgreSQL it used to retry forever).
async fn a_document_no_store_can_hold_parks_its_event(store: Store) {
    let events = store.events();
    append(events.as_ref(), "c-1", "Named", json!({})).await;
    let keyed = append(events.as_ref(), "c-2", "Keyed", json!({})).await;
    let quoted = append(events.as_ref(), "c-3", "Quoted", json!({})).await;
    let last = append(events.as_ref(), "c-4", "Named", json!({})).await;
    let (stop, status, task) = start(&store, Arc::new(Careless));
    let views = store.views();
    assert!(
        wait_for(views.as_ref(), "careless", last, Duration::from_secs(10)).await.unwrap(),
        "stuck: {:?}",
        status.borrow().last_error
    );
    assert_eq!(stored_ids(views.as_ref()).await, vec!["c-1", "c-4"]);
    let parked = views.parked("careless", 10).await.unwrap();
    let at: Vec<_> = parked.iter().map(|p| (p.position, p.attempts)).collect();
    assert_eq!(at, vec![(keyed, 3), (quoted, 3)]);
    assert!(parked[0].error.contains("sort key contains a NUL"), "{}", parked[0].error);
    assert!(parked[1].error.contains("body contains a NUL"), "{}", parked[1].error);
    let health = projections::health(&Careless, events.as_ref(), views.as_ref()).await.unwrap();
    assert_eq!((health.parked, health.lag_events, health.last_error), (2, 0, None));
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_no_store_can_hold_parks_its_event_in_memory() {
    a_document_no_store_can_hold_parks_its_event(open(StoreUrl::Memory).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_no_store_can_hold_parks_its_event_on_sqlite() {
    a_document_no_store_can_hold_parks_its_event(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_no_store_can_hold_parks_its_event_on_postgres() {
    let Some(url) = store::testkit::pg::fresh_database().await else { return };
    a_document_no_store_can_hold_parks_its_event(open(StoreUrl::Postgres(url)).await).await;
}

/// A store that refuses one event's documents at commit (as PostgreSQL refuses a data
/// exception): the batch is committed event by event, that event is parked with the store's
/// error and without its documents, and the projector moves past it.
async fn a_commit_refused_for_one_events_documents_parks_that_event(store: Store) {
    let events = store.events();
    append(events.as_ref(), "c-1", "Named", json!({})).await;
    append(events.as_ref(), "c-2", "Named", json!({})).await;
    let poisoned = append(events.as_ref(), "c-3", "Poisoned", json!({})).await;
    append(events.as_ref(), "c-4", "Named", json!({})).await;
    let last = append(events.as_ref(), "c-5", "Named", json!({})).await;
    let faulty = FaultyViews::new(store.views());
    faulty.fail_commits(|c| {
        let poisoned = c.changes.iter().any(|d| matches!(d, DocChange::Put { body, .. } if body["poison"] == true));
        poisoned.then(|| StoreError::Rejected("23514: new row violates check constraint \"no_poison\"".into()))
    });
    let views: Arc<dyn ViewStore> = faulty.clone();
    let (stop, status, task) = start_on(events.clone(), views.clone(), Arc::new(Careless));
    assert!(
        wait_for(views.as_ref(), "careless", last, Duration::from_secs(10)).await.unwrap(),
        "stuck: {:?}",
        status.borrow().last_error
    );
    assert!(faulty.refused() >= 2, "the batch, then the event alone, were refused");
    assert_eq!(stored_ids(views.as_ref()).await, vec!["c-1", "c-2", "c-4", "c-5"]);
    let parked = views.parked("careless", 10).await.unwrap();
    assert_eq!(parked.iter().map(|p| p.position).collect::<Vec<_>>(), vec![poisoned]);
    assert!(parked[0].error.contains("the store refused the event's documents"), "{}", parked[0].error);
    assert!(parked[0].error.contains("no_poison"), "{}", parked[0].error);
    assert_eq!((status.borrow().processed, status.borrow().parked), (4, 1));
    let health = projections::health(&Careless, events.as_ref(), views.as_ref()).await.unwrap();
    assert_eq!((health.parked, health.lag_events, health.last_error), (1, 0, None));
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_refused_for_one_events_documents_parks_that_event_on_sqlite() {
    a_commit_refused_for_one_events_documents_parks_that_event(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_refused_for_one_events_documents_parks_that_event_on_postgres() {
    let Some(url) = store::testkit::pg::fresh_database().await else { return };
    a_commit_refused_for_one_events_documents_parks_that_event(open(StoreUrl::Postgres(url)).await).await;
}

/// Commits failing because the database is unreachable park nothing: the runner keeps
/// retrying, reports the error (in its status and with the stored checkpoint, which the CLI
/// and `/readyz` read), and catches up once the database answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_commit_failure_parks_nothing_and_is_reported() {
    let store = sqlite().await;
    let events = store.events();
    let faulty = FaultyViews::new(store.views());
    let views: Arc<dyn ViewStore> = faulty.clone();
    let (stop, status, task) = start_on(events.clone(), views.clone(), Arc::new(Careless));
    let first = append(events.as_ref(), "c-1", "Named", json!({})).await;
    assert!(wait_for(views.as_ref(), "careless", first, Duration::from_secs(10)).await.unwrap());

    faulty.fail_commits(|_| Some(StoreError::Database("connection refused".into())));
    append(events.as_ref(), "c-2", "Named", json!({})).await;
    let last = append(events.as_ref(), "c-3", "Poisoned", json!({})).await;
    let mut health = None;
    for _ in 0..200 {
        let h = projections::health(&Careless, events.as_ref(), views.as_ref()).await.unwrap();
        if h.last_error.is_some() && faulty.refused() >= 3 {
            health = Some(h);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = health.expect("the failure is recorded with the checkpoint and retried");
    assert_eq!(health.last_error.as_deref(), Some("database error: connection refused"));
    assert!(health.last_error_at.is_some());
    assert_eq!((health.parked, health.lag_events, health.checkpoint), (0, 2, Some(first)));
    assert_eq!(status.borrow().last_error.as_deref(), Some("database error: connection refused"));
    assert!(views.parked("careless", 10).await.unwrap().is_empty(), "nothing is parked for a transient failure");

    faulty.heal();
    assert!(wait_for(views.as_ref(), "careless", last, Duration::from_secs(20)).await.unwrap());
    assert_eq!(stored_ids(views.as_ref()).await, vec!["c-1", "c-2", "c-3"]);
    let health = projections::health(&Careless, events.as_ref(), views.as_ref()).await.unwrap();
    assert_eq!((health.parked, health.lag_events, health.last_error), (0, 0, None), "cleared by the commit");
    for _ in 0..100 {
        if status.borrow().last_error.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status.borrow().last_error, None);
    stop.send(true).unwrap();
    task.await.unwrap();
}
