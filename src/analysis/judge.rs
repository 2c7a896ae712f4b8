//! The verdict document of a run held against a baseline (SPEC §5): a pure
//! function of the baseline, the run's results, the policy and the time —
//! it reads nothing and writes nothing. Per context size and metric it
//! maps the stored samples onto [`PointSamples`] and judges the curve.

use std::path::Path;

use crate::baseline::{Baseline, BaselinePoint, RunData};
use crate::error::{Error, Result};
use crate::store::{AtPoint, PointResult, Sample};

use super::comparable;
use super::document::{
    BaselineSide, ContextCurve, PointFigures, RunSide, VERDICT_SCHEMA_VERSION, VerdictFile,
};
use super::effect::MetricSamples;
use super::gate::GatePolicy;
use super::overall::overall;
use super::policy::{Metric, Policy};
use super::verdict::{PointHealth, PointSamples, judge_curve};

/// A sample's figure for a metric.
pub fn sample_value(sample: &Sample, metric: Metric) -> f64 {
    match metric {
        Metric::InputThroughput => sample.input_tps,
        Metric::OutputThroughput => sample.output_tps,
        Metric::TtftP50 => sample.ttft.p50,
        Metric::TtftP95 => sample.ttft.p95,
    }
}

/// Judges `run` against `baseline` (read from `baseline_path`) under
/// `gate`; `created_at` dates the document. Refuses runs that cannot be
/// compared (exit 2), naming every difference.
pub fn judge(
    baseline: &Baseline,
    baseline_path: &Path,
    run: &RunData,
    gate: &GatePolicy,
    created_at: &str,
) -> Result<VerdictFile> {
    gate.policy.validate().map_err(Error::Usage)?;
    let mut warnings = comparable::check(run, baseline, gate.policy.min_samples)?;
    let mut curves = Vec::new();
    let mut figures = Vec::new();
    for context in run.context_sizes() {
        let pairs = comparable::pairs(run, baseline, context);
        figures.extend(
            pairs
                .iter()
                .map(|(point, base)| PointFigures::of(point, base)),
        );
        let policy = run_policy(&gate.policy, run, &pairs);
        for metric in Metric::ALL {
            let curve = ContextCurve {
                context_size: context,
                gated: gate.gated.contains(&metric),
                verdict: judge_curve(
                    metric,
                    &point_samples(&pairs, metric),
                    &noise_floor(policy, baseline, metric),
                )
                .map_err(Error::Usage)?,
            };
            warnings.extend(mde_warning(&curve));
            curves.push(curve);
        }
    }
    warnings.dedup();
    Ok(VerdictFile {
        schema_version: VERDICT_SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: created_at.to_string(),
        run: RunSide::of(run),
        baseline: BaselineSide::of(baseline, baseline_path),
        policy: gate.policy,
        gated_metrics: gate.gated.clone(),
        fail_on_inconclusive: gate.fail_on_inconclusive,
        overall: overall(&curves),
        curves,
        points: figures,
        warnings,
        time: None,
    })
}

/// The policy with the run's own health limits: its `--max-error-rate`,
/// and the cache-rate gap it allowed at this context.
fn run_policy(policy: &Policy, run: &RunData, pairs: &[(&PointResult, &BaselinePoint)]) -> Policy {
    let mut policy = *policy;
    policy.health.max_error_rate = run.workload.max_error_rate;
    if let Some((point, _)) = pairs.first() {
        policy.health.max_cache_hit_gap = point.max_cache_rate_gap / 100.0;
    }
    policy
}

/// A calibrated baseline knows this configuration's run noise: it raises
/// the floor (never lowers it).
fn noise_floor(mut policy: Policy, baseline: &Baseline, metric: Metric) -> Policy {
    if let Some(noise) = baseline
        .calibration
        .as_ref()
        .and_then(|c| c.run_noise.get(metric.name()))
    {
        policy.run_noise_floor = policy.run_noise_floor.max(*noise);
    }
    policy
}

/// The samples of one metric at each point, both sides, with the run's
/// health there.
fn point_samples(pairs: &[(&PointResult, &BaselinePoint)], metric: Metric) -> Vec<PointSamples> {
    let values = |samples: &[Sample]| samples.iter().map(|s| sample_value(s, metric)).collect();
    pairs
        .iter()
        .map(|(point, base)| PointSamples {
            point: point.point_id().key(),
            samples: MetricSamples {
                baseline_runs: base.runs.iter().map(|r| values(&r.samples)).collect(),
                current: values(&point.samples),
            },
            health: Some(PointHealth {
                error_rate: point.error_rate,
                requests: point.sample_errors().total,
                failed: point.sample_errors().failed,
                cache_hit_gap: point
                    .achieved_cache_rate
                    .map(|achieved| point.target_cache_rate - achieved),
            }),
        })
        .collect()
}

/// A gated curve whose tolerance some point cannot resolve.
fn mde_warning(curve: &ContextCurve) -> Option<String> {
    let verdict = &curve.verdict;
    let below = verdict
        .points
        .iter()
        .any(|p| p.estimate.is_some_and(|e| e.tolerance_below_mde));
    (below && curve.gated).then(|| {
        format!(
            "ctx {} {}: the {:.0} % tolerance is below the smallest change these samples can \
             detect at some points (see mde_pct); more baseline runs or a larger tolerance \
             help, more samples of this run barely do",
            curve.context_size,
            verdict.metric.name(),
            verdict.tolerance_pct
        )
    })
}
