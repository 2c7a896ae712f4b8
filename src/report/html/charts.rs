//! The charts of the run reports as data: each [`Chart`] is a uPlot plot
//! (x values, series on one or two y axes, sample-spread bands) plus what
//! makes the answer visible at a glance — the `--max-ttft` line, the chosen
//! peak marked, the sample phases shaded. `assets/charts.js` draws them.
//! Nothing here computes a statistic: the values are the stored figures,
//! and a band is the lowest and highest of a point's stored samples.

use serde::Serialize;

use super::model::{PhaseRow, RunReport};
use crate::store::{PointResult, Sample};

/// Okabe–Ito colours: told apart with every common colour blindness.
const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
];
pub const THRESHOLD_COLOR: &str = "#D55E00";
const PASS_COLOR: &str = "#009E73";
const FAIL_COLOR: &str = "#D55E00";
const GREY: &str = "#7f7f7f";

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// `#rrggbb` with an alpha, as CSS `rgba()`.
fn alpha(hex: &str, a: f64) -> String {
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
    format!("rgba({},{},{},{a})", channel(1), channel(3), channel(5))
}

/// How the values of an axis read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Tokens per second.
    Tps,
    /// Seconds of latency.
    Seconds,
    /// Milliseconds of latency.
    Ms,
    /// A cache hit rate in percent.
    Percent,
    /// Concurrent requests.
    Count,
    /// Seconds since the point's first phase started.
    Elapsed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Axis {
    pub label: String,
    /// The name the legend gives the x value.
    pub short: String,
    pub unit: Unit,
}

impl Axis {
    fn new(label: impl Into<String>, unit: Unit) -> Axis {
        let short = match unit {
            Unit::Percent => "cache %",
            Unit::Count => "concurrency",
            Unit::Elapsed => "time",
            Unit::Tps | Unit::Seconds | Unit::Ms => "",
        };
        Axis {
            label: label.into(),
            short: short.into(),
            unit,
        }
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// A line with a dot at each value.
    Line,
    /// A line without dots (values at phase edges, not measurements).
    Plain,
    /// A dashed line.
    Dashed,
    /// Dots only.
    Points,
    /// The faint edge of a band (a sample minimum or maximum).
    Edge,
}

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub label: String,
    pub color: String,
    /// One per x value; `None` where the series has no value.
    pub values: Vec<Option<f64>>,
    /// 1: the left axis, 2: the right one.
    pub axis: u8,
    pub style: Style,
    /// Join the values across missing ones (a curve over sparse x), or
    /// break the line there (one segment per phase).
    pub span_gaps: bool,
}

/// The area between two series (0-based indexes into `series`).
#[derive(Debug, Clone, Serialize)]
pub struct Band {
    pub upper: usize,
    pub lower: usize,
    pub color: String,
}

/// A horizontal line with a label: the `--max-ttft` threshold.
#[derive(Debug, Clone, Serialize)]
pub struct HLine {
    pub value: f64,
    pub label: String,
    pub color: String,
    pub axis: u8,
}

/// A labelled ring at a value: the chosen peak.
#[derive(Debug, Clone, Serialize)]
pub struct Marker {
    pub x: f64,
    pub y: f64,
    pub label: String,
    pub axis: u8,
}

/// A shaded stretch of x: the phase that chose the peak, the samples.
#[derive(Debug, Clone, Serialize)]
pub struct Region {
    pub from: f64,
    pub to: f64,
    pub label: String,
    pub color: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// The id of the element the chart is drawn into.
    pub id: String,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub y2: Option<Axis>,
    pub xs: Vec<f64>,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
    pub hlines: Vec<HLine>,
    pub markers: Vec<Marker>,
    pub regions: Vec<Region>,
    /// Charts with the same key move their cursors together.
    pub sync: Option<String>,
    /// One line under the chart saying how to read it.
    pub note: String,
}

