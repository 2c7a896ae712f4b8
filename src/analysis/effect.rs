//! The effect of one point and metric: the log ratio of the current run to
//! the baseline, its variance with run-to-run noise pooled in, and its
//! Welch–Satterthwaite degrees of freedom.
//!
//! # Model
//!
//! On the log scale a sample of run `r` is `μ + u_r + e`, with `u_r` the
//! run's offset (restarted server, other runner; variance σ²_run, shared by
//! every sample and point of that run) and `e` the sample's own noise
//! (variance σ²_w). The baseline is `R ≥ 1` runs with `k_r` samples each; the
//! current run is **one** run of `m` samples. The effect is
//!
//! ```text
//! d = mean(log current) − mean over runs of mean(log baseline run)
//! Var d = s²_c / m  +  s²_b · Σ(1/k_r) / R²  +  σ²_run · (1 + 1/R)
//!         ╰ current ╯   ╰ baseline samples ╯    ╰ run-to-run ╯
//! ```
//!
//! (with equal `k_r`, the usual case, the baseline mean is the mean over its
//! samples). The current run's offset counts whole, the baseline's average
//! of R offsets counts 1/R: more baseline runs shrink the run term only
//! down to σ²_run, and more samples shrink only the first two terms.
//!
//! σ²_run is the larger of the policy's floor² and, when the baseline has
//! ≥ 2 runs, the one-way ANOVA (method of moments) estimate from its runs:
//! the variance of the run means minus the part the within-run noise puts
//! there, `s²_between − s²_b · mean(1/k_r)`, floored at 0 (Searle, Casella &
//! McCulloch, *Variance Components*, 1992). The floor is a lower bound
//! because two or three runs say little about a variance: they may raise the
//! assumption, never talk it down.
//!
//! The degrees of freedom of `Var d` follow Welch (1947) and Satterthwaite
//! (1946): `ν = V² / Σ (cᵢ s²ᵢ)² / νᵢ` over the three terms, with `m − 1`,
//! `Σ(k_r − 1)`, and for the run term the floor's fixed df
//! (`Policy::run_noise_floor_df`) while the floor holds. When the baseline's
//! runs raise σ²_run above the floor, only the excess over the floor is
//! estimated (with `R − 1` df) and the floor is known, so the same
//! Satterthwaite rule applied to `floor² + excess` gives
//! `ν_run = σ⁴_run / (floor⁴/ν_floor + excess²/(R − 1))`: close to the
//! floor's df when the runs barely exceed it, close to `R − 1` when they
//! show much more noise than assumed. (A plain `R − 1` whenever the estimate
//! wins would make a 3-run baseline less sensitive than a 1-run one on a
//! server whose noise is exactly the floor.) The Monte-Carlo in
//! `benches/verdict_mc.rs` checks the false-alarm rate this gives, also when
//! the true run noise is above the floor. There (4 000 gates a cell, 99 %,
//! 3 samples, 2 % run noise) this rule caught a 10 % slowdown in 90 % / 97 %
//! of gates with 3 / 5 baseline runs, against 79 % / 88 % for a plain
//! `R − 1` and 83 % / 93 % for moment-matching `max(floor², σ̂²)` itself;
//! what it costs shows when the true run noise is 1.5–2× the floor: 3–4.5 %
//! false alarms per gate against 2.5–3.5 % for the plain rule. No df rule is
//! calibrated there, since 3–5 runs are few: a floor set to the measured run
//! noise is what keeps false alarms at α.

use serde::{Deserialize, Serialize};

use super::policy::Policy;

/// One point and metric's samples: the baseline's grouped by the run they
/// come from (each sample one equal-length measured phase), and the current
/// run's. Values are the metric itself (tok/s, seconds), not logs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricSamples {
    pub baseline_runs: Vec<Vec<f64>>,
    pub current: Vec<f64>,
}

crate::names::named_enum! {
    "snake_case",
    /// Where the run-to-run noise of an effect came from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RunNoiseSource {
        /// The policy's floor (a 1-run baseline, or runs that agree within it).
        Floor,
        /// The spread of the baseline's own runs, above the floor.
        BaselineRuns,
    }
}

/// The evidence of one point and metric, before any verdict: all in natural
/// log units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// d = mean log(current) − mean log(baseline).
    pub log_ratio: f64,
    /// The two means `log_ratio` is the difference of: the current run's
    /// mean log sample, and the mean over the baseline's runs of theirs.
    pub current_log_mean: f64,
    pub baseline_log_mean: f64,
    /// s²_c / m: the current run's sample noise in Var d.
    pub current_sample_var: f64,
    pub current_sample_df: f64,
    /// s²_b · Σ(1/k_r) / R²: the baseline's sample noise in Var d.
    pub baseline_sample_var: f64,
    pub baseline_sample_df: f64,
    /// σ_run used (log units ≈ coefficient of variation between runs).
    pub run_noise: f64,
    pub run_noise_source: RunNoiseSource,
    /// σ²_run · (1 + 1/R): the run-to-run noise in Var d.
    pub run_var: f64,
    pub run_df: f64,
    /// Var d, the sum of the three terms.
    pub variance: f64,
    /// Welch–Satterthwaite degrees of freedom of `variance`.
    pub df: f64,
    pub current_samples: usize,
    pub baseline_samples: usize,
    pub baseline_runs: usize,
}

