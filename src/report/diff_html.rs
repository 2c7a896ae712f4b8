//! `diff.html`: the verdict as one self-contained page — the curve-level
//! verdicts first, then each context's baseline and current curves
//! overlaid with their bands (inline SVG drawn from the numbers; no
//! script, no network), the colour-coded table of every point and metric,
//! and where both sides came from. The page is a minijinja template with
//! HTML auto-escaping, so text from a server or a baseline (a model id, a
//! name) cannot become markup; the charts carry only numbers and
//! escaped labels.

use serde::Serialize;

use crate::analysis::document::VerdictFile;
use crate::analysis::{Metric, Verdict};

use super::verdict_view::{
    self, CurveRow, Row, format_value, interval, metric_slug, p_value, pct, provenance_line,
};

/// The template; its name ends in `.html`, which turns on HTML escaping.
const TEMPLATE: &str = include_str!("diff.html.j2");
const TEMPLATE_NAME: &str = "diff.html";

#[derive(Serialize)]
struct Overall {
    verdict: &'static str,
    summary: String,
    counts: String,
}

#[derive(Serialize)]
struct CurveView {
    context_size: u64,
    metric: &'static str,
    points: usize,
    change: String,
    interval: String,
    tolerance: String,
    mde: String,
    verdict: &'static str,
    gated: bool,
    reason: Option<String>,
}

#[derive(Serialize)]
struct RowView {
    point: String,
    metric: &'static str,
    baseline: String,
    current: String,
    change: String,
    interval: String,
    tolerance: String,
    mde: String,
    p: String,
    samples: String,
    verdict: &'static str,
    gated: bool,
    reason: Option<String>,
}

#[derive(Serialize)]
struct Chart {
    title: String,
    /// Markup this module built, every text in it escaped.
    svg: String,
}

#[derive(Serialize)]
struct ContextView {
    context_size: u64,
    charts: Vec<Chart>,
}

#[derive(Serialize)]
struct RunView {
    dir: String,
    model: String,
    started_at: String,
    seed: String,
    target: String,
    git: String,
    server: String,
}

#[derive(Serialize)]
struct BaselineView {
    name: String,
    path: String,
    runs: usize,
    created_at: String,
    refreshed_by: String,
    tool_version: String,
    git: String,
    server: String,
}

#[derive(Serialize)]
struct PolicyView {
    confidence: String,
    tolerances: String,
    /// What a row's baseline and current figures are.
    values: &'static str,
    json: String,
}

fn curve_view(row: &CurveRow<'_>) -> CurveView {
    CurveView {
        context_size: row.context_size,
        metric: metric_slug(row.metric),
        points: row.points,
        change: row.estimate.map_or("-".into(), |e| pct(e.change_pct)),
        interval: row.estimate.map_or("-".into(), interval),
        tolerance: format!("{:.0} %", row.tolerance_pct),
        mde: row
            .estimate
            .map_or("-".into(), |e| format!("{:.1} %", e.mde_pct)),
        verdict: row.verdict.name(),
        gated: row.gated,
        reason: row.reason.map(str::to_string),
    }
}

fn row_view(row: &Row<'_>) -> RowView {
    let value = |v: Option<f64>| v.map_or("-".to_string(), |v| format_value(row.metric, v));
    RowView {
        point: row.point.to_string(),
        metric: metric_slug(row.metric),
        baseline: value(row.baseline_value()),
        current: value(row.current_value()),
        change: row.estimate.map_or("-".into(), |e| pct(e.change_pct)),
        interval: row.estimate.map_or("-".into(), interval),
        tolerance: format!("{:.0} %", row.tolerance_pct),
        mde: row
            .estimate
            .map_or("-".into(), |e| format!("{:.1} %", e.mde_pct)),
        p: row
            .estimate
            .map_or("-".into(), |e| p_value(e.p_adjusted.unwrap_or(e.p_value))),
        samples: format!(
            "{} / {} ({} run{})",
            row.current_samples,
            row.baseline_samples,
            row.baseline_runs,
            if row.baseline_runs == 1 { "" } else { "s" }
        ),
        verdict: row.verdict.name(),
        gated: row.gated,
        reason: row.reason.map(str::to_string),
    }
}

