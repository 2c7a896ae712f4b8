//! Resolves the options of `cacherate run` in one place: command line, then
//! environment (clap reads `CACHERATE_*`), then the chosen profile (a user's
//! `cacherate.toml` over the built-in ones), then the built-in defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::cli::RunArgs;
use crate::error::{Error, Result};

/// The embedded defaults and built-in profiles.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// The longest context `--context-sizes` accepts: far beyond any server
/// today, and small enough that a prompt's tokens fit in memory.
pub const MAX_CONTEXT_TOKENS: u64 = 10_000_000;

/// The most `--output-tokens` a request may ask for.
pub const MAX_OUTPUT_TOKENS: u32 = 1_000_000;

/// The profile file read from the working directory when `--config` is not
/// given.
pub const CONFIG_FILE: &str = "cacherate.toml";

/// Which TTFT statistic of a phase is held against `--max-ttft`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TtftMetric {
    Max,
    Avg,
    P95,
}

/// Which per-request output-rate statistic is held against
/// `--min-tokens-per-req`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TokensPerReqMetric {
    Avg,
    P5,
    P10,
}

/// Whether and how the server's prefix cache is emptied before a warm-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushCache {
    None,
    /// Try vLLM's, SGLang's and llama.cpp's endpoints.
    Auto,
    /// POST to this URL.
    Url(#[serde(serialize_with = "serialize_masked_url")] String),
}

impl FlushCache {
    pub fn parse(text: &str) -> Result<FlushCache> {
        match text {
            "none" => Ok(FlushCache::None),
            "auto" => Ok(FlushCache::Auto),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                Ok(FlushCache::Url(url.to_string()))
            }
            other => Err(Error::Usage(format!(
                "--flush-cache takes none, auto or a URL to POST to, not {other:?}"
            ))),
        }
    }
}

/// How prompts are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PromptMode {
    /// Token ids to /v1/completions: exact prefixes.
    Tokens,
    /// Text to /v1/completions; the server re-tokenises it.
    Text,
    /// Text as a user message to /v1/chat/completions, through the chat
    /// template.
    Chat,
    /// Token ids, or text when the server refuses token ids.
    Auto,
}

/// What a `detailed_results` row keeps of its stream's chunk times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ChunkTimes {
    /// Every chunk's time (about 6 bytes a chunk).
    All,
    /// Only the chunk count, the first and last times (TTFT, TTLT) and the
    /// longest gap; the figures are computed from every chunk before the
    /// row is written either way.
    Summary,
}

/// How a point's load is chosen (the seed's `--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Ramp concurrency to the peak under the thresholds, then sample it.
    Adaptive,
    /// Measure the levels of --fixed-concurrency-levels (or of
    /// --concurrency-from) without a ramp.
    Fixed,
    /// One continuous load per point whose concurrency a controller
    /// adjusts every --assessment-period, the server never drained.
    Sustained,
}

/// When the working set is sent again to (re)fill the server's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum ReinitStrategy {
    /// Once per context size.
    Once,
    /// Before every cache rate.
    PerCacheRate,
    /// Before every phase.
    PerTest,
}

macro_rules! options {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        /// One layer of options: a profile, the defaults, or the command line.
        /// Every field is optional; [`Options::over`] stacks layers.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        pub struct Options {
            $($(#[$doc])* pub $field: Option<$ty>,)*
        }

        impl Options {
            /// `self` with every field `top` sets replaced by `top`'s value.
            pub fn over(self, top: Options) -> Options {
                Options { $($field: top.$field.or(self.$field),)* }
            }
        }
    };
}

options! {
    api_endpoint: Vec<String>,
    context_sizes: Vec<u64>,
    working_set_size: u64,
    output_tokens: u32,
    max_ttft: f64,
    ttft_metric: TtftMetric,
    test_duration: f64,
    ramp_duration: f64,
    num_retries: u32,
    start_concurrency: u32,
    concurrency_increment: u32,
    max_concurrency: u32,
    init_concurrency: u32,
    cache_hit_rates: Vec<u32>,
    chunk_size: u64,
    reinit_strategy: ReinitStrategy,
    random_working_set_selection: bool,
    output_dir: PathBuf,
    tokenizer: String,
    seed: u64,
    kv_cache_quantization: u8,
    strict_time_window: bool,
    skip_graphs: bool,
    chunk_times: ChunkTimes,
    model: String,
    min_tokens_per_req: f64,
    tokens_per_req_metric: TokensPerReqMetric,
    request_timeout: f64,
    max_error_rate: f64,
    circuit_breaker_failures: u32,
    circuit_breaker_window: f64,
    sim_time_scale: f64,
    num_layers: u32,
    num_kv_heads: u32,
    head_dim: u32,
    max_cache_rate_gap: f64,
    metrics_url: String,
    flush_cache: String,
    prompt_mode: PromptMode,
    mode: Mode,
    fixed_concurrency_levels: Vec<u32>,
    concurrency_from: PathBuf,
    warmup_fraction: f64,
    sample_duration: f64,
    assessment_period: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    defaults: Options,
    #[serde(default)]
    profile: BTreeMap<String, Options>,
}

