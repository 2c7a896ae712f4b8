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

fn verdict(out: &Path) -> serde_json::Value {
    let path = out.join("compare/verdict.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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
    let regressed: Vec<&str> = v["overall"]["regressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for name in [
        "ctx1024/cache0/input_throughput",
        "ctx1024/cache100/input_throughput",
    ] {
        assert!(regressed.contains(&name), "{name} not in {regressed:?}");
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
    gate(
        &server.url(),
        &baseline_file,
        &out,
        &[
            "--tolerance-throughput",
            "0",
            "--tolerance-ttft-p50",
            "0",
            "--tolerance-ttft-p95",
            "0",
            "--run-noise-floor",
            "0.0001",
            "--max-extra-samples",
            "2",
        ],
    )
    .await;
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
    let noise = calibration.run_noise["input_throughput"];
    assert!(noise > 0.0 && noise < 0.5, "{noise}");
    assert!(calibration.recommended_tolerances["input_throughput"] > 0.0);
    let rejudged = cacherate::analysis::judge(
        &cacherate::baseline::Baseline::read(&calibrated).unwrap(),
        &calibrated,
        &run,
        &Default::default(),
        NOW,
    )
    .unwrap();
    let used = rejudged.curves[0].verdict.points[0]
        .estimate
        .unwrap()
        .run_noise;
    assert!(used >= noise.max(0.02) - 1e-12, "{used} < {noise}");

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
