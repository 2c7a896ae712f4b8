//! Verdicts to render in tests: runs and baselines built from numbers,
//! judged by `cacherate::analysis::judge` itself, so the reports are
//! tested on what `compare` really writes. Cache rates are stored as runs
//! store them: `target_cache_rate` and `achieved_cache_rate` as fractions,
//! `max_cache_rate_gap` in percentage points.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::path::Path;

use cacherate::analysis::document::VerdictFile;
use cacherate::analysis::{GatePolicy, Metric, Verdict, judge};
use cacherate::baseline::{Baseline, BaselinePoint, BaselineRun, Provenance, RunData, RunSamples};
use cacherate::cli::{Cli, Command};
use cacherate::settings::RunSettings;
use cacherate::store::{PointResult, Sample};
use clap::Parser;
use serde_json::json;

/// A model id that tries every trick on every renderer.
pub const HOSTILE_MODEL: &str = "evil<script>alert(1)</script>@octocat [x](https://evil.example/p) |a|b| `tick` &amp; ![i](https://evil.example/i.png) www.evil.example";

/// How the current run differs from the baseline at a point.
#[derive(Debug, Clone, Copy)]
pub struct Change {
    /// Factors on input tok/s, output tok/s, TTFT p50, TTFT p95.
    pub factors: [f64; 4],
    /// The current run's samples spread ±13 % (too noisy to decide).
    pub noisy: bool,
    /// The current run's error rate.
    pub error_rate: f64,
    /// The cache hit rate the server reported, a fraction (none reported
    /// when `None`).
    pub achieved_cache_rate: Option<f64>,
}

impl Change {
    pub const SAME: Change = Change {
        factors: [1.0; 4],
        noisy: false,
        error_rate: 0.0,
        achieved_cache_rate: None,
    };

    pub fn factors(factors: [f64; 4]) -> Change {
        Change {
            factors,
            ..Change::SAME
        }
    }
}

fn latency(p50: f64, p95: f64) -> serde_json::Value {
    json!({"avg": p50, "p50": p50, "p95": p95, "p99": p95 * 1.2, "max": p95 * 1.5})
}

fn base_values(context: u64, rate: u32) -> [f64; 4] {
    let speedup = 1.0 + f64::from(rate) / 25.0;
    let input = 4000.0 * speedup * (8000.0 / context as f64).sqrt();
    let ttft = 0.2 * context as f64 / 2048.0 / speedup;
    [input, input / 30.0, ttft, ttft * 1.4]
}

