//! Prompt modes and tokenizer sources against the simulator: text and chat
//! prompts with their drift reported, the fallback from token ids to text,
//! and token counts from a local tokenizer.json or one fetched from a hub.

mod common;

use std::path::Path;
use std::process::Command;

use cacherate::sim::{SimConfig, SimServer};
use serde_json::{Value, json};

const TIME_SCALE: f64 = 0.05;
const SEED: u64 = 7;

fn args(url: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--api-endpoint",
        url,
        "--output-dir",
        dir.to_str().unwrap(),
        "--context-sizes",
        "512",
        "--working-set-size",
        "2048",
        "--cache-hit-rates",
        "50",
        "--output-tokens",
        "4",
        "--max-ttft",
        "0.5",
        "--ramp-duration",
        "0.5",
        "--test-duration",
        "1",
        "--num-retries",
        "0",
        "--start-concurrency",
        "4",
        "--max-concurrency",
        "4",
        "--init-concurrency",
        "4",
        "--seed",
        &SEED.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

async fn simulator(config: SimConfig) -> SimServer {
    common::start(SimConfig {
        time_scale: TIME_SCALE,
        ..config
    })
    .await
}

fn cacherate(args: &[String], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cacherate"));
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn tokenizer_of_run(dir: &Path) -> String {
    common::run_json(dir)["tokenizer"]
        .as_str()
        .unwrap()
        .to_string()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_prompts_reuse_exactly_the_prefix_with_no_drift() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let output = cacherate(
        &args(&server.url(), dir.path(), &["--prompt-mode", "text"]),
        &[],
    );
    server.stop().await.unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(tokenizer_of_run(dir.path()).contains("text prompts"));
    let point = common::results(dir.path())[0].clone();
    assert_eq!(
        point.prompt_token_drift,
        Some(0.0),
        "word counts add up exactly"
    );
    assert_eq!(point.achieved_cache_rate, Some(0.5));
    for row in common::records(dir.path(), 512)
        .iter()
        .filter(|r| r.phase_id != "WARMUP")
    {
        assert!(row.ok(), "{:?}", row.error);
        assert_eq!(row.prompt_tokens, Some(512));
        assert_eq!(row.cached_tokens, Some(256), "request {}", row.request_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_prompts_report_the_template_tokens_as_drift() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let output = cacherate(
        &args(&server.url(), dir.path(), &["--prompt-mode", "chat"]),
        &[],
    );
    server.stop().await.unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // The simulator's template adds <|user|>, <|end|> and <|assistant|>.
    let point = common::results(dir.path())[0].clone();
    assert_eq!(point.prompt_token_drift, Some(3.0));
    assert!(
        stderr(&output).contains("+3.0 tokens per prompt"),
        "{}",
        stderr(&output)
    );
    assert!(common::records(dir.path(), 512).iter().all(|r| r.ok()));
    assert!(tokenizer_of_run(dir.path()).contains("chat prompts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_text_when_token_ids_are_refused() {
    let server = simulator(SimConfig {
        reject_token_prompts: true,
        ..SimConfig::for_tests(TIME_SCALE)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let refused = cacherate(
        &args(&server.url(), dir.path(), &["--prompt-mode", "tokens"]),
        &[],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    let output = cacherate(
        &args(
            &server.url(),
            dir.path(),
            &["--prompt-mode", "auto", "--force-restart"],
        ),
        &[],
    );
    server.stop().await.unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("refused a token-ID prompt"),
        "{}",
        stderr(&output)
    );
    assert!(tokenizer_of_run(dir.path()).contains("text prompts"));
    assert!(common::records(dir.path(), 512).iter().all(|r| r.ok()));
}

/// A word-level tokenizer.json whose vocabulary is the run's content.
fn word_tokenizer() -> Value {
    let text = cacherate::workload::text::synthetic_text(SEED, 24_000);
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), json!(100));
    for word in text.split_whitespace() {
        let next = vocab.len() as u64 + 100;
        vocab.entry(word.to_string()).or_insert(json!(next));
    }
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_tokenizer_json_counts_the_tokens() {
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokenizer.json");
    std::fs::write(&file, word_tokenizer().to_string()).unwrap();
    let run_dir = dir.path().join("run");
    let output = cacherate(
        &args(
            &server.url(),
            &run_dir,
            &["--tokenizer", file.to_str().unwrap()],
        ),
        &[],
    );
    server.stop().await.unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        tokenizer_of_run(&run_dir).contains("the local tokenizer"),
        "{}",
        tokenizer_of_run(&run_dir)
    );
    assert_eq!(
        common::results(&run_dir)[0].clone().achieved_cache_rate,
        Some(0.5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_tokenizer_is_fetched_once_and_a_missing_hub_is_a_clear_error() {
    // A stand-in for the Hugging Face hub (no network here) that counts
    // what it serves.
    let body = word_tokenizer().to_string();
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/acme/tiny/resolve/main/tokenizer.json",
        axum::routing::get({
            let fetches = std::sync::Arc::clone(&fetches);
            move || {
                fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = body.clone();
                async move { body }
            }
        }),
    );
    let hub_task = tokio::spawn(async move { axum::serve(listener, app).await });
    let fetched = || fetches.load(std::sync::atomic::Ordering::SeqCst);
    let server = simulator(SimConfig::for_tests(TIME_SCALE)).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let env = [
        ("HF_ENDPOINT", hub.as_str()),
        ("CACHERATE_CACHE_DIR", cache.to_str().unwrap()),
    ];
    let run_dir = dir.path().join("run");
    let output = cacherate(
        &args(&server.url(), &run_dir, &["--tokenizer", "acme/tiny"]),
        &env,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(cache.join("tokenizers/acme--tiny/tokenizer.json").is_file());
    assert!(tokenizer_of_run(&run_dir).contains("Hugging Face tokenizer of acme/tiny"));
    assert_eq!(fetched(), 1, "the first run fetches the tokenizer");

    // A second run with the hub still there reads the cached file.
    let again = dir.path().join("again");
    let output = cacherate(
        &args(&server.url(), &again, &["--tokenizer", "acme/tiny"]),
        &env,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(tokenizer_of_run(&again).contains("Hugging Face tokenizer of acme/tiny"));
    assert_eq!(fetched(), 1, "the second run fetched it again");

    hub_task.abort();
    let output = cacherate(
        &args(
            &server.url(),
            &dir.path().join("other"),
            &["--tokenizer", "acme/absent"],
        ),
        &env,
    );
    server.stop().await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--tokenizer ./tokenizer.json"),
        "{}",
        stderr(&output)
    );
}
