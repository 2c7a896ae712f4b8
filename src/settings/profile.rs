//! One layer of options ([`Options`]) and the profile files they are read
//! from: the embedded defaults and built-in profiles, and a user's
//! `cacherate.toml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cli::RunArgs;
use crate::error::{Error, Result};

use super::options::{
    ChunkTimes, Mode, PromptMode, ReinitStrategy, TokensPerReqMetric, TtftMetric,
};

/// The embedded defaults and built-in profiles.
pub const DEFAULT_CONFIG: &str = include_str!("../default-config.toml");

/// The profile file read from the working directory when `--config` is not
/// given.
pub const CONFIG_FILE: &str = "cacherate.toml";

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
pub(super) struct ConfigFile {
    #[serde(default)]
    pub(super) defaults: Options,
    #[serde(default)]
    pub(super) profile: BTreeMap<String, Options>,
}

pub(super) fn parse_config(text: &str, origin: &str) -> Result<ConfigFile> {
    toml::from_str(text).map_err(|e| {
        Error::Usage(format!(
            "{origin} is not a valid cacherate profile file: {e}\nkeys are the long option \
             names of `cacherate run` without dashes, under [defaults] or [profile.NAME]"
        ))
    })
}

/// The profile-settable options given on the command line or in the
/// environment, as one layer.
pub(super) fn layer(args: &RunArgs) -> Options {
    let o = args.options.clone();
    // A flag, its --no- form, or neither (then a profile decides).
    let flag = |on: bool, off: bool| match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    Options {
        api_endpoint: args.api_endpoint.clone(),
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
        tokenizer: args.tokenizer.clone(),
        seed: o.seed,
        kv_cache_quantization: o.kv_cache_quantization,
        strict_time_window: flag(o.strict_time_window, o.no_strict_time_window),
        skip_graphs: flag(o.skip_graphs, o.no_skip_graphs),
        chunk_times: o.chunk_times,
        model: args.model.clone(),
        min_tokens_per_req: o.min_tokens_per_req,
        tokens_per_req_metric: o.tokens_per_req_metric,
        request_timeout: args.request_timeout,
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
