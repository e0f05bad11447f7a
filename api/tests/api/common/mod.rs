//! A real in-process server on a socket, over a memory store, with every projector running
//! and a manual clock: shared by the HTTP test files.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use api::application::{Application, Settings};
use api::AppState;
use commands::clock::ManualClock;
use reqwest::Method;
use serde_json::{json, Value};
use store::{Store, StoreUrl};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct Env {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub admin: String,
    app: Application,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn position(&self) -> String {
        self.headers.get("x-livechat-position").and_then(|v| v.to_str().ok()).unwrap_or("0:0").to_string()
    }
}

impl Env {
    pub async fn start() -> Env {
        Env::start_on(Store::open(&StoreUrl::Memory).await.unwrap()).await
    }

    /// The same over a store of the caller's (opened and migrated).
    pub async fn start_on(store: Store) -> Env {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        // Visitors' countries come from a trusted proxy header, as behind Cloudflare.
        let geo = api::geo::CountryResolver::default().with_header("CF-IPCountry").unwrap();
        // Workers off: tests on the manual clock run the sweeper's and mailer's passes by hand.
        let settings = Settings {
            geo,
            clock: Some(clock.clone()),
            runner: projections::RunnerConfig { poll: Duration::from_millis(10), ..Default::default() },
            workers: false,
            ..Settings::default()
        };
        let mut app = Application::build(&store, settings);
        let state = app.state().clone();
        api::bootstrap::bootstrap(&state, "admin@example.com", Some(PASSWORD.into())).await.unwrap().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        app.serve(listener, api::server::DEFAULT_LINGER);
        let mut env = Env { base, http: reqwest::Client::new(), clock, state, admin: String::new(), app };
        env.admin = env.login("admin@example.com").await;
        env
    }

    /// Stops the projectors (and the server) of this environment.
    pub fn stop(&self) {
        self.app.stop();
    }

    pub async fn login(&self, login: &str) -> String {
        let a = self
            .call(Method::POST, "/api/v1/auth/token", None, Some(json!({"login": login, "password": PASSWORD})))
            .await;
        assert_eq!(a.status, 200, "login {login}: {}", a.body);
        a.body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        self.call_with(method, path, token, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    /// A channel with these operators (created through the API), returning its id.
    pub async fn channel(&self, name: &str, operators: &[Uuid]) -> String {
        let created = self.call(Method::POST, "/api/v1/channels", Some(&self.admin), Some(json!({"name": name}))).await;
        let id = created.body["channel_id"].as_str().unwrap().to_string();
        for op in operators {
            let a = self
                .call(
                    Method::POST,
                    &format!("/api/v1/channels/{id}/operators"),
                    Some(&self.admin),
                    Some(json!({"user_id": op})),
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
        id
    }

    /// An operator account (through the users API) and their token.
    pub async fn operator(&self, login: &str, name: &str) -> (Uuid, String) {
        let body =
            json!({"login": login, "password": PASSWORD, "name": name, "chat_name": format!("{name} (support)")});
        let a = self.call(Method::POST, "/api/v1/users", Some(&self.admin), Some(body)).await;
        assert_eq!(a.status, 201, "{}", a.body);
        (a.body["user_id"].as_str().unwrap().parse().unwrap(), self.login(login).await)
    }
}
