//! A `compare/verdict.json` read back as the files hold it: the names the
//! overall verdict lists, and the point verdicts of a metric.

use std::path::Path;

use serde_json::Value;

/// The `compare/verdict.json` of run directory `out` (`null` when there is
/// none, so the assertion that reads it names what is missing).
pub fn read(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("compare/verdict.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

/// The names the overall verdict lists under `list` (`regressed`,
/// `improved`, `inconclusive`, `errors`).
pub fn listed(verdict: &Value, list: &str) -> Vec<String> {
    verdict["overall"][list]
        .as_array()
        .unwrap_or_else(|| panic!("no overall.{list} in {verdict}"))
        .iter()
        .map(|name| name.as_str().unwrap().to_string())
        .collect()
}

/// Every point verdict of `metric`, in curve order.
pub fn of_metric(verdict: &Value, metric: &str) -> Vec<Value> {
    verdict["curves"]
        .as_array()
        .unwrap_or_else(|| panic!("no curves in {verdict}"))
        .iter()
        .filter(|curve| curve["verdict"]["metric"] == metric)
        .flat_map(|curve| curve["verdict"]["points"].as_array().unwrap().clone())
        .collect()
}

/// The verdict of `point` (`ctx512/cache0`) for `metric`.
pub fn of_point(verdict: &Value, point: &str, metric: &str) -> Value {
    of_metric(verdict, metric)
        .into_iter()
        .find(|p| p["point"] == point)
        .unwrap_or_else(|| panic!("no {point} {metric} in {verdict}"))
}
