//! What changed from an old baseline to a new one, as `baseline refresh`
//! prints it: a line a point.

use super::schema::Baseline;
use crate::store::AtPoint;

/// A percent change from `a` to `b`, or `-` when `a` is not positive.
fn change(a: f64, b: f64) -> String {
    if a > 0.0 {
        format!("{:+.1}%", 100.0 * (b / a - 1.0))
    } else {
        "-".into()
    }
}

/// What changed from the old baseline to the new one, a line a point.
pub fn difference(old: &Baseline, new: &Baseline) -> String {
    let mut out = String::new();
    for point in &new.points {
        let name = point.point_id();
        match old.point(name) {
            Some(before) => out.push_str(&format!(
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
            )),
            None => out.push_str(&format!("{name}: new\n")),
        }
    }
    for point in old
        .points
        .iter()
        .filter(|p| new.point(p.point_id()).is_none())
    {
        out.push_str(&format!("{}: dropped\n", point.point_id()));
    }
    out
}
