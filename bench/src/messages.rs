//! The messages scenario: visitors posting over HTTP to a real server, beside the same
//! server's health check under the same load (the HTTP ceiling of this machine).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use api::{ApiConfig, AppState};
use serde_json::{json, Value};
use store::Store;
use tokio::sync::watch;

use crate::measure::{run_writers, Sample};

const PASSWORD: &str = "correct horse battery staple";

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Value> {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

/// Starts a server on `store`, opens `conversations` conversations with 10 operators joined,
/// then measures `clients` concurrent clients posting visitor messages, and the health check.
pub async fn bench(store: &Store, name: &str, seconds: u64, clients: usize, conversations: usize) -> Result<()> {
    let state = AppState::new(store.events(), store.views(), ApiConfig::default());
    api::bootstrap::bootstrap(&state, "admin@example.com", Some(PASSWORD.into())).await.map_err(anyhow::Error::msg)?;
    let (stop, stopped) = watch::channel(false);
    // `LIVECHAT_BENCH_PROJECTORS=0` leaves the projectors out, `=a,b` runs only those, to see
    // what they cost.
    let only = std::env::var("LIVECHAT_BENCH_PROJECTORS").ok();
    let runs = |name: &str| only.as_deref().is_none_or(|o| o.split(',').any(|n| n == name));
    for p in projections::all().into_iter().filter(|p| runs(p.name())) {
        tokio::spawn(
            projections::Runner::new(p, store.events(), store.views(), Default::default()).run(stopped.clone()),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut on_stop = stopped.clone();
    tokio::spawn(api::serve(listener, state.clone(), async move {
        let _ = on_stop.wait_for(|s| *s).await;
    }));
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients * 2).build()?;
    let post = reqwest::Method::POST;
    let login = |login: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let body = call(
                &http,
                reqwest::Method::POST,
                format!("{base}/api/v1/auth/token"),
                None,
                Some(json!({"login": login, "password": PASSWORD})),
            )
            .await?;
            anyhow::Ok(body["access_token"].as_str().context("token")?.to_string())
        }
    };
    let admin = login("admin@example.com".into()).await?;
    let channel =
        call(&http, post.clone(), format!("{base}/api/v1/channels"), Some(&admin), Some(json!({"name": "Bench"})))
            .await?;
    let channel_id = channel["channel_id"].as_str().context("channel id")?.to_string();
    for i in 0..10 {
        let user =
            json!({"login": format!("op{i}@example.com"), "password": PASSWORD, "name": format!("Operator {i}")});
        let created = call(&http, post.clone(), format!("{base}/api/v1/users"), Some(&admin), Some(user)).await?;
        let id = created["user_id"].clone();
        call(
            &http,
            post.clone(),
            format!("{base}/api/v1/channels/{channel_id}/operators"),
            Some(&admin),
            Some(json!({"user_id": id})),
        )
        .await?;
        let token = login(format!("op{i}@example.com")).await?;
        call(&http, post.clone(), format!("{base}/api/v1/channels/{channel_id}/join"), Some(&token), None).await?;
    }
    let mut sessions = Vec::new();
    for _ in 0..conversations {
        let s = call(
            &http,
            post.clone(),
            format!("{base}/api/v1/public/channels/{channel_id}/sessions"),
            None,
            Some(json!({})),
        )
        .await?;
        sessions.push((
            s["session_id"].as_str().context("id")?.to_string(),
            s["visitor_token"].as_str().context("token")?.to_string(),
        ));
    }
    let sessions = Arc::new(sessions);

    let health: Sample = run_writers(clients, Duration::from_secs(seconds), {
        let (http, base) = (http.clone(), base.clone());
        move |_, _| {
            let (http, url) = (http.clone(), format!("{base}/healthz"));
            async move {
                let res = http.get(url).send().await?;
                ensure!(res.status().is_success(), "healthz {}", res.status());
                Ok(())
            }
        }
    })
    .await?;
    let floor = bare_appends(store, &http, clients, seconds).await?;
    let posts: Sample = run_writers(clients, Duration::from_secs(seconds), {
        let (http, base, sessions) = (http.clone(), base.clone(), sessions.clone());
        move |w, n| {
            let (id, token) = sessions[(w + n as usize * clients) % sessions.len()].clone();
            let (http, url) = (http.clone(), format!("{base}/api/v1/public/sessions/{id}/messages"));
            async move {
                let body = json!({"text": format!("Message {n} from client {w}: is my order shipped yet?")});
                let res = http.post(url).bearer_auth(token).json(&body).send().await?;
                ensure!(res.status().is_success(), "post {}", res.status());
                Ok(())
            }
        }
    })
    .await?;
    let delivery = delivery(&http, &base, &sessions).await?;
    let _ = stop.send(true);
    println!("## {name}: messages over HTTP\n");
    println!("{clients} clients, {conversations} conversations, 10 operators. Cells: requests/s, p50 ms, p99 ms.\n");
    println!("| route | throughput | p50 ms | p99 ms | / ceiling |");
    println!("|---|---|---|---|---|");
    println!("| GET /healthz (ceiling) | {:.0} | {:.2} | {:.2} | 1.00 |", health.rate(), health.p(0.5), health.p(0.99));
    println!(
        "| POST bare durable append (floor) | {:.0} | {:.2} | {:.2} | {:.2} |",
        floor.rate(),
        floor.p(0.5),
        floor.p(0.99),
        floor.rate() / health.rate()
    );
    println!(
        "| POST message (visitor) | {:.0} | {:.2} | {:.2} | {:.2} |\n",
        posts.rate(),
        posts.p(0.5),
        posts.p(0.99),
        posts.rate() / health.rate()
    );
    println!(
        "Delivery over {} open WebSockets (visitors), {} messages, post sent -> frame received: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
        sessions.len(),
        delivery.len(),
        pct(&delivery, 0.5),
        pct(&delivery, 0.99),
        delivery.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

/// The floor under any write route: a bare axum route on its own port that appends one small
/// event to a stream of its own (no auth, no decision, no read, no answer body) to the same
/// store, under the same load. No message post can beat it.
async fn bare_appends(store: &Store, http: &reqwest::Client, clients: usize, seconds: u64) -> Result<Sample> {
    use axum::{extract::State, http::StatusCode, routing::post, Router};
    async fn append(State(events): State<Arc<dyn store::EventStore>>) -> StatusCode {
        let event = store::NewEvent::new("BenchAppended", json!({"text": "is my order shipped yet?"}));
        match events
            .append(&format!("bench-{}", uuid::Uuid::now_v7()), store::ExpectedVersion::NoStream, vec![event])
            .await
        {
            Ok(_) => StatusCode::CREATED,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    let app = Router::new().route("/append", post(append)).with_state(store.events());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/append", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let sample = run_writers(clients, Duration::from_secs(seconds), {
        let http = http.clone();
        move |_, _| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let res = http.post(url).send().await?;
                ensure!(res.status().is_success(), "append {}", res.status());
                Ok(())
            }
        }
    })
    .await;
    server.abort();
    sample
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// Opens one WebSocket per conversation (as its visitor), then posts one message into each,
/// 16 at a time, and measures from sending the post to the frame arriving on that socket.
async fn delivery(http: &reqwest::Client, base: &str, sessions: &Arc<Vec<(String, String)>>) -> Result<Vec<f64>> {
    use futures_util::StreamExt;
    use std::collections::HashMap;
    use std::time::Instant;
    let ws_base = base.replacen("http://", "ws://", 1);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    for (_, token) in sessions.iter() {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(format!("{ws_base}/api/v1/stream?access_token={token}")).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                    let at = Instant::now();
                    if let Ok(v) = serde_json::from_str::<Value>(&t) {
                        if let Some(text) = v["data"]["text"].as_str().filter(|t| t.starts_with("probe ")) {
                            let _ = tx.send((text.to_string(), at));
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(500)).await; // every socket subscribed
    let sent: Arc<tokio::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(16));
    let mut posts = Vec::new();
    for (i, (id, token)) in sessions.iter().enumerate() {
        let permit = semaphore.clone().acquire_owned().await?;
        let (http, sent, url, token) =
            (http.clone(), sent.clone(), format!("{base}/api/v1/public/sessions/{id}/messages"), token.clone());
        posts.push(tokio::spawn(async move {
            let text = format!("probe {i}");
            sent.lock().await.insert(text.clone(), Instant::now());
            let res = http.post(url).bearer_auth(token).json(&json!({"text": text})).send().await;
            drop(permit);
            res.map(|_| ())
        }));
    }
    for p in posts {
        p.await??;
    }
    let mut latencies = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while latencies.len() < sessions.len() {
        let Ok(Some((text, at))) = tokio::time::timeout_at(deadline, rx.recv()).await else { break };
        if let Some(t0) = sent.lock().await.get(&text) {
            latencies.push(at.duration_since(*t0).as_secs_f64() * 1000.0);
        }
    }
    latencies.sort_by(f64::total_cmp);
    ensure!(latencies.len() == sessions.len(), "only {} of {} messages arrived", latencies.len(), sessions.len());
    Ok(latencies)
}
