//! What the verdict renderers (`diff.html`, `junit.xml`, `comment.md`)
//! share: the rows of a `verdict.json` in the order people read them,
//! metric names and units, and how numbers print. Reads the finished
//! verdict; computes no statistics of its own.

use crate::analysis::document::{PointFigures, SideFigures, VerdictFile};
use crate::analysis::{Estimate, Metric, Verdict};

/// The short metric names of test cases and tables (`ctx8000/cache50/input_tps`).
pub fn metric_slug(metric: Metric) -> &'static str {
    match metric {
        Metric::InputThroughput => "input_tps",
        Metric::OutputThroughput => "output_tps",
        Metric::TtftP50 => "ttft_p50",
        Metric::TtftP95 => "ttft_p95",
    }
}

/// The metric as a chart or a heading names it.
pub fn metric_title(metric: Metric) -> &'static str {
    match metric {
        Metric::InputThroughput => "input throughput (tok/s)",
        Metric::OutputThroughput => "output throughput (tok/s)",
        Metric::TtftP50 => "TTFT p50 (s)",
        Metric::TtftP95 => "TTFT p95 (s)",
    }
}

/// What a row's baseline and current figures are, said under every
/// verdict table.
pub const VALUES_NOTE: &str = "baseline and current are geometric means of the per-sample \
     values (for TTFT, of each sample's p50 or p95; the baseline's over its runs), the figures \
     whose ratio the change is";

/// The two figures a row shows, baseline and current: the geometric means
/// of the per-sample values when it has an estimate (see [`VALUES_NOTE`]),
/// else the point's figures.
pub fn shown_values(
    estimate: Option<&Estimate>,
    figures: Option<&PointFigures>,
    metric: Metric,
) -> (Option<f64>, Option<f64>) {
    let point =
        |side: fn(&PointFigures) -> &SideFigures| figures.map(|f| metric_value(side(f), metric));
    (
        estimate
            .and_then(|e| e.baseline_geomean)
            .or_else(|| point(|f| &f.baseline)),
        estimate
            .and_then(|e| e.current_geomean)
            .or_else(|| point(|f| &f.current)),
    )
}

/// One side's value of a metric at a point.
pub fn metric_value(figures: &SideFigures, metric: Metric) -> f64 {
    match metric {
        Metric::InputThroughput => figures.input_tps,
        Metric::OutputThroughput => figures.output_tps,
        Metric::TtftP50 => figures.ttft_p50_s,
        Metric::TtftP95 => figures.ttft_p95_s,
    }
}

/// A value with its unit: `12345 tok/s`, `0.645 s`.
pub fn format_value(metric: Metric, value: f64) -> String {
    if !value.is_finite() {
        return "-".into();
    }
    match metric {
        Metric::InputThroughput | Metric::OutputThroughput => format!("{value:.0} tok/s"),
        Metric::TtftP50 | Metric::TtftP95 => format!("{value:.3} s"),
    }
}

/// A signed percent change: `+1.2 %`, `-12.0 %`.
/// The gated point verdicts by kind, worst first, leaving out kinds with
/// none: `["3 regressed", "9 pass"]`.
pub fn counts(overall: &crate::analysis::document::Overall) -> Vec<String> {
    [
        "regressed",
        "error",
        "improved",
        "inconclusive",
        "pass",
        "insufficient",
    ]
    .iter()
    .filter_map(|kind| {
        overall
            .counts
            .get(*kind)
            .filter(|n| **n > 0)
            .map(|n| format!("{n} {kind}"))
    })
    .collect()
}

/// The change, the interval (or why there is none) and the minimum
/// detectable effect of a verdict, as table cells.
pub fn estimate_cells(
    estimate: Option<&Estimate>,
    reason: Option<String>,
) -> (String, String, String) {
    match estimate {
        Some(e) => (
            pct(e.change_pct),
            interval(e),
            format!("{:.1} %", e.mde_pct),
        ),
        None => ("-".into(), reason.unwrap_or_else(|| "-".into()), "-".into()),
    }
}

pub fn pct(value: f64) -> String {
    if value.is_finite() {
        format!("{value:+.1} %")
    } else {
        "-".into()
    }
}

/// An estimate's interval: `[-15.0 %, -9.1 %]`.
pub fn interval(estimate: &Estimate) -> String {
    format!("[{}, {}]", pct(estimate.low_pct), pct(estimate.high_pct))
}

