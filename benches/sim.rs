//! Measures the simulator in its own process: cold and warm TTFT at a few
//! context sizes (modelled time), and the sustained request rate it serves
//! when it never waits (`--time-scale 0`).
//!
//! `cargo bench --bench sim` (add `-- --seconds N` to load it longer).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Sim;
use futures_util::StreamExt;
use serde_json::json;

fn prompt(start: u32, len: usize) -> Vec<u32> {
    (0..len as u32)
        .map(|i| 100 + (start + i) % 30_000)
        .collect()
}

/// Sends one streaming request; returns (TTFT, tokens received).
async fn one(
    client: &reqwest::Client,
    url: &str,
    prompt: &[u32],
    max_tokens: usize,
) -> (Duration, usize) {
    let sent = Instant::now();
    let response = client
        .post(format!("{url}/v1/completions"))
        .json(
            &json!({"prompt": prompt, "max_tokens": max_tokens, "stream": true,
                      "stream_options": {"include_usage": true}}),
        )
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success());
    let mut body = response.bytes_stream();
    let mut ttft = None;
    let mut events = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("body");
        ttft.get_or_insert_with(|| sent.elapsed());
        events += chunk.windows(6).filter(|w| w == b"data: ").count();
    }
    (ttft.unwrap(), events)
}

async fn ttft_pairs() {
    // The cost model alone: no jitter, no run slowdown, no cold start.
    let sim = Sim::start(&[
        "--noise",
        "0",
        "--run-noise",
        "0",
        "--cold-start-seconds",
        "0",
    ]);
    let client = reqwest::Client::new();
    // Open the connection first so the first cold request pays no handshake.
    client
        .get(format!("{}/health", sim.url))
        .send()
        .await
        .expect("health");
    println!("cold vs warm TTFT, default cost model, real time (--time-scale 1):");
    println!("{:>8} {:>12} {:>12}", "context", "cold", "warm");
    for (index, context) in [1_000usize, 4_000, 16_000].into_iter().enumerate() {
        let tokens = prompt(index as u32 * 7_000, context);
        let (cold, _) = one(&client, &sim.url, &tokens, 1).await;
        let (warm, _) = one(&client, &sim.url, &tokens, 1).await;
        println!(
            "{context:>8} {:>10.1}ms {:>10.1}ms",
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3
        );
    }
}

async fn sustained_rate(seconds: f64) {
    let sim = Sim::start(&["--time-scale", "0", "--noise", "0", "--max-num-seqs", "256"]);
    let client = reqwest::Client::new();
    let concurrency = 64;
    let requests = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(AtomicU64::new(0));
    let cpu_before = sim.cpu_seconds();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (client, url) = (client.clone(), sim.url.clone());
        let (requests, tokens) = (Arc::clone(&requests), Arc::clone(&tokens));
        workers.push(tokio::spawn(async move {
            let shared = prompt(0, 500);
            let mut n = 0u32;
            while Instant::now() < deadline {
                // Half cached prefix, half unique suffix, 16 output tokens.
                let mut tokens_in = shared.clone();
                tokens_in.extend(prompt(1_000 + worker * 100_000 + n * 500, 500));
                n += 1;
                let (_, events) = one(&client, &url, &tokens_in, 16).await;
                requests.fetch_add(1, Ordering::Relaxed);
                tokens.fetch_add(events as u64, Ordering::Relaxed);
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = sim.cpu_seconds() - cpu_before;
    let requests = requests.load(Ordering::Relaxed) as f64;
    println!(
        "sustained: {concurrency} concurrent streams, 1000-token prompts (500 cached), 16 output \
         tokens, --time-scale 0"
    );
    println!(
        "  {:.0} requests/s, {:.0} streamed events/s, simulator CPU {:.2} s over {elapsed:.1} s \
         ({:.0} µs CPU per request)",
        requests / elapsed,
        tokens.load(Ordering::Relaxed) as f64 / elapsed,
        cpu,
        cpu / requests * 1e6
    );
}

fn main() {
    let mut seconds = 10.0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args
                .next()
                .and_then(|s| s.parse().ok())
                .expect("--seconds N");
        }
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        ttft_pairs().await;
        sustained_rate(seconds).await;
    });
}
