//! The charts of one point's ramp page: its phases over time and its load curve.

use super::plot::{
    Axis, Chart, FAIL_COLOR, GREY, Marker, PALETTE, PASS_COLOR, Region, Style, Unit, alpha,
};
use super::{finite, ramp_levels, selection};
use crate::report::html::model::{PhaseRow, RunReport};

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
