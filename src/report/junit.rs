//! `junit.xml`: the verdict as JUnit XML for the test-report tools CI
//! already has. One test suite per context size, one test case per point
//! and metric (`ctx8000/cache50/input_tps`) and one per curve
//! (`ctx8000/curve/input_tps`), so the file fails exactly when the gate
//! does (both follow [`crate::analysis::bearing`]): a gated `regressed` is
//! a failure, and so is a gated `inconclusive` under
//! `--fail-on-inconclusive`; a gated `error` or `insufficient` is an
//! error; other inconclusive verdicts and the changes of metrics that are
//! not gated are skipped with the reason; the rest pass. Each case carries
//! its figures in the message and in `system-out`.
//!
//! The XML is written by `quick-junit` (nextest's serializer), not by hand.
//! (`junit-report` 0.9 needs the `time` crate at 0.3.47, which needs Rust
//! 1.88 — above this crate's 1.85 — and 0.8 writes no `system-out` for
//! skipped cases.)

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::analysis::document::VerdictFile;
use crate::analysis::{Bearing, Verdict, bearing};

use super::verdict_view::{self, CurveRow, Row, format_value, interval, p_value, pct};

/// The `classname` of every test case.
const CLASSNAME: &str = "cacherate";

/// How a verdict shows in JUnit: as it bears on the gate.
fn status(
    verdict: Verdict,
    gated: bool,
    fail_on_inconclusive: bool,
    message: String,
) -> TestCaseStatus {
    let kind = match bearing(verdict, gated, fail_on_inconclusive) {
        Bearing::Passes => return TestCaseStatus::success(),
        Bearing::Shown => None,
        Bearing::Fails => Some(NonSuccessKind::Failure),
        Bearing::Broken => Some(NonSuccessKind::Error),
    };
    let mut status = match kind {
        Some(kind) => {
            let mut status = TestCaseStatus::non_success(kind);
            status.set_type(verdict.name());
            status
        }
        None => TestCaseStatus::skipped(),
    };
    status.set_message(message);
    status
}

/// The one-line message: the verdict and the figures behind it.
fn point_message(row: &Row<'_>) -> String {
    let word = row.verdict.name();
    let gated = if row.gated { "" } else { " (not gated)" };
    let values = match (row.baseline_value(), row.current_value()) {
        (Some(b), Some(c)) => format!(
            "; {} -> {}",
            format_value(row.metric, b),
            format_value(row.metric, c)
        ),
        _ => String::new(),
    };
    match row.estimate {
        Some(e) => format!(
            "{word}{gated}: {} {} (interval {}, tolerance ±{:.0} %, MDE {:.1} %, p_adj {}){values}",
            verdict_view::metric_slug(row.metric),
            pct(e.change_pct),
            interval(e),
            row.tolerance_pct,
            e.mde_pct,
            p_value(e.p_adjusted.unwrap_or(e.p_value)),
        ),
        None => format!(
            "{word}{gated}: {}{values}",
            row.reason.unwrap_or("no estimate")
        ),
    }
}

fn estimate_lines(out: &mut String, estimate: Option<&crate::analysis::Estimate>) {
    if let Some(e) = estimate {
        out.push_str(&format!(
            "change: {} (log ratio {:.5})\ninterval: {} (each end one-sided)\n\
             MDE: {:.2} % (80 % power){}\np: {} one-sided{}\nstd error: {:.5} (df {:.1})\n\
             run-to-run noise: {:.4} ({})\n",
            pct(e.change_pct),
            e.log_ratio,
            interval(e),
            e.mde_pct,
            if e.tolerance_below_mde {
                ", above the tolerance"
            } else {
                ""
            },
            p_value(e.p_value),
            e.p_adjusted
                .map(|p| format!(", Holm-adjusted {}", p_value(p)))
                .unwrap_or_default(),
            e.std_error,
            e.df,
            e.run_noise,
            match e.run_noise_source {
                crate::analysis::RunNoiseSource::Floor => "the policy's floor",
                crate::analysis::RunNoiseSource::BaselineRuns => "the baseline's runs",
            },
        ));
    }
}

