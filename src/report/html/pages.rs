//! The run's HTML pages: minijinja templates (auto-escaped, as every
//! `.html` template is) filled with the figures of a [`RunReport`], each
//! page one self-contained file with uPlot, its stylesheet and the chart
//! data inside.

use minijinja::value::Serde;
use minijinja::{Environment, context};
use serde::Serialize;

use super::charts::{self, Chart};
use super::format;
use super::model::{PhaseRow, RunReport, names};
use crate::store::{PlanKind, PointId, PointResult, RunStatus};

const UPLOT_JS: &str = include_str!("vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("vendor/uplot/uPlot.min.css");
const CHARTS_JS: &str = include_str!("assets/charts.js");
const REPORT_CSS: &str = include_str!("assets/report.css");

/// One rendered file of the run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// The file name inside the run directory.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A template failed to render: a bug in cacherate, not in the data.
#[derive(Debug, thiserror::Error)]
#[error("cannot render {page}: {source:#}")]
pub struct RenderError {
    page: String,
    source: minijinja::Error,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Every template is named *.html, so the default callback escapes
    // every value for HTML unless a template marks it safe.
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("index.html", include_str!("templates/index.html")),
        (
            "performance.html",
            include_str!("templates/performance.html"),
        ),
        ("ramp.html", include_str!("templates/ramp.html")),
        ("comparison.html", include_str!("templates/comparison.html")),
        ("heatmap.html", include_str!("templates/heatmap.html")),
        ("macros.html", include_str!("templates/macros.html")),
    ] {
        env.add_template(name, source)
            .expect("the built-in templates parse");
    }
    env
}

/// A link of the navigation bar.
#[derive(Debug, Serialize)]
struct Link {
    href: String,
    label: String,
    current: bool,
}

/// The files every page links to, in the order the index lists them.
fn navigation(report: &RunReport, current: &str) -> Vec<Link> {
    let mut links = vec![(names::INDEX.to_string(), "Overview".to_string())];
    for context in report.contexts() {
        if !report.points_of(context).is_empty() {
            links.push((names::performance(context), format!("Context {context}")));
        }
    }
    if !report.points.is_empty() {
        links.push((names::INPUT_COMPARISON.into(), "Input tok/s".into()));
        links.push((names::OUTPUT_COMPARISON.into(), "Output tok/s".into()));
        links.push((names::OUTPUT_METRICS.into(), "ITL & per request".into()));
    }
    if has_heatmap(report) {
        links.push((names::HEATMAP.into(), "TTFT heatmap".into()));
    }
    for rate in charts::sustained_rates(report) {
        links.push((
            names::sustained_comparison(rate),
            format!("Sustained {rate} %"),
        ));
    }
    links
        .into_iter()
        .map(|(href, label)| Link {
            current: href == current,
            href,
            label,
        })
        .collect()
}

/// The seed draws the heatmap only when there are several context sizes.
fn has_heatmap(report: &RunReport) -> bool {
    report
        .contexts()
        .iter()
        .filter(|&&c| !report.points_of(c).is_empty())
        .count()
        > 1
}

/// What the header of every page says about the run.
#[derive(Debug, Serialize)]
struct RunHeader {
    model: String,
    status: String,
    /// The run is not finished: its pages show what is done.
    partial: bool,
    threshold: String,
}

fn run_header(report: &RunReport) -> RunHeader {
    let p = &report.provenance;
    let complete = p.status == Some(RunStatus::Complete) && report.in_flight.is_none();
    let status = if complete {
        "complete".to_string()
    } else if p.status == Some(RunStatus::CompleteWithErrors) && report.in_flight.is_none() {
        "complete, with errored points (the same command measures them again)".to_string()
    } else {
        let mut status = format!(
            "not finished (running or interrupted): {} points done",
            report.points.len()
        );
        if let Some(id) = report.in_flight {
            status.push_str(&format!(", {id} in flight"));
        }
        status
    };
    let t = &report.thresholds;
    let mut threshold = format!("TTFT {} ≤ {:.3} s", t.ttft_metric, t.max_ttft);
    if let Some(min) = t.min_tokens_per_req {
        threshold.push_str(&format!(", ≥ {min} output tok/s per request"));
    }
    threshold.push_str(&format!(", errors ≤ {}", format::percent(t.max_error_rate)));
    RunHeader {
        model: p.model.clone().unwrap_or_else(|| "(model unknown)".into()),
        status,
        partial: !complete,
        threshold,
    }
}

