//! One phase of closed-loop load: exactly `concurrency` requests in flight
//! until the window closes, each slot starting its next request as soon as
//! the last one ends; requests in flight at the close still finish. And the
//! warm-up, which sends every working-set prompt once. A [`Stop::now`]
//! abandons the requests in flight; the completed ones are returned.
//!
//! And [`finish_phase`], the one place a finished stretch of load — a ramp
//! or fixed phase, a sample, a sustained period — becomes its
//! [`PhaseRecord`]: its window, which requests are in it, its figures, the
//! thresholds' verdict; and the line it prints.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

pub use super::breaker::Breaker;
use super::stop::Stop;
use crate::client::{Client, Clock, Measured};
use crate::error::{Error, Result};
use crate::progress::{Live, Ui};
use crate::record::RequestRecord;
use crate::stats::{PhaseFigures, Thresholds, Window};
use crate::store::{Journal, PhaseKind, PhaseRecord};
use crate::workload::{BuiltRequest, PromptFactory};

/// What every phase of a run shares.
pub struct Shared {
    pub client: Client,
    pub clock: Clock,
    /// The next request id; ids are never reused within a run directory.
    pub request_ids: AtomicU64,
    pub breaker: Breaker,
    /// Looked at between phases, and by every request for a stop now.
    pub stop: Stop,
    /// Where each completed request goes at once, ahead of its phase's
    /// commit.
    pub journal: Journal,
}

/// Which phase, for its records.
#[derive(Debug, Clone)]
pub struct PhaseLabel {
    pub context_size: u64,
    pub cache_hit_rate: u32,
    pub phase_id: String,
    pub phase_index: u32,
    pub concurrency: u32,
}

/// The requests of a phase and its times.
pub struct PhaseRun {
    pub records: Vec<RequestRecord>,
    pub start: Instant,
    pub window_end: Instant,
    pub end: Instant,
    /// A stop now cut the phase short: `records` holds only the requests
    /// that completed, and the phase has no figures.
    pub abandoned: bool,
}

/// How long a slot waits after `failures_in_a_row` failures: a server that
/// fails at once (refused, 429, 5xx) would otherwise be hammered by a tight
/// loop. 10 ms, 20 ms, ... up to 1 s.
fn backoff(failures_in_a_row: u32) -> Duration {
    Duration::from_millis(10 << failures_in_a_row.min(7)).min(Duration::from_secs(1))
}

/// One load slot between its requests: when its last request ended, and
/// how many failed in a row.
#[derive(Debug, Default)]
pub(super) struct Slot {
    free_since: Option<Instant>,
    failures_in_a_row: u32,
}

impl Slot {
    /// The back-off before the next request, after failures.
    pub(super) fn pause(&self) -> Option<Duration> {
        (self.failures_in_a_row > 0).then(|| backoff(self.failures_in_a_row))
    }

    /// The slot's next request: built from the next id, sent unless a stop
    /// now comes first (then `None`: it is abandoned). What finished is
    /// journaled, counted by the breaker and shown live.
    pub(super) async fn next(
        &mut self,
        shared: &Shared,
        factory: &PromptFactory,
        label: &PhaseLabel,
        live: &Live,
    ) -> Option<RequestRecord> {
        let request_id = shared.request_ids.fetch_add(1, Ordering::Relaxed);
        let built = factory.request(label.cache_hit_rate, request_id);
        let affinity = (built.cached_tokens > 0).then_some(u64::from(built.working_set_prompt));
        let (record, end) = tokio::select! {
            // A request that has completed is kept, even when the stop came
            // in the same instant.
            biased;
            sent = send(shared, label, built, affinity, self.free_since) => sent,
            () = shared.stop.until_now() => return None,
        };
        shared.journal.record(&record);
        shared.breaker.record(&record);
        if record.ok() {
            self.failures_in_a_row = 0;
        } else {
            self.failures_in_a_row += 1;
        }
        live.record(
            record.ok(),
            record.prompt_tokens_or_expected(),
            record.ttft_s.map(Duration::from_secs_f64),
        );
        self.free_since = Some(end);
        Some(record)
    }
}

