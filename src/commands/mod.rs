//! One module per command that goes beyond a single pipeline stage.

pub mod compare;
pub mod gate;
pub mod report;