/// Escapes text for SVG/HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn verdict_colour(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "#1a7f37",
        Verdict::Regressed => "#cf222e",
        Verdict::Improved => "#0969da",
        Verdict::Inconclusive => "#bf8700",
        Verdict::Error => "#82071e",
        Verdict::Insufficient => "#6e7781",
    }
}

/// A step of 1, 2 or 5 × 10ⁿ that cuts `span` into about `parts`.
fn nice_step(span: f64, parts: f64) -> f64 {
    let raw = span / parts;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn tick_label(metric: Metric, value: f64) -> String {
    match metric {
        Metric::InputThroughput | Metric::OutputThroughput => {
            if value >= 10_000.0 {
                format!("{:.0}k", value / 1000.0)
            } else if value >= 1000.0 {
                format!("{:.1}k", value / 1000.0)
            } else {
                format!("{value:.0}")
            }
        }
        Metric::TtftP50 | Metric::TtftP95 => {
            if value >= 1.0 || value == 0.0 {
                format!("{value:.1}")
            } else {
                format!("{value:.2}")
            }
        }
    }
}

/// One point of a chart: where, both sides' values, the bands, the verdict.
struct ChartPoint {
    rate: f64,
    label: String,
    baseline: f64,
    current: f64,
    /// The baseline ± tolerance (log-symmetric, as the verdict judges it).
    tolerance: (f64, f64),
    /// The baseline moved by the ends of the change's interval.
    band: Option<(f64, f64)>,
    verdict: Verdict,
    tooltip: String,
}

const WIDTH: f64 = 440.0;
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 40.0;

fn polyline(points: &[(f64, f64)], style: &str) -> String {
    let coords: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    format!(
        "<polyline points=\"{}\" fill=\"none\" {style}/>",
        coords.join(" ")
    )
}

fn polygon(upper: &[(f64, f64)], lower: &[(f64, f64)], style: &str) -> String {
    let coords: Vec<String> = upper
        .iter()
        .chain(lower.iter().rev())
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    format!("<polygon points=\"{}\" {style}/>", coords.join(" "))
}

/// The scales of a chart: cache hit rate across, the metric up.
struct Frame {
    x_min: f64,
    x_max: f64,
    y_max: f64,
    /// Between y ticks.
    step: f64,
}

const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

impl Frame {
    /// The axis follows the figures; an interval much wider than them (a
    /// few noisy samples) is cut at twice the largest figure, so it cannot
    /// flatten the curves to a line at the bottom.
    fn of(usable: &[&ChartPoint]) -> Frame {
        let mut figures = 0.0f64;
        for p in usable {
            figures = figures.max(p.baseline).max(p.current).max(p.tolerance.1);
        }
        let mut top = figures;
        for p in usable {
            if let Some((_, high)) = p.band {
                top = top.max(high.min(2.0 * figures));
            }
        }
        let step = nice_step(top, 4.0);
        let y_max = if top > 0.0 {
            (top / step).ceil() * step
        } else {
            1.0
        };
        let (mut x_min, mut x_max) = usable.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.rate), hi.max(p.rate))
        });
        if x_max - x_min < 1.0 {
            x_min -= 10.0;
            x_max += 10.0;
        }
        Frame {
            x_min,
            x_max,
            y_max,
            step,
        }
    }

    fn x(&self, rate: f64) -> f64 {
        LEFT + (rate - self.x_min) / (self.x_max - self.x_min) * PLOT_W
    }

    fn y(&self, value: f64) -> f64 {
        let v = if value.is_finite() {
            value.clamp(0.0, self.y_max)
        } else {
            0.0
        };
        TOP + PLOT_H - v / self.y_max * PLOT_H
    }
}

/// The SVG of one metric over one context size.
fn chart_svg(metric: Metric, points: &[ChartPoint]) -> String {
    let finite = |v: f64| v.is_finite() && v >= 0.0;
    let usable: Vec<&ChartPoint> = points
        .iter()
        .filter(|p| finite(p.baseline) && finite(p.current))
        .collect();
    if usable.is_empty() {
        return "<p>No figures to draw.</p>".into();
    }
    let frame = Frame::of(&usable);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" font-size=\"11\" \
         font-family=\"system-ui, sans-serif\">"
    );
    axes(&mut svg, &frame, metric, &usable);
    bands(&mut svg, &frame, &usable);
    marks(&mut svg, &frame, &usable);
    svg.push_str("</svg>");
    svg
}