fn parse_config(text: &str, origin: &str) -> Result<ConfigFile> {
    toml::from_str(text).map_err(|e| {
        Error::Usage(format!(
            "{origin} is not a valid cacherate profile file: {e}\nkeys are the long option \
             names of `cacherate run` without dashes, under [defaults] or [profile.NAME]"
        ))
    })
}

/// The options that decide what is measured: a run directory resumes only
/// when these match. Context sizes are not among them, so a run can be
/// resumed with fewer or more of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The endpoints, or the embedded simulator and its time scale: another
    /// server is another measurement.
    pub target: Vec<String>,
    pub model: String,
    pub prompt_mode: PromptMode,
    pub tokenizer: Option<String>,
    pub working_set_size: u64,
    pub output_tokens: u32,
    pub max_ttft: f64,
    pub ttft_metric: TtftMetric,
    pub test_duration: f64,
    pub ramp_duration: f64,
    pub num_retries: u32,
    pub start_concurrency: u32,
    pub concurrency_increment: u32,
    pub max_concurrency: u32,
    pub init_concurrency: u32,
    pub cache_hit_rates: Vec<u32>,
    pub chunk_size: u64,
    pub reinit_strategy: ReinitStrategy,
    pub random_working_set_selection: bool,
    pub seed: u64,
    pub strict_time_window: bool,
    pub min_tokens_per_req: Option<f64>,
    pub tokens_per_req_metric: TokensPerReqMetric,
    pub max_error_rate: f64,
    pub mode: Mode,
    /// The load of each point in fixed mode: the levels, or per point from
    /// --concurrency-from.
    pub fixed_load: Option<FixedLoadSpec>,
    pub warmup_fraction: f64,
    pub sample_duration: f64,
    /// Sustained mode's assessment period, seconds (absent in the other
    /// modes, so their stored workloads are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_period: Option<f64>,
}

/// Where fixed mode takes its levels from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixedLoadSpec {
    /// The same levels at every point, lowest first.
    Levels(Vec<u32>),
    /// One level per point, `(context, rate, concurrency)`, read from an
    /// earlier run's results.json or a baseline.
    PerPoint(Vec<(u64, u32, u32)>),
}

impl FixedLoadSpec {
    /// The levels to measure at a point.
    pub fn levels(&self, context: u64, rate: u32) -> Option<Vec<u32>> {
        match self {
            FixedLoadSpec::Levels(levels) => Some(levels.clone()),
            FixedLoadSpec::PerPoint(points) => points
                .iter()
                .find(|(c, r, _)| *c == context && *r == rate)
                .map(|(_, _, n)| vec![*n]),
        }
    }
}

impl Workload {
    /// The options that differ from `other`, as `name: old -> new`.
    pub fn differences(&self, other: &Workload) -> Vec<String> {
        let (serde_json::Value::Object(old), serde_json::Value::Object(new)) = (
            serde_json::to_value(other).expect("workload serializes"),
            serde_json::to_value(self).expect("workload serializes"),
        ) else {
            unreachable!("a struct serializes to an object");
        };
        new.iter()
            .filter(|(key, value)| old.get(*key) != Some(value))
            .map(|(key, value)| {
                let before = old.get(key).cloned().unwrap_or(serde_json::Value::Null);
                format!("--{}: {before} -> {value}", key.replace('_', "-"))
            })
            .collect()
    }
}

