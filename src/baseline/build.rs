//! Making a baseline from finished run directories: the checks that make
//! its runs one workload measured at one load, then the samples and the
//! noise they show.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::schema::{
    BASELINE_SCHEMA_VERSION, Baseline, BaselinePoint, BaselineRun, Comparable, GitState,
    NoiseEstimate, Provenance, RunSamples, check_name,
};
use crate::error::{Error, Result};
use crate::store::Workload;
use crate::store::{PointResult, RunDir, RunInfo, RunStatus, Sample};

/// What a baseline needs of one run directory.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub workload: Workload,
    pub points: Vec<PointResult>,
    /// `run.json` (all empty when the run has none).
    pub info: RunInfo,
    /// The overall verdict of `compare/verdict.json`, when the run was
    /// gated.
    pub gate_verdict: Option<String>,
}

impl RunData {
    /// The context sizes the run measured.
    pub fn context_sizes(&self) -> Vec<u64> {
        let mut sizes: Vec<u64> = self.points.iter().map(|p| p.context_size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    pub fn comparable(&self) -> Comparable {
        Comparable::of(&self.workload, &self.context_sizes())
    }
}

/// Reads a finished (or unfinished: [`build`] refuses those) run directory.
pub fn load_run(dir: &Path) -> Result<RunData> {
    let run = RunDir::existing(dir)?;
    let progress = run.load_progress()?.ok_or_else(|| {
        Error::Usage(format!(
            "{} holds no run (no progress.json); give the --output-dir of a `cacherate run`",
            dir.display()
        ))
    })?;
    let results = run.load_results()?;
    let info = RunInfo::read(&run)?.unwrap_or_default();
    let gate_verdict = run
        .read_value("compare/verdict.json")?
        .and_then(|v| v["overall"]["verdict"].as_str().map(str::to_string));
    let mut points = results.points;
    points.sort_by_key(|p| (p.context_size, p.cache_hit_rate));
    Ok(RunData {
        dir: dir.to_path_buf(),
        workload: progress.workload,
        points,
        info,
        gate_verdict,
    })
}

/// Why a run cannot go into a baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRefusal {
    pub dir: PathBuf,
    pub why: String,
}

/// The checks `--force` can override.
fn refusals(runs: &[RunData]) -> Vec<RunRefusal> {
    let mut out = Vec::new();
    let mut refuse = |run: &RunData, why: String| {
        out.push(RunRefusal {
            dir: run.dir.clone(),
            why,
        })
    };
    let Some(first) = runs.first() else {
        return out;
    };
    for run in runs {
        if run.info.status != Some(RunStatus::Complete) {
            refuse(
                run,
                "is not complete (run.json status is not \"complete\"): run the same command \
                 again to finish it"
                    .into(),
            );
        }
        for rate in &run.workload.cache_hit_rates {
            for context in run.context_sizes() {
                if !run
                    .points
                    .iter()
                    .any(|p| p.context_size == context && p.cache_hit_rate == *rate)
                {
                    refuse(run, format!("has no result for ctx {context} at {rate}%"));
                }
            }
        }
        if let Some(point) = run
            .points
            .iter()
            .find(|p| p.status == crate::store::PointStatus::Error)
        {
            refuse(
                run,
                format!(
                    "errored at ctx {} at {}% ({}): run the same command again to measure it \
                     again",
                    point.context_size,
                    point.cache_hit_rate,
                    point.status_message.as_deref().unwrap_or("error")
                ),
            );
        }
        if let Some(point) = run.points.iter().find(|p| !p.has_samples()) {
            refuse(
                run,
                format!(
                    "has no samples at ctx {} at {}% (--num-retries 0)",
                    point.context_size, point.cache_hit_rate
                ),
            );
        }
        if let Some(verdict) = &run.gate_verdict
            && matches!(verdict.as_str(), "regressed" | "error")
        {
            refuse(run, format!("failed its gate ({verdict})"));
        }
        let differences = first.comparable().differences(&run.comparable());
        if !differences.is_empty() {
            refuse(
                run,
                format!(
                    "measured another workload than {}: {}",
                    first.dir.display(),
                    differences.join("; ")
                ),
            );
        }
        if run.context_sizes() != first.context_sizes()
            || run.workload.cache_hit_rates != first.workload.cache_hit_rates
        {
            refuse(
                run,
                format!(
                    "measured other points than {} (contexts {:?}, rates {:?})",
                    first.dir.display(),
                    run.context_sizes(),
                    run.workload.cache_hit_rates
                ),
            );
        }
        for point in &run.points {
            if let Some(other) = first.points.iter().find(|p| {
                p.context_size == point.context_size && p.cache_hit_rate == point.cache_hit_rate
            }) && other.peak_concurrency != point.peak_concurrency
            {
                refuse(
                    run,
                    format!(
                        "measured ctx {} at {}% at concurrency {}, {} at {}: the runs of a \
                         baseline share each point's load (measure the later runs with \
                         --mode fixed --concurrency-from {}/results.json)",
                        point.context_size,
                        point.cache_hit_rate,
                        point.peak_concurrency,
                        first.dir.display(),
                        other.peak_concurrency,
                        first.dir.display()
                    ),
                );
            }
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
    let mut points = Vec::new();
    for point in &first.points {
        let per_run: Vec<RunSamples> = runs
            .iter()
            .filter_map(|run| {
                run.points
                    .iter()
                    .find(|p| {
                        p.context_size == point.context_size
                            && p.cache_hit_rate == point.cache_hit_rate
                    })
                    .map(|p| RunSamples {
                        samples: p.samples.clone(),
                        error_rate: p.error_rate,
                        achieved_cache_rate: p.achieved_cache_rate,
                    })
            })
            .filter(|r| !r.samples.is_empty())
            .collect();
        if per_run.is_empty() {
            continue;
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
        points.push(BaselinePoint {
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
        });
    }
    // With --force, a run missing a point leaves that point with fewer
    // runs; keep the invariant that every point has every run.
    points.retain(|p| p.runs.len() == runs.len());
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
            server: serde_json::to_value(&first.info.server).unwrap_or_default(),
        },
        workload: first.comparable(),
        runs: runs
            .iter()
            .map(|run| BaselineRun {
                dir: run.dir.display().to_string(),
                started_at: run.info.started_at.clone(),
                seed: run.info.seed,
            })
            .collect(),
        points,
        calibration: None,
    })
}
