//! Verdicts (SPEC §5): effect sizes with run-to-run noise, intervals,
//! multiplicity across a curve's points, the minimum detectable effect and
//! the verdict enum; the verdict document of a run against a baseline, its
//! overall verdict and the exit code it gives; A/A calibration. Pure
//! functions: no I/O, and no knowledge of files beyond the values a
//! command has read.

mod calibration;
mod comparable;
mod dist;
pub mod document;
mod effect;
mod gate;
mod holm;
mod judge;
mod overall;
mod policy;
mod verdict;

#[cfg(test)]
mod tests;

pub use calibration::{AaRun, CalibrationReport, calibrate, recommended_tolerance};
pub use dist::{t_quantile, t_upper_tail};
pub use effect::{Effect, MetricSamples, RunNoiseSource, estimate_effect, satterthwaite_df};
pub use gate::{Bearing, GatePolicy, bearing, exit_code};
pub use holm::holm_adjust;
pub use judge::{judge, sample_value};
pub use policy::{Direction, HealthLimits, Metric, Policy, RECOMMENDED_BASELINE_RUNS, Tolerances};
pub use verdict::{
    CurveSummary, CurveVerdict, Estimate, MDE_POWER, MIN_SHRINKABLE_SHARE, PointHealth,
    PointMetricVerdict, PointSamples, VarianceTerms, Verdict, judge_curve, mde_floor,
    minimum_detectable_effect, needs_more_samples, runs_for_tolerance,
};