/// One point as a table row: every number formatted as the terminal table
/// writes it, and the flags that qualify it.
#[derive(Debug, Serialize)]
struct PointRow {
    context: u64,
    rate: u32,
    target: String,
    target_differs: bool,
    achieved: String,
    cache_missed: bool,
    plan: &'static str,
    peak: u32,
    peak_passed: bool,
    has_selection: bool,
    selection: String,
    samples: String,
    input: String,
    output: String,
    ttft_avg: String,
    ttft_p50: String,
    ttft_p95: String,
    ttft_p99: String,
    itl_avg: String,
    req_output: String,
    error_rate: String,
    /// Why the point errored (see `PointStatus`).
    status_message: Option<String>,
    ramp_href: String,
}

fn point_row(p: &PointResult) -> PointRow {
    PointRow {
        context: p.context_size,
        rate: p.cache_hit_rate,
        target: format::percent(p.target_cache_rate),
        target_differs: p.target_differs(),
        achieved: format::percent_opt(p.achieved_cache_rate),
        cache_missed: p.cache_rate_missed,
        plan: match p.plan {
            PlanKind::PeakSearch => "peak search",
            PlanKind::FixedLevels => "fixed levels",
            PlanKind::FixedFrom => "fixed (given)",
            PlanKind::Sustained => "sustained",
        },
        peak: p.peak_concurrency,
        peak_passed: p.peak_passed,
        has_selection: p.selection_phase.is_some(),
        selection: p.selection_phase.clone().unwrap_or_else(|| "–".into()),
        samples: if p.has_samples() {
            p.samples.len().to_string()
        } else {
            "–".into()
        },
        input: format::tps(p.input_tps),
        output: format::tps(p.output_tps),
        ttft_avg: format::seconds(p.ttft.avg),
        ttft_p50: format::seconds(p.ttft.p50),
        ttft_p95: format::seconds(p.ttft.p95),
        ttft_p99: format::seconds(p.ttft.p99),
        itl_avg: format::millis(p.itl.avg),
        req_output: format::tps(p.req_output_tps_avg),
        error_rate: format::percent(p.error_rate),
        status_message: p.status_message.clone(),
        ramp_href: names::ramp(p.context_size, p.cache_hit_rate),
    }
}

/// What the legends under a points table explain, when it applies.
#[derive(Debug, Serialize)]
struct Footnotes {
    target_differs: bool,
    cache_missed: bool,
    peak_failed: bool,
    no_samples: bool,
}

fn footnotes<'a>(points: impl Iterator<Item = &'a PointResult> + Clone) -> Footnotes {
    Footnotes {
        target_differs: points.clone().any(|p| p.target_differs()),
        cache_missed: points.clone().any(|p| p.cache_rate_missed),
        peak_failed: points.clone().any(|p| !p.peak_passed),
        no_samples: points.clone().any(|p| !p.has_samples()),
    }
}

/// One phase as a row of a ramp page.
#[derive(Debug, Serialize)]
struct PhaseView {
    id: String,
    kind: String,
    concurrency: u32,
    start: String,
    window: String,
    launched: u64,
    failed: u64,
    input: String,
    output: String,
    ttft_avg: String,
    ttft_p50: String,
    ttft_p95: String,
    ttft_max: String,
    decision: String,
    itl_avg: String,
    achieved: String,
    passed: bool,
    reason: String,
    /// Sustained mode: what the controller decided after the period.
    decided: String,
    /// The phase that chose the peak, or a sample at it.
    role: &'static str,
}

