//! `cacherate doctor` against real servers, no mocks: the simulator as a
//! process (all ok), the simulator started as vLLM starts by default
//! (without prompt-token details), a server that answers HTML, and a
//! closed port; and `run` warning of the same findings at its start. The
//! llama.cpp case is in tests/llama.rs, with its harness.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// A `cacherate sim` process on a free port, killed on drop.
struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    fn start(extra: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cacherate"))
            .args(["sim", "--listen", "127.0.0.1:0", "--time-scale", "0.01"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("sim said {line:?}"))
            .to_string();
        Sim { child, url }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn doctor(args: &[&str]) -> Output {
    let mut argv = vec!["doctor"];
    argv.extend_from_slice(args);
    common::binary::cacherate(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), &argv)
        .output()
        .unwrap()
}

/// `doctor --json` of `url`: the exit code and the document.
fn doctor_json(url: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--api-endpoint", url, "--json"];
    args.extend_from_slice(extra);
    let output = doctor(&args);
    let text = common::binary::text(&output);
    let document = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}):\n{text}"));
    (output.status.code().expect("an exit code"), document)
}

/// Each row's check name and status, in order.
fn statuses(document: &Value) -> Vec<(String, String)> {
    document["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["check"].as_str().unwrap().to_string(),
                row["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn row<'a>(document: &'a Value, check: &str) -> &'a Value {
    document["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["check"] == check)
        .unwrap_or_else(|| panic!("no {check} row in {document:#}"))
}

const ALL_CHECKS: [&str; 10] = [
    "models",
    "model",
    "server",
    "max_model_len",
    "tokenizer",
    "token_prompts",
    "stream_usage",
    "cached_tokens",
    "metrics",
    "flush",
];

#[test]
fn the_simulator_has_everything_a_sweep_needs() {
    let sim = Sim::start(&[]);
    let (code, document) = doctor_json(&sim.url, &[]);
    let expected: Vec<(String, String)> = ALL_CHECKS
        .iter()
        .map(|check| (check.to_string(), "ok".to_string()))
        .collect();
    assert_eq!(statuses(&document), expected, "{document:#}");
    assert_eq!(code, 0, "{document:#}");
    assert_eq!(document["schema_version"], 1);
    assert_eq!(document["sweep_can_run"], true);
    assert_eq!(document["server"], "cacherate-sim");
    assert_eq!(document["model"], "cacherate-sim");
    assert!(
        row(&document, "max_model_len")["seen"]
            .as_str()
            .unwrap()
            .starts_with("32768 tokens"),
        "{document:#}"
    );
    // 256 prompt tokens in blocks of 16: the second send finds 15 blocks
    // cached (the last is recomputed to produce the first token).
    let cached = row(&document, "cached_tokens")["seen"].as_str().unwrap();
    assert!(cached.contains("240 of 256"), "{cached}");
    let metrics = row(&document, "metrics")["seen"].as_str().unwrap();
    assert!(
        metrics.contains("vllm:prefix_cache_queries_total"),
        "{metrics}"
    );
    assert!(
        document["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row.get("fix").is_none()),
        "no fix for an ok row: {document:#}"
    );

    // The table says the same, for people.
    let output = doctor(&["--api-endpoint", &sim.url]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{table}");
    assert!(table.contains("cached_tokens  ok"), "{table}");
    assert!(table.trim_end().ends_with("a sweep can run"), "{table}");
}

/// A loopback port nothing listens on now (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn with_serve_it_starts_the_server_examines_it_and_stops_it() {
    let port = free_port();
    let serve = format!(
        "exec '{}' sim --listen {{host}}:{{port}} --time-scale 0.01 --no-prompt-tokens-details",
        env!("CARGO_BIN_EXE_cacherate")
    );
    let url = format!("http://127.0.0.1:{port}");
    let (code, document) = doctor_json(&url, &["--serve", &serve]);
    // The simulator it started, as started: without prompt-token details.
    assert_eq!(code, 0, "{document:#}");
    assert_eq!(row(&document, "models")["status"], "ok", "{document:#}");
    assert_eq!(row(&document, "cached_tokens")["status"], "missing");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server doctor started still listens"
    );

    // A command that exits at once: unreachable, with its status and log.
    let output = doctor(&[
        "--api-endpoint",
        &url,
        "--serve",
        "echo no GPU here >&2; exit 7",
        "--serve-timeout",
        "5",
    ]);
    let text = common::binary::text(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(
        text.contains("exited before it answered") && text.contains("no GPU here"),
        "{text}"
    );
    // Neither an endpoint nor a command: a usage error.
    assert_eq!(doctor(&["--json"]).status.code(), Some(2));
}

#[test]
fn a_simulator_without_prompt_token_details_is_missing_cached_tokens_and_names_the_vllm_flag() {
    let sim = Sim::start(&["--no-prompt-tokens-details"]);
    let (code, document) = doctor_json(&sim.url, &[]);
    let cached = row(&document, "cached_tokens");
    assert_eq!(cached["status"], "missing", "{document:#}");
    assert_eq!(cached["blocks_sweep"], false);
    let fix = cached["fix"].as_str().unwrap();
    assert!(fix.contains("--enable-prompt-tokens-details"), "{fix}");
    // Everything else is as before: a sweep runs, without knowing the
    // cache-hit rate it achieved.
    for (check, status) in statuses(&document) {
        if check != "cached_tokens" {
            assert_eq!(status, "ok", "{check}: {document:#}");
        }
    }
    assert_eq!(code, 0, "{document:#}");
    assert_eq!(document["sweep_can_run"], true);

    let output = doctor(&["--api-endpoint", &sim.url]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("cached_tokens  missing"), "{table}");
    assert!(
        table.contains("fix: the simulator was started with --no-prompt-tokens-details"),
        "{table}"
    );
    assert!(
        table.contains("a sweep can run (not as well without: cached_tokens)"),
        "{table}"
    );
}

#[test]
fn a_simulator_that_refuses_token_ids_cannot_be_swept_and_is_still_examined_with_text() {
    let sim = Sim::start(&["--reject-token-prompts"]);
    let (code, document) = doctor_json(&sim.url, &[]);
    assert_eq!(code, 3, "{document:#}");
    assert_eq!(document["sweep_can_run"], false);
    let tokens = row(&document, "token_prompts");
    assert_eq!(tokens["status"], "wrong");
    assert_eq!(tokens["blocks_sweep"], true);
    assert!(
        tokens["fix"]
            .as_str()
            .unwrap()
            .contains("--prompt-mode text"),
        "{tokens:#}"
    );
    // The rest was asked of a text prompt.
    assert_eq!(row(&document, "stream_usage")["status"], "ok");
    assert_eq!(row(&document, "cached_tokens")["status"], "ok");
}

#[test]
fn a_model_the_server_does_not_serve_is_wrong() {
    let sim = Sim::start(&[]);
    let (code, document) = doctor_json(&sim.url, &["--model", "no-such-model"]);
    assert_eq!(code, 3, "{document:#}");
    assert_eq!(
        statuses(&document),
        [
            ("models".to_string(), "ok".to_string()),
            ("model".to_string(), "wrong".to_string())
        ]
    );
}

/// A server that answers every request with a 200 HTML page, as a UI or a
/// login proxy in front of the real server does. Serves until the test
/// process ends.
fn html_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = [0u8; 8192];
                let _ = stream.read(&mut request);
                let body = "<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
}

#[test]
fn a_server_that_answers_html_cannot_be_swept() {
    let url = html_server();
    let (code, document) = doctor_json(&url, &[]);
    assert_eq!(code, 3, "{document:#}");
    assert_eq!(
        statuses(&document),
        [("models".to_string(), "wrong".to_string())]
    );
    let seen = row(&document, "models")["seen"].as_str().unwrap();
    assert!(seen.contains("an HTML page, not JSON"), "{seen}");
    assert!(seen.contains("<!DOCTYPE html>"), "{seen}");
}

#[test]
fn a_closed_port_is_unreachable() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let output = doctor(&["--api-endpoint", &url]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{table}");
    assert!(table.contains("models  wrong    unreachable"), "{table}");
    assert!(
        table.contains("a sweep cannot run: fix models first"),
        "{table}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let output = doctor(&[]);
    assert_eq!(output.status.code(), Some(2), "no --api-endpoint");
    let output = doctor(&["--api-endpoint", "localhost:8000"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        common::binary::text(&output)
    );
}

/// A one-point `cacherate run` against `url`, with `extra` options.
fn tiny_run(url: &str, dir: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--api-endpoint",
        url,
        "--output-dir",
        dir.to_str().unwrap(),
        "--context-sizes",
        "256",
        "--working-set-size",
        "256",
        "--cache-hit-rates",
        "0",
        "--output-tokens",
        "4",
        "--chunk-size",
        "64",
        "--max-ttft",
        "5",
        "--ramp-duration",
        "0.3",
        "--test-duration",
        "0.6",
        "--num-retries",
        "1",
        "--start-concurrency",
        "1",
        "--max-concurrency",
        "1",
        "--skip-graphs",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    common::binary::cacherate(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), &args)
        .output()
        .unwrap()
}

#[test]
fn a_text_run_is_not_warned_of_token_ids_it_does_not_send() {
    let sim = Sim::start(&["--reject-token-prompts"]);
    let dir = tempfile::tempdir().unwrap();
    let output = tiny_run(&sim.url, dir.path(), &["--prompt-mode", "text"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        common::binary::text(&output)
    );
    assert!(
        !stderr.contains("warning: doctor: "),
        "a text run needs no token ids:\n{stderr}"
    );
    assert_eq!(
        common::run_json(dir.path())["server_reports_cached_tokens"],
        true
    );
    // The same server, with token ids asked for (auto falls back to text):
    // the doctor's row says what is wrong.
    let dir = tempfile::tempdir().unwrap();
    let output = tiny_run(&sim.url, dir.path(), &["--prompt-mode", "auto"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: doctor: token_prompts wrong: a prompt of token ids was refused"),
        "{stderr}"
    );
}

#[test]
fn run_warns_at_start_of_what_doctor_finds_missing() {
    let sim = Sim::start(&["--no-prompt-tokens-details"]);
    let dir = tempfile::tempdir().unwrap();
    let output = tiny_run(&sim.url, dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        common::binary::text(&output)
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("warning: doctor: "))
        .collect();
    assert_eq!(warnings.len(), 1, "only the row that is not ok:\n{stderr}");
    assert!(
        warnings[0].starts_with("warning: doctor: cached_tokens missing: "),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("--enable-prompt-tokens-details"),
        "{}",
        warnings[0]
    );
    // And the run knows it: run.json says so.
    let run = common::run_json(dir.path());
    assert_eq!(run["server_reports_cached_tokens"], false, "{run:#}");
}

#[test]
fn help_says_which_checks_are_required_and_the_exit_codes() {
    let output = doctor(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{help}");
    for needle in [
        "Required for a sweep: models, model, tokenizer, token_prompts, stream_usage",
        "0   a sweep can run",
        "2   usage error",
        "3   a sweep cannot run",
    ] {
        assert!(help.contains(needle), "{needle:?} not in:\n{help}");
    }
}
