//! One layer of options ([`Options`]) and the profile files they are read
//! from: the embedded defaults and built-in profiles, and a user's
//! `cacherate.toml`, stacked in [`load`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::ProfileArgs;
use crate::error::{Error, Result};

use super::options::{
    ChunkTimes, Metric, Mode, PromptMode, ReinitStrategy, TokensPerReqMetric, TtftMetric,
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
    serve: String,
    serve_timeout: f64,
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
    min_sample_cycles: f64,
    min_sample_requests: u64,
    lengthen_samples: bool,
    assessment_period: f64,
    // The verdict's (compare, gate, calibrate).
    confidence: f64,
    tolerance_throughput: f64,
    tolerance_ttft_p50: f64,
    tolerance_ttft_p95: f64,
    run_noise_floor: f64,
    min_samples: usize,
    gate_metrics: Vec<Metric>,
    fail_on_inconclusive: bool,
    // The gate's.
    max_extra_samples: u32,
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
             names of `cacherate run` and of the verdict (`compare`, `gate`) without dashes, \
             under [defaults] or [profile.NAME]"
        ))
    })
}

/// The user's profile file: `--config`, else `cacherate.toml` in
/// `config_dir` when there is one.
fn user_config(config: Option<&Path>, config_dir: &Path) -> Result<Option<ConfigFile>> {
    if let Some(path) = config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read --config {}: {e}", path.display())))?;
        return parse_config(&text, &path.display().to_string()).map(Some);
    }
    let path = config_dir.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_config(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Usage(format!(
            "cannot read {}: {e}; fix it or point --config elsewhere",
            path.display()
        ))),
    }
}

/// The profile layers stacked, lowest first: the built-in defaults, the
/// user's defaults, the built-in profile, the user's profile. The command
/// line and the environment go over them (see `layers`).
pub(super) fn load(args: &ProfileArgs, config_dir: &Path) -> Result<Options> {
    let builtin = parse_config(DEFAULT_CONFIG, "the built-in configuration")?;
    let user = user_config(args.config.as_deref(), config_dir)?;
    let mut layered = builtin.defaults.clone();
    if let Some(user) = &user {
        layered = layered.over(user.defaults.clone());
    }
    let Some(name) = &args.profile else {
        return Ok(layered);
    };
    let builtin_profile = builtin.profile.get(name);
    let user_profile = user.as_ref().and_then(|user| user.profile.get(name));
    if builtin_profile.is_none() && user_profile.is_none() {
        let mut known: Vec<&str> = builtin.profile.keys().map(String::as_str).collect();
        if let Some(user) = &user {
            known.extend(user.profile.keys().map(String::as_str));
        }
        known.sort_unstable();
        known.dedup();
        return Err(Error::Usage(format!(
            "no profile named {name:?}; known profiles: {}",
            known.join(", ")
        )));
    }
    for profile in [builtin_profile, user_profile].into_iter().flatten() {
        layered = layered.over(profile.clone());
    }
    Ok(layered)
}
