//! `cacherate report RUN_DIR`: reads a run directory's stored data
//! (`results.json`, `phase_metadata_{ctx}.csv`, `progress.json`, `run.json`)
//! into a [`RunReport`] and writes every HTML report from it. `run` calls
//! [`after_run`] at its end unless `--skip-graphs`.

use std::fs;
use std::path::Path;

use crate::cli::ReportArgs;
use crate::error::{Error, Result};
use crate::exit;
use crate::progress::Ui;
use crate::report::html::{PhaseRow, RunReport, Thresholds, render_all};
use crate::store::{self, AtPoint, Progress, RunDir, RunInfo};

/// What `load` read, and what it had to leave out.
#[derive(Debug)]
pub struct Loaded {
    pub report: RunReport,
    /// Files that were missing or rows that did not read: the reports show
    /// the rest.
    pub warnings: Vec<String>,
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// The committed rows of one `phase_metadata_{ctx}.csv`: only the bytes
/// `progress.json` says were committed (a run killed while appending, or
/// appending now, leaves a partial row after them).
fn read_phases(
    path: &Path,
    committed: Option<u64>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PhaseRow>> {
    let mut bytes = fs::read(path).map_err(|e| read_error(path, e))?;
    match committed {
        Some(length) if (bytes.len() as u64) > length => bytes.truncate(length as usize),
        Some(length) if (bytes.len() as u64) < length => warnings.push(format!(
            "{} holds {} bytes but {} records {length} written: rows of measured phases \
             are missing (the file was cut or replaced), so the charts lack them",
            path.display(),
            bytes.len(),
            store::PROGRESS
        )),
        _ => {}
    }
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let mut rows = Vec::new();
    for (i, row) in reader.deserialize::<PhaseRow>().enumerate() {
        match row {
            Ok(row) => rows.push(row),
            Err(e) => warnings.push(format!(
                "{} row {} does not read ({e}); left out",
                path.display(),
                i + 1
            )),
        }
    }
    Ok(rows)
}

/// A workload option's value as the index shows it.
fn option_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "–".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            items.iter().map(option_text).collect::<Vec<_>>().join(" ")
        }
        other => other.to_string(),
    }
}

/// The command-line name of a workload field; the two that are not
/// options by themselves keep a plain name.
fn option_name(key: &str) -> String {
    match key {
        "target" => "target".into(),
        "fixed_load" => "fixed load".into(),
        _ => format!("--{}", key.replace('_', "-")),
    }
}

fn thresholds_of(progress: &Progress) -> Thresholds {
    let w = &progress.workload;
    Thresholds {
        max_ttft: w.max_ttft,
        ttft_metric: w.ttft_metric.to_string(),
        min_tokens_per_req: w.min_tokens_per_req,
        max_error_rate: w.max_error_rate,
    }
}

/// The committed rows of every `phase_metadata_{ctx}.csv`.
fn committed_phases(
    dir: &RunDir,
    progress: Option<&Progress>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PhaseRow>> {
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .map_err(|e| read_error(dir.path(), e))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("phase_metadata_") && name.ends_with(".csv"))
        .collect();
    names.sort();
    let mut phases = Vec::new();
    for name in &names {
        let committed = progress.and_then(|p| p.files.get(name).copied());
        if progress.is_some() && committed.is_none() {
            // Never committed: the rows of a phase that was in flight.
            continue;
        }
        phases.extend(read_phases(&dir.file(name), committed, warnings)?);
    }
    Ok(phases)
}

/// `run.json`, or an empty one and a warning saying why.
fn provenance(dir: &RunDir, warnings: &mut Vec<String>) -> RunInfo {
    match RunInfo::read(dir) {
        Ok(Some(info)) => info,
        Ok(None) => {
            warnings.push(format!(
                "{} is missing: the index shows no provenance",
                store::RUN
            ));
            RunInfo::default()
        }
        Err(e) => {
            warnings.push(format!("{} does not read ({e})", store::RUN));
            RunInfo::default()
        }
    }
}

