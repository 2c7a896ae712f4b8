//! How a point's planned phases are loaded, as its plan says
//! ([`Loading`]): each phase its own closed loop ([`run_phase`], drained at
//! its end), or the periods of one continuous load
//! ([`Continuous`](super::continuous::Continuous)).

use std::sync::Arc;
use std::time::Duration;

use super::continuous::Continuous;
use super::phase::{FinishedLoad, PhaseLabel, Ran, WindowRule, run_phase};
use super::plan::{Loading, PlannedPhase};
use super::point::PointRun;
use crate::client::prometheus::rate_between;
use crate::error::Result;
use crate::progress::Live;

/// The load of one point's phases.
pub enum PointLoad {
    /// A closed loop per phase; `warm_each`: the working set is sent again
    /// before each (`--reinit-strategy per_test`).
    Phases { warm_each: bool },
    /// The periods of one continuous load (boxed: it holds the load).
    Continuous(Box<Continuous>),
}

impl PointLoad {
    pub fn new(loading: Loading, warm_each: bool) -> PointLoad {
        match loading {
            Loading::Phases => PointLoad::Phases { warm_each },
            Loading::Continuous { periods } => {
                PointLoad::Continuous(Box::new(Continuous::new(periods)))
            }
        }
    }

    /// The working set is sent again before each phase.
    pub fn warms_each_phase(&self) -> bool {
        matches!(self, PointLoad::Phases { warm_each: true })
    }

    /// Runs `next`, the point's phase number `index`.
    pub async fn run(
        &mut self,
        point: &PointRun<'_>,
        next: PlannedPhase,
        index: u32,
    ) -> Result<Ran> {
        match self {
            PointLoad::Phases { .. } => closed_loop(point, next, index).await,
            PointLoad::Continuous(load) => load.period(point, next).await,
        }
    }

    /// After the phase's commit.
    pub fn committed(&mut self, point: &PointRun<'_>) -> Result<()> {
        match self {
            PointLoad::Phases { .. } => Ok(()),
            PointLoad::Continuous(load) => load.committed(point),
        }
    }

    /// After the phase is written: whether the point ends here (the
    /// circuit breaker tripped; a continuous load drains first and ends
    /// with the period it tripped in), or, with an error, the run (a stop
    /// asked for during a period, which made it the last).
    pub fn point_ends(&self, point: &PointRun<'_>) -> Result<bool> {
        match self {
            PointLoad::Phases { .. } => Ok(point.setup.shared.breaker.tripped().is_some()),
            PointLoad::Continuous(load) => load.point_ends(point),
        }
    }
}

/// One phase of closed-loop load at `next`'s concurrency for its duration,
/// with the server's prefix-cache counters read around it.
async fn closed_loop(point: &PointRun<'_>, next: PlannedPhase, index: u32) -> Result<Ran> {
    let (setup, id) = (point.setup, point.id);
    let (context, rate) = (id.context_size, id.cache_hit_rate);
    let shared = &setup.shared;
    shared.stop.check()?;
    let phase_id = next.kind.id(next.concurrency);
    tracing::debug!(context, rate, phase = %phase_id, seconds = next.duration, "starting phase");
    let counters = || super::target::counters(&shared.client, setup.metrics_url());
    let counters_before = counters().await;
    let live = Arc::new(Live::new());
    let bar = setup.ui.phase(
        format!("ctx {context} {rate:>3}% {phase_id}"),
        next.duration,
        &live,
    );
    shared.journal.open(point.files.dir(), context)?;
    let label = PhaseLabel {
        context_size: context,
        cache_hit_rate: rate,
        phase_id,
        phase_index: index,
        concurrency: next.concurrency,
    };
    let run = run_phase(
        Arc::clone(shared),
        Arc::clone(&point.factory),
        label.clone(),
        Duration::from_secs_f64(next.duration),
        live,
    )
    .await?;
    bar.finish();
    if run.abandoned {
        return Ok(Ran::Stopped(run.records));
    }
    let server_cache_rate = counters_before
        .zip(counters().await)
        .and_then(|(before, after)| rate_between(before, after));
    Ok(Ran::Finished(FinishedLoad {
        label,
        kind: next.kind,
        planned_duration_s: next.duration,
        records: run.records,
        start: run.start,
        end: run.end,
        window: WindowRule::AfterWarmup {
            launches_end: run.window_end,
            fraction: setup.settings.warmup_fraction,
        },
        server_cache_rate,
    }))
}
