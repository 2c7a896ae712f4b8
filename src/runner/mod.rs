//! Running a sweep: the peak search, the load phases and the orchestration.

pub mod phase;
pub mod ramp;
mod sweep;
pub mod target;

pub use sweep::{RunOutcome, render_table, run};
