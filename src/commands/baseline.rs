//! `cacherate baseline refresh NAME`: runs the sweep several times — the
//! first run finds each point's peak, the others measure at those peaks —
//! or takes finished runs (`--from-run`), and writes `baselines/NAME.json`
//! with every run's samples, optionally committing it.

use std::path::{Path, PathBuf};

use crate::baseline::{Baseline, build, check_name, load_run};
use crate::cli::RefreshArgs;
use crate::error::{Error, Result};
use crate::progress::Ui;
use crate::runner::Stop;
use crate::settings::{Mode, RunSettings};
use crate::store::RunDir;

/// Runs a baseline is made of when `--runs` is not given: what the
/// verdict Monte-Carlo needs for ≤ 1 % false alarms and ≥ 95 % detection
/// of a 10 % slowdown at 99 % confidence.
pub const DEFAULT_RUNS: u32 = crate::analysis::RECOMMENDED_BASELINE_RUNS as u32;

/// The settings of baseline run `k` (from 1): the first as given, the
/// others at the first one's loads.
fn run_settings(args: &RefreshArgs, k: u32, first: &Path, cwd: &Path) -> Result<RunSettings> {
    let mut run = args.run.clone();
    let base = run
        .options
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./output"))
        .join(format!("baseline-{}", args.name));
    run.options.output_dir = Some(base.join(format!("run-{k}")));
    if k > 1 {
        run.options.mode = Some(Mode::Fixed);
        run.options.fixed_concurrency_levels = None;
        run.options.concurrency_from = Some(first.join(crate::store::RESULTS));
    }
    RunSettings::resolve(run, cwd)
}

/// Commits `file` on the current branch of the repository that holds it.
fn commit(file: &Path, message: &str) -> Result<String> {
    let fail = |what: &str, e: git2::Error| {
        Error::Usage(format!(
            "--commit: cannot {what} ({}): commit {} by hand",
            e.message(),
            file.display()
        ))
    };
    let repo = git2::Repository::discover(file.parent().unwrap_or(Path::new(".")))
        .map_err(|e| fail("find the git repository", e))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::Usage("--commit: the repository has no work tree".into()))?
        .canonicalize()
        .map_err(|e| Error::Internal(e.into()))?;
    let absolute = file.canonicalize().map_err(|e| Error::Internal(e.into()))?;
    let relative = absolute.strip_prefix(&workdir).map_err(|_| {
        Error::Usage(format!(
            "--commit: {} is outside the repository at {}",
            file.display(),
            workdir.display()
        ))
    })?;
    let mut index = repo.index().map_err(|e| fail("open the index", e))?;
    index
        .add_path(relative)
        .map_err(|e| fail("stage the baseline", e))?;
    index.write().map_err(|e| fail("write the index", e))?;
    let tree_id = index.write_tree().map_err(|e| fail("write the tree", e))?;
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| fail("read the tree", e))?;
    let signature = repo
        .signature()
        .or_else(|_| git2::Signature::now("cacherate", "cacherate@localhost"))
        .map_err(|e| fail("make a signature", e))?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let id = repo
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .map_err(|e| fail("commit", e))?;
    Ok(id.to_string())
}

/// What changed from the old baseline to the new one, a line a point.
pub fn difference(old: &Baseline, new: &Baseline) -> String {
    let mut out = String::new();
    for point in &new.points {
        let name = format!("ctx {} at {:>3}%", point.context_size, point.cache_hit_rate);
        match old.point(point.context_size, point.cache_hit_rate) {
            Some(before) => {
                let change = |a: f64, b: f64| {
                    if a > 0.0 {
                        format!("{:+.1}%", 100.0 * (b / a - 1.0))
                    } else {
                        "-".into()
                    }
                };
                out.push_str(&format!(
                    "{name}: concurrency {} -> {}, input {:.0} -> {:.0} tok/s ({}), TTFT p95 \
                     {:.3} -> {:.3} s ({})\n",
                    before.peak_concurrency,
                    point.peak_concurrency,
                    before.input_tps,
                    point.input_tps,
                    change(before.input_tps, point.input_tps),
                    before.ttft_p95_s,
                    point.ttft_p95_s,
                    change(before.ttft_p95_s, point.ttft_p95_s),
                ));
            }
            None => out.push_str(&format!("{name}: new\n")),
        }
    }
    for point in &old.points {
        if new
            .point(point.context_size, point.cache_hit_rate)
            .is_none()
        {
            out.push_str(&format!(
                "ctx {} at {:>3}%: dropped\n",
                point.context_size, point.cache_hit_rate
            ));
        }
    }
    out
}

/// `cacherate baseline refresh`.
pub async fn refresh(args: &RefreshArgs, argv: &[String], cwd: &Path, stop: &Stop) -> Result<i32> {
    check_name(&args.name)?;
    let ui = Ui::new(args.run.quiet);
    let dirs: Vec<PathBuf> = if !args.from_run.is_empty() {
        args.from_run.clone()
    } else {
        let runs = args.runs.unwrap_or(DEFAULT_RUNS);
        if runs == 0 {
            return Err(Error::Usage("--runs must be at least 1".into()));
        }
        let first = run_settings(args, 1, Path::new("."), cwd)?.output_dir;
        let mut dirs = Vec::new();
        for k in 1..=runs {
            let settings = run_settings(args, k, &first, cwd)?;
            ui.line(&format!(
                "baseline {}: run {k} of {runs} in {}{}",
                args.name,
                settings.output_dir.display(),
                if k == 1 {
                    ""
                } else {
                    " at the first run's loads"
                }
            ));
            let outcome = super::run_and_report(settings, argv, stop).await?;
            dirs.push(outcome.dir);
        }
        dirs
    };
    let runs = dirs
        .iter()
        .map(|dir| load_run(dir))
        .collect::<Result<Vec<_>>>()?;
    let directory = args.baselines_dir.clone();
    let baseline = build(
        &args.name,
        &runs,
        crate::store::git_state(&directory),
        args.force,
    )?;
    if baseline.runs.len() < crate::analysis::RECOMMENDED_BASELINE_RUNS {
        ui.warn(&format!(
            "a baseline of {} run(s): comparisons against it raise more false alarms or miss \
             more slowdowns than one of {} (see the README)",
            baseline.runs.len(),
            crate::analysis::RECOMMENDED_BASELINE_RUNS
        ));
    }
    let file = directory.join(format!("{}.json", args.name));
    let old = file
        .exists()
        .then(|| Baseline::read(&file))
        .transpose()
        .unwrap_or_else(|e| {
            ui.warn(&format!(
                "the old baseline cannot be read ({e}); replacing it"
            ));
            None
        });
    RunDir::open(&directory)?
        .write_atomic(&format!("{}.json", args.name), &baseline.to_bytes()?)?;
    match &old {
        Some(old) => println!(
            "baseline {} rewritten: {}\nchanges from the old one:\n{}",
            args.name,
            file.display(),
            difference(old, &baseline)
        ),
        None => println!("baseline {} written: {}", args.name, file.display()),
    }
    if args.commit {
        let message = format!(
            "Refresh baseline {}\n\n{} run(s) of {} on {} by {} with cacherate {}\n",
            args.name,
            baseline.runs.len(),
            baseline.provenance.model,
            baseline.provenance.target.join(", "),
            baseline.provenance.refreshed_by,
            baseline.provenance.tool_version
        );
        let id = commit(&file, &message)?;
        println!("committed as {id}");
    }
    Ok(crate::exit::PASS)
}
