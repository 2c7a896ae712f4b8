//! The simulated inference engine: one task that owns the KV cache and the
//! batch, and advances in steps as vLLM's scheduler does.
//!
//! Each step the engine admits waiting requests (first come, first served)
//! while the batch has room for another sequence and the KV cache has room
//! for its whole length, then processes one token for every decoding
//! sequence and spends what is left of the token budget on prefill chunks.
//! A step costs
//!
//! ```text
//! overhead + decode_per_seq × decoding + decode_per_kv_token × attended KV
//!          + prefill_per_token × prefilled + load_per_token × loaded
//! ```
//!
//! times `--slowdown`, times the run's own slowdown (drawn once from
//! `--seed`, spread `--run-noise`), times the cold-start factor of the
//! moment (see `speed`), times a lognormal jitter of mean 1. The engine
//! sleeps until an absolute deadline that advances by each step's cost, so
//! timer granularity does not accumulate into drift. The step that completes
//! a prompt's prefill yields its first token; each later step yields one
//! more, until `max_tokens`.
//!
//! The cold start is timed in simulated seconds since the engine started:
//! wall time divided by `--time-scale`, or, with `--time-scale 0` (where no
//! wall time passes to speak of), the sum of the step costs so far.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, LogNormal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::kv::{Allocation, BlockHash, KvCache, KvCounters, block_hashes};
use super::speed::ColdStart;
use super::tokenizer::{TokenId, spaced_word};
use crate::rng::splitmix64;

/// If the engine falls this far behind its deadlines (the host was busy), it
/// restarts its clock instead of running a burst of steps to catch up.
const MAX_LAG: Duration = Duration::from_millis(50);

/// A request as the engine sees it.
#[derive(Debug)]
pub struct EngineRequest {
    pub prompt: Vec<TokenId>,
    pub max_tokens: usize,
    /// Seeds the generated tokens.
    pub output_seed: u64,
    pub events: mpsc::UnboundedSender<EngineEvent>,
}

/// What the engine tells a request's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// The request entered the batch with this many prompt tokens cached.
    Admitted { cached_tokens: usize },
    /// One generated token; the handler counts them up to `max_tokens`.
    Token(TokenId),
}

/// The engine's state as `/metrics` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineSnapshot {
    pub running: usize,
    pub waiting: usize,
    /// Share of first-tier KV blocks held by running sequences, 0..=1.
    pub kv_usage: f64,
    pub cached_blocks: usize,
    pub offloaded_blocks: usize,
    /// Prompt tokens looked up in the prefix cache, and of those the hits.
    pub prefix_cache_queries: u64,
    pub prefix_cache_hits: u64,
    /// Tokens of those hits that came from the second tier.
    pub offload_hits: u64,
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    pub finished_requests: u64,
    pub aborted_requests: u64,
    pub steps: u64,
    /// Simulated seconds of the steps so far: the engine's own clock,
    /// which a busy host does not move.
    pub busy_seconds: f64,
    pub kv: KvCounters,
}

/// What the HTTP layer asks of the engine.
#[derive(Debug)]
pub enum Command {
    Generate(EngineRequest),
    /// Forget the cached prefixes; answers how many blocks went.
    ResetPrefixCache(tokio::sync::oneshot::Sender<usize>),
}

/// The handle the HTTP layer holds.
#[derive(Clone)]
pub struct EngineHandle {
    requests: mpsc::UnboundedSender<Command>,
    snapshot: Arc<Mutex<EngineSnapshot>>,
}

impl EngineHandle {
    /// Queues a request; `false` once the engine has stopped.
    pub fn submit(&self, request: EngineRequest) -> bool {
        self.requests.send(Command::Generate(request)).is_ok()
    }

    /// Empties the prefix cache; `None` once the engine has stopped.
    pub async fn reset_prefix_cache(&self) -> Option<usize> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.requests.send(Command::ResetPrefixCache(done)).ok()?;
        answer.await.ok()
    }

    pub fn snapshot(&self) -> EngineSnapshot {
        *self.snapshot.lock().expect("snapshot lock")
    }
}

