//! Figures of a phase and of a point, computed from request records: sums
//! for throughput, HDR histograms for latency quantiles, means over a
//! point's samples.

mod errors;
mod histogram;
mod phase;
mod point;
mod sizing;
mod thresholds;
mod window;

pub use errors::{ERROR_CONFIDENCE, ErrorCount};
pub use histogram::{Latency, decode_histogram, encode_histogram, merge_histograms, new_histogram};
pub use phase::PhaseFigures;
pub use point::{PointFigures, PointRequests, Sample, cache_rate_missed, settled_cache_rate};
pub use sizing::{Coverage, MAX_LENGTHENING, SampleSizing};
pub use thresholds::Thresholds;
pub use window::Window;
