//! The verdict's options and exit codes through the binary, and where
//! options come from: `--fail-on-inconclusive` (exit 4) on `compare` and
//! `gate`, `--gate-metrics`, each also from the environment; and the
//! precedence command line > `CACHERATE_*` > profile > defaults.
//!
//! One run of the embedded simulator (scaled time) is the evidence of every
//! comparison here; its baseline is made of that same run, then its
//! samples are scaled, so a comparison's effect is the scale factor
//! exactly, whatever the machine's speed: × 1.06 is beyond the 5 %
//! tolerance and, with the 2 % run-noise floor, not significant
//! (inconclusive); × 3 is a regression beyond doubt.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::binary::{self, copy_dir, read_json, text};
use serde_json::Value;

/// The sweep, in a profile: two points, short phases, fast simulated time.
const PROFILE: &str = r#"
[profile.tiny]
context-sizes = [512]
working-set-size = 2048
cache-hit-rates = [0, 100]
output-tokens = 4
max-ttft = 9.0
max-error-rate = 0.05
ramp-duration = 0.3
sample-duration = 0.4
num-retries = 3
init-concurrency = 4
reinit-strategy = "per_cache_rate"
sim-time-scale = 0.05
seed = 7
skip-graphs = true
"#;

struct Setup {
    root: tempfile::TempDir,
    run: PathBuf,
    baseline: PathBuf,
}

fn cacherate(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    binary::cacherate(cwd, args)
        .envs(env.iter().copied())
        .output()
        .expect("cacherate runs")
}

/// The run (profile `tiny`, output tokens and the TTFT limit also from the
/// environment and the command line) and a baseline made of it.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cacherate.toml"), PROFILE).unwrap();
        let run = root.path().join("run");
        let output = cacherate(
            root.path(),
            &[
                "run",
                "--profile",
                "tiny",
                "--mode",
                "fixed",
                "--fixed-concurrency-levels",
                "4",
                "--output-tokens",
                "8",
                "--quiet",
                "--output-dir",
                run.to_str().unwrap(),
            ],
            &[
                ("CACHERATE_OUTPUT_TOKENS", "6"),
                ("CACHERATE_MAX_TTFT", "5"),
            ],
        );
        assert!(output.status.success(), "{}", text(&output));
        let output = cacherate(
            root.path(),
            &[
                "baseline",
                "refresh",
                "same",
                "--from-run",
                run.to_str().unwrap(),
                "--baselines-dir",
                "baselines",
            ],
            &[],
        );
        assert!(output.status.success(), "{}", text(&output));
        let baseline = root.path().join("baselines/same.json");
        Setup {
            root,
            run,
            baseline,
        }
    })
}