impl Effect {
    pub fn std_error(&self) -> f64 {
        self.variance.sqrt()
    }

    /// The sample-noise part of the variance (both sides): what averaging
    /// over points divides down, and the weight of a point in a curve.
    pub fn sample_var(&self) -> f64 {
        self.current_sample_var + self.baseline_sample_var
    }

    /// Share of `variance` that more samples of the current run can shrink.
    pub fn current_sample_share(&self) -> f64 {
        self.current_sample_var / self.variance
    }
}

/// Welch–Satterthwaite degrees of freedom of a sum of variance terms, each
/// given as (term, its df). Terms of zero variance carry no weight; a sum of
/// only those has infinite df.
pub fn satterthwaite_df(terms: &[(f64, f64)]) -> f64 {
    let total: f64 = terms.iter().map(|&(v, _)| v).sum();
    let denominator: f64 = terms
        .iter()
        .filter(|&&(v, df)| v > 0.0 && df.is_finite())
        .map(|&(v, df)| v * v / df)
        .sum();
    if denominator > 0.0 {
        total * total / denominator
    } else {
        f64::INFINITY
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sum of squared deviations from the mean.
fn sum_squares(values: &[f64], mean: f64) -> f64 {
    values.iter().map(|v| (v - mean) * (v - mean)).sum()
}

fn logs(what: &str, values: &[f64]) -> Result<Vec<f64>, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.is_finite() && v > 0.0 {
                Ok(v.ln())
            } else {
                Err(format!(
                    "{what} sample {} is {v}: every sample must be a positive, finite number",
                    i + 1
                ))
            }
        })
        .collect()
}

/// The log samples of a point, or why they cannot support a verdict.
fn checked_logs(
    samples: &MetricSamples,
    policy: &Policy,
) -> Result<(Vec<f64>, Vec<Vec<f64>>), String> {
    let needed = policy.min_samples.max(2);
    if samples.current.len() < needed {
        return Err(format!(
            "the current run has {} sample(s) here; at least {needed} are needed",
            samples.current.len()
        ));
    }
    if samples.baseline_runs.is_empty() {
        return Err("the baseline has no samples for this point".to_string());
    }
    let current = logs("current", &samples.current)?;
    let mut runs = Vec::with_capacity(samples.baseline_runs.len());
    for (r, run) in samples.baseline_runs.iter().enumerate() {
        if run.is_empty() {
            return Err(format!(
                "baseline run {} has no samples for this point",
                r + 1
            ));
        }
        runs.push(logs(&format!("baseline run {}", r + 1), run)?);
    }
    Ok((current, runs))
}

/// The baseline's pooled within-run variance and its df; a baseline of
/// single-sample runs shows none, so it borrows the current run's (same
/// server, same phase length) with its df.
fn within_run_variance(runs: &[Vec<f64>], run_means: &[f64], current: (f64, f64)) -> (f64, f64) {
    let within_df: usize = runs.iter().map(|run| run.len() - 1).sum();
    if within_df == 0 {
        return current;
    }
    let ss: f64 = runs
        .iter()
        .zip(run_means)
        .map(|(run, &run_mean)| sum_squares(run, run_mean))
        .sum();
    (ss / within_df as f64, within_df as f64)
}

/// σ²_run, where it comes from and its df: the baseline's between-run
/// variance less what its sample noise explains, when it shows more than
/// the floor (its df then pools the floor's with the excess's), else the
/// floor.
fn run_variance(
    run_means: &[f64],
    baseline_s2: f64,
    inverse_k_sum: f64,
    policy: &Policy,
) -> (f64, RunNoiseSource, f64) {
    let n_runs = run_means.len() as f64;
    let floor2 = policy.run_noise_floor * policy.run_noise_floor;
    let floor_df = policy.run_noise_floor_df;
    let estimated = (run_means.len() >= 2).then(|| {
        let between = sum_squares(run_means, mean(run_means)) / (n_runs - 1.0);
        (between - baseline_s2 * inverse_k_sum / n_runs).max(0.0)
    });
    match estimated {
        Some(estimate) if estimate > floor2 => {
            let excess = estimate - floor2;
            let df = estimate * estimate
                / (floor2 * floor2 / floor_df + excess * excess / (n_runs - 1.0));
            (estimate, RunNoiseSource::BaselineRuns, df)
        }
        _ => (floor2, RunNoiseSource::Floor, floor_df),
    }
}

