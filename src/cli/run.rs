//! `cacherate run`'s arguments: what the command line and the environment
//! give; profiles and defaults are layered over them in
//! [`crate::settings`].

use std::path::PathBuf;

use clap::{ArgAction, Args};

use super::values::{ChunkTimes, Mode, PromptMode, ReinitStrategy, TokensPerReqMetric, TtftMetric};

/// `cacherate run`. Every option may also come from the environment
/// (`CACHERATE_<OPTION>`) or a profile; see `--profile`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Target")]
pub struct RunArgs {
    /// Inference server base URL(s), e.g. http://localhost:8000; several are
    /// used round-robin. Without one, the embedded simulator is started.
    #[arg(long, num_args = 1.., action = ArgAction::Set, env = "CACHERATE_API_ENDPOINT", value_delimiter = ',')]
    pub api_endpoint: Option<Vec<String>>,

    /// Start the server under test with this command, run by `sh -c` in a
    /// process group of its own (`{host}` and `{port}` in it become
    /// --api-endpoint's, which says where it listens [default:
    /// http://127.0.0.1:8000]); wait until GET /v1/models answers, keep its
    /// output in the run directory's server.log, and stop it when the run
    /// ends (SIGTERM, SIGKILL after 10 s). `baseline refresh` and
    /// `calibrate` start a fresh one for every run.
    #[arg(long, env = "CACHERATE_SERVE", value_name = "CMD")]
    pub serve: Option<String>,

    /// Seconds the --serve server may take to answer GET /v1/models
    /// before the run fails [default: 600].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_SERVE_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub serve_timeout: Option<f64>,

    /// Model id to request (default: the first id of /v1/models).
    #[arg(long, env = "CACHERATE_MODEL")]
    pub model: Option<String>,

    /// Bearer token for the server.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Tokenizer: a local tokenizer.json (or a directory with one) or a
    /// Hugging Face model id (downloaded once; HF_TOKEN, HF_ENDPOINT
    /// honoured) [default: the server's /tokenize].
    #[arg(long, env = "CACHERATE_TOKENIZER")]
    pub tokenizer: Option<String>,

    /// Seconds one request may take before it counts as failed.
    #[arg(allow_negative_numbers = true, long, env = "CACHERATE_REQUEST_TIMEOUT")]
    pub request_timeout: Option<f64>,

    #[command(flatten)]
    pub profiles: ProfileArgs,

    /// Start over: move the files of an earlier run in --output-dir aside.
    #[arg(long, help_heading = "Output")]
    pub force_restart: bool,

    /// Debug logging.
    #[arg(long, help_heading = "Output")]
    pub verbose: bool,

    /// No progress bars or per-phase lines; errors and the final table only.
    #[arg(long, help_heading = "Output")]
    pub quiet: bool,

    #[command(flatten)]
    pub options: RunOptionArgs,
}

/// Where options come from besides the command line and the environment.
#[derive(Debug, Clone, Default, Args)]
pub struct ProfileArgs {
    /// Profile to take options from: built-in `quick` or `full`, or one of
    /// [profile.NAME] in cacherate.toml.
    #[arg(long, env = "CACHERATE_PROFILE", help_heading = "Profiles")]
    pub profile: Option<String>,

    /// Profile file (default: ./cacherate.toml when it exists).
    #[arg(long, env = "CACHERATE_CONFIG", help_heading = "Profiles")]
    pub config: Option<PathBuf>,
}

/// The options that profiles can set too.
#[derive(Debug, Clone, Args)]
pub struct RunOptionArgs {
    /// Context lengths to test, in tokens (e.g. 8000 32000 64000).
    #[arg(allow_negative_numbers = true, long, num_args = 1.., action = ArgAction::Set, env = "CACHERATE_CONTEXT_SIZES", value_delimiter = ',', help_heading = "Workload")]
    pub context_sizes: Option<Vec<u64>>,

