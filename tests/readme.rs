//! The README's gate example, in a test binary of its own so that no other
//! test shares the machine with it, and one test at a time.
//!
//! A gate compares throughput and TTFT measured in wall time, so a
//! baseline recorded on one machine gates another machine's speed as much
//! as the change: a slower (or busier) machine fails a good change, a
//! faster one passes a bad one. So what is gated here is a baseline made
//! in the test, on this machine, minutes before the gates: the quick
//! profile's workload at the committed baseline's loads on a simulator
//! whose time runs four times as fast (every duration of the profile
//! scaled alike, so the same modelled experiment in a quarter of the
//! time). A fresh simulator of the same configuration passes it; one
//! slowed by `--slowdown 1.3` fails it. These gates judge throughput
//! only (`--gate-metrics`): at this scale a TTFT at the 100 % point is
//! some 25 ms of wall time, of which a busy machine's scheduling delays
//! are a share (measured on this 2-core machine with two more busy
//! processes: TTFT p50 there 10-40 % higher, throughput 2-6 % lower), so
//! TTFT would gate the machine's load between the baseline and the gate
//! again. The committed
//! `baselines/sim-quick.json` is checked for what the README says of it:
//! the quick profile's gate takes it from a fresh checkout and measures at
//! its loads.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use cacherate::sim::{SimConfig, SimServer};

/// One test at a time: each is alone on the machine while it measures.
static MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Wall seconds per modelled second of the simulators here.
const SCALE: f64 = 0.25;

fn committed() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines/sim-quick.json")
}

