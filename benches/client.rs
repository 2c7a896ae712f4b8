//! Measures cacherate's load generator alone, against the simulator in a
//! separate process that never waits (`--time-scale 0`): the CPU seconds
//! this process spends per million streamed output tokens, whether it holds
//! thousands of concurrent streams without errors, and the delay between a
//! slot freeing and its next request going out.
//!
//! `cargo bench --bench client` (`-- --seconds N` for longer phases,
//! `-- --streams N` for one level only).

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use cacherate::client::{Client, Clock};
use cacherate::progress::Live;
use cacherate::runner::phase::{Breaker, PhaseLabel, Shared, run_phase};
use cacherate::workload::text::synthetic_text;
use cacherate::workload::{Content, FactoryOptions, PromptFactory, TokenPool};
use common::{Sim, cpu_seconds};

const OUTPUT_TOKENS: u32 = 256;
const CONTEXT: u64 = 128;

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn measure(
    shared: &Arc<Shared>,
    factory: &Arc<PromptFactory>,
    concurrency: u32,
    seconds: f64,
) {
    let before = cpu_seconds("self");
    let run = run_phase(
        Arc::clone(shared),
        Arc::clone(factory),
        PhaseLabel {
            context_size: CONTEXT,
            cache_hit_rate: 50,
            phase_id: format!("BENCH_c{concurrency}"),
            phase_index: 0,
            concurrency,
        },
        Duration::from_secs_f64(seconds),
        Arc::new(Live::new()),
    )
    .await
    .expect("the bench's load slots finish");
    let cpu = cpu_seconds("self") - before;
    let failed = run.records.iter().filter(|r| !r.ok()).count();
    let tokens: u64 = run.records.iter().filter_map(|r| r.completion_tokens).sum();
    let elapsed = (run.end - run.start).as_secs_f64();
    let mut steady: Vec<f64> = run
        .records
        .iter()
        .filter_map(|r| r.dispatch_delay_s)
        .collect();
    steady.sort_by(f64::total_cmp);
    println!(
        "{concurrency:>5} streams: {:>6} requests, {failed} failed, {:>9} tokens in {elapsed:.1} s \
         ({:.0} tok/s); client CPU {cpu:.2} s = {:.2} CPU-s per million tokens; dispatch delay \
         p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        run.records.len(),
        tokens,
        tokens as f64 / elapsed,
        cpu / tokens as f64 * 1e6,
        quantile(&steady, 0.5) * 1e3,
        quantile(&steady, 0.99) * 1e3,
        steady.last().copied().unwrap_or(0.0) * 1e3,
    );
}

fn main() {
    let mut seconds = 10.0;
    let mut levels = vec![64, 1024, 4096];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds N")
            }
            "--streams" => {
                levels = vec![
                    args.next()
                        .and_then(|s| s.parse().ok())
                        .expect("--streams N"),
                ]
            }
            _ => {}
        }
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let sim = Sim::start(&[
        "--time-scale",
        "0",
        "--noise",
        "0",
        "--max-num-seqs",
        "8192",
        "--kv-capacity-tokens",
        "4000000",
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = Client::new(vec![sim.url.clone()], None, Duration::from_secs(120))
            .unwrap()
            .expecting_chunks(OUTPUT_TOKENS);
        let text = synthetic_text(1, 4000);
        let (tokens, _) = client.tokenize("cacherate-sim", &text).await.unwrap();
        let pool = Arc::new(TokenPool::new(&tokens).unwrap());
        let factory = Arc::new(PromptFactory::new(
            Content::Tokens(pool),
            &FactoryOptions {
                model: "cacherate-sim",
                context_size: CONTEXT,
                chunk_size: 16,
                working_set_size: 1024,
                output_tokens: OUTPUT_TOKENS,
                seed: 1,
                nonce: 1,
                random_selection: false,
            },
        ));
        let shared = Arc::new(Shared {
            client,
            clock: Clock::new(),
            request_ids: AtomicU64::new(0),
            breaker: Breaker::new(0, Duration::ZERO),
            stop: cacherate::runner::Stop::new(),
            journal: Default::default(),
        });
        println!(
            "client benchmark: {CONTEXT}-token prompts, {OUTPUT_TOKENS} streamed tokens each, \
             simulator in its own process with --time-scale 0, {seconds} s per level"
        );
        for &concurrency in &levels {
            measure(&shared, &factory, concurrency, seconds).await;
        }
    });
}
