//! Running a sweep: the setup, the points, their plans, the load phases,
//! the commit of each phase, and what the run records of itself.

mod breaker;
mod commit;
mod continuous;
mod embedded;
mod load;
pub mod phase;
pub mod plan;
mod point;
mod provenance;
mod reproduce;
mod served;
mod setup;
pub mod stop;
mod sweep;
pub mod target;

pub use served::stop as stop_server;
pub use setup::{effective_target_warnings, workload};
pub use stop::Stop;
pub use sweep::{RunOutcome, run, run_on, run_until};
