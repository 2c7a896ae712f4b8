//! Figures of a phase and of a point, computed from request records: sums
//! for throughput, HDR histograms for latency quantiles.

mod histogram;
mod phase;
mod thresholds;
mod window;

pub use histogram::{Latency, decode_histogram, encode_histogram, merge_histograms, new_histogram};
pub use phase::PhaseFigures;
pub use thresholds::Thresholds;
pub use window::Window;
