//! The figures of one phase over its steady-state window: throughput
//! sums, latency quantiles, token counts and failures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hdrhistogram::Histogram;

use super::histogram::{Latency, encode_histogram, new_histogram, record_seconds};
use super::window::Window;
use crate::cli::values::{TokensPerReqMetric, TtftMetric};
use crate::record::RequestRecord;

/// The tokens each streamed chunk of a record carried: what the server
/// said, else the completion tokens spread evenly over the chunks, else
/// one a chunk (a server that omits `usage` still has its stream counted).
fn chunk_tokens(record: &RequestRecord) -> impl Iterator<Item = f64> + '_ {
    let chunks = record.chunk_times_us.len();
    let even = match (record.tokens_per_chunk.as_slice(), record.completion_tokens) {
        ([n], _) => Some(f64::from(*n)),
        ([], Some(total)) if chunks > 0 => Some(total as f64 / chunks as f64),
        ([], _) => Some(1.0),
        _ => None,
    };
    (0..chunks).map(move |i| match even {
        Some(n) => n,
        None => record
            .tokens_per_chunk
            .get(i)
            .map_or(1.0, |&n| f64::from(n)),
    })
}

/// Everything measured in one phase, over its steady-state window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseFigures {
    /// Requests of the whole phase, the warm-up and the drain included.
    pub launched: u64,
    pub completed: u64,
    pub failed: u64,
    /// `failed / launched`.
    pub error_rate: f64,
    /// Completed requests launched inside the window (finished inside it
    /// too with `--strict-time-window`): the latency figures are theirs.
    pub counted: u64,
    /// Length of the window, seconds.
    pub duration_s: f64,
    /// No request was launched inside the window (the phase is shorter
    /// than its requests), so the figures are over the whole phase.
    #[serde(default)]
    pub whole_phase: bool,
    /// Prompt tokens of the requests launched inside the window that got a
    /// first token.
    pub prompt_tokens: u64,
    /// Output tokens those requests streamed.
    pub completion_tokens: u64,
    /// Prompt tokens of the counted requests.
    pub counted_prompt_tokens: u64,
    /// Σ cached tokens over the counted requests that reported them.
    pub cached_tokens: u64,
    /// Counted requests whose server reported cached tokens.
    pub cached_reported: u64,
    /// `concurrency × prompt_tokens ÷` the time those requests held their
    /// slots (Little's law).
    pub input_tps: f64,
    /// `concurrency × completion_tokens ÷` the same time.
    pub output_tps: f64,
    pub ttft: Latency,
    pub ttlt: Latency,
    /// Over the individual gaps between streamed chunks (per token when a
    /// chunk carried several).
    pub itl: Latency,
    /// Per-request output tokens per second: average, 5th and 10th
    /// percentiles.
    pub req_output_tps_avg: f64,
    pub req_output_tps_p5: f64,
    pub req_output_tps_p10: f64,
    /// Σ cached / Σ prompt tokens of the counted requests, when the server
    /// reported cached tokens.
    pub achieved_cache_rate: Option<f64>,
    /// Mean of the server's prompt-token count minus the target, over the
    /// counted requests whose usage said (0 for token ids; text is
    /// re-tokenised).
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

/// Throughput by Little's law over the requests launched inside the
/// window: each slot keeps one request in flight, so a slot's rate is its
/// requests' tokens over the time they held it (dispatch delay and
/// back-off included), and the phase's is `concurrency` times that.
/// Counting tokens by their arrival in a fixed window instead aliases when
/// requests move in step — equal prompts and output lengths are batched
/// and finish together — because a window that is not a whole number of
/// request cycles long sees one wave too many or too few.
struct Throughput {
    concurrency: f64,
    /// Seconds the requests held their slots.
    held: f64,
    /// Prompt tokens of those that got a first token.
    prompt_tokens: u64,
    /// Output tokens they streamed.
    streamed: f64,
}

impl Throughput {
    fn of(launched_inside: &[&RequestRecord], concurrency: u32) -> Throughput {
        Throughput {
            concurrency: f64::from(concurrency),
            held: launched_inside
                .iter()
                .map(|r| r.finish_s + r.dispatch_delay_s.unwrap_or(0.0))
                .sum(),
            prompt_tokens: launched_inside
                .iter()
                .filter(|r| r.ttft_s.is_some())
                .map(|r| r.prompt_tokens_or_expected())
                .sum(),
            streamed: launched_inside
                .iter()
                .map(|r| chunk_tokens(r).sum::<f64>())
                .sum(),
        }
    }

