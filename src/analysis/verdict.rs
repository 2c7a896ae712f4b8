//! Verdicts per point and metric and per curve (SPEC §5): tolerance and
//! Holm-adjusted significance decide `regressed`/`improved`, the
//! inverse-variance-weighted mean across points judges the curve, and each
//! verdict carries its interval and minimum detectable effect.

use serde::{Deserialize, Serialize};

use super::dist::{t_quantile, t_upper_tail};
use super::effect::{Effect, MetricSamples, RunNoiseSource, estimate_effect, satterthwaite_df};
use super::holm::holm_adjust;
use super::policy::{Direction, HealthLimits, Metric, Policy};
use crate::stats::ErrorCount;

/// Power at which the minimum detectable effect is quoted.
pub const MDE_POWER: f64 = 0.8;

/// Least share of an effect's variance that the current run's sample noise
/// must make up for more samples to be worth taking (see
/// [`needs_more_samples`]): doubling the samples then shrinks the standard
/// error by at least ~2.5 %.
pub const MIN_SHRINKABLE_SHARE: f64 = 0.1;

crate::names::named_enum! {
    "snake_case",
    /// The outcome for one point and metric, or for a curve.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Verdict {
        /// Neither beyond tolerance nor significant.
        Pass,
        /// Worse beyond tolerance, and significant at the Holm-adjusted level.
        Regressed,
        /// Better beyond tolerance, and significant at the Holm-adjusted level.
        Improved,
        /// Only one of the two: beyond tolerance but within noise, or
        /// significant but within tolerance.
        Inconclusive,
        /// The point's error rate or cache-hit gap is over its limit.
        Error,
        /// The samples cannot support a verdict; `reason` says why.
        Insufficient,
    }
}

impl Verdict {
    /// The verdict's word, as `verdict.json` writes it.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Facts of the current run at a point that can fail it whatever its speed.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PointHealth {
    /// Share of failed requests (0.02 = 2 %).
    pub error_rate: f64,
    /// The requests behind `error_rate` and the failed ones, when known:
    /// the limit is then judged with the count ([`ErrorCount::beyond`]).
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub failed: u64,
    /// Requested minus server-reported cache hit rate, when the server
    /// reports one.
    pub cache_hit_gap: Option<f64>,
}

impl PointHealth {
    /// The reason this point is an `error`, if it is one.
    pub fn violation(&self, limits: &HealthLimits) -> Option<String> {
        let limit = limits.max_error_rate;
        if self.requests > 0 {
            let errors = ErrorCount::new(self.failed, self.requests);
            if errors.beyond(limit) {
                return Some(format!("error rate: {}", errors.describe(limit)));
            }
        } else if self.error_rate.is_nan() || self.error_rate > limit {
            return Some(format!(
                "error rate {:.2} % is over the limit of {:.2} %",
                self.error_rate * 100.0,
                limit * 100.0
            ));
        }
        match self.cache_hit_gap {
            Some(gap) if gap.is_nan() || gap.abs() > limits.max_cache_hit_gap => Some(format!(
                "cache hit rate is {:.1} points off the requested one (limit {:.1})",
                gap * 100.0,
                limits.max_cache_hit_gap * 100.0
            )),
            _ => None,
        }
    }
}

/// One point of a curve as the analysis gets it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PointSamples {
    /// How reports name the point, e.g. `ctx8000_cache50`.
    pub point: String,
    pub samples: MetricSamples,
    pub health: Option<PointHealth>,
}

