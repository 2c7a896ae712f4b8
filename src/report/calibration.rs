//! The table `cacherate calibrate` prints: how many A/A runs failed at the
//! tolerances in force, and per metric the run noise measured, the
//! tolerance and the one that noise calls for.

use crate::analysis::CalibrationReport;

/// The calibration of the baseline named `baseline`, as text.
pub fn render(baseline: &str, report: &CalibrationReport) -> String {
    let calibration = &report.calibration;
    let mut out = format!(
        "{} A/A run(s) against {baseline}: {} failed at the tolerances in force\n",
        calibration.runs.len(),
        calibration.false_alarms
    );
    out.push_str(&format!(
        "{:<18} {:>16} {:>11} {:>12}\n",
        "metric", "run noise (CV)", "tolerance", "recommended"
    ));
    for (metric, sigma) in &calibration.run_noise {
        let tolerance = calibration.tolerances.get(metric).copied().unwrap_or(0.0);
        let recommended = calibration
            .recommended_tolerances
            .get(metric)
            .copied()
            .unwrap_or(0.0);
        out.push_str(&format!(
            "{:<18} {:>15.1}% {:>10.1}% {:>11.1}%{}\n",
            metric,
            sigma * 100.0,
            tolerance * 100.0,
            recommended * 100.0,
            if recommended > tolerance {
                "  (the tolerance is tighter than this noise allows)"
            } else {
                ""
            }
        ));
    }
    out
}