    fn per_second(&self, tokens: f64) -> f64 {
        if self.held > 0.0 {
            self.concurrency * tokens / self.held
        } else {
            0.0
        }
    }
}

/// The latency histograms of the counted requests, and their per-request
/// output rates (sorted).
struct Latencies {
    ttft: Histogram<u64>,
    ttlt: Histogram<u64>,
    /// Over the individual gaps between chunks, per token.
    itl: Histogram<u64>,
    rates: Vec<f64>,
}

impl Latencies {
    fn of(counted: &[&RequestRecord]) -> Latencies {
        let (mut ttft, mut ttlt, mut itl) = (new_histogram(), new_histogram(), new_histogram());
        let mut rates = Vec::with_capacity(counted.len());
        for record in counted {
            if let Some(value) = record.ttft_s {
                record_seconds(&mut ttft, value);
            }
            if let Some(value) = record.ttlt_s {
                record_seconds(&mut ttlt, value);
            }
            let mut previous: Option<u32> = None;
            for (time_us, tokens) in record.chunk_times_us.iter().zip(chunk_tokens(record)) {
                if let Some(before) = previous {
                    let gap = f64::from(time_us.saturating_sub(before)) / 1e6;
                    record_seconds(&mut itl, gap / tokens.max(1.0));
                }
                previous = Some(*time_us);
            }
            if let Some(rate) = record.output_tps() {
                rates.push(rate);
            }
        }
        rates.sort_by(f64::total_cmp);
        Latencies {
            ttft,
            ttlt,
            itl,
            rates,
        }
    }

    fn rate_avg(&self) -> f64 {
        if self.rates.is_empty() {
            0.0
        } else {
            self.rates.iter().sum::<f64>() / self.rates.len() as f64
        }
    }
}

/// What the counted requests say of the cache and of the prompts the
/// server saw.
struct CacheFigures {
    counted_prompt_tokens: u64,
    cached_tokens: u64,
    cached_reported: u64,
    achieved_cache_rate: Option<f64>,
    prompt_token_drift: Option<f64>,
}

impl CacheFigures {
    fn of(counted: &[&RequestRecord], reports_cached: bool) -> CacheFigures {
        let cached_reported = counted.iter().filter(|r| r.cached_tokens.is_some()).count() as u64;
        let cached_tokens: u64 = counted.iter().filter_map(|r| r.cached_tokens).sum();
        let counted_prompt: u64 = counted.iter().map(|r| r.prompt_tokens_or_expected()).sum();
        let drifts: Vec<f64> = counted
            .iter()
            .filter_map(|r| Some(r.prompt_tokens? as f64 - r.expected_prompt_tokens as f64))
            .collect();
        CacheFigures {
            counted_prompt_tokens: counted_prompt,
            cached_tokens,
            cached_reported,
            // A server that reports cached tokens for some requests leaves
            // them out for requests with none cached (vLLM), so those count
            // as 0.
            achieved_cache_rate: ((reports_cached || cached_reported > 0) && counted_prompt > 0)
                .then(|| cached_tokens as f64 / counted_prompt as f64),
            prompt_token_drift: (!drifts.is_empty())
                .then(|| drifts.iter().sum::<f64>() / drifts.len() as f64),
        }
    }
}

impl PhaseFigures {
    /// The figures of a phase's records over `window` (SPEC §2.2): every
    /// figure is over the requests launched inside the window, the slow
    /// ones that finished after it included (for latency with
    /// `strict_window`, only those that finished inside).
    ///
    /// `reports_cached`: the server is known to report cached tokens, so a
    /// request without them had none cached (vLLM leaves zeros out).
    pub fn from_records(
        records: &[RequestRecord],
        window: &Window,
        strict_window: bool,
        reports_cached: bool,
    ) -> PhaseFigures {
        let concurrency = records.first().map_or(0, |r| r.concurrency);
        Self::from_records_at(records, window, concurrency, strict_window, reports_cached)
    }

