//! Running a sweep: the peak search, the load phases and the orchestration.

mod phase;
pub mod ramp;
mod sweep;

pub use sweep::{RunOutcome, render_table, run};
