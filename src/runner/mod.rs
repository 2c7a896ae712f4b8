//! Running a sweep: the setup, the points, their plans, the load phases,
//! the commit of each phase, and what the run records of itself.

mod breaker;
mod checks;
mod commit;
mod continuous;
mod embedded;
mod load;
pub mod phase;
pub mod plan;
mod point;
mod provenance;
mod reproduce;
mod resume;
mod served;
mod setup;
pub mod stop;
mod sweep;
pub mod target;

pub use checks::effective_target_warnings;
pub use resume::workload;
pub use served::stop as stop_server;
pub use stop::Stop;
pub use sweep::{RunOutcome, run, run_on, run_until};
