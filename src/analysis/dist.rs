//! Student t tail probabilities and quantiles (`statrs`), valid for any
//! positive, possibly fractional or huge, degrees of freedom.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Above this many degrees of freedom the t distribution is taken as the
/// standard normal (the quantiles differ by < 1e-4 relative); `statrs`'
/// incomplete-beta inversion is neither needed nor accurate out there.
const NORMAL_DF: f64 = 1e5;

fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("the standard normal is valid")
}

/// P(T > t) for T ~ t(df).
pub fn t_upper_tail(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t == f64::INFINITY {
        return 0.0;
    }
    if t == f64::NEG_INFINITY {
        return 1.0;
    }
    if df.is_nan() || df >= NORMAL_DF {
        return standard_normal().sf(t);
    }
    StudentsT::new(0.0, 1.0, df.max(f64::MIN_POSITIVE))
        .expect("positive degrees of freedom")
        .sf(t)
}

/// The `p` quantile of t(df), for p in (0, 1).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    debug_assert!(p > 0.0 && p < 1.0, "quantile {p} outside (0, 1)");
    if df.is_nan() || df >= NORMAL_DF {
        return standard_normal().inverse_cdf(p);
    }
    StudentsT::new(0.0, 1.0, df.max(f64::MIN_POSITIVE))
        .expect("positive degrees of freedom")
        .inverse_cdf(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_tables() {
        // Tables of the t distribution (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
        assert!((t_quantile(0.975, 10.0) - 2.228).abs() < 1e-3);
        assert!((t_quantile(0.99, 4.0) - 3.747).abs() < 1e-3);
        assert!((t_quantile(0.95, 1.0) - 6.314).abs() < 1e-3);
        assert!((t_quantile(0.99, f64::INFINITY) - 2.326).abs() < 1e-3);
        assert!((t_quantile(0.01, 4.0) + 3.747).abs() < 1e-3);
    }

    #[test]
    fn upper_tail_inverts_quantile() {
        for df in [1.5, 3.0, 17.3, 400.0, 1e7] {
            for p in [0.001, 0.01, 0.2, 0.5, 0.9] {
                let t = t_quantile(1.0 - p, df);
                assert!((t_upper_tail(t, df) - p).abs() < 1e-6, "df {df} p {p}");
            }
        }
    }
}
