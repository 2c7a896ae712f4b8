//! Sustained mode's load (`--mode sustained`): one continuous closed loop
//! per point, never drained, whose concurrency the controller sets after
//! each assessment period. Each period is judged over its own window and
//! written as it is decided, so a killed point resumes after its last
//! written period.
//!
//! Period k launches from its boundary `B(k-1)` to `B(k)` (the boundaries
//! `--assessment-period` apart). At `B(k)` the launches go on at the same
//! concurrency as period k+1's first requests; once every request period k
//! launched has finished (`S(k)`, about one request latency later) its
//! figures are final, the controller decides, and the new concurrency
//! holds from then: new slots start at once, surplus slots finish their
//! request and stop. Period k+1's window opens when the load holds the new
//! level (at `S(k)`, or when the last surplus request ended) and closes at
//! `B(k+1)`; its figures are the steady-state figures of a phase over that
//! window (Little's law over the requests launched inside it). The first
//! period of a point (or of a resume) leaves out one request latency, as a
//! phase's warm-up does. After the last period the load also goes on until
//! its requests are done (those launched meanwhile are the period's tail,
//! outside its window), so no window ends on a draining server.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::phase::{PhaseLabel, Shared, backoff, next_request};
use super::plan::PlanResult;
use super::plan::sustained::{Controller, ControllerParams, PeriodInput};
use super::point::Sweep;
use crate::error::{Error, Result};
use crate::progress::Live;
use crate::record::RequestRecord;
use crate::stats::{PhaseFigures, Window};
use crate::store::{PhaseKind, PhaseRecord, sustained_periods};
use crate::workload::PromptFactory;

/// What the slots read before each launch, under one lock, so a request is
/// counted in exactly one stretch of launches (an epoch: a period's, or the
/// last period's tail).
struct Launch {
    label: Arc<PhaseLabel>,
    live: Arc<Live>,
    epoch: u32,
    /// Slots with an index at or above this stop after their request.
    target: u32,
    stopped: bool,
    /// Requests launched, by epoch.
    launched: BTreeMap<u32, u64>,
    /// A slot panicked (a bug): its request will never report.
    broken: bool,
}

fn lock(launch: &Mutex<Launch>) -> MutexGuard<'_, Launch> {
    // A slot never panics while holding the lock; if one did, the counts
    // are still whole.
    launch.lock().unwrap_or_else(|e| e.into_inner())
}

/// One slot: starts its next request as soon as the last one ends, until
/// the load stops or its index is no longer under the target.
async fn slot(
    index: u32,
    shared: Arc<Shared>,
    factory: Arc<PromptFactory>,
    launch: Arc<Mutex<Launch>>,
    records: mpsc::UnboundedSender<(u32, RequestRecord)>,
) {
    let mut slot_free: Option<Instant> = None;
    let mut failures_in_a_row = 0u32;
    loop {
        if failures_in_a_row > 0 {
            // As in a phase: a server that fails at once is not hammered.
            tokio::time::sleep(backoff(failures_in_a_row)).await;
        }
        let (epoch, label, live) = {
            let mut state = lock(&launch);
            if state.stopped || index >= state.target || shared.breaker.tripped().is_some() {
                break;
            }
            let epoch = state.epoch;
            *state.launched.entry(epoch).or_insert(0) += 1;
            (epoch, Arc::clone(&state.label), Arc::clone(&state.live))
        };
        let next = next_request(
            &shared,
            &factory,
            &label,
            &live,
            slot_free,
            &mut failures_in_a_row,
        );
        // Stopped now: the request is abandoned (the period loop saves the
        // completed ones).
        let Some((record, end)) = next.await else {
            break;
        };
        if records.send((epoch, record)).is_err() {
            break;
        }
        slot_free = Some(end);
    }
}

/// The continuous load of one point.
struct ContinuousLoad {
    shared: Arc<Shared>,
    factory: Arc<PromptFactory>,
    launch: Arc<Mutex<Launch>>,
    slots: Vec<JoinHandle<()>>,
    sender: mpsc::UnboundedSender<(u32, RequestRecord)>,
    receiver: mpsc::UnboundedReceiver<(u32, RequestRecord)>,
    /// Finished requests not yet taken, by epoch.
    finished: BTreeMap<u32, Vec<RequestRecord>>,
}

