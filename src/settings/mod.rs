//! Resolves the options of `cacherate run` in one place: command line, then
//! environment (clap reads `CACHERATE_*`), then the chosen profile (a user's
//! `cacherate.toml` over the built-in ones), then the built-in defaults.

mod options;
mod profile;
mod resolve;
mod url;
mod validate;
mod workload;

pub use options::{
    ChunkTimes, FixedLoadSpec, FlushCache, Mode, PromptMode, ReinitStrategy, TokensPerReqMetric,
    TtftMetric,
};
pub use profile::{CONFIG_FILE, DEFAULT_CONFIG, Options};
pub use resolve::RunSettings;
pub use url::{PASSWORD_MASK, mask_password, normalize_endpoint};
pub use validate::{MAX_CONTEXT_TOKENS, MAX_OUTPUT_TOKENS};
pub use workload::concurrency_from;