impl Chart {
    fn new(id: impl Into<String>, title: impl Into<String>, x: Axis, y: Axis) -> Chart {
        Chart {
            id: id.into(),
            title: title.into(),
            x,
            y,
            y2: None,
            xs: Vec::new(),
            series: Vec::new(),
            bands: Vec::new(),
            hlines: Vec::new(),
            markers: Vec::new(),
            regions: Vec::new(),
            sync: None,
            note: String::new(),
        }
    }

    fn add(&mut self, label: impl Into<String>, color: &str, values: Vec<Option<f64>>) {
        self.series.push(Series {
            label: label.into(),
            color: color.into(),
            values,
            axis: 1,
            style: Style::Line,
            span_gaps: true,
        });
    }

    fn last(&mut self) -> &mut Series {
        self.series.last_mut().expect("a series was added")
    }

    /// Adds the lowest and highest sample values as a shaded band.
    fn add_band(
        &mut self,
        label: &str,
        color: &str,
        low: Vec<Option<f64>>,
        high: Vec<Option<f64>>,
    ) {
        if low.iter().all(Option::is_none) {
            return;
        }
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label} ")
        };
        self.add(format!("{label}max"), &alpha(color, 0.5), high);
        self.last().style = Style::Edge;
        self.add(format!("{label}min"), &alpha(color, 0.5), low);
        self.last().style = Style::Edge;
        let n = self.series.len();
        self.bands.push(Band {
            upper: n - 2,
            lower: n - 1,
            color: alpha(color, 0.15),
        });
    }

    /// Adds a marker at a finite position (a phase without requests has
    /// no TTFT to mark).
    fn mark(&mut self, marker: Marker) {
        if marker.x.is_finite() && marker.y.is_finite() {
            self.markers.push(marker);
        }
    }

    fn threshold(&mut self, report: &RunReport, axis: u8) {
        let t = &report.thresholds;
        self.hlines.push(HLine {
            value: t.max_ttft,
            label: format!("--max-ttft {:.3} s (TTFT {})", t.max_ttft, t.ttft_metric),
            color: THRESHOLD_COLOR.into(),
            axis,
        });
    }
}

/// A finite value, else `None` (JSON has no NaN).
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The lowest and highest of the samples' values at each point, `None`
/// where a point has no samples.
fn spread(points: &[&PointResult], value: impl Fn(&Sample) -> f64) -> [Vec<Option<f64>>; 2] {
    let mut low = Vec::with_capacity(points.len());
    let mut high = Vec::with_capacity(points.len());
    for p in points {
        let values: Vec<f64> = p
            .samples
            .iter()
            .map(&value)
            .filter(|v| v.is_finite())
            .collect();
        low.push(values.iter().copied().reduce(f64::min));
        high.push(values.iter().copied().reduce(f64::max));
    }
    [low, high]
}

/// The TTFT statistic held against `--max-ttft`, of a point's samples.
pub fn decision_ttft(report: &RunReport, ttft: &crate::stats::Latency) -> f64 {
    match report.thresholds.ttft_metric.as_str() {
        "avg" => ttft.avg,
        "max" => ttft.max,
        _ => ttft.p95,
    }
}

/// The cache rates of `points` as x values (the rate asked for).
fn rate_xs(points: &[&PointResult]) -> Vec<f64> {
    points.iter().map(|p| f64::from(p.cache_hit_rate)).collect()
}

const RATE_AXIS: &str = "cache hit rate asked for (%)";