impl ContinuousLoad {
    fn new(
        shared: Arc<Shared>,
        factory: Arc<PromptFactory>,
        label: PhaseLabel,
        live: Arc<Live>,
    ) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        ContinuousLoad {
            shared,
            factory,
            launch: Arc::new(Mutex::new(Launch {
                label: Arc::new(label),
                live,
                epoch: 0,
                target: 0,
                stopped: false,
                launched: BTreeMap::new(),
                broken: false,
            })),
            slots: Vec::new(),
            sender,
            receiver,
            finished: BTreeMap::new(),
        }
    }

    /// Holds `target` requests in flight from now: new slots start at once;
    /// surplus slots finish their request and stop, and this waits for
    /// them, so the load is at `target` when it returns.
    async fn set_concurrency(&mut self, target: u32) {
        {
            let mut state = lock(&self.launch);
            state.target = target;
            let mut label = (*state.label).clone();
            label.concurrency = target;
            state.label = Arc::new(label);
        }
        while (self.slots.len() as u32) < target {
            let index = self.slots.len() as u32;
            let launch = Arc::clone(&self.launch);
            let run = slot(
                index,
                Arc::clone(&self.shared),
                Arc::clone(&self.factory),
                Arc::clone(&self.launch),
                self.sender.clone(),
            );
            self.slots.push(tokio::spawn(async move {
                if AssertUnwindSafe(run).catch_unwind().await.is_err() {
                    lock(&launch).broken = true;
                }
            }));
        }
        while self.slots.len() as u32 > target {
            if let Some(handle) = self.slots.pop() {
                // A slot that panicked is gone either way; its requests
                // already sent their records.
                let _ = handle.await;
            }
        }
    }

    /// Starts the next epoch of launches, at the same concurrency, under
    /// `label`; returns the epoch that ended and how many it launched.
    fn next_epoch(&self, label: PhaseLabel, live: Arc<Live>) -> (u32, u64) {
        let mut state = lock(&self.launch);
        let ended = state.epoch;
        let concurrency = state.label.concurrency;
        state.label = Arc::new(PhaseLabel {
            concurrency,
            ..label
        });
        state.live = live;
        state.epoch += 1;
        (ended, state.launched.get(&ended).copied().unwrap_or(0))
    }

    /// Stops every launch; returns the last epoch and how many it launched.
    fn close(&self) -> (u32, u64) {
        let mut state = lock(&self.launch);
        state.stopped = true;
        let last = state.epoch;
        (last, state.launched.get(&last).copied().unwrap_or(0))
    }

    /// Waits until all `launched` requests of `epoch` have finished and
    /// returns them.
    async fn collect(&mut self, (epoch, launched): (u32, u64)) -> Result<Vec<RequestRecord>> {
        while (self.finished.get(&epoch).map_or(0, Vec::len) as u64) < launched {
            if lock(&self.launch).broken {
                return Err(Error::Internal(anyhow::anyhow!(
                    "a load slot of the sustained load failed; the periods before it are saved"
                )));
            }
            // Wakes now and then to notice a slot that failed.
            match tokio::time::timeout(Duration::from_millis(250), self.receiver.recv()).await {
                Ok(Some((of, record))) => self.finished.entry(of).or_default().push(record),
                Ok(None) => {
                    return Err(Error::Internal(anyhow::anyhow!(
                        "the sustained load stopped before its requests finished"
                    )));
                }
                Err(_) => {}
            }
        }
        Ok(self.finished.remove(&epoch).unwrap_or_default())
    }

    /// The finished requests not yet taken, left in place.
    fn take_pending(&mut self) -> Vec<RequestRecord> {
        while let Ok((of, record)) = self.receiver.try_recv() {
            self.finished.entry(of).or_default().push(record);
        }
        self.finished.values().flatten().cloned().collect()
    }

    /// Every finished request not yet taken, of any epoch: what a stop now
    /// saves.
    fn take_all(&mut self) -> Vec<RequestRecord> {
        while let Ok((of, record)) = self.receiver.try_recv() {
            self.finished.entry(of).or_default().push(record);
        }
        std::mem::take(&mut self.finished)
            .into_values()
            .flatten()
            .collect()
    }
}

impl Drop for ContinuousLoad {
    fn drop(&mut self) {
        // An error or an interruption: nothing more is launched.
        for handle in &self.slots {
            handle.abort();
        }
    }
}

