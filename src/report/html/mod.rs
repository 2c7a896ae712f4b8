//! The run's HTML reports (SPEC §4): the seed's pages, drawn from a
//! [`RunReport`] by pure renderers that return the files' bytes.

mod charts;
pub mod format;
mod model;
mod pages;

pub use model::{PhaseRow, RunReport, Thresholds, names};
pub use pages::{RenderError, RenderedFile, render_all};
