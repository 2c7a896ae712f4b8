//! One point of the sweep: the warm-up, the point's plan phase by phase
//! (each phase written to the run directory as it ends), and the point's
//! result from its samples.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::phase::{PhaseLabel, Shared, run_phase, run_warmup};
use super::plan::{FixedLoad, Outcome, PeakSearch, Plan, PlanResult, PlannedPhase, RampParams};
use crate::client::prometheus::rate_between;
use crate::error::{Error, Result};
use crate::progress::{Live, Ui};
use crate::record::RequestRecord;
use crate::settings::{ChunkTimes, Mode, ReinitStrategy, RunSettings};
use crate::stats::{
    Latency, PhaseFigures, PointFigures, PointRequests, Sample, Thresholds, Window,
    cache_rate_missed, settled_cache_rate,
};
use crate::store::{
    self, AtPoint, CurrentPoint, PhaseRecord, PlanKind, PointId, PointResult, PointStatus,
    Progress, Results, RunDir, detailed_results, phase_metadata,
};
use crate::workload::PromptFactory;

/// The point from its plan's result: its samples and figures (means over
/// the samples; without samples, --num-retries 0, the figures of the phase
/// that chose the peak, and the point says so).
fn point_result(
    factory: &PromptFactory,
    rate: u32,
    context: u64,
    plan: PlanKind,
    phases: &[PhaseRecord],
    result: &PlanResult,
    max_cache_rate_gap: f64,
) -> Result<PointResult> {
    let sample = |i: &usize| phases[*i].sample();
    let samples: Vec<Sample> = result.samples.iter().map(sample).collect();
    let source: Vec<Sample> = if samples.is_empty() {
        result.selection.iter().map(sample).collect()
    } else {
        samples.clone()
    };
    let requests = PointRequests::of(phases.iter().map(|p| &p.figures));
    let mut point = PointResult {
        context_size: context,
        cache_hit_rate: rate,
        status: PointStatus::Ok,
        status_message: None,
        plan,
        prompt_tokens_per_request: factory.context,
        target_cached_tokens: factory.cached_tokens(rate),
        peak_concurrency: result.concurrency,
        peak_passed: result.passed,
        selection_phase: result.selection.map(|i| phases[i].phase_id.clone()),
        samples,
        other_level_samples: result.other_samples.iter().map(sample).collect(),
        input_tps: 0.0,
        output_tps: 0.0,
        ttft: Latency::default(),
        ttlt: Latency::default(),
        itl: Latency::default(),
        req_output_tps_avg: 0.0,
        req_output_tps_p5: 0.0,
        req_output_tps_p10: 0.0,
        requests: 0,
        error_rate: 0.0,
        total_requests: requests.total,
        failed_requests: requests.failed,
        errors: requests.errors,
        target_cache_rate: factory.cached_tokens(rate) as f64 / factory.context as f64,
        achieved_cache_rate: None,
        max_cache_rate_gap,
        cache_rate_missed: false,
        server_cache_rate: None,
        prompt_token_drift: None,
        duration_s: match (phases.first(), phases.last()) {
            (Some(first), Some(last)) => last.end_unix_s - first.start_unix_s,
            _ => 0.0,
        },
        ttft_histogram: String::new(),
        phases: phases.len() as u32,
    };
    point.set_figures(figures(point.point_id(), &source)?);
    Ok(point)
}

/// Marks a point whose samples failed more often than `max_error_rate`
/// allows: its figures are not a throughput.
fn check_error_rate(point: &mut PointResult, max_error_rate: f64) {
    if point.status == PointStatus::Error {
        return;
    }
    if let Some(why) = point
        .requests()
        .over_error_rate(point.error_rate, max_error_rate)
    {
        point.status = PointStatus::Error;
        point.status_message = Some(why);
    }
}

