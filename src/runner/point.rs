//! One point of the sweep, the same way in every mode: the warm-up, then
//! the point's plan phase by phase — each phase loaded as the plan says,
//! judged by [`finish_phase`] and committed as it ends — then the point's
//! result from its samples. And a finished point given more samples (the
//! gate's extra samples at an inconclusive point).

use std::sync::Arc;

use super::breaker::check_answering;
use super::commit::RunFiles;
use super::load::PointLoad;
use super::phase::{PhaseLabel, Ran, finish_phase, phase_warning, progress_line, run_warmup};
use super::plan::{Loading, Outcome, PlanResult, PlannedPhase, sample_duration};
use super::setup::Setup;
use crate::error::{Error, Result};
use crate::record::RequestRecord;
use crate::settings::ReinitStrategy;
use crate::stats::{
    Coverage, Latency, MAX_LENGTHENING, PointFigures, PointRequests, Sample, cache_rate_missed,
    settled_cache_rate,
};
use crate::store::{PeriodDecision, PhaseRecord, PlanKind, PointId, PointResult, PointStatus};
use crate::workload::PromptFactory;

/// One point being measured (or extended): the run's setup, the files it
/// writes, and its prompts.
pub struct PointRun<'a> {
    pub setup: &'a Setup<'a>,
    pub files: &'a mut RunFiles,
    pub id: PointId,
    pub factory: Arc<PromptFactory>,
}

