//! The command line: clap structures that only parse. Precedence and
//! defaults are decided in [`crate::settings`].

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::settings::{
    ChunkTimes, Mode, Options, PromptMode, ReinitStrategy, TokensPerReqMetric, TtftMetric,
};
use crate::sim::SimConfig;

/// Benchmark OpenAI-compatible LLM inference servers across KV-cache hit
/// rates, and gate changes in CI.
#[derive(Debug, Parser)]
#[command(name = "cacherate", version, after_help = crate::exit::HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sweep cache hit rates against a server (or the embedded simulator) and
    /// find the peak throughput under a TTFT limit at each.
    #[command(args_override_self = true)]
    Run(Box<RunArgs>),
    /// Hold a run's samples against a baseline and write
    /// RUN_DIR/compare/verdict.json; the exit code says the verdict.
    Compare(CompareArgs),
    /// Run (resuming an interrupted run directory) at the baseline's loads,
    /// then compare: the one command a CI job calls.
    #[command(args_override_self = true)]
    Gate(Box<GateArgs>),
    /// A/A: run the baseline's configuration again at its loads (or read
    /// finished runs), count the false alarms of the tolerances in force,
    /// and store the run-to-run noise in the baseline.
    #[command(args_override_self = true)]
    Calibrate(Box<CalibrateArgs>),
    /// Make or refresh a baseline (baselines/NAME.json).
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Write a run directory's HTML reports again from its stored data (a
    /// run still going shows the points done so far).
    Report(ReportArgs),
    /// Run the embedded simulated inference server (vLLM's OpenAI-compatible
    /// protocol with a KV prefix-cache model).
    Sim(SimConfig),
    /// Estimate the KV-cache memory of a request and of a working set.
    KvSize(KvSizeArgs),
    /// Create or update (never duplicate) the pull request comment from
    /// comment.md through the GitHub API, with GITHUB_TOKEN; GITHUB_API_URL
    /// for GitHub Enterprise. A token that may not comment (pull requests
    /// from forks) is reported, not an error.
    Comment(CommentArgs),
}

/// `cacherate run`. Every option may also come from the environment
/// (`CACHERATE_<OPTION>`) or a profile; see `--profile`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Target")]
pub struct RunArgs {
    /// Inference server base URL(s), e.g. http://localhost:8000; several are
    /// used round-robin. Without one, the embedded simulator is started.
    #[arg(long, num_args = 1.., action = ArgAction::Set, env = "CACHERATE_API_ENDPOINT", value_delimiter = ',')]
    pub api_endpoint: Option<Vec<String>>,

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

    /// Profile to take options from: built-in `quick` or `full`, or one of
    /// [profile.NAME] in cacherate.toml.
    #[arg(long, env = "CACHERATE_PROFILE", help_heading = "Profiles")]
    pub profile: Option<String>,

