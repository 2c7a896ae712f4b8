//! Whether failed requests are too many for an error-rate limit: judged
//! with their count, not their share, so one dropped request among ten
//! does not fail a point whose limit is 1 %.
//!
//! The failures of `n` requests at a true error rate `p` are binomial. A
//! count `k` is beyond the limit `p₀` when a server failing exactly at the
//! limit would fail `k` or more of `n` less often than
//! `1 − ERROR_CONFIDENCE`: `P(X ≥ k | n, p₀) < 0.01`. That is the exact
//! one-sided binomial test (Clopper & Pearson, *Biometrika* 26, 1934: the
//! same event as the one-sided 99 % lower confidence bound of the rate
//! lying above `p₀`). A limit of 0 keeps its meaning: any failure is
//! beyond it.

use statrs::distribution::{Binomial, DiscreteCDF};

/// The one-sided confidence at which failures are held to be beyond an
/// error-rate limit: a point that fails exactly at the limit is marked an
/// error at most 1 % of the time.
pub const ERROR_CONFIDENCE: f64 = 0.99;

/// Failed requests out of a number sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorCount {
    pub failed: u64,
    pub total: u64,
}

impl ErrorCount {
    pub fn new(failed: u64, total: u64) -> ErrorCount {
        ErrorCount { failed, total }
    }

    /// Failed ÷ sent, 0 when nothing was sent.
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.failed as f64 / self.total as f64
        }
    }

    /// The most failures of `total` requests that a server failing at
    /// exactly `limit` shows by chance (at [`ERROR_CONFIDENCE`]).
    pub fn chance_allows(&self, limit: f64) -> u64 {
        if self.total == 0 || limit >= 1.0 {
            return self.total;
        }
        if limit <= 0.0 {
            return 0;
        }
        let Ok(binomial) = Binomial::new(limit, self.total) else {
            return 0;
        };
        // The smallest k with P(X ≥ k) < α; P(X ≥ k) = sf(k − 1).
        let alpha = 1.0 - ERROR_CONFIDENCE;
        let (mut low, mut high) = (0, self.total);
        // Invariant: P(X ≥ high + 1) < α or high = total; P(X ≥ low) ≥ α.
        while low < high {
            let mid = low + (high - low).div_ceil(2);
            if binomial.sf(mid - 1) >= alpha {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        low
    }

    /// The failures are more than chance explains at `limit`.
    pub fn beyond(&self, limit: f64) -> bool {
        self.failed > self.chance_allows(limit)
    }

    /// The failures are a larger share than `limit`, yet within what chance
    /// gives at it: reported, not failed.
    pub fn over_but_within_chance(&self, limit: f64) -> bool {
        self.rate() > limit && !self.beyond(limit)
    }

    /// The count against the limit, e.g. `30 of 300 requests failed
    /// (10.0 %), more than the 8 that chance explains at the 1.0 % limit
    /// (one-sided binomial, 99 %)`, or for a count within chance `1 of 10
    /// requests failed (10.0 %), over the 1.0 % limit but no more than the
    /// 1 that chance explains there (…)`.
    pub fn describe(&self, limit: f64) -> String {
        let allowed = self.chance_allows(limit);
        let against = if self.failed > allowed {
            format!(
                "more than the {allowed} that chance explains at the {:.1} % limit",
                limit * 100.0
            )
        } else {
            format!(
                "over the {:.1} % limit but no more than the {allowed} that chance explains there",
                limit * 100.0
            )
        };
        format!(
            "{} of {} requests failed ({:.1} %), {against} (one-sided binomial, {:.0} %)",
            self.failed,
            self.total,
            self.rate() * 100.0,
            ERROR_CONFIDENCE * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(X ≥ k) for a binomial, summed term by term in f64: the reference
    /// for the search above.
    fn upper_tail(k: u64, n: u64, p: f64) -> f64 {
        let mut term = (1.0 - p).powi(n as i32); // P(X = 0)
        let mut below = 0.0;
        for i in 0..k {
            below += term;
            term *= (n - i) as f64 / (i + 1) as f64 * p / (1.0 - p);
        }
        1.0 - below
    }

    #[test]
    fn one_failure_of_ten_is_chance_at_one_percent() {
        // P(X ≥ 1 | 10, 0.01) = 1 − 0.99¹⁰ = 0.0956 ≥ 0.01.
        let count = ErrorCount::new(1, 10);
        assert_eq!(count.chance_allows(0.01), 1);
        assert!(!count.beyond(0.01));
        assert!(count.over_but_within_chance(0.01));
        // P(X ≥ 2 | 10, 0.01) = 0.00427 < 0.01.
        assert!(ErrorCount::new(2, 10).beyond(0.01));
    }

    #[test]
    fn the_allowance_is_the_exact_binomial_critical_count() {
        for (n, p) in [(40, 0.01), (100, 0.01), (1000, 0.01), (250, 0.05), (7, 0.2)] {
            let allowed = ErrorCount::new(0, n).chance_allows(p);
            assert!(upper_tail(allowed, n, p) >= 0.01, "n {n} p {p}");
            assert!(upper_tail(allowed + 1, n, p) < 0.01, "n {n} p {p}");
        }
        // Exact sums (Python's math.comb): at 1 % of 1000, P(X ≥ 18) = 0.0138 and
        // P(X ≥ 19) = 0.0069; of 40, P(X ≥ 2) = 0.0607 and P(X ≥ 3) = 0.0075.
        assert_eq!(ErrorCount::new(0, 1000).chance_allows(0.01), 18);
        assert_eq!(ErrorCount::new(0, 40).chance_allows(0.01), 2);
    }

    #[test]
    fn a_zero_limit_allows_no_failure_and_a_full_one_every_failure() {
        assert!(ErrorCount::new(1, 10_000).beyond(0.0));
        assert!(!ErrorCount::new(0, 10_000).beyond(0.0));
        assert!(!ErrorCount::new(10, 10).beyond(1.0));
        assert!(!ErrorCount::new(0, 0).beyond(0.01));
    }

    #[test]
    fn many_failures_are_beyond_the_limit_and_the_message_counts_them() {
        let count = ErrorCount::new(30, 300);
        assert!(count.beyond(0.01));
        assert_eq!(
            count.describe(0.01),
            "30 of 300 requests failed (10.0 %), more than the 8 that chance explains at the \
             1.0 % limit (one-sided binomial, 99 %)"
        );
        assert_eq!(
            ErrorCount::new(1, 10).describe(0.01),
            "1 of 10 requests failed (10.0 %), over the 1.0 % limit but no more than the 1 that \
             chance explains there (one-sided binomial, 99 %)"
        );
    }
}