/// Sends one built request and turns what came back into its record;
/// also returns when it ended. Whether it falls in the phase's window is
/// decided once the phase is over.
async fn send(
    shared: &Shared,
    label: &PhaseLabel,
    mut built: BuiltRequest,
    affinity: Option<u64>,
    slot_free: Option<Instant>,
) -> (RequestRecord, Instant) {
    let body = std::mem::take(&mut built.body);
    let launch = Instant::now();
    let m: Measured = shared.client.stream(body, launch, affinity).await;
    let end = Instant::now();
    if let Some(kind) = m.error_kind {
        tracing::debug!(
            request = built.request_id,
            phase = %label.phase_id,
            "request failed ({}): {}",
            kind.name(),
            m.error.as_deref().unwrap_or("")
        );
    }
    let record = RequestRecord {
        context_size: label.context_size,
        cache_hit_rate: label.cache_hit_rate,
        phase_id: label.phase_id.clone(),
        phase_index: label.phase_index,
        concurrency: label.concurrency,
        request_id: built.request_id,
        endpoint: m.endpoint,
        working_set_prompt: built.working_set_prompt,
        launch_unix_s: shared.clock.unix(launch),
        dispatch_delay_s: slot_free.map(|free| (launch - free).as_secs_f64()),
        ttft_s: m.ttft.map(|d| d.as_secs_f64()),
        ttlt_s: m.ttlt.map(|d| d.as_secs_f64()),
        finish_s: m.finish.as_secs_f64(),
        chunks: m.chunks,
        max_chunk_gap_s: m.max_chunk_gap.map(|d| d.as_secs_f64()),
        tokens_per_chunk: crate::record::tokens_per_chunk(
            &m.chunk_tokens,
            m.chunks,
            m.completion_tokens,
        ),
        chunk_times_us: m.chunk_times_us,
        expected_prompt_tokens: built.prompt_tokens,
        target_cached_tokens: built.cached_tokens,
        prompt_tokens: m.prompt_tokens,
        completion_tokens: m.completion_tokens,
        cached_tokens: m.cached_tokens,
        status: m.status,
        resent: m.resent,
        error_kind: m.error_kind,
        error: m.error,
        in_window: false,
    };
    (record, end)
}

/// Waits for every slot and returns their records in launch order. A
/// slot that panicked is a bug: the others still finish, and the error
/// says which phase it was.
async fn gather(
    mut slots: JoinSet<Vec<RequestRecord>>,
    phase_id: &str,
) -> Result<Vec<RequestRecord>> {
    let mut records = Vec::new();
    let mut broken = None;
    while let Some(slot) = slots.join_next().await {
        match slot {
            Ok(slot_records) => records.extend(slot_records),
            Err(e) => broken = Some(e),
        }
    }
    if let Some(e) = broken {
        return Err(Error::Internal(anyhow::anyhow!(
            "a load slot of {phase_id} failed: {e}; the phases before it are saved"
        )));
    }
    records.sort_by(|a, b| a.launch_unix_s.total_cmp(&b.launch_unix_s));
    Ok(records)
}