/// The grid, the ticks and the axes.
fn axes(svg: &mut String, frame: &Frame, metric: Metric, usable: &[&ChartPoint]) {
    let mut tick = 0.0;
    while tick <= frame.y_max + frame.step * 0.01 {
        let ty = frame.y(tick);
        svg.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#eaeef2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#57606a\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            ty + 4.0,
            escape(&tick_label(metric, tick))
        ));
        tick += frame.step;
    }
    // X ticks: the cache hit rates measured.
    for p in usable {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
            frame.x(p.rate),
            TOP + PLOT_H + 14.0,
            escape(&format!("{}", p.rate))
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#57606a\">cache hit rate (%)</text>",
        LEFT + PLOT_W / 2.0,
        HEIGHT - 6.0
    ));
    svg.push_str(&format!(
        "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#8c959f\"/>\
         <line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#8c959f\"/>",
        TOP + PLOT_H,
        WIDTH - RIGHT,
        TOP + PLOT_H,
        TOP + PLOT_H
    ));
}

/// The baseline ± tolerance, and the current run's interval band between
/// neighbouring points that both have one (a point without an estimate
/// breaks it).
fn bands(svg: &mut String, frame: &Frame, usable: &[&ChartPoint]) {
    let at = |p: &ChartPoint, value: f64| (frame.x(p.rate), frame.y(value));
    let upper: Vec<(f64, f64)> = usable.iter().map(|p| at(p, p.tolerance.1)).collect();
    let lower: Vec<(f64, f64)> = usable.iter().map(|p| at(p, p.tolerance.0)).collect();
    svg.push_str(&polygon(&upper, &lower, "fill=\"#eaeef2\" stroke=\"none\""));
    for pair in usable.windows(2) {
        if let (Some(a), Some(b)) = (pair[0].band, pair[1].band) {
            svg.push_str(&polygon(
                &[at(pair[0], a.1), at(pair[1], b.1)],
                &[at(pair[0], a.0), at(pair[1], b.0)],
                "fill=\"#0969da\" fill-opacity=\"0.22\" stroke=\"none\"",
            ));
        }
    }
}

/// Both curves, the current run's intervals, and each point's dots (the
/// current one coloured by its verdict, with its tooltip).
fn marks(svg: &mut String, frame: &Frame, usable: &[&ChartPoint]) {
    let (x, y) = (|r| frame.x(r), |v| frame.y(v));
    let baseline: Vec<(f64, f64)> = usable.iter().map(|p| (x(p.rate), y(p.baseline))).collect();
    svg.push_str(&polyline(
        &baseline,
        "stroke=\"#8c959f\" stroke-width=\"2\" stroke-dasharray=\"5 3\"",
    ));
    let current: Vec<(f64, f64)> = usable.iter().map(|p| (x(p.rate), y(p.current))).collect();
    svg.push_str(&polyline(&current, "stroke=\"#0969da\" stroke-width=\"2\""));
    for p in usable {
        if let Some((low, high)) = p.band {
            svg.push_str(&format!(
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" \
                 stroke=\"#0969da\" stroke-width=\"1.5\"/>",
                x(p.rate),
                y(low),
                y(high)
            ));
        }
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#8c959f\"/>",
            x(p.rate),
            y(p.baseline)
        ));
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"{}\" stroke=\"#fff\" \
             stroke-width=\"1\" data-point=\"{}\"><title>{}</title></circle>",
            x(p.rate),
            y(p.current),
            verdict_colour(p.verdict),
            escape(&p.label),
            escape(&p.tooltip)
        ));
    }
}

