//! Helpers shared by the integration tests: start the simulator in-process on
//! port 0, stream a request, and read the events back with their times.

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod binary;
pub mod child;
pub mod fake_github;
pub mod fault_proxy;
pub mod harness;
pub mod verdicts;

use std::path::Path;
use std::time::{Duration, Instant};

use cacherate::record::RequestRecord;
use cacherate::sim::{SimConfig, SimServer};
use cacherate::store::{PointResult, Progress, Results};
use futures_util::StreamExt;
use serde_json::Value;

pub async fn start(config: SimConfig) -> SimServer {
    SimServer::start(config).await.expect("simulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A streamed response, event by event.
#[derive(Debug)]
pub struct Streamed {
    pub status: u16,
    /// The raw body bytes as received.
    pub raw: String,
    /// Each `data:` payload with the time since the request was sent.
    pub events: Vec<(Duration, String)>,
    /// Time to the first event that carries generated text.
    pub ttft: Option<Duration>,
    /// The body stream ended with an error (the connection dropped).
    pub broken: bool,
}

impl Streamed {
    /// The `usage` object of the final usage chunk.
    pub fn usage(&self) -> Value {
        self.events
            .iter()
            .filter(|(_, data)| data.as_str() != "[DONE]")
            .map(|(_, data)| serde_json::from_str::<Value>(data).unwrap())
            .find(|event| event["usage"].is_object())
            .map(|event| event["usage"].clone())
            .expect("a usage chunk")
    }

    /// Cached prompt tokens; vLLM leaves the details out when there are none.
    pub fn cached_tokens(&self) -> u64 {
        let usage = self.usage();
        match usage.get("prompt_tokens_details") {
            None => 0,
            Some(details) => details["cached_tokens"].as_u64().unwrap(),
        }
    }

    /// The generated text events, in order.
    pub fn texts(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(_, data)| data.as_str() != "[DONE]")
            .filter_map(|(_, data)| {
                let event: Value = serde_json::from_str(data).unwrap();
                let choice = event["choices"].get(0)?.clone();
                choice["text"]
                    .as_str()
                    .or(choice["delta"]["content"].as_str())
                    .filter(|text| !text.is_empty())
                    .map(str::to_string)
            })
            .collect()
    }
}

/// POSTs `body` to `path` and reads the SSE stream to its end.
pub async fn stream(base: &str, path: &str, body: Value) -> Streamed {
    stream_with(&client(), base, path, body, None).await
}

/// Like [`stream`], giving up after `idle` without a byte.
pub async fn stream_with(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
    idle: Option<Duration>,
) -> Streamed {
    let sent = Instant::now();
    let response = client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let mut body = response.bytes_stream();
    let mut raw = String::new();
    let mut events = Vec::new();
    let mut ttft = None;
    let mut broken = false;
    let mut pending = String::new();
    loop {
        let next = match idle {
            Some(idle) => match tokio::time::timeout(idle, body.next()).await {
                Ok(next) => next,
                Err(_) => {
                    broken = true;
                    break;
                }
            },
            None => body.next().await,
        };
        match next {
            None => break,
            Some(Err(_)) => {
                broken = true;
                break;
            }
            Some(Ok(bytes)) => {
                let at = sent.elapsed();
                let text = String::from_utf8(bytes.to_vec()).unwrap();
                raw.push_str(&text);
                pending.push_str(&text);
                while let Some(end) = pending.find("\n\n") {
                    let event = pending[..end].to_string();
                    pending.drain(..end + 2);
                    let data = event.strip_prefix("data: ").unwrap_or(&event).to_string();
                    if ttft.is_none() && data != "[DONE]" {
                        let parsed: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                        let choice = &parsed["choices"][0];
                        let has_text = choice["text"].as_str().is_some_and(|t| !t.is_empty())
                            || choice["delta"]["content"]
                                .as_str()
                                .is_some_and(|t| !t.is_empty());
                        if has_text {
                            ttft = Some(at);
                        }
                    }
                    events.push((at, data));
                }
            }
        }
    }
    Streamed {
        status,
        raw,
        events,
        ttft,
        broken,
    }
}

/// A completions request body for token ids, streaming with usage.
pub fn token_request(prompt: &[u32], max_tokens: usize) -> Value {
    serde_json::json!({
        "model": "cacherate-sim",
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
}

/// `len` token ids starting at `start`, all inside the vocabulary.
pub fn tokens(start: u32, len: usize) -> Vec<u32> {
    (0..len as u32)
        .map(|i| 100 + (start + i) % 30_000)
        .collect()
}

/// Reads one sample of `/metrics`.
pub async fn metric(base: &str, name: &str) -> f64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|line| line.starts_with(&format!("{name}{{")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

/// Every row of a run directory's `detailed_results_{context}.csv`.
pub fn records(dir: &Path, context: u64) -> Vec<RequestRecord> {
    let path = dir.join(format!("detailed_results_{context}.csv"));
    csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .deserialize()
        .map(|row| row.expect("every row parses"))
        .collect()
}

/// The points of a run directory's `results.json`, by context and rate.
pub fn results(dir: &Path) -> Vec<PointResult> {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let mut points = serde_json::from_str::<Results>(&text).unwrap().points;
    points.sort_by_key(|p| (p.context_size, p.cache_hit_rate));
    points
}

/// A run directory's `progress.json`, if there is one that reads.
pub fn progress(dir: &Path) -> Option<Progress> {
    let text = std::fs::read_to_string(dir.join("progress.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The ids of the requests that the phase in flight (or the one a killed
/// run left) has completed and not yet committed: the whole rows of
/// `unfinished_phase_{context}.csv` that are not within the committed
/// length of `detailed_results_{context}.csv`.
pub fn uncommitted_requests(dir: &Path, context: u64) -> std::collections::BTreeSet<u64> {
    let name = format!("detailed_results_{context}.csv");
    let length = progress(dir)
        .and_then(|p| p.files.get(&name).copied())
        .unwrap_or(0) as usize;
    let bytes = std::fs::read(dir.join(&name)).unwrap_or_default();
    let committed: std::collections::BTreeSet<u64> =
        csv::Reader::from_reader(&bytes[..length.min(bytes.len())])
            .deserialize::<RequestRecord>()
            .map_while(Result::ok)
            .map(|r| r.request_id)
            .collect();
    let journal =
        std::fs::read(dir.join(format!("unfinished_phase_{context}.csv"))).unwrap_or_default();
    let whole = journal
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    csv::Reader::from_reader(&journal[..whole])
        .deserialize::<RequestRecord>()
        .map_while(Result::ok)
        .map(|r| r.request_id)
        .filter(|id| !committed.contains(id))
        .collect()
}

/// `run.json` of a run directory.
pub fn run_json(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

/// Every file of a finished run's directory is there, for one context.
pub fn assert_run_dir_complete(dir: &Path, context: u64) {
    for file in [
        "progress.json".to_string(),
        "results.json".to_string(),
        "run.json".to_string(),
        "summary.csv".to_string(),
        format!("summary_{context}.csv"),
        format!("phase_metadata_{context}.csv"),
        format!("detailed_results_{context}.csv"),
    ] {
        assert!(dir.join(&file).is_file(), "{file} is missing");
    }
}

/// Resolves `cacherate run` options (without the `run`) as the command
/// line would, with no profile file around.
pub fn try_run_settings(
    args: &[String],
) -> cacherate::error::Result<cacherate::settings::RunSettings> {
    use clap::Parser;
    let mut argv = vec!["cacherate".to_string(), "run".to_string()];
    argv.extend_from_slice(args);
    let cacherate::cli::Command::Run(run) =
        cacherate::cli::Cli::try_parse_from(argv).unwrap().command
    else {
        unreachable!("a run command line")
    };
    let no_profiles = tempfile::tempdir().unwrap();
    // As `cacherate run` does: with the loads of a --concurrency-from file.
    cacherate::commands::run::settings(*run, no_profiles.path())
}

/// Like [`try_run_settings`], for options that must resolve.
pub fn run_settings(args: &[String]) -> cacherate::settings::RunSettings {
    try_run_settings(args).unwrap()
}

/// Every row of a run directory's `phase_metadata_{context}.csv`, as the
/// phase ids and types in order.
pub fn phases(dir: &Path, context: u64) -> Vec<PhaseRow> {
    let path = dir.join(format!("phase_metadata_{context}.csv"));
    csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .deserialize()
        .map(|row| row.expect("every phase row parses"))
        .collect()
}

/// The columns of a phase row the tests read.
#[derive(Debug, serde::Deserialize)]
pub struct PhaseRow {
    pub phase_id: String,
    pub phase_type: String,
    pub concurrency: u32,
    pub launched: u64,
    pub failed: u64,
    pub input_tps: f64,
    pub passed: bool,
    /// Seconds the plan gave the phase.
    pub planned_duration_s: f64,
}
