//! The progress bar long jobs share (rebuild, replay, import).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar on a terminal; plain progress lines (at most one a second) otherwise.
pub struct Bar {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    started: Instant,
    last_line: std::cell::Cell<Instant>,
}

impl Bar {
    pub fn new(label: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:40}] {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar
        });
        Bar { bar, label: label.to_string(), total, started: Instant::now(), last_line: Instant::now().into() }
    }

    pub fn set(&self, done: u64) {
        match &self.bar {
            Some(bar) => {
                if done > bar.length().unwrap_or(0) {
                    bar.set_length(done);
                }
                bar.set_position(done);
            }
            None if self.last_line.get().elapsed() >= Duration::from_secs(1) => {
                self.last_line.set(Instant::now());
                let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                let eta = self.total.saturating_sub(done) as f64 / rate.max(1e-9);
                eprintln!("{}: {done}/{} events, {rate:.0} events/s, ETA {eta:.0} s", self.label, self.total);
            }
            None => {}
        }
    }

    /// The terminal bar's length, once the job knows it (the plain lines keep the first total).
    pub fn set_length(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    pub fn finish(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!("{}: {done} events in {secs:.2} s ({:.0} events/s)", self.label, done as f64 / secs.max(1e-9));
    }
}