fn point_case(row: &Row<'_>, fail_on_inconclusive: bool) -> TestCase {
    let mut out = format!(
        "{}\nverdict: {}{}\ntolerance: ±{:.1} %\n",
        row.name(),
        row.verdict.name(),
        if row.gated { "" } else { " (not gated)" },
        row.tolerance_pct
    );
    if let Some(reason) = row.reason {
        out.push_str(&format!("reason: {reason}\n"));
    }
    if let Some(f) = row.figures {
        let value = |v: Option<f64>| v.map_or("-".into(), |v| format_value(row.metric, v));
        let point = |side| format_value(row.metric, verdict_view::metric_value(side, row.metric));
        out.push_str(&format!(
            "baseline: {} ({} samples, point figure {}, concurrency {}, error rate {:.2} %)\n\
             current: {} ({} samples, point figure {}, concurrency {}, error rate {:.2} %)\n\
             ({})\n",
            value(row.baseline_value()),
            f.baseline.samples,
            point(&f.baseline),
            f.baseline.concurrency,
            f.baseline.error_rate * 100.0,
            value(row.current_value()),
            f.current.samples,
            point(&f.current),
            f.current.concurrency,
            f.current.error_rate * 100.0,
            verdict_view::VALUES_NOTE,
        ));
    }
    estimate_lines(&mut out, row.estimate);
    out.push_str(&format!(
        "samples: current {}, baseline {} from {} run(s)\n",
        row.current_samples, row.baseline_samples, row.baseline_runs
    ));
    let mut case = TestCase::new(
        row.name(),
        status(
            row.verdict,
            row.gated,
            fail_on_inconclusive,
            point_message(row),
        ),
    );
    case.set_classname(CLASSNAME)
        .set_time(Duration::ZERO)
        .set_system_out(out);
    case
}

fn curve_case(row: &CurveRow<'_>, fail_on_inconclusive: bool) -> TestCase {
    let word = row.verdict.name();
    let gated = if row.gated { "" } else { " (not gated)" };
    let message = match row.estimate {
        Some(e) => format!(
            "{word}{gated}: weighted mean over {} points {} (interval {}, tolerance ±{:.0} %, \
             MDE {:.1} %)",
            row.points,
            pct(e.change_pct),
            interval(e),
            row.tolerance_pct,
            e.mde_pct
        ),
        None => format!("{word}{gated}: {}", row.reason.unwrap_or("no estimate")),
    };
    let mut out = format!(
        "{}\nverdict: {word}{gated}\npoints: {}\ntolerance: ±{:.1} %\n",
        row.name(),
        row.points,
        row.tolerance_pct
    );
    estimate_lines(&mut out, row.estimate);
    let status = status(row.verdict, row.gated, fail_on_inconclusive, message);
    let mut case = TestCase::new(row.name(), status);
    case.set_classname(CLASSNAME)
        .set_time(Duration::ZERO)
        .set_system_out(out);
    case
}

/// The `junit.xml` bytes of a verdict.
///
/// Test case times are 0: `verdict.json` does not carry how long the
/// samples took.
pub fn render(verdict: &VerdictFile) -> Result<Vec<u8>, quick_junit::SerializeError> {
    let rows = verdict_view::rows(verdict);
    let curves = verdict_view::curve_rows(verdict);
    let mut report = Report::new("cacherate verdict");
    report.set_time(Duration::ZERO);
    for context in verdict_view::context_sizes(verdict) {
        let mut suite = TestSuite::new(format!("ctx{context}"));
        suite.set_time(Duration::ZERO);
        suite.add_properties([
            Property::new("model", &verdict.run.model),
            Property::new("baseline", &verdict.baseline.name),
            Property::new("baseline_runs", verdict.baseline.runs.to_string()),
            Property::new("confidence", verdict.policy.confidence.to_string()),
            Property::new("overall", verdict.overall.verdict.name()),
            Property::new("tool_version", &verdict.tool_version),
        ]);
        for row in rows.iter().filter(|r| r.context_size == context) {
            suite.add_test_case(point_case(row, verdict.fail_on_inconclusive));
        }
        for row in curves.iter().filter(|r| r.context_size == context) {
            suite.add_test_case(curve_case(row, verdict.fail_on_inconclusive));
        }
        report.add_test_suite(suite);
    }
    let mut bytes = Vec::new();
    report.serialize(&mut bytes)?;
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    Ok(bytes)
}
