//! The charts of one point's ramp page: its phases over time and its load curve.

use super::plot::{
    Axis, Chart, FAIL_COLOR, GREY, Marker, PALETTE, PASS_COLOR, Region, Style, Unit, alpha,
};
use super::{finite, ramp_levels, selection};
use crate::report::html::model::{PhaseRow, RunReport};
use crate::store::{PointId, PointResult};

/// A point's phases on one time axis: seconds since its first phase, with
/// an x value at every phase's start, window edges and end.
struct Timeline<'a> {
    phases: Vec<&'a PhaseRow>,
    origin: f64,
    xs: Vec<f64>,
}

impl<'a> Timeline<'a> {
    fn new(phases: Vec<&'a PhaseRow>) -> Timeline<'a> {
        let origin = phases[0].start_unix_s;
        let mut xs: Vec<f64> = phases
            .iter()
            .flat_map(|p| {
                [
                    p.start_unix_s,
                    p.window_start_unix_s,
                    p.window_end_unix_s,
                    p.end_unix_s,
                ]
            })
            .map(|unix| unix - origin)
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        Timeline { phases, origin, xs }
    }

    fn t(&self, unix: f64) -> f64 {
        unix - self.origin
    }

    /// A value over each phase's whole span, or over its window only.
    fn over(&self, value: &dyn Fn(&PhaseRow) -> Option<f64>, whole: bool) -> Vec<Option<f64>> {
        self.xs
            .iter()
            .map(|&x| {
                self.phases.iter().find_map(|p| {
                    let (from, to) = if whole {
                        (self.t(p.start_unix_s), self.t(p.end_unix_s))
                    } else {
                        (self.t(p.window_start_unix_s), self.t(p.window_end_unix_s))
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
    }

    /// A chart over the timeline.
    fn chart(&self, id: &str, title: &str, y: Axis) -> Chart {
        let mut chart = Chart::new(
            id,
            title,
            Axis::new("seconds since the point's first phase", Unit::Elapsed),
            y,
        );
        chart.xs = self.xs.clone();
        chart
    }
}

/// The shaded regions: the phase that chose the peak, and the samples.
fn regions(
    timeline: &Timeline,
    point: Option<&PointResult>,
    chosen: Option<&PhaseRow>,
) -> Vec<Region> {
    let mut regions = Vec::new();
    if let Some(chosen) = chosen {
        regions.push(Region {
            from: timeline.t(chosen.start_unix_s),
            to: timeline.t(chosen.end_unix_s),
            label: format!("peak chosen: c={}", chosen.concurrency),
            color: alpha(PALETTE[1], 0.25),
        });
    }
    let samples = timeline.phases.iter().filter(|p| match point {
        Some(point) => point.samples.iter().any(|s| s.phase_id == p.phase_id),
        None => p.is_sample(),
    });
    for (i, sample) in samples.enumerate() {
        regions.push(Region {
            from: timeline.t(sample.start_unix_s),
            to: timeline.t(sample.end_unix_s),
            label: if i == 0 {
                "samples".into()
            } else {
                String::new()
            },
            color: alpha(PALETTE[4], 0.18),
        });
    }
    regions
}

/// Each phase's concurrency; in sustained mode, each period's decision
/// where it was taken, at the concurrency it set.
fn concurrency_chart(timeline: &Timeline) -> Chart {
    let mut concurrency = timeline.chart(
        "concurrency",
        "Concurrency of each phase",
        Axis::new("concurrent requests", Unit::Count),
    );
    concurrency.add(
        "concurrency",
        PALETTE[0],
        timeline.over(&|p| Some(f64::from(p.concurrency)), true),
    );
    concurrency.last().style = Style::Plain;
    concurrency.note = "Each phase keeps this many requests in flight from its start to the \
                        end of its window. Shaded: the phase that chose the peak, and the \
                        samples at it."
        .into();
    let decided: Vec<&&PhaseRow> = timeline
        .phases
        .iter()
        .filter(|p| p.decision.is_some())
        .collect();
    for period in &decided {
        if let (Some(decision), Some(next)) = (&period.decision, period.next_concurrency) {
            concurrency.mark(Marker {
                x: timeline.t(period.end_unix_s),
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
    concurrency
}

/// Each phase's decision TTFT, passing or not, and its average.
fn ttft_chart(report: &RunReport, timeline: &Timeline) -> Chart {
    let metric = &report.thresholds.ttft_metric;
    let mut ttft = timeline.chart(
        "ttft",
        "TTFT of each phase",
        Axis::new("TTFT (s)", Unit::Seconds),
    );
    ttft.add(
        format!("TTFT {metric}, phase held the thresholds"),
        PASS_COLOR,
        timeline.over(&|p| p.passed.then_some(p.decision_ttft_s), false),
    );
    ttft.add(
        format!("TTFT {metric}, phase failed a threshold"),
        FAIL_COLOR,
        timeline.over(&|p| (!p.passed).then_some(p.decision_ttft_s), false),
    );
    ttft.add(
        "TTFT avg",
        GREY,
        timeline.over(&|p| Some(p.ttft_avg_s), false),
    );
    for series in &mut ttft.series {
        series.span_gaps = false;
        series.style = Style::Plain;
    }
    ttft.last().style = Style::Dashed;
    ttft.threshold(report, 1);
    ttft.note = "Over each phase's steady-state window (the warm-up at its start is not \
                 counted)."
        .into();
    ttft
}

/// Input and output throughput, two charts: with prompts and outputs of
/// fixed length the two rates are proportional, and on two axes one line
/// would hide the other.
fn throughput_charts(timeline: &Timeline) -> [Chart; 2] {
    let chart = |id: &str, title: &str, color: &str, value: &dyn Fn(&PhaseRow) -> f64| {
        let mut chart = timeline.chart(id, title, Axis::new(format!("{id} tok/s"), Unit::Tps));
        chart.add(
            format!("{id} tok/s"),
            color,
            timeline.over(&|p| Some(value(p)), false),
        );
        chart.last().span_gaps = false;
        chart.last().style = Style::Plain;
        chart.note = "Over each phase's steady-state window.".into();
        chart
    };
    [
        chart(
            "input",
            "Input throughput of each phase",
            PALETTE[0],
            &|p| p.input_tps,
        ),
        chart(
            "output",
            "Output throughput of each phase",
            PALETTE[2],
            &|p| p.output_tps,
        ),
    ]
}

/// TTFT and input throughput of each level the peak search ran.
fn load_curve(report: &RunReport, levels: &[&PhaseRow], chosen: Option<&PhaseRow>) -> Chart {
    let metric = &report.thresholds.ttft_metric;
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
    curve
}

/// The charts of `ramp_ctx{ctx}_cache{rate}.html`: each phase of the point
/// over time, and its load curve.
pub fn ramp(report: &RunReport, id: PointId) -> Vec<Chart> {
    let phases = report.phases_of(id);
    if phases.is_empty() {
        return Vec::new();
    }
    let point = report.point(id);
    let chosen = selection(point, &phases);
    let levels = ramp_levels(&phases);
    let timeline = Timeline::new(phases);
    let regions = regions(&timeline, point, chosen);
    let sync = Some(format!("ramp-{}-{}", id.context_size, id.cache_hit_rate));
    let mut charts = vec![concurrency_chart(&timeline), ttft_chart(report, &timeline)];
    charts.extend(throughput_charts(&timeline));
    for chart in &mut charts {
        chart.regions = regions.clone();
        chart.sync = sync.clone();
    }
    if !levels.is_empty() {
        charts.push(load_curve(report, &levels, chosen));
    }
    charts
}
