//! Figures of a phase and of a point, computed from request records: sums
//! for throughput, HDR histograms for latency quantiles.

use std::collections::BTreeMap;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::record::RequestRecord;
use crate::settings::{TokensPerReqMetric, TtftMetric};

/// Latencies are recorded in microseconds, from 1 µs to 1 hour, with three
/// significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

fn record_seconds(histogram: &mut Histogram<u64>, seconds: f64) {
    let us = (seconds * 1e6).round().clamp(1.0, HIST_MAX_US as f64) as u64;
    histogram.saturating_record(us);
}

/// A histogram as base64 of its V2 encoding, for JSON files.
pub fn encode_histogram(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(histogram, &mut bytes)
        .expect("histogram serializes to memory");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))
}

/// Average and quantiles of a latency, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn from_histogram(histogram: &Histogram<u64>) -> Latency {
        if histogram.is_empty() {
            return Latency::default();
        }
        let s = |us: u64| us as f64 / 1e6;
        Latency {
            avg: histogram.mean() / 1e6,
            p50: s(histogram.value_at_quantile(0.50)),
            p95: s(histogram.value_at_quantile(0.95)),
            p99: s(histogram.value_at_quantile(0.99)),
            max: s(histogram.max()),
        }
    }
}

/// Everything measured in one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseFigures {
    pub launched: u64,
    pub completed: u64,
    pub failed: u64,
    /// `failed / launched`.
    pub error_rate: f64,
    /// Requests kept for the figures (all completed ones, or those inside
    /// the window with `--strict-time-window`).
    pub counted: u64,
    /// Last finish minus first launch of the counted requests, seconds.
    pub duration_s: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Σ cached tokens over the counted requests that reported them.
    pub cached_tokens: u64,
    /// Counted requests whose server reported cached tokens.
    pub cached_reported: u64,
    pub input_tps: f64,
    pub output_tps: f64,
    pub ttft: Latency,
    pub ttlt: Latency,
    pub itl: Latency,
    /// Per-request output tokens per second: average, 5th and 10th
    /// percentiles.
    pub req_output_tps_avg: f64,
    pub req_output_tps_p5: f64,
    pub req_output_tps_p10: f64,
    /// Σ cached / Σ prompt tokens, when the server reported cached tokens.
    pub achieved_cache_rate: Option<f64>,
    /// Mean of the server's prompt-token count minus the target, over the
    /// requests whose usage said (0 for token ids; text is re-tokenised).
    #[serde(default)]
    pub prompt_token_drift: Option<f64>,
    pub errors: BTreeMap<String, u64>,
    /// TTFT histogram (µs), encoded.
    pub ttft_histogram: String,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl PhaseFigures {
    /// `reports_cached`: the server is known to report cached tokens, so a
    /// request without them had none cached (vLLM leaves zeros out).
    pub fn from_records(
        records: &[RequestRecord],
        strict_window: bool,
        reports_cached: bool,
    ) -> PhaseFigures {
        let launched = records.len() as u64;
        let failed = records.iter().filter(|r| !r.ok()).count() as u64;
        let mut errors = BTreeMap::new();
        for record in records {
            if let Some(kind) = record.error_kind {
                *errors.entry(kind.name().to_string()).or_insert(0) += 1;
            }
        }
        let counted: Vec<&RequestRecord> = records
            .iter()
            .filter(|r| r.ok() && (!strict_window || r.in_window))
            .collect();
        let first_launch = counted
            .iter()
            .map(|r| r.launch_unix_s)
            .fold(f64::INFINITY, f64::min);
        let last_finish = counted
            .iter()
            .map(|r| r.launch_unix_s + r.finish_s)
            .fold(f64::NEG_INFINITY, f64::max);
        let duration_s = if counted.is_empty() {
            0.0
        } else {
            last_finish - first_launch
        };
        let prompt_tokens: u64 = counted.iter().map(|r| r.prompt_tokens_or_expected()).sum();
        let completion_tokens: u64 = counted.iter().filter_map(|r| r.completion_tokens).sum();
        let cached_reported = counted.iter().filter(|r| r.cached_tokens.is_some()).count() as u64;
        let cached_tokens: u64 = counted.iter().filter_map(|r| r.cached_tokens).sum();
        let per_second = |tokens: u64| {
            if duration_s > 0.0 {
                tokens as f64 / duration_s
            } else {
                0.0
            }
        };
        let (mut ttft, mut ttlt, mut itl) = (new_histogram(), new_histogram(), new_histogram());
        let mut rates = Vec::with_capacity(counted.len());
        for record in &counted {
            if let Some(value) = record.ttft_s {
                record_seconds(&mut ttft, value);
            }
            if let Some(value) = record.ttlt_s {
                record_seconds(&mut ttlt, value);
            }
            if let Some(value) = record.itl_s() {
                record_seconds(&mut itl, value);
            }
            if let Some(rate) = record.output_tps() {
                rates.push(rate);
            }
        }
        rates.sort_by(f64::total_cmp);
        let req_output_tps_avg = if rates.is_empty() {
            0.0
        } else {
            rates.iter().sum::<f64>() / rates.len() as f64
        };
        // A server that reports cached tokens for some requests leaves them
        // out for requests with none cached (vLLM), so those count as 0.
        let achieved_cache_rate = ((reports_cached || cached_reported > 0) && prompt_tokens > 0)
            .then(|| cached_tokens as f64 / prompt_tokens as f64);
        let drifts: Vec<f64> = counted
            .iter()
            .filter_map(|r| Some(r.prompt_tokens? as f64 - r.expected_prompt_tokens as f64))
            .collect();
        let prompt_token_drift =
            (!drifts.is_empty()).then(|| drifts.iter().sum::<f64>() / drifts.len() as f64);
        PhaseFigures {
            launched,
            completed: launched - failed,
            failed,
            error_rate: if launched == 0 {
                0.0
            } else {
                failed as f64 / launched as f64
            },
            counted: counted.len() as u64,
            duration_s,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            cached_reported,
            input_tps: per_second(prompt_tokens),
            output_tps: per_second(completion_tokens),
            ttft: Latency::from_histogram(&ttft),
            ttlt: Latency::from_histogram(&ttlt),
            itl: Latency::from_histogram(&itl),
            req_output_tps_avg,
            req_output_tps_p5: percentile(&rates, 0.05),
            req_output_tps_p10: percentile(&rates, 0.10),
            achieved_cache_rate,
            prompt_token_drift,
            errors,
            ttft_histogram: encode_histogram(&ttft),
        }
    }

    /// The TTFT statistic held against `--max-ttft`.
    pub fn ttft_metric(&self, metric: TtftMetric) -> f64 {
        match metric {
            TtftMetric::Max => self.ttft.max,
            TtftMetric::Avg => self.ttft.avg,
            TtftMetric::P95 => self.ttft.p95,
        }
    }

    pub fn tokens_per_req_metric(&self, metric: TokensPerReqMetric) -> f64 {
        match metric {
            TokensPerReqMetric::Avg => self.req_output_tps_avg,
            TokensPerReqMetric::P5 => self.req_output_tps_p5,
            TokensPerReqMetric::P10 => self.req_output_tps_p10,
        }
    }
}

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
    /// `Ok` if the phase holds every threshold, else why not.
    pub fn check(&self, figures: &PhaseFigures) -> Result<(), String> {
        if figures.counted == 0 {
            return Err("no request completed".to_string());
        }
        if figures.error_rate > self.max_error_rate {
            return Err(format!(
                "error rate {:.1}% > {:.1}%",
                figures.error_rate * 100.0,
                self.max_error_rate * 100.0
            ));
        }
        let ttft = figures.ttft_metric(self.ttft_metric);
        if ttft > self.max_ttft {
            let metric = format!("{:?}", self.ttft_metric).to_lowercase();
            return Err(format!("TTFT {metric} {ttft:.3}s > {:.3}s", self.max_ttft));
        }
        if let Some(min) = self.min_tokens_per_req {
            let rate = figures.tokens_per_req_metric(self.tokens_per_req_metric);
            if rate < min {
                let metric = format!("{:?}", self.tokens_per_req_metric).to_lowercase();
                return Err(format!(
                    "output {metric} {rate:.1} tok/s per request < {min:.1}"
                ));
            }
        }
        Ok(())
    }
}