/// The numbers behind a verdict. Log values are natural logs of
/// current/baseline; `_pct` values are the same as percent changes,
/// `100 (e^x − 1)`, negative when the current run is lower.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub log_ratio: f64,
    pub change_pct: f64,
    /// A point's two figures whose ratio the change is: the geometric mean
    /// of the current run's per-sample values, and that of the baseline's
    /// (the geometric mean over its runs of each run's geometric mean).
    /// For TTFT, of each sample's p50 or p95. `current / baseline − 1` is
    /// `change_pct`. Curves have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_geomean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_geomean: Option<f64>,
    /// Each end is the one-sided bound at the policy's confidence (together
    /// a two-sided interval at 1 − 2α). A point's verdict uses the
    /// Holm-adjusted level, which may be stricter: see `p_adjusted`.
    pub low_log: f64,
    pub high_log: f64,
    pub low_pct: f64,
    pub high_pct: f64,
    pub std_error: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// One-sided p-value in the direction the effect points.
    pub p_value: f64,
    /// Holm-adjusted `p_value` across the curve's points (points only).
    pub p_adjusted: Option<f64>,
    /// The effect a one-sided test at the point's strictest Holm level
    /// (α / points) detects with 80 % power; run-to-run noise included.
    pub mde_log: f64,
    pub mde_pct: f64,
    /// The tolerance is below the MDE: a regression just past the tolerance
    /// is missed more than 20 % of the time. More samples cannot fix this
    /// when run noise dominates; more baseline runs or a larger tolerance
    /// can.
    pub tolerance_below_mde: bool,
    /// σ_run used, log units (≈ CV between runs).
    pub run_noise: f64,
    pub run_noise_source: RunNoiseSource,
    /// Share of the variance that more current samples can shrink.
    pub current_sample_share: f64,
    /// The MDE that run-to-run noise alone sets (points only):
    /// `(z₁₋α + z₀.₈) · σ_run · √(1 + 1/R)` at the MDE's level, which no
    /// number or length of this run's samples can go below; more baseline
    /// runs lower it only towards `(z₁₋α + z₀.₈) · σ_run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mde_floor_pct: Option<f64>,
    /// Where `std_error` comes from (points only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<VarianceTerms>,
}

/// The three terms of a point's `Var d` (see `analysis::effect`), each as
/// the standard deviation it alone would give the log ratio: the current
/// run's samples, the baseline's samples and the run-to-run noise of both
/// sides. Their squares add up to `std_error²`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VarianceTerms {
    pub current_samples: f64,
    pub baseline_samples: f64,
    pub run_to_run: f64,
}

impl VarianceTerms {
    fn of(effect: &Effect) -> VarianceTerms {
        VarianceTerms {
            current_samples: effect.current_sample_var.sqrt(),
            baseline_samples: effect.baseline_sample_var.sqrt(),
            run_to_run: effect.run_var.sqrt(),
        }
    }
}

/// The one-sided level a curve's MDEs are quoted at: its strictest Holm
/// level, α over the `tested` points.
pub fn mde_level(alpha: f64, tested: usize) -> f64 {
    alpha / tested.max(1) as f64
}

/// The MDE (log units) that run-to-run noise `run_noise` alone sets with a
/// baseline of `baseline_runs` runs, at one-sided level `alpha`.
pub fn mde_floor(run_noise: f64, baseline_runs: usize, alpha: f64) -> f64 {
    let z = t_quantile(1.0 - alpha, f64::INFINITY) + t_quantile(MDE_POWER, f64::INFINITY);
    z * run_noise * (1.0 + 1.0 / baseline_runs.max(1) as f64).sqrt()
}

/// The fewest baseline runs whose [`mde_floor`] is below `tolerance_log`,
/// or `None` when none is: the current run's own offset, `z · σ_run`,
/// already reaches it.
pub fn runs_for_tolerance(run_noise: f64, alpha: f64, tolerance_log: f64) -> Option<usize> {
    let z = t_quantile(1.0 - alpha, f64::INFINITY) + t_quantile(MDE_POWER, f64::INFINITY);
    let ratio = tolerance_log / (z * run_noise);
    if ratio <= 1.0 {
        return None;
    }
    // 1 + 1/R < ratio² ⇔ R > 1 / (ratio² − 1).
    Some((1.0 / (ratio * ratio - 1.0)).floor() as usize + 1)
}

/// The verdict of one point for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointMetricVerdict {
    pub point: String,
    pub verdict: Verdict,
    /// Why an `error` or `insufficient` verdict was given; for an
    /// `inconclusive` one, and a `pass` over a significant change inside
    /// the tolerance, what the numbers say.
    pub reason: Option<String>,
    /// The metric's tolerance, in percent (repeated from the curve so that
    /// each verdict shows it).
    pub tolerance_pct: f64,
    pub current_samples: usize,
    pub baseline_samples: usize,
    pub baseline_runs: usize,
    /// Absent when the samples could not support one.
    pub estimate: Option<Estimate>,
}

