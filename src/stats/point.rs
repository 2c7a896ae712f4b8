//! The figures of a point: its samples (one per sample phase), the means
//! and merged TTFT histogram over them, every request its phases sent,
//! and the checks on them (the error rate, the achieved cache rate). Used
//! when a point is measured and when a gate adds samples to it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::errors::ErrorCount;
use super::histogram::{Latency, encode_histogram, merge_histograms};
use super::phase::PhaseFigures;

/// One sample of a point: a phase of equal length at the point's load,
/// measured over its steady-state window. The statistics of a comparison
/// rest on these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub phase_id: String,
    pub concurrency: u32,
    pub window_start_unix_s: f64,
    pub window_end_unix_s: f64,
    /// Requests launched in the phase, and of those the completed and the
    /// failed ones.
    pub launched: u64,
    pub completed: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub input_tps: f64,
    pub output_tps: f64,
    /// Over the requests launched inside the window.
    pub ttft: Latency,
    /// The TTFT histogram (µs, HDR V2, base64) the quantiles come from.
    pub ttft_histogram: String,
    pub ttlt: Latency,
    /// Over the individual gaps between streamed chunks, per token.
    pub itl: Latency,
    pub achieved_cache_rate: Option<f64>,
    /// The phase held every threshold.
    pub passed: bool,
    /// Requests the latency figures are over, their prompt tokens and the
    /// cached share of those (for the point's achieved rate).
    #[serde(default)]
    pub counted: u64,
    #[serde(default)]
    pub counted_prompt_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub req_output_tps_avg: f64,
    #[serde(default)]
    pub req_output_tps_p5: f64,
    #[serde(default)]
    pub req_output_tps_p10: f64,
    #[serde(default)]
    pub server_cache_rate: Option<f64>,
    #[serde(default)]
    pub prompt_token_drift: Option<f64>,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn mean_latency(latencies: &[Latency]) -> Latency {
    Latency {
        avg: mean(latencies.iter().map(|l| l.avg)),
        p50: mean(latencies.iter().map(|l| l.p50)),
        p95: mean(latencies.iter().map(|l| l.p95)),
        p99: mean(latencies.iter().map(|l| l.p99)),
        max: latencies.iter().map(|l| l.max).fold(0.0, f64::max),
    }
}

/// A point's figures from its samples (or, without samples, from the
/// phase that chose its load), as [`PointFigures::of`] computes them.
#[derive(Debug, Clone, PartialEq)]
pub struct PointFigures {
    /// The mean of the samples' input and output tok/s.
    pub input_tps: f64,
    pub output_tps: f64,
    /// The samples' TTFT histograms merged, and its quantiles.
    pub ttft_histogram: String,
    pub ttft: Latency,
    /// The mean of each TTLT and ITL statistic (the largest maximum).
    pub ttlt: Latency,
    pub itl: Latency,
    /// The mean of the samples' per-request output rates.
    pub req_output_tps_avg: f64,
    pub req_output_tps_p5: f64,
    pub req_output_tps_p10: f64,
    /// Σ launched over the samples, and Σ failed ÷ that.
    pub requests: u64,
    pub error_rate: f64,
    /// Σ cached ÷ Σ prompt tokens of the samples' counted requests, when
    /// the server reported cached tokens.
    pub achieved_cache_rate: Option<f64>,
    /// The mean of the samples' server-side hit rates (--metrics-url) and
    /// prompt-token drifts, over those that have one.
    pub server_cache_rate: Option<f64>,
    pub prompt_token_drift: Option<f64>,
}

impl PointFigures {
    /// The figures of `source`: means over them, TTFT from their merged
    /// histogram, the achieved cache rate as Σ cached ÷ Σ prompt. Fails
    /// when a stored histogram does not decode.
    pub fn of(source: &[Sample]) -> Result<PointFigures, String> {
        let merged = merge_histograms(source.iter().map(|s| s.ttft_histogram.as_str()))?;
        let requests: u64 = source.iter().map(|s| s.launched).sum();
        let failed: u64 = source.iter().map(|s| s.failed).sum();
        let reported = source.iter().any(|s| s.achieved_cache_rate.is_some());
        let prompt: u64 = source.iter().map(|s| s.counted_prompt_tokens).sum();
        let cached: u64 = source.iter().map(|s| s.cached_tokens).sum();
        let some_mean = |values: Vec<f64>| (!values.is_empty()).then(|| mean(values.into_iter()));
        Ok(PointFigures {
            input_tps: mean(source.iter().map(|s| s.input_tps)),
            output_tps: mean(source.iter().map(|s| s.output_tps)),
            ttft: Latency::from_histogram(&merged),
            ttft_histogram: encode_histogram(&merged),
            ttlt: mean_latency(&source.iter().map(|s| s.ttlt).collect::<Vec<_>>()),
            itl: mean_latency(&source.iter().map(|s| s.itl).collect::<Vec<_>>()),
            req_output_tps_avg: mean(source.iter().map(|s| s.req_output_tps_avg)),
            req_output_tps_p5: mean(source.iter().map(|s| s.req_output_tps_p5)),
            req_output_tps_p10: mean(source.iter().map(|s| s.req_output_tps_p10)),
            requests,
            error_rate: if requests == 0 {
                0.0
            } else {
                failed as f64 / requests as f64
            },
            // vLLM leaves a zero count out, so a sample without one counts 0.
            achieved_cache_rate: (reported && prompt > 0).then(|| cached as f64 / prompt as f64),
            server_cache_rate: some_mean(
                source.iter().filter_map(|s| s.server_cache_rate).collect(),
            ),
            prompt_token_drift: some_mean(
                source.iter().filter_map(|s| s.prompt_token_drift).collect(),
            ),
        })
    }
}

