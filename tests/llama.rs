//! End to end against a real server: llama.cpp's llama-server with
//! SmolLM2-135M on the CPU, built and cached by scripts/llama-server.sh
//! (the first build takes several minutes; later runs reuse it). Its prefix
//! cache is real, so what cacherate measures must show it.
//!
//! Set CACHERATE_SKIP_LLAMA=1 to leave these out while iterating locally:
//! they are then reported as ignored (not as passed), and
//! `cargo test --test llama -- --include-ignored` runs them all the same.
//! Under CI (`CI=true`) they always run.
//!
//! Whether to skip is known only when the tests run, and the built-in test
//! harness can mark a test ignored only when it is compiled; so this file
//! has its own harness (`harness = false` in Cargo.toml) built on
//! libtest-mimic, which takes the same arguments and prints the same lines
//! and counts as the built-in one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use libtest_mimic::{Arguments, Trial};

/// The tests, by name.
const TESTS: [(&str, fn()); 3] = [
    (
        "a_quick_sweep_of_llama_cpp_sees_its_prefix_cache",
        a_quick_sweep_of_llama_cpp_sees_its_prefix_cache,
    ),
    (
        "a_working_set_larger_than_llama_cpp_can_hold_is_flagged",
        a_working_set_larger_than_llama_cpp_can_hold_is_flagged,
    ),
    (
        "a_gate_on_llama_cpp_passes_the_same_server_and_fails_one_without_its_prompt_cache",
        a_gate_on_llama_cpp_passes_the_same_server_and_fails_one_without_its_prompt_cache,
    ),
];

/// Set to anything but empty or `0`, the tests are ignored.
const SKIP: &str = "CACHERATE_SKIP_LLAMA";

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // The tests share two CPU cores with the server: one at a time.
    args.test_threads = Some(1);
    let asked = std::env::var(SKIP).is_ok_and(|value| !value.is_empty() && value != "0");
    let ci = common::harness::under_ci();
    let skip = asked && !ci;
    let forced = args.include_ignored || args.ignored;
    if asked && ci && !args.list {
        eprintln!("{SKIP} is set, but under CI (CI=true) the llama.cpp end-to-end tests run");
    } else if skip && !forced && !args.list {
        eprintln!(
            "{SKIP} is set: the llama.cpp end-to-end tests are ignored; unset it, or pass \
             -- --include-ignored, to run them"
        );
    }
    let trials = TESTS
        .iter()
        .map(|&(name, test)| Trial::test(name, common::harness::body(test)).with_ignored_flag(skip))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/llama-server.sh")
}

/// A llama-server started by the script, stopped on drop.
struct LlamaServer {
    url: String,
    pid: String,
}

impl LlamaServer {
    fn start(extra: &[&str]) -> LlamaServer {
        let output = Command::new("bash")
            .arg(script())
            .arg("start")
            .args(extra)
            .output()
            .expect("run scripts/llama-server.sh");
        assert!(
            output.status.success(),
            "scripts/llama-server.sh start failed (it builds llama-server on first use: see \
             the README); {SKIP}=1 leaves these tests out, reported as ignored:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {stdout}"))
                .to_string()
        };
        LlamaServer {
            url: field("url"),
            pid: field("pid"),
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &self.pid])
            .output();
    }
}

fn sweep(url: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cacherate"));
    command.args([
        "run",
        "--api-endpoint",
        url,
        "--output-dir",
        dir.to_str().unwrap(),
        "--context-sizes",
        "512",
        "--output-tokens",
        "4",
        "--chunk-size",
        "64",
        "--max-ttft",
        "30",
        "--ramp-duration",
        "2",
        "--test-duration",
        "4",
        "--num-retries",
        "1",
        "--start-concurrency",
        "1",
        "--concurrency-increment",
        "1",
        "--max-concurrency",
        "2",
        "--init-concurrency",
        "2",
        "--request-timeout",
        "120",
        "--seed",
        "11",
    ]);
    command.args(extra);
    command.output().unwrap()
}

