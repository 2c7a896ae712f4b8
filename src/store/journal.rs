//! The journal of the phase in flight: request rows written as they
//! complete, and what a resume recovers of them.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::record::RequestRecord;

use super::run_dir::{RunDir, detailed_results, io_error};

/// Appended to the phase id of requests whose phase did not finish: cut
/// short by a stop now, or by a killed run (kept on resume).
pub const UNFINISHED_SUFFIX: &str = "_STOPPED";

/// Request rows written one at a time to `unfinished_phase_{ctx}.csv` as
/// requests complete, ahead of their phase's commit (which appends the
/// phase's final rows to `detailed_results_{ctx}.csv`). A killed run
/// leaves the file behind, and a resume keeps its whole rows that were not
/// committed ([`RunDir::recover_requests`]): a kill loses only the
/// requests in flight.
#[derive(Debug, Default)]
pub struct Journal {
    file: std::sync::Mutex<Option<JournalFile>>,
    /// Rows as `--chunk-times summary` writes them.
    summary_rows: bool,
}

#[derive(Debug)]
struct JournalFile {
    path: PathBuf,
    file: File,
    needs_header: bool,
}

impl Journal {
    /// A journal whose rows keep what `--chunk-times summary` keeps
    /// (`summary_rows`), or every chunk time.
    pub fn new(summary_rows: bool) -> Journal {
        Journal {
            summary_rows,
            ..Journal::default()
        }
    }

    /// Journals the requests of context `context` that complete from now
    /// on, in a fresh file (one a killed run left was recovered and
    /// committed before).
    pub fn open(&self, dir: &RunDir, context: u64) -> Result<()> {
        let path = dir.file(&unfinished_phase(context));
        let file = File::create(&path).map_err(|e| io_error("create", &path, e))?;
        if let Ok(mut journal) = self.file.lock() {
            *journal = Some(JournalFile {
                path,
                file,
                needs_header: true,
            });
        }
        Ok(())
    }

    /// Appends one completed request. Best effort: a row that cannot be
    /// written stops the journal with a warning, and the phase's commit
    /// writes every row (or fails with the reason) all the same.
    pub fn record(&self, row: &RequestRecord) {
        let summary;
        let row = if self.summary_rows {
            summary = row.summary();
            &summary
        } else {
            row
        };
        let Ok(mut journal) = self.file.lock() else {
            return;
        };
        let Some(open) = journal.as_mut() else {
            return;
        };
        let mut writer = csv::WriterBuilder::new()
            .has_headers(open.needs_header)
            .from_writer(Vec::new());
        let written = writer
            .serialize(row)
            .map_err(|e| e.to_string())
            .and_then(|()| writer.into_inner().map_err(|e| e.to_string()))
            .and_then(|bytes| open.file.write_all(&bytes).map_err(|e| e.to_string()));
        match written {
            Ok(()) => open.needs_header = false,
            Err(e) => {
                tracing::warn!(
                    "cannot journal a request into {}: {e}; its phase's rows are written when \
                     it ends",
                    open.path.display()
                );
                *journal = None;
            }
        }
    }

    /// Stops journaling (the phase's rows are being committed).
    pub fn close(&self) {
        if let Ok(mut journal) = self.file.lock() {
            *journal = None;
        }
    }
}

/// What a resume kept of the requests an earlier run completed but did not
/// commit.
#[derive(Debug, Default, PartialEq)]
pub struct Recovered {
    pub requests: usize,
    /// The highest request id among them: ids go on from above it.
    pub max_request_id: Option<u64>,
}

/// The journal of the phase in flight ([`Journal`]).
pub fn unfinished_phase(context: u64) -> String {
    format!("unfinished_phase_{context}.csv")
}

