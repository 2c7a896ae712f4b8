//! The comparison pages across contexts: input and output throughput, output metrics.

use super::per_context;
use super::plot::{Axis, Chart, Style, Unit};
use crate::report::html::model::RunReport;

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
