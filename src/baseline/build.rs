//! Making a baseline from finished run directories: the checks that make
//! its runs one workload measured at one load, then the samples and the
//! noise they show.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::run::RunData;
use super::schema::{
    BASELINE_SCHEMA_VERSION, Baseline, BaselinePoint, BaselineRun, GitState, NoiseEstimate,
    Provenance, RunSamples, check_name,
};
use crate::error::{Error, Result};
use crate::store::{AtPoint, PointId, PointResult, PointStatus, RunStatus, Sample};

/// Why a run cannot go into a baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRefusal {
    pub dir: PathBuf,
    pub why: String,
}

/// The checks `--force` can override.
fn refusals(runs: &[RunData]) -> Vec<RunRefusal> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    runs.iter()
        .flat_map(|run| {
            let mut why = state_refusals(run);
            why.extend(sameness_refusals(first, run));
            why.into_iter().map(|why| RunRefusal {
                dir: run.dir.clone(),
                why,
            })
        })
        .collect()
}

/// What is wrong with a run on its own: unfinished, a point missing,
/// errored or without samples, a failed gate.
fn state_refusals(run: &RunData) -> Vec<String> {
    let mut out = Vec::new();
    if run.info.status != Some(RunStatus::Complete) {
        out.push(
            "is not complete (run.json status is not \"complete\"): run the same command \
             again to finish it"
                .into(),
        );
    }
    for rate in &run.workload.cache_hit_rates {
        for context in run.context_sizes() {
            let id = PointId::new(context, *rate);
            if crate::store::find(&run.points, id).is_none() {
                out.push(format!("has no result for {id}"));
            }
        }
    }
    if let Some(point) = run.points.iter().find(|p| p.status == PointStatus::Error) {
        out.push(format!(
            "errored at {} ({}): run the same command again to measure it again",
            point.point_id(),
            point.status_message.as_deref().unwrap_or("error")
        ));
    }
    if let Some(point) = run.points.iter().find(|p| !p.has_samples()) {
        out.push(format!(
            "has no samples at {} (--num-retries 0)",
            point.point_id()
        ));
    }
    // A gate that did not pass: `regressed`, `error`, or `insufficient`
    // (the names `verdict.json` writes; see `analysis::Verdict`).
    if let Some(verdict) = &run.gate_verdict
        && matches!(verdict.as_str(), "regressed" | "error" | "insufficient")
    {
        out.push(format!("failed its gate ({verdict})"));
    }
    out
}

/// How a run differs from the first: another workload, other points,
/// other loads.
fn sameness_refusals(first: &RunData, run: &RunData) -> Vec<String> {
    let mut out = Vec::new();
    let differences = first.comparable().differences(&run.comparable());
    if !differences.is_empty() {
        out.push(format!(
            "measured another workload than {}: {}",
            first.dir.display(),
            differences.join("; ")
        ));
    }
    if run.context_sizes() != first.context_sizes()
        || run.workload.cache_hit_rates != first.workload.cache_hit_rates
    {
        out.push(format!(
            "measured other points than {} (contexts {:?}, rates {:?})",
            first.dir.display(),
            run.context_sizes(),
            run.workload.cache_hit_rates
        ));
    }
    for point in &run.points {
        if let Some(other) = crate::store::find(&first.points, point.point_id())
            && other.peak_concurrency != point.peak_concurrency
        {
            out.push(format!(
                "measured {} at concurrency {}, {} at {}: the runs of a baseline share each \
                 point's load (measure the later runs with --mode fixed --concurrency-from \
                 {}/results.json)",
                point.point_id(),
                point.peak_concurrency,
                first.dir.display(),
                other.peak_concurrency,
                first.dir.display()
            ));
        }
    }
    out
}

fn ln_values(samples: &[Sample], value: Figure) -> Vec<f64> {
    samples
        .iter()
        .map(value)
        .filter(|v| *v > 0.0)
        .map(f64::ln)
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Sample standard deviation; `None` below two values.
fn sd(values: &[f64]) -> Option<f64> {
    (values.len() >= 2).then(|| {
        let m = mean(values);
        (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
    })
}

/// A figure of a sample.
type Figure = fn(&Sample) -> f64;

/// The metrics whose noise a baseline records, by the names verdicts use.
pub const NOISE_METRICS: [(&str, Figure); 4] = [
    ("input_tps", |s| s.input_tps),
    ("output_tps", |s| s.output_tps),
    ("ttft_p50", |s| s.ttft.p50),
    ("ttft_p95", |s| s.ttft.p95),
];

fn noise(runs: &[RunSamples]) -> BTreeMap<String, NoiseEstimate> {
    NOISE_METRICS
        .iter()
        .map(|(name, value)| {
            let per_run: Vec<Vec<f64>> =
                runs.iter().map(|r| ln_values(&r.samples, *value)).collect();
            let (mut squares, mut df) = (0.0, 0usize);
            for values in &per_run {
                let m = mean(values);
                squares += values.iter().map(|v| (v - m).powi(2)).sum::<f64>();
                df += values.len().saturating_sub(1);
            }
            let means: Vec<f64> = per_run
                .iter()
                .filter(|v| !v.is_empty())
                .map(|v| mean(v))
                .collect();
            let estimate = NoiseEstimate {
                within_run: (df > 0).then(|| (squares / df as f64).sqrt()),
                between_runs: sd(&means),
                runs: runs.len(),
            };
            (name.to_string(), estimate)
        })
        .collect()
}

/// Who refreshes: the CI run when there is one, else `user@host`.
pub fn refreshed_by() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(run), Some(repo)) = (var("GITHUB_RUN_ID"), var("GITHUB_REPOSITORY")) {
        return format!("GitHub Actions run {run} of {repo}");
    }
    let user = var("USER")
        .or_else(|| var("USERNAME"))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{user}@{host}")
}

