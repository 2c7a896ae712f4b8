//! One layer of options ([`Options`]) and the profile files they are read
//! from: the embedded defaults and built-in profiles, and a user's
//! `cacherate.toml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