fn cacherate(args: &[String], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The quick profile with every duration scaled to the simulators' time
/// (the TTFT limit, the phases and the ramp's budget; a sample lasts a
/// ramp phase), against `url`, into `out`.
fn quick_scaled(command: &[&str], url: &str, out: &Path) -> Vec<String> {
    let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    let scaled = |seconds: f64| (seconds * SCALE).to_string();
    args.extend([
        "--profile".into(),
        "quick".into(),
        "--api-endpoint".into(),
        url.into(),
        "--max-ttft".into(),
        scaled(1.0),
        "--ramp-duration".into(),
        scaled(3.0),
        "--test-duration".into(),
        scaled(15.0),
        "--output-dir".into(),
        out.display().to_string(),
        "--skip-graphs".into(),
        "--quiet".into(),
    ]);
    args
}

/// A simulator of the embedded one's defaults on its own port, time
/// scaled, `slowdown` times slower. Without run-to-run noise: two
/// simulators of one configuration differ only by the machine, which is
/// what this file is about (the verdict rule's handling of run noise is
/// the Monte-Carlo's, `cargo bench --bench verdict_mc`).
async fn simulator(slowdown: f64, seed: u64) -> SimServer {
    SimServer::start(SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        time_scale: SCALE,
        slowdown,
        run_noise: 0.0,
        seed,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// `cacherate ARGS…` off the runtime's workers (the simulator runs on
/// them).
async fn cacherate_async(args: Vec<String>, cwd: &Path) -> Output {
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || cacherate(&args, &cwd))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_made_here_passes_a_fresh_simulator_and_fails_a_slowed_one() {
    let _alone = MACHINE.lock().await;
    let root = tempfile::tempdir().unwrap();
    let baselines = root.path().join("baselines");

    // 1. A baseline of two runs at the committed baseline's loads.
    let server = simulator(1.0, 1).await;
    let mut refresh = quick_scaled(
        &["baseline", "refresh", "here", "--runs", "2"],
        &server.url(),
        &root.path().join("runs"),
    );
    refresh.extend([
        "--mode".into(),
        "fixed".into(),
        "--concurrency-from".into(),
        committed().display().to_string(),
        "--baselines-dir".into(),
        baselines.display().to_string(),
    ]);
    let output = cacherate_async(refresh, root.path()).await;
    server.stop().await.unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let baseline = baselines.join("here.json");
    // A gate of a fresh simulator `slowdown` times slower: its exit code
    // and verdict.
    let gate = |slowdown: f64, seed: u64, name: &str| {
        let (cwd, out) = (root.path().to_path_buf(), root.path().join(name));
        let baseline = baseline.clone();
        async move {
            let server = simulator(slowdown, seed).await;
            let mut args = quick_scaled(&["gate", "--baseline"], &server.url(), &out);
            args.insert(2, baseline.display().to_string());
            args.extend([
                "--gate-metrics".into(),
                "input_throughput,output_throughput".into(),
            ]);
            let output = cacherate_async(args, &cwd).await;
            server.stop().await.unwrap();
            let verdict = common::verdicts::read(&out);
            let text = format!("{}\n{}", verdict["overall"], text(&output));
            (output.status.code(), verdict, text)
        }
    };

    // 2. A gate of a fresh simulator of the same configuration passes.
    let (code, same, log) = gate(1.0, 2, "gate-same").await;
    assert_eq!(code, Some(cacherate::exit::PASS), "{log}");
    assert!(
        common::verdicts::listed(&same, "regressed").is_empty(),
        "{log}"
    );

    // 3. One 30 % slower (throughput 23 % lower) fails it: its throughput
    //    curve regressed, and at no point does the change pass (on a busy
    //    machine a point's samples may be too noisy to call it: then it is
    //    inconclusive, never a pass).
    let (code, slow, log) = gate(1.3, 3, "gate-slow").await;
    assert_eq!(code, Some(cacherate::exit::REGRESSION), "{log}");
    assert!(
        common::verdicts::listed(&slow, "regressed")
            .contains(&"ctx2048/curve/input_throughput".to_string()),
        "{log}"
    );
    for point in common::verdicts::of_metric(&slow, "input_throughput") {
        assert!(
            point["verdict"] == "regressed" || point["verdict"] == "inconclusive",
            "{log}"
        );
    }
}

#[test]
fn the_quick_profiles_gate_takes_the_committed_baseline_and_measures_at_its_loads() {
    let _alone = MACHINE.blocking_lock();
    let committed_file = cacherate::baseline::Baseline::read(&committed()).unwrap();
    assert_eq!(committed_file.runs.len(), 5);
    assert_eq!(committed_file.points.len(), 3);
    // The README's step 2 from a fresh checkout, on the embedded simulator
    // with its time four times as fast as the baseline's (and the phases
    // a quarter as long): the gate takes the baseline (same workload),
    // measures at its loads, and sees a server four times as fast — every
    // throughput verdict improved, whatever this machine's speed short of
    // four times slower than the one that made the baseline. Throughput
    // only: TTFT at the 100 % point, a quarter of 80 ms here, is within
    // reach of a busy machine's delays (measured with two more busy
    // processes: p95 +89 % against the baseline).
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("output");
    let args: Vec<String> = [
        "gate",
        "--profile",
        "quick",
        "--baseline",
        committed().to_str().unwrap(),
        "--sim-time-scale",
        &SCALE.to_string(),
        "--ramp-duration",
        &(3.0 * SCALE).to_string(),
        "--gate-metrics",
        "input_throughput,output_throughput",
        "--skip-graphs",
        "--quiet",
    ]
    .map(String::from)
    .to_vec();
    let output = cacherate(&args, root.path());
    let verdict = common::verdicts::read(&out);
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::PASS),
        "{}\n{}",
        verdict["overall"],
        text(&output)
    );
    for point in verdict["points"].as_array().unwrap() {
        assert_eq!(
            point["current"]["concurrency"], point["baseline"]["concurrency"],
            "{point}"
        );
    }
    for metric in ["input_throughput", "output_throughput"] {
        let verdicts: Vec<serde_json::Value> = common::verdicts::of_metric(&verdict, metric)
            .into_iter()
            .map(|p| p["verdict"].clone())
            .collect();
        assert_eq!(
            verdicts, ["improved"; 3],
            "{metric}: {}",
            verdict["overall"]
        );
    }
}