/// Starts the engine task; it ends when `shutdown` is cancelled or every
/// handle is dropped.
pub fn spawn(config: &SimConfig, shutdown: CancellationToken) -> EngineHandle {
    let (requests, inbox) = mpsc::unbounded_channel();
    let snapshot = Arc::new(Mutex::new(EngineSnapshot::default()));
    let engine = Engine::new(config, Arc::clone(&snapshot));
    tokio::spawn(engine.run(inbox, shutdown));
    EngineHandle { requests, snapshot }
}

struct Waiting {
    request: EngineRequest,
    hashes: Vec<BlockHash>,
}

struct Sequence {
    events: mpsc::UnboundedSender<EngineEvent>,
    prompt_len: usize,
    hashes: Vec<BlockHash>,
    max_tokens: usize,
    /// Prompt tokens computed or found cached.
    computed: usize,
    /// Tokens loaded from the second tier, charged to the next step.
    pending_load: usize,
    generated: usize,
    output_state: u64,
    allocation: Allocation,
}

impl Sequence {
    fn decoding(&self) -> bool {
        self.computed == self.prompt_len
    }
}

/// Cost model in seconds, from the config.
struct Costs {
    overhead: f64,
    prefill_per_token: f64,
    decode_per_seq: f64,
    decode_per_kv_token: f64,
    load_per_token: f64,
    slowdown: f64,
    /// This process's run-to-run slowdown (above 1 slower).
    run_slowdown: f64,
    cold_start: ColdStart,
    time_scale: f64,
}

struct Engine {
    kv: KvCache,
    block_size: usize,
    max_num_seqs: usize,
    token_budget: usize,
    costs: Costs,
    jitter: Option<LogNormal<f64>>,
    rng: StdRng,
    waiting: VecDeque<Waiting>,
    running: Vec<Sequence>,
    stats: EngineSnapshot,
    snapshot: Arc<Mutex<EngineSnapshot>>,
    started: Instant,
}

/// A planned step: which sequences decode, which prefill how much.
struct Step {
    decoding: Vec<usize>,
    prefills: Vec<(usize, usize)>,
    seconds: f64,
}

impl Engine {
    fn new(config: &SimConfig, snapshot: Arc<Mutex<EngineSnapshot>>) -> Self {
        let jitter = (config.noise > 0.0).then(|| {
            let sigma = config.noise;
            LogNormal::new(-sigma * sigma / 2.0, sigma).expect("validated noise")
        });
        Self {
            kv: KvCache::new(
                config.kv_capacity_blocks(),
                config.offload_capacity_blocks(),
            ),
            block_size: config.block_size,
            max_num_seqs: config.max_num_seqs,
            token_budget: config.max_num_batched_tokens,
            costs: Costs {
                overhead: config.step_overhead_ms * 1e-3,
                prefill_per_token: config.prefill_us_per_token * 1e-6,
                decode_per_seq: config.decode_us_per_seq * 1e-6,
                decode_per_kv_token: config.decode_ns_per_kv_token * 1e-9,
                load_per_token: config.offload_load_us_per_token * 1e-6,
                slowdown: config.slowdown,
                run_slowdown: config.run_slowdown(),
                cold_start: config.cold_start(),
                time_scale: config.time_scale,
            },
            jitter,
            rng: StdRng::seed_from_u64(config.seed ^ 0x5eed_0fe4_614e),
            waiting: VecDeque::new(),
            running: Vec::new(),
            stats: EngineSnapshot::default(),
            snapshot,
            started: Instant::now(),
        }
    }

    /// Simulated seconds since the engine started.
    fn elapsed(&self) -> f64 {
        if self.costs.time_scale > 0.0 {
            self.started.elapsed().as_secs_f64() / self.costs.time_scale
        } else {
            self.stats.busy_seconds
        }
    }

