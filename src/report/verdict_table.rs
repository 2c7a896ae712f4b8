//! The table `compare` and `gate` print: the overall verdict first, then
//! one line per point and metric with the change, its interval, the
//! tolerance, the smallest detectable change and the verdict, then each
//! curve.

use crate::analysis::Verdict;
use crate::analysis::document::VerdictFile;

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Regressed => "REGRESSED",
        Verdict::Improved => "improved",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Error => "ERROR",
        Verdict::Insufficient => "insufficient",
    }
}

fn pct(value: f64) -> String {
    format!("{value:+.1}%")
}

/// The terminal rendering of a verdict.
pub fn render(verdict: &VerdictFile) -> String {
    let mut out = format!(
        "{}\nagainst baseline {} ({} run{}, refreshed {} by {}) at {:.0} % confidence\n\n",
        verdict.overall.summary,
        verdict.baseline.name,
        verdict.baseline.runs,
        if verdict.baseline.runs == 1 { "" } else { "s" },
        verdict.baseline.created_at,
        verdict.baseline.refreshed_by,
        verdict.policy.confidence * 100.0,
    );
    out.push_str(&format!(
        "{:<18} {:<17} {:>12} {:>12} {:>8} {:>19} {:>6} {:>6}  {}\n",
        "point", "metric", "baseline", "current", "change", "interval", "tol", "MDE", "verdict"
    ));
    for curve in &verdict.curves {
        let metric = curve.verdict.metric;
        let value = |figures: &crate::analysis::document::SideFigures| match metric.name() {
            "input_throughput" => format!("{:.0} tok/s", figures.input_tps),
            "output_throughput" => format!("{:.0} tok/s", figures.output_tps),
            "ttft_p50" => format!("{:.3} s", figures.ttft_p50_s),
            _ => format!("{:.3} s", figures.ttft_p95_s),
        };
        for point in &curve.verdict.points {
            let figures = verdict.points.iter().find(|p| p.point == point.point);
            let (baseline, current) = figures
                .map(|f| (value(&f.baseline), value(&f.current)))
                .unwrap_or_default();
            let (change, interval, mde) = match &point.estimate {
                Some(e) => (
                    pct(e.change_pct),
                    format!("[{}, {}]", pct(e.low_pct), pct(e.high_pct)),
                    format!("{:.1}%", e.mde_pct),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            out.push_str(&format!(
                "{:<18} {:<17} {:>12} {:>12} {:>8} {:>19} {:>5.0}% {:>6}  {}{}{}\n",
                point.point,
                metric.name(),
                baseline,
                current,
                change,
                interval,
                point.tolerance_pct,
                mde,
                verdict_name(point.verdict),
                if curve.gated { "" } else { " (not gated)" },
                point
                    .reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
    }
    out.push('\n');
    for curve in &verdict.curves {
        let c = &curve.verdict.curve;
        let (change, interval) = match &c.estimate {
            Some(e) => (
                pct(e.change_pct),
                format!("[{}, {}]", pct(e.low_pct), pct(e.high_pct)),
            ),
            None => ("-".into(), "-".into()),
        };
        out.push_str(&format!(
            "curve ctx{:<8} {:<17} {:>8} {:>19} over {} points: {}{}\n",
            curve.context_size,
            curve.verdict.metric.name(),
            change,
            interval,
            c.points,
            verdict_name(c.verdict),
            if curve.gated { "" } else { " (not gated)" },
        ));
    }
    for warning in &verdict.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}
