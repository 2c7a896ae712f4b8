//! [`Workload`]: the options that decide what is measured, which a run
//! directory stores (`progress.json`), a baseline keeps, and a resume or a
//! comparison must match.

use serde::{Deserialize, Serialize};

use crate::cli::values::{
    FixedLoadSpec, Mode, PromptMode, ReinitStrategy, TokensPerReqMetric, TtftMetric,
};

/// The options that decide what is measured: a run directory resumes only
/// when these match. Context sizes are not among them, so a run can be
/// resumed with fewer or more of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The endpoints, or the embedded simulator and its time scale: another
    /// server is another measurement.
    pub target: Vec<String>,
    pub model: String,
    pub prompt_mode: PromptMode,
    pub tokenizer: Option<String>,
    pub working_set_size: u64,
    pub output_tokens: u32,
    pub max_ttft: f64,
    pub ttft_metric: TtftMetric,
    pub test_duration: f64,
    pub ramp_duration: f64,
    pub num_retries: u32,
    pub start_concurrency: u32,
    pub concurrency_increment: u32,
    pub max_concurrency: u32,
    pub init_concurrency: u32,
    pub cache_hit_rates: Vec<u32>,
    pub chunk_size: u64,
    pub reinit_strategy: ReinitStrategy,
    pub random_working_set_selection: bool,
    pub seed: u64,
    pub strict_time_window: bool,
    pub min_tokens_per_req: Option<f64>,
    pub tokens_per_req_metric: TokensPerReqMetric,
    pub max_error_rate: f64,
    pub mode: Mode,
    /// The load of each point in fixed mode: the levels, or per point from
    /// --concurrency-from.
    pub fixed_load: Option<FixedLoadSpec>,
    pub warmup_fraction: f64,
    pub sample_duration: f64,
    /// What sample phases were lengthened to (`--lengthen-samples`);
    /// absent when they kept `sample_duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_sizing: Option<crate::stats::SampleSizing>,
    /// Sustained mode's assessment period, seconds (absent in the other
    /// modes, so their stored workloads are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_period: Option<f64>,
}

impl Workload {
    /// The options that differ from `other`, as `name: old -> new`.
    pub fn differences(&self, other: &Workload) -> Vec<String> {
        let (serde_json::Value::Object(old), serde_json::Value::Object(new)) = (
            serde_json::to_value(other).expect("workload serializes"),
            serde_json::to_value(self).expect("workload serializes"),
        ) else {
            unreachable!("a struct serializes to an object");
        };
        new.iter()
            .filter(|(key, value)| old.get(*key) != Some(value))
            .map(|(key, value)| {
                let before = old.get(key).cloned().unwrap_or(serde_json::Value::Null);
                format!("--{}: {before} -> {value}", key.replace('_', "-"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_differences_name_the_options() {
        let a: Workload = serde_json::from_value(serde_json::json!({
            "target": ["http://localhost:8000"], "model": "m", "prompt_mode": "tokens",
            "tokenizer": null, "working_set_size": 10000, "output_tokens": 32,
            "max_ttft": 1.0, "ttft_metric": "p95", "test_duration": 30.0,
            "ramp_duration": 3.0, "num_retries": 3, "start_concurrency": 1,
            "concurrency_increment": 2, "max_concurrency": 64, "init_concurrency": 4,
            "cache_hit_rates": [0, 50, 100], "chunk_size": 256, "reinit_strategy": "once",
            "random_working_set_selection": false, "seed": 1, "strict_time_window": false,
            "min_tokens_per_req": null, "tokens_per_req_metric": "avg",
            "max_error_rate": 0.01, "mode": "adaptive", "fixed_load": null,
            "warmup_fraction": 0.2, "sample_duration": 3.0
        }))
        .unwrap();
        let mut b = a.clone();
        b.max_ttft = 2.0;
        assert_eq!(b.differences(&a), vec!["--max-ttft: 1.0 -> 2.0"]);
    }
}