fn phase_view(phase: &PhaseRow, origin: f64, role: &'static str) -> PhaseView {
    PhaseView {
        id: phase.phase_id.clone(),
        kind: phase.phase_type.clone(),
        concurrency: phase.concurrency,
        start: format!("{:.2} s", phase.start_unix_s - origin),
        window: format!(
            "{:.2}–{:.2} s",
            phase.window_start_unix_s - origin,
            phase.window_end_unix_s - origin
        ),
        launched: phase.launched,
        failed: phase.failed,
        input: format::tps(phase.input_tps),
        output: format::tps(phase.output_tps),
        ttft_avg: format::seconds(phase.ttft_avg_s),
        ttft_p50: format::seconds(phase.ttft_p50_s),
        ttft_p95: format::seconds(phase.ttft_p95_s),
        ttft_max: format::seconds(phase.ttft_max_s),
        decision: format::seconds(phase.decision_ttft_s),
        itl_avg: format::millis(phase.itl_avg_s),
        achieved: format::percent_opt(phase.achieved_cache_rate),
        passed: phase.passed,
        reason: phase.reason.clone().unwrap_or_default(),
        decided: match (&phase.decision, phase.next_concurrency) {
            (Some(decision), Some(next)) => format!("{decision} → {next}"),
            _ => String::new(),
        },
        role,
    }
}

/// Renders one page from its template and context.
fn page(
    env: &Environment<'_>,
    report: &RunReport,
    template: &str,
    name: &str,
    title: &str,
    charts: &[Chart],
    values: minijinja::Value,
) -> Result<RenderedFile, RenderError> {
    let fail = |source| RenderError {
        page: name.to_string(),
        source,
    };
    let template = env.get_template(template).map_err(fail)?;
    let base = context! {
        title => title,
        nav => Serde(navigation(report, name)),
        run => Serde(run_header(report)),
        renderer_version => &report.renderer_version,
        charts => Serde(charts),
        report_css => minijinja::Value::from_safe_string(REPORT_CSS.into()),
        uplot_css => minijinja::Value::from_safe_string(UPLOT_CSS.into()),
        uplot_js => minijinja::Value::from_safe_string(UPLOT_JS.into()),
        charts_js => minijinja::Value::from_safe_string(CHARTS_JS.into()),
    };
    let html = template
        .render(context! { ..base, ..values })
        .map_err(fail)?;
    Ok(RenderedFile {
        name: name.to_string(),
        bytes: html.into_bytes(),
    })
}

/// The options and provenance rows of the index.
fn provenance_rows(report: &RunReport) -> Vec<(String, String)> {
    let p = &report.provenance;
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut push = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            rows.push((key.to_string(), value));
        }
    };
    push("model", p.model.clone());
    push(
        "endpoints",
        Some(if p.embedded_simulator {
            format!("{} (the embedded simulator)", p.endpoints.join(", "))
        } else {
            p.endpoints.join(", ")
        }),
    );
    if let Some(server) = &p.server {
        let mut text = if server.kind.is_empty() {
            "unknown".to_string()
        } else {
            server.kind.clone()
        };
        if let Some(version) = &server.version {
            text.push_str(&format!(" {version}"));
        }
        if let Some(len) = server.max_model_len {
            text.push_str(&format!(", max_model_len {len}"));
        }
        push("server", Some(text));
    }
    push("tokenizer", p.tokenizer.clone());
    push(
        "server reports cached tokens",
        p.server_reports_cached_tokens
            .map(|b| if b { "yes" } else { "no" }.to_string()),
    );
    push("cache flushed with", p.flush_cache.clone());
    push("server cache counters", p.metrics_url.clone());
    push("seed", p.seed.map(|s| s.to_string()));
    push("started", p.started_at.clone());
    push("finished", p.finished_at.clone());
    push(
        "attempt",
        p.attempt
            .map(|a| format!("{a} (0 for a run never resumed)")),
    );
    push("cacherate", p.version.clone());
    if let Some(git) = &p.git {
        let mut text = git.commit.clone();
        if let Some(branch) = &git.branch {
            text.push_str(&format!(" on {branch}"));
        }
        match git.dirty {
            Some(true) => text.push_str(", with uncommitted changes"),
            Some(false) => text.push_str(", clean"),
            None => {}
        }
        push("git", Some(text));
    }
    push("host", p.host.clone());
    rows
}