    async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        let mut deadline: Option<Instant> = None;
        loop {
            if self.running.is_empty() && self.waiting.is_empty() {
                deadline = None;
                tokio::select! {
                    command = inbox.recv() => match command {
                        Some(command) => self.handle(command),
                        None => return,
                    },
                    () = shutdown.cancelled() => return,
                }
            }
            while let Ok(command) = inbox.try_recv() {
                self.handle(command);
            }
            self.drop_abandoned();
            self.admit();
            self.publish();
            let Some(step) = self.plan(self.elapsed()) else {
                continue;
            };
            if self.costs.time_scale > 0.0 {
                let wall = Duration::from_secs_f64(step.seconds * self.costs.time_scale);
                let now = Instant::now();
                let start = match deadline {
                    Some(previous) if now.saturating_duration_since(previous) < MAX_LAG => previous,
                    _ => now,
                };
                let end = start + wall;
                deadline = Some(end);
                tokio::select! {
                    () = tokio::time::sleep_until(end) => {}
                    () = shutdown.cancelled() => return,
                }
            } else {
                tokio::task::yield_now().await;
            }
            self.apply(step);
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Generate(request) => self.enqueue(request),
            Command::ResetPrefixCache(done) => {
                let _ = done.send(self.kv.reset());
                self.publish();
            }
        }
    }

    fn enqueue(&mut self, request: EngineRequest) {
        let hashes = block_hashes(&request.prompt, self.block_size);
        self.waiting.push_back(Waiting { request, hashes });
    }

    /// Frees sequences whose client went away, as vLLM aborts them.
    fn drop_abandoned(&mut self) {
        let before = self.waiting.len() + self.running.len();
        self.waiting.retain(|w| !w.request.events.is_closed());
        let mut kept = Vec::with_capacity(self.running.len());
        for sequence in self.running.drain(..) {
            if sequence.events.is_closed() {
                self.kv.free(sequence.allocation);
            } else {
                kept.push(sequence);
            }
        }
        self.running = kept;
        self.stats.aborted_requests += (before - self.waiting.len() - self.running.len()) as u64;
    }

    fn admit(&mut self) {
        while self.running.len() < self.max_num_seqs {
            let Some(head) = self.waiting.front() else {
                break;
            };
            let prompt_len = head.request.prompt.len();
            // The last prompt token is always computed, so at most
            // `prompt_len - 1` tokens can be a hit, in whole blocks.
            let max_hit_blocks = prompt_len.saturating_sub(1) / self.block_size;
            let hit = self.kv.lookup(&head.hashes, max_hit_blocks);
            let total_blocks = (prompt_len + head.request.max_tokens).div_ceil(self.block_size);
            let Some(allocation) = self.kv.allocate(&head.hashes, hit, total_blocks) else {
                break;
            };
            let Waiting { request, hashes } = self.waiting.pop_front().expect("head exists");
            let cached_tokens = hit.blocks() * self.block_size;
            self.stats.prefix_cache_queries += prompt_len as u64;
            self.stats.prefix_cache_hits += cached_tokens as u64;
            self.stats.offload_hits += (hit.second_tier_blocks * self.block_size) as u64;
            self.stats.prompt_tokens += prompt_len as u64;
            // A handler that is gone is noticed at the next step.
            let _ = request.events.send(EngineEvent::Admitted { cached_tokens });
            self.running.push(Sequence {
                events: request.events,
                prompt_len,
                hashes,
                max_tokens: request.max_tokens,
                computed: cached_tokens,
                pending_load: hit.second_tier_blocks * self.block_size,
                generated: 0,
                output_state: request.output_seed,
                allocation,
            });
        }
    }

    /// Plans the next step, costed as if it starts `elapsed` simulated
    /// seconds after the engine started.
    fn plan(&mut self, elapsed: f64) -> Option<Step> {
        if self.running.is_empty() {
            return None;
        }
        let mut budget = self.token_budget;
        let mut decoding = Vec::new();
        let mut attended = 0usize;
        for (index, sequence) in self.running.iter().enumerate() {
            if sequence.decoding() && budget > 0 {
                decoding.push(index);
                attended += sequence.prompt_len + sequence.generated;
                budget -= 1;
            }
        }
        let mut prefills = Vec::new();
        let mut prefilled = 0usize;
        let mut loaded = 0usize;
        for (index, sequence) in self.running.iter().enumerate() {
            if budget == 0 {
                break;
            }
            if !sequence.decoding() {
                let chunk = (sequence.prompt_len - sequence.computed).min(budget);
                budget -= chunk;
                prefilled += chunk;
                loaded += sequence.pending_load;
                prefills.push((index, chunk));
            }
        }
        let costs = &self.costs;
        let mut seconds = costs.overhead
            + costs.decode_per_seq * decoding.len() as f64
            + costs.decode_per_kv_token * attended as f64
            + costs.prefill_per_token * prefilled as f64
            + costs.load_per_token * loaded as f64;
        seconds *= costs.slowdown * costs.run_slowdown * costs.cold_start.factor(elapsed);
        if let Some(jitter) = &self.jitter {
            seconds *= jitter.sample(&mut self.rng);
        }
        Some(Step {
            decoding,
            prefills,
            seconds,
        })
    }

    fn apply(&mut self, step: Step) {
        self.stats.steps += 1;
        self.stats.busy_seconds += step.seconds;
        for (index, chunk) in step.prefills {
            let sequence = &mut self.running[index];
            sequence.pending_load = 0;
            sequence.computed += chunk;
            let computed_blocks = (sequence.computed / self.block_size).min(sequence.hashes.len());
            while KvCache::registered(&sequence.allocation) < computed_blocks {
                let next = sequence.hashes[KvCache::registered(&sequence.allocation)];
                self.kv.register(&mut sequence.allocation, next);
            }
            if sequence.decoding() {
                Self::emit_token(sequence, &mut self.stats);
            }
        }
        for index in step.decoding {
            Self::emit_token(&mut self.running[index], &mut self.stats);
        }
        let mut kept = Vec::with_capacity(self.running.len());
        for sequence in self.running.drain(..) {
            if sequence.generated >= sequence.max_tokens {
                self.stats.finished_requests += 1;
                self.kv.free(sequence.allocation);
            } else {
                kept.push(sequence);
            }
        }
        self.running = kept;
        self.publish();
    }

    fn emit_token(sequence: &mut Sequence, stats: &mut EngineSnapshot) {
        let token = spaced_word(splitmix64(&mut sequence.output_state));
        sequence.generated += 1;
        stats.generation_tokens += 1;
        let _ = sequence.events.send(EngineEvent::Token(token));
    }

    fn publish(&mut self) {
        self.stats.running = self.running.len();
        self.stats.waiting = self.waiting.len();
        self.stats.kv_usage = self.kv.used_blocks() as f64 / self.kv.capacity_blocks() as f64;
        self.stats.cached_blocks = self.kv.cached_blocks();
        self.stats.offloaded_blocks = self.kv.offloaded_blocks();
        self.stats.kv = self.kv.counters();
        *self.snapshot.lock().expect("snapshot lock") = self.stats;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4000-token cold prefill in one step: 8 ms + 4000 × 80 µs.
    const COLD_4000: f64 = 0.008 + 4000.0 * 80e-6;

    fn engine(config: SimConfig) -> Engine {
        Engine::new(&config, Arc::new(Mutex::new(EngineSnapshot::default())))
    }

    /// Queues and admits one request; the receiver keeps it alive.
    fn submit(
        engine: &mut Engine,
        prompt_len: u32,
        max_tokens: usize,
    ) -> mpsc::UnboundedReceiver<EngineEvent> {
        let (events, receiver) = mpsc::unbounded_channel();
        engine.enqueue(EngineRequest {
            prompt: (0..prompt_len).map(|i| 100 + i).collect(),
            max_tokens,
            output_seed: 1,
            events,
        });
        engine.admit();
        receiver
    }

    /// Deterministic costs: no jitter, and neither factor unless asked for.
    fn quiet() -> SimConfig {
        SimConfig {
            noise: 0.0,
            run_noise: 0.0,
            cold_start_seconds: 0.0,
            ..SimConfig::for_tests(0.0)
        }
    }

    fn first_step_seconds(config: &SimConfig, elapsed: f64) -> f64 {
        let mut engine = engine(config.clone());
        let _events = submit(&mut engine, 4000, 4);
        engine.plan(elapsed).expect("a step").seconds
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs()
    }

    #[test]
    fn the_run_slowdown_multiplies_every_step_with_the_slowdown() {
        assert!(close(first_step_seconds(&quiet(), 0.0), COLD_4000));
        let noisy = SimConfig {
            run_noise: 0.3,
            seed: 5,
            slowdown: 1.5,
            ..quiet()
        };
        let factor = noisy.run_slowdown();
        assert!((factor - 1.0).abs() > 0.01, "seed 5 draws {factor}");
        assert!(close(
            first_step_seconds(&noisy, 100.0),
            COLD_4000 * 1.5 * factor
        ));
        // Another seed, another factor; the same seed, the same cost.
        let other = SimConfig {
            seed: 6,
            ..noisy.clone()
        };
        assert_ne!(other.run_slowdown(), factor);
        assert_eq!(
            first_step_seconds(&noisy, 3.0),
            first_step_seconds(&noisy, 3.0)
        );
    }

    #[test]
    fn the_cold_start_slows_early_steps_and_fades() {
        let cold = SimConfig {
            cold_start_seconds: 5.0,
            cold_start_slowdown: 2.0,
            ..quiet()
        };
        assert!(close(first_step_seconds(&cold, 0.0), COLD_4000 * 2.0));
        assert!(close(first_step_seconds(&cold, 2.5), COLD_4000 * 1.5));
        assert!(close(first_step_seconds(&cold, 5.0), COLD_4000));
        assert!(close(first_step_seconds(&cold, 50.0), COLD_4000));
        let disabled = SimConfig {
            cold_start_seconds: 0.0,
            cold_start_slowdown: 2.0,
            ..quiet()
        };
        assert!(close(first_step_seconds(&disabled, 0.0), COLD_4000));
    }

    #[test]
    fn without_wall_time_the_cold_start_runs_on_step_time() {
        let config = SimConfig {
            time_scale: 0.0,
            cold_start_seconds: 1.0,
            cold_start_slowdown: 2.0,
            ..quiet()
        };
        let mut engine = engine(config);
        let _events = submit(&mut engine, 16, 1000);
        let mut costs = Vec::new();
        while engine.elapsed() < 1.5 {
            let step = engine.plan(engine.elapsed()).expect("a step");
            costs.push(step.seconds);
            engine.apply(step);
        }
        let total: f64 = costs.iter().sum();
        assert!(close(engine.elapsed(), total), "the clock is the step time");
        // The prefill step, then decode steps of about 8.15 ms when warm.
        let warm = costs[costs.len() - 1];
        assert!((warm - 0.00815).abs() < 1e-4, "warm step {warm}");
        let first_decode = costs[1];
        assert!(
            (first_decode / warm - 2.0).abs() < 0.02,
            "first decode {first_decode} vs warm {warm}"
        );
        // Half-way through the cold period, half the extra cost.
        let mut clock = 0.0;
        let halfway = costs
            .iter()
            .find(|&&cost| {
                clock += cost;
                clock > 0.5
            })
            .copied()
            .expect("steps past 0.5 s");
        assert!((halfway / warm - 1.5).abs() < 0.02, "half-way {halfway}");
    }
}
