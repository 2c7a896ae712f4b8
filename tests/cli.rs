//! The binary as a user meets it: help, exit codes, error messages.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

fn cacherate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .args(args)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The long option names a `--help` text declares: the `--name` tokens of
/// its option lines (`  -v, --verbose`, `      --seed <SEED>`), whole, and
/// not the options its descriptions mention (indented further).
fn declared_options(help: &str) -> BTreeSet<String> {
    let mut options = BTreeSet::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent > 6 || !line.trim_start().starts_with('-') {
            continue;
        }
        for token in line.split_whitespace() {
            let token = token.trim_end_matches(',');
            if let Some(name) = token.strip_prefix("--") {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                options.insert(format!("--{name}"));
            } else if !token.starts_with(['-', '<', '[']) {
                // The description on the same line.
                break;
            }
        }
    }
    options
}

#[test]
fn option_names_are_matched_whole() {
    let help = "Options:\n  -v, --verbose...\n          Say more; see --quiet\n      \
                --no-strict-time-window\n          The opposite\n      --seed <SEED>  A seed\n";
    let declared = declared_options(help);
    assert_eq!(
        declared,
        BTreeSet::from([
            "--verbose".to_string(),
            "--no-strict-time-window".to_string(),
            "--seed".to_string(),
        ])
    );
    assert!(!declared.contains("--strict-time-window"));
    assert!(!declared.contains("--quiet"), "mentioned, not declared");
}

