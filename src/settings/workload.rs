//! Fixed mode's per-point load from `--concurrency-from`: read from an
//! earlier run's `results.json` or a baseline.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The `(context, rate, concurrency)` of every point of an earlier run's
/// `results.json` or of a baseline: any JSON file with a `points` list
/// whose entries carry `context_size`, `cache_hit_rate` and
/// `peak_concurrency`.
pub fn concurrency_from(path: &Path) -> Result<Vec<(u64, u32, u32)>> {
    #[derive(Deserialize)]
    struct Point {
        context_size: u64,
        cache_hit_rate: u32,
        peak_concurrency: u32,
    }
    #[derive(Deserialize)]
    struct File {
        points: Vec<Point>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read --concurrency-from {}: {e}",
            path.display()
        ))
    })?;
    let file: File = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "--concurrency-from {} is not a results.json or baseline with points \
             (context_size, cache_hit_rate, peak_concurrency): {e}",
            path.display()
        ))
    })?;
    if let Some(bad) = file.points.iter().find(|p| p.peak_concurrency == 0) {
        return Err(Error::Usage(format!(
            "--concurrency-from {}: ctx {} at {}% has concurrency 0",
            path.display(),
            bad.context_size,
            bad.cache_hit_rate
        )));
    }
    Ok(file
        .points
        .into_iter()
        .map(|p| (p.context_size, p.cache_hit_rate, p.peak_concurrency))
        .collect())
}