    /// Total tokens in the working set (e.g. 2000000).
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_WORKING_SET_SIZE",
        help_heading = "Workload"
    )]
    pub working_set_size: Option<u64>,

    /// Tokens generated per request [default: 256].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_OUTPUT_TOKENS",
        help_heading = "Workload"
    )]
    pub output_tokens: Option<u32>,

    /// Cache hit rates to test, in percent [default: 0 5 10 ... 100].
    #[arg(allow_negative_numbers = true, long, num_args = 1.., action = ArgAction::Set, env = "CACHERATE_CACHE_HIT_RATES", value_delimiter = ',', help_heading = "Workload")]
    pub cache_hit_rates: Option<Vec<u32>>,

    /// Server KV block alignment in tokens: cached prefixes round down to
    /// it, contexts up [default: 256].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_CHUNK_SIZE",
        help_heading = "Workload"
    )]
    pub chunk_size: Option<u64>,

    /// When to send the working set again [default: once].
    #[arg(long, env = "CACHERATE_REINIT_STRATEGY", help_heading = "Workload")]
    pub reinit_strategy: Option<ReinitStrategy>,

    /// Pick working-set prompts at random instead of round-robin.
    #[arg(
        long,
        overrides_with = "no_random_working_set_selection",
        help_heading = "Workload"
    )]
    pub random_working_set_selection: bool,

    /// Round-robin selection even if a profile asks for random.
    #[arg(
        long,
        overrides_with = "random_working_set_selection",
        help_heading = "Workload"
    )]
    pub no_random_working_set_selection: bool,

    /// How prompts are sent: token ids (exact), text or chat (the server
    /// re-tokenises; the drift is reported), or auto (token ids, text if
    /// the server refuses them) [default: tokens].
    #[arg(long, env = "CACHERATE_PROMPT_MODE", help_heading = "Workload")]
    pub prompt_mode: Option<PromptMode>,

    /// Seed for prompts and selection (default: drawn and recorded).
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_SEED",
        help_heading = "Workload"
    )]
    pub seed: Option<u64>,

    /// TTFT threshold in seconds [default: 2.0].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_MAX_TTFT",
        help_heading = "Thresholds"
    )]
    pub max_ttft: Option<f64>,

    /// TTFT statistic held against --max-ttft [default: p95].
    #[arg(long, env = "CACHERATE_TTFT_METRIC", help_heading = "Thresholds")]
    pub ttft_metric: Option<TtftMetric>,

    /// Also require this many output tokens/s per request.
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_MIN_TOKENS_PER_REQ",
        help_heading = "Thresholds"
    )]
    pub min_tokens_per_req: Option<f64>,

    /// Per-request output-rate statistic held against --min-tokens-per-req
    /// [default: avg].
    #[arg(
        long,
        env = "CACHERATE_TOKENS_PER_REQ_METRIC",
        help_heading = "Thresholds"
    )]
    pub tokens_per_req_metric: Option<TokensPerReqMetric>,

    /// A phase with a larger share of failed requests fails the threshold
    /// [default: 0.01].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_MAX_ERROR_RATE",
        help_heading = "Thresholds"
    )]
    pub max_error_rate: Option<f64>,

    /// Stop a point after this many connection-level failures in a row
    /// (connect, disconnect, timeout, 5xx) with no success for
    /// --circuit-breaker-window seconds; 0 turns the breaker off
    /// [default: 20].
    #[arg(
        long,
        env = "CACHERATE_CIRCUIT_BREAKER_FAILURES",
        help_heading = "Thresholds"
    )]
    pub circuit_breaker_failures: Option<u32>,

    /// Seconds without a successful request before the circuit breaker
    /// may stop a point [default: 30].
    #[arg(
        long,
        env = "CACHERATE_CIRCUIT_BREAKER_WINDOW",
        help_heading = "Thresholds"
    )]
    pub circuit_breaker_window: Option<f64>,

    /// Most seconds spent ramping one cache rate; in sustained mode, the
    /// length of each point's continuous load [default: 300].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_TEST_DURATION",
        help_heading = "Timing"
    )]
    pub test_duration: Option<f64>,

    /// Seconds per concurrency level while ramping [default: 60].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_RAMP_DURATION",
        help_heading = "Timing"
    )]
    pub ramp_duration: Option<f64>,

    /// Sample phases at the peak concurrency (or at each fixed level):
    /// the samples a comparison rests on; the ramp phase that chose the
    /// peak is not one [default: 3].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_NUM_RETRIES",
        help_heading = "Timing"
    )]
    pub num_retries: Option<u32>,

    /// Seconds of each sample phase [default: --ramp-duration].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_SAMPLE_DURATION",
        help_heading = "Timing"
    )]
    pub sample_duration: Option<f64>,

    /// Share of each phase, at its start, that is not counted (at least one
    /// request latency, at most half the phase) [default: 0.2].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_WARMUP_FRACTION",
        help_heading = "Timing"
    )]
    pub warmup_fraction: Option<f64>,

    /// Request cycles (window length over the mean request latency) a
    /// sample's steady-state window should span: a window of one or two
    /// cycles catches one batching wave or two [default: 4].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_MIN_SAMPLE_CYCLES",
        help_heading = "Timing"
    )]
    pub min_sample_cycles: Option<f64>,

    /// Requests a sample's window should count (a TTFT p95 over fewer than
    /// 20 is their largest value) [default: 40].
    #[arg(long, env = "CACHERATE_MIN_SAMPLE_REQUESTS", help_heading = "Timing")]
    pub min_sample_requests: Option<u64>,

    /// Lengthen each sample phase to span --min-sample-cycles and count
    /// --min-sample-requests, from the request latency of the phase before
    /// it at the same load (at most 10x --sample-duration); without it a
    /// short sample is reported.
    #[arg(long, overrides_with = "no_lengthen_samples", help_heading = "Timing")]
    pub lengthen_samples: bool,

    /// Keep sample phases at --sample-duration, reporting short ones, even
    /// if a profile says otherwise.
    #[arg(long, overrides_with = "lengthen_samples", help_heading = "Timing")]
    pub no_lengthen_samples: bool,

    /// How each point's load is chosen: adaptive (ramp to the peak under
    /// the thresholds), fixed (--fixed-concurrency-levels or
    /// --concurrency-from, no ramp) or sustained (one continuous load of
    /// --test-duration whose concurrency a controller adjusts every
    /// --assessment-period) [default: adaptive].
    #[arg(long, env = "CACHERATE_MODE", help_heading = "Concurrency")]
    pub mode: Option<Mode>,

    /// Sustained mode: seconds between the controller's decisions; each
    /// period is measured and judged without draining the server
    /// [default: 30].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_ASSESSMENT_PERIOD",
        help_heading = "Timing"
    )]
    pub assessment_period: Option<f64>,

    /// Fixed mode: concurrency levels measured at every point, lowest
    /// first, stopping after the first level over the thresholds.
    #[arg(allow_negative_numbers = true, long, num_args = 1.., action = ArgAction::Set, env = "CACHERATE_FIXED_CONCURRENCY_LEVELS", value_delimiter = ',', help_heading = "Concurrency")]
    pub fixed_concurrency_levels: Option<Vec<u32>>,

    /// Fixed mode: measure each point at the concurrency an earlier run's
    /// results.json (or a baseline) reports for it, whatever its TTFT.
    #[arg(long, env = "CACHERATE_CONCURRENCY_FROM", help_heading = "Concurrency")]
    pub concurrency_from: Option<PathBuf>,

    /// First concurrency level [default: 2].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_START_CONCURRENCY",
        help_heading = "Concurrency"
    )]
    pub start_concurrency: Option<u32>,

    /// Concurrency step [default: 2].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_CONCURRENCY_INCREMENT",
        help_heading = "Concurrency"
    )]
    pub concurrency_increment: Option<u32>,

    /// Highest concurrency level [default: 1000].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_MAX_CONCURRENCY",
        help_heading = "Concurrency"
    )]
    pub max_concurrency: Option<u32>,

    /// Concurrency of the working-set warm-up [default: 16].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_INIT_CONCURRENCY",
        help_heading = "Concurrency"
    )]
    pub init_concurrency: Option<u32>,

    /// Run directory [default: ./output].
    #[arg(long, env = "CACHERATE_OUTPUT_DIR", help_heading = "Output")]
    pub output_dir: Option<PathBuf>,

    /// Count only requests launched and finished inside each phase.
    #[arg(
        long,
        overrides_with = "no_strict_time_window",
        help_heading = "Output"
    )]
    pub strict_time_window: bool,

    /// Count requests that finish after the window too, even if a profile
    /// says otherwise.
    #[arg(long, overrides_with = "strict_time_window", help_heading = "Output")]
    pub no_strict_time_window: bool,

    /// Do not write HTML graphs.
    #[arg(long, overrides_with = "no_skip_graphs", help_heading = "Output")]
    pub skip_graphs: bool,

    /// Write HTML graphs even if a profile says to skip them.
    #[arg(long, overrides_with = "skip_graphs", help_heading = "Output")]
    pub no_skip_graphs: bool,

    /// What detailed_results rows keep of each stream: every chunk's time
    /// (all), or its count, first, last and longest gap (summary: about a
    /// tenth of the bytes at 256 output tokens) [default: all].
    #[arg(long, help_heading = "Output")]
    pub chunk_times: Option<ChunkTimes>,

    /// KV bytes per element for the size estimate: 1 (FP8) or 2 (FP16)
    /// [default: 2].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_KV_CACHE_QUANTIZATION",
        help_heading = "KV size estimate"
    )]
    pub kv_cache_quantization: Option<u8>,

    /// Model layers, for the KV size estimate of a model not in the table.
    #[arg(allow_negative_numbers = true, long, help_heading = "KV size estimate")]
    pub num_layers: Option<u32>,

    /// KV heads per layer, for the KV size estimate.
    #[arg(allow_negative_numbers = true, long, help_heading = "KV size estimate")]
    pub num_kv_heads: Option<u32>,

    /// Head dimension, for the KV size estimate.
    #[arg(allow_negative_numbers = true, long, help_heading = "KV size estimate")]
    pub head_dim: Option<u32>,

    /// Flag a point whose achieved cache-hit rate misses the target by more
    /// than this many percentage points [default: max(0.5, one chunk as a
    /// share of the context)].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_MAX_CACHE_RATE_GAP",
        help_heading = "Cache"
    )]
    pub max_cache_rate_gap: Option<f64>,

    /// Read the server's prefix-cache counters (vLLM, llama.cpp) before and
    /// after each phase: a Prometheus URL, or `auto` for the first
    /// endpoint's /metrics.
    #[arg(long, env = "CACHERATE_METRICS_URL", help_heading = "Cache")]
    pub metrics_url: Option<String>,

    /// Empty the server's prefix cache before each warm-up: `none`, `auto`
    /// (vLLM /reset_prefix_cache, SGLang /flush_cache, llama.cpp slot
    /// erase), or a URL to POST to [default: none].
    #[arg(long, env = "CACHERATE_FLUSH_CACHE", help_heading = "Cache")]
    pub flush_cache: Option<String>,

    /// Wall seconds per simulated second of the embedded simulator (used
    /// only without --api-endpoint) [default: 1].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_SIM_TIME_SCALE",
        help_heading = "Embedded simulator"
    )]
    pub sim_time_scale: Option<f64>,
}
