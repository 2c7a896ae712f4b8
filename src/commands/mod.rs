//! One module per command that goes beyond a single pipeline stage.

pub mod baseline;
pub mod comment;
pub mod compare;
pub mod gate;