/// Every request the phases of a point sent, and the failed ones by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointRequests {
    pub total: u64,
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
}

impl PointRequests {
    /// The requests of `phases`.
    pub fn of<'a>(phases: impl IntoIterator<Item = &'a PhaseFigures>) -> PointRequests {
        let mut requests = PointRequests::default();
        for phase in phases {
            requests.add(phase);
        }
        requests
    }

    /// Counts one more phase.
    pub fn add(&mut self, phase: &PhaseFigures) {
        self.total += phase.launched;
        self.failed += phase.failed;
        for (kind, count) in &phase.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += count;
        }
    }

    /// Why a point whose samples failed `samples.failed` of
    /// `samples.total` requests is no throughput, when that is more than
    /// chance gives at `max_error_rate` ([`ErrorCount::beyond`]).
    pub fn over_error_rate(&self, samples: ErrorCount, max_error_rate: f64) -> Option<String> {
        if !samples.beyond(max_error_rate) {
            return None;
        }
        let kinds: Vec<String> = self
            .errors
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        Some(format!(
            "too many failed requests for --max-error-rate {:.1} %: in its samples {} ({} of {} \
             requests of the point failed: {})",
            max_error_rate * 100.0,
            samples.describe(max_error_rate),
            self.failed,
            self.total,
            kinds.join(", ")
        ))
    }
}

/// A point's achieved cache rate once the run is known to report cached
/// tokens (`reported_in_run`: the server reported them at some point):
/// vLLM reports them only when there are some, so a point where it never
/// did had none cached.
pub fn settled_cache_rate(achieved: Option<f64>, reported_in_run: bool) -> Option<f64> {
    match achieved {
        None if reported_in_run => Some(0.0),
        other => other,
    }
}

/// The achieved cache rate misses the target by more than `max_gap`
/// percentage points.
pub fn cache_rate_missed(achieved: Option<f64>, target: f64, max_gap: f64) -> bool {
    achieved.is_some_and(|achieved| (achieved - target).abs() * 100.0 > max_gap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    fn sample(input_tps: f64, failed: u64, achieved: Option<f64>) -> Sample {
        let mut histogram = new_histogram();
        histogram.saturating_record(500_000);
        Sample {
            phase_id: "RETRY_1".into(),
            concurrency: 4,
            window_start_unix_s: 0.0,
            window_end_unix_s: 1.0,
            launched: 10,
            completed: 10 - failed,
            failed,
            error_rate: failed as f64 / 10.0,
            input_tps,
            output_tps: input_tps / 10.0,
            ttft: Latency::from_histogram(&histogram),
            ttft_histogram: encode_histogram(&histogram),
            ttlt: Latency::default(),
            itl: Latency::default(),
            achieved_cache_rate: achieved,
            passed: true,
            counted: 10,
            counted_prompt_tokens: 1000,
            cached_tokens: achieved.map_or(0, |a| (a * 1000.0) as u64),
            req_output_tps_avg: 0.0,
            req_output_tps_p5: 0.0,
            req_output_tps_p10: 0.0,
            server_cache_rate: None,
            prompt_token_drift: None,
        }
    }

    #[test]
    fn a_point_is_the_mean_of_its_samples_with_their_merged_ttft() {
        let figures =
            PointFigures::of(&[sample(100.0, 0, Some(0.5)), sample(300.0, 2, None)]).unwrap();
        assert_eq!(figures.input_tps, 200.0);
        assert_eq!((figures.requests, figures.error_rate), (20, 0.1));
        // Σ cached ÷ Σ prompt: the sample without a count had none.
        assert_eq!(figures.achieved_cache_rate, Some(0.25));
        assert!((figures.ttft.p50 - 0.5).abs() < 1e-3);
        let mut damaged = sample(1.0, 0, None);
        damaged.ttft_histogram = "not a histogram".into();
        assert!(PointFigures::of(&[damaged]).is_err());
    }

    #[test]
    fn an_error_rate_over_the_limit_names_the_kinds() {
        let empty = crate::stats::Window {
            start_unix_s: 0.0,
            end_unix_s: 1.0,
        };
        let phase = PhaseFigures {
            launched: 10,
            failed: 3,
            errors: BTreeMap::from([("http_5xx".to_string(), 3)]),
            ..PhaseFigures::from_records(&[], &empty, false, false)
        };
        let requests = PointRequests::of([&phase, &phase]);
        assert_eq!((requests.total, requests.failed), (20, 6));
        let samples = ErrorCount::new(6, 20);
        assert_eq!(requests.over_error_rate(samples, 0.3), None);
        let why = requests.over_error_rate(samples, 0.05).unwrap();
        assert!(
            why.contains(
                "--max-error-rate 5.0 %: in its samples 6 of 20 requests failed (30.0 %), more than"
            ) && why.ends_with("failed: http_5xx 6)"),
            "{why}"
        );
        // One failure of ten samples' requests is chance at a 1 % limit.
        assert_eq!(requests.over_error_rate(ErrorCount::new(1, 10), 0.01), None);
    }

    #[test]
    fn a_run_that_reports_cached_tokens_settles_the_silent_points_at_zero() {
        assert_eq!(settled_cache_rate(None, true), Some(0.0));
        assert_eq!(settled_cache_rate(None, false), None);
        assert_eq!(settled_cache_rate(Some(0.4), true), Some(0.4));
        assert!(cache_rate_missed(Some(0.4), 0.5, 5.0));
        assert!(!cache_rate_missed(Some(0.48), 0.5, 5.0));
        assert!(!cache_rate_missed(None, 0.5, 0.0));
    }
}