/// The curve-level summary of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveSummary {
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub tolerance_pct: f64,
    /// Points that entered the weighted mean.
    pub points: usize,
    pub estimate: Option<Estimate>,
}

/// Everything judged for one metric over one curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveVerdict {
    pub metric: Metric,
    pub direction: Direction,
    pub tolerance_pct: f64,
    pub confidence: f64,
    pub points: Vec<PointMetricVerdict>,
    pub curve: CurveSummary,
}

impl CurveVerdict {
    /// Whether this metric fails a gate: a point or the curve regressed, or
    /// a point is an `error`. `insufficient` is left to the caller: missing
    /// data is a broken gate, not a slower server.
    pub fn fails_gate(&self) -> bool {
        self.curve.verdict == Verdict::Regressed
            || self
                .points
                .iter()
                .any(|p| matches!(p.verdict, Verdict::Regressed | Verdict::Error))
    }

    /// Names of the points that regressed.
    pub fn regressed_points(&self) -> Vec<&str> {
        self.points
            .iter()
            .filter(|p| p.verdict == Verdict::Regressed)
            .map(|p| p.point.as_str())
            .collect()
    }
}

/// Whether the gate should measure more samples at an inconclusive point
/// (up to `--max-extra-samples`). Extra samples of the current run shrink
/// only its sample-noise term `s²_c / m`; the run-to-run term, which
/// usually dominates, stays. So this says yes only when that term is at
/// least [`MIN_SHRINKABLE_SHARE`] of the variance; otherwise the honest
/// answer stays `inconclusive` and the MDE tells what would help (more
/// baseline runs, a larger tolerance).
pub fn needs_more_samples(verdict: &PointMetricVerdict) -> bool {
    verdict.verdict == Verdict::Inconclusive
        && verdict
            .estimate
            .is_some_and(|e| e.current_sample_share >= MIN_SHRINKABLE_SHARE)
}

fn pct(log: f64) -> f64 {
    100.0 * log.exp_m1()
}

/// The tests of one effect (of a point, or of a curve) at one level.
struct Tested {
    p_worse: f64,
    p_better: f64,
}

/// One-sided p-values of "worse" and "better". `badness` is the log ratio
/// signed so that positive is worse.
fn one_sided(badness: f64, std_error: f64, df: f64) -> Tested {
    let t = badness / std_error;
    // The tail in the effect's direction is computed directly (it may be
    // tiny); the other is its complement (≥ 0.5, no precision needed).
    if t >= 0.0 {
        let p_worse = t_upper_tail(t, df);
        Tested {
            p_worse,
            p_better: 1.0 - p_worse,
        }
    } else {
        let p_better = t_upper_tail(-t, df);
        Tested {
            p_worse: 1.0 - p_better,
            p_better,
        }
    }
}

/// The tolerance-and-significance rule of SPEC §5, with the tolerance in
/// the picture: **regressed** (improved) when the change is worse (better)
/// than the tolerance *and* significant in that direction; **inconclusive**
/// when it is beyond the tolerance but not significant — the one case
/// where more evidence could turn the verdict; **pass** otherwise. A
/// significant change inside the tolerance is a pass, and says so: the
/// samples are sure of a change the tolerance accepts. Returns the verdict
/// and, for those two cases, what the numbers say.
fn decide(
    badness: f64,
    tolerance_log: f64,
    worse_significant: bool,
    better_significant: bool,
) -> (Verdict, Option<String>) {
    let worse_beyond = badness > tolerance_log;
    let better_beyond = -badness > tolerance_log;
    let tolerance = format!("±{} %", (1000.0 * tolerance_log.exp_m1()).round() / 10.0);
    if worse_beyond && worse_significant {
        (Verdict::Regressed, None)
    } else if better_beyond && better_significant {
        (Verdict::Improved, None)
    } else if worse_beyond || better_beyond {
        let note = format!(
            "beyond the {tolerance} tolerance but not significant at this level: more samples or \
             baseline runs could decide"
        );
        (Verdict::Inconclusive, Some(note))
    } else if worse_significant || better_significant {
        let note = format!("a significant change, inside the {tolerance} tolerance");
        (Verdict::Pass, Some(note))
    } else {
        (Verdict::Pass, None)
    }
}

