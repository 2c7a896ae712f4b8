//! The table `run` prints at the end: one line per point.

use crate::store::PointResult;

/// The final table of all points.
pub fn render_table(points: &[PointResult]) -> String {
    let mut out = format!(
        "{:>8} {:>6} {:>9} {:>6} {:>12} {:>11} {:>9} {:>9} {:>8} {:>6}\n",
        "context",
        "cache%",
        "achieved%",
        "peak",
        "input tok/s",
        "output tok/s",
        "TTFT p50",
        "TTFT p95",
        "ITL avg",
        "err%"
    );
    for p in points {
        out.push_str(&format!(
            "{:>8} {:>6} {:>9} {:>5}{} {:>12.0} {:>11.0} {:>8.3}s {:>8.3}s {:>7.1}ms {:>6.2}\n",
            p.context_size,
            p.cache_hit_rate,
            p.achieved_cache_rate.map_or("-".to_string(), |r| format!(
                "{:.1}{}",
                r * 100.0,
                if p.cache_rate_missed { "*" } else { "" }
            )),
            p.peak_concurrency,
            if p.peak_passed { " " } else { "!" },
            p.input_tps,
            p.output_tps,
            p.ttft.p50,
            p.ttft.p95,
            p.itl.avg * 1e3,
            p.error_rate * 100.0
        ));
    }
    if points.iter().any(|p| p.cache_rate_missed) {
        out.push_str(
            "* the achieved cache-hit rate missed the target: the working set does not stay \
             in the server's cache\n",
        );
    }
    if points.iter().any(|p| !p.peak_passed) {
        out.push_str("! no concurrency level held the thresholds; the best compromise is shown\n");
    }
    out
}
