//! Verdict quality end to end (not part of the tests): a baseline of
//! several runs, each against a fresh `cacherate sim` process with its own
//! seed (so its own run-to-run speed), then gates of the quick profile
//! against fresh simulators — A/A (same configuration) and with
//! `--slowdown` — counting how often the gate fails.
//!
//! ```sh
//! cargo bench --bench verdict_e2e -- [--aa 30] [--trials 20] \
//!     [--slowdowns 1.05,1.10,1.20] [--baseline-runs 5] [--time-scale 1] \
//!     [--out DIR] [-- EXTRA RUN OPTIONS…]
//! ```
//!
//! Every process is a real `cacherate` binary; the simulators listen on
//! loopback ports of their own. Prints one line per gate as it ends and a
//! table at the end, each rate with the two-sided 95 % Clopper–Pearson
//! interval its count allows (tens of gates bound a rate only loosely;
//! `cargo bench --bench verdict_mc` counts in thousands).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod common;
#[path = "../tests/verdict_model/mod.rs"]
mod verdict_model;

use common::Sim;

const BIN: &str = env!("CARGO_BIN_EXE_cacherate");

struct Options {
    aa: u32,
    trials: u32,
    slowdowns: Vec<f64>,
    baseline_runs: u32,
    time_scale: f64,
    out: PathBuf,
    search_peak_trials: u32,
    extra: Vec<String>,
}

