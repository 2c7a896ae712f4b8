//! The sustained-period charts: one comparison page per cache rate.

use super::finite;
use super::plot::{Axis, Chart, PALETTE, Style, Unit};
use crate::report::html::model::{PhaseRow, RunReport};
use crate::store::PointId;

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

/// Each context's sustained periods at one rate.
type Periods<'a> = Vec<(u64, Vec<&'a PhaseRow>)>;

fn periods_at(report: &RunReport, rate: u32) -> Periods<'_> {
    report
        .contexts()
        .into_iter()
        .map(|context| {
            let periods: Vec<&PhaseRow> = report
                .phases_of(PointId::new(context, rate))
                .into_iter()
                .filter(|p| p.decision.is_some())
                .collect();
            (context, periods)
        })
        .filter(|(_, periods)| !periods.is_empty())
        .collect()
}

/// Seconds since the point's first period.
fn since(periods: &[&PhaseRow], unix: f64) -> f64 {
    unix - periods[0].start_unix_s
}

/// A chart of one figure of each period, a line per context.
fn period_chart(
    contexts: &Periods,
    xs: &[f64],
    (id, title, y): (&str, String, Axis),
    value: &dyn Fn(&PhaseRow) -> f64,
) -> Chart {
    let mut chart = Chart::new(
        format!("sustained-{id}"),
        title,
        Axis::new("seconds since the point's first period", Unit::Elapsed),
        y,
    );
    chart.xs = xs.to_vec();
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
    chart.note = "Each period over its window; one line per context size.".into();
    chart
}

/// `sustained_cache{rate}_comparison.html`: the sustained periods of every
/// context at one cache rate over time, from each point's first period —
/// where each context's controller went and what it measured there.
pub fn sustained_comparison(report: &RunReport, rate: u32) -> Vec<Chart> {
    let contexts = periods_at(report, rate);
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
    let metric = &report.thresholds.ttft_metric;
    let concurrency = (
        "concurrency",
        "Concurrency of each period".to_string(),
        Axis::new("concurrent requests", Unit::Count),
    );
    let input = (
        "input",
        "Input throughput of each period".to_string(),
        Axis::new("input tok/s", Unit::Tps),
    );
    let ttft = (
        "ttft",
        format!("TTFT {metric} of each period"),
        Axis::new("TTFT (s)", Unit::Seconds),
    );
    let mut charts = vec![
        period_chart(&contexts, &xs, concurrency, &|p| f64::from(p.concurrency)),
        period_chart(&contexts, &xs, input, &|p| p.input_tps),
        period_chart(&contexts, &xs, ttft, &|p| p.decision_ttft_s),
    ];
    charts[2].threshold(report, 1);
    for chart in &mut charts {
        chart.sync = Some(format!("sustained-{rate}"));
    }
    charts
}