/// The charts of `performance_vs_cache_rate_{ctx}.html`.
pub fn performance(report: &RunReport, context: u64) -> Vec<Chart> {
    let points = report.points_of(context);
    let xs = rate_xs(&points);
    let mut charts = Vec::new();
    let values = |f: &dyn Fn(&PointResult) -> f64| -> Vec<Option<f64>> {
        points.iter().map(|p| finite(f(p))).collect()
    };

    for (id, title, color, mean, of_sample) in [
        (
            "input",
            "Input throughput",
            PALETTE[0],
            &(|p: &PointResult| p.input_tps) as &dyn Fn(&PointResult) -> f64,
            &(|s: &Sample| s.input_tps) as &dyn Fn(&Sample) -> f64,
        ),
        (
            "output",
            "Output throughput",
            PALETTE[2],
            &|p: &PointResult| p.output_tps,
            &|s: &Sample| s.output_tps,
        ),
    ] {
        let mut chart = Chart::new(
            format!("{id}-{context}"),
            format!("{title} at the peak, context {context}"),
            Axis::new(RATE_AXIS, Unit::Percent),
            Axis::new(format!("{} tok/s", id), Unit::Tps),
        );
        chart.xs = xs.clone();
        chart.add("mean", color, values(mean));
        let [low, high] = spread(&points, of_sample);
        chart.add_band("sample", color, low, high);
        chart.note = "Line: the mean over the point's samples (the phases at the peak). \
                      Band: the lowest to the highest sample."
            .into();
        charts.push(chart);
    }

    let mut ttft = Chart::new(
        format!("ttft-{context}"),
        format!("TTFT at the peak, context {context}"),
        Axis::new(RATE_AXIS, Unit::Percent),
        Axis::new("TTFT (s)", Unit::Seconds),
    );
    ttft.xs = xs.clone();
    ttft.add("TTFT p95", PALETTE[5], values(&|p| p.ttft.p95));
    ttft.add("TTFT avg", PALETTE[0], values(&|p| p.ttft.avg));
    let [low, high] = spread(&points, |s| s.ttft.p95);
    ttft.add_band("p95 sample", PALETTE[5], low, high);
    let [low, high] = spread(&points, |s| s.ttft.avg);
    ttft.add_band("avg sample", PALETTE[0], low, high);
    ttft.threshold(report, 1);
    ttft.note = "p95 and avg over the samples' merged requests; bands: the lowest to the highest \
                 sample's own figure. Dashed: the limit each phase was held to."
        .into();
    charts.push(ttft);

    let mut peak = Chart::new(
        format!("peak-{context}"),
        format!("Peak concurrency, context {context}"),
        Axis::new(RATE_AXIS, Unit::Percent),
        Axis::new("concurrent requests", Unit::Count),
    );
    peak.xs = xs.clone();
    peak.add(
        "peak concurrency",
        PALETTE[0],
        points
            .iter()
            .map(|p| Some(f64::from(p.peak_concurrency)))
            .collect(),
    );
    if points.iter().any(|p| !p.peak_passed) {
        peak.add(
            "no level held the thresholds",
            FAIL_COLOR,
            points
                .iter()
                .map(|p| (!p.peak_passed).then_some(f64::from(p.peak_concurrency)))
                .collect(),
        );
        peak.last().style = Style::Points;
    }
    peak.note = "The load each point reports: the passing level with the highest input \
                 throughput (or the fixed level measured)."
        .into();
    charts.push(peak);

    charts.extend(load_curves(report, context));
    charts
}

/// The phases of the peak search at each concurrency: for each level the
/// last ramp phase run at it (a restart after a back-off can visit a level
/// twice), sorted by concurrency.
fn ramp_levels<'a>(phases: &[&'a PhaseRow]) -> Vec<&'a PhaseRow> {
    let mut levels: Vec<&PhaseRow> = Vec::new();
    for phase in phases.iter().filter(|p| p.is_ramp()) {
        match levels
            .iter_mut()
            .find(|l| l.concurrency == phase.concurrency)
        {
            Some(level) => *level = phase,
            None => levels.push(phase),
        }
    }
    levels.sort_by_key(|p| p.concurrency);
    levels
}

/// The phase that chose a point's peak, if the point is finished and had one.
fn selection<'a>(point: Option<&PointResult>, phases: &[&'a PhaseRow]) -> Option<&'a PhaseRow> {
    let id = point?.selection_phase.as_deref()?;
    phases.iter().rev().find(|p| p.phase_id == id).copied()
}

