//! The table `run` prints at the end: one line per point.

use crate::store::PointResult;

const HEADER: [&str; 12] = [
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
    "err%",
];

/// A point's line, and the line naming its error when it has one.
fn row(p: &PointResult) -> String {
    let target = format!(
        "{:.1}{}",
        p.target_cache_rate * 100.0,
        if p.target_differs() { "~" } else { "" }
    );
    let achieved = p.achieved_cache_rate.map_or("-".to_string(), |r| {
        format!(
            "{:.1}{}",
            r * 100.0,
            if p.cache_rate_missed { "*" } else { "" }
        )
    });
    let samples = if p.has_samples() {
        p.samples.len().to_string()
    } else {
        "-".to_string()
    };
    let mut line = format!(
        "{:>8} {:>6} {:>7} {:>9} {:>5}{} {:>3} {:>12.0} {:>12.0} {:>8.3}s {:>8.3}s {:>6.1}ms {:>6.2}\n",
        p.context_size,
        p.cache_hit_rate,
        target,
        achieved,
        p.peak_concurrency,
        if p.peak_passed { " " } else { "!" },
        samples,
        p.input_tps,
        p.output_tps,
        p.ttft.p50,
        p.ttft.p95,
        p.itl.avg * 1e3,
        p.error_rate * 100.0
    );
    if let Some(message) = p.status_message.as_deref() {
        line.truncate(line.trim_end().len());
        line.push_str(" ERROR\n");
        line.push_str(&format!("         error: {message}\n"));
    }
    line
}

/// The footnotes of the marks the rows use.
fn legend(points: &[PointResult]) -> String {
    let notes: [(bool, &str); 5] = [
        (
            points.iter().any(|p| p.target_differs()),
            "~ the chunk size cannot express the rate asked for: the effective target is sent \
             (a smaller --chunk-size sends the rate itself)\n",
        ),
        (
            points.iter().any(|p| p.cache_rate_missed),
            "* the achieved cache-hit rate missed the target: the working set does not stay \
             in the server's cache\n",
        ),
        (
            points.iter().any(|p| !p.peak_passed),
            "! no concurrency level held the thresholds (or the given level did not); its \
             figures are shown\n",
        ),
        (
            points
                .iter()
                .any(|p| p.status == crate::store::PointStatus::Error),
            "ERROR the point was not measured cleanly: its figures are not a throughput, and \
             running the same command again measures it again\n",
        ),
        (
            points.iter().any(|p| !p.has_samples()),
            "- no independent samples (--num-retries 0): the figures are those of the phase \
             that chose the peak, and a comparison refuses the point\n",
        ),
    ];
    notes
        .iter()
        .filter(|(shown, _)| *shown)
        .map(|(_, note)| *note)
        .collect()
}

/// The final table of all points: the rate asked for and the effective
/// target the chunk size allows, what the server cached, the load, the
/// number of samples the figures are means of, and the figures.
pub fn render_table(points: &[PointResult]) -> String {
    let [c, r, t, a, peak, n, input, output, p50, p95, itl, err] = HEADER;
    let mut out = format!(
        "{c:>8} {r:>6} {t:>7} {a:>9} {peak:>6} {n:>3} {input:>12} {output:>12} {p50:>9} {p95:>9} \
         {itl:>8} {err:>6}\n"
    );
    for p in points {
        out.push_str(&row(p));
    }
    out.push_str(&legend(points));
    out
}