/// The thresholds as `run.json`'s settings recorded them, for a
/// `results.json` alone (copied out of a run).
fn recorded_thresholds(provenance: &RunInfo, warnings: &mut Vec<String>) -> Thresholds {
    let s = &provenance.settings;
    if s["max_ttft"].is_number() {
        return Thresholds {
            max_ttft: s["max_ttft"].as_f64().unwrap_or(2.0),
            ttft_metric: s["ttft_metric"].as_str().unwrap_or("p95").into(),
            min_tokens_per_req: s["min_tokens_per_req"].as_f64(),
            max_error_rate: s["max_error_rate"].as_f64().unwrap_or(0.01),
        };
    }
    warnings.push(format!(
        "neither {} nor {} records the thresholds: the defaults are shown",
        store::PROGRESS,
        store::RUN
    ));
    Thresholds::default()
}

/// The workload's options as the index lists them.
fn options_of(progress: &Progress) -> Vec<(String, String)> {
    match serde_json::to_value(&progress.workload) {
        Ok(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(key, value)| (option_name(key), option_text(value)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads a run directory into the value the reports are drawn from. A
/// directory with neither `progress.json` nor `results.json` is not a
/// run: a usage error. A run still going reads as far as it got.
pub fn load(dir: &RunDir) -> Result<Loaded> {
    let progress = dir.load_progress()?;
    if progress.is_none() && !dir.file(store::RESULTS).is_file() {
        return Err(Error::Usage(format!(
            "{} is not a run directory: it has neither {} nor {} (give the --output-dir of \
             a `cacherate run`)",
            dir.path().display(),
            store::PROGRESS,
            store::RESULTS
        )));
    }
    let mut warnings = Vec::new();
    let results = dir.load_results()?;
    let phases = committed_phases(dir, progress.as_ref(), &mut warnings)?;
    let provenance = provenance(dir, &mut warnings);
    let (thresholds, options, in_flight) = match &progress {
        Some(progress) => (
            thresholds_of(progress),
            options_of(progress),
            progress.current.as_ref().map(|c| c.point_id()),
        ),
        None => (
            recorded_thresholds(&provenance, &mut warnings),
            Vec::new(),
            None,
        ),
    };
    let mut points = results.points;
    points.sort_by_key(|p| (p.context_size, p.cache_hit_rate));
    Ok(Loaded {
        report: RunReport {
            points,
            phases,
            thresholds,
            options,
            provenance,
            in_flight,
            renderer_version: env!("CARGO_PKG_VERSION").to_string(),
        },
        warnings,
    })
}

/// What [`write_reports`] wrote.
#[derive(Debug)]
pub struct Written {
    /// Each file's name in the run directory and its size in bytes.
    pub files: Vec<(String, usize)>,
    /// What reading the run left out.
    pub warnings: Vec<String>,
}

/// Renders every report of the run in `dir` and writes them (each by an
/// atomic rename).
pub fn write_reports(dir: &RunDir) -> Result<Written> {
    let Loaded { report, warnings } = load(dir)?;
    let rendered = render_all(&report).map_err(|e| Error::Internal(e.into()))?;
    let mut files = Vec::with_capacity(rendered.len());
    for file in rendered {
        dir.write_atomic(&file.name, &file.bytes)?;
        files.push((file.name, file.bytes.len()));
    }
    Ok(Written { files, warnings })
}

/// `cacherate report RUN_DIR`.
pub fn command(args: &ReportArgs) -> Result<i32> {
    let dir = RunDir::existing(&args.run_dir)?;
    let written = write_reports(&dir)?;
    let ui = Ui::new(false);
    for warning in &written.warnings {
        ui.warn(warning);
    }
    for (name, size) in &written.files {
        println!("{:>9} bytes  {}", size, dir.file(name).display());
    }
    println!(
        "open {} for the overview",
        dir.file(crate::report::html::names::INDEX).display()
    );
    Ok(exit::PASS)
}

/// At the end of `run`: writes the reports, and on failure warns and goes
/// on — the run's data is on disk and `cacherate report` can try again.
pub fn after_run(dir: &Path, ui: &Ui) {
    let outcome = RunDir::existing(dir).and_then(|dir| write_reports(&dir));
    match outcome {
        Ok(written) => {
            for warning in &written.warnings {
                ui.warn(warning);
            }
            ui.line(&format!(
                "reports: {} ({} HTML files)",
                dir.join(crate::report::html::names::INDEX).display(),
                written.files.len()
            ));
        }
        Err(e) => ui.warn(&format!(
            "the HTML reports were not written ({e}); the run's data is complete, and \
             `cacherate report {}` writes them from it",
            dir.display()
        )),
    }
}
