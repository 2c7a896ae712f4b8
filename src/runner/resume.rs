//! The run directory a run opens: resumed when its stored options match,
//! else the earlier run moved aside and a fresh one started; and the
//! options (the [`Workload`]) that decide it.

use crate::error::{Error, Result};
use crate::progress::Ui;
use crate::settings::{Mode, RunSettings};
use crate::store::{self, AtPoint, Progress, Results, RunDir, SCHEMA_VERSION, Workload};

/// The run directory, resumed or fresh; `progress.json` is written before
/// any request goes out.
pub(super) fn open_run_dir(
    settings: &RunSettings,
    model: &str,
    ui: &Ui,
) -> Result<(RunDir, Progress, Results)> {
    let dir = RunDir::open(&settings.output_dir)?;
    // Before anything is read: a damaged progress.json must not stop the
    // restart that its error message suggests.
    if settings.force_restart
        && let Some(moved) = dir.archive()?
    {
        ui.line(&format!(
            "--force-restart: moved the earlier run to {}",
            moved.display()
        ));
    }
    let stored = dir.load_progress()?;
    let seed = settings
        .seed
        .or(stored.as_ref().map(|p| p.workload.seed))
        .unwrap_or_else(|| u64::from(rand::random::<u32>()));
    let (progress, results) = open_progress(&dir, stored, workload(settings, model, seed), ui)?;
    // The attempt (and so the suffix nonce) is on disk before any request
    // goes out: a crash before the first phase ends must not let the next
    // resume send the same suffixes again.
    dir.write_json(store::PROGRESS, &progress)?;
    dir.remove_journals()?;
    Ok((dir, progress, results))
}

/// Decides between resuming `stored` (the run directory's progress, if
/// any) and starting fresh; a run of other options is moved aside.
fn open_progress(
    dir: &RunDir,
    stored: Option<Progress>,
    workload: Workload,
    ui: &Ui,
) -> Result<(Progress, Results)> {
    let where_ = dir.path().display();
    let Some(existing) = stored else {
        if let Some(moved) = dir.archive()? {
            ui.warn(&format!(
                "{where_} held files of a run without progress.json; moved them to {}",
                moved.display()
            ));
        }
        return Ok(fresh(workload));
    };
    let differences = workload.differences(&existing.workload);
    if differences.is_empty() {
        return resume(dir, existing, ui);
    }
    let moved = dir.archive()?.ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "{where_} had a progress.json but nothing to move aside"
        ))
    })?;
    ui.warn(&format!(
        "the options differ from the run in {where_} ({}), so it cannot be resumed; its files \
         were moved to {} and a new run starts",
        differences.join(", "),
        moved.display()
    ));
    Ok(fresh(workload))
}

/// A run of `workload` with nothing measured yet.
fn fresh(workload: Workload) -> (Progress, Results) {
    let progress = Progress {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        workload,
        attempt: 0,
        next_request_id: 0,
        completed: Vec::new(),
        current: None,
        parked: Vec::new(),
        files: Default::default(),
    };
    let results = Results {
        schema_version: SCHEMA_VERSION,
        points: Vec::new(),
    };
    (progress, results)
}

/// Resumes the run `progress` describes: its files cut back to what it
/// committed, the requests a killed run completed in its last phase kept
/// (their ids are not given out again).
fn resume(dir: &RunDir, mut progress: Progress, ui: &Ui) -> Result<(Progress, Results)> {
    dir.truncate_to(&progress.files)?;
    let recovered = dir.recover_requests(&mut progress.files)?;
    if let Some(id) = recovered.max_request_id {
        progress.next_request_id = progress.next_request_id.max(id + 1);
    }
    let results = dir.load_results()?;
    progress.attempt += 1;
    let in_flight = progress
        .current
        .as_ref()
        .map(|c| format!(", and {} phases of {}", c.phases.len(), c.point_id()))
        .unwrap_or_default();
    let kept = if recovered.requests > 0 {
        format!(
            "; kept the {} completed requests of the phase it did not finish (phase ids ending \
             in {})",
            recovered.requests,
            store::UNFINISHED_SUFFIX
        )
    } else {
        String::new()
    };
    ui.line(&format!(
        "resuming the run in {}: {} points done{in_flight}{kept}",
        dir.path().display(),
        results.points.len()
    ));
    Ok((progress, results))
}

/// The options a resumed run must share with the stored one.
pub fn workload(settings: &RunSettings, model: &str, seed: u64) -> Workload {
    let target = if settings.endpoints.is_empty() {
        vec![format!(
            "embedded simulator, --sim-time-scale {}",
            settings.sim_time_scale
        )]
    } else {
        settings
            .endpoints
            .iter()
            .map(|url| crate::settings::mask_password(url))
            .collect()
    };
    Workload {
        target,
        model: model.to_string(),
        prompt_mode: settings.prompt_mode,
        tokenizer: settings.tokenizer.clone(),
        working_set_size: settings.working_set_size,
        output_tokens: settings.output_tokens,
        max_ttft: settings.max_ttft,
        ttft_metric: settings.ttft_metric,
        test_duration: settings.test_duration,
        ramp_duration: settings.ramp_duration,
        num_retries: settings.num_retries,
        start_concurrency: settings.start_concurrency,
        concurrency_increment: settings.concurrency_increment,
        max_concurrency: settings.max_concurrency,
        init_concurrency: settings.init_concurrency,
        cache_hit_rates: settings.cache_hit_rates.clone(),
        chunk_size: settings.chunk_size,
        reinit_strategy: settings.reinit_strategy,
        random_working_set_selection: settings.random_working_set_selection,
        seed,
        strict_time_window: settings.strict_time_window,
        min_tokens_per_req: settings.min_tokens_per_req,
        tokens_per_req_metric: settings.tokens_per_req_metric,
        max_error_rate: settings.max_error_rate,
        mode: settings.mode,
        fixed_load: settings.fixed_load.clone(),
        warmup_fraction: settings.warmup_fraction,
        sample_duration: settings.sample_duration,
        sample_sizing: settings
            .lengthen_samples
            .then(|| super::setup::sample_sizing(settings)),
        assessment_period: (settings.mode == Mode::Sustained).then_some(settings.assessment_period),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn quick(extra: &[&str]) -> RunSettings {
        let mut argv = vec!["cacherate", "run", "--profile", "quick"];
        argv.extend_from_slice(extra);
        let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("run command");
        };
        let dir = tempfile::tempdir().unwrap();
        RunSettings::resolve(*args, dir.path()).unwrap()
    }

    #[test]
    fn only_sustained_mode_stores_its_assessment_period() {
        let s = quick(&["--mode", "sustained", "--assessment-period", "5"]);
        assert_eq!(workload(&s, "m", 1).assessment_period, Some(5.0));
        assert_eq!(workload(&quick(&[]), "m", 1).assessment_period, None);
    }
}
