//! A point's plan: which phases to run at which load, decided phase by
//! phase from the outcomes so far, so a resumed run replays it from the
//! stored phases. Two plans: the seed's peak search and a fixed load.

pub mod fixed;
pub mod peak;
pub mod sustained;

use serde::{Deserialize, Serialize};

pub use fixed::FixedLoad;
pub use peak::{PeakSearch, RampParams};

use crate::store::{PhaseKind, PhaseRecord};

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
    pub input_tps: f64,
    /// Seconds the phase took, in-flight requests included.
    pub elapsed: f64,
}

impl Outcome {
    pub fn of(phase: &PhaseRecord) -> Outcome {
        Outcome {
            kind: phase.kind,
            concurrency: phase.concurrency,
            passed: phase.passed,
            ttft: phase.decision_ttft_s,
            completed: phase.figures.counted,
            input_tps: phase.figures.input_tps,
            elapsed: phase.end_unix_s - phase.start_unix_s,
        }
    }
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

/// A point's plan.
#[derive(Debug, Clone)]
pub enum Plan {
    Peak(PeakSearch),
    Fixed(FixedLoad),
}

impl Plan {
    pub fn next(&self) -> Option<PlannedPhase> {
        match self {
            Plan::Peak(search) => search.next(),
            Plan::Fixed(fixed) => fixed.next(),
        }
    }

    pub fn record(&mut self, outcome: Outcome) {
        match self {
            Plan::Peak(search) => search.record(outcome),
            Plan::Fixed(fixed) => fixed.record(outcome),
        }
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
            Plan::Fixed(fixed) => fixed.result(),
        }
    }
}
