//! The charts of the run reports as data: each [`Chart`] is a uPlot plot
//! (x values, series on one or two y axes, sample-spread bands) plus what
//! makes the answer visible at a glance — the `--max-ttft` line, the chosen
//! peak marked, the sample phases shaded. `assets/charts.js` draws them.
//! Nothing here computes a statistic: the values are the stored figures,
//! and a band is the lowest and highest of a point's stored samples.

mod comparison;
mod performance;
mod plot;
mod ramp;
mod sustained;

pub use comparison::{input_comparison, output_comparison, output_metrics};
pub use performance::{overview, performance};
pub use plot::Chart;
use plot::{Axis, Unit, color};
pub use ramp::ramp;
pub use sustained::{sustained_comparison, sustained_rates};

use super::model::{PhaseRow, RunReport};
use crate::store::{PointResult, Sample};

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