    /// Profile file (default: ./cacherate.toml when it exists).
    #[arg(long, env = "CACHERATE_CONFIG", help_heading = "Profiles")]
    pub config: Option<PathBuf>,

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

impl RunArgs {
    /// The profile-settable options given on the command line or in the
    /// environment, as one layer.
    pub fn layer(&self) -> Options {
        let o = self.options.clone();
        // A flag, its --no- form, or neither (then a profile decides).
        let flag = |on: bool, off: bool| match (on, off) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        Options {
            api_endpoint: self.api_endpoint.clone(),
            context_sizes: o.context_sizes,
            working_set_size: o.working_set_size,
            output_tokens: o.output_tokens,
            max_ttft: o.max_ttft,
            ttft_metric: o.ttft_metric,
            test_duration: o.test_duration,
            ramp_duration: o.ramp_duration,
            num_retries: o.num_retries,
            start_concurrency: o.start_concurrency,
            concurrency_increment: o.concurrency_increment,
            max_concurrency: o.max_concurrency,
            init_concurrency: o.init_concurrency,
            cache_hit_rates: o.cache_hit_rates,
            chunk_size: o.chunk_size,
            reinit_strategy: o.reinit_strategy,
            random_working_set_selection: flag(
                o.random_working_set_selection,
                o.no_random_working_set_selection,
            ),
            output_dir: o.output_dir,
            tokenizer: self.tokenizer.clone(),
            seed: o.seed,
            kv_cache_quantization: o.kv_cache_quantization,
            strict_time_window: flag(o.strict_time_window, o.no_strict_time_window),
            skip_graphs: flag(o.skip_graphs, o.no_skip_graphs),
            chunk_times: o.chunk_times,
            model: self.model.clone(),
            min_tokens_per_req: o.min_tokens_per_req,
            tokens_per_req_metric: o.tokens_per_req_metric,
            request_timeout: self.request_timeout,
            max_error_rate: o.max_error_rate,
            circuit_breaker_failures: o.circuit_breaker_failures,
            circuit_breaker_window: o.circuit_breaker_window,
            sim_time_scale: o.sim_time_scale,
            num_layers: o.num_layers,
            num_kv_heads: o.num_kv_heads,
            head_dim: o.head_dim,
            max_cache_rate_gap: o.max_cache_rate_gap,
            metrics_url: o.metrics_url,
            flush_cache: o.flush_cache,
            prompt_mode: o.prompt_mode,
            mode: o.mode,
            fixed_concurrency_levels: o.fixed_concurrency_levels,
            concurrency_from: o.concurrency_from,
            warmup_fraction: o.warmup_fraction,
            sample_duration: o.sample_duration,
            assessment_period: o.assessment_period,
        }
    }
}

/// How a comparison decides: the policy of SPEC §5.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Verdict")]
pub struct VerdictArgs {
    /// Confidence of the one-sided tests, Holm-adjusted across a curve's
    /// points [default: 0.99].
    #[arg(allow_negative_numbers = true, long, env = "CACHERATE_CONFIDENCE")]
    pub confidence: Option<f64>,

    /// Throughput change (input and output tok/s) within which a point
    /// passes, as a fraction [default: 0.05].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_TOLERANCE_THROUGHPUT"
    )]
    pub tolerance_throughput: Option<f64>,

    /// TTFT p50 change within which a point passes [default: 0.10].
    #[arg(long, env = "CACHERATE_TOLERANCE_TTFT_P50")]
    pub tolerance_ttft_p50: Option<f64>,

    /// TTFT p95 change within which a point passes [default: 0.15].
    #[arg(long, env = "CACHERATE_TOLERANCE_TTFT_P95")]
    pub tolerance_ttft_p95: Option<f64>,

    /// Run-to-run noise assumed at least, as a coefficient of variation
    /// between two runs (a baseline of several runs can raise it)
    /// [default: 0.02].
    #[arg(allow_negative_numbers = true, long, env = "CACHERATE_RUN_NOISE_FLOOR")]
    pub run_noise_floor: Option<f64>,

    /// Samples a point needs for a verdict [default: 3].
    #[arg(long, env = "CACHERATE_MIN_SAMPLES")]
    pub min_samples: Option<usize>,

    /// Metrics whose verdicts fail the gate; the others are shown
    /// [default: all four].
    #[arg(long, num_args = 1.., value_delimiter = ',', env = "CACHERATE_GATE_METRICS")]
    pub gate_metrics: Option<Vec<GateMetric>>,

    /// Exit 4 when the verdict is inconclusive (else it passes).
    #[arg(long, env = "CACHERATE_FAIL_ON_INCONCLUSIVE")]
    pub fail_on_inconclusive: bool,
}

/// A metric a gate can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum GateMetric {
    InputThroughput,
    OutputThroughput,
    TtftP50,
    TtftP95,
}

/// `cacherate compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The run directory (a `cacherate run --output-dir`).
    pub run_dir: PathBuf,

    /// The baseline file, e.g. baselines/sim-quick.json.
    #[arg(long, env = "CACHERATE_BASELINE")]
    pub baseline: PathBuf,

    #[command(flatten)]
    pub verdict: VerdictArgs,
}

/// `cacherate report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The run directory (a `cacherate run --output-dir`).
    pub run_dir: PathBuf,
}

/// `cacherate gate`: every option of `run`, and the comparison's.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// The baseline file, e.g. baselines/sim-quick.json.
    #[arg(long, env = "CACHERATE_BASELINE", help_heading = "Gate")]
    pub baseline: PathBuf,

    /// Search each point's peak with the ramp instead of measuring at the
    /// baseline's load (costs a ramp per point; reports the peak found
    /// against the baseline's).
    #[arg(long, help_heading = "Gate")]
    pub search_peak: bool,

    /// Samples added at a point whose verdict is inconclusive before
    /// deciding [default: 3].
    #[arg(
        allow_negative_numbers = true,
        long,
        env = "CACHERATE_MAX_EXTRA_SAMPLES",
        help_heading = "Gate"
    )]
    pub max_extra_samples: Option<u32>,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub verdict: VerdictArgs,
}