/// Minimum detectable effect of a one-sided t test at level `alpha` with
/// power [`MDE_POWER`]: `(t₁₋α,ν + t_power,ν) · SE` — the usual
/// normal-theory power formula with t quantiles (e.g. Cohen, *Statistical
/// Power Analysis*, 1988; Bloom 1995, "Minimum detectable effects", Evaluation Review 19:547).
pub fn minimum_detectable_effect(std_error: f64, df: f64, alpha: f64) -> f64 {
    (t_quantile(1.0 - alpha, df) + t_quantile(MDE_POWER, df)) * std_error
}

#[expect(
    clippy::too_many_arguments,
    reason = "one constructor for points and curves"
)]
fn estimate(
    log_ratio: f64,
    std_error: f64,
    df: f64,
    direction: Direction,
    tolerance_log: f64,
    policy: &Policy,
    mde_alpha: f64,
    tested: &Tested,
    p_adjusted: Option<f64>,
    run_noise: f64,
    run_noise_source: RunNoiseSource,
    current_sample_share: f64,
) -> Estimate {
    let half_width = t_quantile(policy.confidence, df) * std_error;
    let mde_log = minimum_detectable_effect(std_error, df, mde_alpha);
    let worse = direction.worse_sign() * log_ratio >= 0.0;
    Estimate {
        log_ratio,
        change_pct: pct(log_ratio),
        baseline_geomean: None,
        current_geomean: None,
        low_log: log_ratio - half_width,
        high_log: log_ratio + half_width,
        low_pct: pct(log_ratio - half_width),
        high_pct: pct(log_ratio + half_width),
        std_error,
        df,
        p_value: if worse {
            tested.p_worse
        } else {
            tested.p_better
        },
        p_adjusted,
        mde_log,
        mde_pct: pct(mde_log),
        tolerance_below_mde: tolerance_log < mde_log,
        run_noise,
        run_noise_source,
        current_sample_share,
        mde_floor_pct: None,
        terms: None,
    }
}

/// Judges one metric over the points of one curve.
///
/// Per point: the effect and its variance (see [`estimate_effect`]); the
/// one-sided p-values of "worse" and of "better" are each Holm-adjusted
/// across the curve's tested points (Holm 1979; one family per direction),
/// and the verdict follows SPEC §5: **regressed** when the effect is worse
/// than the tolerance *and* significant at the adjusted level, **improved**
/// symmetrically, **inconclusive** when only one of the two holds, **pass**
/// otherwise. Points with an `error` or `insufficient` verdict are left out
/// of the families and of the curve.
///
/// Curve: the weighted mean `D = Σ wₚ dₚ` (Σ wₚ = 1) of the tested points,
/// the fixed-effect meta-analytic estimate (Borenstein, Hedges, Higgins &
/// Rothstein, *Introduction to Meta-Analysis*, 2009) with one
/// difference that matters: the run-to-run offsets of the current run and
/// of the baseline's runs are common to every point, so they do not average
/// out across points. With `dₚ = δ + U + eₚ`, `Var U = S` shared and
/// `Var eₚ = Wₚ` (sample noise) independent, `Var D = Σ wₚ² Wₚ + S`: the
/// shared term is kept whole, never divided by the number of points. Under
/// that covariance (diag(W) + S·11ᵀ) the best linear unbiased weights are
/// `wₚ ∝ 1/Wₚ` (Sherman–Morrison: the shared term scales every weight
/// alike), so inverse-variance weighting uses the sample-noise variances.
/// `S` is the weighted mean of the points' run terms; its df are taken as
/// if the points' run-noise estimates were perfectly correlated (they come
/// from the same baseline runs), the conservative choice. The curve is one
/// test per direction at level α, without Holm; it catches a broad
/// regression beyond tolerance that no single point shows at its Holm
/// level. (It cannot see a change smaller than the tolerance: the tolerance
/// rule applies to it as to a point.)
pub fn judge_curve(
    metric: Metric,
    points: &[PointSamples],
    policy: &Policy,
) -> Result<CurveVerdict, String> {
    policy.validate()?;
    let rule = Rule::new(metric, policy);
    let (mut verdicts, effects): (Vec<PointMetricVerdict>, Vec<Option<Effect>>) =
        points.iter().map(|point| rule.untested(point)).unzip();
    let tested: Vec<(usize, Effect)> = effects
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.map(|e| (i, e)))
        .collect();
    rule.test_points(&mut verdicts, &tested);
    let curve = rule.curve(&tested);
    Ok(CurveVerdict {
        metric,
        direction: rule.direction,
        tolerance_pct: rule.tolerance * 100.0,
        confidence: policy.confidence,
        points: verdicts,
        curve,
    })
}