/// Fully resolved options of one `cacherate run`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    /// Base URLs without a trailing `/` or `/v1`; empty means the embedded
    /// simulator. A `user:password@` in them is sent as basic auth and
    /// written with the password masked.
    #[serde(serialize_with = "serialize_masked")]
    pub endpoints: Vec<String>,
    pub context_sizes: Vec<u64>,
    pub working_set_size: u64,
    pub output_tokens: u32,
    pub max_ttft: f64,
    pub ttft_metric: TtftMetric,
    pub test_duration: f64,
    pub ramp_duration: f64,
    pub num_retries: u32,
    pub start_concurrency: u32,
    pub concurrency_increment: u32,
    pub max_concurrency: u32,
    pub init_concurrency: u32,
    pub cache_hit_rates: Vec<u32>,
    pub chunk_size: u64,
    pub reinit_strategy: ReinitStrategy,
    pub random_working_set_selection: bool,
    pub output_dir: PathBuf,
    pub tokenizer: Option<String>,
    /// `None`: a seed is drawn at the start and recorded.
    pub seed: Option<u64>,
    pub kv_cache_quantization: u8,
    pub strict_time_window: bool,
    pub skip_graphs: bool,
    pub chunk_times: ChunkTimes,
    pub model: Option<String>,
    #[serde(skip)]
    pub api_key: Option<String>,
    pub min_tokens_per_req: Option<f64>,
    pub tokens_per_req_metric: TokensPerReqMetric,
    pub request_timeout: f64,
    pub max_error_rate: f64,
    /// Connection-level failures in a row that stop a point (0: never).
    pub circuit_breaker_failures: u32,
    /// Seconds without a success before they may.
    pub circuit_breaker_window: f64,
    pub sim_time_scale: f64,
    pub num_layers: Option<u32>,
    pub num_kv_heads: Option<u32>,
    pub head_dim: Option<u32>,
    /// Percentage points the achieved cache-hit rate may miss the target by
    /// before the point is flagged; `None`: max(0.5, one chunk / context).
    pub max_cache_rate_gap: Option<f64>,
    /// Where to read the server's prefix-cache counters, if anywhere.
    #[serde(serialize_with = "serialize_masked_option")]
    pub metrics_url: Option<String>,
    pub flush_cache: FlushCache,
    pub prompt_mode: PromptMode,
    pub mode: Mode,
    pub fixed_load: Option<FixedLoadSpec>,
    /// The file --concurrency-from named.
    pub concurrency_from: Option<PathBuf>,
    /// Share of each measured phase, at its start, not counted.
    pub warmup_fraction: f64,
    /// Seconds of each sample phase.
    pub sample_duration: f64,
    /// Sustained mode: seconds between the controller's decisions.
    pub assessment_period: f64,
    /// `(context, rate, samples)`: finished points to extend with more
    /// sample phases until they have that many (the gate's extra samples
    /// at inconclusive points). Not an option of `run`.
    pub sample_targets: Vec<(u64, u32, u32)>,
    pub profile: Option<String>,
    pub force_restart: bool,
    pub verbose: bool,
    pub quiet: bool,
}

fn required<T>(value: Option<T>, option: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::Usage(format!(
            "{option} is required: give it on the command line, or use a profile that sets \
             it (--profile quick)"
        ))
    })
}

/// Normalises an endpoint to `scheme://host[:port][/path]` without a
/// trailing `/` or `/v1`, so paths can be appended.
pub fn normalize_endpoint(endpoint: &str) -> Result<String> {
    let url = reqwest::Url::parse(endpoint).map_err(|e| {
        Error::Usage(format!(
            "--api-endpoint {:?} is not a URL ({e}); write it like \
             http://localhost:8000",
            mask_password(endpoint)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Usage(format!(
            "--api-endpoint {:?} must start with http:// or https://",
            mask_password(endpoint)
        )));
    }
    let mut text = url.as_str().trim_end_matches('/').to_string();
    if let Some(stripped) = text.strip_suffix("/v1") {
        text = stripped.to_string();
    }
    Ok(text)
}

/// `text` with the credentials of every URL in it (a comma-separated list
/// too) shown as `***`: `user:***@host`, or `***@host` for a token given
/// alone. Works on the text, so a URL that does not parse is masked too:
/// how files and messages name an endpoint.
pub fn mask_password(text: &str) -> String {
    text.split(',').map(mask_one).collect::<Vec<_>>().join(",")
}

fn mask_one(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    // The authority ends where a path, a query or the text around the URL
    // (in a message) begins.
    let end = rest
        .find(|c: char| matches!(c, '/' | '?' | '#' | ')' | '"' | '\'' | '>') || c.is_whitespace())
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let masked = match authority[..at].split_once(':') {
        Some((user, _)) => format!("{user}:{PASSWORD_MASK}"),
        None => PASSWORD_MASK.to_string(),
    };
    format!("{}{masked}{}", &url[..scheme_end], &rest[at..])
}

/// What stands for a password in files and messages.
pub const PASSWORD_MASK: &str = "***";

fn serialize_masked<S: serde::Serializer>(
    urls: &[String],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_seq(urls.iter().map(|url| mask_password(url)))
}

fn serialize_masked_url<S: serde::Serializer>(
    url: &str,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&mask_password(url))
}

fn serialize_masked_option<S: serde::Serializer>(
    url: &Option<String>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_some(&mask_password(url)),
        None => serializer.serialize_none(),
    }
}

