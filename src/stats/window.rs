//! The steady-state window of a phase: its launch period minus a warm-up.

use crate::record::RequestRecord;
use serde::{Deserialize, Serialize};

/// The steady-state window of a phase (SPEC §2.2): the phase's launch
/// period minus a warm-up at its start. Wall-clock seconds (Unix).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start_unix_s: f64,
    pub end_unix_s: f64,
}

impl Window {
    /// The window of a phase that launched from `start` until `end`
    /// (Unix seconds) at `concurrency`: its warm-up is `warmup_fraction`
    /// of the phase, or one request latency when that is longer — the
    /// median time the first wave (each slot's first request) took — but
    /// never more than half the phase, so the window always keeps half.
    pub fn for_phase(
        records: &[RequestRecord],
        start: f64,
        end: f64,
        concurrency: u32,
        warmup_fraction: f64,
    ) -> Window {
        let length = (end - start).max(0.0);
        let mut first_wave: Vec<f64> = Vec::with_capacity(concurrency as usize);
        let mut by_launch: Vec<&RequestRecord> = records.iter().collect();
        by_launch.sort_by(|a, b| a.launch_unix_s.total_cmp(&b.launch_unix_s));
        for record in by_launch.into_iter().take(concurrency as usize) {
            first_wave.push(record.launch_unix_s - start + record.finish_s);
        }
        first_wave.sort_by(f64::total_cmp);
        let latency = first_wave.get(first_wave.len() / 2).copied().unwrap_or(0.0);
        let warmup = (warmup_fraction * length).max(latency).min(length / 2.0);
        Window {
            start_unix_s: start + warmup,
            end_unix_s: end,
        }
    }

    pub fn length(&self) -> f64 {
        (self.end_unix_s - self.start_unix_s).max(0.0)
    }

    pub(super) fn contains(&self, t: f64) -> bool {
        t >= self.start_unix_s && t < self.end_unix_s
    }

    /// Launched inside the window and finished before its end: the
    /// requests `--strict-time-window` keeps.
    pub fn holds(&self, record: &RequestRecord) -> bool {
        self.contains(record.launch_unix_s)
            && record.launch_unix_s + record.finish_s <= self.end_unix_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::phase::tests::{close, record};

    #[test]
    fn the_warm_up_is_a_fraction_or_one_request_latency_at_most_half() {
        // Two slots whose first requests take 1.5 and 2.5 s.
        let records = [record(0.0, 1.0, 0.5, 2), record(0.0, 2.0, 0.5, 2)];
        // 20 % of 20 s = 4 s beats the latency.
        let w = Window::for_phase(&records, 0.0, 20.0, 2, 0.2);
        assert!(close(w.start_unix_s, 4.0) && close(w.end_unix_s, 20.0));
        // 20 % of 5 s = 1 s is less than the median first-wave latency.
        let w = Window::for_phase(&records, 0.0, 5.0, 2, 0.2);
        assert!((w.start_unix_s - 2.501).abs() < 1e-3, "{w:?}");
        // Never more than half the phase.
        let w = Window::for_phase(&records, 0.0, 3.0, 2, 0.2);
        assert!(close(w.start_unix_s, 1.5));
    }
}
