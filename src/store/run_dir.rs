//! The run directory's files: atomic writes, appended CSVs and their
//! committed lengths, and moving an earlier run aside.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

use super::rows::{PeriodRow, PhaseRow, SummaryRow};
use super::schema::{PhaseRecord, PointResult, Progress, Results, SCHEMA_VERSION};

pub const PROGRESS: &str = "progress.json";
pub const RESULTS: &str = "results.json";
pub const RUN: &str = "run.json";
/// What the server `--serve` started wrote, appended across its starts.
pub const SERVER_LOG: &str = "server.log";

/// A file of the run directory that cannot be read or written: the path,
/// the system's reason, and what to do about it. What was saved before
/// stays saved, so the same command resumes once the cause is gone.
pub(super) fn io_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    use std::io::ErrorKind;
    let what_to_do = match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
            "free space there (or raise the file size limit) or choose another --output-dir"
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            "make the directory writable or choose another --output-dir"
        }
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists => {
            "a file stands where a directory is needed: choose another --output-dir"
        }
        _ => "check the disk, or choose another --output-dir",
    };
    Error::Usage(format!(
        "cannot {action} {}: {e}; {what_to_do}. What was saved before is kept: run the same \
         command again to resume",
        path.display()
    ))
}

pub fn detailed_results(context: u64) -> String {
    format!("detailed_results_{context}.csv")
}

pub fn phase_metadata(context: u64) -> String {
    format!("phase_metadata_{context}.csv")
}

/// Does this file name belong to a run (and so move aside on a restart)?
fn is_run_file(name: &str) -> bool {
    name == PROGRESS
        || name == RESULTS
        || name == RUN
        || name == "summary.csv"
        || name == "index.html"
        || (name.starts_with("detailed_results_")
            || name.starts_with("phase_metadata_")
            || name.starts_with("unfinished_phase_")
            || name.starts_with("sustained_periods_")
            || name.starts_with("summary_")
            || name.starts_with("run_command_")
            || name.starts_with("performance_vs_cache_rate_")
            || name.starts_with("ramp_ctx")
            || name.ends_with("_comparison.html")
            || name == "ttft_heatmap.html")
}