/// [`PointFigures::of`], with what to do when a stored histogram does not
/// decode.
fn figures(id: PointId, source: &[Sample]) -> Result<PointFigures> {
    PointFigures::of(source).map_err(|e| {
        Error::Usage(format!(
            "a stored TTFT histogram of {id} is damaged ({e}); the run's files were \
             changed by hand or cut short: run with --force-restart to move this run aside \
             and start over"
        ))
    })
}

/// Settles every point's achieved cache rate once the run is known to
/// report cached tokens, and flags the points that miss their target.
fn settle_cache_rates(points: &mut [PointResult]) {
    let reported = points.iter().any(|p| p.achieved_cache_rate.is_some());
    for point in points.iter_mut() {
        point.achieved_cache_rate = settled_cache_rate(point.achieved_cache_rate, reported);
        point.cache_rate_missed = cache_rate_missed(
            point.achieved_cache_rate,
            point.target_cache_rate,
            point.max_cache_rate_gap,
        );
    }
}

/// Everything the point loop needs.
pub struct Sweep<'a> {
    pub settings: &'a RunSettings,
    pub ui: Ui,
    pub dir: RunDir,
    pub shared: Arc<Shared>,
    pub progress: Progress,
    pub results: Results,
    pub thresholds: Thresholds,
    pub params: RampParams,
    pub metrics_url: Option<String>,
    /// How the prefix cache was emptied, once it was.
    pub flushed_with: Option<String>,
    /// The server reports cached tokens (a missing count means none).
    pub reports_cached: bool,
    /// The server's KV block, in tokens: the default achieved-vs-target
    /// tolerance is one block as a share of the context.
    pub server_block_tokens: u64,
}

