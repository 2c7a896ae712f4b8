//! `cacherate compare RUN_DIR --baseline FILE`: holds a run's samples
//! against a baseline's (SPEC §5) and writes `RUN_DIR/compare/verdict.json`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::analysis::document::{
    BaselineSide, ContextCurve, Overall, PointFigures, RunSide, SideFigures,
    VERDICT_SCHEMA_VERSION, VerdictFile, point_name,
};
use crate::analysis::{
    Metric, MetricSamples, PointHealth, PointSamples, Policy, Verdict, judge_curve,
    needs_more_samples,
};
use crate::baseline::{Baseline, BaselinePoint, RunData, load_run};
use crate::error::{Error, Result};
use crate::exit;
use crate::store::{PointResult, PointStatus, RunDir, Sample};

/// Where `verdict.json` goes inside a run directory.
pub const VERDICT_FILE: &str = "compare/verdict.json";

/// What the comparison may decide with.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub policy: Policy,
    /// Metrics whose verdicts fail the gate (the rest are shown).
    pub gated: Vec<Metric>,
    pub fail_on_inconclusive: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            policy: Policy::default(),
            gated: Metric::ALL.to_vec(),
            fail_on_inconclusive: false,
        }
    }
}

/// A sample's figure for a metric.
pub fn metric_value(sample: &Sample, metric: Metric) -> f64 {
    match metric {
        Metric::InputThroughput => sample.input_tps,
        Metric::OutputThroughput => sample.output_tps,
        Metric::TtftP50 => sample.ttft.p50,
        Metric::TtftP95 => sample.ttft.p95,
    }
}

fn current_side(point: &PointResult) -> SideFigures {
    SideFigures {
        concurrency: point.peak_concurrency,
        samples: point.samples.len(),
        input_tps: point.input_tps,
        output_tps: point.output_tps,
        ttft_p50_s: point.ttft.p50,
        ttft_p95_s: point.ttft.p95,
        ttft_p99_s: point.ttft.p99,
        error_rate: point.error_rate,
        achieved_cache_rate: point.achieved_cache_rate,
    }
}

fn baseline_side(point: &BaselinePoint) -> SideFigures {
    let samples: Vec<&Sample> = point.runs.iter().flat_map(|r| &r.samples).collect();
    let p99 = samples.iter().map(|s| s.ttft.p99).sum::<f64>() / samples.len().max(1) as f64;
    SideFigures {
        concurrency: point.peak_concurrency,
        samples: samples.len(),
        input_tps: point.input_tps,
        output_tps: point.output_tps,
        ttft_p50_s: point.ttft_p50_s,
        ttft_p95_s: point.ttft_p95_s,
        ttft_p99_s: p99,
        error_rate: point.error_rate,
        achieved_cache_rate: point.achieved_cache_rate,
    }
}

