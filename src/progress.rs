//! What a run shows while it works: a live bar per phase and warm-up on a
//! terminal, one plain line per finished step otherwise, nothing but errors
//! and the final table with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use crate::stats::new_histogram;

/// Counters the workers update and the bar reads.
pub struct Live {
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub ttft: Mutex<Histogram<u64>>,
    started: Instant,
}

impl Live {
    pub fn new() -> Live {
        Live {
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            ttft: Mutex::new(new_histogram()),
            started: Instant::now(),
        }
    }

    pub fn record(&self, ok: bool, prompt_tokens: u64, ttft: Option<Duration>) {
        if ok {
            self.completed.fetch_add(1, Ordering::Relaxed);
            self.prompt_tokens
                .fetch_add(prompt_tokens, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(ttft) = ttft
            && let Ok(mut histogram) = self.ttft.lock()
        {
            histogram.saturating_record(ttft.as_micros().max(1) as u64);
        }
    }

    fn message(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let p95 = self
            .ttft
            .lock()
            .map(|h| h.value_at_quantile(0.95) as f64 / 1e6)
            .unwrap_or(0.0);
        format!(
            "{} ok, {} failed, input {:.0} tok/s, TTFT p95 {:.3}s",
            self.completed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.prompt_tokens.load(Ordering::Relaxed) as f64 / elapsed,
            p95
        )
    }
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

/// The display of one run.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    quiet: bool,
    bars: bool,
}

impl Ui {
    pub fn new(quiet: bool) -> Ui {
        Ui {
            quiet,
            bars: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// A line of progress (stderr), unless quiet.
    pub fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// A warning: shown even when quiet.
    pub fn warn(&self, text: &str) {
        eprintln!("warning: {text}");
    }

    /// A bar for a timed phase, refreshed from `live` until `finish`.
    pub fn phase(&self, label: String, seconds: f64, live: &std::sync::Arc<Live>) -> Bar {
        if !self.bars {
            return Bar { bar: None };
        }
        let bar = ProgressBar::new((seconds * 10.0).ceil() as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:24} {msg}")
                .expect("valid template"),
        );
        bar.set_prefix(label);
        let ticker = bar.clone();
        let live = std::sync::Arc::clone(live);
        let started = Instant::now();
        tokio::spawn(async move {
            while !ticker.is_finished() {
                ticker.set_position((started.elapsed().as_secs_f64() * 10.0) as u64);
                ticker.set_message(live.message());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Bar { bar: Some(bar) }
    }

    /// A bar counting `total` requests (the warm-up).
    pub fn counter(&self, label: String, total: u64) -> Bar {
        if !self.bars {
            return Bar { bar: None };
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {bar:24} {pos}/{len} ETA {eta}",
            )
            .expect("valid template"),
        );
        bar.set_prefix(label);
        Bar { bar: Some(bar) }
    }
}

/// A live bar, or nothing when not on a terminal.
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    pub fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