/// The run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn open(path: &Path) -> Result<RunDir> {
        fs::create_dir_all(path).map_err(|e| {
            Error::Usage(format!(
                "cannot create --output-dir {}: {e}; give a directory you can write to",
                path.display()
            ))
        })?;
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// A run directory that must already exist (for reading).
    pub fn existing(path: &Path) -> Result<RunDir> {
        if !path.is_dir() {
            return Err(Error::Usage(format!(
                "{} is not a run directory (give the --output-dir of a `cacherate run`)",
                path.display()
            )));
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A JSON file of the run as a value, `None` when it is not there.
    pub fn read_value(&self, name: &str) -> Result<Option<serde_json::Value>> {
        self.read_json(name)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let path = self.file(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Usage(format!(
                "{} is damaged or from an incompatible version ({e}); run with \
                 --force-restart to move this run aside and start over, or choose another \
                 --output-dir",
                path.display()
            ))
        })
    }

    pub fn load_progress(&self) -> Result<Option<Progress>> {
        let path = self.file(PROGRESS);
        match fs::read_to_string(&path) {
            Ok(text) => Progress::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read", &path, e)),
        }
    }

    pub fn load_results(&self) -> Result<Results> {
        let path = self.file(RESULTS);
        match fs::read_to_string(&path) {
            Ok(text) => Results::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Results {
                schema_version: SCHEMA_VERSION,
                points: Vec::new(),
            }),
            Err(e) => Err(io_error("read", &path, e)),
        }
    }

    /// Whether any file of a run is here.
    pub fn has_run_files(&self) -> Result<bool> {
        Ok(!self.run_files()?.is_empty())
    }

    fn run_files(&self) -> Result<Vec<PathBuf>> {
        let entries = fs::read_dir(&self.path).map_err(|e| io_error("list", &self.path, e))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.path, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_compare = name == "compare" && entry.path().is_dir();
            if is_compare || (entry.path().is_file() && is_run_file(&name)) {
                files.push(entry.path());
            }
        }
        Ok(files)
    }

    /// Moves an earlier run's files into `previous-<time>/`; returns it.
    /// Its `server.log` goes with them; a `server.log` alone (of a server
    /// that failed to start, before any run) stays, and the next start
    /// appends to it.
    pub fn archive(&self) -> Result<Option<PathBuf>> {
        let mut files = self.run_files()?;
        if files.is_empty() {
            return Ok(None);
        }
        let log = self.file(SERVER_LOG);
        if log.is_file() {
            files.push(log);
        }
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace(':', "");
        let mut target = self.path.join(format!("previous-{stamp}"));
        let mut n = 1;
        while target.exists() {
            target = self.path.join(format!("previous-{stamp}-{n}"));
            n += 1;
        }
        fs::create_dir_all(&target).map_err(|e| io_error("create", &target, e))?;
        for file in files {
            let Some(name) = file.file_name() else {
                continue;
            };
            let to = target.join(name);
            fs::rename(&file, &to).map_err(|e| io_error("move", &file, e))?;
        }
        Ok(Some(target))
    }

    /// Writes `bytes` to `name` through a temporary file in the same
    /// directory, synced, then renamed over it: a reader (or a later run)
    /// sees the old file or the new one, never part of one. A failed write
    /// removes its temporary file and leaves the old file as it was.
    /// `name` may lie in a subdirectory (`compare/verdict.json`), which is
    /// made when missing. Every file the crate writes into a run or
    /// baseline directory goes through here, except the appended CSVs.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.file(name);
        let parent = path.parent().unwrap_or(&self.path).to_path_buf();
        fs::create_dir_all(&parent).map_err(|e| io_error("create", &parent, e))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = parent.join(format!(".{file_name}.tmp"));
        let written = File::create(&temporary)
            .map_err(|e| io_error("create", &temporary, e))
            .and_then(|mut file| {
                file.write_all(bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io_error("write", &path, e))
            })
            .and_then(|()| {
                fs::rename(&temporary, &path).map_err(|e| io_error("replace", &path, e))
            });
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written?;
        // The rename itself is durable once the directory is synced; a
        // filesystem that cannot sync a directory still renamed atomically.
        if let Ok(directory) = File::open(&parent) {
            let _ = directory.sync_all();
        }
        Ok(())
    }

    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(anyhow::Error::from)?;
        bytes.push(b'\n');
        self.write_atomic(name, &bytes)
    }

    /// Appends rows to a CSV (with a header if it is new); returns its
    /// length after the append, once it is on disk. An append that fails
    /// part way is cut off again, so the file ends at its last whole row.
    pub fn append_csv<T: Serialize>(&self, name: &str, rows: &[T]) -> Result<u64> {
        let path = self.file(name);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        // Only a file known to be empty gets the header: one whose length
        // cannot be read must not get a header in the middle of its rows.
        let before = file
            .metadata()
            .map_err(|e| io_error("read the length of", &path, e))?
            .len();
        let mut writer = csv::WriterBuilder::new()
            .has_headers(before == 0)
            .from_writer(Vec::new());
        for row in rows {
            writer.serialize(row).map_err(anyhow::Error::from)?;
        }
        let bytes = writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Err(e) = file.write_all(&bytes).and_then(|()| file.sync_data()) {
            let _ = file.set_len(before);
            return Err(io_error("append to", &path, e));
        }
        Ok(before + bytes.len() as u64)
    }

    /// Appends a phase's rows to the phase metadata CSV.
    pub fn append_phase(&self, phase: &PhaseRecord) -> Result<u64> {
        self.append_csv(
            &phase_metadata(phase.context_size),
            &[PhaseRow::from(phase)],
        )
    }

    /// Removes `name` if it is there.
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.file(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &path, e)),
        }
    }

    /// Cuts appended CSVs back to their committed lengths, and removes ones
    /// never committed: the rows of a phase that was in flight. A file
    /// shorter than its committed length (or gone) lost measured rows: that
    /// is an error, never a silent fresh start.
    pub fn truncate_to(&self, committed: &BTreeMap<String, u64>) -> Result<()> {
        for (name, &length) in committed {
            let path = self.file(name);
            let on_disk = match fs::metadata(&path) {
                Ok(metadata) => metadata.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(io_error("read the length of", &path, e)),
            };
            if on_disk < length {
                return Err(Error::Usage(format!(
                    "{} holds {on_disk} bytes but {} records {length} written: {} bytes of \
                     measured rows are missing (the file was cut, replaced or removed). Put \
                     the whole file back to resume, or run with --force-restart to move this \
                     run aside and start over",
                    path.display(),
                    PROGRESS,
                    length - on_disk
                )));
            }
        }
        let entries = fs::read_dir(&self.path).map_err(|e| io_error("list", &self.path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("detailed_results_")
                || name.starts_with("phase_metadata_")
                || name.starts_with("sustained_periods_"))
            {
                continue;
            }
            let path = entry.path();
            match committed.get(&name) {
                Some(&length) => {
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| io_error("open", &path, e))?;
                    let on_disk = file
                        .metadata()
                        .map_err(|e| io_error("read the length of", &path, e))?
                        .len();
                    if on_disk > length {
                        file.set_len(length)
                            .map_err(|e| io_error("truncate", &path, e))?;
                    }
                }
                None => fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?,
            }
        }
        Ok(())
    }

    /// Appends a sustained period's row to its point's period log, named
    /// `name` (see [`Progress::period_log`](super::Progress::period_log)); returns the file's new
    /// length.
    pub fn append_period(&self, name: &str, period: &PhaseRecord) -> Result<u64> {
        let rows: Vec<PeriodRow> = PeriodRow::of(period).into_iter().collect();
        self.append_csv(name, &rows)
    }

    /// Rewrites `summary_{ctx}.csv` and `summary.csv` from the points.
    pub fn write_summaries(&self, points: &[PointResult]) -> Result<()> {
        let render = |points: &mut dyn Iterator<Item = &PointResult>| -> Result<Vec<u8>> {
            let mut writer = csv::Writer::from_writer(Vec::new());
            for point in points {
                writer
                    .serialize(SummaryRow::from(point))
                    .map_err(anyhow::Error::from)?;
            }
            Ok(writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)
        };
        let mut contexts: Vec<u64> = points.iter().map(|p| p.context_size).collect();
        contexts.sort_unstable();
        contexts.dedup();
        for context in contexts {
            let bytes = render(&mut points.iter().filter(|p| p.context_size == context))?;
            self.write_atomic(&format!("summary_{context}.csv"), &bytes)?;
        }
        self.write_atomic("summary.csv", &render(&mut points.iter())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        a: u32,
        b: Option<String>,
    }

    #[test]
    fn appended_rows_beyond_the_committed_length_are_cut_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let name = detailed_results(1000);
        let committed = run.append_csv(&name, &[Row { a: 1, b: None }]).unwrap();
        run.append_csv(
            &name,
            &[Row {
                a: 2,
                b: Some("x".into()),
            }],
        )
        .unwrap();
        fs::write(run.file(&phase_metadata(1000)), "partial").unwrap();
        run.truncate_to(&BTreeMap::from([(name.clone(), committed)]))
            .unwrap();
        assert_eq!(fs::read_to_string(run.file(&name)).unwrap(), "a,b\n1,\n");
        assert!(!run.file(&phase_metadata(1000)).exists());
    }

    #[test]
    fn archive_moves_only_run_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        run.write_atomic(PROGRESS, b"{}").unwrap();
        run.write_atomic("summary_8000.csv", b"x").unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let moved = run.archive().unwrap().unwrap();
        assert!(moved.join(PROGRESS).exists() && moved.join("summary_8000.csv").exists());
        assert!(dir.path().join("notes.txt").exists());
        assert!(!run.has_run_files().unwrap());
        assert_eq!(run.archive().unwrap(), None);
    }

    #[test]
    fn a_damaged_progress_file_is_a_usage_error_with_a_fix() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        fs::write(run.file(PROGRESS), "{ not json").unwrap();
        let error = run.load_progress().unwrap_err();
        assert!(error.to_string().contains("--force-restart"), "{error}");
        assert_eq!(error.exit_code(), crate::exit::USAGE);
    }

    #[test]
    fn a_request_file_shorter_than_committed_is_an_error_naming_the_missing_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let name = detailed_results(512);
        let rows = [Row { a: 1, b: None }, Row { a: 2, b: None }];
        let committed = run.append_csv(&name, &rows).unwrap();
        let cut = committed - 3;
        OpenOptions::new()
            .write(true)
            .open(run.file(&name))
            .unwrap()
            .set_len(cut)
            .unwrap();
        let files = BTreeMap::from([(name.clone(), committed)]);
        let error = run.truncate_to(&files).unwrap_err();
        assert_eq!(error.exit_code(), crate::exit::USAGE);
        let message = error.to_string();
        assert!(
            message.contains(&name)
                && message.contains(&format!("holds {cut} bytes"))
                && message.contains("3 bytes of measured rows are missing")
                && message.contains("--force-restart"),
            "{message}"
        );
        // Nothing was cut or removed on the way.
        assert_eq!(fs::metadata(run.file(&name)).unwrap().len(), cut);

        fs::remove_file(run.file(&name)).unwrap();
        let message = run.truncate_to(&files).unwrap_err().to_string();
        assert!(message.contains("holds 0 bytes"), "{message}");
    }

    #[test]
    fn rows_appended_to_a_file_with_rows_get_no_second_header() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let name = detailed_results(512);
        let first = run.append_csv(&name, &[Row { a: 1, b: None }]).unwrap();
        let second = run.append_csv(&name, &[Row { a: 2, b: None }]).unwrap();
        let text = fs::read_to_string(run.file(&name)).unwrap();
        assert_eq!(text, "a,b\n1,\n2,\n");
        assert_eq!((first, second), (7, text.len() as u64));
    }

    #[test]
    fn a_write_that_cannot_land_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        run.write_atomic(RESULTS, b"old").unwrap();
        // A directory where the file goes: the rename over it fails.
        fs::create_dir_all(run.file("compare/verdict.json/x")).unwrap();
        let error = run
            .write_atomic("compare/verdict.json", b"new")
            .unwrap_err();
        assert_eq!(error.exit_code(), crate::exit::USAGE);
        let message = error.to_string();
        assert!(
            message.contains("verdict.json") && message.contains("run the same command again"),
            "{message}"
        );
        assert!(!run.file("compare/.verdict.json.tmp").exists());
        assert_eq!(fs::read(run.file(RESULTS)).unwrap(), b"old");
    }
}
