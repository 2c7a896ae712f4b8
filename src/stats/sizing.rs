//! How long a sample must be for its figures to mean something.
//!
//! A closed loop's requests come in waves: each slot sends its next request
//! when the last one ends, so a window of one or two request cycles catches
//! one batching wave or two, and its TTFT quantiles are those of a handful
//! of waves, not of the requests it counts (seen: three samples of one run
//! at 15 285, 28 523 and 28 617 input tok/s from 2 s phases of about one and
//! a half cycles). A sample is sized by the request cycles its window spans
//! (the requests of one slot in a row: how many waves it averages over) and
//! by the requests it counts (a p95 over fewer than 20 is its largest value;
//! over 40, two requests lie beyond it). The duration it needs is found from
//! a phase at the same concurrency before it — the fixed plan's warm-up, the
//! peak search's phase that chose the level — whose mean request latency is
//! the cycle.

use serde::{Deserialize, Serialize};

use super::point::Sample;

/// The least a sample must span and count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleSizing {
    /// Request cycles the steady-state window spans at least: its length
    /// over the mean request latency (TTLT).
    pub min_cycles: f64,
    /// Requests the window counts at least (the TTFT p95's need; the p50
    /// needs a quarter of it).
    pub min_requests: u64,
}

impl Default for SampleSizing {
    /// 4 cycles and 40 requests.
    fn default() -> Self {
        SampleSizing {
            min_cycles: 4.0,
            min_requests: 40,
        }
    }
}

/// A lengthened sample is at most this many times the configured length:
/// a server so slow that it needs more is reported, not waited on.
pub const MAX_LENGTHENING: f64 = 10.0;

/// The share of `min_cycles` a window may fall short by before it is
/// reported (see [`SampleSizing::shortfall`]).
pub const CYCLES_SLACK: f64 = 0.9;

/// What one sample's window spans and counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    pub cycles: f64,
    pub counted: u64,
}

impl Coverage {
    /// A window of `window_s` seconds whose requests took `cycle_s` on
    /// average, counting `counted`.
    pub fn new(window_s: f64, cycle_s: f64, counted: u64) -> Coverage {
        let cycles = if cycle_s > 0.0 {
            window_s / cycle_s
        } else {
            0.0
        };
        Coverage { cycles, counted }
    }

    pub fn of(sample: &Sample) -> Coverage {
        Coverage::new(
            sample.window_end_unix_s - sample.window_start_unix_s,
            sample.ttlt.avg,
            sample.counted,
        )
    }
}

impl SampleSizing {
    /// The window a sample needs at `concurrency` when a request takes
    /// `cycle_s`: the longer of `min_cycles` cycles and the time in which
    /// the slots complete `min_requests` (each slot one a cycle).
    pub fn window_needed(&self, cycle_s: f64, concurrency: u32) -> f64 {
        let for_requests = self.min_requests as f64 * cycle_s / f64::from(concurrency.max(1));
        (self.min_cycles * cycle_s).max(for_requests)
    }

    /// The length of a sample phase whose window (the phase less its
    /// warm-up: `warmup_fraction` of it, or one request latency when that is
    /// longer, see `Window::for_phase`) is the window needed; never shorter
    /// than `configured`, nor longer than [`MAX_LENGTHENING`] times it.
    pub fn duration(
        &self,
        configured: f64,
        warmup_fraction: f64,
        cycle_s: f64,
        concurrency: u32,
    ) -> f64 {
        if !(cycle_s.is_finite() && cycle_s > 0.0) {
            return configured;
        }
        let window = self.window_needed(cycle_s, concurrency);
        // With the warm-up at most half the phase (min_cycles ≥ 1 keeps
        // `window + cycle` at least twice the cycle), either term makes the
        // window at least `window`.
        let needed = (window / (1.0 - warmup_fraction)).max(window + cycle_s);
        needed.clamp(configured, configured * MAX_LENGTHENING)
    }

    /// What a sample lacks, in words, or `None` when it spans and counts
    /// enough.
    /// A window sized to `min_cycles` from an earlier phase's latency
    /// comes out a few percent either side of it, so cycles count as too
    /// few below [`CYCLES_SLACK`] of the minimum.
    pub fn shortfall(&self, coverage: Coverage) -> Option<String> {
        let few_cycles = coverage.cycles < CYCLES_SLACK * self.min_cycles;
        let few_requests = coverage.counted < self.min_requests;
        if !few_cycles && !few_requests {
            return None;
        }
        let mut lacks = Vec::new();
        if few_cycles {
            lacks.push(format!(
                "spans {:.1} request cycles (at least {} make its figures those of more than a \
                 few batching waves)",
                coverage.cycles, self.min_cycles
            ));
        }
        if few_requests {
            let tail = if coverage.counted < 20 {
                ": its TTFT p95 is its largest value"
            } else {
                ""
            };
            lacks.push(format!(
                "counts {} requests (at least {}{tail})",
                coverage.counted, self.min_requests
            ));
        }
        Some(lacks.join(" and "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_needed_is_the_longer_of_cycles_and_requests() {
        let sizing = SampleSizing::default();
        // 4 slots of 1.2 s requests: 40 requests take 10 cycles = 12 s.
        assert!((sizing.window_needed(1.2, 4) - 12.0).abs() < 1e-12);
        // 52 slots: 40 requests come in one cycle, 4 cycles decide.
        assert!((sizing.window_needed(1.2, 52) - 4.8).abs() < 1e-12);
    }

    #[test]
    fn a_sized_phase_leaves_the_window_needed_after_its_warm_up() {
        let sizing = SampleSizing::default();
        for (cycle, concurrency, fraction) in [(1.2, 4, 0.2), (1.1, 52, 0.2), (0.3, 8, 0.5)] {
            let d = sizing.duration(3.0, fraction, cycle, concurrency);
            let warmup = (fraction * d).max(cycle).min(d / 2.0);
            let window = d - warmup;
            let needed = sizing.window_needed(cycle, concurrency);
            assert!(
                window >= needed - 1e-9,
                "{cycle} {concurrency}: {window} < {needed}"
            );
            // Not longer than it has to be: one of the two bounds is tight.
            assert!(
                (d - needed / (1.0 - fraction)).abs() < 1e-9 || (d - needed - cycle).abs() < 1e-9
            );
        }
    }

    #[test]
    fn never_shorter_than_configured_nor_past_the_cap() {
        let sizing = SampleSizing::default();
        assert_eq!(sizing.duration(60.0, 0.2, 0.1, 32), 60.0);
        // 40 one-slot requests of 20 s would need 1 000 s: capped at 10 × 3.
        assert_eq!(sizing.duration(3.0, 0.2, 20.0, 1), 30.0);
        assert_eq!(sizing.duration(3.0, 0.2, 0.0, 4), 3.0);
    }

    #[test]
    fn the_shortfall_names_what_is_missing() {
        let sizing = SampleSizing::default();
        let short = sizing.shortfall(Coverage::new(1.8, 1.2, 6)).unwrap();
        assert!(short.contains("spans 1.5 request cycles"), "{short}");
        assert!(short.contains("counts 6 requests"), "{short}");
        assert!(short.contains("largest value"), "{short}");
        let few = sizing.shortfall(Coverage::new(6.0, 1.2, 30)).unwrap();
        assert!(!few.contains("spans") && few.contains("counts 30"), "{few}");
        assert_eq!(sizing.shortfall(Coverage::new(6.0, 1.2, 40)), None);
    }
}
