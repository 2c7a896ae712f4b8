//! Sustained mode's load (`--mode sustained`): one continuous closed loop
//! per point, never drained, whose concurrency the plan sets after each
//! assessment period. Each period is judged over its own window and
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

use super::phase::{FinishedLoad, PhaseLabel, Ran, Shared, Slot, WindowRule};
use super::plan::PlannedPhase;
use super::point::PointRun;
use crate::error::{Error, Result};
use crate::progress::{Bar, Live};
use crate::record::RequestRecord;
use crate::store::{PhaseKind, PointId};
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
    let mut slot = Slot::default();
    loop {
        if let Some(pause) = slot.pause() {
            // As in a phase: a server that fails at once is not hammered.
            tokio::time::sleep(pause).await;
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
        // Stopped now: the request is abandoned (the period loop saves the
        // completed ones).
        let Some(record) = slot.next(&shared, &factory, &label, &live).await else {
            break;
        };
        if records.send((epoch, record)).is_err() {
            break;
        }
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

/// The label of period `n` of point `id` at `concurrency`.
fn label(id: PointId, n: u32, concurrency: u32) -> PhaseLabel {
    PhaseLabel {
        context_size: id.context_size,
        cache_hit_rate: id.cache_hit_rate,
        phase_id: PhaseKind::Period(n).id(concurrency),
        phase_index: n - 1,
        concurrency,
    }
}

/// The periods of a sustained point on one continuous load, begun with the
/// first period this attempt runs.
pub struct Continuous {
    /// Periods of the point in all.
    periods: u32,
    running: Option<Running>,
}

/// The load once it runs, and where its periods are.
struct Running {
    load: ContinuousLoad,
    /// The boundary the period in flight ends at, as scheduled.
    scheduled: Instant,
    /// Where the last period ended (its boundary, or later when the
    /// runtime woke late).
    boundary: Instant,
    period_start: Instant,
    window_start: Instant,
    /// The period in flight is the first of this load.
    first: bool,
    bar: Option<Bar>,
    /// What the next period's requests count into.
    next_live: Arc<Live>,
    /// The period run was the load's last (the point's last, or the one a
    /// stop or the breaker ended it at): the load was drained and stopped.
    closed: bool,
    /// The period run was the point's last.
    ended_last: bool,
}

impl Continuous {
    pub fn new(periods: u32) -> Continuous {
        Continuous {
            periods,
            running: None,
        }
    }

    /// Starts the load at period `next`'s concurrency.
    async fn begin(&self, point: &PointRun<'_>, next: PlannedPhase, n: u32) -> Result<Running> {
        let (shared, id) = (&point.setup.shared, point.id);
        shared.stop.check()?;
        shared.journal.open(point.files.dir(), id.context_size)?;
        let (context, rate) = (id.context_size, id.cache_hit_rate);
        if n > 1 {
            point.setup.ui.line(&format!(
                "ctx {context} {rate:>3}%: resuming after period {} of {} at concurrency {}",
                n - 1,
                self.periods,
                next.concurrency
            ));
        }
        let live = Arc::new(Live::new());
        let mut load = ContinuousLoad::new(
            Arc::clone(shared),
            Arc::clone(&point.factory),
            label(id, n, next.concurrency),
            Arc::clone(&live),
        );
        let start = Instant::now();
        load.set_concurrency(next.concurrency).await;
        let bar = point.setup.ui.phase(
            format!("ctx {context} {rate:>3}% PERIOD_{n}"),
            next.duration,
            &live,
        );
        Ok(Running {
            load,
            scheduled: start,
            boundary: start,
            period_start: start,
            window_start: start,
            first: true,
            bar: Some(bar),
            next_live: live,
            closed: false,
            ended_last: false,
        })
    }

    /// Runs period `next` to its end: until its boundary, then until every
    /// request it launched has finished (and after the last period, until
    /// the load's tail has too).
    pub async fn period(&mut self, point: &PointRun<'_>, next: PlannedPhase) -> Result<Ran> {
        let PhaseKind::Period(n) = next.kind else {
            return Err(Error::Internal(anyhow::anyhow!(
                "a continuous load runs periods, not {}",
                next.kind.id(next.concurrency)
            )));
        };
        let running = match self.running.take() {
            None => self.begin(point, next, n).await?,
            Some(running) if running.closed => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "the sustained load ended before period {n}"
                )));
            }
            Some(mut running) => {
                running.hold(point, next, n).await;
                running
            }
        };
        let running = self.running.insert(running);
        running.scheduled += Duration::from_secs_f64(next.duration);
        let shared = &point.setup.shared;
        let stopped_now = tokio::select! {
            () = tokio::time::sleep_until(running.scheduled.into()) => false,
            () = shared.stop.until_now() => true,
        };
        if stopped_now {
            return Ok(Ran::Stopped(running.load.take_all()));
        }
        let boundary = Instant::now().max(running.scheduled);
        // A stop asked for, or the circuit breaker: this period is the
        // last one measured (its tail is collected with it).
        let last =
            n == self.periods || shared.stop.is_requested() || shared.breaker.tripped().is_some();
        let records = match running
            .drain(point.id, n, next.concurrency, last, shared)
            .await?
        {
            Drained::Done(records) => records,
            Drained::StoppedNow(mut records) => {
                records.extend(running.load.take_all());
                return Ok(Ran::Stopped(records));
            }
        };
        let settled = Instant::now();
        if let Some(bar) = running.bar.take() {
            bar.finish();
        }
        let window = if running.first {
            WindowRule::AfterWarmup {
                launches_end: boundary,
                fraction: 0.0,
            }
        } else {
            WindowRule::Between {
                start: running.window_start,
                end: boundary,
            }
        };
        running.first = false;
        running.boundary = boundary;
        running.ended_last = n == self.periods;
        Ok(Ran::Finished(FinishedLoad {
            label: label(point.id, n, next.concurrency),
            kind: next.kind,
            planned_duration_s: next.duration,
            records,
            start: running.period_start,
            end: settled,
            window,
            server_cache_rate: None,
        }))
    }

    /// After a period's commit, which ended the journal: the next period's
    /// requests that finished meanwhile go into a fresh one with those to
    /// come.
    pub fn committed(&mut self, point: &PointRun<'_>) -> Result<()> {
        let Some(running) = self.running.as_mut().filter(|r| !r.closed) else {
            return Ok(());
        };
        let shared = &point.setup.shared;
        shared
            .journal
            .open(point.files.dir(), point.id.context_size)?;
        for record in running.load.take_pending() {
            shared.journal.record(&record);
        }
        Ok(())
    }

    /// After a period is written: the load drained for a stop or the
    /// breaker ends the point; for a stop (saved now) the run ends too, and
    /// the same command resumes after the period.
    pub fn point_ends(&self, point: &PointRun<'_>) -> Result<bool> {
        match &self.running {
            Some(running) if running.closed => {
                if !running.ended_last {
                    point.setup.shared.stop.check()?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// A period's requests once its launches are over: all of them in launch
/// order, or, when a stop now came first, those collected so far (the
/// others are still the load's).
enum Drained {
    Done(Vec<RequestRecord>),
    StoppedNow(Vec<RequestRecord>),
}

impl Running {
    /// Period `n`'s concurrency holds from now: its window opens once the
    /// load is at it.
    async fn hold(&mut self, point: &PointRun<'_>, next: PlannedPhase, n: u32) {
        let (context, rate) = (point.id.context_size, point.id.cache_hit_rate);
        self.period_start = self.boundary;
        self.bar = Some(point.setup.ui.phase(
            format!("ctx {context} {rate:>3}% PERIOD_{n}"),
            next.duration,
            &self.next_live,
        ));
        self.load.set_concurrency(next.concurrency).await;
        self.window_start = Instant::now();
    }

    /// At period `n`'s boundary: the launches go on at its concurrency
    /// while its last requests finish (as the next period's first
    /// requests, or after the last period as its tail, which is collected
    /// too), so no request of the period sees a draining server.
    async fn drain(
        &mut self,
        id: PointId,
        n: u32,
        concurrency: u32,
        last: bool,
        shared: &Shared,
    ) -> Result<Drained> {
        self.next_live = Arc::new(Live::new());
        // The last period's tail is its own (a stop or the breaker can make
        // any period the last).
        let next_label = label(id, if last { n } else { n + 1 }, concurrency);
        let ended = self
            .load
            .next_epoch(next_label, Arc::clone(&self.next_live));
        let collected = tokio::select! {
            records = self.load.collect(ended) => Some(records),
            () = shared.stop.until_now() => None,
        };
        let Some(records) = collected else {
            return Ok(Drained::StoppedNow(Vec::new()));
        };
        let mut records = records?;
        if last {
            self.closed = true;
            let tail = self.load.close();
            let collected = tokio::select! {
                records = self.load.collect(tail) => Some(records),
                () = shared.stop.until_now() => None,
            };
            let Some(tail) = collected else {
                return Ok(Drained::StoppedNow(records));
            };
            records.extend(tail?);
        }
        records.sort_by(|a, b| a.launch_unix_s.total_cmp(&b.launch_unix_s));
        Ok(Drained::Done(records))
    }
}