/// TTFT and input throughput against concurrency, one curve per cache
/// rate: where each curve bends (its knee), where it crosses the limit,
/// and the level chosen.
fn load_curves(report: &RunReport, context: u64) -> Vec<Chart> {
    let rates: Vec<u32> = report
        .measured_points()
        .into_iter()
        .filter(|(c, _)| *c == context)
        .map(|(_, r)| r)
        .collect();
    let curves: Vec<(u32, Vec<&PhaseRow>, Vec<&PhaseRow>)> = rates
        .iter()
        .map(|&rate| {
            let phases = report.phases_of(context, rate);
            (rate, ramp_levels(&phases), phases)
        })
        .filter(|(_, levels, _)| !levels.is_empty())
        .collect();
    if curves.is_empty() {
        return Vec::new();
    }
    let mut xs: Vec<u32> = curves
        .iter()
        .flat_map(|(_, levels, _)| levels.iter().map(|p| p.concurrency))
        .collect();
    xs.sort_unstable();
    xs.dedup();
    let mut ttft = Chart::new(
        format!("load-ttft-{context}"),
        format!(
            "TTFT {} against concurrency, context {context}",
            report.thresholds.ttft_metric
        ),
        Axis::new("concurrent requests", Unit::Count),
        Axis::new(
            format!("TTFT {} (s)", report.thresholds.ttft_metric),
            Unit::Seconds,
        ),
    );
    let mut input = Chart::new(
        format!("load-input-{context}"),
        format!("Input throughput against concurrency, context {context}"),
        Axis::new("concurrent requests", Unit::Count),
        Axis::new("input tok/s", Unit::Tps),
    );
    for chart in [&mut ttft, &mut input] {
        chart.xs = xs.iter().map(|&c| f64::from(c)).collect();
        chart.sync = Some(format!("load-{context}"));
    }
    for (i, (rate, levels, phases)) in curves.iter().enumerate() {
        let at = |value: &dyn Fn(&PhaseRow) -> f64| -> Vec<Option<f64>> {
            xs.iter()
                .map(|&c| {
                    levels
                        .iter()
                        .find(|p| p.concurrency == c)
                        .and_then(|p| finite(value(p)))
                })
                .collect()
        };
        let label = format!("{rate} %");
        ttft.add(label.clone(), color(i), at(&|p| p.decision_ttft_s));
        input.add(label, color(i), at(&|p| p.input_tps));
        if let Some(chosen) = selection(report.point(context, *rate), phases) {
            let x = f64::from(chosen.concurrency);
            let label = format!("{rate} %: peak c={}", chosen.concurrency);
            ttft.mark(Marker {
                x,
                y: chosen.decision_ttft_s,
                label: label.clone(),
                axis: 1,
            });
            input.mark(Marker {
                x,
                y: chosen.input_tps,
                label,
                axis: 1,
            });
        }
    }
    ttft.threshold(report, 1);
    ttft.note = "Each level the peak search ran, one curve per cache rate: the curve bends \
                 where the server saturates, the search stops once it crosses the dashed \
                 limit, and the ring marks the level chosen as the peak."
        .into();
    input.note = "Input throughput of the same ramp phases; the peak is the passing level \
                  with the most input throughput."
        .into();
    vec![ttft, input]
}

