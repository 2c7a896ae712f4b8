//! Fault injection: each request draws at most one fault, from a seeded
//! generator, in arrival order.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::SimConfig;

/// What goes wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 before any work.
    ServerError,
    /// 429 with Retry-After before any work.
    RateLimited,
    /// The connection drops after the first token.
    Disconnect,
    /// Nothing more is sent after the first token; the connection stays open.
    Stall,
}

pub struct FaultDraw {
    rng: StdRng,
    /// Cumulative thresholds, in the order of `FAULTS`.
    thresholds: [f64; 4],
}

const FAULTS: [Fault; 4] = [
    Fault::ServerError,
    Fault::RateLimited,
    Fault::Disconnect,
    Fault::Stall,
];

impl FaultDraw {
    pub fn new(config: &SimConfig) -> Self {
        let rates = [
            config.error_rate,
            config.rate_limit_rate,
            config.disconnect_rate,
            config.stall_rate,
        ];
        let mut thresholds = [0.0; 4];
        let mut sum = 0.0;
        for (threshold, rate) in thresholds.iter_mut().zip(rates) {
            sum += rate;
            *threshold = sum;
        }
        Self {
            rng: StdRng::seed_from_u64(config.seed ^ 0xfa17_5eed),
            thresholds,
        }
    }

    pub fn draw(&mut self) -> Option<Fault> {
        if self.thresholds[3] <= 0.0 {
            return None;
        }
        let x: f64 = self.rng.random();
        FAULTS
            .iter()
            .zip(self.thresholds)
            .find(|(_, threshold)| x < *threshold)
            .map(|(fault, _)| *fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_fault_at_its_rate() {
        let config = SimConfig {
            error_rate: 0.1,
            rate_limit_rate: 0.2,
            disconnect_rate: 0.05,
            stall_rate: 0.15,
            ..SimConfig::default()
        };
        let mut draw = FaultDraw::new(&config);
        let mut counts = [0usize; 5];
        let n = 100_000;
        for _ in 0..n {
            let slot = match draw.draw() {
                Some(Fault::ServerError) => 0,
                Some(Fault::RateLimited) => 1,
                Some(Fault::Disconnect) => 2,
                Some(Fault::Stall) => 3,
                None => 4,
            };
            counts[slot] += 1;
        }
        let shares: Vec<f64> = counts.iter().map(|&c| c as f64 / n as f64).collect();
        for (share, want) in shares.iter().zip([0.1, 0.2, 0.05, 0.15, 0.5]) {
            assert!((share - want).abs() < 0.01, "{shares:?}");
        }
    }

    #[test]
    fn no_faults_by_default() {
        let mut draw = FaultDraw::new(&SimConfig::default());
        assert!((0..1000).all(|_| draw.draw().is_none()));
    }
}
