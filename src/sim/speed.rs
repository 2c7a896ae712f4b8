//! How fast this simulator process runs as a whole, beyond the cost model:
//! a run-to-run slowdown drawn once per process, and a cold start that
//! fades over the first simulated seconds.
//!
//! Both exist because a CI gate is fooled by exactly these two: repeated
//! serving runs of one configuration differ in throughput by a CV of about
//! 1–2.5 % (noise that per-step jitter averages away but a whole run does
//! not), and a server measured right after it starts (GPU clocks ramping,
//! kernels compiling) is 10–40 % slower than the same server warm.

use crate::rng::splitmix64;

/// Separates the run slowdown's draw from every other use of `--seed`.
const RUN_SLOWDOWN_STREAM: u64 = 0x7275_6e5f_6661_6374;

/// The factor on every step cost of one simulator process (above 1 slower):
/// a lognormal of mean 1, `exp(sigma·Z − sigma²/2)` with `Z` standard normal
/// drawn from `seed`.
///
/// Mean one (rather than median one) as `--noise` is, so the expected step
/// cost over many runs is the modelled one; for the small sigmas of real
/// servers (0.01–0.03) the two differ by less than 0.05 %. The draw uses
/// SplitMix64 and Box–Muller, not a library generator, so a seed gives the
/// same factor in every build.
pub fn run_slowdown(seed: u64, sigma: f64) -> f64 {
    if sigma == 0.0 {
        return 1.0;
    }
    let mut state = seed ^ RUN_SLOWDOWN_STREAM;
    // Two uniforms from 53 random bits each; the first in (0, 1] so its
    // logarithm is finite.
    let unit = |bits: u64| (bits >> 11) as f64 / (1u64 << 53) as f64;
    let u1 = 1.0 - unit(splitmix64(&mut state));
    let u2 = unit(splitmix64(&mut state));
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (sigma * z - sigma * sigma / 2.0).exp()
}

/// The extra cost of a freshly started server: `slowdown` at simulated time
/// zero, falling linearly to none at `seconds`.
///
/// Linear so the cold period has an end a user can wait out (an exponential
/// never reaches 1); on average over the period a step costs
/// `(1 + slowdown) / 2` times the warm cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdStart {
    slowdown: f64,
    seconds: f64,
}

impl ColdStart {
    pub fn new(slowdown: f64, seconds: f64) -> Self {
        Self { slowdown, seconds }
    }

    /// The multiplier on a step that starts `elapsed` simulated seconds
    /// after the server started.
    pub fn factor(&self, elapsed: f64) -> f64 {
        if self.seconds <= 0.0 {
            return 1.0;
        }
        let remaining = (1.0 - elapsed / self.seconds).clamp(0.0, 1.0);
        1.0 + (self.slowdown - 1.0) * remaining
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_draws_the_same_factor() {
        assert_eq!(run_slowdown(7, 0.02), run_slowdown(7, 0.02));
        assert_eq!(run_slowdown(0, 0.0), 1.0);
        assert_eq!(run_slowdown(u64::MAX, 0.0), 1.0);
    }

    #[test]
    fn seeds_draw_distinct_factors_of_mean_one_and_spread_sigma() {
        let sigma = 0.02;
        let factors: Vec<f64> = (0..2000).map(|seed| run_slowdown(seed, sigma)).collect();
        let mut sorted = factors.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        assert_eq!(sorted.len(), factors.len(), "every seed its own factor");

        let n = factors.len() as f64;
        let mean = factors.iter().sum::<f64>() / n;
        let logs: Vec<f64> = factors.iter().map(|f| f.ln()).collect();
        let log_mean = logs.iter().sum::<f64>() / n;
        let log_sd = (logs.iter().map(|l| (l - log_mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        // Standard errors: mean 0.02/√2000 ≈ 0.00045, sd about 1.6 % of sigma.
        assert!((mean - 1.0).abs() < 0.002, "mean {mean}");
        assert!((log_sd / sigma - 1.0).abs() < 0.08, "log sd {log_sd}");
        // Neighbouring seeds are not correlated.
        let lag: f64 = logs
            .windows(2)
            .map(|w| (w[0] - log_mean) * (w[1] - log_mean))
            .sum::<f64>()
            / ((n - 1.0) * log_sd * log_sd);
        assert!(lag.abs() < 0.1, "lag-1 correlation {lag}");
    }

    #[test]
    fn the_factor_scales_with_sigma_for_one_seed() {
        // One standard normal draw per seed, whatever sigma.
        let seed = 11;
        let z = |sigma: f64| (run_slowdown(seed, sigma).ln() + sigma * sigma / 2.0) / sigma;
        assert!((z(0.02) - z(0.5)).abs() < 1e-9);
    }

    #[test]
    fn the_cold_start_fades_linearly_to_nothing() {
        let cold = ColdStart::new(1.3, 5.0);
        assert!((cold.factor(0.0) - 1.3).abs() < 1e-12);
        assert!((cold.factor(2.5) - 1.15).abs() < 1e-12);
        assert_eq!(cold.factor(5.0), 1.0);
        assert_eq!(cold.factor(60.0), 1.0);
        // Disabled either way.
        assert_eq!(ColdStart::new(1.3, 0.0).factor(0.0), 1.0);
        assert_eq!(ColdStart::new(1.0, 5.0).factor(0.0), 1.0);
    }
}
