//! Where a run's load time went, read back from its files: the working-set
//! warm-ups (the `WARMUP` request rows of `detailed_results_{ctx}.csv`) and
//! the phases of `phase_metadata_{ctx}.csv` by kind. Bookkeeping of
//! recorded intervals, no statistics.

use std::path::Path;

use serde::Deserialize;

use super::run_dir::{RunDir, detailed_results, phase_metadata};
use crate::error::{Error, Result};

/// Seconds of load, by what the load was for.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadTime {
    /// Sending the working set before a point (the union of the warm-up
    /// requests' intervals, so concurrent requests count once).
    pub working_set_warmup_s: f64,
    /// Fixed-load warm-up phases, not counted as samples.
    pub warmup_phases_s: f64,
    /// Phases whose figures are samples.
    pub sample_phases_s: f64,
    /// The peak search's ramp and refine phases, and sustained periods.
    pub search_phases_s: f64,
}

impl LoadTime {
    pub fn total(&self) -> f64 {
        self.working_set_warmup_s
            + self.warmup_phases_s
            + self.sample_phases_s
            + self.search_phases_s
    }
}

/// The columns of a request row this reads.
#[derive(Deserialize)]
struct RequestTimes {
    phase_id: String,
    launch_unix_s: f64,
    finish_s: f64,
}

/// The columns of a phase row this reads.
#[derive(Deserialize)]
struct PhaseTimes {
    phase_id: String,
    phase_type: String,
    start_unix_s: f64,
    end_unix_s: f64,
}

fn reader(path: &Path) -> Result<Option<csv::Reader<std::fs::File>>> {
    match csv::Reader::from_path(path) {
        Ok(reader) => Ok(Some(reader)),
        Err(e) if matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound) => {
            Ok(None)
        }
        Err(e) => Err(Error::Usage(format!("cannot read {}: {e}", path.display()))),
    }
}

/// The length of the union of `intervals`.
fn union_length(mut intervals: Vec<(f64, f64)>) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in intervals {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(0.0, |(s, e)| e - s)
}

/// The load time of `contexts` in `run` that started at or after
/// `since_unix_s` (a gate counts its own process's load, not that of an
/// earlier, interrupted one it resumed).
pub fn load_time(run: &RunDir, contexts: &[u64], since_unix_s: f64) -> Result<LoadTime> {
    let mut time = LoadTime::default();
    let mut warmups = Vec::new();
    for &context in contexts {
        let bad_row = |path: &Path, e: csv::Error| {
            Error::Usage(format!("{} does not read: {e}", path.display()))
        };
        let path = run.file(&detailed_results(context));
        if let Some(mut rows) = reader(&path)? {
            for row in rows.deserialize::<RequestTimes>() {
                let row = row.map_err(|e| bad_row(&path, e))?;
                if row.phase_id == "WARMUP" && row.launch_unix_s >= since_unix_s {
                    warmups.push((row.launch_unix_s, row.launch_unix_s + row.finish_s));
                }
            }
        }
        let path = run.file(&phase_metadata(context));
        if let Some(mut rows) = reader(&path)? {
            for row in rows.deserialize::<PhaseTimes>() {
                let row = row.map_err(|e| bad_row(&path, e))?;
                if row.start_unix_s < since_unix_s {
                    continue;
                }
                let length = (row.end_unix_s - row.start_unix_s).max(0.0);
                let slot = match row.phase_type.as_str() {
                    "FIXED_WARMUP" => &mut time.warmup_phases_s,
                    "FIXED" | "RETRY" => &mut time.sample_phases_s,
                    _ if row.phase_id.ends_with("_warmup") => &mut time.warmup_phases_s,
                    _ => &mut time.search_phases_s,
                };
                *slot += length;
            }
        }
    }
    time.working_set_warmup_s = union_length(warmups);
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_intervals_count_once_and_gaps_not_at_all() {
        assert_eq!(union_length(vec![]), 0.0);
        assert_eq!(union_length(vec![(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]), 4.0);
        assert_eq!(union_length(vec![(5.0, 6.0), (0.0, 10.0)]), 10.0);
    }
}