impl RunSettings {
    /// Resolves `args` over the environment, the profile and the defaults.
    /// `config_dir` is where `cacherate.toml` is looked for when `--config`
    /// is not given.
    pub fn resolve(args: RunArgs, config_dir: &Path) -> Result<RunSettings> {
        let builtin = parse_config(DEFAULT_CONFIG, "the built-in configuration")?;
        let user = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Usage(format!("cannot read --config {}: {e}", path.display()))
                })?;
                Some(parse_config(&text, &path.display().to_string())?)
            }
            None => {
                let path = config_dir.join(CONFIG_FILE);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Some(parse_config(&text, &path.display().to_string())?),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        return Err(Error::Usage(format!(
                            "cannot read {}: {e}; fix it or point --config elsewhere",
                            path.display()
                        )));
                    }
                }
            }
        };
        let mut layered = builtin.defaults.clone();
        if let Some(user) = &user {
            layered = layered.over(user.defaults.clone());
        }
        if let Some(name) = &args.profile {
            let builtin_profile = builtin.profile.get(name);
            let user_profile = user.as_ref().and_then(|user| user.profile.get(name));
            if builtin_profile.is_none() && user_profile.is_none() {
                let mut known: Vec<&String> = builtin.profile.keys().collect();
                if let Some(user) = &user {
                    known.extend(user.profile.keys());
                }
                known.sort();
                known.dedup();
                return Err(Error::Usage(format!(
                    "no profile named {name:?}; known profiles: {}",
                    known
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if let Some(profile) = builtin_profile {
                layered = layered.over(profile.clone());
            }
            if let Some(profile) = user_profile {
                layered = layered.over(profile.clone());
            }
        }
        let o = layered.over(args.layer());
        let endpoints = o
            .api_endpoint
            .unwrap_or_default()
            .iter()
            .map(|e| normalize_endpoint(e))
            .collect::<Result<Vec<_>>>()?;
        let mut cache_hit_rates = required(o.cache_hit_rates, "--cache-hit-rates")?;
        cache_hit_rates.sort_unstable();
        cache_hit_rates.dedup();
        let settings = RunSettings {
            endpoints,
            context_sizes: required(o.context_sizes, "--context-sizes")?,
            working_set_size: required(o.working_set_size, "--working-set-size")?,
            output_tokens: required(o.output_tokens, "--output-tokens")?,
            max_ttft: required(o.max_ttft, "--max-ttft")?,
            ttft_metric: required(o.ttft_metric, "--ttft-metric")?,
            test_duration: required(o.test_duration, "--test-duration")?,
            ramp_duration: required(o.ramp_duration, "--ramp-duration")?,
            num_retries: required(o.num_retries, "--num-retries")?,
            start_concurrency: required(o.start_concurrency, "--start-concurrency")?,
            concurrency_increment: required(o.concurrency_increment, "--concurrency-increment")?,
            max_concurrency: required(o.max_concurrency, "--max-concurrency")?,
            init_concurrency: required(o.init_concurrency, "--init-concurrency")?,
            cache_hit_rates,
            chunk_size: required(o.chunk_size, "--chunk-size")?,
            reinit_strategy: required(o.reinit_strategy, "--reinit-strategy")?,
            random_working_set_selection: o.random_working_set_selection.unwrap_or(false),
            output_dir: required(o.output_dir, "--output-dir")?,
            tokenizer: o.tokenizer,
            seed: o.seed,
            kv_cache_quantization: required(o.kv_cache_quantization, "--kv-cache-quantization")?,
            strict_time_window: o.strict_time_window.unwrap_or(false),
            skip_graphs: o.skip_graphs.unwrap_or(false),
            chunk_times: o.chunk_times.unwrap_or(ChunkTimes::All),
            model: o.model,
            api_key: args.api_key.filter(|key| !key.is_empty()),
            min_tokens_per_req: o.min_tokens_per_req,
            tokens_per_req_metric: required(o.tokens_per_req_metric, "--tokens-per-req-metric")?,
            request_timeout: required(o.request_timeout, "--request-timeout")?,
            max_error_rate: required(o.max_error_rate, "--max-error-rate")?,
            circuit_breaker_failures: required(
                o.circuit_breaker_failures,
                "--circuit-breaker-failures",
            )?,
            circuit_breaker_window: required(o.circuit_breaker_window, "--circuit-breaker-window")?,
            sim_time_scale: required(o.sim_time_scale, "--sim-time-scale")?,
            num_layers: o.num_layers,
            num_kv_heads: o.num_kv_heads,
            head_dim: o.head_dim,
            max_cache_rate_gap: o.max_cache_rate_gap,
            metrics_url: o.metrics_url.filter(|url| url != "none"),
            flush_cache: FlushCache::parse(o.flush_cache.as_deref().unwrap_or("none"))?,
            prompt_mode: o.prompt_mode.unwrap_or(PromptMode::Tokens),
            mode: o.mode.unwrap_or(Mode::Adaptive),
            fixed_load: None,
            concurrency_from: o.concurrency_from,
            warmup_fraction: required(o.warmup_fraction, "--warmup-fraction")?,
            sample_duration: match o.sample_duration {
                Some(seconds) => seconds,
                None => required(o.ramp_duration, "--ramp-duration")?,
            },
            assessment_period: required(o.assessment_period, "--assessment-period")?,
            sample_targets: Vec::new(),
            profile: args.profile,
            force_restart: args.force_restart,
            verbose: args.verbose,
            quiet: args.quiet,
        };
        let mut settings = settings;
        settings.fixed_load = settings.fixed_load_spec(o.fixed_concurrency_levels)?;
        settings.validate()?;
        Ok(settings)
    }

    /// The fixed mode's load, from its levels or from a results file.
    fn fixed_load_spec(&self, levels: Option<Vec<u32>>) -> Result<Option<FixedLoadSpec>> {
        match (self.mode, levels, &self.concurrency_from) {
            (Mode::Adaptive | Mode::Sustained, None, None) => Ok(None),
            (Mode::Adaptive | Mode::Sustained, _, _) => Err(Error::Usage(
                "--fixed-concurrency-levels and --concurrency-from go with --mode fixed".into(),
            )),
            (Mode::Fixed, Some(_), Some(_)) => Err(Error::Usage(
                "--mode fixed takes --fixed-concurrency-levels or --concurrency-from, not both"
                    .into(),
            )),
            (Mode::Fixed, None, None) => Err(Error::Usage(
                "--mode fixed needs the load: --fixed-concurrency-levels 8 16 32, or \
                 --concurrency-from an earlier run's results.json (or a baseline)"
                    .into(),
            )),
            (Mode::Fixed, Some(mut levels), None) => {
                if levels.is_empty() || levels.contains(&0) {
                    return Err(Error::Usage(
                        "--fixed-concurrency-levels needs one or more levels above 0, e.g. 8 16 32"
                            .into(),
                    ));
                }
                levels.sort_unstable();
                levels.dedup();
                Ok(Some(FixedLoadSpec::Levels(levels)))
            }
            (Mode::Fixed, None, Some(path)) => {
                let points = concurrency_from(path)?;
                let missing: Vec<String> = self
                    .context_sizes
                    .iter()
                    .flat_map(|&c| self.cache_hit_rates.iter().map(move |&r| (c, r)))
                    .filter(|(c, r)| !points.iter().any(|(pc, pr, _)| pc == c && pr == r))
                    .map(|(c, r)| format!("ctx {c} at {r}%"))
                    .collect();
                if !missing.is_empty() {
                    return Err(Error::Usage(format!(
                        "--concurrency-from {} has no load for {}; measure those points in \
                         adaptive mode first, or leave them out of --context-sizes and \
                         --cache-hit-rates",
                        path.display(),
                        missing.join(", ")
                    )));
                }
                Ok(Some(FixedLoadSpec::PerPoint(points)))
            }
        }
    }

    fn validate(&self) -> Result<()> {
        let fail = |message: String| Err(Error::Usage(message));
        let flush_url = match &self.flush_cache {
            FlushCache::Url(url) => Some(("--flush-cache", url)),
            _ => None,
        };
        let urls = self
            .endpoints
            .iter()
            .map(|url| ("--api-endpoint", url))
            .chain(self.metrics_url.iter().map(|url| ("--metrics-url", url)))
            .chain(flush_url);
        for (option, url) in urls {
            if self.api_key.is_some() && mask_password(url) != *url {
                return fail(format!(
                    "{option} {} carries credentials and --api-key is given: a request has one \
                     Authorization header; give the credentials one way",
                    mask_password(url)
                ));
            }
        }
        if self.context_sizes.is_empty() || self.context_sizes.contains(&0) {
            return fail("--context-sizes needs one or more sizes above 0, e.g. 8000 32000".into());
        }
        if let Some(&huge) = self.context_sizes.iter().find(|&&c| c > MAX_CONTEXT_TOKENS) {
            return fail(format!(
                "--context-sizes {huge} is above {MAX_CONTEXT_TOKENS} tokens, longer than any \
                 server's context; give sizes in tokens, e.g. 8000 32000"
            ));
        }
        if self.working_set_size == 0 {
            return fail("--working-set-size must be above 0 tokens".into());
        }
        if let Some(&largest) = self.context_sizes.iter().max()
            && self.working_set_size < largest
        {
            return fail(format!(
                "--working-set-size ({}) is smaller than one context ({largest} tokens): the \
                 working set is a number of whole prompts, so give at least {largest}, e.g. \
                 {}",
                self.working_set_size,
                largest.saturating_mul(8)
            ));
        }
        if self.output_tokens == 0 || self.output_tokens > MAX_OUTPUT_TOKENS {
            return fail(format!(
                "--output-tokens must be from 1 to {MAX_OUTPUT_TOKENS}, got {}",
                self.output_tokens
            ));
        }
        if let Some(rate) = self.cache_hit_rates.iter().find(|&&rate| rate > 100) {
            return fail(format!(
                "--cache-hit-rates are percentages: {rate} is above 100"
            ));
        }
        if self.cache_hit_rates.is_empty() {
            return fail("--cache-hit-rates needs at least one rate".into());
        }
        if self.chunk_size == 0 {
            return fail("--chunk-size must be at least 1 token".into());
        }
        for (name, value) in [
            ("--max-ttft", self.max_ttft),
            ("--test-duration", self.test_duration),
            ("--ramp-duration", self.ramp_duration),
            ("--request-timeout", self.request_timeout),
            ("--circuit-breaker-window", self.circuit_breaker_window),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return fail(format!(
                    "{name} must be a number of seconds above 0, got {value}"
                ));
            }
        }
        for (name, value) in [
            ("--start-concurrency", self.start_concurrency),
            ("--concurrency-increment", self.concurrency_increment),
            ("--init-concurrency", self.init_concurrency),
        ] {
            if value == 0 {
                return fail(format!("{name} must be at least 1"));
            }
        }
        if self.max_concurrency < self.start_concurrency {
            return fail(format!(
                "--max-concurrency ({}) is below --start-concurrency ({})",
                self.max_concurrency, self.start_concurrency
            ));
        }
        if !matches!(self.kv_cache_quantization, 1 | 2) {
            return fail(format!(
                "--kv-cache-quantization is bytes per element: 1 (FP8) or 2 (FP16), got {}",
                self.kv_cache_quantization
            ));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return fail(format!(
                "--max-error-rate is a share between 0 and 1, got {}",
                self.max_error_rate
            ));
        }
        if let Some(min) = self.min_tokens_per_req
            && !(min.is_finite() && min >= 0.0)
        {
            return fail(format!("--min-tokens-per-req must be >= 0, got {min}"));
        }
        let min_phase = self.ramp_duration.min(10.0);
        if self.test_duration < min_phase {
            return fail(format!(
                "--test-duration ({} s) is shorter than the shortest phase that may run, \
                 min(10 s, --ramp-duration) = {min_phase} s: raise it or lower --ramp-duration",
                self.test_duration
            ));
        }
        if !(self.sim_time_scale.is_finite() && self.sim_time_scale > 0.0) {
            return fail(format!(
                "--sim-time-scale must be above 0, got {}",
                self.sim_time_scale
            ));
        }
        if !(self.warmup_fraction.is_finite() && (0.0..0.9).contains(&self.warmup_fraction)) {
            return fail(format!(
                "--warmup-fraction is the share of each phase not counted, from 0 to below \
                 0.9; got {}",
                self.warmup_fraction
            ));
        }
        if !(self.sample_duration.is_finite() && self.sample_duration > 0.0) {
            return fail(format!(
                "--sample-duration must be a number of seconds above 0, got {}",
                self.sample_duration
            ));
        }
        if !(self.assessment_period.is_finite() && self.assessment_period > 0.0) {
            return fail(format!(
                "--assessment-period must be a number of seconds above 0, got {}",
                self.assessment_period
            ));
        }
        if self.mode == Mode::Sustained && self.test_duration < self.assessment_period {
            return fail(format!(
                "--mode sustained runs --test-duration ({} s) in periods of \
                 --assessment-period ({} s): the test is shorter than one period; raise \
                 --test-duration or lower --assessment-period",
                self.test_duration, self.assessment_period
            ));
        }
        if self.mode == Mode::Fixed && self.num_retries == 0 {
            return fail(
                "--mode fixed measures --num-retries samples at each level: give at least 1".into(),
            );
        }
        if let Some(gap) = self.max_cache_rate_gap
            && !(gap.is_finite() && gap >= 0.0)
        {
            return fail(format!(
                "--max-cache-rate-gap is in percentage points, >= 0; got {gap}"
            ));
        }
        Ok(())
    }

    /// The allowed gap, in percentage points, between the effective
    /// target and the achieved cache-hit rate at a context: the option, or
    /// max(0.5, one server KV block as a share of the context) — a server
    /// never reuses the block that holds a prompt's last token.
    pub fn cache_rate_gap(&self, context: u64, server_block_tokens: u64) -> f64 {
        self.max_cache_rate_gap.unwrap_or_else(|| {
            let rounded = crate::kvsize::round_up(context, self.chunk_size) as f64;
            (100.0 * server_block_tokens as f64 / rounded).max(0.5)
        })
    }

    /// The options a resumed run must share with the stored one.
    pub fn workload(&self, model: &str, seed: u64) -> Workload {
        let target = if self.endpoints.is_empty() {
            vec![format!(
                "embedded simulator, --sim-time-scale {}",
                self.sim_time_scale
            )]
        } else {
            self.endpoints
                .iter()
                .map(|url| mask_password(url))
                .collect()
        };
        Workload {
            target,
            model: model.to_string(),
            prompt_mode: self.prompt_mode,
            tokenizer: self.tokenizer.clone(),
            working_set_size: self.working_set_size,
            output_tokens: self.output_tokens,
            max_ttft: self.max_ttft,
            ttft_metric: self.ttft_metric,
            test_duration: self.test_duration,
            ramp_duration: self.ramp_duration,
            num_retries: self.num_retries,
            start_concurrency: self.start_concurrency,
            concurrency_increment: self.concurrency_increment,
            max_concurrency: self.max_concurrency,
            init_concurrency: self.init_concurrency,
            cache_hit_rates: self.cache_hit_rates.clone(),
            chunk_size: self.chunk_size,
            reinit_strategy: self.reinit_strategy,
            random_working_set_selection: self.random_working_set_selection,
            seed,
            strict_time_window: self.strict_time_window,
            min_tokens_per_req: self.min_tokens_per_req,
            tokens_per_req_metric: self.tokens_per_req_metric,
            max_error_rate: self.max_error_rate,
            mode: self.mode,
            fixed_load: self.fixed_load.clone(),
            warmup_fraction: self.warmup_fraction,
            sample_duration: self.sample_duration,
            assessment_period: (self.mode == Mode::Sustained).then_some(self.assessment_period),
        }
    }
}

/// The `(context, rate, concurrency)` of every point of an earlier run's
/// `results.json` or of a baseline: any JSON file with a `points` list
/// whose entries carry `context_size`, `cache_hit_rate` and
/// `peak_concurrency`.
pub fn concurrency_from(path: &Path) -> Result<Vec<(u64, u32, u32)>> {
    #[derive(Deserialize)]
    struct Point {
        context_size: u64,
        cache_hit_rate: u32,
        peak_concurrency: u32,
    }
    #[derive(Deserialize)]
    struct File {
        points: Vec<Point>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read --concurrency-from {}: {e}",
            path.display()
        ))
    })?;
    let file: File = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "--concurrency-from {} is not a results.json or baseline with points \
             (context_size, cache_hit_rate, peak_concurrency): {e}",
            path.display()
        ))
    })?;
    if let Some(bad) = file.points.iter().find(|p| p.peak_concurrency == 0) {
        return Err(Error::Usage(format!(
            "--concurrency-from {}: ctx {} at {}% has concurrency 0",
            path.display(),
            bad.context_size,
            bad.cache_hit_rate
        )));
    }
    Ok(file
        .points
        .into_iter()
        .map(|p| (p.context_size, p.cache_hit_rate, p.peak_concurrency))
        .collect())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn resolve(args: &[&str], dir: &Path) -> Result<RunSettings> {
        let mut argv = vec!["cacherate", "run"];
        argv.extend_from_slice(args);
        let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("run command");
        };
        RunSettings::resolve(*args, dir)
    }

    #[test]
    fn seed_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(
            &["--context-sizes", "8000", "--working-set-size", "100000"],
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.output_tokens, 256);
        assert_eq!(s.max_ttft, 2.0);
        assert_eq!(s.ttft_metric, TtftMetric::P95);
        assert_eq!(s.test_duration, 300.0);
        assert_eq!(s.ramp_duration, 60.0);
        assert_eq!(s.num_retries, 3);
        assert_eq!((s.start_concurrency, s.concurrency_increment), (2, 2));
        assert_eq!((s.max_concurrency, s.init_concurrency), (1000, 16));
        assert_eq!(s.cache_hit_rates, (0..=100).step_by(5).collect::<Vec<_>>());
        assert_eq!(s.chunk_size, 256);
        assert_eq!(s.reinit_strategy, ReinitStrategy::Once);
        assert_eq!(s.output_dir, PathBuf::from("./output"));
        assert_eq!(s.kv_cache_quantization, 2);
        assert!(!s.strict_time_window && !s.random_working_set_selection && !s.skip_graphs);
        assert!(s.endpoints.is_empty() && s.seed.is_none() && s.tokenizer.is_none());
    }

    #[test]
    fn command_line_beats_user_profile_beats_builtin_profile_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[defaults]\nchunk-size = 128\n[profile.quick]\nmax-ttft = 0.5\noutput-tokens = 8\n",
        )
        .unwrap();
        let s = resolve(&["--profile", "quick", "--output-tokens", "16"], dir.path()).unwrap();
        assert_eq!(s.output_tokens, 16, "command line wins");
        assert_eq!(s.max_ttft, 0.5, "user profile over built-in profile");
        assert_eq!(s.ramp_duration, 3.0, "built-in profile over defaults");
        assert_eq!(s.chunk_size, 128, "user defaults over built-in defaults");
        assert_eq!(s.num_retries, 3);
        assert_eq!(s.cache_hit_rates, vec![0, 50, 100]);
    }

    #[test]
    fn a_no_flag_turns_off_what_a_profile_turns_on() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[profile.strict]\ncontext-sizes = [512]\nworking-set-size = 1024\n\
             strict-time-window = true\n",
        )
        .unwrap();
        let s = resolve(
            &["--profile", "strict", "--no-strict-time-window"],
            dir.path(),
        )
        .unwrap();
        assert!(!s.strict_time_window);
        let s = resolve(&["--profile", "strict"], dir.path()).unwrap();
        assert!(s.strict_time_window);
    }

    #[test]
    fn unknown_profile_and_bad_file_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let error = resolve(&["--profile", "nope"], dir.path()).unwrap_err();
        assert!(
            error.to_string().contains("known profiles: full, quick"),
            "{error}"
        );
        std::fs::write(dir.path().join(CONFIG_FILE), "[profile.x]\nmax-ttf = 1\n").unwrap();
        let error = resolve(&["--profile", "x"], dir.path()).unwrap_err();
        assert!(error.to_string().contains("max-ttf"), "{error}");
        assert_eq!(error.exit_code(), crate::exit::USAGE);
    }

    #[test]
    fn required_and_invalid_options_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let error = resolve(&["--working-set-size", "1000"], dir.path()).unwrap_err();
        assert!(error.to_string().contains("--context-sizes is required"));
        let error = resolve(
            &["--profile", "quick", "--cache-hit-rates", "0", "150"],
            dir.path(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("above 100"));
        let error = resolve(
            &["--profile", "quick", "--api-endpoint", "localhost"],
            dir.path(),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("http://localhost:8000"),
            "{error}"
        );
    }

    #[test]
    fn endpoints_are_normalised() {
        assert_eq!(
            normalize_endpoint("http://h:8000/v1/").unwrap(),
            "http://h:8000"
        );
        assert_eq!(
            normalize_endpoint("https://h/api").unwrap(),
            "https://h/api"
        );
    }

    #[test]
    fn rates_are_sorted_and_fractional_durations_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(
            &[
                "--profile",
                "quick",
                "--cache-hit-rates",
                "100",
                "0",
                "50",
                "--ramp-duration",
                "0.5",
            ],
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.cache_hit_rates, vec![0, 50, 100]);
        assert_eq!(s.ramp_duration, 0.5);
    }

    #[test]
    fn workload_differences_name_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(&["--profile", "quick"], dir.path()).unwrap();
        let a = s.workload("m", 1);
        let mut b = a.clone();
        b.max_ttft = 2.0;
        assert_eq!(b.differences(&a), vec!["--max-ttft: 1.0 -> 2.0"]);
    }

    #[test]
    fn modes_take_their_load_and_refuse_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let quick = |extra: &[&str]| {
            let mut args = vec!["--profile", "quick"];
            args.extend_from_slice(extra);
            resolve(&args, dir.path())
        };
        assert_eq!(quick(&[]).unwrap().mode, Mode::Adaptive);
        assert_eq!(quick(&[]).unwrap().sample_duration, 3.0, "--ramp-duration");
        let s = quick(&[
            "--mode",
            "fixed",
            "--fixed-concurrency-levels",
            "16",
            "4",
            "4",
        ])
        .unwrap();
        assert_eq!(s.fixed_load, Some(FixedLoadSpec::Levels(vec![4, 16])));
        let s = quick(&["--mode", "sustained", "--assessment-period", "5"]).unwrap();
        assert_eq!((s.mode, s.assessment_period), (Mode::Sustained, 5.0));
        assert_eq!(s.workload("m", 1).assessment_period, Some(5.0));
        assert_eq!(quick(&[]).unwrap().workload("m", 1).assessment_period, None);
        for (extra, says) in [
            (
                &["--mode", "sustained", "--assessment-period", "20"][..],
                "shorter than one period",
            ),
            (
                &["--mode", "sustained", "--fixed-concurrency-levels", "4"][..],
                "go with --mode fixed",
            ),
            (&["--assessment-period", "0"][..], "above 0"),
            (&["--mode", "fixed"][..], "needs the load"),
            (
                &["--fixed-concurrency-levels", "4"][..],
                "go with --mode fixed",
            ),
            (
                &["--mode", "fixed", "--fixed-concurrency-levels", "0"][..],
                "above 0",
            ),
            (
                &[
                    "--mode",
                    "fixed",
                    "--fixed-concurrency-levels",
                    "4",
                    "--num-retries",
                    "0",
                ][..],
                "at least 1",
            ),
            (&["--warmup-fraction", "0.95"][..], "--warmup-fraction"),
            (&["--sample-duration", "0"][..], "--sample-duration"),
            (
                &["--mode", "fixed", "--concurrency-from", "/nonexistent.json"][..],
                "cannot read --concurrency-from",
            ),
        ] {
            let error = quick(extra).unwrap_err();
            assert_eq!(error.exit_code(), crate::exit::USAGE);
            assert!(error.to_string().contains(says), "{extra:?}: {error}");
        }
    }

    #[test]
    fn sizes_are_bounded_and_the_working_set_holds_a_context() {
        let dir = tempfile::tempdir().unwrap();
        for (args, says) in [
            (
                &[
                    "--context-sizes",
                    "99999999999",
                    "--working-set-size",
                    "99999999999",
                ][..],
                "above 10000000 tokens",
            ),
            (
                &["--context-sizes", "8000", "--working-set-size", "1000"][..],
                "smaller than one context (8000 tokens)",
            ),
            (
                &[
                    "--context-sizes",
                    "8000",
                    "--working-set-size",
                    "80000",
                    "--output-tokens",
                    "4000000000",
                ][..],
                "--output-tokens must be from 1 to 1000000",
            ),
        ] {
            let error = resolve(args, dir.path()).unwrap_err();
            assert_eq!(error.exit_code(), crate::exit::USAGE);
            assert!(error.to_string().contains(says), "{args:?}: {error}");
        }
    }
}
