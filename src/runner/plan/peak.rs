//! The peak search of one point (SPEC §2.3) as a pure state machine: it
//! says which phase to run next and learns from each phase's outcome, so it
//! can be replayed from stored outcomes when a run resumes.
//!
//! 1. Start at the start concurrency (or the previous rate's peak).
//! 2. Under the TTFT threshold: step up by the increment times 10, 5, 3, 2
//!    or 1 as the headroom `(max_ttft - measured) / max_ttft` is above 0.7,
//!    0.5, 0.3, 0.15 or not; never past the maximum.
//! 3. Over it: on the first phase of a ramp that started above the start
//!    concurrency, back off to the midpoint and ramp again (never stepping
//!    back up to a level known to fail: that gap is bisected instead);
//!    else, when the gap to the last good level is more than one increment,
//!    bisect it (at most 10 refinements, on increment multiples); then stop.
//! 4. No new ramp phase once the point's time budget leaves less than
//!    `min(10 s, ramp duration)`.
//! 5. Peak: the passing level with the highest input throughput (or, when
//!    none passed, a level where requests completed with the lowest TTFT,
//!    flagged).
//! 6. Retries: `--num-retries` phases of `--sample-duration` at the peak.
//!    They, and only they, are the samples: the ramp phase that chose the
//!    peak was chosen by its own noise (winner's curse).

use super::common::{
    Lengthening, Outcome, PlanResult, PlannedPhase, sample_duration, step_multiplier,
};
use crate::store::PhaseKind;

/// Most bisection steps between the last good and the first bad level.
const MAX_REFINEMENTS: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampParams {
    pub start_concurrency: u32,
    pub increment: u32,
    pub max_concurrency: u32,
    pub max_ttft: f64,
    pub num_retries: u32,
    /// Time budget of the ramp, seconds.
    pub test_duration: f64,
    pub ramp_duration: f64,
    /// Length of each retry, seconds (lengthened under `lengthening`).
    pub sample_duration: f64,
    pub lengthening: Option<Lengthening>,
}

