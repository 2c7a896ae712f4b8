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
use super::verdict::{
    Estimate, PointHealth, PointSamples, judge_curve, mde_level, runs_for_tolerance,
};

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
            curves.push(curve);
        }
    }
    warnings.extend(mde_summary(&curves, gate.policy.alpha()));
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

/// An MDE within this factor of its run-to-run floor is as small as the
/// samples can make it (issue 20's target); beyond, sample noise matters.
pub const SAMPLE_NOISE_MARGIN: f64 = 1.25;

/// The gated metrics whose tolerance some point cannot resolve, said once
/// for the gate, on one line: per metric the largest MDE and where, the
/// MDE run-to-run noise alone sets there, and what would help — longer or
/// more samples when the rest is sample noise, more baseline runs (how
/// many) when the floor itself is above the tolerance, or nothing but a
/// larger tolerance when no number of runs brings it under.
fn mde_summary(curves: &[ContextCurve], alpha: f64) -> Option<String> {
    let gated = || curves.iter().filter(|c| c.gated);
    let parts: Vec<String> = Metric::ALL
        .iter()
        .filter_map(|&metric| {
            let (curve, point, e) = gated()
                .filter(|c| c.verdict.metric == metric)
                .flat_map(|c| c.verdict.points.iter().map(move |p| (c, p)))
                .filter_map(|(c, p)| Some((c, p, p.estimate.as_ref()?)))
                .filter(|(_, _, e)| e.tolerance_below_mde)
                // The largest MDE, the first of equals.
                .reduce(|best, x| {
                    if x.2.mde_pct > best.2.mde_pct {
                        x
                    } else {
                        best
                    }
                })?;
            let tested = curve
                .verdict
                .points
                .iter()
                .filter(|p| p.estimate.is_some())
                .count();
            let tolerance = curve.verdict.tolerance_pct;
            let floor = e.mde_floor_pct.unwrap_or(f64::NAN);
            let help = mde_help(e, floor, tolerance, mde_level(alpha, tested));
            Some(format!(
                "{metric} {tolerance:.0} % < MDE {:.1} % at {} (run-to-run floor {floor:.1} %; \
                 {help})",
                e.mde_pct, point.point
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "tolerances below the change these samples detect with 80 % power: {}",
            parts.join("; ")
        )
    })
}

/// What would bring an MDE of `e` under `tolerance` (percent): longer or
/// more samples when sample noise makes much of it, more baseline runs when
/// the run-noise `floor` itself is above the tolerance (`level`: the MDE's).
fn mde_help(e: &Estimate, floor: f64, tolerance: f64, level: f64) -> String {
    let mut help = Vec::new();
    if e.mde_pct > SAMPLE_NOISE_MARGIN * floor {
        help.push("sample noise makes the rest: longer or more samples".to_string());
    }
    if floor >= tolerance {
        help.push(
            match runs_for_tolerance(e.run_noise, level, (tolerance / 100.0).ln_1p()) {
                Some(runs) => format!("a baseline of {runs} runs would bring the floor under"),
                None => format!(
                    "no number of baseline runs brings the floor under: σ_run {:.1} % alone \
                     sets more",
                    e.run_noise * 100.0
                ),
            },
        );
    }
    help.join("; ")
}
