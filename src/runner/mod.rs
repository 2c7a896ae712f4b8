//! Running a sweep: the points, their plans, the load phases, and what the
//! run records of itself.

mod embedded;
pub mod phase;
pub mod plan;
mod point;
mod provenance;
mod reproduce;
mod setup;
pub mod stop;
mod sustained;
mod sweep;
pub mod target;

pub use setup::workload;
pub use stop::Stop;
pub use sweep::{RunOutcome, effective_target_warnings, run, run_until};