/// A p-value in few characters.
pub fn p_value(p: f64) -> String {
    if !p.is_finite() {
        "-".into()
    } else if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// One (point, metric) verdict with the figures it was judged on.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub context_size: u64,
    pub cache_hit_rate: u32,
    pub metric: Metric,
    /// `ctx8000/cache50`.
    pub point: &'a str,
    pub gated: bool,
    pub verdict: Verdict,
    pub reason: Option<&'a str>,
    pub tolerance_pct: f64,
    pub estimate: Option<&'a Estimate>,
    /// Both sides' figures, when `verdict.json` has them for the point.
    pub figures: Option<&'a PointFigures>,
    pub current_samples: usize,
    pub baseline_samples: usize,
    pub baseline_runs: usize,
}

impl Row<'_> {
    /// `ctx8000/cache50/input_tps`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.point, metric_slug(self.metric))
    }

    /// The baseline's figure the change is about ([`shown_values`]).
    pub fn baseline_value(&self) -> Option<f64> {
        shown_values(self.estimate, self.figures, self.metric).0
    }

    /// The current run's figure, as [`Row::baseline_value`].
    pub fn current_value(&self) -> Option<f64> {
        shown_values(self.estimate, self.figures, self.metric).1
    }

    /// A change, or a measurement the gate cannot pass: what a comment
    /// shows first.
    pub fn is_change(&self) -> bool {
        matches!(
            self.verdict,
            Verdict::Regressed | Verdict::Improved | Verdict::Error | Verdict::Insufficient
        )
    }
}

/// The curve-level verdict of one metric over one context size.
#[derive(Debug, Clone)]
pub struct CurveRow<'a> {
    pub context_size: u64,
    pub metric: Metric,
    pub gated: bool,
    pub verdict: Verdict,
    pub reason: Option<&'a str>,
    pub tolerance_pct: f64,
    /// Points that entered the weighted mean.
    pub points: usize,
    pub estimate: Option<&'a Estimate>,
}

impl CurveRow<'_> {
    /// `ctx8000/curve/input_tps`.
    pub fn name(&self) -> String {
        format!(
            "ctx{}/curve/{}",
            self.context_size,
            metric_slug(self.metric)
        )
    }
}

fn metric_order(metric: Metric) -> usize {
    Metric::ALL.iter().position(|m| *m == metric).unwrap_or(0)
}

/// Every (point, metric) verdict, by context size, then cache hit rate,
/// then metric.
pub fn rows(verdict: &VerdictFile) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    for curve in &verdict.curves {
        for point in &curve.verdict.points {
            let figures = verdict.points.iter().find(|f| f.point == point.point);
            rows.push(Row {
                context_size: curve.context_size,
                cache_hit_rate: figures.map_or(0, |f| f.cache_hit_rate),
                metric: curve.verdict.metric,
                point: &point.point,
                gated: curve.gated,
                verdict: point.verdict,
                reason: point.reason.as_deref(),
                tolerance_pct: point.tolerance_pct,
                estimate: point.estimate.as_ref(),
                figures,
                current_samples: point.current_samples,
                baseline_samples: point.baseline_samples,
                baseline_runs: point.baseline_runs,
            });
        }
    }
    rows.sort_by_key(|r| (r.context_size, r.cache_hit_rate, metric_order(r.metric)));
    rows
}

/// Every curve-level verdict, by context size, then metric.
pub fn curve_rows(verdict: &VerdictFile) -> Vec<CurveRow<'_>> {
    let mut rows: Vec<CurveRow<'_>> = verdict
        .curves
        .iter()
        .map(|curve| CurveRow {
            context_size: curve.context_size,
            metric: curve.verdict.metric,
            gated: curve.gated,
            verdict: curve.verdict.curve.verdict,
            reason: curve.verdict.curve.reason.as_deref(),
            tolerance_pct: curve.verdict.curve.tolerance_pct,
            points: curve.verdict.curve.points,
            estimate: curve.verdict.curve.estimate.as_ref(),
        })
        .collect();
    rows.sort_by_key(|r| (r.context_size, metric_order(r.metric)));
    rows
}

/// The context sizes of the verdict, ascending.
pub fn context_sizes(verdict: &VerdictFile) -> Vec<u64> {
    let mut sizes: Vec<u64> = verdict.curves.iter().map(|c| c.context_size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// A JSON value of provenance (`git`, `server`) as one short line:
/// `key=value` pairs of an object, the text of a string, nothing for null.
pub fn provenance_line(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null() && !v.is_object() && !v.is_array())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}
