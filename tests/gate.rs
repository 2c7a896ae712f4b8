//! Baselines, compare and gate end to end against the simulator: a
//! baseline of two runs, a gate of a 30 % slower server that fails at every
//! point, a gate of the same configuration that passes, extra samples at
//! inconclusive points, and comparisons refused with the reason named.

mod common;

use std::path::{Path, PathBuf};

use cacherate::cli::{BaselineCommand, Cli, Command};
use cacherate::runner::Stop;
use cacherate::sim::{SimConfig, SimServer};
use clap::Parser;
use common::phases;

const SCALE: f64 = 0.1;

/// When the verdicts judged here are dated.
const NOW: &str = "2026-11-20T11:00:00Z";

/// Short phases, three samples a point, two rates.
fn sweep_options(url: &str, out: &Path) -> Vec<String> {
    [
        "--api-endpoint",
        url,
        "--output-dir",
        out.to_str().unwrap(),
        "--context-sizes",
        "1024",
        "--working-set-size",
        "4096",
        "--cache-hit-rates",
        "0",
        "100",
        "--output-tokens",
        "16",
        "--max-ttft",
        "1.0",
        "--ramp-duration",
        "0.4",
        "--test-duration",
        "1.2",
        "--sample-duration",
        "0.6",
        "--num-retries",
        "3",
        "--start-concurrency",
        "4",
        "--concurrency-increment",
        "4",
        "--max-concurrency",
        "8",
        "--init-concurrency",
        "4",
        "--reinit-strategy",
        "per_cache_rate",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn parse(args: &[&str], options: Vec<String>) -> Command {
    let mut argv: Vec<String> = ["cacherate"].iter().map(|s| s.to_string()).collect();
    argv.extend(args.iter().map(|s| s.to_string()));
    argv.extend(options);
    Cli::try_parse_from(argv).unwrap().command
}

async fn simulator(slowdown: f64) -> SimServer {
    common::start(SimConfig {
        slowdown,
        // One speed for every server of this file: the run-to-run factor
        // of the seed is the same, so only --slowdown tells them apart.
        seed: 5,
        ..SimConfig::for_tests(SCALE)
    })
    .await
}

async fn refresh(url: &str, root: &Path) -> PathBuf {
    let mut options = sweep_options(url, &root.join("runs"));
    options.extend(
        [
            "--runs",
            "2",
            "--baselines-dir",
            root.join("baselines").to_str().unwrap(),
        ]
        .map(String::from),
    );
    let Command::Baseline(BaselineCommand::Refresh(args)) =
        parse(&["baseline", "refresh", "sim"], options)
    else {
        unreachable!()
    };
    let code = cacherate::commands::baseline::refresh(&args, &[], root, &Stop::new())
        .await
        .unwrap();
    assert_eq!(code, 0);
    root.join("baselines/sim.json")
}

async fn gate(url: &str, baseline: &Path, out: &Path, extra: &[&str]) -> i32 {
    let mut options = sweep_options(url, out);
    options.extend(["--baseline", baseline.to_str().unwrap()].map(String::from));
    options.extend(extra.iter().map(|s| s.to_string()));
    let Command::Gate(args) = parse(&["gate"], options) else {
        unreachable!()
    };
    cacherate::commands::gate::command(&args, &[], out.parent().unwrap(), &Stop::new())
        .await
        .unwrap()
}

/// No tolerance and almost no run-to-run noise assumed.
fn tight_tolerances() -> Vec<&'static str> {
    vec![
        "--tolerance-throughput",
        "0",
        "--tolerance-ttft-p50",
        "0",
        "--tolerance-ttft-p95",
        "0",
        "--run-noise-floor",
        "0.0001",
    ]
}

/// `cacherate compare RUN --baseline FILE OPTIONS…`, through the binary.
fn compare_binary(run: &Path, baseline: &Path, options: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .arg("compare")
        .arg(run)
        .arg("--baseline")
        .arg(baseline)
        .args(options)
        .output()
        .unwrap()
}

/// The metrics a verdict gates, by their names in the files.
const METRICS: [&str; 4] = [
    "input_throughput",
    "output_throughput",
    "ttft_p50",
    "ttft_p95",
];

fn value(sample: &cacherate::store::Sample, metric: &str) -> f64 {
    match metric {
        "input_throughput" => sample.input_tps,
        "output_throughput" => sample.output_tps,
        "ttft_p50" => sample.ttft.p50,
        "ttft_p95" => sample.ttft.p95,
        _ => unreachable!("{metric}"),
    }
}

fn mean_log(samples: &[cacherate::store::Sample], metric: &str) -> f64 {
    samples.iter().map(|s| value(s, metric).ln()).sum::<f64>() / samples.len() as f64
}

/// The sample standard deviation (n − 1).
fn sample_sd(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// The run-to-run variance of the log a baseline point's runs show (one-way
/// ANOVA, method of moments): the variance of the run means less what the
/// within-run noise puts there, floored at 0; `None` for one run.
fn anova_run_variance(point: &cacherate::baseline::BaselinePoint, metric: &str) -> Option<f64> {
    let runs: Vec<Vec<f64>> = point
        .runs
        .iter()
        .map(|run| run.samples.iter().map(|s| value(s, metric).ln()).collect())
        .collect();
    if runs.len() < 2 {
        return None;
    }
    let means: Vec<f64> = runs
        .iter()
        .map(|r| r.iter().sum::<f64>() / r.len() as f64)
        .collect();
    let within_df: usize = runs.iter().map(|r| r.len() - 1).sum();
    let within: f64 = runs
        .iter()
        .zip(&means)
        .map(|(r, m)| r.iter().map(|v| (v - m).powi(2)).sum::<f64>())
        .sum::<f64>()
        / within_df as f64;
    let mean_inverse_k = runs.iter().map(|r| 1.0 / r.len() as f64).sum::<f64>() / runs.len() as f64;
    Some((sample_sd(&means).powi(2) - within * mean_inverse_k).max(0.0))
}

fn verdict(out: &Path) -> serde_json::Value {
    common::verdicts::read(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_server_fails_the_gate_and_the_same_one_passes() {
    let root = tempfile::tempdir().unwrap();
    let server = simulator(1.0).await;
    let baseline_file = refresh(&server.url(), root.path()).await;
    server.stop().await.unwrap();

    let baseline = cacherate::baseline::Baseline::read(&baseline_file).unwrap();
    assert_eq!(baseline.runs.len(), 2);
    assert_eq!(baseline.points.len(), 2);
    for point in &baseline.points {
        assert!(point.runs.iter().all(|r| r.samples.len() == 3));
        assert!(point.noise["input_tps"].between_runs.is_some());
    }
    // The second run measured at the first one's loads, without a ramp.
    let second: Vec<String> = phases(&root.path().join("runs/baseline-sim/run-2"), 1024)
        .into_iter()
        .map(|p| p.phase_id)
        .collect();
    assert!(
        second.iter().all(|id| id.starts_with("FIXED_")),
        "{second:?}"
    );

    // 30 % slower: every point regresses in throughput and TTFT.
    let slow = simulator(1.3).await;
    let out = root.path().join("gate-slow");
    let code = gate(&slow.url(), &baseline_file, &out, &[]).await;
    slow.stop().await.unwrap();
    assert_eq!(code, cacherate::exit::REGRESSION);
    let v = verdict(&out);
    assert_eq!(v["overall"]["verdict"], "regressed");
    let regressed = common::verdicts::listed(&v, "regressed");
    for name in [
        "ctx1024/cache0/input_throughput",
        "ctx1024/cache100/input_throughput",
    ] {
        assert!(
            regressed.iter().any(|r| r == name),
            "{name} not in {regressed:?}"
        );
    }
    // The gate measured at the baseline's loads: no ramp phase.
    let ids: Vec<String> = phases(&out, 1024).into_iter().map(|p| p.phase_id).collect();
    assert!(ids.iter().all(|id| id.starts_with("FIXED_")), "{ids:?}");

    // The same configuration on a fresh server passes.
    let same = simulator(1.0).await;
    let out = root.path().join("gate-same");
    let code = gate(&same.url(), &baseline_file, &out, &[]).await;
    same.stop().await.unwrap();
    let v = verdict(&out);
    assert_eq!(code, 0, "{}", v["overall"]["summary"]);
    assert!(
        v["overall"]["regressed"].as_array().unwrap().is_empty(),
        "{}",
        v["overall"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconclusive_points_get_extra_samples_and_mismatches_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let server = simulator(1.0).await;
    let baseline_file = refresh(&server.url(), root.path()).await;

    // No tolerance and almost no run-to-run noise assumed: any change
    // the samples cannot call significant is inconclusive, and more
    // samples of this run are what would decide it.
    let out = root.path().join("gate-tight");
    let code = gate(
        &server.url(),
        &baseline_file,
        &out,
        &[tight_tolerances(), vec!["--max-extra-samples", "2"]].concat(),
    )
    .await;
    // What the gate exits with is what its verdict says (without
    // --fail-on-inconclusive only a regression or an error fails it), and
    // the same files judged again by `cacherate compare` give the same code.
    let overall = verdict(&out)["overall"].clone();
    let expected = match overall["verdict"].as_str().unwrap() {
        "pass" | "improved" | "inconclusive" => cacherate::exit::PASS,
        "regressed" | "error" => cacherate::exit::REGRESSION,
        other => panic!("a verdict of {other} from samples enough: {overall}"),
    };
    assert_eq!(code, expected, "{overall}");
    let compared = compare_binary(&out, &baseline_file, &tight_tolerances());
    assert_eq!(
        compared.status.code(),
        Some(code),
        "the gate and compare disagree on {}:\n{}",
        verdict(&out)["overall"],
        String::from_utf8_lossy(&compared.stderr)
    );
    let run = cacherate::baseline::load_run(&out).unwrap();
    let extended: Vec<u32> = run
        .points
        .iter()
        .filter(|p| p.samples.len() == 5)
        .map(|p| p.cache_hit_rate)
        .collect();
    assert!(
        !extended.is_empty(),
        "no point got extra samples: {:?}",
        run.points
            .iter()
            .map(|p| p.samples.len())
            .collect::<Vec<_>>()
    );
    let ids: Vec<String> = phases(&out, 1024).into_iter().map(|p| p.phase_id).collect();
    assert!(ids.iter().any(|id| id.ends_with("_run5")), "{ids:?}");
    for point in run.points.iter().filter(|p| p.samples.len() == 5) {
        let mean = point.samples.iter().map(|s| s.input_tps).sum::<f64>() / 5.0;
        assert!(
            (point.input_tps - mean).abs() < 1e-6,
            "figures are over all samples"
        );
    }

    // A/A calibration: two more runs at the baseline's loads; the run
    // noise they show goes into the baseline and becomes the floor of the
    // next comparison.
    let calibrated = root.path().join("calibrated.json");
    std::fs::copy(&baseline_file, &calibrated).unwrap();
    let mut options = sweep_options(&server.url(), &root.path().join("calibration"));
    options.extend(["--baseline", calibrated.to_str().unwrap(), "--runs", "2"].map(String::from));
    let Command::Calibrate(args) = parse(&["calibrate"], options) else {
        unreachable!()
    };
    let code = cacherate::commands::calibrate::command(&args, &[], root.path(), &Stop::new())
        .await
        .unwrap();
    assert_eq!(code, 0);
    let calibration = cacherate::baseline::Baseline::read(&calibrated)
        .unwrap()
        .calibration
        .expect("calibrate stores what it measured");
    assert_eq!(calibration.runs.len(), 2);
    // The stored noise is, per metric, the largest over the points of the
    // spread of the runs' mean logs, the baseline's runs and the A/A runs
    // together; the recommended tolerance the change 99 % of single A/A
    // comparisons stay within, 2.576 σ √(1 + 1/R) as a ratio, rounded up to
    // half a percent.
    let baseline = cacherate::baseline::Baseline::read(&baseline_file).unwrap();
    let aa_runs: Vec<Vec<cacherate::store::PointResult>> = calibration
        .runs
        .iter()
        .map(|dir| common::results(Path::new(dir)))
        .collect();
    for metric in METRICS {
        // Per point, each run's samples: the baseline's runs, then the
        // A/A runs' at the same point.
        let expected = baseline
            .points
            .iter()
            .map(|point| {
                let at_point = aa_runs.iter().map(|run| {
                    let same = run
                        .iter()
                        .find(|p| p.cache_hit_rate == point.cache_hit_rate);
                    same.unwrap().samples.as_slice()
                });
                let runs: Vec<&[cacherate::store::Sample]> = point
                    .runs
                    .iter()
                    .map(|run| run.samples.as_slice())
                    .chain(at_point)
                    .collect();
                assert_eq!(runs.len(), 4, "two baseline runs and two A/A runs");
                sample_sd(&runs.iter().map(|s| mean_log(s, metric)).collect::<Vec<_>>())
            })
            .fold(0.0, f64::max);
        let stored = calibration.run_noise[metric];
        assert!(
            (stored - expected).abs() < 1e-12 && stored > 0.0,
            "{metric}: stored run noise {stored}, the runs show {expected}"
        );
        let spread = 2.576 * stored * (1.0 + 1.0 / 2.0f64).sqrt();
        let recommended = calibration.recommended_tolerances[metric];
        let half_percents = recommended * 200.0;
        assert!(
            (half_percents - half_percents.round()).abs() < 1e-9
                && recommended >= spread.exp() - 1.0
                && recommended < spread.exp() - 1.0 + 0.005,
            "{metric}: recommended {recommended} for a 99 % spread of {} (σ {stored})",
            spread.exp() - 1.0
        );
    }
    let noise = calibration.run_noise["input_throughput"];

    // A comparison against the calibrated baseline takes that noise as its
    // floor where it is above --run-noise-floor (2 %); the baseline's own
    // runs raise it further only where their spread is larger still.
    let compared = compare_binary(&out, &calibrated, &[]);
    assert!(
        [
            Some(cacherate::exit::PASS),
            Some(cacherate::exit::REGRESSION)
        ]
        .contains(&compared.status.code()),
        "{}",
        String::from_utf8_lossy(&compared.stderr)
    );
    let rejudged = verdict(&out);
    for point in &baseline.points {
        let name = format!("ctx1024/cache{}", point.cache_hit_rate);
        let estimate =
            &common::verdicts::of_point(&rejudged, &name, "input_throughput")["estimate"];
        let floor = noise.max(0.02);
        let (between_runs, source) = match anova_run_variance(point, "input_throughput") {
            Some(v) if v > floor * floor => (v.sqrt(), "baseline_runs"),
            _ => (floor, "floor"),
        };
        let used = estimate["run_noise"].as_f64().unwrap();
        assert!(
            (used - between_runs).abs() < 1e-9 && estimate["run_noise_source"] == source,
            "{name}: run noise {used} ({}), expected {between_runs} ({source}) from the \
             calibrated floor {floor}",
            estimate["run_noise_source"]
        );
    }

    // A run of another workload is refused with the fields named.
    let mut other = run.clone();
    other.workload.output_tokens = 32;
    other.workload.chunk_size = 128;
    let baseline = cacherate::baseline::Baseline::read(&baseline_file).unwrap();
    let error =
        cacherate::analysis::judge(&baseline, &baseline_file, &other, &Default::default(), NOW)
            .unwrap_err();
    assert_eq!(error.exit_code(), cacherate::exit::USAGE);
    let message = error.to_string();
    assert!(
        message.contains("--output-tokens: baseline 16, run 32")
            && message.contains("--chunk-size: baseline 256, run 128"),
        "{message}"
    );
    // A point without samples is refused too.
    let mut unsampled = run.clone();
    unsampled.points[0].samples.clear();
    let message = cacherate::analysis::judge(
        &baseline,
        &baseline_file,
        &unsampled,
        &Default::default(),
        NOW,
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("no independent samples"), "{message}");
    // And one the circuit breaker stopped, with its reason.
    unsampled.points[0].status = cacherate::store::PointStatus::Error;
    unsampled.points[0].status_message = Some("circuit breaker: 20 failures".into());
    let message = cacherate::analysis::judge(
        &baseline,
        &baseline_file,
        &unsampled,
        &Default::default(),
        NOW,
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("not measured (circuit breaker: 20 failures); run the same command again"),
        "{message}"
    );

    // A gate against a damaged baseline stops before measuring anything.
    let damaged = root.path().join("damaged.json");
    let text = std::fs::read_to_string(&baseline_file).unwrap();
    std::fs::write(&damaged, &text[..text.len() / 2]).unwrap();
    let mut options = sweep_options(&server.url(), &root.path().join("gate-damaged"));
    options.extend(["--baseline", damaged.to_str().unwrap()].map(String::from));
    let Command::Gate(args) = parse(&["gate"], options) else {
        unreachable!()
    };
    let error = cacherate::commands::gate::command(&args, &[], root.path(), &Stop::new())
        .await
        .unwrap_err();
    server.stop().await.unwrap();
    assert_eq!(error.exit_code(), cacherate::exit::USAGE);
    assert!(error.to_string().contains("damaged"), "{error}");
    assert!(!root.path().join("gate-damaged").exists());
}

/// `cacherate ARGS…` through the binary, off the runtime's workers.
async fn binary(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cacherate"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_that_searches_the_peak_runs_the_ramp_and_warns_where_the_peak_moved() {
    let root = tempfile::tempdir().unwrap();
    let server = simulator(1.0).await;
    let baseline_file = refresh(&server.url(), root.path()).await;
    // Both points peak at the top level, 8 (every level passes a 1 s TTFT
    // limit here, and 8 carries more than 4). A baseline that says 4 at
    // 100 %: the peak found there differs from it, at 0 % it does not.
    let mut baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline_file).unwrap()).unwrap();
    for point in baseline["points"].as_array_mut().unwrap() {
        assert_eq!(point["peak_concurrency"], 8, "{point}");
        if point["cache_hit_rate"] == 100 {
            point["peak_concurrency"] = 4.into();
        }
    }
    let moved = root.path().join("moved.json");
    std::fs::write(&moved, baseline.to_string()).unwrap();

    let out = root.path().join("gate-peak");
    let mut args: Vec<String> = ["gate", "--search-peak", "--baseline"]
        .map(String::from)
        .to_vec();
    args.push(moved.display().to_string());
    args.extend(sweep_options(&server.url(), &out));
    let output = binary(args.clone()).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        [
            Some(cacherate::exit::PASS),
            Some(cacherate::exit::REGRESSION)
        ]
        .contains(&output.status.code()),
        "{stderr}"
    );
    // The ramp ran, not the baseline's loads.
    let ids: Vec<String> = phases(&out, 1024).into_iter().map(|p| p.phase_id).collect();
    assert!(ids.iter().any(|id| id.starts_with("RAMP_")), "{ids:?}");
    assert!(!ids.iter().any(|id| id.starts_with("FIXED_")), "{ids:?}");
    let v = verdict(&out);
    let moved_warnings: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .filter(|w| w.contains("compared at different loads"))
        .collect();
    assert_eq!(
        moved_warnings,
        [
            "ctx 1024 at 100%: measured at concurrency 8, the baseline at 4: throughput and TTFT \
          are compared at different loads"
        ],
        "{}",
        v["warnings"]
    );

    // With a load of its own it is refused before anything runs.
    let other = root.path().join("gate-refused");
    args.extend(["--mode".into(), "fixed".into(), "--output-dir".into()]);
    args.push(other.display().to_string());
    let output = binary(args).await;
    server.stop().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::USAGE),
        "{stderr}"
    );
    assert!(stderr.contains("--search-peak runs the ramp"), "{stderr}");
    assert!(!other.exists());
}
