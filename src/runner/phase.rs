//! One phase of closed-loop load: exactly `concurrency` requests in flight
//! until the window closes, each slot starting its next request as soon as
//! the last one ends; requests in flight at the close still finish. And the
//! warm-up, which sends every working-set prompt once. A [`Stop::now`]
//! abandons the requests in flight; the completed ones are returned.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::stop::Stop;
use crate::client::{Client, Clock, Measured};
use crate::error::{Error, Result};
use crate::progress::{Live, Ui};
use crate::record::{ErrorKind, RequestRecord};
use crate::store::Journal;
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

/// Stops a point whose requests only meet connection-level failures
/// (connect, disconnect, timeout, 5xx): after `failures` of them in a row
/// with no success for `window`, no phase launches another request until
/// the breaker is armed again for the next point. Other failures (429,
/// 4xx, a broken stream) neither count nor reset: the server answered.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    window: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug)]
struct BreakerState {
    in_a_row: u32,
    kinds: BTreeMap<ErrorKind, u32>,
    last_error: String,
    since: Instant,
    tripped: Option<String>,
}

impl Breaker {
    /// `failures` 0 turns it off.
    pub fn new(failures: u32, window: Duration) -> Breaker {
        Breaker {
            failures,
            window,
            state: Mutex::new(BreakerState {
                in_a_row: 0,
                kinds: BTreeMap::new(),
                last_error: String::new(),
                since: Instant::now(),
                tripped: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the breaker and starts its window now.
    pub fn arm(&self) {
        let mut state = self.lock();
        state.in_a_row = 0;
        state.kinds.clear();
        state.since = Instant::now();
        state.tripped = None;
    }

    /// Counts a finished request.
    pub fn record(&self, record: &RequestRecord) {
        if self.failures == 0 {
            return;
        }
        let mut state = self.lock();
        match record.error_kind {
            None => {
                state.in_a_row = 0;
                state.kinds.clear();
                state.since = Instant::now();
            }
            Some(
                kind @ (ErrorKind::Connect
                | ErrorKind::Disconnect
                | ErrorKind::Timeout
                | ErrorKind::Http5xx),
            ) => {
                state.in_a_row += 1;
                *state.kinds.entry(kind).or_insert(0) += 1;
                state.last_error = record.error.clone().unwrap_or_default();
                let quiet = state.since.elapsed();
                if state.tripped.is_none()
                    && state.in_a_row >= self.failures
                    && quiet >= self.window
                {
                    let kinds: Vec<String> = state
                        .kinds
                        .iter()
                        .map(|(kind, n)| format!("{} {n}", kind.name()))
                        .collect();
                    state.tripped = Some(format!(
                        "circuit breaker: {} connection-level failures in a row ({}) and no \
                         success for {:.1} s; the last: {}",
                        state.in_a_row,
                        kinds.join(", "),
                        quiet.as_secs_f64(),
                        state.last_error
                    ));
                }
            }
            Some(_) => {}
        }
    }

    /// Why the breaker stopped the point, once it has.
    pub fn tripped(&self) -> Option<String> {
        self.lock().tripped.clone()
    }
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
pub(super) fn backoff(failures_in_a_row: u32) -> Duration {
    Duration::from_millis(10 << failures_in_a_row.min(7)).min(Duration::from_secs(1))
}

/// A slot's next request: built from the next id, sent unless a stop now
/// comes first (then `None`: it is abandoned). What finished is journaled,
/// counted by the breaker and shown live, and `failures_in_a_row` follows
/// it.
pub(super) async fn next_request(
    shared: &Shared,
    factory: &PromptFactory,
    label: &PhaseLabel,
    live: &Live,
    slot_free: Option<Instant>,
    failures_in_a_row: &mut u32,
) -> Option<(RequestRecord, Instant)> {
    let request_id = shared.request_ids.fetch_add(1, Ordering::Relaxed);
    let built = factory.request(label.cache_hit_rate, request_id);
    let affinity = (built.cached_tokens > 0).then_some(u64::from(built.working_set_prompt));
    let (record, end) = tokio::select! {
        // A request that has completed is kept, even when the stop came in
        // the same instant.
        biased;
        sent = send(shared, label, built, affinity, slot_free) => sent,
        () = shared.stop.until_now() => return None,
    };
    shared.journal.record(&record);
    shared.breaker.record(&record);
    if record.ok() {
        *failures_in_a_row = 0;
    } else {
        *failures_in_a_row += 1;
    }
    live.record(
        record.ok(),
        record.prompt_tokens_or_expected(),
        record.ttft_s.map(Duration::from_secs_f64),
    );
    Some((record, end))
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
            let mut slot_free: Option<Instant> = None;
            let mut failures_in_a_row = 0u32;
            loop {
                let now = Instant::now();
                if now >= window_end || shared.breaker.tripped().is_some() {
                    break;
                }
                if failures_in_a_row > 0 {
                    let pause = backoff(failures_in_a_row);
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
                let next = next_request(
                    &shared,
                    &factory,
                    &label,
                    &live,
                    slot_free,
                    &mut failures_in_a_row,
                );
                let Some((record, end)) = next.await else {
                    abandoned.store(true, Ordering::Relaxed);
                    break;
                };
                records.push(record);
                slot_free = Some(end);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: Option<ErrorKind>) -> RequestRecord {
        let mut record: RequestRecord = serde_json::from_value(serde_json::json!({
            "context_size": 512, "cache_hit_rate": 0, "phase_id": "RAMP_c2",
            "phase_index": 0, "concurrency": 2, "request_id": 1, "endpoint": 0,
            "working_set_prompt": 0, "launch_unix_s": 0.0, "dispatch_delay_s": null,
            "ttft_s": null, "ttlt_s": null, "finish_s": 0.1, "chunks": 0,
            "max_chunk_gap_s": null, "expected_prompt_tokens": 512,
            "target_cached_tokens": 0, "prompt_tokens": null, "completion_tokens": null,
            "cached_tokens": null, "status": 0, "error_kind": null, "error": null,
            "in_window": true
        }))
        .unwrap();
        record.error_kind = kind;
        record.error = kind.map(|k| format!("{} happened", k.name()));
        record
    }

    #[test]
    fn the_breaker_counts_connection_failures_in_a_row() {
        let breaker = Breaker::new(3, Duration::ZERO);
        breaker.record(&row(Some(ErrorKind::Connect)));
        breaker.record(&row(Some(ErrorKind::Http5xx)));
        // A success starts the count again; a 429 or a broken stream
        // neither counts nor resets.
        breaker.record(&row(None));
        breaker.record(&row(Some(ErrorKind::Timeout)));
        breaker.record(&row(Some(ErrorKind::RateLimited)));
        breaker.record(&row(Some(ErrorKind::Protocol)));
        breaker.record(&row(Some(ErrorKind::Disconnect)));
        assert_eq!(breaker.tripped(), None);
        breaker.record(&row(Some(ErrorKind::Connect)));
        let why = breaker.tripped().unwrap();
        assert!(
            why.contains(
                "3 connection-level failures in a row (connect 1, timeout 1, disconnect 1)"
            ) && why.ends_with("the last: connect happened"),
            "{why}"
        );
        breaker.arm();
        assert_eq!(breaker.tripped(), None);
    }

    #[test]
    fn the_breaker_waits_for_its_window_and_zero_turns_it_off() {
        let patient = Breaker::new(1, Duration::from_secs(3600));
        let off = Breaker::new(0, Duration::ZERO);
        for _ in 0..100 {
            patient.record(&row(Some(ErrorKind::Connect)));
            off.record(&row(Some(ErrorKind::Connect)));
        }
        assert_eq!(patient.tripped(), None);
        assert_eq!(off.tripped(), None);
    }
}