/// The charts of `ramp_ctx{ctx}_cache{rate}.html`: each phase of the point
/// over time, and its load curve.
pub fn ramp(report: &RunReport, context: u64, rate: u32) -> Vec<Chart> {
    let phases = report.phases_of(context, rate);
    if phases.is_empty() {
        return Vec::new();
    }
    let point = report.point(context, rate);
    let origin = phases[0].start_unix_s;
    let t = |unix: f64| unix - origin;
    let mut xs: Vec<f64> = phases
        .iter()
        .flat_map(|p| {
            [
                t(p.start_unix_s),
                t(p.window_start_unix_s),
                t(p.window_end_unix_s),
                t(p.end_unix_s),
            ]
        })
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    // A value over each phase's whole span, or over its window only.
    let over = |value: &dyn Fn(&PhaseRow) -> Option<f64>, whole: bool| -> Vec<Option<f64>> {
        xs.iter()
            .map(|&x| {
                phases.iter().find_map(|p| {
                    let (from, to) = if whole {
                        (t(p.start_unix_s), t(p.end_unix_s))
                    } else {
                        (t(p.window_start_unix_s), t(p.window_end_unix_s))
                    };
                    let edge = x == from || x == to || (whole && x > from && x < to);
                    if edge {
                        value(p).and_then(finite)
                    } else {
                        None
                    }
                })
            })
            .collect()
    };
    let chosen = selection(point, &phases);
    let mut regions = Vec::new();
    if let Some(chosen) = chosen {
        regions.push(Region {
            from: t(chosen.start_unix_s),
            to: t(chosen.end_unix_s),
            label: format!("peak chosen: c={}", chosen.concurrency),
            color: alpha(PALETTE[1], 0.25),
        });
    }
    let samples: Vec<&&PhaseRow> = phases
        .iter()
        .filter(|p| match point {
            Some(point) => point.samples.iter().any(|s| s.phase_id == p.phase_id),
            None => p.is_sample(),
        })
        .collect();
    for (i, sample) in samples.iter().enumerate() {
        regions.push(Region {
            from: t(sample.start_unix_s),
            to: t(sample.end_unix_s),
            label: if i == 0 {
                "samples".into()
            } else {
                String::new()
            },
            color: alpha(PALETTE[4], 0.18),
        });
    }
    let sync = Some(format!("ramp-{context}-{rate}"));
    let elapsed = || Axis::new("seconds since the point's first phase", Unit::Elapsed);

    let mut concurrency = Chart::new(
        "concurrency",
        "Concurrency of each phase",
        elapsed(),
        Axis::new("concurrent requests", Unit::Count),
    );
    concurrency.xs = xs.clone();
    concurrency.add(
        "concurrency",
        PALETTE[0],
        over(&|p| Some(f64::from(p.concurrency)), true),
    );
    concurrency.last().style = Style::Plain;
    concurrency.note = "Each phase keeps this many requests in flight from its start to the \
                        end of its window. Shaded: the phase that chose the peak, and the \
                        samples at it."
        .into();
    // Sustained mode: each period's decision, where it was taken, at the
    // concurrency it set.
    let decided: Vec<&&PhaseRow> = phases.iter().filter(|p| p.decision.is_some()).collect();
    for period in &decided {
        if let (Some(decision), Some(next)) = (&period.decision, period.next_concurrency) {
            concurrency.mark(Marker {
                x: t(period.end_unix_s),
                y: f64::from(next),
                label: decision.clone(),
                axis: 1,
            });
        }
    }
    if !decided.is_empty() {
        concurrency.note = "One continuous load: each period runs at the concurrency the \
                            controller set after the period before; the rings mark each \
                            decision where it was taken, at the level it set. Shaded: the \
                            passing periods at the settled level, the point's samples."
            .into();
    }

    let metric = &report.thresholds.ttft_metric;
    let mut ttft = Chart::new(
        "ttft",
        "TTFT of each phase",
        elapsed(),
        Axis::new("TTFT (s)", Unit::Seconds),
    );
    ttft.xs = xs.clone();
    ttft.add(
        format!("TTFT {metric}, phase held the thresholds"),
        PASS_COLOR,
        over(&|p| p.passed.then_some(p.decision_ttft_s), false),
    );
    ttft.add(
        format!("TTFT {metric}, phase failed a threshold"),
        FAIL_COLOR,
        over(&|p| (!p.passed).then_some(p.decision_ttft_s), false),
    );
    ttft.add("TTFT avg", GREY, over(&|p| Some(p.ttft_avg_s), false));
    for series in &mut ttft.series {
        series.span_gaps = false;
        series.style = Style::Plain;
    }
    ttft.last().style = Style::Dashed;
    ttft.threshold(report, 1);
    ttft.note = "Over each phase's steady-state window (the warm-up at its start is not \
                 counted)."
        .into();

    // Two charts: with prompts and outputs of fixed length the two rates
    // are proportional, and on two axes one line would hide the other.
    let mut charts = vec![concurrency, ttft];
    for (id, title, color, value) in [
        (
            "input",
            "Input throughput of each phase",
            PALETTE[0],
            &(|p: &PhaseRow| p.input_tps) as &dyn Fn(&PhaseRow) -> f64,
        ),
        (
            "output",
            "Output throughput of each phase",
            PALETTE[2],
            &|p: &PhaseRow| p.output_tps,
        ),
    ] {
        let mut chart = Chart::new(
            id,
            title,
            elapsed(),
            Axis::new(format!("{id} tok/s"), Unit::Tps),
        );
        chart.xs = xs.clone();
        chart.add(
            format!("{id} tok/s"),
            color,
            over(&|p| Some(value(p)), false),
        );
        chart.last().span_gaps = false;
        chart.last().style = Style::Plain;
        chart.note = "Over each phase's steady-state window.".into();
        charts.push(chart);
    }
    for chart in &mut charts {
        chart.regions = regions.clone();
        chart.sync = sync.clone();
    }

    let levels = ramp_levels(&phases);
    if !levels.is_empty() {
        let mut curve = Chart::new(
            "load",
            "Load curve of the peak search",
            Axis::new("concurrent requests", Unit::Count),
            Axis::new(format!("TTFT {metric} (s)"), Unit::Seconds),
        );
        curve.y2 = Some(Axis::new("input tok/s", Unit::Tps));
        curve.xs = levels.iter().map(|p| f64::from(p.concurrency)).collect();
        curve.add(
            format!("TTFT {metric}"),
            PALETTE[5],
            levels.iter().map(|p| finite(p.decision_ttft_s)).collect(),
        );
        curve.add(
            "input tok/s (right axis)",
            PALETTE[0],
            levels.iter().map(|p| finite(p.input_tps)).collect(),
        );
        curve.last().axis = 2;
        curve.threshold(report, 1);
        if let Some(chosen) = chosen {
            curve.mark(Marker {
                x: f64::from(chosen.concurrency),
                y: chosen.decision_ttft_s,
                label: format!("peak c={}", chosen.concurrency),
                axis: 1,
            });
        }
        curve.note = "Each level the search ran (the last run of a level visited twice): TTFT \
                      rises past the knee, throughput flattens; the ring marks the peak."
            .into();
        charts.push(curve);
    }
    charts
}

