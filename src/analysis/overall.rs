//! The overall verdict of a comparison from its gated curves: the worst
//! verdict any gated point or curve has, the names of what changed, and a
//! one-line summary. Points and curves are told apart by what they are
//! ([`Subject`]), not by their names.

use std::collections::BTreeMap;

use super::document::{ContextCurve, Overall};
use super::policy::Metric;
use super::verdict::{Estimate, Verdict, needs_more_samples};

/// What a gated verdict is about.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Subject<'a> {
    /// A point, by its key (`ctx512/cache50`).
    Point(&'a str),
    /// The curve of a context size.
    Curve(u64),
}

/// One gated verdict, of a point or of a curve.
struct Finding<'a> {
    subject: Subject<'a>,
    metric: Metric,
    verdict: Verdict,
    estimate: Option<&'a Estimate>,
    reason: Option<&'a str>,
}

impl Finding<'_> {
    /// `ctx512/cache50/input_throughput`, `ctx512/curve/input_throughput`.
    fn name(&self) -> String {
        match self.subject {
            Subject::Point(point) => format!("{point}/{}", self.metric),
            Subject::Curve(context) => format!("ctx{context}/curve/{}", self.metric),
        }
    }

    fn is_curve(&self) -> bool {
        matches!(self.subject, Subject::Curve(_))
    }

    /// `name: reason`, for errors and insufficient data.
    fn with_reason(&self, otherwise: &str) -> String {
        format!("{}: {}", self.name(), self.reason.unwrap_or(otherwise))
    }
}

/// Every gated verdict, curve by curve: each point's in order, then the
/// curve's when it is a change or inconclusive. A curve without a verdict
/// (`insufficient`) is left out: its points already say why (each is an
/// `error` or `insufficient`).
fn findings(curves: &[ContextCurve]) -> Vec<Finding<'_>> {
    let mut out = Vec::new();
    for curve in curves.iter().filter(|c| c.gated) {
        let metric = curve.verdict.metric;
        for point in &curve.verdict.points {
            out.push(Finding {
                subject: Subject::Point(&point.point),
                metric,
                verdict: point.verdict,
                estimate: point.estimate.as_ref(),
                reason: point.reason.as_deref(),
            });
        }
        let summary = &curve.verdict.curve;
        if matches!(
            summary.verdict,
            Verdict::Regressed | Verdict::Improved | Verdict::Inconclusive
        ) {
            out.push(Finding {
                subject: Subject::Curve(curve.context_size),
                metric,
                verdict: summary.verdict,
                estimate: summary.estimate.as_ref(),
                reason: summary.reason.as_deref(),
            });
        }
    }
    out
}

/// The worst verdict of the findings: a regression, then a broken
/// measurement (`error`, then `insufficient`), then `inconclusive`, then
/// `improved`; `pass` when there is none of these.
fn worst(findings: &[Finding<'_>]) -> Verdict {
    [
        Verdict::Regressed,
        Verdict::Error,
        Verdict::Insufficient,
        Verdict::Inconclusive,
        Verdict::Improved,
    ]
    .into_iter()
    .find(|v| findings.iter().any(|f| f.verdict == *v))
    .unwrap_or(Verdict::Pass)
}

/// The overall verdict of the gated curves.
pub fn overall(curves: &[ContextCurve]) -> Overall {
    let findings = findings(curves);
    let of = |verdict: Verdict| -> Vec<&Finding<'_>> {
        findings.iter().filter(|f| f.verdict == verdict).collect()
    };
    let names = |verdict: Verdict| of(verdict).iter().map(|f| f.name()).collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for finding in findings.iter().filter(|f| !f.is_curve()) {
        *counts.entry(finding.verdict.to_string()).or_insert(0) += 1;
    }
    let verdict = worst(&findings);
    Overall {
        verdict,
        summary: summary(verdict, &findings, counts.values().sum()),
        counts,
        regressed: names(Verdict::Regressed),
        improved: names(Verdict::Improved),
        inconclusive: names(Verdict::Inconclusive),
        errors: of(Verdict::Error)
            .iter()
            .map(|f| f.with_reason("a health limit"))
            .collect(),
        insufficient: of(Verdict::Insufficient)
            .iter()
            .map(|f| f.with_reason("too few samples"))
            .collect(),
        needs_more_samples: points_needing_samples(curves),
    }
}

/// Points (`ctx512/cache50`) where more samples could decide an
/// inconclusive gated verdict, each once.
fn points_needing_samples(curves: &[ContextCurve]) -> Vec<String> {
    let mut points: Vec<String> = Vec::new();
    for curve in curves.iter().filter(|c| c.gated) {
        for point in curve
            .verdict
            .points
            .iter()
            .filter(|p| needs_more_samples(p))
        {
            if !points.contains(&point.point) {
                points.push(point.point.clone());
            }
        }
    }
    points
}

/// One line: the verdict, how many gated verdicts have it, and the worst
/// regression or what broke.
fn summary(verdict: Verdict, findings: &[Finding<'_>], total: usize) -> String {
    let with = |v: Verdict| findings.iter().filter(move |f| f.verdict == v);
    let points = |v: Verdict| with(v).filter(|f| !f.is_curve()).count();
    let curves = |v: Verdict| match with(v).filter(|f| f.is_curve()).count() {
        0 => String::new(),
        1 => " and 1 curve".to_string(),
        n => format!(" and {n} curves"),
    };
    let reasons = |v: Verdict, otherwise: &str| {
        with(v)
            .map(|f| f.with_reason(otherwise))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match verdict {
        Verdict::Regressed => format!(
            "regressed: {} of {total} gated point verdicts{}{}",
            points(verdict),
            curves(verdict),
            worst_regression(findings)
                .map(|what| format!(", worst {what}"))
                .unwrap_or_default()
        ),
        Verdict::Error => format!("error: {}", reasons(verdict, "a health limit")),
        Verdict::Insufficient => format!(
            "insufficient: the samples support no verdict at {}",
            reasons(verdict, "too few samples")
        ),
        Verdict::Inconclusive => format!(
            "inconclusive: {} of {total} gated point verdicts{} are neither clearly within \
             tolerance nor clearly beyond it",
            points(verdict),
            curves(verdict)
        ),
        Verdict::Improved => format!(
            "improved: {} of {total} gated point verdicts{}",
            points(verdict),
            curves(verdict)
        ),
        Verdict::Pass => format!("pass: all {total} gated point verdicts within tolerance"),
    }
}

/// The regressed point with the largest change: `ctx512/cache50/input_throughput -12.1 %`.
fn worst_regression(findings: &[Finding<'_>]) -> Option<String> {
    let mut worst: Option<(f64, String)> = None;
    for finding in findings
        .iter()
        .filter(|f| f.verdict == Verdict::Regressed && !f.is_curve())
    {
        if let Some(e) = finding.estimate {
            let worse = e.change_pct.abs();
            if worst.as_ref().is_none_or(|(w, _)| worse > *w) {
                worst = Some((worse, format!("{} {:+.1} %", finding.name(), e.change_pct)));
            }
        }
    }
    worst.map(|(_, what)| what)
}