fn sample(id: usize, values: [f64; 4], error_rate: f64, achieved: Option<f64>) -> Sample {
    serde_json::from_value(json!({
        "phase_id": format!("RETRY_{id}"),
        "concurrency": 8,
        "window_start_unix_s": 1000.0 + 10.0 * id as f64,
        "window_end_unix_s": 1008.0 + 10.0 * id as f64,
        "launched": 100,
        "completed": 100,
        "failed": (error_rate * 100.0).round() as u64,
        "error_rate": error_rate,
        "input_tps": values[0],
        "output_tps": values[1],
        "ttft": latency(values[2], values[3]),
        "ttft_histogram": "",
        "ttlt": latency(values[2] * 3.0, values[3] * 3.0),
        "itl": latency(0.01, 0.012),
        "achieved_cache_rate": achieved,
        "passed": true,
    }))
    .expect("a sample")
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn point_result(
    context: u64,
    rate: u32,
    samples: Vec<Sample>,
    error_rate: f64,
    achieved: Option<f64>,
) -> PointResult {
    let n = samples.len() as f64;
    let avg = |f: &dyn Fn(&Sample) -> f64| samples.iter().map(f).sum::<f64>() / n;
    let (input, output) = (avg(&|s| s.input_tps), avg(&|s| s.output_tps));
    let (p50, p95) = (avg(&|s| s.ttft.p50), avg(&|s| s.ttft.p95));
    serde_json::from_value(json!({
        "context_size": context,
        "cache_hit_rate": rate,
        "plan": "fixed_from",
        "prompt_tokens_per_request": context,
        "target_cached_tokens": context * u64::from(rate) / 100,
        "peak_concurrency": 8,
        "peak_passed": true,
        "selection_phase": null,
        "samples": samples,
        "input_tps": input,
        "output_tps": output,
        "ttft": latency(p50, p95),
        "ttlt": latency(p50 * 3.0, p95 * 3.0),
        "itl": latency(0.01, 0.012),
        "req_output_tps_avg": 50.0,
        "req_output_tps_p5": 40.0,
        "req_output_tps_p10": 42.0,
        "requests": 300,
        "error_rate": error_rate,
        "total_requests": 400,
        "failed_requests": (error_rate * 300.0).round() as u64,
        "errors": {},
        "target_cache_rate": f64::from(rate) / 100.0,
        "achieved_cache_rate": achieved,
        "max_cache_rate_gap": 5.0,
        "cache_rate_missed": false,
        "server_cache_rate": null,
        "prompt_token_drift": null,
        "duration_s": 40.0,
        "ttft_histogram": "",
    }))
    .expect("a point result")
}

/// Baseline: 5 runs of 3 samples, runs ±0.3 % apart, samples ±0.4 %.
fn baseline_point(context: u64, rate: u32) -> BaselinePoint {
    let base = base_values(context, rate);
    let runs: Vec<RunSamples> = (0..5)
        .map(|r| {
            let run_offset = 1.0 + 0.003 * ((r % 3) as f64 - 1.0);
            RunSamples {
                samples: (0..3)
                    .map(|k| {
                        let wobble = 1.0 + 0.004 * (((r + k) % 3) as f64 - 1.0);
                        sample(k, base.map(|v| v * run_offset * wobble), 0.0, None)
                    })
                    .collect(),
                error_rate: 0.0,
                achieved_cache_rate: None,
            }
        })
        .collect();
    let all: Vec<&Sample> = runs.iter().flat_map(|r| &r.samples).collect();
    BaselinePoint {
        context_size: context,
        cache_hit_rate: rate,
        peak_concurrency: 8,
        target_cache_rate: f64::from(rate) / 100.0,
        input_tps: mean(all.iter().map(|s| s.input_tps)),
        output_tps: mean(all.iter().map(|s| s.output_tps)),
        ttft_p50_s: mean(all.iter().map(|s| s.ttft.p50)),
        ttft_p95_s: mean(all.iter().map(|s| s.ttft.p95)),
        error_rate: 0.0,
        achieved_cache_rate: None,
        runs,
        noise: BTreeMap::new(),
    }
}

fn current_point(context: u64, rate: u32, change: Change) -> PointResult {
    let base = base_values(context, rate);
    let samples = (0..3)
        .map(|k| {
            let wobble = if change.noisy {
                1.0 + 0.13 * (k as f64 - 1.0)
            } else {
                1.0 + 0.004 * (k as f64 - 1.0)
            };
            let values: [f64; 4] = std::array::from_fn(|m| base[m] * change.factors[m] * wobble);
            sample(k, values, change.error_rate, change.achieved_cache_rate)
        })
        .collect();
    point_result(
        context,
        rate,
        samples,
        change.error_rate,
        change.achieved_cache_rate,
    )
}

/// Judges a run over `contexts` × `rates` against its baseline, each point
/// changed by `change`, every metric gated; dates, paths and versions fixed
/// for snapshots.
pub fn verdict(
    model: &str,
    contexts: &[u64],
    rates: &[u32],
    change: impl Fn(u64, u32) -> Change,
) -> VerdictFile {
    verdict_gating(model, contexts, rates, change, &Metric::ALL)
}

/// [`verdict`] with only `gated` failing the gate (`--gate-metrics`).
pub fn verdict_gating(
    model: &str,
    contexts: &[u64],
    rates: &[u32],
    change: impl Fn(u64, u32) -> Change,
    gated: &[Metric],
) -> VerdictFile {
    let mut argv: Vec<String> = [
        "cacherate",
        "run",
        "--working-set-size",
        "100000",
        "--num-retries",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.push("--context-sizes".into());
    argv.extend(contexts.iter().map(|c| c.to_string()));
    argv.push("--cache-hit-rates".into());
    argv.extend(rates.iter().map(|r| r.to_string()));
    let Command::Run(args) = Cli::try_parse_from(argv).expect("run arguments").command else {
        unreachable!()
    };
    let no_profiles = tempfile::tempdir().unwrap();
    let settings = RunSettings::resolve(*args, no_profiles.path()).expect("settings");
    let workload = cacherate::runner::workload(&settings, model, 7);

    let mut points = Vec::new();
    let mut baseline_points = Vec::new();
    for &context in contexts {
        for &rate in rates {
            points.push(current_point(context, rate, change(context, rate)));
            baseline_points.push(baseline_point(context, rate));
        }
    }
    let run = RunData {
        dir: "runs/pr-1234".into(),
        workload,
        points,
        info: serde_json::from_value(json!({
            "started_at": "2026-11-20T10:00:00Z",
            "seed": 7,
            "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "branch": "tune-max-num-seqs", "dirty": false},
            "server": {"kind": "vllm", "version": "0.11.0", "max_model_len": 65536, "model": model},
            "status": "complete",
        }))
        .expect("a run.json"),
        gate_verdict: None,
    };
    let baseline = Baseline {
        schema_version: cacherate::baseline::BASELINE_SCHEMA_VERSION,
        name: "h100-quick".into(),
        provenance: Provenance {
            tool_version: "0.0.0-test".into(),
            created_at: "2026-11-01T08:00:00Z".into(),
            refreshed_by: "GitHub Actions run 99 of acme/serving <img src=x> @admin".into(),
            git: None,
            model: model.into(),
            target: vec!["http://gpu-1:8000".into()],
            server: json!({"kind": "vllm", "version": "0.10.2"}),
            serve: None,
        },
        workload: run.comparable(),
        runs: (0..5)
            .map(|i| BaselineRun {
                dir: format!("runs/baseline-{i}"),
                started_at: None,
                seed: Some(i),
                server_pid: None,
                server_started_at: None,
            })
            .collect(),
        points: baseline_points,
        calibration: None,
    };
    let mut verdict = judge(
        &baseline,
        Path::new("baselines/h100-quick.json"),
        &run,
        &GatePolicy {
            gated: gated.to_vec(),
            ..GatePolicy::default()
        },
        "2026-11-20T11:00:00Z",
    )
    .expect("the run and the baseline are comparable");
    verdict.tool_version = "0.0.0-test".into();
    verdict
}

/// Three contexts × three rates with one of each verdict, TTFT p95 shown
/// but not gated, and a hostile model id: at ctx 32000, 0 % the server
/// streamed no counted output (output tok/s 0 in every sample: an
/// `insufficient` verdict) and TTFT p95 rose by half (not gated); at 50 % it
/// reported 30 % cached instead of 50 % (a cache-gap `error`).
pub fn mixed() -> VerdictFile {
    verdict_gating(
        HOSTILE_MODEL,
        &[2048, 8000, 32000],
        &[0, 50, 100],
        |context, rate| match (context, rate) {
            (2048, 50) => Change::factors([0.80, 0.80, 1.25, 1.0]),
            (2048, 100) => Change::factors([1.25, 1.0, 1.0, 1.0]),
            (8000, 0) => Change {
                factors: [0.93, 1.0, 1.0, 1.0],
                noisy: true,
                ..Change::SAME
            },
            (8000, 50) => Change {
                error_rate: 0.2,
                ..Change::SAME
            },
            (32000, 0) => Change {
                achieved_cache_rate: Some(0.0),
                ..Change::factors([1.0, 0.0, 1.0, 1.5])
            },
            (32000, 50) => Change {
                achieved_cache_rate: Some(0.30),
                ..Change::SAME
            },
            (32000, 100) => Change {
                achieved_cache_rate: Some(0.992),
                ..Change::SAME
            },
            _ => Change::SAME,
        },
        &[
            Metric::InputThroughput,
            Metric::OutputThroughput,
            Metric::TtftP50,
        ],
    )
}

/// 21 cache rates × 4 context sizes; every point changed by `change`.
pub fn sweep_21x4(change: impl Fn(u64, u32) -> Change) -> VerdictFile {
    let rates: Vec<u32> = (0..=100).step_by(5).collect();
    verdict(
        "meta-llama/Llama-3.1-8B-Instruct",
        &[2048, 8000, 32000, 64000],
        &rates,
        change,
    )
}

/// A realistic large sweep: a regression at high cache rates of the long
/// contexts, an improvement at low rates of the short ones.
pub fn sweep_21x4_mixed() -> VerdictFile {
    sweep_21x4(|context, rate| match (context, rate) {
        (32000 | 64000, r) if r >= 60 => Change::factors([0.85, 0.9, 1.2, 1.3]),
        (2048, r) if r <= 20 => Change::factors([1.2, 1.1, 0.85, 0.8]),
        _ => Change::SAME,
    })
}

/// How a verdict should show in JUnit, decided here independently of the
/// renderer: gated regressions fail, and so do gated inconclusive verdicts
/// under `--fail-on-inconclusive`; gated errors and insufficient data are
/// errors; passes and improvements pass; everything else is skipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JunitCounts {
    pub tests: usize,
    pub failures: usize,
    pub errors: usize,
    pub skipped: usize,
}

pub fn expected_junit_counts(verdict: &VerdictFile) -> BTreeMap<String, JunitCounts> {
    let mut out: BTreeMap<String, JunitCounts> = BTreeMap::new();
    for curve in &verdict.curves {
        let counts = out.entry(format!("ctx{}", curve.context_size)).or_default();
        let verdicts = curve
            .verdict
            .points
            .iter()
            .map(|p| p.verdict)
            .chain(std::iter::once(curve.verdict.curve.verdict));
        for v in verdicts {
            counts.tests += 1;
            match (v, curve.gated) {
                (Verdict::Pass | Verdict::Improved, _) => {}
                (Verdict::Regressed, true) => counts.failures += 1,
                (Verdict::Inconclusive, true) if verdict.fail_on_inconclusive => {
                    counts.failures += 1
                }
                (Verdict::Error | Verdict::Insufficient, true) => counts.errors += 1,
                _ => counts.skipped += 1,
            }
        }
    }
    out
}