#[test]
fn run_has_every_option_of_the_seed_tool() {
    let output = cacherate(&["run", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let declared = declared_options(&help);
    for option in [
        "--api-endpoint",
        "--context-sizes",
        "--working-set-size",
        "--output-tokens",
        "--max-ttft",
        "--ttft-metric",
        "--test-duration",
        "--ramp-duration",
        "--num-retries",
        "--start-concurrency",
        "--concurrency-increment",
        "--max-concurrency",
        "--init-concurrency",
        "--cache-hit-rates",
        "--chunk-size",
        "--reinit-strategy",
        "--random-working-set-selection",
        "--output-dir",
        "--tokenizer",
        "--seed",
        "--kv-cache-quantization",
        "--strict-time-window",
        "--skip-graphs",
        "--force-restart",
        "--verbose",
        "--model",
        "--api-key",
        "--profile",
        "--min-tokens-per-req",
        "--tokens-per-req-metric",
        "--request-timeout",
        "--mode",
        "--assessment-period",
        // Not the seed's: the server under test as a managed process.
        "--serve",
        "--serve-timeout",
    ] {
        assert!(
            declared.contains(option),
            "run --help lacks {option}; it declares {declared:?}"
        );
    }
}

#[test]
fn top_level_help_documents_the_exit_codes() {
    let output = cacherate(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for line in [
        "0   pass",
        "1   regression",
        "2   usage",
        "3   target unreachable",
        "70  internal",
    ] {
        assert!(help.contains(line), "{help}");
    }
}

#[test]
fn kv_size_prints_the_estimate() {
    let output = cacherate(&[
        "kv-size",
        "--model",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--context-sizes",
        "8000",
        "32000",
        "--working-set-size",
        "2000000",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("128.00 KiB per token"), "{text}");
    assert!(
        text.contains("context 8000 (8192 aligned): 1.00 GiB per request"),
        "{text}"
    );
    assert!(text.contains("working set of 245 prompts"), "{text}");

    let output = cacherate(&[
        "kv-size",
        "--model",
        "acme/unknown",
        "--context-sizes",
        "8000",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--num-layers"),
        "{}",
        stderr(&output)
    );
}

/// Each bad value exits 2 before anything is sent, with a message that
/// names the option and what it accepts.
#[test]
fn bad_options_are_usage_errors_that_name_the_option_and_the_range() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--cache-hit-rates", "101"],
            "--cache-hit-rates are percentages: 101 is above 100",
        ),
        (&["--cache-hit-rates", "-5"], "'-5' for '--cache-hit-rates"),
        (&["--context-sizes", "abc"], "'abc' for '--context-sizes"),
        (
            &["--context-sizes", "0"],
            "--context-sizes needs one or more sizes above 0",
        ),
        (
            &["--context-sizes", "20000000"],
            "--context-sizes 20000000 is above 10000000",
        ),
        (
            &["--working-set-size", "100"],
            "--working-set-size (100) is smaller than one context",
        ),
        (
            &["--output-tokens", "0"],
            "--output-tokens must be from 1 to 1000000",
        ),
        (
            &["--max-ttft", "-1"],
            "--max-ttft must be a number of seconds above 0, got -1",
        ),
        (
            &["--max-ttft", "nan"],
            "--max-ttft must be a number of seconds above 0",
        ),
        (
            &["--ramp-duration", "0"],
            "--ramp-duration must be a number of seconds above 0",
        ),
        (
            &["--sample-duration", "0"],
            "--sample-duration must be a number of seconds above 0",
        ),
        (
            &["--request-timeout", "0"],
            "--request-timeout must be a number of seconds above 0",
        ),
        (
            &["--max-error-rate", "2"],
            "--max-error-rate is a share between 0 and 1, got 2",
        ),
        (
            &["--warmup-fraction", "-0.1"],
            "--warmup-fraction is the share of each phase",
        ),
        (
            &["--max-cache-rate-gap", "-1"],
            "--max-cache-rate-gap is in percentage points, >= 0",
        ),
        (
            &["--min-tokens-per-req", "-5"],
            "--min-tokens-per-req must be >= 0, got -5",
        ),
        (
            &["--start-concurrency", "0"],
            "--start-concurrency must be at least 1",
        ),
        (
            &["--concurrency-increment", "0"],
            "--concurrency-increment must be at least 1",
        ),
        (
            &["--max-concurrency", "2", "--start-concurrency", "8"],
            "--max-concurrency (2) is below --start-concurrency (8)",
        ),
        (
            &["--chunk-size", "0"],
            "--chunk-size must be at least 1 token",
        ),
        (
            &["--kv-cache-quantization", "3"],
            "1 (FP8) or 2 (FP16), got 3",
        ),
        (
            &["--sim-time-scale", "0"],
            "--sim-time-scale must be above 0",
        ),
        (
            &["--mode", "fixed", "--fixed-concurrency-levels", "0"],
            "--fixed-concurrency-levels needs one or more levels above 0",
        ),
        (
            &["--api-endpoint", "ftp://x"],
            "must start with http:// or https://",
        ),
        (
            &["--api-endpoint", "localhost"],
            "write it like http://localhost:8000",
        ),
        (&["--seed", "-1"], "'-1' for '--seed"),
        (&["--chunk-times", "some"], "'some' for '--chunk-times"),
    ];
    let out = tempfile::tempdir().unwrap();
    for (extra, expected) in cases {
        let mut args = vec!["run", "--profile", "quick", "--output-dir"];
        args.push(out.path().to_str().unwrap());
        args.extend_from_slice(extra);
        let output = cacherate(&args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {message}");
        assert!(message.contains(expected), "{extra:?}: {message}");
    }
    // Nothing was started, so nothing was written.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn the_circuit_breaker_options_are_declared_and_checked() {
    let output = cacherate(&["run", "--help"]);
    let declared = declared_options(&String::from_utf8_lossy(&output.stdout));
    assert!(declared.contains("--circuit-breaker-failures"));
    assert!(declared.contains("--circuit-breaker-window"));
    let output = cacherate(&["run", "--profile", "quick", "--circuit-breaker-window", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--circuit-breaker-window must be a number of seconds above 0"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unreachable_server_exits_3_and_says_what_to_check() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let output = cacherate(&[
        "run",
        "--profile",
        "quick",
        "--api-endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--output-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is the server running"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn sim_options_out_of_range_are_usage_errors() {
    let output = cacherate(&["sim", "--cold-start-slowdown", "0.5"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--cold-start-seconds 0"),
        "{}",
        stderr(&output)
    );
    let output = cacherate(&["sim", "--run-noise", "2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--run-noise"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn sim_prints_its_address_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let mut speed = String::new();
    stdout.read_line(&mut speed).unwrap();
    let expected = cacherate::sim::SimConfig::default().run_slowdown();
    assert!(
        speed.starts_with(&format!(
            "run slowdown {expected:.4} (--run-noise 0.02, --seed 0)"
        )),
        "{speed}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "clean exit on SIGTERM");
}
