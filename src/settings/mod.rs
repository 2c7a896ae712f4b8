//! Resolves the options of every command that measures or judges — `run`,
//! `gate`, `compare`, `calibrate`, `baseline refresh` — in one place:
//! command line, then environment (clap reads `CACHERATE_*`), then the
//! chosen profile (a user's `cacherate.toml` over the built-in ones), then
//! the built-in defaults. Reads profile files only: the loads of a results
//! file or a baseline are handed in ([`ReadLoads`]).

mod gate;
mod layers;
mod load;
mod options;
mod profile;
mod resolve;
mod runs;
mod serve;
mod url;
mod validate;
mod verdict;

pub use gate::GateSettings;
pub use load::ReadLoads;
pub use options::{
    ChunkTimes, FixedLoadSpec, FlushCache, Metric, Mode, PromptMode, ReinitStrategy,
    TokensPerReqMetric, TtftMetric,
};
pub use profile::{CONFIG_FILE, DEFAULT_CONFIG, Options};
pub use resolve::RunSettings;
pub use runs::{AaPlan, CalibrateSettings, DEFAULT_RUNS, RefreshPlan, RefreshSettings, Runs};
pub use serve::{DEFAULT_SERVE_ENDPOINT, ServeSettings, mask_command, resolve as resolve_serve};
pub use url::{PASSWORD_MASK, mask_password, normalize_endpoint};
pub use validate::{MAX_CONTEXT_TOKENS, MAX_OUTPUT_TOKENS};
pub use verdict::{CompareSettings, ToleranceSettings, VerdictSettings};
