//! The run's clock: monotonic, anchored to the wall clock once.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic time anchored to the wall clock once, so times of different
/// processes line up and no time within a run goes backwards.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    unix: f64,
}

impl Clock {
    pub fn new() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Clock {
            instant: Instant::now(),
            unix,
        }
    }

    /// Unix seconds of `at`.
    pub fn unix(&self, at: Instant) -> f64 {
        self.unix + at.saturating_duration_since(self.instant).as_secs_f64()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