impl RunDir {
    /// Appends the requests a killed run completed and did not commit:
    /// each row of an `unfinished_phase_{ctx}.csv` journal whose request id
    /// is not in `detailed_results_{ctx}.csv` already (a kill between a
    /// commit and the journal's removal leaves committed rows there; in
    /// sustained mode the journal holds the next period's requests, whose
    /// ids are below the committed counter), once, marked with
    /// [`UNFINISHED_SUFFIX`]; `files` gets the new lengths. The journals stay
    /// until [`RunDir::remove_journals`]. A torn last row is left out. Call
    /// after [`RunDir::truncate_to`].
    pub fn recover_requests(&self, files: &mut BTreeMap<String, u64>) -> Result<Recovered> {
        let mut recovered = Recovered::default();
        let entries = fs::read_dir(self.path()).map_err(|e| io_error("list", self.path(), e))?;
        let mut journals: Vec<(String, u64)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", self.path(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let context = name
                .strip_prefix("unfinished_phase_")
                .and_then(|rest| rest.strip_suffix(".csv"))
                .and_then(|context| context.parse().ok());
            if let Some(context) = context {
                journals.push((name, context));
            }
        }
        journals.sort();
        for (journal, context) in journals {
            let path = self.file(&journal);
            let bytes = fs::read(&path).map_err(|e| io_error("read", &path, e))?;
            // Only rows that end in a newline were written whole.
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let journaled: Vec<RequestRecord> = csv::Reader::from_reader(&bytes[..whole])
                .deserialize::<RequestRecord>()
                .map_while(std::result::Result::ok)
                .collect();
            if journaled.is_empty() {
                continue;
            }
            let name = detailed_results(context);
            let mut seen = self.request_ids(&name)?;
            let rows: Vec<RequestRecord> = journaled
                .into_iter()
                .filter(|row| seen.insert(row.request_id))
                .map(|mut row| {
                    if !row.phase_id.ends_with(UNFINISHED_SUFFIX) {
                        row.phase_id.push_str(UNFINISHED_SUFFIX);
                    }
                    row
                })
                .collect();
            if !rows.is_empty() {
                let length = self.append_csv(&name, &rows)?;
                files.insert(name, length);
                recovered.requests += rows.len();
                recovered.max_request_id = rows
                    .iter()
                    .map(|r| r.request_id)
                    .chain(recovered.max_request_id)
                    .max();
            }
        }
        Ok(recovered)
    }

    /// The request ids of a `detailed_results` file (none when it is not
    /// there).
    fn request_ids(&self, name: &str) -> Result<std::collections::HashSet<u64>> {
        #[derive(Deserialize)]
        struct Id {
            request_id: u64,
        }
        let path = self.file(name);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        csv::Reader::from_reader(std::io::BufReader::new(file))
            .deserialize::<Id>()
            .map(|row| {
                row.map(|row| row.request_id).map_err(|e| {
                    Error::Usage(format!(
                        "{} has a row that does not read ({e}); put the file back as it was, \
                         or start over with --force-restart",
                        path.display()
                    ))
                })
            })
            .collect()
    }

    /// Removes every `unfinished_phase_*.csv`: once `progress.json` records
    /// what [`RunDir::recover_requests`] kept (until then a kill must find
    /// them again).
    pub fn remove_journals(&self) -> Result<()> {
        let entries = fs::read_dir(self.path()).map_err(|e| io_error("list", self.path(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", self.path(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("unfinished_phase_") {
                self.remove(&name)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: u64, phase: &str) -> RequestRecord {
        RequestRecord {
            context_size: 512,
            cache_hit_rate: 50,
            phase_id: phase.into(),
            phase_index: 1,
            concurrency: 2,
            request_id: id,
            endpoint: 0,
            working_set_prompt: 3,
            launch_unix_s: 1.5,
            dispatch_delay_s: None,
            ttft_s: Some(0.01),
            ttlt_s: Some(0.02),
            finish_s: 0.021,
            chunks: 2,
            max_chunk_gap_s: Some(0.01),
            chunk_times_us: vec![10_000, 20_000],
            tokens_per_chunk: vec![1],
            expected_prompt_tokens: 512,
            target_cached_tokens: 256,
            prompt_tokens: Some(512),
            completion_tokens: Some(2),
            cached_tokens: Some(256),
            status: 200,
            resent: false,
            error_kind: None,
            error: Some("a, \"quoted\"\nmessage".into()),
            in_window: true,
        }
    }

    #[test]
    fn a_summary_journal_keeps_no_chunk_times() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let journal = Journal::new(true);
        journal.open(&run, 512).unwrap();
        journal.record(&request(1, "RAMP_c2"));
        journal.close();
        let mut files = BTreeMap::new();
        assert_eq!(run.recover_requests(&mut files).unwrap().requests, 1);
        let rows: Vec<RequestRecord> = csv::Reader::from_path(run.file(&detailed_results(512)))
            .unwrap()
            .deserialize()
            .map(|r| r.unwrap())
            .collect();
        assert!(rows[0].chunk_times_us.is_empty());
        assert_eq!(
            (rows[0].chunks, rows[0].tokens_per_chunk.as_slice()),
            (2, &[1][..])
        );
    }

    #[test]
    fn a_killed_phase_keeps_its_whole_uncommitted_requests_marked_and_leaves_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let name = detailed_results(512);
        // Request 4 was committed with its phase (so the next id is 5);
        // the journal of the next phase holds 5, 7 and a torn row.
        let committed = run.append_csv(&name, &[request(4, "WARMUP")]).unwrap();
        let journal = Journal::default();
        journal.open(&run, 512).unwrap();
        journal.record(&request(4, "WARMUP"));
        journal.record(&request(7, "RAMP_c2"));
        journal.record(&request(5, "RAMP_c2"));
        journal.close();
        let journal_path = run.file(&unfinished_phase(512));
        let mut torn = fs::read(&journal_path).unwrap();
        torn.extend_from_slice(b"512,50,RAMP_c2,1,2,9,0,3,1.5,,0.01");
        fs::write(&journal_path, &torn).unwrap();

        let mut files = BTreeMap::from([(name.clone(), committed)]);
        run.truncate_to(&files).unwrap();
        let recovered = run.recover_requests(&mut files).unwrap();
        assert_eq!(
            recovered,
            Recovered {
                requests: 2,
                max_request_id: Some(7)
            }
        );
        let bytes = fs::read(run.file(&name)).unwrap();
        assert_eq!(files[&name], bytes.len() as u64);
        let rows: Vec<RequestRecord> = csv::Reader::from_reader(&bytes[..])
            .deserialize()
            .map(|r| r.unwrap())
            .collect();
        let stopped = |id| RequestRecord {
            phase_id: format!("RAMP_c2{UNFINISHED_SUFFIX}"),
            ..request(id, "")
        };
        assert_eq!(rows, [request(4, "WARMUP"), stopped(7), stopped(5)]);
        // Killed again before progress.json recorded them: the same rows
        // come back once, from the journal still there.
        let mut again = BTreeMap::from([(name.clone(), committed)]);
        run.truncate_to(&again).unwrap();
        assert_eq!(run.recover_requests(&mut again).unwrap().requests, 2);
        assert_eq!(fs::read(run.file(&name)).unwrap(), bytes);
        // Once recorded and the journal removed, nothing more.
        run.remove_journals().unwrap();
        assert!(!journal_path.exists());
        assert_eq!(
            run.recover_requests(&mut again).unwrap(),
            Recovered::default()
        );
    }

    #[test]
    fn journaled_rows_of_a_context_never_committed_start_its_request_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let journal = Journal::default();
        journal.open(&run, 1024).unwrap();
        journal.record(&request(3, "WARMUP"));
        journal.close();
        let mut files = BTreeMap::new();
        run.truncate_to(&files).unwrap();
        let recovered = run.recover_requests(&mut files).unwrap();
        assert_eq!(recovered.requests, 1);
        let name = detailed_results(1024);
        let rows: Vec<RequestRecord> = csv::Reader::from_path(run.file(&name))
            .unwrap()
            .deserialize()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].phase_id, format!("WARMUP{UNFINISHED_SUFFIX}"));
        assert_eq!(files[&name], fs::metadata(run.file(&name)).unwrap().len());
    }
}