fn chart(verdict: &VerdictFile, rows: &[Row<'_>], context: u64, metric: Metric) -> Chart {
    let tolerance_log = |pct: f64| (pct / 100.0).ln_1p();
    let points: Vec<ChartPoint> = rows
        .iter()
        .filter(|r| r.context_size == context && r.metric == metric)
        .filter_map(|r| {
            let baseline = r.baseline_value()?;
            let current = r.current_value()?;
            let t = tolerance_log(r.tolerance_pct);
            Some(ChartPoint {
                rate: f64::from(r.cache_hit_rate),
                label: r.name(),
                baseline,
                current,
                tolerance: (baseline * (-t).exp(), baseline * t.exp()),
                band: r
                    .estimate
                    .map(|e| (baseline * e.low_log.exp(), baseline * e.high_log.exp())),
                verdict: r.verdict,
                tooltip: format!(
                    "{}: {} -> {} ({}), {}",
                    r.name(),
                    format_value(metric, baseline),
                    format_value(metric, current),
                    r.estimate.map_or("-".into(), |e| pct(e.change_pct)),
                    r.verdict.name()
                ),
            })
        })
        .collect();
    let curve = verdict
        .curves
        .iter()
        .find(|c| c.context_size == context && c.verdict.metric == metric);
    let title = match curve {
        Some(c) => format!(
            "{} — curve {}{}",
            verdict_view::metric_title(metric),
            c.verdict.curve.verdict.name(),
            c.verdict
                .curve
                .estimate
                .map(|e| format!(" ({})", pct(e.change_pct)))
                .unwrap_or_default()
        ),
        None => verdict_view::metric_title(metric).to_string(),
    };
    Chart {
        title,
        svg: chart_svg(metric, &points),
    }
}

/// A serializable value as a template value.
fn v<T: Serialize>(value: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}

fn json_line(value: &serde_json::Value) -> String {
    let line = provenance_line(value);
    if line.is_empty() { "-".into() } else { line }
}

/// The `diff.html` page of a verdict.
pub fn render(verdict: &VerdictFile) -> Result<String, minijinja::Error> {
    let rows = verdict_view::rows(verdict);
    let curves = verdict_view::curve_rows(verdict);
    let contexts: Vec<ContextView> = verdict_view::context_sizes(verdict)
        .into_iter()
        .map(|context| ContextView {
            context_size: context,
            charts: Metric::ALL
                .iter()
                .filter(|m| {
                    verdict
                        .curves
                        .iter()
                        .any(|c| c.context_size == context && c.verdict.metric == **m)
                })
                .map(|m| chart(verdict, &rows, context, *m))
                .collect(),
        })
        .collect();
    let counts = verdict_view::counts(&verdict.overall).join(", ");
    let total: usize = verdict.overall.counts.values().sum();
    let tolerances = &verdict.policy.tolerances;
    let context = minijinja::context! {
        overall => v(Overall {
            verdict: verdict.overall.verdict.name(),
            summary: verdict.overall.summary.clone(),
            counts: format!("{counts} of {total} gated point verdicts"),
        }),
        curves => v(curves.iter().map(curve_view).collect::<Vec<_>>()),
        rows => v(rows.iter().map(row_view).collect::<Vec<_>>()),
        contexts => v(contexts),
        warnings => v(&verdict.warnings),
        run => v(RunView {
            dir: verdict.run.dir.clone(),
            model: verdict.run.model.clone(),
            started_at: verdict.run.started_at.clone().unwrap_or_else(|| "-".into()),
            seed: verdict.run.seed.map_or("-".into(), |s| s.to_string()),
            target: verdict.run.target.join(", "),
            git: json_line(&verdict.run.git),
            server: json_line(&verdict.run.server),
        }),
        baseline => v(BaselineView {
            name: verdict.baseline.name.clone(),
            path: verdict.baseline.path.clone(),
            runs: verdict.baseline.runs,
            created_at: verdict.baseline.created_at.clone(),
            refreshed_by: verdict.baseline.refreshed_by.clone(),
            tool_version: verdict.baseline.tool_version.clone(),
            git: json_line(&verdict.baseline.git),
            server: json_line(&verdict.baseline.server),
        }),
        policy => v(PolicyView {
            confidence: format!("{:.0} %", verdict.policy.confidence * 100.0),
            tolerances: format!(
                "±{:.0} % throughput, ±{:.0} % TTFT p50, ±{:.0} % TTFT p95",
                tolerances.throughput * 100.0,
                tolerances.ttft_p50 * 100.0,
                tolerances.ttft_p95 * 100.0
            ),
            values: verdict_view::VALUES_NOTE,
            json: serde_json::to_string_pretty(&verdict.policy).unwrap_or_default(),
        }),
        tool_version => verdict.tool_version.clone(),
        schema_version => verdict.schema_version,
        created_at => verdict.created_at.clone(),
    };
    let mut env = minijinja::Environment::new();
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    env.get_template(TEMPLATE_NAME)?.render(context)
}
