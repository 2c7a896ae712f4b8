//! Sustained mode's plan (the seed's continuous mode) as a pure state
//! machine: `--test-duration` in assessment periods of one continuous load;
//! after each period the controller decides the next period's concurrency
//! from the period's figures, and at the end it says where the load
//! settled and which periods are the point's samples. Replaying the stored
//! periods rebuilds it on resume.
//!
//! After each period, one decision:
//! 1. input throughput more than 15 % below the best period so far, two or
//!    more periods after it: `PLATEAU_RAMP_DOWN` by 1 increment, 2 beyond
//!    a 20 % fall, 3 beyond 30 %, 4 beyond 40 %;
//! 2. over a threshold (TTFT by `--ttft-metric`, the per-request output
//!    rate, the error rate): `RAMP_DOWN` by one increment;
//! 3. under them: `RAMP_UP` by the increment times 10, 5, 3, 2 or 1 as the
//!    smallest headroom is above 0.7, 0.5, 0.3, 0.15 or not;
//! 4. no request of the period completed (nothing to judge): `STAY`.
//!
//! A step down never goes below the start concurrency and a step up never
//! past `--max-concurrency`; when the load is already there the decision
//! is `MIN_REACHED` or `MAX_REACHED` and it stays.

use super::common::{Outcome, PlanResult, PlannedPhase, step_multiplier};
use crate::store::{Decision, PeriodDecision, PhaseKind};

/// A fall of input throughput below the best period that counts as a
/// plateau passed, and how many periods after the best it may first count.
const PLATEAU_DROP: f64 = 0.15;
const PLATEAU_DISTANCE: usize = 2;

/// The controller's bounds and thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerParams {
    pub start_concurrency: u32,
    pub increment: u32,
    pub max_concurrency: u32,
    pub max_ttft: f64,
    pub min_tokens_per_req: Option<f64>,
}

/// Sustained mode's plan: its periods and the controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SustainedParams {
    pub controller: ControllerParams,
    /// Seconds of each assessment period.
    pub period_s: f64,
    /// Periods of a point: --test-duration in whole periods, at least one.
    pub periods: u32,
}

impl SustainedParams {
    /// `test_duration` and `period_s` in seconds.
    pub fn new(controller: ControllerParams, test_duration: f64, period_s: f64) -> Self {
        SustainedParams {
            controller,
            period_s,
            periods: ((test_duration / period_s) + 1e-9).floor().max(1.0) as u32,
        }
    }
}

/// The periods of a sustained point, each decided by the controller.
#[derive(Debug, Clone)]
pub struct Sustained {
    params: SustainedParams,
    controller: Controller,
}

impl Sustained {
    pub fn new(params: SustainedParams) -> Sustained {
        Sustained {
            params,
            controller: Controller::new(params.controller),
        }
    }

    /// Periods of the point in all.
    pub fn periods(&self) -> u32 {
        self.params.periods
    }

    /// The next period, at the concurrency the controller chose.
    pub fn next(&self) -> Option<PlannedPhase> {
        let done = self.controller.periods() as u32;
        (done < self.params.periods).then(|| PlannedPhase {
            kind: PhaseKind::Period(done + 1),
            concurrency: self.controller.concurrency(),
            duration: self.params.period_s,
        })
    }

    /// Decides after a period.
    pub fn record(&mut self, outcome: Outcome) -> PeriodDecision {
        self.controller.decide(PeriodInput::from(outcome))
    }

    pub fn result(&self) -> PlanResult {
        self.controller.result()
    }
}

/// What the controller needs of a finished period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodInput {
    pub concurrency: u32,
    /// Every threshold held (TTFT, per-request output rate, error rate).
    pub passed: bool,
    /// Requests of the period that completed and were counted.
    pub counted: u64,
    /// Requests of the period that failed.
    pub failed: u64,
    /// The TTFT statistic held against --max-ttft, seconds.
    pub ttft: f64,
    /// The per-request output rate held against --min-tokens-per-req.
    pub tokens_per_req: f64,
    pub input_tps: f64,
}

impl From<Outcome> for PeriodInput {
    fn from(outcome: Outcome) -> PeriodInput {
        PeriodInput {
            concurrency: outcome.concurrency,
            passed: outcome.passed,
            counted: outcome.completed,
            failed: outcome.failed,
            ttft: outcome.ttft,
            tokens_per_req: outcome.tokens_per_req,
            input_tps: outcome.input_tps,
        }
    }
}

/// The controller of one point.
#[derive(Debug, Clone)]
pub struct Controller {
    params: ControllerParams,
    concurrency: u32,
    periods: Vec<PeriodInput>,
    /// Index and input throughput of the best period so far.
    best: Option<(usize, f64)>,
}

