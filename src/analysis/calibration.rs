//! A/A calibration of a baseline (`cacherate calibrate`): runs of the
//! baseline's own configuration held against it — every failed gate is a
//! false alarm — and the run-to-run noise they and the baseline's runs
//! show, with the tolerance that noise calls for. Pure: the runs are given.

use std::collections::BTreeMap;
use std::path::Path;

use crate::baseline::{Baseline, Calibration, RunData};
use crate::error::Result;
use crate::store::{AtPoint, Sample};

use super::gate::GatePolicy;
use super::judge::{judge, sample_value};
use super::policy::Metric;

/// Two-sided 99 % normal quantile: a tolerance this many standard
/// deviations of a single comparison wide passes 99 % of A/A comparisons
/// of one point.
const Z_99: f64 = 2.576;

/// One A/A run held against the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct AaRun {
    pub dir: String,
    /// The overall verdict's one line.
    pub summary: String,
    /// The gate failed: a false alarm.
    pub failed: bool,
}

/// What a calibration found: each run's verdict, and what the baseline
/// stores.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationReport {
    pub runs: Vec<AaRun>,
    pub calibration: Calibration,
}

/// Holds each of `runs` against `baseline` under `gate` and measures the
/// run-to-run noise; `created_at` dates the calibration.
pub fn calibrate(
    baseline: &Baseline,
    baseline_path: &Path,
    runs: &[RunData],
    gate: &GatePolicy,
    created_at: &str,
) -> Result<CalibrationReport> {
    let mut judged = Vec::with_capacity(runs.len());
    for run in runs {
        let verdict = judge(baseline, baseline_path, run, gate, created_at)?;
        judged.push(AaRun {
            dir: run.dir.display().to_string(),
            summary: verdict.overall.summary,
            failed: verdict.overall.verdict.fails_gate(),
        });
    }
    let noise = run_noise(baseline, runs);
    let tolerances: BTreeMap<String, f64> = Metric::ALL
        .iter()
        .map(|&m| (m.name().to_string(), gate.policy.tolerances.for_metric(m)))
        .collect();
    let recommended = noise
        .iter()
        .map(|(metric, sigma)| {
            let tolerance = recommended_tolerance(*sigma, baseline.runs.len());
            (metric.clone(), tolerance)
        })
        .collect();
    Ok(CalibrationReport {
        calibration: Calibration {
            created_at: created_at.to_string(),
            runs: judged.iter().map(|r| r.dir.clone()).collect(),
            run_noise: noise,
            false_alarms: judged.iter().filter(|r| r.failed).count(),
            recommended_tolerances: recommended,
            tolerances,
        },
        runs: judged,
    })
}

/// The tolerance 99 % of single A/A comparisons stay within, for run noise
/// `sigma` (log units) and a baseline of `baseline_runs` runs:
/// `exp(2.576 σ √(1 + 1/R)) − 1`, rounded up to half a percent.
pub fn recommended_tolerance(sigma: f64, baseline_runs: usize) -> f64 {
    let spread = Z_99 * sigma * (1.0 + 1.0 / baseline_runs as f64).sqrt();
    (spread.exp_m1() * 200.0).ceil() / 200.0
}

fn mean_ln(samples: &[Sample], metric: Metric) -> Option<f64> {
    let values: Vec<f64> = samples
        .iter()
        .map(|s| sample_value(s, metric))
        .filter(|v| *v > 0.0 && v.is_finite())
        .map(f64::ln)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn sd(values: &[f64]) -> Option<f64> {
    (values.len() >= 2).then(|| {
        let m = values.iter().sum::<f64>() / values.len() as f64;
        (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
    })
}

/// Per metric, the largest over the points of the standard deviation of
/// the runs' mean log values, the baseline's runs and the A/A runs
/// together.
fn run_noise(baseline: &Baseline, runs: &[RunData]) -> BTreeMap<String, f64> {
    Metric::ALL
        .iter()
        .filter_map(|&metric| {
            let largest = baseline
                .points
                .iter()
                .filter_map(|point| {
                    let mut means: Vec<f64> = point
                        .runs
                        .iter()
                        .filter_map(|r| mean_ln(&r.samples, metric))
                        .collect();
                    means.extend(runs.iter().filter_map(|run| {
                        let p = crate::store::find(&run.points, point.point_id())?;
                        mean_ln(&p.samples, metric)
                    }));
                    sd(&means)
                })
                .reduce(f64::max)?;
            Some((metric.name().to_string(), largest))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recommended_tolerance_covers_99_percent_rounded_up_to_half_a_percent() {
        // 2 % noise, 5 runs: 2.576 × 0.02 × √1.2 = 0.056437; e^x − 1 =
        // 0.058060, up to 0.06.
        assert_eq!(recommended_tolerance(0.02, 5), 0.06);
        // 1 % noise, 1 run: 2.576 × 0.01 × √2 = 0.036430 → 0.037102 → 0.04.
        assert_eq!(recommended_tolerance(0.01, 1), 0.04);
    }
}
