//! A point's identity — its context size and cache hit rate — and the two
//! ways it is written: `ctx 512 at 50%` for people, `ctx512/cache50` as a
//! key (verdicts, reports, JUnit). Lookups go through it, never through a
//! hand-written `(context, rate)` comparison.

use serde::{Deserialize, Serialize};

/// One point of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PointId {
    pub context_size: u64,
    /// The cache hit rate asked for, percent.
    pub cache_hit_rate: u32,
}

impl PointId {
    pub fn new(context_size: u64, cache_hit_rate: u32) -> PointId {
        PointId {
            context_size,
            cache_hit_rate,
        }
    }

    /// `ctx512/cache50`: how verdicts, reports and JUnit name the point.
    pub fn key(&self) -> String {
        format!("ctx{}/cache{}", self.context_size, self.cache_hit_rate)
    }
}

/// `ctx 512 at 50%`.
impl std::fmt::Display for PointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ctx {} at {}%", self.context_size, self.cache_hit_rate)
    }
}

/// Anything that belongs to one point.
pub trait AtPoint {
    fn point_id(&self) -> PointId;
}

/// The item of `items` at `id`.
pub fn find<T: AtPoint>(items: &[T], id: PointId) -> Option<&T> {
    items.iter().find(|item| item.point_id() == id)
}

/// Where in `items` the item at `id` is.
pub fn position<T: AtPoint>(items: &[T], id: PointId) -> Option<usize> {
    items.iter().position(|item| item.point_id() == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_written_two_ways() {
        let id = PointId::new(512, 50);
        assert_eq!(id.to_string(), "ctx 512 at 50%");
        assert_eq!(id.key(), "ctx512/cache50");
        // Context-major, rate ascending: the sweep's order.
        let mut ids = [
            PointId::new(1024, 0),
            PointId::new(512, 100),
            PointId::new(512, 0),
        ];
        ids.sort();
        assert_eq!(
            ids.map(|id| id.key()),
            ["ctx512/cache0", "ctx512/cache100", "ctx1024/cache0"]
        );
    }
}