    /// [`PhaseFigures::from_records`] for a load that held `concurrency`
    /// slots over the window, whatever it was before it (a sustained
    /// period, whose first requests ran at the previous period's level).
    pub fn from_records_at(
        records: &[RequestRecord],
        window: &Window,
        concurrency: u32,
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
        // A phase shorter than its requests may launch nothing inside its
        // window: then every request of the phase counts, and it says so.
        let whole_phase = !records.iter().any(|r| window.contains(r.launch_unix_s));
        let inside = |r: &RequestRecord| whole_phase || window.contains(r.launch_unix_s);
        let launched_inside: Vec<&RequestRecord> = records.iter().filter(|r| inside(r)).collect();
        let throughput = Throughput::of(&launched_inside, concurrency);
        // Latency: the requests launched inside the window.
        let counted: Vec<&RequestRecord> = records
            .iter()
            .filter(|r| r.ok() && inside(r) && (!strict_window || whole_phase || window.holds(r)))
            .collect();
        let latency = Latencies::of(&counted);
        let cache = CacheFigures::of(&counted, reports_cached);
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
            duration_s: window.length(),
            whole_phase,
            prompt_tokens: throughput.prompt_tokens,
            completion_tokens: throughput.streamed.round() as u64,
            counted_prompt_tokens: cache.counted_prompt_tokens,
            cached_tokens: cache.cached_tokens,
            cached_reported: cache.cached_reported,
            input_tps: throughput.per_second(throughput.prompt_tokens as f64),
            output_tps: throughput.per_second(throughput.streamed),
            ttft: Latency::from_histogram(&latency.ttft),
            ttlt: Latency::from_histogram(&latency.ttlt),
            itl: Latency::from_histogram(&latency.itl),
            req_output_tps_avg: latency.rate_avg(),
            req_output_tps_p5: percentile(&latency.rates, 0.05),
            req_output_tps_p10: percentile(&latency.rates, 0.10),
            achieved_cache_rate: cache.achieved_cache_rate,
            prompt_token_drift: cache.prompt_token_drift,
            errors,
            ttft_histogram: encode_histogram(&latency.ttft),
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::record::ErrorKind;
    use crate::stats::{Thresholds, merge_histograms};

    /// A request launched at `launch` (s) whose `tokens` output tokens
    /// stream one a chunk, the first at `ttft` and the rest `itl` apart;
    /// it finishes right after the last.
    pub(crate) fn record(launch: f64, ttft: f64, itl: f64, tokens: u32) -> RequestRecord {
        let chunk_times_us: Vec<u32> = (0..tokens)
            .map(|i| ((ttft + itl * f64::from(i)) * 1e6).round() as u32)
            .collect();
        let ttlt = ttft + itl * f64::from(tokens.saturating_sub(1));
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
            finish_s: ttlt + 0.001,
            chunks: tokens,
            max_chunk_gap_s: None,
            chunk_times_us,
            tokens_per_chunk: vec![1],
            expected_prompt_tokens: 1000,
            target_cached_tokens: 512,
            prompt_tokens: Some(1000),
            completion_tokens: Some(u64::from(tokens)),
            cached_tokens: Some(512),
            status: 200,
            resent: false,
            error_kind: None,
            error: None,
            in_window: false,
        }
    }

    fn window(start: f64, end: f64) -> Window {
        Window {
            start_unix_s: start,
            end_unix_s: end,
        }
    }

    pub(crate) fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn throughput_is_tokens_over_the_time_requests_held_their_slots() {
        // Concurrency 2; two requests launched inside the window held
        // their slots 2 s and 1 s (0.25 s before B was dispatch delay).
        let a = record(11.0, 0.5, 0.5, 4);
        let mut b = record(12.0, 0.25, 0.25, 4);
        b.dispatch_delay_s = Some(0.25);
        let held = a.finish_s + b.finish_s + 0.25;
        // Launched before the window (the first wave): not counted.
        let early = record(9.0, 0.5, 1.0, 20);
        let figures = PhaseFigures::from_records(&[early, a, b], &window(10.0, 20.0), false, false);
        assert!(
            close(figures.input_tps, 2.0 * 2000.0 / held),
            "{}",
            figures.input_tps
        );
        assert!(
            close(figures.output_tps, 2.0 * 8.0 / held),
            "{}",
            figures.output_tps
        );
        assert_eq!(
            (figures.prompt_tokens, figures.completion_tokens),
            (2000, 8)
        );
        assert_eq!(figures.counted, 2);
        assert!((figures.ttft.max - 0.5).abs() < 1e-3);
    }

    /// Eight slots in step: every request takes 1.25 s, all relaunched
    /// together — as a server runs equal requests batched — but no two
    /// requests are alike: slot s sends 1024 + 256 s prompt tokens and
    /// streams 16 + 4 s tokens, and wave w (launched at 1.25 w s) has its
    /// first token at 0.60 + 0.01 w s and 64 w tokens cached, so the
    /// figures tell which waves the window kept.
    fn in_step(phase_s: f64) -> PhaseFigures {
        let mut records = Vec::new();
        let mut wave = 0_u32;
        while 1.25 * f64::from(wave) < phase_s {
            for slot in 0..8_u32 {
                let ttft = 0.60 + 0.01 * f64::from(wave);
                let tokens = 16 + 4 * slot;
                let mut r = record(
                    1.25 * f64::from(wave),
                    ttft,
                    0.5 / f64::from(tokens),
                    tokens,
                );
                r.concurrency = 8;
                r.finish_s = 1.25;
                r.prompt_tokens = Some(u64::from(1024 + 256 * slot));
                r.cached_tokens = Some(64 * u64::from(wave));
                records.push(r);
            }
            wave += 1;
        }
        let w = Window::for_phase(&records, 0.0, phase_s, 8, 0.2);
        PhaseFigures::from_records(&records, &w, false, true)
    }