/// Computes the effect of one point and metric, or refuses with the reason
/// when the samples cannot support a verdict (too few current samples, no
/// baseline samples, a zero, negative or non-finite value). `policy` must
/// be valid (`Policy::validate`).
pub fn estimate_effect(samples: &MetricSamples, policy: &Policy) -> Result<Effect, String> {
    let (current, runs) = checked_logs(samples, policy)?;
    let m = current.len() as f64;
    let current_mean = mean(&current);
    let current_s2 = sum_squares(&current, current_mean) / (m - 1.0);

    let n_runs = runs.len() as f64;
    let run_means: Vec<f64> = runs.iter().map(|run| mean(run)).collect();
    let baseline_mean = mean(&run_means);
    let inverse_k_sum: f64 = runs.iter().map(|run| 1.0 / run.len() as f64).sum();
    let (baseline_s2, baseline_s2_df) =
        within_run_variance(&runs, &run_means, (current_s2, m - 1.0));
    let (run_s2, source, run_df) = run_variance(&run_means, baseline_s2, inverse_k_sum, policy);

    let current_sample_var = current_s2 / m;
    let baseline_sample_var = baseline_s2 * inverse_k_sum / (n_runs * n_runs);
    let run_var = run_s2 * (1.0 + 1.0 / n_runs);
    let current_sample_df = m - 1.0;
    let variance = current_sample_var + baseline_sample_var + run_var;
    let df = satterthwaite_df(&[
        (current_sample_var, current_sample_df),
        (baseline_sample_var, baseline_s2_df),
        (run_var, run_df),
    ]);
    Ok(Effect {
        log_ratio: current_mean - baseline_mean,
        current_log_mean: current_mean,
        baseline_log_mean: baseline_mean,
        current_sample_var,
        current_sample_df,
        baseline_sample_var,
        baseline_sample_df: baseline_s2_df,
        run_noise: run_s2.sqrt(),
        run_noise_source: source,
        run_var,
        run_df,
        variance,
        df,
        current_samples: current.len(),
        baseline_samples: runs.iter().map(Vec::len).sum(),
        baseline_runs: runs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::default()
    }

    #[test]
    fn one_run_baseline_uses_the_floor_for_both_runs() {
        let samples = MetricSamples {
            baseline_runs: vec![vec![100.0, 101.0, 99.0]],
            current: vec![100.0, 101.0, 99.0],
        };
        let effect = estimate_effect(&samples, &policy()).unwrap();
        assert!(effect.log_ratio.abs() < 1e-12);
        assert_eq!(effect.run_noise_source, RunNoiseSource::Floor);
        // The current run's offset whole, the baseline's (one run) whole too.
        assert!((effect.run_var - 2.0 * 0.02 * 0.02).abs() < 1e-12);
        assert!((effect.current_sample_var - effect.baseline_sample_var).abs() < 1e-12);
    }

    #[test]
    fn runs_that_disagree_raise_the_run_noise() {
        let samples = MetricSamples {
            baseline_runs: vec![
                vec![100.0, 100.5, 99.5],
                vec![110.0, 110.5, 109.5],
                vec![90.0, 90.5, 89.5],
            ],
            current: vec![100.0, 100.5, 99.5],
        };
        let effect = estimate_effect(&samples, &policy()).unwrap();
        assert_eq!(effect.run_noise_source, RunNoiseSource::BaselineRuns);
        // Run means ~±10 % apart: σ_run ≈ 0.1.
        assert!(effect.run_noise > 0.08 && effect.run_noise < 0.12);
        // Far above the floor, the df approach the R − 1 = 2 of the estimate.
        assert!(
            effect.run_df > 2.0 && effect.run_df < 2.5,
            "{}",
            effect.run_df
        );
        assert!(effect.df < 3.0);
    }

    #[test]
    fn runs_that_agree_keep_the_floor() {
        let samples = MetricSamples {
            baseline_runs: vec![vec![100.0, 100.5], vec![100.2, 100.1], vec![99.9, 100.3]],
            current: vec![100.0, 100.5, 99.5],
        };
        let effect = estimate_effect(&samples, &policy()).unwrap();
        assert_eq!(effect.run_noise_source, RunNoiseSource::Floor);
        assert!((effect.run_var - 0.02 * 0.02 * (1.0 + 1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(effect.baseline_samples, 6);
    }

    #[test]
    fn satterthwaite_reduces_to_the_single_term() {
        assert!((satterthwaite_df(&[(2.0, 7.0)]) - 7.0).abs() < 1e-12);
        assert!((satterthwaite_df(&[(1.0, 4.0), (1.0, 4.0)]) - 8.0).abs() < 1e-12);
        assert!(satterthwaite_df(&[(1.0, f64::INFINITY)]).is_infinite());
    }
}