fn options() -> Options {
    let mut o = Options {
        aa: 30,
        trials: 20,
        slowdowns: vec![1.05, 1.10, 1.20],
        baseline_runs: 5,
        time_scale: 1.0,
        out: std::env::temp_dir().join("cacherate-verdict-e2e"),
        search_peak_trials: 2,
        extra: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("a value after the option");
        match arg.as_str() {
            "--aa" => o.aa = value().parse().unwrap(),
            "--trials" => o.trials = value().parse().unwrap(),
            "--slowdowns" => o.slowdowns = value().split(',').map(|s| s.parse().unwrap()).collect(),
            "--baseline-runs" => o.baseline_runs = value().parse().unwrap(),
            "--time-scale" => o.time_scale = value().parse().unwrap(),
            "--out" => o.out = PathBuf::from(value()),
            "--search-peak-trials" => o.search_peak_trials = value().parse().unwrap(),
            "--" => {
                o.extra = args.by_ref().filter(|a| a != "--bench").collect();
                break;
            }
            // cargo bench passes --bench.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// A simulator with its own seed (so its own run-to-run speed).
fn sim(seed: u64, slowdown: f64, time_scale: f64) -> Sim {
    Sim::start(&[
        "--seed",
        &seed.to_string(),
        "--slowdown",
        &slowdown.to_string(),
        "--time-scale",
        &time_scale.to_string(),
    ])
}

fn cacherate(args: &[String]) -> i32 {
    let output = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run cacherate");
    let code = output.status.code().unwrap_or(-1);
    if code != 0 && code != 1 {
        eprintln!(
            "cacherate {} exited {code}:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    code
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn verdict(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("compare/verdict.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

/// Points of a gate's run with more samples than the quick profile's 3:
/// where the gate's second look measured.
fn extended_points(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap_or_default();
    let results: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    results["points"].as_array().map_or(0, |points| {
        points
            .iter()
            .filter(|p| p["samples"].as_array().is_some_and(|s| s.len() > 3))
            .count()
    })
}

#[derive(Default)]
struct Tally {
    gates: u32,
    failed: u32,
    inconclusive: u32,
    errors: u32,
    seconds: f64,
}

fn main() {
    let o = options();
    let _ = std::fs::remove_dir_all(&o.out);
    std::fs::create_dir_all(&o.out).unwrap();
    let profile = |dir: &Path| {
        let mut args = strings(&["--profile", "quick", "--quiet", "--output-dir"]);
        args.push(dir.display().to_string());
        args.extend(o.extra.iter().cloned());
        args
    };

    // The baseline: run 1 finds the peaks, the others measure there; each
    // against a fresh simulator.
    let started = Instant::now();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for k in 1..=o.baseline_runs {
        let sim = sim(1000 + u64::from(k), 1.0, o.time_scale);
        let dir = o.out.join(format!("baseline-run-{k}"));
        let mut args = strings(&["run", "--api-endpoint", &sim.url]);
        args.extend(profile(&dir));
        if k > 1 {
            args.extend(strings(&["--mode", "fixed", "--concurrency-from"]));
            args.push(dirs[0].join("results.json").display().to_string());
        }
        let t = Instant::now();
        let code = cacherate(&args);
        assert_eq!(code, 0, "baseline run {k} failed");
        println!(
            "baseline run {k}{}: {:.0} s",
            if k == 1 {
                " (the ramp)"
            } else {
                " (at run 1's loads)"
            },
            t.elapsed().as_secs_f64()
        );
        dirs.push(dir);
    }
    let mut args = strings(&["baseline", "refresh", "bench", "--baselines-dir"]);
    args.push(o.out.display().to_string());
    args.push("--from-run".into());
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    assert_eq!(cacherate(&args), 0, "baseline refresh failed");
    let baseline = o.out.join("bench.json");
    println!(
        "baseline of {} runs in {:.0} s: {}",
        o.baseline_runs,
        started.elapsed().as_secs_f64(),
        baseline.display()
    );

    let mut rows: Vec<(String, Tally)> = Vec::new();
    let mut seed = 5000u64;
    let mut cases: Vec<(f64, u32, bool)> = vec![(1.0, o.aa, false)];
    cases.extend(o.slowdowns.iter().map(|&s| (s, o.trials, false)));
    if o.search_peak_trials > 0 {
        cases.push((1.0, o.search_peak_trials, true));
    }
    for (slowdown, trials, search_peak) in cases {
        let mut tally = Tally::default();
        for i in 0..trials {
            seed += 1;
            let sim = sim(seed, slowdown, o.time_scale);
            let dir = o.out.join(format!(
                "gate-{slowdown}{}-{i}",
                if search_peak { "-search" } else { "" }
            ));
            let mut args = strings(&["gate", "--api-endpoint", &sim.url, "--baseline"]);
            args.push(baseline.display().to_string());
            args.extend(profile(&dir));
            if search_peak {
                args.push("--search-peak".into());
            }
            let t = Instant::now();
            let code = cacherate(&args);
            let seconds = t.elapsed().as_secs_f64();
            let v = verdict(&dir);
            let overall = v["overall"]["verdict"]
                .as_str()
                .unwrap_or("none")
                .to_string();
            tally.gates += 1;
            tally.failed += u32::from(code == 1);
            tally.inconclusive += u32::from(overall == "inconclusive");
            tally.errors += u32::from(code != 0 && code != 1);
            tally.seconds += seconds;
            println!(
                "slowdown {slowdown}{} trial {i}: exit {code}, {overall}, {:.0} s, extra samples at \
                 {} point(s); {}",
                if search_peak { " --search-peak" } else { "" },
                seconds,
                extended_points(&dir),
                v["overall"]["summary"].as_str().unwrap_or("")
            );
        }
        let name = if search_peak {
            format!("A/A --search-peak ({slowdown})")
        } else if slowdown == 1.0 {
            "A/A (1.00)".to_string()
        } else {
            format!("slowdown {slowdown:.2}")
        };
        rows.push((name, tally));
    }
    println!(
        "\n{:<26} {:>6} {:>30} {:>13} {:>13} {:>11}",
        "case", "gates", "failed gate (95 % interval)", "inconclusive", "other exits", "mean wall"
    );
    for (name, t) in &rows {
        let (low, high) =
            verdict_model::clopper_pearson(t.failed as usize, t.gates.max(1) as usize, 0.975);
        println!(
            "{:<26} {:>6} {:>6} ({:>3.0}%; {:>5.1}–{:>5.1}%) {:>6} ({:>3.0}%) {:>13} {:>9.0} s",
            name,
            t.gates,
            t.failed,
            100.0 * f64::from(t.failed) / f64::from(t.gates.max(1)),
            100.0 * low,
            100.0 * high,
            t.inconclusive,
            100.0 * f64::from(t.inconclusive) / f64::from(t.gates.max(1)),
            t.errors,
            t.seconds / f64::from(t.gates.max(1))
        );
    }
}
