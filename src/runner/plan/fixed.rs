//! The fixed-load plan (SPEC §2.3; the seed's `--mode fixed`): no ramp.
//! Each level, lowest first, gets a warm-up phase at that concurrency (not
//! counted) and then its samples; the plan stops after the first level
//! whose samples do not all hold the thresholds. The point reports the
//! passing level with the highest mean input throughput and keeps every
//! level's samples.
//!
//! With a single level given per point (`--concurrency-from`, and the
//! gate's measurement at a baseline's peak) that level is measured and
//! reported whatever its TTFT: a comparison needs the figures even when
//! they are bad.

use super::common::{Lengthening, Outcome, PlanResult, PlannedPhase, sample_duration};
use crate::store::PhaseKind;

#[derive(Debug, Clone, PartialEq)]
pub struct FixedLoad {
    /// Ascending, without repeats.
    levels: Vec<u32>,
    samples_per_level: u32,
    warmup_duration: f64,
    /// As configured; the level's samples may be lengthened.
    sample_duration: f64,
    lengthening: Option<Lengthening>,
    outcomes: Vec<Outcome>,
    /// Index of the level being measured.
    level: usize,
    /// Phases done at that level (0: the warm-up is next).
    step: u32,
    done: bool,
}

impl FixedLoad {
    /// `levels` in any order; `samples_per_level` at least 1; the
    /// durations of the warm-up and of the samples as configured.
    pub fn new(
        mut levels: Vec<u32>,
        samples_per_level: u32,
        (warmup_duration, sample_duration): (f64, f64),
        lengthening: Option<Lengthening>,
    ) -> FixedLoad {
        levels.sort_unstable();
        levels.dedup();
        let done = levels.is_empty() || samples_per_level == 0;
        FixedLoad {
            levels,
            samples_per_level,
            warmup_duration,
            sample_duration,
            lengthening,
            outcomes: Vec::new(),
            level: 0,
            step: 0,
            done,
        }
    }

    pub fn next(&self) -> Option<PlannedPhase> {
        if self.done {
            return None;
        }
        let concurrency = self.levels[self.level];
        Some(if self.step == 0 {
            PlannedPhase {
                kind: PhaseKind::FixedWarmup,
                concurrency,
                duration: self.warmup_duration,
            }
        } else {
            // The level's warm-up is the phase before its samples.
            let warmup = &self.outcomes[self.outcomes.len() - self.step as usize];
            PlannedPhase {
                kind: PhaseKind::Fixed(self.step),
                concurrency,
                duration: sample_duration(
                    self.lengthening,
                    self.sample_duration,
                    warmup.cycle_s,
                    concurrency,
                ),
            }
        })
    }

    pub fn record(&mut self, outcome: Outcome) {
        if self.done {
            return;
        }
        self.outcomes.push(outcome);
        self.step += 1;
        if self.step <= self.samples_per_level {
            return;
        }
        let level_passed = self.level_passed(self.levels[self.level]);
        self.level += 1;
        self.step = 0;
        // The seed's rule: stop after the first level over the thresholds.
        if !level_passed || self.level >= self.levels.len() {
            self.done = true;
        }
    }

    fn samples_at(&self, concurrency: u32) -> impl Iterator<Item = (usize, &Outcome)> {
        self.outcomes
            .iter()
            .enumerate()
            .filter(move |(_, o)| o.concurrency == concurrency && o.kind.is_sample())
    }

    /// Every sample of the level held the thresholds.
    fn level_passed(&self, concurrency: u32) -> bool {
        let mut samples = self.samples_at(concurrency).peekable();
        samples.peek().is_some() && samples.all(|(_, o)| o.passed)
    }

    fn mean_input_tps(&self, concurrency: u32) -> f64 {
        let (sum, n) = self
            .samples_at(concurrency)
            .fold((0.0, 0usize), |(s, n), (_, o)| (s + o.input_tps, n + 1));
        if n == 0 { 0.0 } else { sum / n as f64 }
    }

