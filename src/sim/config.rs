//! The simulator's settings: server shape, cost model, fault knobs. The clap
//! attributes hold the defaults, so the command line and `SimConfig::default()`
//! never disagree.

use std::net::SocketAddr;

use clap::{Args, Parser};
use serde::Serialize;

use super::speed::{self, ColdStart};

/// `cacherate sim` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Model id served on /v1/models and accepted in requests.
    #[arg(long, default_value = "cacherate-sim")]
    pub model: String,

    /// Longest prompt plus max_tokens a request may ask for, in tokens.
    #[arg(long, default_value_t = 32_768)]
    pub max_model_len: usize,

    /// KV block size in tokens: the granularity of prefix caching.
    #[arg(long, default_value_t = 16)]
    pub block_size: usize,

    /// First-tier (GPU) KV capacity in tokens.
    #[arg(long, default_value_t = 262_144)]
    pub kv_capacity_tokens: usize,

    /// Second-tier (offload) KV capacity in tokens; 0 disables the tier.
    #[arg(long, default_value_t = 0)]
    pub offload_capacity_tokens: usize,

    /// Most sequences in one batch; the rest queue.
    #[arg(long, default_value_t = 64)]
    pub max_num_seqs: usize,

    /// Most tokens (prefill chunks plus one per decoding sequence) one step
    /// processes; longer prefills are split across steps.
    #[arg(long, default_value_t = 8192)]
    pub max_num_batched_tokens: usize,

    /// Fixed cost of one engine step, in milliseconds.
    #[arg(long, default_value_t = 8.0)]
    pub step_overhead_ms: f64,

    /// Prefill cost per uncached prompt token, in microseconds.
    #[arg(long, default_value_t = 80.0)]
    pub prefill_us_per_token: f64,

    /// Decode cost per sequence in a step, in microseconds.
    #[arg(long, default_value_t = 150.0)]
    pub decode_us_per_seq: f64,

    /// Decode cost per token of KV the decoding sequences attend to, in
    /// nanoseconds (long contexts make decode steps slower).
    #[arg(long, default_value_t = 4.0)]
    pub decode_ns_per_kv_token: f64,

    /// Cost of loading one token's KV from the second tier, in microseconds.
    #[arg(long, default_value_t = 20.0)]
    pub offload_load_us_per_token: f64,

    /// Wall-clock seconds per simulated second: 0.01 runs 100 times faster
    /// than the modelled server; 0 does no waiting at all.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,

    /// Multiplies every service time, to inject a regression (1.1 = 10 %
    /// slower).
    #[arg(long, default_value_t = 1.0)]
    pub slowdown: f64,

    /// Standard deviation of the lognormal jitter on each step time (mean 1);
    /// 0 is deterministic up to scheduling.
    #[arg(long, default_value_t = 0.05)]
    pub noise: f64,

    /// Run-to-run noise: sigma of one lognormal slowdown (mean 1) drawn from
    /// --seed when the server starts and applied to every step, as repeated
    /// runs of a real server differ (throughput CV of 1-2.5 %); 0 disables
    /// it. /sim/info shows the factor drawn.
    #[arg(long, default_value_t = 0.02)]
    pub run_noise: f64,

    /// Simulated seconds after start during which steps run slower, as a
    /// cold server does (GPU clocks, kernel compilation); 0 disables the cold
    /// start. With --time-scale 0 they are counted in step time.
    #[arg(long, default_value_t = 5.0)]
    pub cold_start_seconds: f64,

    /// Step cost multiplier at the very start (1.3 = 30 % slower), fading
    /// linearly to 1 over --cold-start-seconds; 1 disables the cold start.
    #[arg(long, default_value_t = 1.3)]
    pub cold_start_slowdown: f64,

    /// Share of requests answered with 500.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,

    /// Share of requests answered with 429 and Retry-After.
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit_rate: f64,

    /// Share of requests whose connection drops after the first token.
    #[arg(long, default_value_t = 0.0)]
    pub disconnect_rate: f64,

    /// Share of requests that stop sending after the first token without
    /// closing the connection.
    #[arg(long, default_value_t = 0.0)]
    pub stall_rate: f64,

    /// Refuse token-ID prompts with 400, as servers that take only text do.
    #[arg(long)]
    pub reject_token_prompts: bool,

    /// Leave `usage.prompt_tokens_details` (the cached-token count) out of
    /// every response, as vLLM does unless started with
    /// `--enable-prompt-tokens-details`.
    #[arg(long)]
    pub no_prompt_tokens_details: bool,

    /// Seed of the jitter, the fault draws and the generated tokens.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Parser)]
struct DefaultsOnly {
    #[command(flatten)]
    config: SimConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        DefaultsOnly::parse_from(["sim"]).config
    }
}