/// What judging one metric's curve holds fixed: the policy, the metric's
/// direction and its tolerance.
struct Rule<'a> {
    policy: &'a Policy,
    direction: Direction,
    /// The fraction, and its threshold on the log ratio.
    tolerance: f64,
    tolerance_log: f64,
}

impl<'a> Rule<'a> {
    fn new(metric: Metric, policy: &'a Policy) -> Rule<'a> {
        let tolerance = policy.tolerances.for_metric(metric);
        Rule {
            policy,
            direction: metric.direction(),
            tolerance,
            tolerance_log: tolerance.ln_1p(),
        }
    }

    /// +1 when a positive log ratio is worse: `badness = sign × log ratio`.
    fn sign(&self) -> f64 {
        self.direction.worse_sign()
    }

    /// A point's verdict before the tests: `error` past a health limit,
    /// `insufficient` without an effect, else `pass` with the effect to
    /// test.
    fn untested(&self, point: &PointSamples) -> (PointMetricVerdict, Option<Effect>) {
        let effect = estimate_effect(&point.samples, self.policy);
        let health = point.health.and_then(|h| h.violation(&self.policy.health));
        let counts = |e: &Effect| (e.current_samples, e.baseline_samples, e.baseline_runs);
        let (current_samples, baseline_samples, baseline_runs) =
            effect.as_ref().map(counts).unwrap_or_else(|_| {
                (
                    point.samples.current.len(),
                    point.samples.baseline_runs.iter().map(Vec::len).sum(),
                    point.samples.baseline_runs.len(),
                )
            });
        let (verdict, reason, effect) = match (health, effect) {
            (Some(why), _) => (Verdict::Error, Some(why), None),
            (None, Err(why)) => (Verdict::Insufficient, Some(why), None),
            (None, Ok(effect)) => (Verdict::Pass, None, Some(effect)),
        };
        let verdict = PointMetricVerdict {
            point: point.point.clone(),
            verdict,
            reason,
            tolerance_pct: self.tolerance * 100.0,
            current_samples,
            baseline_samples,
            baseline_runs,
            estimate: None,
        };
        (verdict, effect)
    }

    /// The tested points' verdicts (`tested`: index into `verdicts`, effect)
    /// at the Holm-adjusted level, one family per direction.
    fn test_points(&self, verdicts: &mut [PointMetricVerdict], tested: &[(usize, Effect)]) {
        let sign = self.sign();
        let alpha = self.policy.alpha();
        let tests: Vec<Tested> = tested
            .iter()
            .map(|(_, e)| one_sided(sign * e.log_ratio, e.std_error(), e.df))
            .collect();
        let worse_adjusted = holm_adjust(&tests.iter().map(|t| t.p_worse).collect::<Vec<_>>());
        let better_adjusted = holm_adjust(&tests.iter().map(|t| t.p_better).collect::<Vec<_>>());
        let mde_alpha = mde_level(alpha, tested.len());
        for (j, (i, effect)) in tested.iter().enumerate() {
            let badness = sign * effect.log_ratio;
            let verdict = &mut verdicts[*i];
            (verdict.verdict, verdict.reason) = decide(
                badness,
                self.tolerance_log,
                worse_adjusted[j] <= alpha,
                better_adjusted[j] <= alpha,
            );
            let p_adjusted = if badness >= 0.0 {
                worse_adjusted[j]
            } else {
                better_adjusted[j]
            };
            verdict.estimate = Some(Estimate {
                baseline_geomean: Some(effect.baseline_log_mean.exp()),
                current_geomean: Some(effect.current_log_mean.exp()),
                mde_floor_pct: Some(pct(mde_floor(
                    effect.run_noise,
                    effect.baseline_runs,
                    mde_alpha,
                ))),
                terms: Some(VarianceTerms::of(effect)),
                ..estimate(
                    effect.log_ratio,
                    effect.std_error(),
                    effect.df,
                    self.direction,
                    self.tolerance_log,
                    self.policy,
                    mde_alpha,
                    &tests[j],
                    Some(p_adjusted),
                    effect.run_noise,
                    effect.run_noise_source,
                    effect.current_sample_share(),
                )
            });
        }
    }

    /// The curve's verdict from the weighted mean of the tested points, one
    /// test per direction at level α.
    fn curve(&self, tested: &[(usize, Effect)]) -> CurveSummary {
        let tolerance_pct = self.tolerance * 100.0;
        if tested.is_empty() {
            return CurveSummary {
                verdict: Verdict::Insufficient,
                reason: Some(
                    "no point of the curve has samples that support a verdict".to_string(),
                ),
                tolerance_pct,
                points: 0,
                estimate: None,
            };
        }
        let alpha = self.policy.alpha();
        let effects: Vec<&Effect> = tested.iter().map(|(_, e)| e).collect();
        let summary = curve_estimate(&effects);
        let badness = self.sign() * summary.log_ratio;
        let test = one_sided(badness, summary.variance.sqrt(), summary.df);
        let (verdict, reason) = decide(
            badness,
            self.tolerance_log,
            test.p_worse <= alpha,
            test.p_better <= alpha,
        );
        CurveSummary {
            verdict,
            reason,
            tolerance_pct,
            points: tested.len(),
            estimate: Some(estimate(
                summary.log_ratio,
                summary.variance.sqrt(),
                summary.df,
                self.direction,
                self.tolerance_log,
                self.policy,
                alpha,
                &test,
                None,
                summary.run_noise,
                summary.run_noise_source,
                summary.current_sample_share,
            )),
        }
    }
}

/// The weighted mean of a curve's point effects (see [`judge_curve`]).
struct CurveEstimate {
    log_ratio: f64,
    variance: f64,
    df: f64,
    run_noise: f64,
    run_noise_source: RunNoiseSource,
    current_sample_share: f64,
}

fn curve_estimate(effects: &[&Effect]) -> CurveEstimate {
    // A point whose samples were all identical has no sample variance; keep
    // its weight finite (it then takes nearly all of it, as it should).
    let largest_run_var = effects.iter().map(|e| e.run_var).fold(0.0, f64::max);
    let tiny = largest_run_var * 1e-12;
    let raw: Vec<f64> = effects
        .iter()
        .map(|e| 1.0 / e.sample_var().max(tiny))
        .collect();
    let total: f64 = raw.iter().sum();
    let weights: Vec<f64> = raw.iter().map(|w| w / total).collect();

    let log_ratio = weights
        .iter()
        .zip(effects)
        .map(|(w, e)| w * e.log_ratio)
        .sum();
    let shared_run_var: f64 = weights
        .iter()
        .zip(effects)
        .map(|(w, e)| w * e.run_var)
        .sum();
    let run_noise = weights
        .iter()
        .zip(effects)
        .map(|(w, e)| w * e.run_noise * e.run_noise)
        .sum::<f64>()
        .sqrt();
    // Perfectly correlated run-noise estimates: their standard deviations add.
    let run_sd_of_estimate: f64 = weights
        .iter()
        .zip(effects)
        .map(|(w, e)| w * e.run_var / e.run_df.sqrt())
        .sum();
    let run_df = if run_sd_of_estimate > 0.0 {
        (shared_run_var / run_sd_of_estimate).powi(2)
    } else {
        f64::INFINITY
    };
    let mut terms = Vec::with_capacity(2 * effects.len() + 1);
    let mut current_sample_var = 0.0;
    for (w, e) in weights.iter().zip(effects) {
        terms.push((w * w * e.current_sample_var, e.current_sample_df));
        terms.push((w * w * e.baseline_sample_var, e.baseline_sample_df));
        current_sample_var += w * w * e.current_sample_var;
    }
    terms.push((shared_run_var, run_df));
    let variance: f64 = terms.iter().map(|(v, _)| v).sum();
    CurveEstimate {
        log_ratio,
        variance,
        df: satterthwaite_df(&terms),
        run_noise,
        run_noise_source: if effects
            .iter()
            .any(|e| e.run_noise_source == RunNoiseSource::BaselineRuns)
        {
            RunNoiseSource::BaselineRuns
        } else {
            RunNoiseSource::Floor
        },
        current_sample_share: current_sample_var / variance,
    }
}