fn index(env: &Environment<'_>, report: &RunReport) -> Result<RenderedFile, RenderError> {
    let mut points: Vec<&PointResult> = report.points.iter().collect();
    points.sort_by_key(|p| (p.context_size, p.cache_hit_rate));
    let charts = charts::overview(report);
    let in_flight_ramp = report
        .in_flight
        .filter(|&id| !report.phases_of(id).is_empty())
        .map(|id| names::ramp(id.context_size, id.cache_hit_rate));
    page(
        env,
        report,
        "index.html",
        names::INDEX,
        "Overview",
        &charts,
        context! {
            rows => Serde(points.iter().map(|p| point_row(p)).collect::<Vec<_>>()),
            footnotes => Serde(footnotes(points.iter().copied())),
            provenance => Serde(provenance_rows(report)),
            options => Serde(&report.options),
            command => report.provenance.command.join(" "),
            in_flight_ramp => in_flight_ramp,
            contexts => Serde(report.contexts()),
        },
    )
}

fn performance(
    env: &Environment<'_>,
    report: &RunReport,
    context: u64,
) -> Result<RenderedFile, RenderError> {
    let points = report.points_of(context);
    page(
        env,
        report,
        "performance.html",
        &names::performance(context),
        &format!("Performance against cache rate, context {context}"),
        &charts::performance(report, context),
        context! {
            context => context,
            rows => Serde(points.iter().map(|p| point_row(p)).collect::<Vec<_>>()),
            footnotes => Serde(footnotes(points.iter().copied())),
        },
    )
}

fn ramp(
    env: &Environment<'_>,
    report: &RunReport,
    id: PointId,
) -> Result<RenderedFile, RenderError> {
    let (context, rate) = (id.context_size, id.cache_hit_rate);
    let phases = report.phases_of(id);
    let point = report.point(id);
    let origin = phases.first().map_or(0.0, |p| p.start_unix_s);
    let selection = point.and_then(|p| p.selection_phase.clone());
    let is_sample = |phase: &PhaseRow| match point {
        Some(point) => point.samples.iter().any(|s| s.phase_id == phase.phase_id),
        None => phase.is_sample(),
    };
    let rows: Vec<PhaseView> = phases
        .iter()
        .map(|phase| {
            let role = if selection.as_deref() == Some(phase.phase_id.as_str()) {
                "chose the peak"
            } else if is_sample(phase) {
                "sample"
            } else {
                ""
            };
            phase_view(phase, origin, role)
        })
        .collect();
    page(
        env,
        report,
        "ramp.html",
        &names::ramp(context, rate),
        &format!("Phases of context {context} at {rate} % cache hits"),
        &charts::ramp(report, id),
        context! {
            context => context,
            rate => rate,
            point => Serde(point.map(point_row)),
            started => phases.first().map(|p| format::unix_time(p.start_unix_s)),
            sustained => phases.iter().any(|p| p.decision.is_some()),
            phases => Serde(rows),
            performance_href => names::performance(context),
        },
    )
}

fn comparison(
    env: &Environment<'_>,
    report: &RunReport,
    name: &str,
    title: &str,
    charts: Vec<Chart>,
) -> Result<RenderedFile, RenderError> {
    let mut points: Vec<&PointResult> = report.points.iter().collect();
    points.sort_by_key(|p| (p.context_size, p.cache_hit_rate));
    page(
        env,
        report,
        "comparison.html",
        name,
        title,
        &charts,
        context! {
            rows => Serde(points.iter().map(|p| point_row(p)).collect::<Vec<_>>()),
            footnotes => Serde(footnotes(points.iter().copied())),
            kind => name,
        },
    )
}

/// A cell of the heatmap: the value, and its colour on a light-to-dark
/// scale from zero to `--max-ttft` (or the highest value, if above it).
#[derive(Debug, Serialize)]
struct Cell {
    text: String,
    background: String,
    dark: bool,
    over_limit: bool,
    href: String,
}

/// ColorBrewer's YlOrRd from pale yellow through orange to deep red: its
/// lightness falls steadily, so the order reads without colour too.
fn heat(share: f64) -> String {
    const STOPS: [(f64, [f64; 3]); 3] = [
        (0.0, [255.0, 255.0, 204.0]),
        (0.5, [253.0, 141.0, 60.0]),
        (1.0, [189.0, 0.0, 38.0]),
    ];
    let share = share.clamp(0.0, 1.0);
    let (from, to) = if share <= 0.5 {
        (STOPS[0], STOPS[1])
    } else {
        (STOPS[1], STOPS[2])
    };
    let t = (share - from.0) / (to.0 - from.0);
    let mix = |k: usize| (from.1[k] + (to.1[k] - from.1[k]) * t).round() as u8;
    format!("rgb({},{},{})", mix(0), mix(1), mix(2))
}

