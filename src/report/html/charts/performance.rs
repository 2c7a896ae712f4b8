//! The charts against the cache rate of one context
//! (`performance_vs_cache_rate_{ctx}.html`), its load curves, and the
//! index overview across contexts.

use super::plot::{Axis, Chart, FAIL_COLOR, Marker, PALETTE, Style, Unit, color};
use super::{
    RATE_AXIS, decision_ttft, finite, per_context, ramp_levels, rate_xs, selection, spread,
};
use crate::report::html::model::{PhaseRow, RunReport};
use crate::store::{PointId, PointResult, Sample};

/// The charts of `performance_vs_cache_rate_{ctx}.html`.
pub fn performance(report: &RunReport, context: u64) -> Vec<Chart> {
    let points = report.points_of(context);
    let xs = rate_xs(&points);
    let mut charts = throughput_charts(&points, &xs, context).to_vec();
    charts.push(ttft_chart(report, &points, &xs, context));
    charts.push(peak_chart(&points, &xs, context));
    charts.extend(load_curves(report, context));
    charts
}

/// A figure of each point, where it is finite.
fn values(points: &[&PointResult], f: &dyn Fn(&PointResult) -> f64) -> Vec<Option<f64>> {
    points.iter().map(|p| finite(f(p))).collect()
}

/// A chart against the cache rate.
fn rate_chart(id: String, title: String, xs: &[f64], y: Axis) -> Chart {
    let mut chart = Chart::new(id, title, Axis::new(RATE_AXIS, Unit::Percent), y);
    chart.xs = xs.to_vec();
    chart
}

/// Input and output throughput at the peak: the mean, and the samples'
/// spread as a band.
fn throughput_charts(points: &[&PointResult], xs: &[f64], context: u64) -> [Chart; 2] {
    let chart = |id: &str,
                 title: &str,
                 color: &str,
                 mean: &dyn Fn(&PointResult) -> f64,
                 of_sample: &dyn Fn(&Sample) -> f64| {
        let mut chart = rate_chart(
            format!("{id}-{context}"),
            format!("{title} at the peak, context {context}"),
            xs,
            Axis::new(format!("{id} tok/s"), Unit::Tps),
        );
        chart.add("mean", color, values(points, mean));
        let [low, high] = spread(points, of_sample);
        chart.add_band("sample", color, low, high);
        chart.note = "Line: the mean over the point's samples (the phases at the peak). \
                      Band: the lowest to the highest sample."
            .into();
        chart
    };
    [
        chart(
            "input",
            "Input throughput",
            PALETTE[0],
            &|p| p.input_tps,
            &|s| s.input_tps,
        ),
        chart(
            "output",
            "Output throughput",
            PALETTE[2],
            &|p| p.output_tps,
            &|s| s.output_tps,
        ),
    ]
}

/// TTFT p95 and avg at the peak, with the samples' spread and the limit.
fn ttft_chart(report: &RunReport, points: &[&PointResult], xs: &[f64], context: u64) -> Chart {
    let mut ttft = rate_chart(
        format!("ttft-{context}"),
        format!("TTFT at the peak, context {context}"),
        xs,
        Axis::new("TTFT (s)", Unit::Seconds),
    );
    ttft.add("TTFT p95", PALETTE[5], values(points, &|p| p.ttft.p95));
    ttft.add("TTFT avg", PALETTE[0], values(points, &|p| p.ttft.avg));
    let [low, high] = spread(points, |s| s.ttft.p95);
    ttft.add_band("p95 sample", PALETTE[5], low, high);
    let [low, high] = spread(points, |s| s.ttft.avg);
    ttft.add_band("avg sample", PALETTE[0], low, high);
    ttft.threshold(report, 1);
    ttft.note = "p95 and avg over the samples' merged requests; bands: the lowest to the highest \
                 sample's own figure. Dashed: the limit each phase was held to."
        .into();
    ttft
}

/// The load each point reports, marked where no level held the thresholds.
fn peak_chart(points: &[&PointResult], xs: &[f64], context: u64) -> Chart {
    let mut peak = rate_chart(
        format!("peak-{context}"),
        format!("Peak concurrency, context {context}"),
        xs,
        Axis::new("concurrent requests", Unit::Count),
    );
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
    peak
}

/// One cache rate's ramp: its levels, and all its phases.
type Curve<'a> = (u32, Vec<&'a PhaseRow>, Vec<&'a PhaseRow>);

/// The ramps of a context's points that searched a peak.
fn curves_of(report: &RunReport, context: u64) -> Vec<Curve<'_>> {
    report
        .measured_points()
        .into_iter()
        .filter(|id| id.context_size == context)
        .map(|id| {
            let phases = report.phases_of(id);
            (id.cache_hit_rate, ramp_levels(&phases), phases)
        })
        .filter(|(_, levels, _)| !levels.is_empty())
        .collect()
}

/// The two load-curve charts, empty, over the concurrencies `xs`.
fn load_charts(report: &RunReport, context: u64, xs: &[u32]) -> [Chart; 2] {
    let metric = &report.thresholds.ttft_metric;
    let mut ttft = Chart::new(
        format!("load-ttft-{context}"),
        format!("TTFT {metric} against concurrency, context {context}"),
        Axis::new("concurrent requests", Unit::Count),
        Axis::new(format!("TTFT {metric} (s)"), Unit::Seconds),
    );
    ttft.note = "Each level the peak search ran, one curve per cache rate: the curve bends \
                 where the server saturates, the search stops once it crosses the dashed \
                 limit, and the ring marks the level chosen as the peak."
        .into();
    let mut input = Chart::new(
        format!("load-input-{context}"),
        format!("Input throughput against concurrency, context {context}"),
        Axis::new("concurrent requests", Unit::Count),
        Axis::new("input tok/s", Unit::Tps),
    );
    input.note = "Input throughput of the same ramp phases; the peak is the passing level \
                  with the most input throughput."
        .into();
    for chart in [&mut ttft, &mut input] {
        chart.xs = xs.iter().map(|&c| f64::from(c)).collect();
        chart.sync = Some(format!("load-{context}"));
    }
    [ttft, input]
}

/// TTFT and input throughput against concurrency, one curve per cache
/// rate: where each curve bends (its knee), where it crosses the limit,
/// and the level chosen.
fn load_curves(report: &RunReport, context: u64) -> Vec<Chart> {
    let curves = curves_of(report, context);
    if curves.is_empty() {
        return Vec::new();
    }
    let mut xs: Vec<u32> = curves
        .iter()
        .flat_map(|(_, levels, _)| levels.iter().map(|p| p.concurrency))
        .collect();
    xs.sort_unstable();
    xs.dedup();
    let [mut ttft, mut input] = load_charts(report, context, &xs);
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
        if let Some(chosen) = selection(report.point(PointId::new(context, *rate)), phases) {
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
    vec![ttft, input]
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
