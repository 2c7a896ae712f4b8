//! The per-point loads `--concurrency-from FILE` names, read from an
//! earlier run's `results.json` or from a baseline: both list their points
//! with `context_size`, `cache_hit_rate` and `peak_concurrency`. Settings
//! never read these files; a command reads them here and hands the loads
//! over.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The `(context, rate, concurrency)` of every point of an earlier run's
/// `results.json` or of a baseline: any JSON file with a `points` list
/// whose entries carry `context_size`, `cache_hit_rate` and
/// `peak_concurrency`.
pub fn read_loads(path: &Path) -> Result<Vec<(u64, u32, u32)>> {
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
            "--concurrency-from {}: {} has concurrency 0",
            path.display(),
            crate::store::PointId::new(bad.context_size, bad.cache_hit_rate)
        )));
    }
    Ok(file
        .points
        .into_iter()
        .map(|p| (p.context_size, p.cache_hit_rate, p.peak_concurrency))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_there_or_has_no_loads_says_so() {
        let error = read_loads(Path::new("/nonexistent.json")).unwrap_err();
        assert_eq!(error.exit_code(), crate::exit::USAGE);
        assert!(
            error.to_string().contains("cannot read --concurrency-from"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.json");
        std::fs::write(
            &zero,
            r#"{"points": [{"context_size": 512, "cache_hit_rate": 50, "peak_concurrency": 0}]}"#,
        )
        .unwrap();
        let error = read_loads(&zero).unwrap_err().to_string();
        assert!(
            error.contains("ctx 512 at 50% has concurrency 0"),
            "{error}"
        );
    }
}
