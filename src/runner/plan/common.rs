//! What every plan shares — the phase it asks for next, what it learns of
//! a finished one, where it ended — and [`Plan`], the one interface the
//! point follows, whichever plan the mode chose.

use serde::{Deserialize, Serialize};

use super::fixed::FixedLoad;
use super::peak::{PeakSearch, RampParams};
use super::sustained::{Sustained, SustainedParams};
use crate::cli::values::{FixedLoadSpec, Mode, TokensPerReqMetric};
use crate::error::{Error, Result};
use crate::stats::SampleSizing;
use crate::store::{PeriodDecision, PhaseKind, PhaseRecord, PlanKind, PointId};

/// How many increments a step up takes at `headroom`, the share of the
/// TTFT limit left (the seed's steps; the ramp's and the sustained
/// controller's alike).
pub(super) fn step_multiplier(headroom: f64) -> u32 {
    match headroom {
        h if h > 0.7 => 10,
        h if h > 0.5 => 5,
        h if h > 0.3 => 3,
        h if h > 0.15 => 2,
        _ => 1,
    }
}

/// The next phase to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedPhase {
    pub kind: PhaseKind,
    pub concurrency: u32,
    /// Seconds.
    pub duration: f64,
}

/// What a plan needs to know of a finished phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub kind: PhaseKind,
    pub concurrency: u32,
    /// All thresholds held (TTFT, per-request rate, error rate).
    pub passed: bool,
    /// The TTFT statistic compared with the threshold, seconds.
    pub ttft: f64,
    /// Requests that completed and were counted.
    pub completed: u64,
    /// Requests that failed.
    pub failed: u64,
    /// The per-request output rate held against --min-tokens-per-req.
    pub tokens_per_req: f64,
    pub input_tps: f64,
    /// Seconds the phase took, in-flight requests included.
    pub elapsed: f64,
    /// Mean request latency (TTLT) of the counted requests: a slot's
    /// request cycle at this load, seconds.
    #[serde(default)]
    pub cycle_s: f64,
}

impl Outcome {
    /// `metric`: the per-request output rate --min-tokens-per-req holds.
    pub fn of(phase: &PhaseRecord, metric: TokensPerReqMetric) -> Outcome {
        Outcome {
            kind: phase.kind,
            concurrency: phase.concurrency,
            passed: phase.passed,
            ttft: phase.decision_ttft_s,
            completed: phase.figures.counted,
            failed: phase.figures.failed,
            tokens_per_req: phase.figures.tokens_per_req_metric(metric),
            input_tps: phase.figures.input_tps,
            elapsed: phase.end_unix_s - phase.start_unix_s,
            cycle_s: phase.figures.ttlt.avg,
        }
    }
}

/// How a plan lengthens its samples (`--lengthen-samples`): each sample
/// phase long enough for its window to span and count what `sizing` asks,
/// from the request cycle of the phase before the samples at their load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lengthening {
    pub sizing: SampleSizing,
    pub warmup_fraction: f64,
}

/// The length of sample phases at `concurrency` whose requests take
/// `cycle_s` (as a phase at that load before them showed): `configured`, or
/// longer under `lengthening`.
pub fn sample_duration(
    lengthening: Option<Lengthening>,
    configured: f64,
    cycle_s: f64,
    concurrency: u32,
) -> f64 {
    lengthening.map_or(configured, |l| {
        l.sizing
            .duration(configured, l.warmup_fraction, cycle_s, concurrency)
    })
}

/// Where a plan ended: the load the point reports and which phases are its
/// samples (indexes into the outcomes).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanResult {
    pub concurrency: u32,
    /// The reported level held the thresholds.
    pub passed: bool,
    /// The phase that chose the level (peak search only); not a sample.
    pub selection: Option<usize>,
    /// The samples at `concurrency`.
    pub samples: Vec<usize>,
    /// Samples of other levels (fixed levels only).
    pub other_samples: Vec<usize>,
}

/// How a plan's phases are loaded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loading {
    /// Each phase is its own closed loop, drained at its end.
    Phases,
    /// The phases are periods of one continuous load, never drained
    /// between them; `periods` of them in all.
    Continuous { periods: u32 },
}

/// What decides a point's plan: the mode and each plan's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    pub mode: Mode,
    pub fixed_load: Option<FixedLoadSpec>,
    pub ramp: RampParams,
    pub sustained: SustainedParams,
}

/// A point's plan.
#[derive(Debug, Clone)]
pub enum Plan {
    Peak(PeakSearch),
    /// Levels given by --fixed-concurrency-levels.
    FixedLevels(FixedLoad),
    /// One level per point from an earlier run or a baseline.
    FixedFrom(FixedLoad),
    Sustained(Sustained),
}

