//! The chart model: palette, axes, series, bands, lines, markers and
//! shaded regions, and the [`Chart`] that holds them.

use serde::Serialize;

use crate::report::html::model::RunReport;

/// Okabe–Ito colours: told apart with every common colour blindness.
pub(super) const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
];
pub const THRESHOLD_COLOR: &str = "#D55E00";
pub(super) const PASS_COLOR: &str = "#009E73";
pub(super) const FAIL_COLOR: &str = "#D55E00";
pub(super) const GREY: &str = "#7f7f7f";

pub(super) fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// `#rrggbb` with an alpha, as CSS `rgba()`.
pub(super) fn alpha(hex: &str, a: f64) -> String {
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
    pub(super) fn new(label: impl Into<String>, unit: Unit) -> Axis {
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
    pub(super) fn new(id: impl Into<String>, title: impl Into<String>, x: Axis, y: Axis) -> Chart {
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

    pub(super) fn add(&mut self, label: impl Into<String>, color: &str, values: Vec<Option<f64>>) {
        self.series.push(Series {
            label: label.into(),
            color: color.into(),
            values,
            axis: 1,
            style: Style::Line,
            span_gaps: true,
        });
    }

    pub(super) fn last(&mut self) -> &mut Series {
        self.series.last_mut().expect("a series was added")
    }

    /// Adds the lowest and highest sample values as a shaded band.
    pub(super) fn add_band(
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
    pub(super) fn mark(&mut self, marker: Marker) {
        if marker.x.is_finite() && marker.y.is_finite() {
            self.markers.push(marker);
        }
    }

    pub(super) fn threshold(&mut self, report: &RunReport, axis: u8) {
        let t = &report.thresholds;
        self.hlines.push(HLine {
            value: t.max_ttft,
            label: format!("--max-ttft {:.3} s (TTFT {})", t.max_ttft, t.ttft_metric),
            color: THRESHOLD_COLOR.into(),
            axis,
        });
    }
}