/// The baseline named `name` from `runs` (at least one). Refuses runs that
/// are incomplete, lack samples, measured another workload or other loads,
/// or failed their gate, unless `force`.
pub fn build(name: &str, runs: &[RunData], git: Option<GitState>, force: bool) -> Result<Baseline> {
    check_name(name)?;
    let first = runs
        .first()
        .ok_or_else(|| Error::Usage("a baseline needs at least one run".into()))?;
    let refused = refusals(runs);
    if !refused.is_empty() && !force {
        return Err(Error::Usage(format!(
            "cannot make a baseline of these runs:\n{}\n(--force makes it anyway)",
            refused
                .iter()
                .map(|r| format!("  {} {}", r.dir.display(), r.why))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    let points: Vec<BaselinePoint> = first
        .points
        .iter()
        .filter_map(|point| baseline_point(point, runs))
        // With --force, a run missing a point leaves that point with fewer
        // runs; keep the invariant that every point has every run.
        .filter(|p| p.runs.len() == runs.len())
        .collect();
    if points.is_empty() {
        return Err(Error::Usage(
            "no point has samples in every run: nothing to make a baseline of".into(),
        ));
    }
    Ok(Baseline {
        schema_version: BASELINE_SCHEMA_VERSION,
        name: name.to_string(),
        provenance: Provenance {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            refreshed_by: refreshed_by(),
            git,
            model: first.workload.model.clone(),
            target: first.workload.target.clone(),
            server: first.server(),
            serve: first
                .info
                .serve
                .as_ref()
                .map(|served| served.command.clone()),
        },
        workload: first.comparable(),
        runs: runs
            .iter()
            .map(|run| BaselineRun {
                dir: run.dir.display().to_string(),
                started_at: run.info.started_at.clone(),
                seed: run.info.seed,
                server_pid: run.info.serve.as_ref().and_then(|served| served.pid),
                server_started_at: run
                    .info
                    .serve
                    .as_ref()
                    .and_then(|served| served.started_at.clone()),
            })
            .collect(),
        points,
        calibration: None,
    })
}

/// The baseline's point at `point` of the first run: every run's samples
/// there, their means and noise; `None` when no run has samples there.
fn baseline_point(point: &PointResult, runs: &[RunData]) -> Option<BaselinePoint> {
    let per_run: Vec<RunSamples> = runs
        .iter()
        .filter_map(|run| crate::store::find(&run.points, point.point_id()))
        .map(|p| RunSamples {
            samples: p.samples.clone(),
            error_rate: p.error_rate,
            achieved_cache_rate: p.achieved_cache_rate,
        })
        .filter(|r| !r.samples.is_empty())
        .collect();
    if per_run.is_empty() {
        return None;
    }
    let over = |value: Figure| {
        per_run
            .iter()
            .map(|r| r.samples.iter().map(value).sum::<f64>() / r.samples.len() as f64)
            .sum::<f64>()
            / per_run.len() as f64
    };
    let achieved: Vec<f64> = per_run
        .iter()
        .filter_map(|r| r.achieved_cache_rate)
        .collect();
    Some(BaselinePoint {
        context_size: point.context_size,
        cache_hit_rate: point.cache_hit_rate,
        peak_concurrency: point.peak_concurrency,
        target_cache_rate: point.target_cache_rate,
        input_tps: over(|s| s.input_tps),
        output_tps: over(|s| s.output_tps),
        ttft_p50_s: over(|s| s.ttft.p50),
        ttft_p95_s: over(|s| s.ttft.p95),
        error_rate: per_run.iter().map(|r| r.error_rate).sum::<f64>() / per_run.len() as f64,
        achieved_cache_rate: (!achieved.is_empty()).then(|| mean(&achieved)),
        noise: noise(&per_run),
        runs: per_run,
    })
}