impl Sweep<'_> {
    /// Appends rows, then records the new lengths in progress.json: the
    /// commit point of everything measured so far.
    pub(super) fn commit(
        &mut self,
        context: u64,
        records: &[RequestRecord],
        phase: Option<&PhaseRecord>,
    ) -> Result<()> {
        let name = detailed_results(context);
        self.shared.journal.close();
        let length = match self.settings.chunk_times {
            ChunkTimes::All => self.dir.append_csv(&name, records)?,
            ChunkTimes::Summary => {
                let rows: Vec<RequestRecord> = records.iter().map(RequestRecord::summary).collect();
                self.dir.append_csv(&name, &rows)?
            }
        };
        self.progress.files.insert(name, length);
        if let Some(phase) = phase {
            let length = self.dir.append_phase(phase)?;
            self.progress.files.insert(phase_metadata(context), length);
            if let Some(current) = &mut self.progress.current {
                current.phases.push(phase.clone());
            }
        }
        self.progress.next_request_id = self.shared.request_ids.load(Ordering::Relaxed);
        self.dir.write_json(store::PROGRESS, &self.progress)?;
        // Committed: the journal of the phase is no longer needed.
        self.dir.remove(&store::unfinished_phase(context))
    }

    /// [`Error::Unreachable`] when every request of a committed phase (or
    /// sustained period) failed to connect: the server is gone, and the same
    /// command resumes once it is back. A tripped breaker stops the point
    /// instead, and the sweep asks whether the server is still there.
    pub(super) fn check_answering(
        &self,
        phase: &PhaseRecord,
        records: &[RequestRecord],
    ) -> Result<()> {
        let f = &phase.figures;
        if f.completed == 0
            && f.errors.keys().all(|kind| kind == "connect")
            && f.failed > 0
            && self.shared.breaker.tripped().is_none()
        {
            let first = records.iter().find_map(|r| r.error.clone());
            return Err(Error::Unreachable(format!(
                "the server stopped answering during {} (ctx {}, {}%): {}; what was measured \
                 is saved, so run the same command again to resume once it is back",
                phase.phase_id,
                phase.context_size,
                phase.cache_hit_rate,
                first.unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Saves the completed requests of a phase or warm-up that a stop now
    /// cut short, marked as such (the phase is measured again on resume),
    /// and ends the run.
    pub(super) fn commit_stopped<T>(
        &mut self,
        context: u64,
        mut records: Vec<RequestRecord>,
    ) -> Result<T> {
        for record in &mut records {
            record.phase_id.push_str(store::UNFINISHED_SUFFIX);
        }
        self.commit(context, &records, None)?;
        Err(Error::Interrupted)
    }

    pub async fn warm_up(
        &mut self,
        factory: &Arc<PromptFactory>,
        context: u64,
        rate: u32,
    ) -> Result<()> {
        self.shared.stop.check()?;
        if let Some(how) =
            super::target::flush(&self.shared.client, &self.settings.flush_cache).await?
        {
            self.flushed_with = Some(how);
        }
        let label = PhaseLabel {
            context_size: context,
            cache_hit_rate: rate,
            phase_id: "WARMUP".into(),
            phase_index: 0,
            concurrency: self.settings.init_concurrency,
        };
        self.shared.journal.open(&self.dir, context)?;
        let records = run_warmup(
            Arc::clone(&self.shared),
            Arc::clone(factory),
            label,
            &self.ui,
        )
        .await?;
        if self.shared.stop.is_now() {
            return self.commit_stopped(context, records);
        }
        self.commit(context, &records, None)?;
        let failed: Vec<&RequestRecord> = records.iter().filter(|r| !r.ok()).collect();
        if !records.is_empty() && failed.len() == records.len() {
            return Err(Error::Unreachable(format!(
                "every warm-up request of context {context} failed; the first: {}",
                failed[0].error.as_deref().unwrap_or("unknown error")
            )));
        }
        if !failed.is_empty() {
            self.ui.warn(&format!(
                "{} of {} warm-up requests of context {context} failed (first: {}); those \
                 prompts are not cached",
                failed.len(),
                records.len(),
                failed[0].error.as_deref().unwrap_or("unknown error")
            ));
        }
        self.ui.line(&format!(
            "ctx {context}: warmed {} working-set prompts of {} tokens",
            records.len() - failed.len(),
            factory.context
        ));
        // The server answered: the breaker's window starts after the
        // warm-up, not before it.
        self.shared.breaker.arm();
        Ok(())
    }

    /// The plan of a point: the peak search, or the fixed load.
    fn plan(&self, context: u64, rate: u32, start: u32) -> Result<(Plan, PlanKind)> {
        match (self.settings.mode, &self.settings.fixed_load) {
            (Mode::Fixed, Some(spec)) => {
                let levels = spec.levels(context, rate).ok_or_else(|| {
                    Error::Usage(format!(
                        "no fixed load for ctx {context} at {rate}%: --concurrency-from does \
                         not name that point"
                    ))
                })?;
                let kind = match spec {
                    crate::settings::FixedLoadSpec::Levels(_) => PlanKind::FixedLevels,
                    crate::settings::FixedLoadSpec::PerPoint(_) => PlanKind::FixedFrom,
                };
                Ok((
                    Plan::Fixed(FixedLoad::new(
                        levels,
                        self.settings.num_retries,
                        self.settings.ramp_duration,
                        self.settings.sample_duration,
                    )),
                    kind,
                ))
            }
            _ => Ok((
                Plan::Peak(PeakSearch::new(self.params, start)),
                PlanKind::PeakSearch,
            )),
        }
    }

    /// Runs one planned phase, writes it, and returns its record.
    async fn phase(
        &mut self,
        factory: &Arc<PromptFactory>,
        context: u64,
        rate: u32,
        plan: PlannedPhase,
        phase_index: u32,
    ) -> Result<PhaseRecord> {
        self.shared.stop.check()?;
        let phase_id = plan.kind.id(plan.concurrency);
        tracing::debug!(context, rate, phase = %phase_id, seconds = plan.duration, "starting phase");
        let counters_before =
            super::target::counters(&self.shared.client, self.metrics_url.as_deref()).await;
        let live = Arc::new(Live::new());
        let bar = self.ui.phase(
            format!("ctx {context} {rate:>3}% {phase_id}"),
            plan.duration,
            &live,
        );
        self.shared.journal.open(&self.dir, context)?;
        let run = run_phase(
            Arc::clone(&self.shared),
            Arc::clone(factory),
            PhaseLabel {
                context_size: context,
                cache_hit_rate: rate,
                phase_id: phase_id.clone(),
                phase_index,
                concurrency: plan.concurrency,
            },
            Duration::from_secs_f64(plan.duration),
            live,
        )
        .await?;
        bar.finish();
        if run.abandoned {
            return self.commit_stopped(context, run.records);
        }
        let counters_after =
            super::target::counters(&self.shared.client, self.metrics_url.as_deref()).await;
        let server_cache_rate = counters_before
            .zip(counters_after)
            .and_then(|(before, after)| rate_between(before, after));
        let clock = self.shared.clock;
        let window = Window::for_phase(
            &run.records,
            clock.unix(run.start),
            clock.unix(run.window_end),
            plan.concurrency,
            self.settings.warmup_fraction,
        );
        let mut records = run.records;
        for record in &mut records {
            record.in_window = window.holds(record);
        }
        let figures = PhaseFigures::from_records(
            &records,
            &window,
            self.settings.strict_time_window,
            self.reports_cached,
        );
        let verdict = self.thresholds.check(&figures);
        let phase = PhaseRecord {
            context_size: context,
            cache_hit_rate: rate,
            phase_index,
            phase_id: phase_id.clone(),
            kind: plan.kind,
            concurrency: plan.concurrency,
            start_unix_s: clock.unix(run.start),
            window_start_unix_s: window.start_unix_s,
            window_end_unix_s: window.end_unix_s,
            end_unix_s: clock.unix(run.end),
            planned_duration_s: plan.duration,
            passed: verdict.is_ok(),
            reason: verdict.as_ref().err().cloned(),
            decision_ttft_s: figures.ttft_metric(self.settings.ttft_metric),
            server_cache_rate,
            figures,
            period: None,
        };
        self.commit(context, &records, Some(&phase))?;
        self.check_answering(&phase, &records)?;
        let f = &phase.figures;
        self.ui.line(&format!(
            "ctx {context} {rate:>3}% {phase_id:<20} {:>6} ok {:>4} failed  input \
             {:>9.0} tok/s  TTFT p95 {:.3}s  {}",
            f.completed,
            f.failed,
            f.input_tps,
            f.ttft.p95,
            match &verdict {
                Ok(()) => "pass".to_string(),
                Err(reason) => format!("over: {reason}"),
            }
        ));
        // A ramp phase that overshoots is judged all the same; a sample
        // must be steady-state to mean what it says.
        if f.whole_phase && phase.kind.is_sample() {
            self.ui.warn(&format!(
                "ctx {context} {rate}% {phase_id}: no request was launched inside the \
                 steady-state window (the phase is shorter than its requests), so its figures \
                 are over the whole phase, warm-up included; lengthen --ramp-duration and \
                 --sample-duration"
            ));
        }
        Ok(phase)
    }

    /// Adds sample phases to a finished point until it has `target`
    /// samples (the gate's extra samples at an inconclusive point). Each
    /// phase is written as it ends: the point in `results.json` is
    /// rewritten with the new sample, so a killed extension keeps what it
    /// measured and a rerun adds only what is missing.
    pub async fn extend_point(
        &mut self,
        factory: &Arc<PromptFactory>,
        context: u64,
        rate: u32,
        target: u32,
    ) -> Result<()> {
        let find = |points: &[PointResult]| {
            points
                .iter()
                .position(|p| p.context_size == context && p.cache_hit_rate == rate)
        };
        let Some(i) = find(&self.results.points) else {
            return Ok(());
        };
        if self.results.points[i].samples.len() as u32 >= target {
            return Ok(());
        }
        self.progress.current = None;
        self.warm_up(factory, context, rate).await?;
        self.shared.breaker.arm();
        while self.results.points[i].samples.len() < target as usize {
            if self.settings.reinit_strategy == ReinitStrategy::PerTest {
                self.warm_up(factory, context, rate).await?;
            }
            let point = &self.results.points[i];
            let k = point.samples.len() as u32 + 1;
            let planned = PlannedPhase {
                kind: match point.plan {
                    PlanKind::PeakSearch => store::PhaseKind::Retry(k),
                    PlanKind::FixedLevels | PlanKind::FixedFrom | PlanKind::Sustained => {
                        store::PhaseKind::Fixed(k)
                    }
                },
                concurrency: point.peak_concurrency,
                duration: self.settings.sample_duration,
            };
            let index = point.phases;
            let phase = self.phase(factory, context, rate, planned, index).await?;
            let tripped = self.shared.breaker.tripped();
            let point = &mut self.results.points[i];
            // A phase the circuit breaker cut short is no sample: the
            // point keeps the samples it had, and counts the requests.
            if tripped.is_none() {
                point.samples.push(phase.sample());
            }
            point.phases += 1;
            let mut requests = point.requests();
            requests.add(&phase.figures);
            point.set_requests(requests);
            point.duration_s += phase.end_unix_s - phase.start_unix_s;
            let samples = point.samples.clone();
            point.set_figures(figures(point.point_id(), &samples)?);
            check_error_rate(point, self.thresholds.max_error_rate);
            settle_cache_rates(&mut self.results.points);
            self.dir.write_json(store::RESULTS, &self.results)?;
            self.dir.write_summaries(&self.results.points)?;
            if let Some(reason) = tripped {
                self.ui.warn(&format!(
                    "ctx {context} at {rate}%: no more samples, {reason}; the point keeps its {} \
                     samples",
                    samples.len()
                ));
                return Ok(());
            }
        }
        let point = &self.results.points[i];
        self.ui.line(&format!(
            "ctx {context} {rate:>3}%: {} samples now, input {:.0} tok/s, TTFT p95 {:.3}s",
            point.samples.len(),
            point.input_tps,
            point.ttft.p95
        ));
        Ok(())
    }

    pub async fn point(
        &mut self,
        factory: &Arc<PromptFactory>,
        context: u64,
        rate: u32,
        start: u32,
        warm_first: bool,
    ) -> Result<PointResult> {
        let this = |c: &CurrentPoint| c.context_size == context && c.cache_hit_rate == rate;
        let mut other: Vec<CurrentPoint> = self.progress.current.take().into_iter().collect();
        let resumed = if let Some(i) = other.iter().position(this) {
            other.remove(i)
        } else if let Some(i) = self.progress.parked.iter().position(this) {
            self.progress.parked.remove(i)
        } else {
            CurrentPoint {
                context_size: context,
                cache_hit_rate: rate,
                start_concurrency: start,
                phases: Vec::new(),
            }
        };
        self.progress.parked.extend(other);
        let outcomes: Vec<Outcome> = resumed.phases.iter().map(Outcome::of).collect();
        let (plan, plan_kind) = self.plan(context, rate, resumed.start_concurrency)?;
        let mut plan = plan.replay(&outcomes);
        self.progress.current = Some(resumed);
        if warm_first {
            self.warm_up(factory, context, rate).await?;
        }
        self.shared.breaker.arm();
        let mut tripped = None;
        let sustained = self.settings.mode == Mode::Sustained;
        let settled = if sustained {
            let result = self.sustained_periods(factory, context, rate).await?;
            tripped = self.shared.breaker.tripped();
            Some(result)
        } else {
            while let Some(next) = plan.next() {
                if self.settings.reinit_strategy == ReinitStrategy::PerTest {
                    self.warm_up(factory, context, rate).await?;
                }
                let index = self
                    .progress
                    .current
                    .as_ref()
                    .map_or(0, |c| c.phases.len() as u32);
                let phase = self.phase(factory, context, rate, next, index).await?;
                plan.record(Outcome::of(&phase));
                tripped = self.shared.breaker.tripped();
                if tripped.is_some() {
                    break;
                }
            }
            None
        };
        let plan_kind = if sustained {
            PlanKind::Sustained
        } else {
            plan_kind
        };
        let phases = self
            .progress
            .current
            .take()
            .map(|c| c.phases)
            .unwrap_or_default();
        let result = match (&tripped, phases.len()) {
            // Stopped: the figures are those of the phase it stopped in,
            // which chose nothing.
            (Some(_), n) if n > 0 => PlanResult {
                concurrency: phases[n - 1].concurrency,
                passed: false,
                selection: Some(n - 1),
                samples: Vec::new(),
                other_samples: Vec::new(),
            },
            _ => match settled {
                Some(result) => result,
                None => plan.result().ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("the point's plan ended without a result"))
                })?,
            },
        };
        let gap = self
            .settings
            .cache_rate_gap(context, self.server_block_tokens);
        let mut point = point_result(factory, rate, context, plan_kind, &phases, &result, gap)?;
        if let Some(reason) = tripped {
            point.status = PointStatus::Error;
            point.status_message = Some(reason);
            point.selection_phase = None;
        }
        check_error_rate(&mut point, self.thresholds.max_error_rate);
        // A point measured again replaces the one that errored.
        self.results
            .points
            .retain(|p| !(p.context_size == context && p.cache_hit_rate == rate));
        self.results.points.push(point.clone());
        settle_cache_rates(&mut self.results.points);
        let point = self.results.points.last().cloned().unwrap_or(point);
        if !point.has_samples() {
            self.ui.warn(&format!(
                "ctx {context} at {rate}%: --num-retries 0 leaves the point without \
                 independent samples; its figures are those of the phase that chose the peak, \
                 biased upward by the noise that chose it, and a comparison will refuse it"
            ));
        }
        if let Some(drift) = point.prompt_token_drift
            && drift.abs() >= 0.5
        {
            self.ui.warn(&format!(
                "ctx {context} at {rate}%: the server counted {drift:+.1} tokens per prompt \
                 against the target of {} (prompts were re-tokenised, or the chat template \
                 added tokens)",
                factory.context
            ));
        }
        if point.cache_rate_missed {
            let achieved = point.achieved_cache_rate.unwrap_or(0.0);
            let why = if achieved > point.target_cache_rate {
                "its unique suffixes were already in the server's cache, as when a run with \
                 the same --seed went before against a server that still holds it (flush it \
                 with --flush-cache auto, or change the seed)"
                    .to_string()
            } else {
                format!(
                    "the working set ({} prompts of {} tokens) does not stay in the server's \
                     prefix cache",
                    factory.working_set, factory.context
                )
            };
            self.ui.warn(&format!(
                "ctx {context} at {rate}%: the achieved cache-hit rate {:.1}% misses the \
                 target {:.1}% by more than {gap:.1} percentage points: {why}",
                achieved * 100.0,
                point.target_cache_rate * 100.0,
            ));
        }
        self.dir.write_json(store::RESULTS, &self.results)?;
        self.dir.write_summaries(&self.results.points)?;
        if !self.progress.completed.contains(&(context, rate)) {
            self.progress.completed.push((context, rate));
        }
        self.dir.write_json(store::PROGRESS, &self.progress)?;
        if let Some(message) = &point.status_message {
            self.ui.warn(&format!(
                "ctx {context} at {rate}%: error: {message}; running the same command again \
                 measures this point again"
            ));
        }
        self.ui.line(&format!(
            "ctx {context} {rate:>3}%: peak concurrency {}{}, input {:.0} tok/s, output {:.0} \
             tok/s, TTFT p95 {:.3}s, achieved cache rate {}",
            point.peak_concurrency,
            if point.peak_passed {
                ""
            } else {
                " (no level held the thresholds)"
            },
            point.input_tps,
            point.output_tps,
            point.ttft.p95,
            point
                .achieved_cache_rate
                .map_or("not reported".to_string(), |r| format!("{:.1}%", r * 100.0))
        ));
        Ok(point)
    }
}