/// One curve per context against the cache rate, with sample bands.
fn per_context(
    report: &RunReport,
    id: &str,
    title: &str,
    y: Axis,
    mean: &dyn Fn(&PointResult) -> f64,
    of_sample: Option<&dyn Fn(&Sample) -> f64>,
) -> Chart {
    let mut xs: Vec<u32> = report.points.iter().map(|p| p.cache_hit_rate).collect();
    xs.sort_unstable();
    xs.dedup();
    let mut chart = Chart::new(id, title, Axis::new(RATE_AXIS, Unit::Percent), y);
    chart.xs = xs.iter().map(|&r| f64::from(r)).collect();
    let contexts = report.contexts().into_iter();
    let with_points = contexts.filter(|&c| !report.points_of(c).is_empty());
    for (i, context) in with_points.enumerate() {
        let points = report.points_of(context);
        let aligned = |values: Vec<Option<f64>>| -> Vec<Option<f64>> {
            xs.iter()
                .map(|&r| {
                    points
                        .iter()
                        .position(|p| p.cache_hit_rate == r)
                        .and_then(|k| values[k])
                })
                .collect()
        };
        chart.add(
            format!("context {context}"),
            color(i),
            aligned(points.iter().map(|p| finite(mean(p))).collect()),
        );
        if let Some(of_sample) = of_sample {
            let [low, high] = spread(&points, of_sample);
            chart.add_band(&format!("{context}"), color(i), aligned(low), aligned(high));
        }
    }
    chart
}