impl Controller {
    pub fn new(params: ControllerParams) -> Controller {
        Controller {
            params,
            concurrency: params.start_concurrency,
            periods: Vec::new(),
            best: None,
        }
    }

    /// The concurrency of the next period.
    pub fn concurrency(&self) -> u32 {
        self.concurrency
    }

    /// Periods decided so far.
    pub fn periods(&self) -> usize {
        self.periods.len()
    }

    /// The smallest headroom to the thresholds: TTFT's `(max - measured) /
    /// max`, and with --min-tokens-per-req the share of the per-request
    /// rate above the minimum.
    fn headroom(&self, period: &PeriodInput) -> f64 {
        let ttft = (self.params.max_ttft - period.ttft) / self.params.max_ttft;
        match self.params.min_tokens_per_req {
            Some(min) if period.tokens_per_req > 0.0 => {
                ttft.min((period.tokens_per_req - min) / period.tokens_per_req)
            }
            Some(_) => 0.0,
            None => ttft,
        }
    }

    fn down(&self, increments: u32) -> PeriodDecision {
        let current = self.concurrency;
        let floor = self.params.start_concurrency;
        if current <= floor {
            return PeriodDecision {
                decision: Decision::MinReached,
                next_concurrency: floor,
            };
        }
        PeriodDecision {
            decision: Decision::RampDown,
            next_concurrency: current
                .saturating_sub(increments.saturating_mul(self.params.increment))
                .max(floor),
        }
    }

    /// Decides after a period and moves to the next period's concurrency.
    pub fn decide(&mut self, period: PeriodInput) -> PeriodDecision {
        let index = self.periods.len();
        let plateau = self.best.and_then(|(best_index, best_tps)| {
            let drop = if best_tps > 0.0 {
                1.0 - period.input_tps / best_tps
            } else {
                0.0
            };
            (index >= best_index + PLATEAU_DISTANCE && drop > PLATEAU_DROP).then_some(drop)
        });
        let decision = if let Some(drop) = plateau {
            let increments =
                1 + u32::from(drop > 0.2) + u32::from(drop > 0.3) + u32::from(drop > 0.4);
            let mut decision = self.down(increments);
            if decision.decision == Decision::RampDown {
                decision.decision = Decision::PlateauRampDown;
            }
            decision
        } else if period.counted == 0 && period.failed == 0 {
            PeriodDecision {
                decision: Decision::Stay,
                next_concurrency: self.concurrency,
            }
        } else if !period.passed {
            self.down(1)
        } else if self.concurrency >= self.params.max_concurrency {
            PeriodDecision {
                decision: Decision::MaxReached,
                next_concurrency: self.params.max_concurrency,
            }
        } else {
            let step =
                step_multiplier(self.headroom(&period)).saturating_mul(self.params.increment);
            PeriodDecision {
                decision: Decision::RampUp,
                next_concurrency: self
                    .concurrency
                    .saturating_add(step)
                    .min(self.params.max_concurrency),
            }
        };
        if period.counted > 0 && self.best.is_none_or(|(_, best)| period.input_tps > best) {
            self.best = Some((index, period.input_tps));
        }
        self.periods.push(period);
        self.concurrency = decision.next_concurrency;
        decision
    }

