//! The thresholds a phase must hold, and the check against them.

use super::errors::ErrorCount;
use super::phase::PhaseFigures;
use crate::cli::values::{TokensPerReqMetric, TtftMetric};

/// The thresholds a phase must hold.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub max_ttft: f64,
    pub ttft_metric: TtftMetric,
    pub min_tokens_per_req: Option<f64>,
    pub tokens_per_req_metric: TokensPerReqMetric,
    pub max_error_rate: f64,
}

impl Thresholds {
    /// `Ok` if the phase holds every threshold, else why not. Its failed
    /// requests break the error-rate limit only when they are more than
    /// chance gives at that limit ([`ErrorCount::beyond`]).
    pub fn check(&self, figures: &PhaseFigures) -> Result<(), String> {
        if figures.counted == 0 {
            return Err("no request completed".to_string());
        }
        let errors = ErrorCount::new(figures.failed, figures.launched);
        if errors.beyond(self.max_error_rate) {
            return Err(format!(
                "error rate: {}",
                errors.describe(self.max_error_rate)
            ));
        }
        let ttft = figures.ttft_metric(self.ttft_metric);
        if ttft > self.max_ttft {
            return Err(format!(
                "TTFT {} {ttft:.3}s > {:.3}s",
                self.ttft_metric, self.max_ttft
            ));
        }
        if let Some(min) = self.min_tokens_per_req {
            let rate = figures.tokens_per_req_metric(self.tokens_per_req_metric);
            if rate < min {
                return Err(format!(
                    "output {} {rate:.1} tok/s per request < {min:.1}",
                    self.tokens_per_req_metric
                ));
            }
        }
        Ok(())
    }
}