    #[test]
    fn requests_in_step_read_the_same_in_a_short_and_a_long_phase() {
        // Per wave: Σ prompt = 8 × 1024 + 256 × 28 = 15 360 tokens and
        // Σ output = 8 × 16 + 4 × 28 = 240 tokens in 8 × 1.25 s of slot
        // time, whichever waves are counted.
        let input = 8.0 * 15_360.0 / (8.0 * 1.25);
        let output = 8.0 * 240.0 / (8.0 * 1.25);
        // The waves the window keeps, by hand: its warm-up is one request
        // latency (1.25 s) or 20 % of the phase, whichever is longer, and
        // it keeps the requests launched from its start (inclusive) on.
        // 3 s and 3.3 s: launches 0, 1.25, 2.5 → waves 1–2; 7 s (warm-up
        // 1.4 s): waves 2–5 of 0–5; 20 s (warm-up 4 s): waves 4–15.
        for (phase_s, first, last) in [(3.0, 1, 2), (3.3, 1, 2), (7.0, 2, 5), (20.0, 4, 15)] {
            let figures = in_step(phase_s);
            let waves = f64::from(last - first + 1);
            assert!(
                close(figures.input_tps, input),
                "{phase_s} s: {} vs {input}",
                figures.input_tps
            );
            assert!(close(figures.output_tps, output), "{phase_s} s");
            assert_eq!(
                figures.counted,
                8 * u64::from(last - first + 1),
                "{phase_s} s"
            );
            assert_eq!(figures.prompt_tokens, (15_360.0 * waves) as u64);
            let first_ttft = 0.60 + 0.01 * f64::from(first);
            let last_ttft = 0.60 + 0.01 * f64::from(last);
            assert!(
                (figures.ttft.max - last_ttft).abs() < 1e-3,
                "{phase_s} s: {:?}",
                figures.ttft
            );
            assert!(
                (figures.ttft.avg - (first_ttft + last_ttft) / 2.0).abs() < 1e-3,
                "{phase_s} s: {:?}",
                figures.ttft
            );
            // Σ cached / Σ prompt: 64 × 8 × Σ w over 15 360 × waves.
            let cached: u32 = (first..=last).map(|w| 64 * 8 * w).sum();
            let rate = f64::from(cached) / (15_360.0 * waves);
            assert!(
                close(figures.achieved_cache_rate.unwrap(), rate),
                "{phase_s} s: {:?} vs {rate}",
                figures.achieved_cache_rate
            );
        }
    }

    #[test]
    fn a_slow_request_launched_inside_counts_with_all_its_time() {
        let mut records: Vec<RequestRecord> = (0..4)
            .map(|i| record(10.0 + f64::from(i), 0.5, 0.1, 5))
            .collect();
        let base = PhaseFigures::from_records(&records, &window(10.0, 14.0), false, false);
        // Launched at 13.9, it streams until 60 s after: no survivor bias.
        let mut slow = record(13.9, 0.5, 10.0, 6);
        slow.finish_s = 60.0;
        records.push(slow);
        let with_slow = PhaseFigures::from_records(&records, &window(10.0, 14.0), false, false);
        assert_eq!(with_slow.counted, base.counted + 1);
        assert!(with_slow.ttlt.max > 50.0);
        assert!(with_slow.input_tps < base.input_tps);
        // Strict keeps only the requests that also finished inside (the
        // last regular one ends at 13.0 + 0.9 + 0.001).
        let strict = PhaseFigures::from_records(&records, &window(10.0, 14.0), true, false);
        assert_eq!(strict.counted, 4);
    }

    #[test]
    fn a_window_without_a_launch_falls_back_to_the_whole_phase() {
        // Two slots whose requests take longer than the phase: both were
        // launched at its start, before the window.
        let mut records = vec![record(0.0, 2.5, 0.5, 4), record(0.0, 3.0, 0.5, 4)];
        for r in &mut records {
            r.concurrency = 2;
        }
        let figures = PhaseFigures::from_records(&records, &window(1.0, 2.0), false, false);
        assert!(figures.whole_phase);
        assert_eq!(figures.counted, 2);
        assert!(figures.input_tps > 0.0 && figures.ttft.p50 > 2.0);
        let figures = PhaseFigures::from_records(&records, &window(0.0, 2.0), false, false);
        assert!(!figures.whole_phase);
    }