/// Runs one closed-loop phase.
pub async fn run_phase(
    shared: Arc<Shared>,
    factory: Arc<PromptFactory>,
    label: PhaseLabel,
    duration: Duration,
    live: Arc<Live>,
) -> Result<PhaseRun> {
    let start = Instant::now();
    let window_end = start + duration;
    let label = Arc::new(label);
    let abandoned = Arc::new(AtomicBool::new(false));
    let mut slots = JoinSet::new();
    for _ in 0..label.concurrency {
        let (shared, factory, label, live, abandoned) = (
            Arc::clone(&shared),
            Arc::clone(&factory),
            Arc::clone(&label),
            Arc::clone(&live),
            Arc::clone(&abandoned),
        );
        slots.spawn(async move {
            let mut records = Vec::new();
            let mut slot = Slot::default();
            loop {
                let now = Instant::now();
                if now >= window_end || shared.breaker.tripped().is_some() {
                    break;
                }
                if let Some(pause) = slot.pause() {
                    tokio::select! {
                        () = tokio::time::sleep_until((now + pause).min(window_end).into()) => {}
                        () = shared.stop.until_now() => {
                            abandoned.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                    if Instant::now() >= window_end || shared.breaker.tripped().is_some() {
                        break;
                    }
                }
                let Some(record) = slot.next(&shared, &factory, &label, &live).await else {
                    abandoned.store(true, Ordering::Relaxed);
                    break;
                };
                records.push(record);
            }
            records
        });
    }
    let records = gather(slots, &label.phase_id).await?;
    Ok(PhaseRun {
        records,
        start,
        window_end,
        end: Instant::now(),
        abandoned: abandoned.load(Ordering::Relaxed),
    })
}

/// Sends every working-set prompt once, `concurrency` at a time (after a
/// stop now, only those that completed: see [`Stop::is_now`]).
pub async fn run_warmup(
    shared: Arc<Shared>,
    factory: Arc<PromptFactory>,
    label: PhaseLabel,
    ui: &Ui,
) -> Result<Vec<RequestRecord>> {
    let total = factory.working_set;
    let bar = ui.counter(
        format!("ctx {} warm-up", label.context_size),
        u64::from(total),
    );
    let next = Arc::new(AtomicU64::new(0));
    let label = Arc::new(label);
    let bar = Arc::new(bar);
    let mut slots = JoinSet::new();
    for _ in 0..label.concurrency.min(total.max(1)) {
        let (shared, factory, label, next, bar) = (
            Arc::clone(&shared),
            Arc::clone(&factory),
            Arc::clone(&label),
            Arc::clone(&next),
            Arc::clone(&bar),
        );
        slots.spawn(async move {
            let mut records = Vec::new();
            let mut slot_free: Option<Instant> = None;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= u64::from(factory.working_set) {
                    break;
                }
                let request_id = shared.request_ids.fetch_add(1, Ordering::Relaxed);
                let built = factory.warmup(index as u32, request_id);
                let sent = tokio::select! {
                    // A request that has completed is kept, even when
                    // the stop came in the same instant.
                    biased;
                    sent = send(&shared, &label, built, Some(index), slot_free) => Some(sent),
                    () = shared.stop.until_now() => None,
                };
                let Some((record, end)) = sent else {
                    break;
                };
                shared.journal.record(&record);
                records.push(record);
                bar.inc();
                slot_free = Some(end);
            }
            records
        });
    }
    let records = gather(slots, &label.phase_id).await;
    if let Ok(bar) = Arc::try_unwrap(bar) {
        bar.finish();
    }
    records
}

/// How a finished load finds its steady-state window.
#[derive(Debug, Clone, Copy)]
pub enum WindowRule {
    /// The launches from the load's start to `launches_end`, less a warm-up
    /// of `fraction` of them or one request latency when that is longer
    /// ([`Window::for_phase`]).
    AfterWarmup {
        launches_end: Instant,
        fraction: f64,
    },
    /// From `start` to `end` exactly: a sustained period after the first,
    /// once the load holds its level.
    Between { start: Instant, end: Instant },
}

/// A stretch of load that ended, before its figures.
#[derive(Debug)]
pub struct FinishedLoad {
    /// Which phase, at the concurrency it is judged at.
    pub label: PhaseLabel,
    pub kind: PhaseKind,
    pub planned_duration_s: f64,
    pub records: Vec<RequestRecord>,
    pub start: Instant,
    /// When its last request ended.
    pub end: Instant,
    pub window: WindowRule,
    /// The server's own prefix-cache hit rate over it (`--metrics-url`).
    pub server_cache_rate: Option<f64>,
}

/// How a load ran: to its end, or cut short by a stop now (the completed
/// requests, which the commit keeps marked as unfinished).
#[derive(Debug)]
pub enum Ran {
    Finished(FinishedLoad),
    Stopped(Vec<RequestRecord>),
}

/// What judging a finished load takes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Judging {
    pub clock: Clock,
    pub thresholds: Thresholds,
    /// `--strict-time-window`.
    pub strict_time_window: bool,
    /// The server is known to report cached tokens (a missing count is 0).
    pub reports_cached: bool,
}