/// Refuses a comparison that would not mean anything, naming what differs.
fn check_comparable(run: &RunData, baseline: &Baseline, min_samples: usize) -> Result<Vec<String>> {
    let mut problems = baseline.workload.differences(&run.comparable());
    for point in &run.points {
        let name = point_name(point.context_size, point.cache_hit_rate);
        match baseline.point(point.context_size, point.cache_hit_rate) {
            None => problems.push(format!(
                "{name}: not in the baseline (it has {})",
                baseline
                    .points
                    .iter()
                    .map(|p| point_name(p.context_size, p.cache_hit_rate))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(_) if point.status == PointStatus::Error && !point.has_samples() => {
                problems.push(format!(
                    "{name}: not measured ({}); run the same command again once the server \
                     is healthy",
                    point.status_message.as_deref().unwrap_or("error")
                ))
            }
            Some(_) if !point.has_samples() => problems.push(format!(
                "{name}: the run has no independent samples (--num-retries 0)"
            )),
            Some(_) if point.samples.len() < min_samples => problems.push(format!(
                "{name}: the run has {} samples, a verdict needs at least {min_samples} \
                 (--num-retries {min_samples})",
                point.samples.len()
            )),
            Some(_) => {}
        }
    }
    if run.points.is_empty() {
        problems.push("the run has no finished point".into());
    }
    if !problems.is_empty() {
        return Err(Error::Usage(format!(
            "the run in {} and the baseline {} are not comparable:\n  {}",
            run.dir.display(),
            baseline.name,
            problems.join("\n  ")
        )));
    }
    let mut warnings = baseline.workload.soft_differences(&run.comparable());
    for point in &run.points {
        if let Some(base) = baseline.point(point.context_size, point.cache_hit_rate)
            && base.peak_concurrency != point.peak_concurrency
        {
            warnings.push(format!(
                "{}: measured at concurrency {}, the baseline at {}: throughput and TTFT \
                 are compared at different loads",
                point_name(point.context_size, point.cache_hit_rate),
                point.peak_concurrency,
                base.peak_concurrency
            ));
        }
    }
    if baseline.runs.len() < crate::analysis::RECOMMENDED_BASELINE_RUNS {
        warnings.push(format!(
            "the baseline has {} run(s); {} give the verdicts their stated error rates \
             (cacherate baseline refresh --runs {})",
            baseline.runs.len(),
            crate::analysis::RECOMMENDED_BASELINE_RUNS,
            crate::analysis::RECOMMENDED_BASELINE_RUNS
        ));
    }
    Ok(warnings)
}

/// Judges `run` against `baseline`. Pure: reads nothing, writes nothing.
pub fn judge(
    run: &RunData,
    baseline: &Baseline,
    baseline_path: &Path,
    options: &CompareOptions,
) -> Result<VerdictFile> {
    options.policy.validate().map_err(Error::Usage)?;
    let mut warnings = check_comparable(run, baseline, options.policy.min_samples)?;
    let mut curves = Vec::new();
    let mut figures = Vec::new();
    for context in run.context_sizes() {
        let points: Vec<(&PointResult, &BaselinePoint)> = run
            .points
            .iter()
            .filter(|p| p.context_size == context)
            .filter_map(|p| Some((p, baseline.point(p.context_size, p.cache_hit_rate)?)))
            .collect();
        // The run's own limits: its --max-error-rate and cache-rate gap.
        let mut policy = options.policy;
        policy.health.max_error_rate = run.workload.max_error_rate;
        if let Some((point, _)) = points.first() {
            policy.health.max_cache_hit_gap = point.max_cache_rate_gap / 100.0;
        }
        for (point, base) in &points {
            figures.push(PointFigures {
                point: point_name(point.context_size, point.cache_hit_rate),
                context_size: point.context_size,
                cache_hit_rate: point.cache_hit_rate,
                target_cache_rate: point.target_cache_rate,
                baseline: baseline_side(base),
                current: current_side(point),
            });
        }
        for metric in Metric::ALL {
            let samples: Vec<PointSamples> = points
                .iter()
                .map(|(point, base)| PointSamples {
                    point: point_name(point.context_size, point.cache_hit_rate),
                    samples: MetricSamples {
                        baseline_runs: base
                            .runs
                            .iter()
                            .map(|r| r.samples.iter().map(|s| metric_value(s, metric)).collect())
                            .collect(),
                        current: point
                            .samples
                            .iter()
                            .map(|s| metric_value(s, metric))
                            .collect(),
                    },
                    health: Some(PointHealth {
                        error_rate: point.error_rate,
                        cache_hit_gap: point
                            .achieved_cache_rate
                            .map(|achieved| point.target_cache_rate - achieved),
                    }),
                })
                .collect();
            // A calibrated baseline knows this configuration's run noise.
            let mut policy = policy;
            if let Some(noise) = baseline
                .calibration
                .as_ref()
                .and_then(|c| c.run_noise.get(metric.name()))
            {
                policy.run_noise_floor = policy.run_noise_floor.max(*noise);
            }
            let verdict = judge_curve(metric, &samples, &policy).map_err(Error::Usage)?;
            if verdict
                .points
                .iter()
                .any(|p| p.estimate.is_some_and(|e| e.tolerance_below_mde))
                && options.gated.contains(&metric)
            {
                warnings.push(format!(
                    "ctx {context} {}: the {:.0} % tolerance is below the smallest change \
                     these samples can detect at some points (see mde_pct); more baseline \
                     runs or a larger tolerance help, more samples of this run barely do",
                    metric.name(),
                    verdict.tolerance_pct
                ));
            }
            curves.push(ContextCurve {
                context_size: context,
                gated: options.gated.contains(&metric),
                verdict,
            });
        }
    }
    let overall = overall(&curves, options);
    warnings.dedup();
    Ok(VerdictFile {
        schema_version: VERDICT_SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        run: RunSide {
            dir: run.dir.display().to_string(),
            model: run.workload.model.clone(),
            started_at: run.info.started_at.clone(),
            seed: run.info.seed,
            target: run.workload.target.clone(),
            git: serde_json::to_value(&run.info.git).unwrap_or_default(),
            server: serde_json::to_value(&run.info.server).unwrap_or_default(),
        },
        baseline: BaselineSide {
            name: baseline.name.clone(),
            path: baseline_path.display().to_string(),
            runs: baseline.runs.len(),
            created_at: baseline.provenance.created_at.clone(),
            refreshed_by: baseline.provenance.refreshed_by.clone(),
            tool_version: baseline.provenance.tool_version.clone(),
            git: serde_json::to_value(&baseline.provenance.git).unwrap_or_default(),
            server: baseline.provenance.server.clone(),
        },
        policy: options.policy,
        gated_metrics: options.gated.clone(),
        overall,
        curves,
        points: figures,
        warnings,
    })
}

fn overall(curves: &[ContextCurve], options: &CompareOptions) -> Overall {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let (mut regressed, mut improved, mut inconclusive, mut errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut needs_more = Vec::new();
    let mut worst_change: Option<(f64, String)> = None;
    for curve in curves.iter().filter(|c| c.gated) {
        let metric = curve.verdict.metric.name();
        for point in &curve.verdict.points {
            let name = format!("{}/{metric}", point.point);
            let kind = point.verdict.to_string();
            *counts.entry(kind).or_insert(0) += 1;
            match point.verdict {
                Verdict::Regressed => {
                    if let Some(e) = point.estimate {
                        let worse = e.change_pct.abs();
                        if worst_change.as_ref().is_none_or(|(w, _)| worse > *w) {
                            worst_change = Some((worse, format!("{name} {:+.1} %", e.change_pct)));
                        }
                    }
                    regressed.push(name)
                }
                Verdict::Improved => improved.push(name),
                Verdict::Inconclusive => {
                    if needs_more_samples(point) && !needs_more.contains(&point.point) {
                        needs_more.push(point.point.clone());
                    }
                    inconclusive.push(name)
                }
                Verdict::Error => errors.push(format!(
                    "{name}: {}",
                    point.reason.as_deref().unwrap_or("a health limit")
                )),
                Verdict::Pass | Verdict::Insufficient => {}
            }
        }
        let curve_name = format!("ctx{}/curve/{metric}", curve.context_size);
        match curve.verdict.curve.verdict {
            Verdict::Regressed => regressed.push(curve_name),
            Verdict::Improved => improved.push(curve_name),
            Verdict::Inconclusive => inconclusive.push(curve_name),
            _ => {}
        }
    }
    let total: usize = counts.values().sum();
    let curves_named = |names: &[String]| names.iter().filter(|n| n.contains("/curve/")).count();
    let points_named = |names: &[String]| names.len() - curves_named(names);
    let with_curves = |names: &[String]| match curves_named(names) {
        0 => String::new(),
        1 => " and 1 curve".to_string(),
        n => format!(" and {n} curves"),
    };
    let verdict = if !regressed.is_empty() {
        Verdict::Regressed
    } else if !errors.is_empty() {
        Verdict::Error
    } else if !inconclusive.is_empty() {
        Verdict::Inconclusive
    } else if !improved.is_empty() {
        Verdict::Improved
    } else {
        Verdict::Pass
    };
    let exit_code = match verdict {
        Verdict::Regressed | Verdict::Error => exit::REGRESSION,
        Verdict::Inconclusive if options.fail_on_inconclusive => exit::INCONCLUSIVE,
        _ => exit::PASS,
    };
    let summary = match verdict {
        Verdict::Regressed => format!(
            "regressed: {} of {total} gated point verdicts{}{}",
            points_named(&regressed),
            with_curves(&regressed),
            worst_change
                .map(|(_, what)| format!(", worst {what}"))
                .unwrap_or_default()
        ),
        Verdict::Error => format!("error: {}", errors.join("; ")),
        Verdict::Inconclusive => format!(
            "inconclusive: {} of {total} gated point verdicts{} are neither clearly within \
             tolerance nor clearly beyond it",
            points_named(&inconclusive),
            with_curves(&inconclusive)
        ),
        Verdict::Improved => format!(
            "improved: {} of {total} gated point verdicts{}",
            points_named(&improved),
            with_curves(&improved)
        ),
        _ => format!("pass: all {total} gated point verdicts within tolerance"),
    };
    Overall {
        verdict,
        exit_code,
        summary,
        counts,
        regressed,
        improved,
        inconclusive,
        errors,
        needs_more_samples: needs_more,
    }
}

/// Reads the run and the baseline, judges, writes `verdict.json`.
pub fn compare(
    run_dir: &Path,
    baseline_path: &Path,
    options: &CompareOptions,
) -> Result<VerdictFile> {
    let baseline = Baseline::read(baseline_path)?;
    let run = load_run(run_dir)?;
    let verdict = judge(&run, &baseline, baseline_path, options)?;
    let dir = RunDir::existing(run_dir)?;
    dir.write_json(VERDICT_FILE, &verdict)?;
    write_reports(&dir, &verdict)?;
    Ok(verdict)
}

/// Writes the reports of a verdict next to `verdict.json` —
/// `compare/junit.xml`, `compare/comment.md`, `compare/diff.html` — and,
/// in GitHub Actions, the comment's text as the step summary
/// (`$GITHUB_STEP_SUMMARY`; written again, it replaces itself).
pub fn write_reports(dir: &RunDir, verdict: &VerdictFile) -> Result<()> {
    use crate::report::{diff_html, junit, markdown};
    let internal = |what: &str, e: String| Error::Internal(anyhow::anyhow!("{what}: {e}"));
    let junit = junit::render(verdict).map_err(|e| internal("junit.xml", e.to_string()))?;
    dir.write_atomic("compare/junit.xml", &junit)?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let comment = markdown::render(verdict, &markdown::Links::from_actions_env(env));
    dir.write_atomic("compare/comment.md", comment.as_bytes())?;
    let html = diff_html::render(verdict).map_err(|e| internal("diff.html", e.to_string()))?;
    dir.write_atomic("compare/diff.html", html.as_bytes())?;
    if let Some(path) = env("GITHUB_STEP_SUMMARY")
        && let Err(e) = crate::github::summary::write_section(Path::new(&path), "verdict", &comment)
    {
        eprintln!("warning: cannot write the step summary {path}: {e}");
    }
    Ok(())
}

impl CompareOptions {
    /// The options given on the command line (or in the environment) over
    /// the defaults.
    pub fn from_args(args: &crate::cli::VerdictArgs) -> Result<CompareOptions> {
        let mut policy = Policy::default();
        if let Some(confidence) = args.confidence {
            policy.confidence = confidence;
        }
        if let Some(t) = args.tolerance_throughput {
            policy.tolerances.throughput = t;
        }
        if let Some(t) = args.tolerance_ttft_p50 {
            policy.tolerances.ttft_p50 = t;
        }
        if let Some(t) = args.tolerance_ttft_p95 {
            policy.tolerances.ttft_p95 = t;
        }
        if let Some(floor) = args.run_noise_floor {
            policy.run_noise_floor = floor;
        }
        if let Some(n) = args.min_samples {
            if n < 2 {
                return Err(Error::Usage(
                    "--min-samples must be at least 2: one sample has no spread".into(),
                ));
            }
            policy.min_samples = n;
        }
        policy.validate().map_err(|e| {
            Error::Usage(format!(
                "{e} (--confidence, --tolerance-*, --run-noise-floor)"
            ))
        })?;
        let gated = match &args.gate_metrics {
            Some(metrics) => metrics
                .iter()
                .map(|m| match m {
                    crate::cli::GateMetric::InputThroughput => Metric::InputThroughput,
                    crate::cli::GateMetric::OutputThroughput => Metric::OutputThroughput,
                    crate::cli::GateMetric::TtftP50 => Metric::TtftP50,
                    crate::cli::GateMetric::TtftP95 => Metric::TtftP95,
                })
                .collect(),
            None => Metric::ALL.to_vec(),
        };
        Ok(CompareOptions {
            policy,
            gated,
            fail_on_inconclusive: args.fail_on_inconclusive,
        })
    }
}

/// `cacherate compare`: judges, writes `verdict.json`, prints the table;
/// returns the exit code.
pub fn command(args: &crate::cli::CompareArgs) -> Result<i32> {
    let options = CompareOptions::from_args(&args.verdict)?;
    let verdict = compare(&args.run_dir, &args.baseline, &options)?;
    println!("{}", crate::report::verdict_table::render(&verdict));
    println!(
        "verdict written to {}",
        args.run_dir.join(VERDICT_FILE).display()
    );
    Ok(verdict.overall.exit_code)
}
