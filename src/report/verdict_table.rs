//! The table `compare` and `gate` print: the overall verdict first, then
//! one line per point and metric with the change, its interval, the
//! tolerance, the smallest detectable change and the verdict, then each
//! curve.

use crate::analysis::Verdict;
use crate::analysis::document::{ContextCurve, VerdictFile};

use super::verdict_view::{self, format_value, shown_values};

/// The verdict's word, in capitals where it fails the gate.
fn verdict_name(verdict: Verdict) -> String {
    match verdict {
        Verdict::Regressed | Verdict::Error => verdict.name().to_uppercase(),
        _ => verdict.name().to_string(),
    }
}

fn pct(value: f64) -> String {
    format!("{value:+.1}%")
}

fn not_gated(curve: &ContextCurve) -> &'static str {
    if curve.gated { "" } else { " (not gated)" }
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
        point_lines(&mut out, verdict, curve);
    }
    out.push_str(&format!("({})\n\n", verdict_view::VALUES_NOTE));
    for curve in &verdict.curves {
        curve_line(&mut out, curve);
    }
    for warning in &verdict.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    if let Some(time) = &verdict.time {
        out.push_str(&format!("time {}\n", time.line()));
        out.push_str(&format!("samples {}\n", time.samples_line()));
    }
    out
}

/// A line per point of one curve.
fn point_lines(out: &mut String, verdict: &VerdictFile, curve: &ContextCurve) {
    let metric = curve.verdict.metric;
    for point in &curve.verdict.points {
        let figures = verdict.points.iter().find(|p| p.point == point.point);
        let shown = |value: Option<f64>| value.map(|v| format_value(metric, v)).unwrap_or_default();
        let (baseline, current) = shown_values(point.estimate.as_ref(), figures, metric);
        let (baseline, current) = (shown(baseline), shown(current));
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
            not_gated(curve),
            point
                .reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
}

/// The curve's own line.
fn curve_line(out: &mut String, curve: &ContextCurve) {
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
        not_gated(curve),
    ));
}