impl Plan {
    /// The plan of point `id` in `options.mode`; `start` is where a peak
    /// search starts (the previous rate's peak, or the start concurrency).
    pub fn for_point(options: &PlanOptions, id: PointId, start: u32) -> Result<Plan> {
        let ramp = options.ramp;
        match (options.mode, &options.fixed_load) {
            (Mode::Sustained, _) => Ok(Plan::Sustained(Sustained::new(options.sustained))),
            (Mode::Fixed, Some(spec)) => {
                let levels = spec
                    .levels(id.context_size, id.cache_hit_rate)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "no fixed load for {id}: --concurrency-from does not name that point"
                        ))
                    })?;
                let load = FixedLoad::new(
                    levels,
                    ramp.num_retries,
                    (ramp.ramp_duration, ramp.sample_duration),
                    ramp.lengthening,
                );
                Ok(match spec {
                    FixedLoadSpec::Levels(_) => Plan::FixedLevels(load),
                    FixedLoadSpec::PerPoint(_) => Plan::FixedFrom(load),
                })
            }
            _ => Ok(Plan::Peak(PeakSearch::new(ramp, start))),
        }
    }

    /// How the point's load was chosen, as its result records it.
    pub fn kind(&self) -> PlanKind {
        match self {
            Plan::Peak(_) => PlanKind::PeakSearch,
            Plan::FixedLevels(_) => PlanKind::FixedLevels,
            Plan::FixedFrom(_) => PlanKind::FixedFrom,
            Plan::Sustained(_) => PlanKind::Sustained,
        }
    }

    pub fn loading(&self) -> Loading {
        match self {
            Plan::Sustained(sustained) => Loading::Continuous {
                periods: sustained.periods(),
            },
            Plan::Peak(_) | Plan::FixedLevels(_) | Plan::FixedFrom(_) => Loading::Phases,
        }
    }

    pub fn next(&self) -> Option<PlannedPhase> {
        match self {
            Plan::Peak(search) => search.next(),
            Plan::FixedLevels(fixed) | Plan::FixedFrom(fixed) => fixed.next(),
            Plan::Sustained(sustained) => sustained.next(),
        }
    }

    /// Learns from the phase `next()` planned; a sustained period's
    /// decision is what its record keeps.
    pub fn record(&mut self, outcome: Outcome) -> Option<PeriodDecision> {
        match self {
            Plan::Peak(search) => search.record(outcome),
            Plan::FixedLevels(fixed) | Plan::FixedFrom(fixed) => fixed.record(outcome),
            Plan::Sustained(sustained) => return Some(sustained.record(outcome)),
        }
        None
    }

    /// Replays stored outcomes (a resumed point).
    pub fn replay(mut self, outcomes: &[Outcome]) -> Plan {
        for outcome in outcomes {
            self.record(*outcome);
        }
        self
    }

    /// The result, once `next()` has nothing left.
    pub fn result(&self) -> Option<PlanResult> {
        match self {
            Plan::Peak(search) => search.peak(),
            Plan::FixedLevels(fixed) | Plan::FixedFrom(fixed) => fixed.result(),
            Plan::Sustained(sustained) => Some(sustained.result()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::plan::ControllerParams;

    fn options(mode: Mode, fixed_load: Option<FixedLoadSpec>) -> PlanOptions {
        let ramp = RampParams {
            start_concurrency: 2,
            increment: 2,
            max_concurrency: 64,
            max_ttft: 1.0,
            num_retries: 2,
            test_duration: 10.0,
            ramp_duration: 1.0,
            sample_duration: 1.0,
            lengthening: None,
        };
        let controller = ControllerParams {
            start_concurrency: 2,
            increment: 2,
            max_concurrency: 64,
            max_ttft: 1.0,
            min_tokens_per_req: None,
        };
        PlanOptions {
            mode,
            fixed_load,
            ramp,
            sustained: SustainedParams::new(controller, 10.0, 2.0),
        }
    }

    #[test]
    fn the_mode_chooses_the_plan_and_the_plan_says_its_kind_and_load() {
        let id = PointId::new(512, 50);
        let peak = Plan::for_point(&options(Mode::Adaptive, None), id, 8).unwrap();
        assert_eq!(
            (peak.kind(), peak.loading()),
            (PlanKind::PeakSearch, Loading::Phases)
        );
        assert_eq!(
            peak.next().unwrap().concurrency,
            8,
            "from the previous peak"
        );
        let levels = Some(FixedLoadSpec::Levels(vec![4, 8]));
        let fixed = Plan::for_point(&options(Mode::Fixed, levels), id, 8).unwrap();
        assert_eq!(fixed.kind(), PlanKind::FixedLevels);
        assert_eq!(fixed.next().unwrap().kind, PhaseKind::FixedWarmup);
        let sustained = Plan::for_point(&options(Mode::Sustained, None), id, 8).unwrap();
        assert_eq!(sustained.kind(), PlanKind::Sustained);
        assert_eq!(sustained.loading(), Loading::Continuous { periods: 5 });
        let next = sustained.next().unwrap();
        assert_eq!((next.kind, next.concurrency), (PhaseKind::Period(1), 2));
        let unnamed = Some(FixedLoadSpec::PerPoint(Default::default()));
        let error = Plan::for_point(&options(Mode::Fixed, unnamed), id, 8).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no fixed load for ctx 512 at 50%"),
            "{error}"
        );
    }
}
