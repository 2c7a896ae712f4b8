//! The run directory (SPEC §4): every file a later look needs, written as
//! the run goes. JSON and summary files are replaced by atomic rename; the
//! per-request and per-phase CSVs are appended after each phase and their
//! committed lengths recorded in `progress.json`, so a killed run loses at
//! most the phase in flight and a resumed run cuts off its partial rows.

mod git;
mod journal;
mod point;
mod rows;
mod run_dir;
mod run_info;
mod schema;
mod timing;
mod workload;

/// A point's samples are persisted in `results.json` as stats computes
/// them.
pub use crate::stats::Sample;
pub use git::{GitState, git_state};
pub use journal::{Journal, Recovered, UNFINISHED_SUFFIX, unfinished_phase};
pub use point::{AtPoint, PointId, find, position};
pub use rows::PhaseRow;
pub use run_dir::{PROGRESS, RESULTS, RUN, RunDir, SERVER_LOG, detailed_results, phase_metadata};
pub use run_info::{Fingerprint, RUN_INFO_SCHEMA_VERSION, RunInfo, RunStatus, ServedServer};
pub use schema::{
    CurrentPoint, Decision, PeriodDecision, PhaseKind, PhaseRecord, PlanKind, PointResult,
    PointStatus, Progress, Results, SCHEMA_VERSION,
};
pub use timing::{LoadTime, load_time};
pub use workload::Workload;
