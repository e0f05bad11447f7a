//! First start on several nodes at once: two `serve` processes started at the same moment
//! on one empty PostgreSQL database both start, and there is one admin and one default
//! channel afterwards.

use crate::harness::Server;

/// Starts two servers on `store` at the same moment (each waits for its own "listening").
fn two_at_once(store: &str) -> (Server, Server) {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let starts: Vec<_> = (0..2)
        .map(|_| {
            let (store, barrier) = (store.to_string(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                Server::start(&store)
            })
        })
        .collect();
    let mut servers = starts.into_iter().map(|t| t.join().expect("both servers start"));
    (servers.next().unwrap(), servers.next().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_starting_at_once_on_an_empty_postgres_make_one_admin_and_one_channel() {
    for _ in 0..3 {
        let Some(pg) = store::testkit::pg::fresh_database().await else { return };
        let (mut a, mut b) = two_at_once(&pg);
        // Both serve, and the admin logs in on either (one account, one password).
        a.login().await;
        b.login().await;
        for server in [&a, &b] {
            let (status, users) = server.get("/api/v1/users").await;
            assert_eq!(status, 200, "{users}");
            let users = users["users"].as_array().unwrap();
            assert_eq!(users.len(), 1, "one admin: {users:?}");
            assert_eq!(users[0]["role"], "admin");
            let (status, dashboard) = server.get("/api/v1/channels").await;
            assert_eq!(status, 200, "{dashboard}");
            let channels = dashboard["channels"].as_array().unwrap();
            assert_eq!(channels.len(), 1, "one default channel: {channels:?}");
            assert_eq!(channels[0]["name"], domain::channel::DEFAULT_CHANNEL_NAME);
        }
        let ((code_a, log_a), (code_b, log_b)) = (a.terminate(), b.terminate());
        assert_eq!((code_a, code_b), (Some(0), Some(0)), "{log_a:?}\n{log_b:?}");
    }
}
