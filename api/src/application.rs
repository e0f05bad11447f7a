//! One startup for `livechat serve` and the tests: the state over the stores, the projector
//! runners, the sweeper and the transcript mailer (not in read-only mode), optionally the
//! HTTP server; and one shutdown, in order: HTTP drains first (its last requests still see
//! the workers run), then the workers stop, each awaited within a bound.

use std::sync::Arc;
use std::time::Duration;

use commands::worker::Shutdown;
use projections::{Runner, RunnerConfig};
use store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{geo, throttle, ApiConfig, AppState};
use commands::clock::Clock;

/// How long the HTTP server may take to answer what it accepted.
const DRAIN_BOUND: Duration = Duration::from_secs(30);
/// How long each worker may take to stop (a projector commits its batch).
const WORKER_BOUND: Duration = Duration::from_secs(10);

/// What the application is built with.
pub struct Settings {
    /// The use cases' settings.
    pub config: commands::Config,
    pub http: ApiConfig,
    pub geo: geo::CountryResolver,
    pub throttle: throttle::Limits,
    /// `None`: the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    pub runner: RunnerConfig,
    /// Runs the sweeper and the mailer. Off for tests on a manual clock, which run their
    /// passes by hand (a sweeper on its own would take their idle operators offline).
    /// Never on in read-only mode: a past view sends no mail and takes nobody offline.
    pub workers: bool,
    /// Period of the sweeper's presence pass (stale slots are freed every quarter of the
    /// claim timeout, at most this).
    pub presence_every: Duration,
    /// Period of the mailer's pass.
    pub mailer_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            config: commands::Config::default(),
            http: ApiConfig::default(),
            geo: geo::CountryResolver::default(),
            throttle: throttle::Limits::default(),
            clock: None,
            runner: RunnerConfig::default(),
            workers: true,
            presence_every: commands::presence::PRESENCE_EVERY,
            mailer_every: commands::mailer::MAILER_EVERY,
        }
    }
}

/// Why the HTTP server did not stop cleanly.
#[derive(Debug)]
pub enum ServeError {
    Server(std::io::Error),
    Task(tokio::task::JoinError),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Server(e) => write!(f, "server failed: {e}"),
            ServeError::Task(e) => write!(f, "server task failed: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// The running application: its state, its workers and (once [`Application::serve`]) its
/// HTTP server.
pub struct Application {
    state: AppState,
    /// Stops the projectors, the sweeper and the mailer.
    stop: watch::Sender<bool>,
    /// Stops the HTTP server (it drains).
    drain: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    /// Sweeper and mailer first, then the projector runners: the order they are awaited in.
    workers: Vec<JoinHandle<()>>,
}

impl Application {
    /// The state over `store` (opened and migrated by the caller) and every worker, started.
    pub fn build(store: &Store, settings: Settings) -> Application {
        let Settings { config, http, geo, throttle, clock, runner, workers, presence_every, mailer_every } = settings;
        let mut state = AppState::new(store.events(), store.views(), http).with_config(config).with_geo(geo);
        if let Some(clock) = clock {
            state = state.with_clock(clock);
        }
        state.throttle = Arc::new(throttle::Throttle::new(throttle));
        let (stop, stopped) = watch::channel(false);
        let mut handles = Vec::new();
        if workers && !state.http.read_only {
            let app = state.app.clone();
            handles.push(tokio::spawn(commands::presence::run_sweeper(
                app.clone(),
                presence_every,
                stopped.clone().into(),
            )));
            let render = crate::mailer::renderer(&state);
            handles.push(tokio::spawn(commands::mailer::run(
                app,
                render,
                mailer_every,
                Shutdown::new(stopped.clone()),
            )));
        }
        for p in &state.projectors {
            let runner = Runner::new(p.clone(), store.events(), store.views(), runner.clone());
            handles.push(tokio::spawn(runner.run(stopped.clone())));
        }
        let (drain, _) = watch::channel(false);
        Application { state, stop, drain, server: None, workers: handles }
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves on `listener` until [`Application::shutdown`] (idle connections stay open for
    /// `linger` while draining, see [`crate::serve_with`]).
    pub fn serve(&mut self, listener: tokio::net::TcpListener, linger: Duration) {
        let mut on_drain = self.drain.subscribe();
        let signal = async move {
            let _ = on_drain.wait_for(|s| *s).await;
        };
        self.server = Some(tokio::spawn(crate::serve_with(listener, self.state.clone(), signal, linger)));
    }

    /// Signals the server and every worker to stop, without waiting for them.
    pub fn stop(&self) {
        let _ = self.drain.send(true);
        let _ = self.stop.send(true);
    }

    /// Drains the HTTP server (within 30 s), then stops the workers and waits for each
    /// (within 10 s). The server's failure, if any, once the workers are stopped.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.drain.send(true);
        let drained = match self.server {
            Some(server) => tokio::time::timeout(DRAIN_BOUND, server).await,
            None => Ok(Ok(Ok(()))),
        };
        let _ = self.stop.send(true);
        let outcome = match drained {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(ServeError::Server(e)),
            Ok(Err(e)) => Err(ServeError::Task(e)),
            Err(_) => {
                tracing::warn!("requests still running after 30 s; stopping anyway");
                Ok(())
            }
        };
        for w in self.workers {
            let _ = tokio::time::timeout(WORKER_BOUND, w).await;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn memory() -> Store {
        Store::open(&store::StoreUrl::Memory).await.unwrap()
    }

    #[tokio::test]
    async fn the_sweeper_and_the_mailer_run_until_shutdown() {
        let store = memory().await;
        let app = Application::build(&store, Settings::default());
        let views = store.views();
        let mut held = (None, None);
        for _ in 0..200 {
            // Each worker holds its lease while it runs.
            held =
                (views.try_own("presence_sweeper").await.unwrap(), views.try_own("transcript_mailer").await.unwrap());
            if held.0.is_none() && held.1.is_none() {
                break;
            }
            held = (None, None);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(held.0.is_none() && held.1.is_none(), "both workers own their lease");
        tokio::time::timeout(Duration::from_secs(5), app.shutdown()).await.expect("stops within bounds").unwrap();
        assert!(views.try_own("presence_sweeper").await.unwrap().is_some(), "the sweeper stopped");
        assert!(views.try_own("transcript_mailer").await.unwrap().is_some(), "the mailer stopped");
    }

    #[tokio::test]
    async fn read_only_or_workers_off_starts_no_worker_but_the_projectors() {
        for settings in [
            Settings { workers: false, ..Settings::default() },
            Settings { http: ApiConfig { read_only: true, ..ApiConfig::default() }, ..Settings::default() },
        ] {
            let store = memory().await;
            let app = Application::build(&store, settings);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let views = store.views();
            assert!(views.try_own("presence_sweeper").await.unwrap().is_some());
            assert!(views.try_own("transcript_mailer").await.unwrap().is_some());
            app.shutdown().await.unwrap();
        }
    }
}