/// Merges encoded histograms (the phases of a point).
pub fn merge_histograms<'a>(encoded: impl IntoIterator<Item = &'a str>) -> Histogram<u64> {
    let mut merged = new_histogram();
    for text in encoded {
        if let Ok(histogram) = decode_histogram(text) {
            let _ = merged.add(&histogram);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ErrorKind;

    fn record(launch: f64, ttft: f64, ttlt: f64, finish: f64, tokens: u64) -> RequestRecord {
        RequestRecord {
            context_size: 1000,
            cache_hit_rate: 50,
            phase_id: "RAMP_c2".into(),
            phase_index: 0,
            concurrency: 2,
            request_id: 0,
            endpoint: 0,
            working_set_prompt: 0,
            launch_unix_s: launch,
            dispatch_delay_s: None,
            ttft_s: Some(ttft),
            ttlt_s: Some(ttlt),
            finish_s: finish,
            chunks: tokens as u32,
            max_chunk_gap_s: None,
            chunk_times_us: Vec::new(),
            tokens_per_chunk: Vec::new(),
            expected_prompt_tokens: 1000,
            target_cached_tokens: 512,
            prompt_tokens: Some(1000),
            completion_tokens: Some(tokens),
            cached_tokens: Some(512),
            status: 200,
            resent: false,
            error_kind: None,
            error: None,
            in_window: true,
        }
    }

    #[test]
    fn throughput_is_tokens_over_first_launch_to_last_finish() {
        let records = [
            record(100.0, 0.5, 1.5, 1.6, 11),
            record(100.5, 0.25, 1.25, 2.0, 11),
        ];
        let figures = PhaseFigures::from_records(&records, false, false);
        // 2000 prompt tokens over 100.0 .. 102.5.
        assert!((figures.input_tps - 800.0).abs() < 1e-9);
        assert!((figures.output_tps - 22.0 / 2.5).abs() < 1e-9);
        // ITL = 1 s / 10 tokens; per-request rate 10 tok/s.
        assert!((figures.itl.avg - 0.1).abs() < 1e-3);
        assert!((figures.req_output_tps_avg - 10.0).abs() < 1e-9);
        assert_eq!(figures.achieved_cache_rate, Some(0.512));
        assert!((figures.ttft.max - 0.5).abs() < 1e-3);
    }

    #[test]
    fn failures_are_counted_not_dropped() {
        let mut failed = record(100.0, 0.0, 0.0, 0.1, 0);
        failed.error_kind = Some(ErrorKind::Http5xx);
        failed.ttft_s = None;
        let records = [record(100.0, 0.5, 1.5, 1.6, 11), failed];
        let figures = PhaseFigures::from_records(&records, false, false);
        assert_eq!(
            (figures.launched, figures.completed, figures.failed),
            (2, 1, 1)
        );
        assert_eq!(figures.error_rate, 0.5);
        assert_eq!(figures.errors["http_5xx"], 1);
        let thresholds = Thresholds {
            max_ttft: 2.0,
            ttft_metric: TtftMetric::P95,
            min_tokens_per_req: None,
            tokens_per_req_metric: TokensPerReqMetric::Avg,
            max_error_rate: 0.01,
        };
        assert!(
            thresholds
                .check(&figures)
                .unwrap_err()
                .contains("error rate")
        );
    }

    #[test]
    fn strict_window_keeps_requests_inside_it() {
        let mut late = record(101.0, 0.5, 1.5, 9.0, 11);
        late.in_window = false;
        let records = [record(100.0, 0.5, 1.5, 2.0, 11), late];
        assert_eq!(PhaseFigures::from_records(&records, true, false).counted, 1);
        assert_eq!(
            PhaseFigures::from_records(&records, false, false).counted,
            2
        );
    }

    #[test]
    fn histograms_round_trip_and_merge() {
        let figures = PhaseFigures::from_records(&[record(0.0, 0.5, 1.0, 1.0, 3)], false, false);
        let merged = merge_histograms([figures.ttft_histogram.as_str(); 2]);
        assert_eq!(merged.len(), 2);
        assert!((Latency::from_histogram(&merged).p50 - 0.5).abs() < 1e-3);
    }
}