/// The record of a finished load, and its requests marked in or out of its
/// window. The same for every kind of phase; a sustained period's decision
/// is added by its plan.
pub fn finish_phase(load: FinishedLoad, judging: &Judging) -> (PhaseRecord, Vec<RequestRecord>) {
    let FinishedLoad {
        label,
        kind,
        planned_duration_s,
        mut records,
        start,
        end,
        window,
        server_cache_rate,
    } = load;
    let clock = judging.clock;
    let window = match window {
        WindowRule::AfterWarmup {
            launches_end,
            fraction,
        } => Window::for_phase(
            &records,
            clock.unix(start),
            clock.unix(launches_end),
            label.concurrency,
            fraction,
        ),
        WindowRule::Between { start, end } => Window {
            start_unix_s: clock.unix(start),
            end_unix_s: clock.unix(end).max(clock.unix(start)),
        },
    };
    for record in &mut records {
        record.in_window = window.holds(record);
    }
    let figures = PhaseFigures::from_records_at(
        &records,
        &window,
        label.concurrency,
        judging.strict_time_window,
        judging.reports_cached,
    );
    let verdict = judging.thresholds.check(&figures);
    let phase = PhaseRecord {
        context_size: label.context_size,
        cache_hit_rate: label.cache_hit_rate,
        phase_index: label.phase_index,
        phase_id: label.phase_id,
        kind,
        concurrency: label.concurrency,
        start_unix_s: clock.unix(start),
        window_start_unix_s: window.start_unix_s,
        window_end_unix_s: window.end_unix_s,
        end_unix_s: clock.unix(end),
        planned_duration_s,
        passed: verdict.is_ok(),
        reason: verdict.err(),
        decision_ttft_s: figures.ttft_metric(judging.thresholds.ttft_metric),
        server_cache_rate,
        figures,
        period: None,
    };
    (phase, records)
}

/// The line a committed phase prints: its counts, throughput, TTFT and
/// verdict (and a sustained period's decision).
pub fn progress_line(phase: &PhaseRecord) -> String {
    let (context, rate, f) = (phase.context_size, phase.cache_hit_rate, &phase.figures);
    let name = match (phase.kind, phase.period) {
        (PhaseKind::Period(n), Some(_)) => format!("PERIOD_{n:<3} c{:<5}", phase.concurrency),
        _ => format!("{:<20}", phase.phase_id),
    };
    let verdict = match &phase.reason {
        None => "pass".to_string(),
        Some(reason) => format!("over: {reason}"),
    };
    let decided = phase.period.map_or(String::new(), |d| {
        format!("  -> {} c{}", d.decision.name(), d.next_concurrency)
    });
    format!(
        "ctx {context} {rate:>3}% {name} {:>6} ok {:>4} failed  input {:>9.0} tok/s  TTFT p95 \
         {:.3}s  {verdict}{decided}",
        f.completed, f.failed, f.input_tps, f.ttft.p95,
    )
}