    /// The reported level: the passing one with the highest mean input
    /// throughput, else the lowest measured (flagged as not passing).
    pub fn result(&self) -> Option<PlanResult> {
        if !self.done {
            return None;
        }
        let measured: Vec<u32> = self
            .levels
            .iter()
            .copied()
            .filter(|&c| self.samples_at(c).next().is_some())
            .collect();
        let best_passing = measured
            .iter()
            .copied()
            .filter(|&c| self.level_passed(c))
            .max_by(|&a, &b| self.mean_input_tps(a).total_cmp(&self.mean_input_tps(b)));
        let concurrency = best_passing.or_else(|| measured.first().copied())?;
        Some(PlanResult {
            concurrency,
            passed: best_passing.is_some(),
            selection: None,
            samples: self.samples_at(concurrency).map(|(i, _)| i).collect(),
            other_samples: self
                .outcomes
                .iter()
                .enumerate()
                .filter(|(_, o)| o.kind.is_sample() && o.concurrency != concurrency)
                .map(|(i, _)| i)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the plan against a server whose phases pass below `limit`
    /// concurrency and whose throughput is `tps(c)`.
    fn drive(
        mut plan: FixedLoad,
        limit: u32,
        tps: impl Fn(u32) -> f64,
    ) -> (Vec<String>, FixedLoad) {
        let mut ran = Vec::new();
        while let Some(phase) = plan.next() {
            ran.push(phase.kind.id(phase.concurrency));
            plan.record(Outcome {
                kind: phase.kind,
                concurrency: phase.concurrency,
                passed: phase.concurrency < limit,
                ttft: 0.5,
                completed: 10,
                failed: 0,
                tokens_per_req: 0.0,
                input_tps: tps(phase.concurrency),
                elapsed: phase.duration,
                cycle_s: 1.0,
            });
        }
        (ran, plan)
    }

    #[test]
    fn each_level_is_warmed_then_sampled_lowest_first() {
        let plan = FixedLoad::new(vec![16, 4, 8, 8], 2, (3.0, 5.0), None);
        assert_eq!(plan.next().unwrap().duration, 3.0);
        let (ran, plan) = drive(plan, 1000, f64::from);
        assert_eq!(
            ran,
            [
                "FIXED_c4_warmup",
                "FIXED_c4_run1",
                "FIXED_c4_run2",
                "FIXED_c8_warmup",
                "FIXED_c8_run1",
                "FIXED_c8_run2",
                "FIXED_c16_warmup",
                "FIXED_c16_run1",
                "FIXED_c16_run2",
            ]
        );
        let result = plan.result().unwrap();
        assert_eq!((result.concurrency, result.passed), (16, true));
        assert_eq!(result.samples, [7, 8]);
        assert_eq!(result.other_samples, [1, 2, 4, 5]);
        assert_eq!(result.selection, None, "no phase chose the level");
    }

    #[test]
    fn stops_after_the_first_level_over_the_thresholds() {
        let (ran, plan) = drive(
            FixedLoad::new(vec![4, 8, 16, 32], 2, (1.0, 1.0), None),
            16,
            f64::from,
        );
        assert_eq!(ran.last().unwrap(), "FIXED_c16_run2");
        assert!(!ran.iter().any(|id| id.contains("c32")));
        let result = plan.result().unwrap();
        assert_eq!((result.concurrency, result.passed), (8, true));
    }

    #[test]
    fn the_best_passing_level_is_reported_not_the_highest() {
        // Throughput falls past 8 (the server thrashes) though TTFT holds.
        let (_, plan) = drive(
            FixedLoad::new(vec![4, 8, 12], 1, (1.0, 1.0), None),
            1000,
            |c| {
                if c <= 8 { f64::from(c) } else { 1.0 }
            },
        );
        assert_eq!(plan.result().unwrap().concurrency, 8);
    }

    #[test]
    fn a_single_level_is_reported_whatever_its_ttft() {
        let (ran, plan) = drive(FixedLoad::new(vec![64], 3, (1.0, 1.0), None), 8, |_| 1.0);
        assert_eq!(ran.len(), 4);
        let result = plan.result().unwrap();
        assert_eq!((result.concurrency, result.passed), (64, false));
        assert_eq!(result.samples, [1, 2, 3]);
    }

    #[test]
    fn replaying_outcomes_reaches_the_same_state() {
        let mut plan = FixedLoad::new(vec![4, 8], 2, (1.0, 2.0), None);
        for _ in 0..4 {
            let phase = plan.next().unwrap();
            plan.record(Outcome {
                kind: phase.kind,
                concurrency: phase.concurrency,
                passed: true,
                ttft: 0.1,
                completed: 1,
                failed: 0,
                tokens_per_req: 0.0,
                input_tps: 1.0,
                elapsed: 1.0,
                cycle_s: 1.0,
            });
        }
        let mut replayed = FixedLoad::new(vec![4, 8], 2, (1.0, 2.0), None);
        for outcome in plan.outcomes.clone() {
            replayed.record(outcome);
        }
        assert_eq!(replayed, plan);
        assert_eq!(plan.next().unwrap().kind, PhaseKind::Fixed(1));
    }

    #[test]
    fn lengthened_samples_are_sized_from_their_levels_warm_up() {
        let lengthening = Lengthening {
            sizing: crate::stats::SampleSizing::default(),
            warmup_fraction: 0.2,
        };
        let mut plan = FixedLoad::new(vec![4, 52], 2, (3.0, 3.0), Some(lengthening));
        let mut durations = Vec::new();
        while let Some(phase) = plan.next() {
            durations.push((phase.kind.id(phase.concurrency), phase.duration));
            // Requests take 1.2 s at 4 slots, 1.1 s at 52.
            let cycle_s = if phase.concurrency == 4 { 1.2 } else { 1.1 };
            plan.record(Outcome {
                kind: phase.kind,
                concurrency: phase.concurrency,
                passed: true,
                ttft: 0.1,
                completed: 10,
                failed: 0,
                tokens_per_req: 0.0,
                input_tps: 1.0,
                elapsed: phase.duration,
                cycle_s,
            });
        }
        // 4 slots: 40 requests take 10 cycles = 12 s of window, 15 s of
        // phase after a 20 % warm-up. 52 slots: 4 cycles = 4.4 s of window,
        // 5.5 s of phase. The warm-ups keep their length.
        let expected = [
            ("FIXED_c4_warmup", 3.0),
            ("FIXED_c4_run1", 15.0),
            ("FIXED_c4_run2", 15.0),
            ("FIXED_c52_warmup", 3.0),
            ("FIXED_c52_run1", 5.5),
            ("FIXED_c52_run2", 5.5),
        ];
        assert_eq!(durations.len(), expected.len());
        for ((id, d), (want_id, want)) in durations.iter().zip(expected) {
            assert_eq!(id, want_id);
            assert!((d - want).abs() < 1e-9, "{id}: {d} s, expected {want} s");
        }
    }
}
