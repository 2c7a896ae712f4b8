//! End to end against a real server: llama.cpp's llama-server with
//! SmolLM2-135M on the CPU, built and cached by scripts/llama-server.sh
//! (the first build takes several minutes; later runs reuse it). Its prefix
//! cache is real, so what cacherate measures must show it.
//!
//! Set CACHERATE_SKIP_LLAMA=1 to leave these out while iterating locally:
//! they are then reported as ignored (not as passed), and
//! `cargo test --test llama -- --include-ignored` runs them all the same.
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
const TESTS: [(&str, fn()); 2] = [
    (
        "a_quick_sweep_of_llama_cpp_sees_its_prefix_cache",
        a_quick_sweep_of_llama_cpp_sees_its_prefix_cache,
    ),
    (
        "a_working_set_larger_than_llama_cpp_can_hold_is_flagged",
        a_working_set_larger_than_llama_cpp_can_hold_is_flagged,
    ),
];

/// Set to anything but empty or `0`, the tests are ignored.
const SKIP: &str = "CACHERATE_SKIP_LLAMA";

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // The tests share two CPU cores with the server: one at a time.
    args.test_threads = Some(1);
    let skip = std::env::var(SKIP).is_ok_and(|value| !value.is_empty() && value != "0");
    let forced = args.include_ignored || args.ignored;
    if skip && !forced && !args.list {
        eprintln!(
            "{SKIP} is set: the llama.cpp end-to-end tests are ignored; unset it, or pass \
             -- --include-ignored, to run them"
        );
    }
    let trials = TESTS
        .iter()
        .map(|&(name, test)| {
            Trial::test(name, move || {
                test();
                Ok(())
            })
            .with_ignored_flag(skip)
        })
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
