//! The run directory as the runner keeps it: `progress.json`,
//! `results.json` and `run.json` in memory and on disk, and the commit of
//! each phase — its request rows (and a sustained period's row), its phase
//! row, `progress.json`, then the journal dropped, in that order, so a kill
//! at any moment leaves a directory a resume reads.

use std::sync::atomic::Ordering;

use super::phase::Shared;
use super::provenance::now_rfc3339;
use crate::error::{Error, Result};
use crate::record::RequestRecord;
use crate::store::{
    self, AtPoint, CurrentPoint, PhaseRecord, PointId, PointResult, PointStatus, Progress, Results,
    RunDir, RunInfo, RunStatus, detailed_results, phase_metadata,
};

/// What the run has written of itself, and writes as it goes.
pub struct RunFiles {
    dir: RunDir,
    progress: Progress,
    results: Results,
    info: RunInfo,
    /// Request rows as `--chunk-times summary` writes them.
    summary_rows: bool,
}

impl RunFiles {
    pub fn new(
        dir: RunDir,
        progress: Progress,
        results: Results,
        info: RunInfo,
        summary_rows: bool,
    ) -> RunFiles {
        RunFiles {
            dir,
            progress,
            results,
            info,
            summary_rows,
        }
    }

    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Appends a phase's rows, then records the new lengths in
    /// `progress.json`: the commit point of everything measured so far.
    /// `phase` is `None` for a warm-up (its rows only).
    pub fn commit(
        &mut self,
        shared: &Shared,
        context: u64,
        records: &[RequestRecord],
        phase: Option<&PhaseRecord>,
    ) -> Result<()> {
        // The period log is appended like the other CSVs and committed with
        // them, so a resumed point keeps its rows as written.
        if let Some(period) = phase.filter(|p| p.period.is_some()) {
            let log = self.progress.period_log(period);
            let length = self.dir.append_period(&log, period)?;
            self.progress.files.insert(log, length);
        }
        shared.journal.close();
        let name = detailed_results(context);
        let length = if self.summary_rows {
            let rows: Vec<RequestRecord> = records.iter().map(RequestRecord::summary).collect();
            self.dir.append_csv(&name, &rows)?
        } else {
            self.dir.append_csv(&name, records)?
        };
        self.progress.files.insert(name, length);
        if let Some(phase) = phase {
            let length = self.dir.append_phase(phase)?;
            self.progress.files.insert(phase_metadata(context), length);
            if let Some(current) = &mut self.progress.current {
                current.phases.push(phase.clone());
            }
        }
        self.progress.next_request_id = shared.request_ids.load(Ordering::Relaxed);
        self.dir.write_json(store::PROGRESS, &self.progress)?;
        // Committed: the journal of the phase is no longer needed.
        self.dir.remove(&store::unfinished_phase(context))
    }

    /// Saves the completed requests of a phase or warm-up that a stop now
    /// cut short, marked as such (the phase is measured again on resume),
    /// and ends the run.
    pub fn commit_stopped<T>(
        &mut self,
        shared: &Shared,
        context: u64,
        mut records: Vec<RequestRecord>,
    ) -> Result<T> {
        for record in &mut records {
            record.phase_id.push_str(store::UNFINISHED_SUFFIX);
        }
        self.commit(shared, context, &records, None)?;
        Err(Error::Interrupted)
    }

    /// Makes `id` the point in flight: the phases an earlier attempt left
    /// of it (in flight or parked), else none from `start`. Another point
    /// left in flight is parked until its turn comes.
    pub fn open_point(&mut self, id: PointId, start: u32) -> &CurrentPoint {
        let mut other: Vec<CurrentPoint> = self.progress.current.take().into_iter().collect();
        let resumed = if let Some(i) = store::position(&other, id) {
            other.remove(i)
        } else if let Some(i) = store::position(&self.progress.parked, id) {
            self.progress.parked.remove(i)
        } else {
            CurrentPoint {
                context_size: id.context_size,
                cache_hit_rate: id.cache_hit_rate,
                start_concurrency: start,
                phases: Vec::new(),
            }
        };
        self.progress.parked.extend(other);
        self.progress.current.insert(resumed)
    }

    /// Phases committed of the point in flight.
    pub fn phases_done(&self) -> u32 {
        self.progress
            .current
            .as_ref()
            .map_or(0, |c| c.phases.len() as u32)
    }

    /// Ends the point in flight (or an extension's wait for none); returns
    /// its phases.
    pub fn close_point(&mut self) -> Vec<PhaseRecord> {
        self.progress
            .current
            .take()
            .map(|c| c.phases)
            .unwrap_or_default()
    }

    pub fn point(&self, id: PointId) -> Option<&PointResult> {
        self.results.point(id)
    }

    pub fn point_mut(&mut self, id: PointId) -> Option<&mut PointResult> {
        let i = store::position(&self.results.points, id)?;
        self.results.points.get_mut(i)
    }

    /// Every measured point, to settle what holds across them.
    pub fn points_mut(&mut self) -> &mut [PointResult] {
        &mut self.results.points
    }

    /// Keeps `point`, replacing one measured before at its place (a point
    /// that errored is measured again).
    pub fn put_point(&mut self, point: PointResult) {
        let id = point.point_id();
        self.results.points.retain(|p| p.point_id() != id);
        self.results.points.push(point);
    }

    /// Rewrites `results.json` and the summaries from the points.
    pub fn write_results(&self) -> Result<()> {
        self.dir.write_json(store::RESULTS, &self.results)?;
        self.dir.write_summaries(&self.results.points)
    }

    /// Records `id` as measured in `progress.json`.
    pub fn mark_completed(&mut self, id: PointId) -> Result<()> {
        self.progress.mark_completed(id);
        self.dir.write_json(store::PROGRESS, &self.progress)
    }

    /// Writes `run.json` from `info`.
    pub fn write_info(&mut self, info: RunInfo) -> Result<()> {
        self.info = info;
        self.info.write(&self.dir)
    }

    /// A warm-up emptied the server's prefix cache `how`: `run.json` says
    /// so from now on.
    pub fn flushed(&mut self, how: String) -> Result<()> {
        if self.info.flush_cache.as_ref() == Some(&how) {
            return Ok(());
        }
        self.info.flush_cache = Some(how);
        self.info.write(&self.dir)
    }

    /// Ends the run: `run.json` says how it ended; returns the points in
    /// sweep order. Errored points are measured again by the same command:
    /// the run is not finished until they are.
    pub fn finish(mut self) -> Result<Vec<PointResult>> {
        let errored = self
            .results
            .points
            .iter()
            .any(|p| p.status == PointStatus::Error);
        self.info.status = Some(if errored {
            RunStatus::CompleteWithErrors
        } else {
            RunStatus::Complete
        });
        self.info.finished_at = Some(now_rfc3339());
        self.info.write(&self.dir)?;
        let mut points = self.results.points;
        points.sort_by_key(|p| p.point_id());
        Ok(points)
    }
}