    #[test]
    fn the_window_start_is_inclusive_and_its_end_exclusive() {
        let w = window(10.0, 20.0);
        let at_start = record(10.0, 0.5, 0.1, 1);
        let at_end = record(20.0, 0.5, 0.1, 1);
        let figures = PhaseFigures::from_records(&[at_start, at_end], &w, false, false);
        assert_eq!(figures.counted, 1);
        assert_eq!(
            (figures.prompt_tokens, figures.completion_tokens),
            (1000, 1)
        );
    }

    #[test]
    fn a_server_without_usage_still_has_its_stream_counted() {
        let mut r = record(11.0, 0.5, 0.25, 8);
        r.prompt_tokens = None;
        r.completion_tokens = None;
        r.cached_tokens = None;
        r.tokens_per_chunk = Vec::new();
        let figures = PhaseFigures::from_records(&[r], &window(10.0, 20.0), false, false);
        assert_eq!(figures.completion_tokens, 8, "one token a chunk");
        assert_eq!(figures.prompt_tokens, 1000, "the prompt as sent");
        assert_eq!(figures.achieved_cache_rate, None);
    }

    #[test]
    fn chunks_of_several_tokens_count_each_token_and_itl_is_per_token() {
        let mut r = record(11.0, 0.5, 0.3, 4);
        r.tokens_per_chunk = vec![3];
        r.completion_tokens = Some(12);
        let figures = PhaseFigures::from_records(&[r.clone()], &window(10.0, 20.0), false, false);
        assert_eq!(figures.completion_tokens, 12);
        // Gaps of 0.3 s carrying 3 tokens: 0.1 s a token.
        assert!((figures.itl.p50 - 0.1).abs() < 1e-3, "{:?}", figures.itl);
        // Unknown split: the completion tokens spread over the chunks.
        r.tokens_per_chunk = Vec::new();
        r.completion_tokens = Some(10);
        let figures = PhaseFigures::from_records(&[r], &window(10.0, 20.0), false, false);
        assert_eq!(figures.completion_tokens, 10);
    }

    #[test]
    fn itl_quantiles_are_over_gaps_not_per_request_means() {
        // One request with 9 fast gaps and 1 very slow one: its mean ITL
        // is 0.109 s, but the p50 gap is 0.01 s and the max 1 s.
        let mut r = record(11.0, 0.1, 0.01, 11);
        r.chunk_times_us[10] = r.chunk_times_us[9] + 1_000_000;
        let figures = PhaseFigures::from_records(&[r], &window(10.0, 20.0), false, false);
        assert!((figures.itl.p50 - 0.01).abs() < 1e-4, "{:?}", figures.itl);
        assert!((figures.itl.max - 1.0).abs() < 1e-2, "{:?}", figures.itl);
    }

    #[test]
    fn failures_are_counted_not_dropped() {
        let mut failed = record(11.0, 0.0, 0.0, 0);
        failed.error_kind = Some(ErrorKind::Http5xx);
        failed.ttft_s = None;
        let records = [record(11.0, 0.5, 0.1, 11), failed];
        let figures = PhaseFigures::from_records(&records, &window(10.0, 20.0), false, false);
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
        // One failure of two is what a server failing 1 % of requests
        // shows 2 % of the time: chance, not beyond the limit.
        assert_eq!(thresholds.check(&figures), Ok(()));
        let strict = Thresholds {
            max_error_rate: 0.0,
            ..thresholds
        };
        let why = strict.check(&figures).unwrap_err();
        assert!(
            why.contains("error rate: 1 of 2 requests failed (50.0 %), more than the 0"),
            "{why}"
        );
    }

    #[test]
    fn histograms_round_trip_and_merge_and_damage_is_an_error() {
        let figures = PhaseFigures::from_records(
            &[record(11.0, 0.5, 0.1, 3)],
            &window(10.0, 20.0),
            false,
            false,
        );
        let merged = merge_histograms([figures.ttft_histogram.as_str(); 2]).unwrap();
        assert_eq!(merged.len(), 2);
        assert!((Latency::from_histogram(&merged).p50 - 0.5).abs() < 1e-3);
        let damaged = &figures.ttft_histogram[..figures.ttft_histogram.len() / 2];
        assert!(merge_histograms([figures.ttft_histogram.as_str(), damaged]).is_err());
    }
}
