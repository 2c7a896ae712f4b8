//! One phase of closed-loop load: exactly `concurrency` requests in flight
//! until the window closes, each slot starting its next request as soon as
//! the last one ends; requests in flight at the close still finish. And the
//! warm-up, which sends every working-set prompt once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::{Client, Clock, Measured};
use crate::error::{Error, Result};
use crate::progress::{Live, Ui};
use crate::record::RequestRecord;
use crate::workload::{BuiltRequest, PromptFactory};

/// What every phase of a run shares.
pub struct Shared {
    pub client: Client,
    pub clock: Clock,
    /// The next request id; ids are never reused within a run directory.
    pub request_ids: AtomicU64,
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
}

/// Sends one built request and turns what came back into its record;
/// also returns when it ended. Whether it falls in the phase's window is
/// decided once the phase is over.
pub(super) async fn send(
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
    let mut slots = JoinSet::new();
    for _ in 0..label.concurrency {
        let (shared, factory, label, live) = (
            Arc::clone(&shared),
            Arc::clone(&factory),
            Arc::clone(&label),
            Arc::clone(&live),
        );
        slots.spawn(async move {
            let mut records = Vec::new();
            let mut slot_free: Option<Instant> = None;
            let mut failures_in_a_row = 0u32;
            loop {
                let now = Instant::now();
                if now >= window_end {
                    break;
                }
                if failures_in_a_row > 0 {
                    // A server that fails at once (refused, 429, 5xx) would
                    // otherwise be hammered by a tight loop: back off
                    // 10 ms, 20 ms, ... up to 1 s, within the window.
                    let pause = Duration::from_millis(10 << failures_in_a_row.min(7))
                        .min(Duration::from_secs(1));
                    tokio::time::sleep_until((now + pause).min(window_end).into()).await;
                    if Instant::now() >= window_end {
                        break;
                    }
                }
                let request_id = shared.request_ids.fetch_add(1, Ordering::Relaxed);
                let built = factory.request(label.cache_hit_rate, request_id);
                let affinity =
                    (built.cached_tokens > 0).then_some(u64::from(built.working_set_prompt));
                let (record, end) = send(&shared, &label, built, affinity, slot_free).await;
                if record.ok() {
                    failures_in_a_row = 0;
                } else {
                    failures_in_a_row += 1;
                }
                live.record(
                    record.ok(),
                    record.prompt_tokens_or_expected(),
                    record.ttft_s.map(Duration::from_secs_f64),
                );
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
    })
}

/// Sends every working-set prompt once, `concurrency` at a time.
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
                let (record, end) = send(&shared, &label, built, Some(index), slot_free).await;
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
