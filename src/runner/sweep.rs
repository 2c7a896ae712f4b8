//! `cacherate run`: the sweep over context sizes and cache rates — the
//! setup ([`super::setup`]), then each point in turn ([`super::point`]),
//! context-major and rate ascending, then how the run ended.

use std::path::PathBuf;

use super::breaker::still_answering;
use super::commit::RunFiles;
use super::embedded::EmbeddedSim;
use super::point::PointRun;
use super::setup::{Setup, Target};
use super::stop::Stop;
use crate::error::Result;
use crate::progress::Ui;
use crate::serve::Server;
use crate::settings::{ReinitStrategy, RunSettings};
use crate::store::{PointId, PointResult, PointStatus};

/// What a finished run leaves.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub points: Vec<PointResult>,
}

/// Runs the sweep. `argv` is recorded in `run.json`.
pub async fn run(settings: RunSettings, argv: &[String]) -> Result<RunOutcome> {
    run_until(settings, argv, &Stop::new()).await
}

/// Runs the sweep until it is done or `stop` ends it
/// ([`Error::Interrupted`](crate::error::Error::Interrupted), with
/// everything measured saved). A server `--serve` names is started for it
/// and stopped after it.
pub async fn run_until(settings: RunSettings, argv: &[String], stop: &Stop) -> Result<RunOutcome> {
    let ui = Ui::new(settings.quiet);
    let mut server = None;
    let outcome = run_on(settings, argv, stop, &mut server).await;
    if let Some(server) = server {
        super::served::stop(server, &ui).await;
    }
    outcome
}

/// [`run_until`], against the `--serve` server in `server` when there is
/// one (a gate's second pass measures the server of its first), else one
/// started here and left in `server` for the caller to stop (dropped, it
/// stops too).
pub async fn run_on(
    settings: RunSettings,
    argv: &[String],
    stop: &Stop,
    server: &mut Option<Server>,
) -> Result<RunOutcome> {
    if let Some(serve) = &settings.serve {
        return super::served::run(&settings, serve, argv, stop, server).await;
    }
    let ui = Ui::new(settings.quiet);
    let simulator = if settings.endpoints.is_empty() {
        let server = EmbeddedSim::start(&settings).await?;
        ui.line(&format!(
            "no --api-endpoint given: started the embedded simulator at {} \
             (--sim-time-scale {})",
            server.url(),
            settings.sim_time_scale
        ));
        Some(server)
    } else {
        None
    };
    let (endpoints, target) = match &simulator {
        Some(server) => (vec![server.url()], Target::Embedded),
        None => (settings.endpoints.clone(), Target::Given),
    };
    let outcome = sweep(&settings, argv, &ui, endpoints, target, stop).await;
    if let Some(server) = simulator {
        server.stop().await;
    }
    outcome
}

pub(super) async fn sweep(
    settings: &RunSettings,
    argv: &[String],
    ui: &Ui,
    endpoints: Vec<String>,
    target: Target<'_>,
    stop: &Stop,
) -> Result<RunOutcome> {
    let (setup, mut files) = Setup::prepare(settings, argv, ui, endpoints, target, stop).await?;
    for &context in &settings.context_sizes {
        let factory = setup.factory(context);
        let mut warmed = false;
        let mut previous_peak = None;
        for &rate in &settings.cache_hit_rates {
            let id = PointId::new(context, rate);
            let mut point = PointRun::new(&setup, &mut files, id, &factory);
            if let Some(peak) = measured_before(&setup, point.files, id) {
                previous_peak = Some(peak);
                if let Some(target) = setup.sample_target(id) {
                    point.extend(target).await?;
                    warmed = true;
                }
                continue;
            }
            let warm = match settings.reinit_strategy {
                ReinitStrategy::Once => !warmed,
                ReinitStrategy::PerCacheRate => true,
                ReinitStrategy::PerTest => false,
            };
            let start = previous_peak.unwrap_or(settings.start_concurrency);
            let measured = point.measure(start, warm).await?;
            warmed = true;
            if measured.status == PointStatus::Ok {
                previous_peak = Some(measured.peak_concurrency);
            }
            still_answering(&setup.shared.breaker, &setup.shared.client, id).await?;
        }
    }
    let dir = files.dir().path().to_path_buf();
    Ok(RunOutcome {
        dir,
        points: files.finish()?,
    })
}

/// The peak of point `id` when an earlier attempt measured it, so this one
/// does not. A point that errored is measured again, unless the run only
/// adds samples (a gate's `sample_targets` change nothing else: a point
/// that errored keeps its error verdict).
fn measured_before(setup: &Setup<'_>, files: &RunFiles, id: PointId) -> Option<u32> {
    let extending = !setup.settings.sample_targets.is_empty();
    files
        .point(id)
        .filter(|p| p.status == PointStatus::Ok || extending)
        .map(|p| p.peak_concurrency)
}