impl<'a> PointRun<'a> {
    pub fn new(
        setup: &'a Setup<'a>,
        files: &'a mut RunFiles,
        id: PointId,
        factory: &Arc<PromptFactory>,
    ) -> PointRun<'a> {
        PointRun {
            setup,
            files,
            id,
            factory: Arc::clone(factory),
        }
    }

    /// Measures the point, resuming the phases an earlier attempt left of
    /// it; a peak search starts at `start`. `warm_first`: send the working
    /// set before the first phase.
    pub async fn measure(&mut self, start: u32, warm_first: bool) -> Result<PointResult> {
        let metric = self.setup.settings.tokens_per_req_metric;
        let resumed = self.files.open_point(self.id, start);
        let outcomes: Vec<Outcome> = resumed
            .phases
            .iter()
            .map(|p| Outcome::of(p, metric))
            .collect();
        let start = resumed.start_concurrency;
        let mut plan = self.setup.plan(self.id, start)?.replay(&outcomes);
        if warm_first {
            self.warm_up().await?;
        }
        self.setup.shared.breaker.arm();
        let per_test = self.setup.settings.reinit_strategy == ReinitStrategy::PerTest;
        let mut load = PointLoad::new(plan.loading(), per_test);
        while let Some(next) = plan.next() {
            let index = self.files.phases_done();
            let decide = |phase: &PhaseRecord| plan.record(Outcome::of(phase, metric));
            self.phase(&mut load, next, index, decide).await?;
            if load.point_ends(self)? {
                break;
            }
        }
        let tripped = self.setup.shared.breaker.tripped();
        let phases = self.files.close_point();
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
            _ => plan.result().ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("the point's plan ended without a result"))
            })?,
        };
        let mut point = self.result(plan.kind(), &phases, &result)?;
        if let Some(reason) = tripped {
            point.status = PointStatus::Error;
            point.status_message = Some(reason);
            point.selection_phase = None;
        }
        check_error_rate(&mut point, self.setup.settings.max_error_rate);
        self.warn_short_samples(&point);
        self.save(point)
    }

    /// Adds sample phases to the finished point until it has `target`
    /// samples. Each phase is written as it ends: the point in
    /// `results.json` is rewritten with the new sample, so a killed
    /// extension keeps what it measured and a rerun adds only what is
    /// missing.
    pub async fn extend(&mut self, target: u32) -> Result<()> {
        let id = self.id;
        match self.files.point(id) {
            Some(point) if (point.samples.len() as u32) < target => {}
            _ => return Ok(()),
        }
        self.files.close_point();
        self.warm_up().await?;
        self.setup.shared.breaker.arm();
        let per_test = self.setup.settings.reinit_strategy == ReinitStrategy::PerTest;
        let mut load = PointLoad::new(Loading::Phases, per_test);
        while let Some(point) = self
            .files
            .point(id)
            .filter(|p| p.samples.len() < target as usize)
        {
            let k = point.samples.len() as u32 + 1;
            let next = PlannedPhase {
                kind: point.plan.extra_sample(k),
                concurrency: point.peak_concurrency,
                duration: self.extra_sample_duration(point),
            };
            let index = point.phases;
            let phase = self.phase(&mut load, next, index, |_| None).await?;
            let tripped = self.setup.shared.breaker.tripped();
            let samples = self.add_sample(&phase, tripped.is_none())?;
            if let Some(reason) = tripped {
                self.setup.ui.warn(&format!(
                    "{id}: no more samples, {reason}; the point keeps its {samples} samples"
                ));
                return Ok(());
            }
        }
        if let Some(point) = self.files.point(id) {
            self.setup.ui.line(&format!(
                "ctx {} {:>3}%: {} samples now, input {:.0} tok/s, TTFT p95 {:.3}s",
                id.context_size,
                id.cache_hit_rate,
                point.samples.len(),
                point.input_tps,
                point.ttft.p95
            ));
        }
        Ok(())
    }

    /// An extra sample's length: as the plan sizes samples, from the mean
    /// request cycle of the point's samples.
    fn extra_sample_duration(&self, point: &PointResult) -> f64 {
        let settings = &self.setup.settings;
        let samples = point.samples.len().max(1) as f64;
        let cycle = point.samples.iter().map(|s| s.ttlt.avg).sum::<f64>() / samples;
        sample_duration(
            super::setup::lengthening(settings),
            settings.sample_duration,
            cycle,
            point.peak_concurrency,
        )
    }

    /// Says once per point when its samples span too few request cycles
    /// or count too few requests for their figures, and what would help.
    fn warn_short_samples(&self, point: &PointResult) {
        let settings = &self.setup.settings;
        let sizing = super::setup::sample_sizing(settings);
        let short: Vec<(usize, String)> = point
            .samples
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i + 1, sizing.shortfall(Coverage::of(s))?)))
            .collect();
        let Some((first, lacks)) = short.first() else {
            return;
        };
        let help = if settings.lengthen_samples {
            format!(
                "samples are lengthened to at most {MAX_LENGTHENING}x --sample-duration \
                 ({} s): raise it",
                settings.sample_duration
            )
        } else {
            "--lengthen-samples sizes each sample from the load's request latency".to_string()
        };
        self.setup.ui.warn(&format!(
            "{}: {} of {} samples are short: sample {first} {lacks}; {help}",
            self.id,
            short.len(),
            point.samples.len()
        ));
    }

    /// Runs one planned phase on `load` and writes it: its record (with
    /// the plan's decision, `decide`), the commit, and its line.
    async fn phase(
        &mut self,
        load: &mut PointLoad,
        next: PlannedPhase,
        index: u32,
        decide: impl FnOnce(&PhaseRecord) -> Option<PeriodDecision>,
    ) -> Result<PhaseRecord> {
        if load.warms_each_phase() {
            self.warm_up().await?;
        }
        let setup = self.setup;
        let (shared, context) = (&setup.shared, self.id.context_size);
        let finished = match load.run(self, next, index).await? {
            Ran::Finished(finished) => finished,
            Ran::Stopped(records) => return self.files.commit_stopped(shared, context, records),
        };
        let (mut phase, records) = finish_phase(finished, &setup.judging());
        phase.period = decide(&phase);
        self.files.commit(shared, context, &records, Some(&phase))?;
        load.committed(self)?;
        check_answering(&shared.breaker, &phase, &records)?;
        setup.ui.line(&progress_line(&phase));
        if let Some(warning) = phase_warning(&phase) {
            setup.ui.warn(&warning);
        }
        Ok(phase)
    }

    /// Empties the server's prefix cache when asked to, then sends every
    /// working-set prompt once.
    async fn warm_up(&mut self) -> Result<()> {
        let setup = self.setup;
        let shared = &setup.shared;
        let (context, rate) = (self.id.context_size, self.id.cache_hit_rate);
        shared.stop.check()?;
        if let Some(how) = super::target::flush(&shared.client, &setup.settings.flush_cache).await?
        {
            self.files.flushed(how)?;
        }
        let label = PhaseLabel {
            context_size: context,
            cache_hit_rate: rate,
            phase_id: "WARMUP".into(),
            phase_index: 0,
            concurrency: setup.settings.init_concurrency,
        };
        shared.journal.open(self.files.dir(), context)?;
        let records = run_warmup(
            Arc::clone(shared),
            Arc::clone(&self.factory),
            label,
            &setup.ui,
        )
        .await?;
        if shared.stop.is_now() {
            return self.files.commit_stopped(shared, context, records);
        }
        self.files.commit(shared, context, &records, None)?;
        let failed: Vec<&RequestRecord> = records.iter().filter(|r| !r.ok()).collect();
        let first_error = || failed[0].error.as_deref().unwrap_or("unknown error");
        if !records.is_empty() && failed.len() == records.len() {
            return Err(Error::Unreachable(format!(
                "every warm-up request of context {context} failed; the first: {}",
                first_error()
            )));
        }
        if !failed.is_empty() {
            setup.ui.warn(&format!(
                "{} of {} warm-up requests of context {context} failed (first: {}); those \
                 prompts are not cached",
                failed.len(),
                records.len(),
                first_error()
            ));
        }
        setup.ui.line(&format!(
            "ctx {context}: warmed {} working-set prompts of {} tokens",
            records.len() - failed.len(),
            self.factory.context
        ));
        // The server answered: the breaker's window starts after the
        // warm-up, not before it.
        shared.breaker.arm();
        Ok(())
    }

    /// The point from its plan's result: its samples and figures (means
    /// over the samples; without samples, --num-retries 0, the figures of
    /// the phase that chose the peak, and the point says so).
    fn result(
        &self,
        plan: PlanKind,
        phases: &[PhaseRecord],
        result: &PlanResult,
    ) -> Result<PointResult> {
        let (factory, id) = (&self.factory, self.id);
        let sample = |i: &usize| phases[*i].sample();
        let samples: Vec<Sample> = result.samples.iter().map(sample).collect();
        let source: Vec<Sample> = if samples.is_empty() {
            result.selection.iter().map(sample).collect()
        } else {
            samples.clone()
        };
        let mut point = PointResult {
            context_size: id.context_size,
            cache_hit_rate: id.cache_hit_rate,
            status: PointStatus::Ok,
            status_message: None,
            plan,
            prompt_tokens_per_request: factory.context,
            target_cached_tokens: factory.cached_tokens(id.cache_hit_rate),
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
            total_requests: 0,
            failed_requests: 0,
            errors: Default::default(),
            target_cache_rate: factory.cached_tokens(id.cache_hit_rate) as f64
                / factory.context as f64,
            achieved_cache_rate: None,
            max_cache_rate_gap: self.setup.cache_rate_gap(id.context_size),
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
        point.set_requests(PointRequests::of(phases.iter().map(|p| &p.figures)));
        point.set_figures(figures(id, &source)?);
        Ok(point)
    }

    /// Keeps the measured point (replacing one that errored), writes the
    /// results and marks it done, and says what it found.
    fn save(&mut self, point: PointResult) -> Result<PointResult> {
        let id = self.id;
        self.files.put_point(point.clone());
        settle_cache_rates(self.files.points_mut());
        let point = self.files.point(id).cloned().unwrap_or(point);
        self.warn_of(&point);
        self.files.write_results()?;
        self.files.mark_completed(id)?;
        let ui = &self.setup.ui;
        if let Some(message) = &point.status_message {
            ui.warn(&format!(
                "{id}: error: {message}; running the same command again measures this point \
                 again"
            ));
        }
        ui.line(&format!(
            "ctx {} {:>3}%: peak concurrency {}{}, input {:.0} tok/s, output {:.0} tok/s, TTFT \
             p95 {:.3}s, achieved cache rate {}",
            id.context_size,
            id.cache_hit_rate,
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

    /// What a measured point should warn of: no independent samples, the
    /// server counting other prompts than sent, a missed cache rate.
    fn warn_of(&self, point: &PointResult) {
        let (ui, id, factory) = (&self.setup.ui, self.id, &self.factory);
        if !point.has_samples() {
            ui.warn(&format!(
                "{id}: --num-retries 0 leaves the point without independent samples; its \
                 figures are those of the phase that chose the peak, biased upward by the \
                 noise that chose it, and a comparison will refuse it"
            ));
        }
        let errors = point.sample_errors();
        let limit = self.setup.settings.max_error_rate;
        if point.status != PointStatus::Error && errors.over_but_within_chance(limit) {
            ui.warn(&format!(
                "{id}: {}: the point stands (reported, not failed)",
                errors.describe(limit)
            ));
        }
        if let Some(drift) = point.prompt_token_drift
            && drift.abs() >= 0.5
        {
            ui.warn(&format!(
                "{id}: the server counted {drift:+.1} tokens per prompt against the target of \
                 {} (prompts were re-tokenised, or the chat template added tokens)",
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
            ui.warn(&format!(
                "{id}: the achieved cache-hit rate {:.1}% misses the target {:.1}% by more \
                 than {:.1} percentage points: {why}",
                achieved * 100.0,
                point.target_cache_rate * 100.0,
                point.max_cache_rate_gap,
            ));
        }
    }

    /// Counts an extension's phase into the finished point (as a sample
    /// unless the circuit breaker cut it short: then only its requests
    /// count) and writes the results; returns the point's samples.
    fn add_sample(&mut self, phase: &PhaseRecord, is_sample: bool) -> Result<usize> {
        let (id, max_error_rate) = (self.id, self.setup.settings.max_error_rate);
        let point = self.files.point_mut(id).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("{id} went missing while extending it"))
        })?;
        if is_sample {
            point.samples.push(phase.sample());
        }
        point.phases += 1;
        let mut requests = point.requests();
        requests.add(&phase.figures);
        point.set_requests(requests);
        point.duration_s += phase.end_unix_s - phase.start_unix_s;
        point.set_figures(figures(id, &point.samples)?);
        check_error_rate(point, max_error_rate);
        let samples = point.samples.len();
        settle_cache_rates(self.files.points_mut());
        self.files.write_results()?;
        Ok(samples)
    }
}

/// Marks a point whose samples failed more often than chance gives at
/// `max_error_rate`: its figures are not a throughput.
fn check_error_rate(point: &mut PointResult, max_error_rate: f64) {
    if point.status == PointStatus::Error {
        return;
    }
    if let Some(why) = point
        .requests()
        .over_error_rate(point.sample_errors(), max_error_rate)
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
            "a stored TTFT histogram of {id} is damaged ({e}); the run's files were changed by \
             hand or cut short: run with --force-restart to move this run aside and start over"
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