/// The rates with sustained periods, each with a comparison page.
pub fn sustained_rates(report: &RunReport) -> Vec<u32> {
    let mut rates: Vec<u32> = report
        .phases
        .iter()
        .filter(|p| p.decision.is_some())
        .map(|p| p.cache_hit_rate)
        .collect();
    rates.sort_unstable();
    rates.dedup();
    rates
}

/// `sustained_cache{rate}_comparison.html`: the sustained periods of every
/// context at one cache rate over time, from each point's first period —
/// where each context's controller went and what it measured there.
pub fn sustained_comparison(report: &RunReport, rate: u32) -> Vec<Chart> {
    let contexts: Vec<(u64, Vec<&PhaseRow>)> = report
        .contexts()
        .into_iter()
        .map(|context| {
            let periods: Vec<&PhaseRow> = report
                .phases_of(context, rate)
                .into_iter()
                .filter(|p| p.decision.is_some())
                .collect();
            (context, periods)
        })
        .filter(|(_, periods)| !periods.is_empty())
        .collect();
    let since = |periods: &[&PhaseRow], unix: f64| unix - periods[0].start_unix_s;
    let mut xs: Vec<f64> = contexts
        .iter()
        .flat_map(|(_, periods)| {
            periods.iter().flat_map(move |p| {
                [
                    since(periods, p.window_start_unix_s),
                    since(periods, p.window_end_unix_s),
                ]
            })
        })
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let metric = report.thresholds.ttft_metric.clone();
    let mut charts = Vec::new();
    for (id, title, y, value) in [
        (
            "concurrency",
            "Concurrency of each period".to_string(),
            Axis::new("concurrent requests", Unit::Count),
            &(|p: &PhaseRow| f64::from(p.concurrency)) as &dyn Fn(&PhaseRow) -> f64,
        ),
        (
            "input",
            "Input throughput of each period".to_string(),
            Axis::new("input tok/s", Unit::Tps),
            &|p: &PhaseRow| p.input_tps,
        ),
        (
            "ttft",
            format!("TTFT {metric} of each period"),
            Axis::new("TTFT (s)", Unit::Seconds),
            &|p: &PhaseRow| p.decision_ttft_s,
        ),
    ] {
        let mut chart = Chart::new(
            format!("sustained-{id}"),
            title,
            Axis::new("seconds since the point's first period", Unit::Elapsed),
            y,
        );
        chart.xs = xs.clone();
        for (i, (context, periods)) in contexts.iter().enumerate() {
            let values = xs
                .iter()
                .map(|&x| {
                    periods.iter().find_map(|p| {
                        let from = since(periods, p.window_start_unix_s);
                        let to = since(periods, p.window_end_unix_s);
                        (x == from || x == to).then(|| finite(value(p))).flatten()
                    })
                })
                .collect();
            chart.add(format!("ctx {context}"), PALETTE[i % PALETTE.len()], values);
            chart.last().style = Style::Plain;
            chart.last().span_gaps = false;
        }
        if id == "ttft" {
            chart.threshold(report, 1);
        }
        chart.sync = Some(format!("sustained-{rate}"));
        chart.note = "Each period over its window; one line per context size.".into();
        charts.push(chart);
    }
    charts
}

/// `input_throughput_comparison.html`.
pub fn input_comparison(report: &RunReport) -> Vec<Chart> {
    let mut chart = per_context(
        report,
        "input-comparison",
        "Input throughput at the peak, by context size",
        Axis::new("input tok/s", Unit::Tps),
        &|p| p.input_tps,
        Some(&|s| s.input_tps),
    );
    chart.note = "Mean over each point's samples; bands: the lowest to the highest sample.".into();
    vec![chart]
}

