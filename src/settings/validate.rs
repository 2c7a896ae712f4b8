//! The checks a resolved [`RunSettings`] must pass, each failure a usage
//! error that says how to fix it.

use crate::error::{Error, Result};

use super::options::{FlushCache, Mode};
use super::resolve::RunSettings;
use super::url::mask_password;

/// The longest context `--context-sizes` accepts: far beyond any server
/// today, and small enough that a prompt's tokens fit in memory.
pub const MAX_CONTEXT_TOKENS: u64 = 10_000_000;

/// The most `--output-tokens` a request may ask for.
pub const MAX_OUTPUT_TOKENS: u32 = 1_000_000;

fn fail(message: String) -> Result<()> {
    Err(Error::Usage(message))
}

impl RunSettings {
    pub(super) fn validate(&self) -> Result<()> {
        self.validate_credentials()?;
        self.validate_workload()?;
        self.validate_thresholds()?;
        self.validate_timing()
    }

    /// One Authorization header a request: credentials in a URL or
    /// `--api-key`, not both.
    fn validate_credentials(&self) -> Result<()> {
        let flush_url = match &self.flush_cache {
            FlushCache::Url(url) => Some(("--flush-cache", url)),
            _ => None,
        };
        let urls = self
            .endpoints
            .iter()
            .map(|url| ("--api-endpoint", url))
            .chain(self.metrics_url.iter().map(|url| ("--metrics-url", url)))
            .chain(flush_url);
        for (option, url) in urls {
            if self.api_key.is_some() && mask_password(url) != *url {
                return fail(format!(
                    "{option} {} carries credentials and --api-key is given: a request has one \
                     Authorization header; give the credentials one way",
                    mask_password(url)
                ));
            }
        }
        Ok(())
    }

    /// The points and the prompts: sizes, rates, chunks.
    fn validate_workload(&self) -> Result<()> {
        if self.context_sizes.is_empty() || self.context_sizes.contains(&0) {
            return fail("--context-sizes needs one or more sizes above 0, e.g. 8000 32000".into());
        }
        if let Some(&huge) = self.context_sizes.iter().find(|&&c| c > MAX_CONTEXT_TOKENS) {
            return fail(format!(
                "--context-sizes {huge} is above {MAX_CONTEXT_TOKENS} tokens, longer than any \
                 server's context; give sizes in tokens, e.g. 8000 32000"
            ));
        }
        if self.working_set_size == 0 {
            return fail("--working-set-size must be above 0 tokens".into());
        }
        if let Some(&largest) = self.context_sizes.iter().max()
            && self.working_set_size < largest
        {
            return fail(format!(
                "--working-set-size ({}) is smaller than one context ({largest} tokens): the \
                 working set is a number of whole prompts, so give at least {largest}, e.g. \
                 {}",
                self.working_set_size,
                largest.saturating_mul(8)
            ));
        }
        if self.output_tokens == 0 || self.output_tokens > MAX_OUTPUT_TOKENS {
            return fail(format!(
                "--output-tokens must be from 1 to {MAX_OUTPUT_TOKENS}, got {}",
                self.output_tokens
            ));
        }
        if let Some(rate) = self.cache_hit_rates.iter().find(|&&rate| rate > 100) {
            return fail(format!(
                "--cache-hit-rates are percentages: {rate} is above 100"
            ));
        }
        if self.cache_hit_rates.is_empty() {
            return fail("--cache-hit-rates needs at least one rate".into());
        }
        if self.chunk_size == 0 {
            return fail("--chunk-size must be at least 1 token".into());
        }
        Ok(())
    }

