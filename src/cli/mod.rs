//! The command line: clap structures that only parse. Precedence and
//! defaults are decided in [`crate::settings`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod run;
pub mod values;

use crate::sim::SimConfig;
pub use run::{ProfileArgs, RunArgs, RunOptionArgs};
pub use values::{
    ChunkTimes, FixedLoadSpec, Metric, Mode, PromptMode, ReinitStrategy, TokensPerReqMetric,
    TtftMetric,
};

/// What `cacherate --version` prints after the name: the crate's version
/// and the commit it was built from (build.rs: `git rev-parse`, else
/// `CACHERATE_COMMIT`, else the package's `.cargo_vcs_info.json`, else
/// `unknown`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CACHERATE_COMMIT"),
    ")"
);

/// Benchmark OpenAI-compatible LLM inference servers across KV-cache hit
/// rates, and gate changes in CI.
#[derive(Debug, Parser)]
#[command(name = "cacherate", version = VERSION, after_help = crate::exit::HELP)]
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
    /// Ask a server what a sweep needs and say how to fix what is missing:
    /// one row per check, ok / missing / wrong.
    #[command(after_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
}

/// What `cacherate doctor --help` says under its options.
pub const DOCTOR_HELP: &str = "\
Checks, in order: models (GET /v1/models), model (--model, else the first \
listed, as run chooses), server (kind and version), max_model_len, tokenizer \
(/tokenize, or --tokenizer loads), token_prompts (a /v1/completions prompt of \
token ids), stream_usage (stream_options.include_usage), cached_tokens (a \
prompt of 256 tokens sent twice: usage.prompt_tokens_details.cached_tokens > 0 \
the second time), metrics (/metrics and its prefix-cache counters), flush \
(what --flush-cache auto would use; doctor empties the prefix cache once).

Required for a sweep: models, model, tokenizer, token_prompts, stream_usage, \
and a prefix cache that caches (cached_tokens `wrong`). Optional (`missing` \
does not fail): server, max_model_len, cached_tokens not reported (achieved \
cache-hit rates are then unknown), metrics, flush.

Exit codes:
  0   a sweep can run (optional checks may be missing)
  2   usage error
  3   a sweep cannot run: the server is unreachable or lacks a required check";

/// `cacherate doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// The server's base URL, e.g. http://localhost:8000 [default with
    /// --serve: http://127.0.0.1:8000].
    #[arg(long, required_unless_present = "serve")]
    pub api_endpoint: Option<String>,

    /// Start the server to examine with this command (`sh -c`, its own
    /// process group; `{host}` and `{port}` become --api-endpoint's), wait
    /// until GET /v1/models answers, examine it, and stop it (SIGTERM,
    /// SIGKILL after 10 s), as `run --serve` does.
    #[arg(long, value_name = "CMD")]
    pub serve: Option<String>,

    /// Seconds the --serve server may take to answer GET /v1/models.
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
    pub serve_timeout: f64,

    /// Model id to check (default: the first id of /v1/models).
    #[arg(long, env = "CACHERATE_MODEL")]
    pub model: Option<String>,

    /// Tokenizer: a local tokenizer.json (or a directory with one) or a
    /// Hugging Face model id [default: the server's /tokenize].
    #[arg(long, env = "CACHERATE_TOKENIZER")]
    pub tokenizer: Option<String>,

    /// Bearer token for the server.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Seconds one probe request may take.
    #[arg(long, default_value_t = 120.0)]
    pub request_timeout: f64,

    /// Print the rows as one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// How a comparison decides: the policy of SPEC §5. Each may also come
/// from a profile (`confidence = 0.95`, …).
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
    pub gate_metrics: Option<Vec<Metric>>,

    /// Exit 4 when the verdict is inconclusive (else it passes); JUnit
    /// then counts inconclusive gated verdicts as failures.
    #[arg(
        long,
        env = "CACHERATE_FAIL_ON_INCONCLUSIVE",
        overrides_with = "no_fail_on_inconclusive"
    )]
    pub fail_on_inconclusive: bool,

    /// Let an inconclusive verdict pass even if a profile says otherwise.
    #[arg(long, overrides_with = "fail_on_inconclusive")]
    pub no_fail_on_inconclusive: bool,
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
    pub profiles: ProfileArgs,

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
    /// deciding; 0 decides at once [default: 3].
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
