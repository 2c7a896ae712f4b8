//! Verdicts from samples (SPEC §5): effect sizes with run-to-run noise,
//! intervals, multiplicity across a curve's points, the minimum detectable
//! effect and the verdict enum. Pure functions over numbers: no I/O, no
//! knowledge of files; an integrator maps stored results onto
//! [`PointSamples`].

mod dist;
pub mod document;
mod effect;
mod holm;
mod policy;
mod verdict;

#[cfg(test)]
mod tests;

pub use dist::{t_quantile, t_upper_tail};
pub use effect::{Effect, MetricSamples, RunNoiseSource, estimate_effect, satterthwaite_df};
pub use holm::holm_adjust;
pub use policy::{Direction, HealthLimits, Metric, Policy, RECOMMENDED_BASELINE_RUNS, Tolerances};
pub use verdict::{
    CurveSummary, CurveVerdict, Estimate, MDE_POWER, MIN_SHRINKABLE_SHARE, PointHealth,
    PointMetricVerdict, PointSamples, Verdict, judge_curve, minimum_detectable_effect,
    needs_more_samples,
};