/// A copy of the baseline with every input tok/s sample × `factor`.
fn scaled_baseline(name: &str, factor: f64) -> PathBuf {
    let setup = setup();
    let mut baseline = read_json(&setup.baseline);
    for point in baseline["points"].as_array_mut().unwrap() {
        for run in point["runs"].as_array_mut().unwrap() {
            for sample in run["samples"].as_array_mut().unwrap() {
                let value = sample["input_tps"].as_f64().unwrap();
                sample["input_tps"] = (value * factor).into();
            }
        }
        let mean = point["input_tps"].as_f64().unwrap();
        point["input_tps"] = (mean * factor).into();
    }
    let path = setup.root.path().join(format!("baselines/{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&baseline).unwrap()).unwrap();
    path
}

/// `cacherate compare` of (a copy of, since tests run in parallel and
/// `compare` writes into it) the run against `baseline`; its exit code and
/// `verdict.json`.
fn compare(baseline: &Path, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let setup = setup();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&setup.run, copy.path());
    let mut args = vec![
        "compare",
        copy.path().to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = cacherate(setup.root.path(), &args, env);
    let code = output.status.code().expect("an exit code");
    assert!(matches!(code, 0 | 1 | 4), "{}", text(&output));
    (code, read_json(&copy.path().join("compare/verdict.json")))
}

fn names(verdict: &Value, list: &str) -> Vec<String> {
    verdict["overall"][list]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_command_line_beats_the_environment_beats_a_profile_beats_the_defaults() {
    let setup = setup();
    let progress = read_json(&setup.run.join("progress.json"));
    let workload = &progress["workload"];
    assert_eq!(
        workload["output_tokens"], 8,
        "command line over environment"
    );
    assert_eq!(workload["max_ttft"], 5.0, "environment over profile");
    assert_eq!(workload["max_error_rate"], 0.05, "profile over defaults");
    assert_eq!(workload["warmup_fraction"], 0.2, "the defaults");
    let run = &cacherate::baseline::load_run(&setup.run).unwrap();
    assert!(run.points.iter().all(|p| p.samples.len() == 3));

    // The same layers for a value that is refused: the message names the
    // one that won.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cacherate.toml"),
        "[profile.small]\ncontext-sizes = [512]\nworking-set-size = 100\n",
    )
    .unwrap();
    let refused = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["run", "--profile", "small"];
        all.extend_from_slice(args);
        let output = cacherate(dir.path(), &all, env);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let env = [("CACHERATE_WORKING_SET_SIZE", "200")];
    assert!(refused(&[], &[]).contains("--working-set-size (100) is smaller"));
    assert!(refused(&[], &env).contains("--working-set-size (200) is smaller"));
    assert!(
        refused(&["--working-set-size", "300"], &env)
            .contains("--working-set-size (300) is smaller")
    );
}

#[test]
fn an_inconclusive_comparison_exits_4_only_with_fail_on_inconclusive() {
    let baseline = scaled_baseline("six-percent", 1.06);
    let (code, verdict) = compare(&baseline, &[], &[]);
    assert_eq!(
        verdict["overall"]["verdict"], "inconclusive",
        "{}",
        verdict["overall"]
    );
    assert_eq!(code, 0, "inconclusive passes by default");
    let inconclusive = names(&verdict, "inconclusive");
    for point in ["ctx512/cache0", "ctx512/cache100"] {
        assert!(
            inconclusive.contains(&format!("{point}/input_throughput")),
            "{inconclusive:?}"
        );
    }
    assert!(names(&verdict, "regressed").is_empty());

    let (code, verdict) = compare(&baseline, &["--fail-on-inconclusive"], &[]);
    assert_eq!(code, cacherate::exit::INCONCLUSIVE);
    assert_eq!(verdict["overall"]["verdict"], "inconclusive");
    let (code, _) = compare(
        &baseline,
        &[],
        &[("CACHERATE_FAIL_ON_INCONCLUSIVE", "true")],
    );
    assert_eq!(
        code,
        cacherate::exit::INCONCLUSIVE,
        "from the environment too"
    );
    // Only gated metrics make a verdict inconclusive.
    let (code, verdict) = compare(
        &baseline,
        &[
            "--fail-on-inconclusive",
            "--gate-metrics",
            "ttft_p50,ttft_p95",
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(
        verdict["overall"]["verdict"], "pass",
        "{}",
        verdict["overall"]
    );
}

#[test]
fn only_the_gate_metrics_fail_a_comparison() {
    let baseline = scaled_baseline("three-times", 3.0);
    let (code, verdict) = compare(&baseline, &[], &[]);
    assert_eq!(code, cacherate::exit::REGRESSION);
    assert_eq!(verdict["overall"]["verdict"], "regressed");
    assert!(
        names(&verdict, "regressed").contains(&"ctx512/curve/input_throughput".to_string()),
        "{:?}",
        names(&verdict, "regressed")
    );

    let others = "output_throughput,ttft_p50,ttft_p95";
    let (code, verdict) = compare(&baseline, &["--gate-metrics", others], &[]);
    assert_eq!(code, 0, "{}", verdict["overall"]);
    assert_eq!(verdict["overall"]["verdict"], "pass");
    assert_eq!(
        verdict["gated_metrics"],
        serde_json::json!(["output_throughput", "ttft_p50", "ttft_p95"])
    );
    // The regression is still judged and shown, only not gated.
    let input = verdict["curves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["verdict"]["metric"] == "input_throughput")
        .unwrap();
    assert_eq!(input["gated"], false);
    assert_eq!(input["verdict"]["points"][0]["verdict"], "regressed");

    // From the environment, and the command line over it.
    let env = [("CACHERATE_GATE_METRICS", "input_throughput")];
    let (code, _) = compare(&baseline, &[], &env);
    assert_eq!(code, cacherate::exit::REGRESSION);
    let (code, verdict) = compare(&baseline, &["--gate-metrics", "ttft_p50"], &env);
    assert_eq!(code, 0);
    assert_eq!(verdict["gated_metrics"], serde_json::json!(["ttft_p50"]));
}

#[test]
fn an_inconclusive_gate_exits_4_with_fail_on_inconclusive() {
    // The baseline a hundred times faster than anything this machine
    // measures, and a run-noise floor of 10 (log units): the drop (−99 %,
    // a log ratio of −4.6 give or take what a busy machine changes) is far
    // beyond the 5 % tolerance and, with a standard error of about 14, far
    // from significant: inconclusive however fast or busy the machine is.
    let setup = setup();
    let baseline = scaled_baseline("hundred-times", 100.0);
    let out = setup.root.path().join("gate");
    let gate = |extra: &[&str]| {
        let mut args = vec![
            "gate",
            "--profile",
            "tiny",
            "--output-tokens",
            "8",
            "--quiet",
            "--baseline",
            baseline.to_str().unwrap(),
            "--output-dir",
            out.to_str().unwrap(),
            "--run-noise-floor",
            "10",
            "--gate-metrics",
            "input_throughput",
            "--max-extra-samples",
            "0",
        ];
        args.extend_from_slice(extra);
        let output = cacherate(setup.root.path(), &args, &[]);
        let verdict = read_json(&out.join("compare/verdict.json"));
        (output, verdict)
    };
    let (output, verdict) = gate(&["--fail-on-inconclusive"]);
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::INCONCLUSIVE),
        "{}",
        text(&output)
    );
    assert_eq!(verdict["overall"]["verdict"], "inconclusive");
    assert!(
        names(&verdict, "inconclusive").contains(&"ctx512/curve/input_throughput".to_string()),
        "{}",
        verdict["overall"]
    );
    // The gate measured at the baseline's loads.
    let measured = cacherate::baseline::load_run(&out).unwrap();
    assert!(measured.points.iter().all(|p| p.peak_concurrency == 4));
    // Where its time went: the parts, each from the run's own records, fit
    // in the wall time with nothing counted twice (other_s, the rest, is
    // not negative).
    let time = &verdict["time"];
    let seconds = |key: &str| {
        time[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {time}"))
    };
    let (samples_csv, warmups_csv) = phase_seconds(&out);
    assert!(
        (seconds("sample_phases_s") - samples_csv).abs() < 1e-6,
        "{time}"
    );
    assert!(
        (seconds("warmup_phases_s") - warmups_csv).abs() < 1e-6,
        "{time}"
    );
    assert!(samples_csv > 0.0 && warmups_csv > 0.0);
    assert!(seconds("working_set_warmup_s") > 0.0, "{time}");
    assert_eq!(
        seconds("search_phases_s"),
        0.0,
        "a fixed-load gate searches no peak"
    );
    assert_eq!(seconds("server_start_s"), 0.0, "no --serve");
    assert!(seconds("other_s") >= 0.0, "the parts overlap: {time}");
    for (point, taken) in measured
        .points
        .iter()
        .zip(time["points"].as_array().unwrap())
    {
        assert_eq!(taken["samples"], point.samples.len(), "{taken}");
        assert_eq!(taken["stopped_because"], "planned", "--max-extra-samples 0");
    }
    assert!(text(&output).contains("time "), "{}", text(&output));
    let comment = std::fs::read_to_string(out.join("compare/comment.md")).unwrap();
    assert!(comment.contains("Samples per point: ctx"), "{comment}");
    // The same command without the flag resumes the finished run, judges
    // it again and passes.
    let (output, verdict) = gate(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(verdict["overall"]["verdict"], "inconclusive");
    // It measured nothing, and its time says so.
    assert_eq!(
        verdict["time"]["sample_phases_s"], 0.0,
        "{}",
        verdict["time"]
    );
    assert_eq!(verdict["time"]["working_set_warmup_s"], 0.0);
}

/// Seconds of the sample phases and of the warm-up phases of the run in
/// `dir`, summed from its `phase_metadata_*.csv` files.
fn phase_seconds(dir: &Path) -> (f64, f64) {
    let (mut samples, mut warmups) = (0.0, 0.0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("phase_metadata_") {
            continue;
        }
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let header = reader.headers().unwrap().clone();
        let column = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (kind, start, end) = (
            column("phase_type"),
            column("start_unix_s"),
            column("end_unix_s"),
        );
        for row in reader.records() {
            let row = row.unwrap();
            let length = row[end].parse::<f64>().unwrap() - row[start].parse::<f64>().unwrap();
            match &row[kind] {
                "FIXED" => samples += length,
                "FIXED_WARMUP" => warmups += length,
                other => panic!("a {other} phase in a fixed-load gate"),
            }
        }
    }
    (samples, warmups)
}