impl SimConfig {
    /// The defaults with time running `scale` times as fast as modelled, no
    /// per-step jitter, and port 0: what tests start. The run slowdown (of
    /// seed 0 unless the test sets one) and the cold start stay, so the
    /// tests meet the simulator as a user's run does.
    pub fn for_tests(time_scale: f64) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            time_scale,
            noise: 0.0,
            ..Self::default()
        }
    }

    /// Checks the settings against each other; the error says which option
    /// to change.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("--error-rate", self.error_rate),
            ("--rate-limit-rate", self.rate_limit_rate),
            ("--disconnect-rate", self.disconnect_rate),
            ("--stall-rate", self.stall_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        let total: f64 = rates.iter().map(|(_, rate)| rate).sum();
        if total > 1.0 + 1e-9 {
            return Err(format!(
                "the fault rates add up to {total}, more than 1: lower one of them"
            ));
        }
        let non_negative = [
            ("--step-overhead-ms", self.step_overhead_ms),
            ("--prefill-us-per-token", self.prefill_us_per_token),
            ("--decode-us-per-seq", self.decode_us_per_seq),
            ("--decode-ns-per-kv-token", self.decode_ns_per_kv_token),
            (
                "--offload-load-us-per-token",
                self.offload_load_us_per_token,
            ),
            ("--time-scale", self.time_scale),
            ("--noise", self.noise),
            ("--cold-start-seconds", self.cold_start_seconds),
        ];
        for (name, value) in non_negative {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("{name} must be a finite number >= 0, got {value}"));
            }
        }
        if !self.slowdown.is_finite() || self.slowdown <= 0.0 {
            return Err(format!("--slowdown must be > 0, got {}", self.slowdown));
        }
        // At sigma 1 a third of runs would be off by more than a factor e:
        // no longer noise, more likely a percentage typed for a fraction.
        if !(0.0..=1.0).contains(&self.run_noise) {
            return Err(format!(
                "--run-noise must be between 0 and 1 (the sigma of a lognormal \
                 slowdown: 0.02 is about 2 %, 0 disables it), got {}",
                self.run_noise
            ));
        }
        if !self.cold_start_slowdown.is_finite() || self.cold_start_slowdown < 1.0 {
            return Err(format!(
                "--cold-start-slowdown must be at least 1 (1.3 = 30 % slower at start); \
                 to disable the cold start pass 1 or --cold-start-seconds 0, got {}",
                self.cold_start_slowdown
            ));
        }
        for (name, value) in [
            ("--block-size", self.block_size),
            ("--max-num-seqs", self.max_num_seqs),
            ("--max-num-batched-tokens", self.max_num_batched_tokens),
            ("--max-model-len", self.max_model_len),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.kv_capacity_blocks() < self.max_model_len.div_ceil(self.block_size) {
            return Err(format!(
                "--kv-capacity-tokens ({}) is smaller than --max-model-len ({}): one \
                 request of the longest allowed length would never fit; raise the \
                 capacity or lower --max-model-len",
                self.kv_capacity_tokens, self.max_model_len
            ));
        }
        if self.model.trim().is_empty() {
            return Err("--model must not be empty".to_string());
        }
        Ok(())
    }

    /// The run-to-run slowdown this configuration's server draws (see
    /// `speed::run_slowdown`); the same for every server with this seed.
    pub fn run_slowdown(&self) -> f64 {
        speed::run_slowdown(self.seed, self.run_noise)
    }

    pub fn cold_start(&self) -> ColdStart {
        ColdStart::new(self.cold_start_slowdown, self.cold_start_seconds)
    }

    pub fn kv_capacity_blocks(&self) -> usize {
        self.kv_capacity_tokens / self.block_size
    }

    pub fn offload_capacity_blocks(&self) -> usize {
        self.offload_capacity_tokens / self.block_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_listens_on_loopback_unless_told_otherwise() {
        assert!(SimConfig::default().listen.ip().is_loopback());
    }

    #[test]
    fn defaults_are_valid() {
        SimConfig::default().validate().unwrap();
        SimConfig::for_tests(0.01).validate().unwrap();
    }

    #[test]
    fn validation_names_the_option_to_fix() {
        let config = SimConfig {
            error_rate: 1.5,
            ..SimConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("--error-rate"));
        let config = SimConfig {
            kv_capacity_tokens: 1000,
            ..SimConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("--kv-capacity-tokens")
        );
        let config = SimConfig {
            error_rate: 0.6,
            stall_rate: 0.6,
            ..SimConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("add up"));
    }

    #[test]
    fn run_noise_and_cold_start_are_checked() {
        let error = |config: SimConfig| config.validate().unwrap_err();
        for run_noise in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let message = error(SimConfig {
                run_noise,
                ..SimConfig::default()
            });
            assert!(message.contains("--run-noise"), "{message}");
        }
        for cold_start_seconds in [-1.0, f64::NAN, f64::INFINITY] {
            let message = error(SimConfig {
                cold_start_seconds,
                ..SimConfig::default()
            });
            assert!(message.contains("--cold-start-seconds"), "{message}");
        }
        for cold_start_slowdown in [0.0, 0.7, f64::NAN, f64::INFINITY] {
            let message = error(SimConfig {
                cold_start_slowdown,
                ..SimConfig::default()
            });
            assert!(message.contains("--cold-start-slowdown"), "{message}");
            assert!(message.contains("--cold-start-seconds 0"), "{message}");
        }
        // Each switched off on its own.
        SimConfig {
            run_noise: 0.0,
            cold_start_seconds: 0.0,
            ..SimConfig::default()
        }
        .validate()
        .unwrap();
        SimConfig {
            cold_start_slowdown: 1.0,
            ..SimConfig::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn defaults_model_a_cold_and_noisy_server() {
        let config = SimConfig::default();
        assert_eq!(config.run_noise, 0.02);
        assert_eq!(config.cold_start_seconds, 5.0);
        assert_eq!(config.cold_start_slowdown, 1.3);
        assert_eq!(config.run_slowdown(), speed::run_slowdown(0, 0.02));
    }
}