fn a_quick_sweep_of_llama_cpp_sees_its_prefix_cache() {
    let slots = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&["--slot-save-path", slots.path().to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let output = sweep(
        &server.url,
        dir.path(),
        &[
            // Four prompts for four slots: the working set fits.
            "--working-set-size",
            "2048",
            "--cache-hit-rates",
            "0",
            "50",
            "100",
            "--reinit-strategy",
            "per_cache_rate",
            "--flush-cache",
            "auto",
            "--metrics-url",
            "auto",
            "--max-cache-rate-gap",
            "3",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // The sweep's table, for the log (this harness does not capture).
    println!("{}", String::from_utf8_lossy(&output.stdout));

    let points = common::results(dir.path());
    assert_eq!(points.len(), 3);
    for point in &points {
        assert_eq!(point.failed_requests, 0, "{point:?}");
        assert!(
            !point.cache_rate_missed,
            "at {}%: achieved {:?}, target {}",
            point.cache_hit_rate, point.achieved_cache_rate, point.target_cache_rate
        );
    }
    // The server's own counters agree: nothing hit at 0 %, almost all at
    // 100 %.
    let server_rates: Vec<Option<f64>> = points.iter().map(|p| p.server_cache_rate).collect();
    assert!(
        server_rates[0].is_some_and(|r| r < 0.05),
        "{server_rates:?}"
    );
    assert!(
        server_rates[2].is_some_and(|r| (0.95..=1.0).contains(&r)),
        "{server_rates:?}"
    );
    let (cold, warm) = (&points[0], &points[2]);
    assert!(
        warm.ttft.p50 * 3.0 < cold.ttft.p50,
        "TTFT p50 at 100% ({}) should be well below 0% ({})",
        warm.ttft.p50,
        cold.ttft.p50
    );
    let rows = common::records(dir.path(), 512);
    assert!(rows.iter().all(|r| r.ok()), "no failed request");
    assert!(
        rows.iter().all(|r| r.prompt_tokens == Some(512)),
        "token ids sent as is"
    );
    common::assert_run_dir_complete(dir.path(), 512);
    let run = common::run_json(dir.path());
    assert_eq!(run["server"]["kind"], "llama.cpp");
    assert_eq!(run["flush_cache"], "llama.cpp slot erase (4 slots)");
    assert!(run["tokenizer"].as_str().unwrap().contains("/tokenize"));
}

fn a_working_set_larger_than_llama_cpp_can_hold_is_flagged() {
    // Four slots and no host-memory prompt cache; sixteen prompts.
    let server = LlamaServer::start(&["--cache-ram", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let output = sweep(
        &server.url,
        dir.path(),
        &[
            "--working-set-size",
            "8192",
            "--cache-hit-rates",
            "100",
            "--num-retries",
            "0",
            "--max-cache-rate-gap",
            "3",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("does not stay in the server's prefix cache"),
        "{stderr}"
    );
    let point = &common::results(dir.path())[0];
    assert!(point.cache_rate_missed);
    assert!(point.achieved_cache_rate.unwrap() < 0.5, "{point:?}");
}

/// `cacherate ARGS…` with the gate's workload against `url`: eight
/// 512-token prompts (more than the server's four slots) at 0 and 100 %,
/// three 4-second samples a point. A CPU server that shares two cores with
/// the test runner is noisier than a GPU server, so the tolerances are
/// wide; the change under test costs far more than they allow.
fn cacherate(args: &[&str], url: &str, out: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cacherate"));
    command.args(args);
    command.args([
        "--api-endpoint",
        url,
        "--output-dir",
        out.to_str().unwrap(),
        "--context-sizes",
        "512",
        "--working-set-size",
        "4096",
        "--cache-hit-rates",
        "0",
        "100",
        "--output-tokens",
        "4",
        "--chunk-size",
        "64",
        "--max-ttft",
        "30",
        "--ramp-duration",
        "2",
        "--test-duration",
        "4",
        "--sample-duration",
        "4",
        "--num-retries",
        "3",
        "--start-concurrency",
        "1",
        "--concurrency-increment",
        "1",
        "--max-concurrency",
        "2",
        "--init-concurrency",
        "2",
        "--reinit-strategy",
        "per_cache_rate",
        "--request-timeout",
        "120",
        "--quiet",
    ]);
    if args[0] == "gate" {
        command.args([
            "--tolerance-throughput",
            "0.3",
            "--tolerance-ttft-p50",
            "0.3",
            "--tolerance-ttft-p95",
            "0.5",
            "--max-extra-samples",
            "0",
        ]);
    }
    command.output().unwrap()
}

fn verdict_of(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("compare/verdict.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The verdicts of one point, by metric.
fn point_verdicts(verdict: &serde_json::Value, point: &str) -> Vec<(String, String)> {
    verdict["curves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|curve| {
            let metric = curve["verdict"]["metric"].as_str().unwrap().to_string();
            curve["verdict"]["points"]
                .as_array()
                .unwrap()
                .iter()
                .filter(move |p| p["point"] == point)
                .map(move |p| (metric.clone(), p["verdict"].as_str().unwrap().to_string()))
        })
        .collect()
}

fn a_gate_on_llama_cpp_passes_the_same_server_and_fails_one_without_its_prompt_cache() {
    let root = tempfile::tempdir().unwrap();
    let baselines = root.path().join("baselines");
    let baseline = baselines.join("llama.json");
    {
        let server = LlamaServer::start(&[]);
        let output = cacherate(
            &[
                "baseline",
                "refresh",
                "llama",
                "--runs",
                "2",
                "--baselines-dir",
                baselines.to_str().unwrap(),
                // One request at a time: the least noise a CPU server has.
                "--mode",
                "fixed",
                "--fixed-concurrency-levels",
                "1",
            ],
            &server.url,
            &root.path().join("runs"),
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // A/A: the same configuration, measured again at the baseline's
        // loads, does not regress.
        let out = root.path().join("gate-same");
        let output = cacherate(
            &["gate", "--baseline", baseline.to_str().unwrap()],
            &server.url,
            &out,
        );
        println!("{}", String::from_utf8_lossy(&output.stdout));
        let verdict = verdict_of(&out);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}\n{}",
            verdict["overall"],
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            verdict["overall"]["regressed"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    // The change under test: no host-memory prompt cache. Eight prompts
    // no longer fit the four slots, so what should hit at 100 % is
    // computed again; at 0 % nothing hits either way.
    let server = LlamaServer::start(&["--cache-ram", "0"]);
    let out = root.path().join("gate-no-cache-ram");
    let output = cacherate(
        &["gate", "--baseline", baseline.to_str().unwrap()],
        &server.url,
        &out,
    );
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(
        output.status.code(),
        Some(cacherate::exit::REGRESSION),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdict = verdict_of(&out);
    let warm = point_verdicts(&verdict, "ctx512/cache100");
    assert!(
        warm.iter()
            .any(|(metric, v)| metric == "input_throughput" && (v == "regressed" || v == "error")),
        "{warm:?}"
    );
    // Nothing fails at 0 %: no prompt cache is involved there (the CPU's
    // noise may leave a wide interval inconclusive, which passes a gate).
    let cold = point_verdicts(&verdict, "ctx512/cache0");
    assert!(
        cold.iter().all(|(_, v)| v != "regressed" && v != "error"),
        "the 0 % point does not depend on the prompt cache: {cold:?}"
    );
}