    /// Where the load settled: the level with the most passing periods
    /// (the higher one on a tie), whose passing periods are the point's
    /// samples. When no period passed: the level of the period with the
    /// lowest TTFT among those that completed requests, flagged, with its
    /// periods as samples.
    pub fn result(&self) -> PlanResult {
        let mut levels: Vec<(u32, usize)> = Vec::new();
        for period in self.periods.iter().filter(|p| p.passed) {
            match levels.iter_mut().find(|(c, _)| *c == period.concurrency) {
                Some((_, n)) => *n += 1,
                None => levels.push((period.concurrency, 1)),
            }
        }
        let settled = levels
            .iter()
            .max_by_key(|(concurrency, n)| (*n, *concurrency))
            .map(|(concurrency, _)| *concurrency);
        let (concurrency, passed) = match settled {
            Some(concurrency) => (concurrency, true),
            None => {
                let lowest = self
                    .periods
                    .iter()
                    .filter(|p| p.counted > 0)
                    .min_by(|a, b| a.ttft.total_cmp(&b.ttft))
                    .map_or(self.params.start_concurrency, |p| p.concurrency);
                (lowest, false)
            }
        };
        let samples = self
            .periods
            .iter()
            .enumerate()
            .filter(|(_, p)| p.concurrency == concurrency && (p.passed || !passed) && p.counted > 0)
            .map(|(i, _)| i)
            .collect();
        PlanResult {
            concurrency,
            passed,
            selection: None,
            samples,
            other_samples: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ControllerParams {
        ControllerParams {
            start_concurrency: 4,
            increment: 2,
            max_concurrency: 40,
            max_ttft: 1.0,
            min_tokens_per_req: None,
        }
    }

    /// A period at `concurrency` with TTFT `ttft` (passing when under 1 s)
    /// and `input_tps`.
    fn period(concurrency: u32, ttft: f64, input_tps: f64) -> PeriodInput {
        PeriodInput {
            concurrency,
            passed: ttft <= 1.0,
            counted: 10,
            failed: 0,
            ttft,
            tokens_per_req: 50.0,
            input_tps,
        }
    }

    #[test]
    fn the_plan_runs_the_test_duration_in_whole_periods_each_decided() {
        let params = SustainedParams::new(params(), 7.0, 2.0);
        assert_eq!(params.periods, 3, "7 s in 2 s periods");
        assert_eq!(SustainedParams::new(params.controller, 1.0, 2.0).periods, 1);
        let mut plan = Sustained::new(params);
        let (mut ran, mut decisions) = (Vec::new(), Vec::new());
        while let Some(next) = plan.next() {
            ran.push((next.kind, next.concurrency, next.duration));
            let decided = plan.record(Outcome {
                kind: next.kind,
                concurrency: next.concurrency,
                passed: true,
                ttft: 0.1,
                completed: 10,
                failed: 0,
                tokens_per_req: 50.0,
                input_tps: 100.0,
                elapsed: next.duration,
                cycle_s: 1.0,
            });
            decisions.push(decided.decision);
        }
        use Decision::{MaxReached, RampUp};
        assert_eq!(decisions, [RampUp, RampUp, MaxReached]);
        assert_eq!(
            ran,
            [
                (PhaseKind::Period(1), 4, 2.0),
                (PhaseKind::Period(2), 24, 2.0),
                (PhaseKind::Period(3), 40, 2.0),
            ]
        );
        assert_eq!(plan.result().concurrency, 40);
    }

    fn step(c: &mut Controller, ttft: f64, input_tps: f64) -> (Decision, u32) {
        let d = c.decide(period(c.concurrency(), ttft, input_tps));
        (d.decision, d.next_concurrency)
    }

    #[test]
    fn ramps_up_by_the_increment_scaled_by_the_headroom() {
        let mut c = Controller::new(params());
        // Headroom 0.9, 0.6, 0.4, 0.2, 0.1: x10, x5, x3, x2, x1 of 2.
        assert_eq!(step(&mut c, 0.1, 100.0), (Decision::RampUp, 24));
        assert_eq!(step(&mut c, 0.4, 200.0), (Decision::RampUp, 34));
        assert_eq!(
            step(&mut c, 0.6, 300.0),
            (Decision::RampUp, 40),
            "capped at the maximum"
        );
        assert_eq!(step(&mut c, 0.8, 400.0), (Decision::MaxReached, 40));
        let mut c = Controller::new(params());
        assert_eq!(step(&mut c, 0.7, 100.0), (Decision::RampUp, 10), "x3");
        assert_eq!(step(&mut c, 0.9, 200.0), (Decision::RampUp, 12), "x1");
        assert_eq!(step(&mut c, 0.8, 300.0), (Decision::RampUp, 16), "x2");
    }

    #[test]
    fn the_smallest_headroom_scales_the_step() {
        let mut c = Controller::new(ControllerParams {
            min_tokens_per_req: Some(40.0),
            ..params()
        });
        // TTFT headroom 0.9, but the per-request rate 50 is only 20 % above
        // the minimum of 40: x2.
        assert_eq!(step(&mut c, 0.1, 100.0), (Decision::RampUp, 8));
    }

    #[test]
    fn over_the_thresholds_ramps_down_one_increment_never_below_the_start() {
        let mut c = Controller::new(params());
        assert_eq!(step(&mut c, 0.1, 100.0), (Decision::RampUp, 24));
        assert_eq!(step(&mut c, 1.5, 100.0), (Decision::RampDown, 22));
        let mut c = Controller::new(params());
        assert_eq!(step(&mut c, 1.5, 100.0), (Decision::MinReached, 4));
        assert_eq!(step(&mut c, 1.5, 100.0), (Decision::MinReached, 4));
    }

    #[test]
    fn a_period_with_nothing_completed_stays() {
        let mut c = Controller::new(params());
        let d = c.decide(PeriodInput {
            counted: 0,
            passed: false,
            ..period(4, 0.0, 0.0)
        });
        assert_eq!((d.decision, d.next_concurrency), (Decision::Stay, 4));
        // All failed: over the error rate, down.
        let d = c.decide(PeriodInput {
            counted: 0,
            failed: 5,
            passed: false,
            ..period(4, 0.0, 0.0)
        });
        assert_eq!(d.decision, Decision::MinReached);
    }

    #[test]
    fn a_throughput_fall_two_periods_after_the_best_ramps_down_by_its_size() {
        // Best at period 0; period 1 falls 50 % but is only one period
        // after it; period 2 falls 16 %: one increment.
        let mut c = Controller::new(params());
        assert_eq!(step(&mut c, 0.95, 1000.0), (Decision::RampUp, 6));
        assert_eq!(
            step(&mut c, 0.95, 500.0),
            (Decision::RampUp, 8),
            "too soon after the best"
        );
        assert_eq!(step(&mut c, 0.95, 840.0), (Decision::PlateauRampDown, 6));
        // Falls of 25, 35 and 45 % from a best of 1000: 2, 3, 4 increments;
        // a fall of 14 % is none (a passing period then ramps up).
        for (tps, expected) in [
            (860.0, (Decision::RampUp, 28)),
            (750.0, (Decision::PlateauRampDown, 18)),
            (650.0, (Decision::PlateauRampDown, 16)),
            (550.0, (Decision::PlateauRampDown, 14)),
        ] {
            let mut c = Controller::new(params());
            assert_eq!(step(&mut c, 0.1, 1000.0), (Decision::RampUp, 24));
            assert_eq!(step(&mut c, 1.5, 990.0), (Decision::RampDown, 22));
            assert_eq!(step(&mut c, 0.5, tps), expected, "input {tps}");
        }
    }

    #[test]
    fn a_plateau_ramp_down_stops_at_the_start() {
        let mut c = Controller::new(params());
        assert_eq!(step(&mut c, 0.9, 1000.0), (Decision::RampUp, 6));
        assert_eq!(step(&mut c, 0.9, 900.0), (Decision::RampUp, 8));
        // A 60 % fall: four increments from 8 would be 0; held at 4.
        assert_eq!(step(&mut c, 0.9, 400.0), (Decision::PlateauRampDown, 4));
        assert_eq!(step(&mut c, 0.9, 400.0), (Decision::MinReached, 4));
    }

    #[test]
    fn replaying_the_same_periods_gives_the_same_decisions() {
        let inputs = [
            (0.1, 100.0),
            (0.9, 300.0),
            (1.4, 320.0),
            (0.8, 310.0),
            (0.95, 305.0),
        ];
        let mut live = Controller::new(params());
        let decisions: Vec<PeriodDecision> = inputs
            .iter()
            .map(|&(ttft, tps)| live.decide(period(live.concurrency(), ttft, tps)))
            .collect();
        let mut replayed = Controller::new(params());
        for (i, &(ttft, tps)) in inputs.iter().enumerate() {
            let d = replayed.decide(period(replayed.concurrency(), ttft, tps));
            assert_eq!(d, decisions[i]);
        }
        assert_eq!(replayed.concurrency(), live.concurrency());
        assert_eq!(replayed.result(), live.result());
    }

    #[test]
    fn the_point_settles_at_the_level_with_the_most_passing_periods() {
        let mut c = Controller::new(params());
        // 4 -> 24 -> 22 (over) -> 22 passes -> 24 -> fails -> 22 passes.
        for (ttft, tps) in [
            (0.1, 100.0),
            (1.2, 300.0),
            (0.95, 290.0),
            (1.1, 300.0),
            (0.97, 295.0),
        ] {
            step(&mut c, ttft, tps);
        }
        let result = c.result();
        assert_eq!(result.concurrency, 22);
        assert!(result.passed);
        assert_eq!(result.samples, vec![2, 4]);
        assert_eq!(result.selection, None);
    }

    #[test]
    fn a_tie_goes_to_the_higher_level_and_no_pass_is_flagged() {
        let mut c = Controller::new(params());
        step(&mut c, 0.1, 100.0); // 4 passes -> 24
        step(&mut c, 0.95, 300.0); // 24 passes -> 26
        let result = c.result();
        assert_eq!((result.concurrency, result.samples.clone()), (24, vec![1]));

        let mut c = Controller::new(params());
        step(&mut c, 1.3, 100.0);
        step(&mut c, 1.2, 100.0);
        step(&mut c, 1.4, 100.0);
        let result = c.result();
        assert_eq!(result.concurrency, 4);
        assert!(!result.passed);
        assert_eq!(result.samples, vec![0, 1, 2]);
    }
}
