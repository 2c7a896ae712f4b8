//! `cacherate calibrate --baseline FILE`: A/A. Runs the baseline's
//! configuration again at its loads (or reads finished runs), holds each
//! run against the baseline with the tolerances in force — every failure
//! is a false alarm — and stores the run-to-run noise the runs show in the
//! baseline, where comparisons use it as their noise floor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::compare::{CompareOptions, judge, metric_value};
use crate::analysis::{Metric, Verdict};
use crate::baseline::{Baseline, Calibration, RunData, load_run};
use crate::cli::CalibrateArgs;
use crate::error::{Error, Result};
use crate::progress::Ui;
use crate::runner::Stop;
use crate::settings::{Mode, RunSettings};
use crate::store::{RunDir, Sample};

/// A/A runs when `--runs` is not given.
const DEFAULT_RUNS: u32 = 5;

/// Two-sided 99 % normal quantile: a tolerance this many standard
/// deviations of a single comparison wide passes 99 % of A/A comparisons
/// of one point.
const Z_99: f64 = 2.576;

fn mean_ln(samples: &[Sample], metric: Metric) -> Option<f64> {
    let values: Vec<f64> = samples
        .iter()
        .map(|s| metric_value(s, metric))
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
                        let p = run.points.iter().find(|p| {
                            p.context_size == point.context_size
                                && p.cache_hit_rate == point.cache_hit_rate
                        })?;
                        mean_ln(&p.samples, metric)
                    }));
                    sd(&means)
                })
                .fold(None, |acc: Option<f64>, v| {
                    Some(acc.map_or(v, |a| a.max(v)))
                })?;
            Some((metric.name().to_string(), largest))
        })
        .collect()
}

/// The settings of A/A run `k`: the baseline's loads, in a directory of
/// its own.
fn run_settings(
    args: &CalibrateArgs,
    k: u32,
    min_samples: usize,
    cwd: &Path,
) -> Result<RunSettings> {
    let mut run = args.run.clone();
    let name = args
        .baseline
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "baseline".into());
    let base = run
        .options
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./output"))
        .join(format!("calibrate-{name}"));
    run.options.output_dir = Some(base.join(format!("run-{k}")));
    run.options.mode = Some(Mode::Fixed);
    run.options.fixed_concurrency_levels = None;
    run.options.concurrency_from = Some(args.baseline.clone());
    super::resolve_with_samples(run, min_samples, cwd)
}

/// `cacherate calibrate`.
pub async fn command(
    args: &CalibrateArgs,
    argv: &[String],
    cwd: &Path,
    stop: &Stop,
) -> Result<i32> {
    let options = CompareOptions::from_args(&args.verdict)?;
    let mut baseline = Baseline::read(&args.baseline)?;
    let ui = Ui::new(args.run.quiet);
    let dirs: Vec<PathBuf> = if !args.from_run.is_empty() {
        args.from_run.clone()
    } else {
        let runs = args.runs.unwrap_or(DEFAULT_RUNS);
        if runs < 2 {
            return Err(Error::Usage(
                "--runs must be at least 2: one run shows no run-to-run noise".into(),
            ));
        }
        let mut dirs = Vec::new();
        for k in 1..=runs {
            let settings = run_settings(args, k, options.policy.min_samples, cwd)?;
            ui.line(&format!(
                "calibrate: A/A run {k} of {runs} in {}",
                settings.output_dir.display()
            ));
            dirs.push(super::run_and_report(settings, argv, stop).await?.dir);
        }
        dirs
    };
    let runs = dirs
        .iter()
        .map(|dir| load_run(dir))
        .collect::<Result<Vec<_>>>()?;
    let mut false_alarms = 0;
    for run in &runs {
        let verdict = judge(run, &baseline, &args.baseline, &options)?;
        let failed = matches!(verdict.overall.verdict, Verdict::Regressed | Verdict::Error);
        false_alarms += usize::from(failed);
        ui.line(&format!(
            "{}: {}",
            run.dir.display(),
            verdict.overall.summary
        ));
    }
    let noise = run_noise(&baseline, &runs);
    let baseline_runs = baseline.runs.len() as f64;
    let tolerances: BTreeMap<String, f64> = Metric::ALL
        .iter()
        .map(|&m| {
            (
                m.name().to_string(),
                options.policy.tolerances.for_metric(m),
            )
        })
        .collect();
    let recommended: BTreeMap<String, f64> = noise
        .iter()
        .map(|(metric, sigma)| {
            let spread = Z_99 * sigma * (1.0 + 1.0 / baseline_runs).sqrt();
            // Rounded up to half a percent.
            let tolerance = (spread.exp_m1() * 200.0).ceil() / 200.0;
            (metric.clone(), tolerance)
        })
        .collect();
    println!(
        "{} A/A run(s) against {}: {false_alarms} failed at the tolerances in force",
        runs.len(),
        baseline.name
    );
    println!(
        "{:<18} {:>16} {:>11} {:>12}",
        "metric", "run noise (CV)", "tolerance", "recommended"
    );
    for (metric, sigma) in &noise {
        println!(
            "{:<18} {:>15.1}% {:>10.1}% {:>11.1}%{}",
            metric,
            sigma * 100.0,
            tolerances[metric] * 100.0,
            recommended[metric] * 100.0,
            if recommended[metric] > tolerances[metric] {
                "  (the tolerance is tighter than this noise allows)"
            } else {
                ""
            }
        );
    }
    baseline.calibration = Some(Calibration {
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        runs: dirs.iter().map(|d| d.display().to_string()).collect(),
        run_noise: noise,
        false_alarms,
        recommended_tolerances: recommended,
        tolerances,
    });
    let (dir, file) = match (args.baseline.parent(), args.baseline.file_name()) {
        (Some(dir), Some(file)) => (dir, file.to_string_lossy().into_owned()),
        _ => {
            return Err(Error::Usage(format!(
                "--baseline {} is not a file path",
                args.baseline.display()
            )));
        }
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    RunDir::existing(dir)?.write_atomic(&file, &baseline.to_bytes()?)?;
    println!(
        "the run noise is stored in {}: comparisons against it use it as their floor",
        args.baseline.display()
    );
    Ok(crate::exit::PASS)
}