/// `cacherate baseline …`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Run the sweep --runs times (the first finds each point's peak, the
    /// others measure at those peaks), or take finished runs with
    /// --from-run, and write baselines/NAME.json.
    #[command(args_override_self = true)]
    Refresh(Box<RefreshArgs>),
}

/// `cacherate baseline refresh`: every option of `run`, and these.
#[derive(Debug, Clone, Args)]
pub struct RefreshArgs {
    /// The baseline's name: baselines/NAME.json.
    pub name: String,

    /// Runs to make it of [default: 5]. Each is a fresh run directory
    /// under --output-dir/baseline-NAME/run-K; the command resumes them.
    #[arg(allow_negative_numbers = true, long, help_heading = "Baseline")]
    pub runs: Option<u32>,

    /// Make it of these finished run directories instead of running.
    #[arg(long, num_args = 1.., help_heading = "Baseline")]
    pub from_run: Vec<PathBuf>,

    /// Where baselines live.
    #[arg(long, default_value = "baselines", help_heading = "Baseline")]
    pub baselines_dir: PathBuf,

    /// Commit the baseline file on the current branch (git).
    #[arg(long, help_heading = "Baseline")]
    pub commit: bool,

    /// Make it even of runs that are incomplete, lack samples, measured
    /// other loads or failed their gate.
    #[arg(long, help_heading = "Baseline")]
    pub force: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

/// `cacherate calibrate`: every option of `run` and of the comparison.
#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    /// The baseline to calibrate; its file gets the run noise measured.
    #[arg(long, env = "CACHERATE_BASELINE", help_heading = "Calibrate")]
    pub baseline: PathBuf,

    /// A/A runs to make [default: 5], each under
    /// --output-dir/calibrate-NAME/run-K.
    #[arg(allow_negative_numbers = true, long, help_heading = "Calibrate")]
    pub runs: Option<u32>,

    /// Use these finished runs (of the baseline's configuration, at its
    /// loads) instead of running.
    #[arg(long, num_args = 1.., help_heading = "Calibrate")]
    pub from_run: Vec<PathBuf>,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub verdict: VerdictArgs,
}

/// `cacherate comment`. The token is read from GITHUB_TOKEN only, never
/// from the command line.
#[derive(Debug, Clone, Args)]
pub struct CommentArgs {
    /// The repository, OWNER/NAME [default: GITHUB_REPOSITORY].
    #[arg(long, env = "GITHUB_REPOSITORY")]
    pub repo: Option<String>,

    /// The pull request number [default: from the event in
    /// GITHUB_EVENT_PATH].
    #[arg(allow_negative_numbers = true, long)]
    pub pr: Option<u64>,

    /// The comment's markdown, as `compare` writes it.
    #[arg(long, default_value = "comment.md")]
    pub file: PathBuf,
}

/// `cacherate kv-size`.
#[derive(Debug, Clone, Args)]
pub struct KvSizeArgs {
    /// Model id to look up in the built-in table (e.g. meta-llama/Llama-3.1-8B).
    #[arg(long)]
    pub model: Option<String>,
    /// Context lengths, in tokens.
    #[arg(long, num_args = 1.., value_delimiter = ',', required = true)]
    pub context_sizes: Vec<u64>,
    /// Working set size in tokens.
    #[arg(allow_negative_numbers = true, long)]
    pub working_set_size: Option<u64>,
    /// Cached-prefix alignment in tokens.
    #[arg(long, default_value_t = 256)]
    pub chunk_size: u64,
    /// KV bytes per element: 1 (FP8) or 2 (FP16).
    #[arg(long, default_value_t = 2)]
    pub kv_cache_quantization: u8,
    /// Model layers (overrides the table).
    #[arg(allow_negative_numbers = true, long)]
    pub num_layers: Option<u32>,
    /// KV heads per layer (overrides the table).
    #[arg(allow_negative_numbers = true, long)]
    pub num_kv_heads: Option<u32>,
    /// Head dimension (overrides the table).
    #[arg(allow_negative_numbers = true, long)]
    pub head_dim: Option<u32>,
}