    /// The limits a phase is held to and the concurrency it runs at.
    fn validate_thresholds(&self) -> Result<()> {
        for (name, value) in [
            ("--max-ttft", self.max_ttft),
            ("--test-duration", self.test_duration),
            ("--ramp-duration", self.ramp_duration),
            ("--request-timeout", self.request_timeout),
            ("--circuit-breaker-window", self.circuit_breaker_window),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return fail(format!(
                    "{name} must be a number of seconds above 0, got {value}"
                ));
            }
        }
        for (name, value) in [
            ("--start-concurrency", self.start_concurrency),
            ("--concurrency-increment", self.concurrency_increment),
            ("--init-concurrency", self.init_concurrency),
        ] {
            if value == 0 {
                return fail(format!("{name} must be at least 1"));
            }
        }
        if self.max_concurrency < self.start_concurrency {
            return fail(format!(
                "--max-concurrency ({}) is below --start-concurrency ({})",
                self.max_concurrency, self.start_concurrency
            ));
        }
        if !matches!(self.kv_cache_quantization, 1 | 2) {
            return fail(format!(
                "--kv-cache-quantization is bytes per element: 1 (FP8) or 2 (FP16), got {}",
                self.kv_cache_quantization
            ));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return fail(format!(
                "--max-error-rate is a share between 0 and 1, got {}",
                self.max_error_rate
            ));
        }
        if let Some(min) = self.min_tokens_per_req
            && !(min.is_finite() && min >= 0.0)
        {
            return fail(format!("--min-tokens-per-req must be >= 0, got {min}"));
        }
        if let Some(gap) = self.max_cache_rate_gap
            && !(gap.is_finite() && gap >= 0.0)
        {
            return fail(format!(
                "--max-cache-rate-gap is in percentage points, >= 0; got {gap}"
            ));
        }
        Ok(())
    }

    /// How long phases last, and what each mode needs of them.
    fn validate_timing(&self) -> Result<()> {
        let min_phase = self.ramp_duration.min(10.0);
        if self.test_duration < min_phase {
            return fail(format!(
                "--test-duration ({} s) is shorter than the shortest phase that may run, \
                 min(10 s, --ramp-duration) = {min_phase} s: raise it or lower --ramp-duration",
                self.test_duration
            ));
        }
        if !(self.sim_time_scale.is_finite() && self.sim_time_scale > 0.0) {
            return fail(format!(
                "--sim-time-scale must be above 0, got {}",
                self.sim_time_scale
            ));
        }
        if !(self.warmup_fraction.is_finite() && (0.0..0.9).contains(&self.warmup_fraction)) {
            return fail(format!(
                "--warmup-fraction is the share of each phase not counted, from 0 to below \
                 0.9; got {}",
                self.warmup_fraction
            ));
        }
        if !(self.sample_duration.is_finite() && self.sample_duration > 0.0) {
            return fail(format!(
                "--sample-duration must be a number of seconds above 0, got {}",
                self.sample_duration
            ));
        }
        if !(self.min_sample_cycles.is_finite() && self.min_sample_cycles >= 1.0) {
            return fail(format!(
                "--min-sample-cycles is the request cycles a sample spans at least, 1 or more; \
                 got {}",
                self.min_sample_cycles
            ));
        }
        if !(self.assessment_period.is_finite() && self.assessment_period > 0.0) {
            return fail(format!(
                "--assessment-period must be a number of seconds above 0, got {}",
                self.assessment_period
            ));
        }
        if self.mode == Mode::Sustained && self.test_duration < self.assessment_period {
            return fail(format!(
                "--mode sustained runs --test-duration ({} s) in periods of \
                 --assessment-period ({} s): the test is shorter than one period; raise \
                 --test-duration or lower --assessment-period",
                self.test_duration, self.assessment_period
            ));
        }
        if self.mode == Mode::Fixed && self.num_retries == 0 {
            return fail(
                "--mode fixed measures --num-retries samples at each level: give at least 1".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::resolve::tests::resolve;

    #[test]
    fn required_and_invalid_options_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let error = resolve(&["--working-set-size", "1000"], dir.path()).unwrap_err();
        assert!(error.to_string().contains("--context-sizes is required"));
        let error = resolve(
            &["--profile", "quick", "--cache-hit-rates", "0", "150"],
            dir.path(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("above 100"));
        let error = resolve(
            &["--profile", "quick", "--api-endpoint", "localhost"],
            dir.path(),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("http://localhost:8000"),
            "{error}"
        );
    }

    #[test]
    fn sizes_are_bounded_and_the_working_set_holds_a_context() {
        let dir = tempfile::tempdir().unwrap();
        for (args, says) in [
            (
                &[
                    "--context-sizes",
                    "99999999999",
                    "--working-set-size",
                    "99999999999",
                ][..],
                "above 10000000 tokens",
            ),
            (
                &["--context-sizes", "8000", "--working-set-size", "1000"][..],
                "smaller than one context (8000 tokens)",
            ),
            (
                &[
                    "--context-sizes",
                    "8000",
                    "--working-set-size",
                    "80000",
                    "--output-tokens",
                    "4000000000",
                ][..],
                "--output-tokens must be from 1 to 1000000",
            ),
        ] {
            let error = resolve(args, dir.path()).unwrap_err();
            assert_eq!(error.exit_code(), crate::exit::USAGE);
            assert!(error.to_string().contains(says), "{args:?}: {error}");
        }
    }
}