fn heatmap_table(
    report: &RunReport,
    rates: &[u32],
    value: &dyn Fn(&PointResult) -> f64,
    limit: Option<f64>,
) -> Vec<(u64, Vec<Option<Cell>>)> {
    let high = report
        .points
        .iter()
        .map(value)
        .filter(|v| v.is_finite())
        .fold(report.thresholds.max_ttft, f64::max);
    report
        .contexts()
        .into_iter()
        .filter(|&c| !report.points_of(c).is_empty())
        .map(|context| {
            let cells = rates
                .iter()
                .map(|&rate| {
                    let point = report.point(PointId::new(context, rate))?;
                    let v = value(point);
                    let share = if high > 0.0 && v.is_finite() {
                        v / high
                    } else {
                        0.0
                    };
                    Some(Cell {
                        text: format::seconds(v),
                        background: heat(share),
                        dark: share > 0.7,
                        over_limit: limit.is_some_and(|l| v > l),
                        href: names::ramp(context, rate),
                    })
                })
                .collect();
            (context, cells)
        })
        .collect()
}

fn heatmap(env: &Environment<'_>, report: &RunReport) -> Result<RenderedFile, RenderError> {
    let mut rates: Vec<u32> = report.points.iter().map(|p| p.cache_hit_rate).collect();
    rates.sort_unstable();
    rates.dedup();
    let metric = report.thresholds.ttft_metric.clone();
    let decision = |p: &PointResult| charts::decision_ttft(report, &p.ttft);
    let mut tables = vec![(
        format!("TTFT {metric} at the peak (the statistic held against --max-ttft)"),
        heatmap_table(report, &rates, &decision, Some(report.thresholds.max_ttft)),
    )];
    if metric != "avg" {
        tables.push((
            "TTFT avg at the peak".to_string(),
            heatmap_table(report, &rates, &|p| p.ttft.avg, None),
        ));
    }
    page(
        env,
        report,
        "heatmap.html",
        names::HEATMAP,
        "TTFT by context size and cache rate",
        &[],
        context! {
            rates => Serde(rates),
            tables => Serde(tables),
            max_ttft => format::seconds(report.thresholds.max_ttft),
        },
    )
}

/// Every HTML report of the run: `index.html`, one
/// `performance_vs_cache_rate_{ctx}.html` per context with finished points,
/// one `ramp_ctx{ctx}_cache{rate}.html` per point with phases, the three
/// comparisons when any point is finished, and `ttft_heatmap.html` when
/// several context sizes are.
pub fn render_all(report: &RunReport) -> Result<Vec<RenderedFile>, RenderError> {
    let env = environment();
    let mut files = vec![index(&env, report)?];
    for context in report.contexts() {
        if !report.points_of(context).is_empty() {
            files.push(performance(&env, report, context)?);
        }
    }
    for id in report.measured_points() {
        if !report.phases_of(id).is_empty() {
            files.push(ramp(&env, report, id)?);
        }
    }
    if !report.points.is_empty() {
        files.push(comparison(
            &env,
            report,
            names::INPUT_COMPARISON,
            "Input throughput by context size",
            charts::input_comparison(report),
        )?);
        files.push(comparison(
            &env,
            report,
            names::OUTPUT_COMPARISON,
            "Output throughput by context size",
            charts::output_comparison(report),
        )?);
        files.push(comparison(
            &env,
            report,
            names::OUTPUT_METRICS,
            "Inter-token latency and per-request output rate",
            charts::output_metrics(report),
        )?);
    }
    if has_heatmap(report) {
        files.push(heatmap(&env, report)?);
    }
    for rate in charts::sustained_rates(report) {
        files.push(comparison(
            &env,
            report,
            &names::sustained_comparison(rate),
            &format!("Sustained periods at {rate} % cache hits, by context size"),
            charts::sustained_comparison(report, rate),
        )?);
    }
    Ok(files)
}
