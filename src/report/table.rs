//! The table `run` prints at the end: one line per point.

use crate::store::PointResult;

/// The final table of all points: the rate asked for and the effective
/// target the chunk size allows, what the server cached, the load, the
/// number of samples the figures are means of, and the figures.
pub fn render_table(points: &[PointResult]) -> String {
    let mut out = format!(
        "{:>8} {:>6} {:>7} {:>9} {:>6} {:>3} {:>12} {:>12} {:>9} {:>9} {:>8} {:>6}\n",
        "context",
        "cache%",
        "target%",
        "achieved%",
        "peak",
        "n",
        "input tok/s",
        "output tok/s",
        "TTFT p50",
        "TTFT p95",
        "ITL avg",
        "err%"
    );
    for p in points {
        out.push_str(&format!(
            "{:>8} {:>6} {:>7} {:>9} {:>5}{} {:>3} {:>12.0} {:>12.0} {:>8.3}s {:>8.3}s {:>6.1}ms {:>6.2}\n",
            p.context_size,
            p.cache_hit_rate,
            format!(
                "{:.1}{}",
                p.target_cache_rate * 100.0,
                if p.target_differs() { "~" } else { "" }
            ),
            p.achieved_cache_rate.map_or("-".to_string(), |r| format!(
                "{:.1}{}",
                r * 100.0,
                if p.cache_rate_missed { "*" } else { "" }
            )),
            p.peak_concurrency,
            if p.peak_passed { " " } else { "!" },
            if p.has_samples() {
                p.samples.len().to_string()
            } else {
                "-".to_string()
            },
            p.input_tps,
            p.output_tps,
            p.ttft.p50,
            p.ttft.p95,
            p.itl.avg * 1e3,
            p.error_rate * 100.0
        ));
        if let Some(message) = p.status_message.as_deref() {
            out.truncate(out.trim_end().len());
            out.push_str(" ERROR\n");
            out.push_str(&format!("         error: {message}\n"));
        }
    }
    if points.iter().any(|p| p.target_differs()) {
        out.push_str(
            "~ the chunk size cannot express the rate asked for: the effective target is sent \
             (a smaller --chunk-size sends the rate itself)\n",
        );
    }
    if points.iter().any(|p| p.cache_rate_missed) {
        out.push_str(
            "* the achieved cache-hit rate missed the target: the working set does not stay \
             in the server's cache\n",
        );
    }
    if points.iter().any(|p| !p.peak_passed) {
        out.push_str(
            "! no concurrency level held the thresholds (or the given level did not); its \
             figures are shown\n",
        );
    }
    if points
        .iter()
        .any(|p| p.status == crate::store::PointStatus::Error)
    {
        out.push_str(
            "ERROR the point was not measured cleanly: its figures are not a throughput, and \
             running the same command again measures it again\n",
        );
    }
    if points.iter().any(|p| !p.has_samples()) {
        out.push_str(
            "- no independent samples (--num-retries 0): the figures are those of the phase \
             that chose the peak, and a comparison refuses the point\n",
        );
    }
    out
}
