//! `cacherate gate`: `run` then `compare`. By default each point is
//! measured at the baseline's load (the fixed-load plan: a warm-up phase,
//! then the samples), so throughput and TTFT are compared at the same
//! concurrency and no GPU time goes into a ramp. A point left inconclusive
//! gets extra samples, once, before the verdict is final. The baseline is
//! read once, and its loads handed to the settings.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::compare::{gate_policy, now, print, write};
use super::run::run_and_report_on;
use crate::analysis::document::{GateTime, SamplesTaken, VerdictFile};
use crate::analysis::{GatePolicy, exit_code, judge};
use crate::baseline::{Baseline, load_run, read_loads};
use crate::cli::GateArgs;
use crate::error::{Error, Result};
use crate::progress::Ui;
use crate::runner::Stop;
use crate::serve::Server;
use crate::settings::GateSettings;
use crate::store::{AtPoint, PointId, PointStatus, RunDir, load_time};

/// Runs the gate; returns the exit code its verdict gives.
pub async fn command(args: &GateArgs, argv: &[String], cwd: &Path, stop: &Stop) -> Result<i32> {
    let baseline = Baseline::read(&args.baseline)?;
    let loads = |path: &Path| {
        if path == args.baseline {
            Ok(baseline.loads())
        } else {
            read_loads(path)
        }
    };
    let settings = GateSettings::resolve(args, cwd, &loads)?;
    let ui = Ui::new(settings.run.quiet);
    // A --serve server measured by the first pass measures the extra
    // samples too: they are samples of the same run.
    let mut server = None;
    let outcome = gate(settings, &baseline, args, argv, stop, &mut server).await;
    if let Some(server) = server {
        crate::runner::stop_server(server, &ui).await;
    }
    outcome
}

/// The gate's passes against `server` (a `--serve` server started by the
/// first and kept for the second).
async fn gate(
    mut settings: GateSettings,
    baseline: &Baseline,
    args: &GateArgs,
    argv: &[String],
    stop: &Stop,
    server: &mut Option<Server>,
) -> Result<i32> {
    let started = (Instant::now(), unix_now());
    let policy = gate_policy(&settings.verdict);
    baseline.require_points(&args.baseline, &points(&settings))?;
    let dir = run_and_report_on(settings.run.clone(), argv, stop, server)
        .await?
        .dir;
    let mut verdict = judged(baseline, &args.baseline, &dir, &policy)?;
    let extend = verdict.needs_more_samples();
    let contexts = settings.run.context_sizes.clone();
    let max_extra = settings.max_extra_samples;
    if max_extra > 0 && !extend.is_empty() {
        // The first look's verdict stays on disk should the extra samples
        // be cut short.
        write(&dir, &verdict)?;
        Ui::new(settings.run.quiet).line(&format!(
            "inconclusive at {}: adding up to {max_extra} samples there before deciding",
            verdict.overall.needs_more_samples.join(", ")
        ));
        let samples = settings.run.num_retries + max_extra;
        settings.run.sample_targets = extend
            .iter()
            .map(|id| (id.context_size, id.cache_hit_rate, samples))
            .collect();
        run_and_report_on(settings.run, argv, stop, server).await?;
        verdict = judged(baseline, &args.baseline, &dir, &policy)?;
    }
    let server_start = server
        .as_ref()
        .map_or(0.0, |s| s.ready_after().as_secs_f64());
    let extended = if max_extra > 0 { extend } else { Vec::new() };
    verdict.time = Some(time_spent(
        &dir,
        &contexts,
        started,
        server_start,
        &extended,
    )?);
    write(&dir, &verdict)?;
    print(&dir, &verdict);
    Ok(exit_code(
        verdict.overall.verdict,
        policy.fail_on_inconclusive,
    ))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Where the gate's time went since `started` (its clock and the wall
/// clock then), and the samples each point took (`extended`: the points
/// that got extra samples).
fn time_spent(
    dir: &Path,
    contexts: &[u64],
    started: (Instant, f64),
    server_start_s: f64,
    extended: &[PointId],
) -> Result<GateTime> {
    let run = RunDir::existing(dir)?;
    let load = load_time(&run, contexts, started.1)?;
    let points = run
        .load_results()?
        .points
        .iter()
        .map(|p| SamplesTaken {
            point: p.point_id().key(),
            samples: p.samples.len(),
            stopped_because: if p.status == PointStatus::Error {
                "stopped"
            } else if extended.contains(&p.point_id()) {
                "extended"
            } else {
                "planned"
            }
            .to_string(),
        })
        .collect();
    let wall = started.0.elapsed().as_secs_f64();
    Ok(GateTime::new(wall, server_start_s, &load, points))
}

/// The points the gate measures.
fn points(settings: &GateSettings) -> Vec<PointId> {
    let run = &settings.run;
    run.context_sizes
        .iter()
        .flat_map(|&c| run.cache_hit_rates.iter().map(move |&r| PointId::new(c, r)))
        .collect()
}

/// The run in `dir` judged against `baseline` (not yet written). A point
/// the circuit breaker stopped has nothing to compare: the target is
/// unhealthy (one with samples but too many errors gets its `error`
/// verdict).
fn judged(
    baseline: &Baseline,
    baseline_path: &Path,
    dir: &Path,
    policy: &GatePolicy,
) -> Result<VerdictFile> {
    let run = load_run(dir)?;
    if let Some(point) = run
        .points
        .iter()
        .find(|p| p.status == PointStatus::Error && !p.has_samples())
    {
        return Err(Error::Unreachable(format!(
            "{} was not measured ({}); run the same command again once the server is healthy",
            point.point_id(),
            point.status_message.as_deref().unwrap_or("error")
        )));
    }
    judge(baseline, baseline_path, &run, policy, &now())
}
