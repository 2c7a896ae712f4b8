//! Whether a run and a baseline can be compared at all: the refusals that
//! make a comparison meaningless (another workload, a point the baseline
//! lacks or the run did not measure, too few samples), each naming what
//! differs, and the warnings that do not change a verdict.

use crate::baseline::BaselinePoint;
use crate::baseline::{Baseline, RunData};
use crate::error::{Error, Result};
use crate::store::{AtPoint, PointResult, PointStatus};

use super::policy::RECOMMENDED_BASELINE_RUNS;

/// Refuses a comparison that would not mean anything, naming what differs;
/// returns the warnings of one that does.
pub fn check(run: &RunData, baseline: &Baseline, min_samples: usize) -> Result<Vec<String>> {
    let problems = refusals(run, baseline, min_samples);
    if !problems.is_empty() {
        return Err(Error::Usage(format!(
            "the run in {} and the baseline {} are not comparable:\n  {}",
            run.dir.display(),
            baseline.name,
            problems.join("\n  ")
        )));
    }
    Ok(warnings(run, baseline))
}

fn refusals(run: &RunData, baseline: &Baseline, min_samples: usize) -> Vec<String> {
    let mut problems = baseline.workload.differences(&run.comparable());
    for point in &run.points {
        if let Some(problem) = point_refusal(point, baseline, min_samples) {
            problems.push(format!("{}: {problem}", point.point_id()));
        }
    }
    if run.points.is_empty() {
        problems.push("the run has no finished point".into());
    }
    problems
}

/// Why one point of the run cannot be held against the baseline.
fn point_refusal(point: &PointResult, baseline: &Baseline, min_samples: usize) -> Option<String> {
    if baseline.point(point.point_id()).is_none() {
        let held: Vec<String> = baseline
            .points
            .iter()
            .map(|p| p.point_id().to_string())
            .collect();
        return Some(format!("not in the baseline (it has {})", held.join(", ")));
    }
    if point.status == PointStatus::Error && !point.has_samples() {
        return Some(format!(
            "not measured ({}); run the same command again once the server is healthy",
            point.status_message.as_deref().unwrap_or("error")
        ));
    }
    if !point.has_samples() {
        return Some("the run has no independent samples (--num-retries 0)".into());
    }
    (point.samples.len() < min_samples).then(|| {
        format!(
            "the run has {} samples, a verdict needs at least {min_samples} \
             (--num-retries {min_samples})",
            point.samples.len()
        )
    })
}

fn warnings(run: &RunData, baseline: &Baseline) -> Vec<String> {
    let mut warnings = baseline.workload.soft_differences(&run.comparable());
    for point in &run.points {
        if let Some(base) = baseline.point(point.point_id())
            && base.peak_concurrency != point.peak_concurrency
        {
            warnings.push(format!(
                "{}: measured at concurrency {}, the baseline at {}: throughput and TTFT \
                 are compared at different loads",
                point.point_id(),
                point.peak_concurrency,
                base.peak_concurrency
            ));
        }
    }
    if baseline.runs.len() < RECOMMENDED_BASELINE_RUNS {
        warnings.push(format!(
            "the baseline has {} run(s); {RECOMMENDED_BASELINE_RUNS} give the verdicts their \
             stated error rates (cacherate baseline refresh --runs \
             {RECOMMENDED_BASELINE_RUNS})",
            baseline.runs.len(),
        ));
    }
    warnings
}

/// The points of `run` with their baseline points, at one context size.
pub(super) fn pairs<'a>(
    run: &'a RunData,
    baseline: &'a Baseline,
    context: u64,
) -> Vec<(&'a PointResult, &'a BaselinePoint)> {
    run.points
        .iter()
        .filter(|p| p.context_size == context)
        .filter_map(|p| Some((p, baseline.point(p.point_id())?)))
        .collect()
}