/// `output_throughput_comparison.html`.
pub fn output_comparison(report: &RunReport) -> Vec<Chart> {
    let mut chart = per_context(
        report,
        "output-comparison",
        "Output throughput at the peak, by context size",
        Axis::new("output tok/s", Unit::Tps),
        &|p| p.output_tps,
        Some(&|s| s.output_tps),
    );
    chart.note = "Mean over each point's samples; bands: the lowest to the highest sample.".into();
    vec![chart]
}

/// `output_metrics_comparison.html`: ITL and per-request output rate.
pub fn output_metrics(report: &RunReport) -> Vec<Chart> {
    let mut itl = per_context(
        report,
        "itl",
        "Inter-token latency at the peak, by context size",
        Axis::new("ITL (ms)", Unit::Ms),
        &|p| p.itl.avg * 1e3,
        Some(&|s| s.itl.avg * 1e3),
    );
    let p95 = per_context(
        report,
        "itl-p95",
        "",
        Axis::new("", Unit::Ms),
        &|p| p.itl.p95 * 1e3,
        None,
    );
    for mut series in p95.series {
        series.label = format!("{} ITL p95", series.label);
        series.style = Style::Dashed;
        itl.series.push(series);
    }
    for series in itl.series.iter_mut().filter(|s| s.style == Style::Line) {
        series.label = format!("{} ITL avg", series.label);
    }
    itl.note = "Solid: the mean ITL over the samples (band: lowest to highest sample); \
                dashed: ITL p95, the mean of the samples' p95 over the gaps between \
                streamed chunks."
        .into();

    let mut rate = per_context(
        report,
        "req-output",
        "Output tok/s of one request at the peak, by context size",
        Axis::new("output tok/s per request", Unit::Tps),
        &|p| p.req_output_tps_avg,
        Some(&|s| s.req_output_tps_avg),
    );
    let p10 = per_context(
        report,
        "req-output-p10",
        "",
        Axis::new("", Unit::Tps),
        &|p| p.req_output_tps_p10,
        None,
    );
    for mut series in p10.series {
        series.label = format!("{} p10", series.label);
        series.style = Style::Dashed;
        rate.series.push(series);
    }
    for series in rate.series.iter_mut().filter(|s| s.style == Style::Line) {
        series.label = format!("{} avg", series.label);
    }
    rate.note = "Output tokens ÷ generation time of each request: solid the average (band: \
                 lowest to highest sample), dashed the 10th percentile (the slow requests)."
        .into();
    vec![itl, rate]
}

/// The index's overview: input throughput, the decision TTFT, output
/// throughput and the peak against the cache rate, one curve per context.
pub fn overview(report: &RunReport) -> Vec<Chart> {
    if report.points.is_empty() {
        return Vec::new();
    }
    let mut input = per_context(
        report,
        "overview-input",
        "Input throughput at the peak",
        Axis::new("input tok/s", Unit::Tps),
        &|p| p.input_tps,
        Some(&|s| s.input_tps),
    );
    input.note = "Mean over each point's samples; bands: the lowest to the highest sample.".into();
    let mut output = per_context(
        report,
        "overview-output",
        "Output throughput at the peak",
        Axis::new("output tok/s", Unit::Tps),
        &|p| p.output_tps,
        Some(&|s| s.output_tps),
    );
    output.note = input.note.clone();
    let metric = report.thresholds.ttft_metric.clone();
    let mut ttft = per_context(
        report,
        "overview-ttft",
        &format!("TTFT {metric} at the peak"),
        Axis::new(format!("TTFT {metric} (s)"), Unit::Seconds),
        &|p| decision_ttft(report, &p.ttft),
        Some(&|s| decision_ttft(report, &s.ttft)),
    );
    ttft.threshold(report, 1);
    ttft.note =
        "Over the samples' merged requests; dashed: the limit each phase was held to.".into();
    let mut peak = per_context(
        report,
        "overview-peak",
        "Peak concurrency",
        Axis::new("concurrent requests", Unit::Count),
        &|p| f64::from(p.peak_concurrency),
        None,
    );
    peak.note = "The load each point reports.".into();
    vec![input, ttft, output, peak]
}
