//! Running N writers for a while and summarising their latencies.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

/// Latencies of every operation in a run.
pub struct Sample {
    micros: Vec<u64>,
    elapsed: Duration,
}

impl Sample {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.micros.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency percentile in milliseconds.
    pub fn p(&self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let i = ((self.micros.len() as f64 * q) as usize).min(self.micros.len() - 1);
        self.micros[i] as f64 / 1000.0
    }
}

/// Runs `writers` tasks calling `op(writer, n)` with n = 0, 1, 2... for `duration`, after a
/// short warm-up that is not counted.
pub async fn run_writers<F, Fut>(writers: usize, duration: Duration, op: F) -> Result<Sample>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let warmup = Duration::from_millis(500);
    let start = Instant::now() + warmup;
    let end = start + duration;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut n = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    op(w, n).await?;
                    n += 1;
                    if t0 >= start {
                        lat.push(t0.elapsed().as_micros() as u64);
                    }
                }
                anyhow::Ok(lat)
            })
        })
        .collect();
    let mut micros = Vec::new();
    for t in tasks {
        micros.extend(t.await??);
    }
    micros.sort_unstable();
    Ok(Sample { micros, elapsed: duration })
}
