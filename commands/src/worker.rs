//! The background workers' loop: one node at a time runs a worker (the store's ownership
//! lease, as projector runners do), a pass every so often, until the stop signal.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::App;

/// The stop signal of the workers (the receiving end of the server's `watch` channel).
/// A dropped sender counts as a stop: nobody is left to send it.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new(rx: watch::Receiver<bool>) -> Self {
        Shutdown(rx)
    }

    /// A sender and its signal, not set.
    pub fn channel() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Waits until the signal is set or `timeout` has passed, whichever is first.
    pub async fn wait(&mut self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, async {
            while !self.is_set() {
                if self.0.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }
}

impl From<watch::Receiver<bool>> for Shutdown {
    fn from(rx: watch::Receiver<bool>) -> Self {
        Shutdown(rx)
    }
}

/// How often a worker runs: a pass every `every` while it owns the lease; a node that does
/// not own it asks again every `retry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub every: Duration,
    pub retry: Duration,
}

impl From<Duration> for Schedule {
    fn from(every: Duration) -> Self {
        Schedule { every, retry: every }
    }
}

/// Runs `pass` on the schedule while this node owns `owner`'s lease (`views.try_own`),
/// until `shutdown`. A lost lease (the store's session died) is asked for again. The pass
/// logs its own failures: one bad pass does not stop the worker.
pub async fn run_owned<F, Fut>(
    app: &App,
    owner: &str,
    schedule: impl Into<Schedule>,
    mut shutdown: Shutdown,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let schedule = schedule.into();
    while !shutdown.is_set() {
        match app.views.try_own(owner).await {
            Ok(Some(ownership)) => {
                while !shutdown.is_set() && ownership.is_alive() {
                    pass().await;
                    shutdown.wait(schedule.every).await;
                }
            }
            Ok(None) => shutdown.wait(schedule.retry).await,
            Err(e) => {
                tracing::warn!(error = %e, owner, "cannot own the worker's lease");
                shutdown.wait(schedule.retry).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    async fn app() -> App {
        let store = store::Store::open(&store::StoreUrl::Memory).await.unwrap();
        App::new(store.events(), store.views(), crate::Config::default())
    }

    fn counting(count: &Arc<AtomicUsize>) -> impl FnMut() -> std::future::Ready<()> {
        let count = count.clone();
        move || {
            count.fetch_add(1, Ordering::SeqCst);
            std::future::ready(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_owner_runs_its_pass_on_schedule_and_gives_the_lease_back_on_stop() {
        let app = app().await;
        let (stop, shutdown) = Shutdown::channel();
        let count = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (app, pass) = (app.clone(), counting(&count));
            tokio::spawn(async move { run_owned(&app, "w", Duration::from_secs(10), shutdown, pass).await })
        };
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(count.load(Ordering::SeqCst), 3, "at 0, 10 and 20 s");
        assert!(app.views.try_own("w").await.unwrap().is_none(), "the worker holds the lease");
        stop.send(true).unwrap();
        worker.await.unwrap();
        assert!(app.views.try_own("w").await.unwrap().is_some(), "given back once stopped");
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_without_the_lease_runs_nothing_and_asks_again() {
        let app = app().await;
        let held = app.views.try_own("w").await.unwrap().expect("free at first");
        let (stop, shutdown) = Shutdown::channel();
        let count = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (app, pass) = (app.clone(), counting(&count));
            let schedule = Schedule { every: Duration::from_secs(1), retry: Duration::from_secs(30) };
            tokio::spawn(async move { run_owned(&app, "w", schedule, shutdown, pass).await })
        };
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(count.load(Ordering::SeqCst), 0);
        drop(held);
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert_eq!(count.load(Ordering::SeqCst), 5, "owner from 30 s on, a pass a second");
        drop(stop);
        worker.await.unwrap();
    }
}
