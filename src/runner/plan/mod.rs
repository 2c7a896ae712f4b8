//! A point's plan: which phases to run at which load, decided phase by
//! phase from the outcomes so far, so a resumed run replays it from the
//! stored phases. Each plan is a pure state machine in its own file; a new
//! way of choosing load is a file here and a variant of [`Plan`].

mod common;
pub mod fixed;
pub mod peak;
pub mod sustained;

pub use common::{
    Lengthening, Loading, Outcome, Plan, PlanOptions, PlanResult, PlannedPhase, sample_duration,
};
pub use fixed::FixedLoad;
pub use peak::{PeakSearch, RampParams};
pub use sustained::{ControllerParams, Sustained, SustainedParams};