impl Sweep<'_> {
    /// The controller of a point, with the periods already written (a
    /// resumed point) replayed.
    fn controller(&self, periods: &[PhaseRecord]) -> Controller {
        let settings = self.settings;
        let mut controller = Controller::new(ControllerParams {
            start_concurrency: settings.start_concurrency,
            increment: settings.concurrency_increment,
            max_concurrency: settings.max_concurrency,
            max_ttft: settings.max_ttft,
            min_tokens_per_req: settings.min_tokens_per_req,
        });
        for period in periods {
            controller.decide(self.period_input(period));
        }
        controller
    }

    fn period_input(&self, period: &PhaseRecord) -> PeriodInput {
        let f = &period.figures;
        PeriodInput {
            concurrency: period.concurrency,
            passed: period.passed,
            counted: f.counted,
            failed: f.failed,
            ttft: period.decision_ttft_s,
            tokens_per_req: f.tokens_per_req_metric(self.settings.tokens_per_req_metric),
            input_tps: f.input_tps,
        }
    }

    /// Runs the periods of a sustained point that are not written yet and
    /// returns where the controller settled (indexes into the point's
    /// periods).
    pub(super) async fn sustained_periods(
        &mut self,
        factory: &Arc<PromptFactory>,
        context: u64,
        rate: u32,
    ) -> Result<PlanResult> {
        let period_s = self.settings.assessment_period;
        // --test-duration in whole periods.
        let total = ((self.settings.test_duration / period_s) + 1e-9)
            .floor()
            .max(1.0) as u32;
        let done: Vec<PhaseRecord> = self
            .progress
            .current
            .as_ref()
            .map(|c| c.phases.clone())
            .unwrap_or_default();
        let mut controller = self.controller(&done);
        let first = done.len() as u32 + 1;
        if first > total {
            return Ok(controller.result());
        }
        self.shared.stop.check()?;
        self.shared.journal.open(&self.dir, context)?;
        if first > 1 {
            self.ui.line(&format!(
                "ctx {context} {rate:>3}%: resuming after period {} of {total} at concurrency {}",
                first - 1,
                controller.concurrency()
            ));
        }
        let label = |n: u32, concurrency: u32| PhaseLabel {
            context_size: context,
            cache_hit_rate: rate,
            phase_id: PhaseKind::Period(n).id(concurrency),
            phase_index: n - 1,
            concurrency,
        };
        let period = Duration::from_secs_f64(period_s);
        let live = Arc::new(Live::new());
        let mut load = ContinuousLoad::new(
            Arc::clone(&self.shared),
            Arc::clone(factory),
            label(first, controller.concurrency()),
            Arc::clone(&live),
        );
        let start = Instant::now();
        load.set_concurrency(controller.concurrency()).await;
        let mut bar = Some(self.ui.phase(
            format!("ctx {context} {rate:>3}% PERIOD_{first}"),
            period_s,
            &live,
        ));
        let mut period_start = start;
        let mut window_start = start;
        for n in first..=total {
            let concurrency = controller.concurrency();
            let boundary = start + period * (n - first + 1);
            let stopped_now = tokio::select! {
                () = tokio::time::sleep_until(boundary.into()) => false,
                () = self.shared.stop.until_now() => true,
            };
            if stopped_now {
                return self.commit_stopped(context, load.take_all());
            }
            let boundary = Instant::now().max(boundary);
            // A stop asked for, or the circuit breaker: this period is the
            // last one measured (its tail is collected with it).
            let last = n == total
                || self.shared.stop.is_requested()
                || self.shared.breaker.tripped().is_some();
            // The launches go on at this concurrency while the period's
            // last requests finish (as the next period's first requests,
            // or after the last period as its tail), so no request of the
            // period sees a draining server.
            let next_live = Arc::new(Live::new());
            // The last period's tail is its own (a stop or the breaker can make
            // any period the last).
            let next_label = label(if last { n } else { n + 1 }, concurrency);
            let ended = load.next_epoch(next_label, Arc::clone(&next_live));
            let collected = tokio::select! {
                records = load.collect(ended) => Some(records),
                () = self.shared.stop.until_now() => None,
            };
            let Some(records) = collected else {
                return self.commit_stopped(context, load.take_all());
            };
            let mut records = records?;
            if last {
                let tail = load.close();
                let collected = tokio::select! {
                    records = load.collect(tail) => Some(records),
                    () = self.shared.stop.until_now() => None,
                };
                let Some(tail) = collected else {
                    records.extend(load.take_all());
                    return self.commit_stopped(context, records);
                };
                records.extend(tail?);
            }
            records.sort_by(|a, b| a.launch_unix_s.total_cmp(&b.launch_unix_s));
            let settled = Instant::now();
            if let Some(bar) = bar.take() {
                bar.finish();
            }
            let clock = self.shared.clock;
            let window = if n == first {
                Window::for_phase(
                    &records,
                    clock.unix(period_start),
                    clock.unix(boundary),
                    concurrency,
                    0.0,
                )
            } else {
                Window {
                    start_unix_s: clock.unix(window_start),
                    end_unix_s: clock.unix(boundary).max(clock.unix(window_start)),
                }
            };
            for record in &mut records {
                record.in_window = window.holds(record);
            }
            let figures = PhaseFigures::from_records_at(
                &records,
                &window,
                concurrency,
                self.settings.strict_time_window,
                self.reports_cached,
            );
            let verdict = self.thresholds.check(&figures);
            let mut phase = PhaseRecord {
                context_size: context,
                cache_hit_rate: rate,
                phase_index: n - 1,
                phase_id: PhaseKind::Period(n).id(concurrency),
                kind: PhaseKind::Period(n),
                concurrency,
                start_unix_s: clock.unix(period_start),
                window_start_unix_s: window.start_unix_s,
                window_end_unix_s: window.end_unix_s,
                end_unix_s: clock.unix(settled),
                planned_duration_s: period_s,
                passed: verdict.is_ok(),
                reason: verdict.as_ref().err().cloned(),
                decision_ttft_s: figures.ttft_metric(self.settings.ttft_metric),
                server_cache_rate: None,
                figures,
                period: None,
            };
            let decided = controller.decide(self.period_input(&phase));
            phase.period = Some(decided);
            // The period log is appended like the other CSVs and committed
            // with them, so a resumed point keeps its rows as written.
            let prefix = format!("sustained_periods_ctx{context}_cache{rate}_");
            let log = self
                .progress
                .files
                .keys()
                .find(|name| name.starts_with(&prefix))
                .cloned()
                .unwrap_or_else(|| sustained_periods(context, rate, phase.start_unix_s));
            let length = self.dir.append_period(&log, &phase)?;
            self.progress.files.insert(log, length);
            self.commit(context, &records, Some(&phase))?;
            // The commit ends the journal; the next period's requests that
            // finished meanwhile go into a fresh one with those to come.
            if !last {
                self.shared.journal.open(&self.dir, context)?;
                for record in load.take_pending() {
                    self.shared.journal.record(&record);
                }
            }
            self.check_answering(&phase, &records)?;
            let f = &phase.figures;
            self.ui.line(&format!(
                "ctx {context} {rate:>3}% PERIOD_{n:<3} c{concurrency:<5} {:>6} ok {:>4} failed  \
                 input {:>9.0} tok/s  TTFT p95 {:.3}s  {}  -> {} c{}",
                f.completed,
                f.failed,
                f.input_tps,
                f.ttft.p95,
                match &verdict {
                    Ok(()) => "pass".to_string(),
                    Err(reason) => format!("over: {reason}"),
                },
                decided.decision.name(),
                decided.next_concurrency,
            ));
            let window_s = phase.window_end_unix_s - phase.window_start_unix_s;
            if f.whole_phase {
                self.ui.warn(&format!(
                    "ctx {context} {rate}% period {n}: no request was launched inside its \
                     window (the period is not much longer than its requests), so its figures \
                     are over all its requests; raise --assessment-period"
                ));
            } else if window_s < period_s / 2.0 {
                self.ui.warn(&format!(
                    "ctx {context} {rate}% period {n}: its window was {window_s:.1} s of \
                     {period_s} s (its first part waits for the previous period's requests \
                     to finish), so its figures rest on few requests; raise \
                     --assessment-period to several request latencies"
                ));
            }
            if last && n < total {
                // Saved: a stop ends the run here (the same command
                // resumes after this period); the breaker ends the point.
                self.shared.stop.check()?;
                break;
            }
            if n < total {
                period_start = boundary;
                bar = Some(self.ui.phase(
                    format!("ctx {context} {rate:>3}% PERIOD_{}", n + 1),
                    period_s,
                    &next_live,
                ));
                load.set_concurrency(decided.next_concurrency).await;
                window_start = Instant::now();
            }
        }
        Ok(controller.result())
    }
}