impl RampParams {
    /// A phase shorter than this is not started.
    fn min_phase(&self) -> f64 {
        self.ramp_duration.min(10.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Ramping {
        concurrency: u32,
        /// This phase starts a ramp (the first, or one after a back-off).
        first: bool,
    },
    Refining {
        good: u32,
        bad: u32,
        step: u32,
    },
    Retrying {
        done: u32,
    },
    Done,
}

/// The peak search of one point.
#[derive(Debug, Clone)]
pub struct PeakSearch {
    params: RampParams,
    state: State,
    outcomes: Vec<Outcome>,
    last_good: Option<u32>,
    /// The lowest level that failed: the ramp does not step up to it again.
    ceiling: Option<u32>,
    /// Set when the retries start.
    peak_index: Option<usize>,
}

impl PeakSearch {
    pub fn new(params: RampParams, start: u32) -> Self {
        let start = start.clamp(params.start_concurrency, params.max_concurrency);
        Self {
            params,
            state: State::Ramping {
                concurrency: start,
                first: true,
            },
            outcomes: Vec::new(),
            last_good: None,
            ceiling: None,
            peak_index: None,
        }
    }

    /// Rebuilds a search from the outcomes stored so far.
    pub fn replay(params: RampParams, start: u32, outcomes: &[Outcome]) -> Self {
        let mut search = Self::new(params, start);
        for outcome in outcomes {
            search.record(*outcome);
        }
        search
    }

    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    fn elapsed(&self) -> f64 {
        self.outcomes
            .iter()
            .filter(|o| !matches!(o.kind, PhaseKind::Retry(_)))
            .map(|o| o.elapsed)
            .sum()
    }

    /// Time for another ramp phase, and how long it may be.
    fn ramp_phase_duration(&self) -> Option<f64> {
        if self.outcomes.is_empty() {
            return Some(self.params.ramp_duration.min(self.params.test_duration));
        }
        let remaining = self.params.test_duration - self.elapsed();
        (remaining >= self.params.min_phase()).then(|| self.params.ramp_duration.min(remaining))
    }

    /// The phase to run next, or `None` when the point is measured.
    pub fn next(&self) -> Option<PlannedPhase> {
        match &self.state {
            State::Ramping { concurrency, .. } => Some(PlannedPhase {
                kind: PhaseKind::Ramp,
                concurrency: *concurrency,
                duration: self.ramp_phase_duration()?,
            }),
            State::Refining { good, bad, step } => Some(PlannedPhase {
                kind: PhaseKind::Refine(step + 1),
                concurrency: self.midpoint(*good, *bad)?,
                duration: self.ramp_phase_duration()?,
            }),
            State::Retrying { done } => {
                // The phase that chose the peak ran at the samples' load.
                let peak = &self.outcomes[self.peak_index?];
                Some(PlannedPhase {
                    kind: PhaseKind::Retry(done + 1),
                    concurrency: peak.concurrency,
                    duration: sample_duration(
                        self.params.lengthening,
                        self.params.sample_duration,
                        peak.cycle_s,
                        peak.concurrency,
                    ),
                })
            }
            State::Done => None,
        }
    }

    /// The increment-aligned midpoint strictly between `low` and `high`.
    fn midpoint(&self, low: u32, high: u32) -> Option<u32> {
        let increment = self.params.increment;
        let steps = (high - low) / increment;
        let mid = low + (steps / 2).max(1) * increment;
        (mid > low && mid < high).then_some(mid)
    }

    /// Learns from the phase `next()` planned.
    pub fn record(&mut self, outcome: Outcome) {
        self.outcomes.push(outcome);
        if !outcome.passed {
            self.ceiling = Some(
                self.ceiling
                    .map_or(outcome.concurrency, |c| c.min(outcome.concurrency)),
            );
        }
        self.state = match self.state.clone() {
            State::Ramping { concurrency, first } => self.after_ramp(concurrency, first, &outcome),
            State::Refining { good, bad, step } => self.after_refine(good, bad, step, &outcome),
            State::Retrying { done } => {
                if done + 1 >= self.params.num_retries {
                    State::Done
                } else {
                    State::Retrying { done: done + 1 }
                }
            }
            State::Done => State::Done,
        };
        // A ramp with no time left ends here too.
        if matches!(self.state, State::Ramping { .. } | State::Refining { .. })
            && self.next().is_none()
        {
            self.state = self.finish_ramp();
        }
    }

    /// After a ramp phase at `concurrency`: step up by the headroom, back
    /// off, bisect, or stop.
    fn after_ramp(&mut self, concurrency: u32, first: bool, outcome: &Outcome) -> State {
        let params = self.params;
        if outcome.passed {
            self.last_good = Some(concurrency);
            let headroom = (params.max_ttft - outcome.ttft) / params.max_ttft;
            let next = concurrency
                .saturating_add(step_multiplier(headroom) * params.increment)
                .min(params.max_concurrency);
            match self.ceiling {
                _ if concurrency >= params.max_concurrency => self.finish_ramp(),
                Some(bad) if next >= bad => {
                    if self.midpoint(concurrency, bad).is_some() {
                        State::Refining {
                            good: concurrency,
                            bad,
                            step: 0,
                        }
                    } else {
                        self.finish_ramp()
                    }
                }
                _ => State::Ramping {
                    concurrency: next,
                    first: false,
                },
            }
        } else if first && concurrency > params.start_concurrency {
            // Started too high (from the previous rate's peak): back off
            // halfway towards the start and ramp again.
            let low = params.start_concurrency;
            let steps = (concurrency - low) / params.increment;
            State::Ramping {
                concurrency: low + steps / 2 * params.increment,
                first: true,
            }
        } else {
            match self.last_good {
                Some(good) if concurrency - good > params.increment => State::Refining {
                    good,
                    bad: concurrency,
                    step: 0,
                },
                _ => self.finish_ramp(),
            }
        }
    }

    /// After a bisection step between `good` and `bad`.
    fn after_refine(&mut self, good: u32, bad: u32, step: u32, outcome: &Outcome) -> State {
        let (good, bad) = if outcome.passed {
            self.last_good = Some(outcome.concurrency);
            (outcome.concurrency, bad)
        } else {
            (good, outcome.concurrency)
        };
        let step = step + 1;
        if step >= MAX_REFINEMENTS || self.midpoint(good, bad).is_none() {
            self.finish_ramp()
        } else {
            State::Refining { good, bad, step }
        }
    }

    /// Chooses the peak and moves on to the retries.
    fn finish_ramp(&mut self) -> State {
        let ramp = self
            .outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| !matches!(o.kind, PhaseKind::Retry(_)));
        let best_passing = ramp
            .clone()
            .filter(|(_, o)| o.passed)
            .max_by(|(_, a), (_, b)| a.input_tps.total_cmp(&b.input_tps));
        // With nothing passing, a level where requests completed beats one
        // where none did (whose TTFT means nothing), then the lowest TTFT.
        let best = best_passing.or_else(|| {
            ramp.min_by(|(_, a), (_, b)| {
                (a.completed == 0)
                    .cmp(&(b.completed == 0))
                    .then(a.ttft.total_cmp(&b.ttft))
            })
        });
        self.peak_index = best.map(|(index, _)| index);
        if self.params.num_retries == 0 {
            State::Done
        } else {
            State::Retrying { done: 0 }
        }
    }

    /// The peak, once the ramp is over: the retries are its samples; the
    /// phase that chose it is not one.
    pub fn peak(&self) -> Option<PlanResult> {
        let index = self.peak_index?;
        let peak = &self.outcomes[index];
        Some(PlanResult {
            concurrency: peak.concurrency,
            passed: peak.passed,
            selection: Some(index),
            samples: self
                .outcomes
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!(o.kind, PhaseKind::Retry(_)))
                .map(|(i, _)| i)
                .collect(),
            other_samples: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> RampParams {
        RampParams {
            start_concurrency: 2,
            increment: 2,
            max_concurrency: 1000,
            max_ttft: 2.0,
            num_retries: 3,
            test_duration: 10_000.0,
            ramp_duration: 60.0,
            sample_duration: 60.0,
            lengthening: None,
        }
    }

    /// Runs the search against a server whose TTFT is `ttft(c)` and whose
    /// throughput grows with concurrency; returns the concurrencies run and
    /// the peak.
    fn drive(
        params: RampParams,
        start: u32,
        ttft: impl Fn(u32) -> f64,
    ) -> (Vec<String>, PlanResult) {
        let mut search = PeakSearch::new(params, start);
        let mut ran = Vec::new();
        while let Some(phase) = search.next() {
            ran.push(phase.kind.id(phase.concurrency));
            let measured = ttft(phase.concurrency);
            search.record(Outcome {
                kind: phase.kind,
                concurrency: phase.concurrency,
                passed: measured <= params.max_ttft,
                ttft: measured,
                completed: 10,
                failed: 0,
                tokens_per_req: 0.0,
                input_tps: f64::from(phase.concurrency) * 100.0,
                elapsed: phase.duration,
                cycle_s: 1.0,
            });
        }
        (ran, search.peak().unwrap())
    }

    /// The planned durations of the phases a search runs when every phase
    /// passes with the same TTFT.
    fn durations_all_passing(params: RampParams, ttft: f64) -> Vec<f64> {
        let mut search = PeakSearch::new(params, 2);
        let mut durations = Vec::new();
        while let Some(phase) = search.next() {
            durations.push(phase.duration);
            search.record(Outcome {
                kind: phase.kind,
                concurrency: phase.concurrency,
                passed: true,
                ttft,
                completed: 10,
                failed: 0,
                tokens_per_req: 0.0,
                input_tps: 1.0,
                elapsed: phase.duration,
                cycle_s: 1.0,
            });
        }
        durations
    }

    #[test]
    fn steps_scale_with_headroom() {
        assert_eq!(step_multiplier(0.9), 10);
        assert_eq!(step_multiplier(0.6), 5);
        assert_eq!(step_multiplier(0.4), 3);
        assert_eq!(step_multiplier(0.2), 2);
        assert_eq!(step_multiplier(0.1), 1);
        assert_eq!(step_multiplier(-1.0), 1);
    }

    #[test]
    fn ramps_up_then_bisects_the_gap_then_retries() {
        // TTFT 0.1 s per concurrent request: the limit of 2 s is crossed
        // above c = 20.
        let (ran, peak) = drive(params(), 2, |c| f64::from(c) * 0.1);
        assert_eq!(
            ran,
            [
                "RAMP_c2",           // h = 0.9  -> +20
                "RAMP_c22",          // 2.2 s: over; gap 20 > 2 -> bisect
                "RAMP_REFINE_c12_1", // pass
                "RAMP_REFINE_c16_2", // pass
                "RAMP_REFINE_c18_3", // pass
                "RAMP_REFINE_c20_4", // pass; 20..22 has no midpoint
                "RETRY_1",
                "RETRY_2",
                "RETRY_3",
            ]
        );
        assert_eq!(peak.concurrency, 20);
        assert!(peak.passed);
        // The phase that chose the peak is not a sample; the retries are.
        assert_eq!(peak.selection, Some(5));
        assert_eq!(peak.samples, vec![6, 7, 8]);
    }

    #[test]
    fn backs_off_to_the_midpoint_when_the_previous_peak_is_too_high() {
        let (ran, peak) = drive(params(), 40, |c| if c > 10 { 3.0 } else { 1.9 });
        assert_eq!(&ran[..3], ["RAMP_c40", "RAMP_c20", "RAMP_c10"]);
        assert_eq!(peak.concurrency, 10);
    }

    #[test]
    fn never_exceeds_max_concurrency() {
        let params = RampParams {
            max_concurrency: 30,
            num_retries: 1,
            ..params()
        };
        let (ran, peak) = drive(params, 2, |_| 0.1);
        assert_eq!(ran, ["RAMP_c2", "RAMP_c22", "RAMP_c30", "RETRY_1"]);
        assert_eq!(peak.concurrency, 30);
    }

    #[test]
    fn nothing_passing_picks_the_lowest_ttft_and_flags_it() {
        let (ran, peak) = drive(params(), 2, |c| 5.0 + f64::from(c));
        assert_eq!(ran, ["RAMP_c2", "RETRY_1", "RETRY_2", "RETRY_3"]);
        assert!(!peak.passed);
        assert_eq!(peak.concurrency, 2);
    }

    #[test]
    fn the_time_budget_stops_the_ramp_but_not_the_retries() {
        let params = RampParams {
            test_duration: 25.0,
            ramp_duration: 10.0,
            num_retries: 2,
            ..params()
        };
        // Two full phases (20 s), then 5 s left < min(10, 10): stop.
        let (ran, peak) = drive(params, 2, |c| f64::from(c) * 0.01);
        assert_eq!(ran, ["RAMP_c2", "RAMP_c22", "RETRY_1", "RETRY_2"]);
        assert_eq!(peak.concurrency, 22);
    }

    #[test]
    fn a_remainder_below_the_minimum_phase_is_not_run() {
        let params = RampParams {
            test_duration: 7.0,
            ramp_duration: 3.0,
            num_retries: 0,
            ..params()
        };
        let durations = durations_all_passing(params, 1.9);
        // 3 + 3 = 6 s used, 1 s left < min(10, 3) = 3.
        assert_eq!(durations, [3.0, 3.0]);
    }

    #[test]
    fn the_last_ramp_phase_is_shortened_to_the_budget_left() {
        let params = RampParams {
            test_duration: 25.0,
            ramp_duration: 15.0,
            num_retries: 0,
            ..params()
        };
        let durations = durations_all_passing(params, 0.1);
        // 10 s left >= min(10, 15): run, shortened to 10 s.
        assert_eq!(durations, [15.0, 10.0]);
    }

    #[test]
    fn after_a_back_off_the_failed_level_is_bisected_not_rerun() {
        // 40 fails, 20 passes with lots of headroom: the next step would be
        // 40 again; the gap 20..40 is bisected instead.
        let (ran, peak) = drive(params(), 40, |c| if c >= 32 { 3.0 } else { 0.2 });
        assert_eq!(
            ran,
            [
                "RAMP_c40",
                "RAMP_c20",
                "RAMP_REFINE_c30_1",
                "RAMP_REFINE_c34_2",
                "RAMP_REFINE_c32_3",
                "RETRY_1",
                "RETRY_2",
                "RETRY_3",
            ]
        );
        assert_eq!(peak.concurrency, 30);
    }

    #[test]
    fn with_nothing_passing_a_level_where_nothing_completed_is_not_the_peak() {
        let mut search = PeakSearch::new(params(), 8);
        // 8: every request timed out (no TTFT at all); 4 and 2: slow.
        let results = [(8, 0, 0.0), (4, 10, 4.0), (2, 10, 3.0)];
        for (concurrency, completed, ttft) in results {
            let phase = search.next().unwrap();
            assert_eq!(phase.concurrency, concurrency);
            search.record(Outcome {
                kind: phase.kind,
                concurrency,
                passed: false,
                ttft,
                completed,
                failed: 0,
                tokens_per_req: 0.0,
                input_tps: 1.0,
                elapsed: phase.duration,
                cycle_s: 1.0,
            });
        }
        let peak = search.peak().unwrap();
        assert_eq!((peak.concurrency, peak.passed), (2, false));
    }

    #[test]
    fn replaying_outcomes_reaches_the_same_state() {
        let mut search = PeakSearch::new(params(), 2);
        for _ in 0..3 {
            let phase = search.next().unwrap();
            search.record(Outcome {
                kind: phase.kind,
                concurrency: phase.concurrency,
                passed: phase.concurrency < 15,
                ttft: f64::from(phase.concurrency) * 0.1,
                completed: 10,
                failed: 0,
                tokens_per_req: 0.0,
                input_tps: 1.0,
                elapsed: phase.duration,
                cycle_s: 1.0,
            });
        }
        let replayed = PeakSearch::replay(params(), 2, search.outcomes());
        assert_eq!(replayed.next(), search.next());
        assert_eq!(replayed.state, search.state);
    }

    /// Runs a search from 2 against a server that passes below 10 slots and
    /// whose requests take 0.1 s per slot; the retries' (concurrency,
    /// duration) and the peak.
    fn retries(params: RampParams) -> (Vec<(u32, f64)>, u32) {
        let mut search = PeakSearch::new(params, 2);
        let mut retries = Vec::new();
        while let Some(phase) = search.next() {
            if matches!(phase.kind, PhaseKind::Retry(_)) {
                retries.push((phase.concurrency, phase.duration));
            }
            search.record(Outcome {
                kind: phase.kind,
                concurrency: phase.concurrency,
                passed: phase.concurrency < 10,
                ttft: 1.5,
                completed: 10,
                failed: 0,
                tokens_per_req: 0.0,
                input_tps: f64::from(phase.concurrency),
                elapsed: phase.duration,
                cycle_s: 0.1 * f64::from(phase.concurrency),
            });
        }
        (retries, search.peak().unwrap().concurrency)
    }

    #[test]
    fn retries_take_the_sample_duration_and_without_them_there_are_no_samples() {
        let sampled = RampParams {
            sample_duration: 7.0,
            lengthening: None,
            num_retries: 2,
            ..params()
        };
        let (retries, _) = retries(sampled);
        let retry_durations: Vec<f64> = retries.iter().map(|&(_, d)| d).collect();
        assert_eq!(retry_durations, [7.0, 7.0]);
        let (_, peak) = drive(
            RampParams {
                num_retries: 0,
                ..params()
            },
            2,
            |c| f64::from(c) * 0.1,
        );
        assert!(peak.samples.is_empty());
        assert!(peak.selection.is_some(), "the peak is still known");
    }

    #[test]
    fn lengthened_retries_are_sized_from_the_phase_that_chose_the_peak() {
        let sampled = RampParams {
            sample_duration: 3.0,
            lengthening: Some(Lengthening {
                sizing: crate::stats::SampleSizing::default(),
                warmup_fraction: 0.2,
            }),
            num_retries: 2,
            ..params()
        };
        let (retries, peak) = retries(sampled);
        // The window: the longer of 4 cycles and 40 requests over `peak`
        // slots; the phase: that over 0.8 (or plus a cycle when longer).
        let cycle = 0.1 * f64::from(peak);
        let window = (4.0 * cycle).max(40.0 * cycle / f64::from(peak));
        let expected = (window / 0.8).max(window + cycle).max(3.0);
        assert_eq!(retries.len(), 2);
        for (concurrency, duration) in retries {
            assert_eq!(concurrency, peak);
            assert!(
                (duration - expected).abs() < 1e-9,
                "{duration} s, {expected} s"
            );
        }
    }
}
