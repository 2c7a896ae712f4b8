//! Baselines (SPEC §5): `baselines/NAME.json`, the stored per-point samples
//! of one or more accepted runs of the same workload, with their
//! provenance, the workload options a comparison must share, and the
//! run-to-run noise the runs show.

mod build;
mod commit;
mod diff;
mod loads;
mod run;
mod schema;

pub use build::{RunRefusal, build, refreshed_by};
pub use commit::commit;
pub use diff::difference;
pub use loads::read_loads;
pub use run::{RunData, load_run};
pub use schema::{
    BASELINE_SCHEMA_VERSION, Baseline, BaselinePoint, BaselineRun, Calibration, Comparable,
    GitState, NoiseEstimate, Provenance, RunSamples, check_name,
};