/// What a committed phase should warn of: a window too short to mean what
/// its figures say. A ramp phase that overshoots is judged all the same; a
/// sample must be steady-state to mean what it says.
pub fn phase_warning(phase: &PhaseRecord) -> Option<String> {
    let (context, rate, f) = (phase.context_size, phase.cache_hit_rate, &phase.figures);
    let window_s = phase.window_end_unix_s - phase.window_start_unix_s;
    let period_s = phase.planned_duration_s;
    match phase.kind {
        PhaseKind::Period(n) if f.whole_phase => Some(format!(
            "ctx {context} {rate}% period {n}: no request was launched inside its window (the \
             period is not much longer than its requests), so its figures are over all its \
             requests; raise --assessment-period"
        )),
        PhaseKind::Period(n) if window_s < period_s / 2.0 => Some(format!(
            "ctx {context} {rate}% period {n}: its window was {window_s:.1} s of {period_s} s \
             (its first part waits for the previous period's requests to finish), so its \
             figures rest on few requests; raise --assessment-period to several request \
             latencies"
        )),
        kind if f.whole_phase && kind.is_sample() => Some(format!(
            "ctx {context} {rate}% {}: no request was launched inside the steady-state window \
             (the phase is shorter than its requests), so its figures are over the whole \
             phase, warm-up included; lengthen --ramp-duration and --sample-duration",
            phase.phase_id
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Decision, PeriodDecision};

    fn record(kind: PhaseKind, concurrency: u32) -> PhaseRecord {
        let window = Window {
            start_unix_s: 1.0,
            end_unix_s: 2.0,
        };
        let mut figures = PhaseFigures::from_records(&[], &window, false, false);
        figures.whole_phase = false;
        figures.completed = 12;
        figures.failed = 1;
        figures.input_tps = 1234.4;
        figures.ttft.p95 = 0.25;
        PhaseRecord {
            context_size: 512,
            cache_hit_rate: 50,
            phase_index: 0,
            phase_id: kind.id(concurrency),
            kind,
            concurrency,
            start_unix_s: 0.0,
            window_start_unix_s: 1.0,
            window_end_unix_s: 2.0,
            end_unix_s: 2.5,
            planned_duration_s: 2.0,
            passed: true,
            reason: None,
            decision_ttft_s: 0.25,
            server_cache_rate: None,
            figures,
            period: None,
        }
    }

    #[test]
    fn a_phase_and_a_period_print_one_line_each() {
        let mut ramp = record(PhaseKind::Ramp, 8);
        assert_eq!(
            progress_line(&ramp),
            "ctx 512  50% RAMP_c8                  12 ok    1 failed  input      1234 tok/s  \
             TTFT p95 0.250s  pass"
        );
        ramp.passed = false;
        ramp.reason = Some("TTFT p95 0.250s > 0.200s".into());
        assert!(progress_line(&ramp).ends_with("  over: TTFT p95 0.250s > 0.200s"));
        let mut period = record(PhaseKind::Period(3), 8);
        period.period = Some(PeriodDecision {
            decision: Decision::RampUp,
            next_concurrency: 12,
        });
        assert_eq!(
            progress_line(&period),
            "ctx 512  50% PERIOD_3   c8         12 ok    1 failed  input      1234 tok/s  \
             TTFT p95 0.250s  pass  -> RAMP_UP c12"
        );
    }

    #[test]
    fn a_sample_or_a_period_without_a_steady_window_warns() {
        let mut sample = record(PhaseKind::Retry(1), 8);
        assert_eq!(phase_warning(&sample), None);
        sample.figures.whole_phase = true;
        assert!(
            phase_warning(&sample)
                .unwrap()
                .starts_with("ctx 512 50% RETRY_1: no request")
        );
        let mut ramp = record(PhaseKind::Ramp, 8);
        ramp.figures.whole_phase = true;
        assert_eq!(
            phase_warning(&ramp),
            None,
            "a ramp phase is judged all the same"
        );
        let mut period = record(PhaseKind::Period(2), 8);
        period.window_start_unix_s = 1.5;
        let short = phase_warning(&period).unwrap();
        assert!(short.contains("its window was 0.5 s of 2 s"), "{short}");
    }
}
