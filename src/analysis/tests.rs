//! Behaviour of the verdicts on constructed curves.

use super::*;

/// Samples spread ±1 % around `level`, as a phase-to-phase spread would be.
fn spread(level: f64, k: usize) -> Vec<f64> {
    let pattern = [1.0, 1.01, 0.99, 1.005, 0.995, 1.0];
    (0..k).map(|i| level * pattern[i % pattern.len()]).collect()
}

fn point(name: &str, baseline_runs: Vec<Vec<f64>>, current: Vec<f64>) -> PointSamples {
    PointSamples {
        point: name.to_string(),
        samples: MetricSamples {
            baseline_runs,
            current,
        },
        health: None,
    }
}

/// A curve whose baseline is `runs` runs at 1000 (runs offset by 0, +0.5 %,
/// −0.5 % in turn, within the floor) and whose current run is
/// 1000 × `factors[p]`.
fn curve(factors: &[f64], runs: usize, k: usize) -> Vec<PointSamples> {
    factors
        .iter()
        .enumerate()
        .map(|(p, &factor)| {
            let baseline = (0..runs)
                .map(|r| spread(1000.0 * (0.005_f64 * [0.0, 1.0, -1.0][r % 3]).exp(), k))
                .collect();
            point(
                &format!("ctx8000_cache{}", 25 * p),
                baseline,
                spread(1000.0 * factor, k),
            )
        })
        .collect()
}

fn judge(metric: Metric, points: &[PointSamples], policy: &Policy) -> CurveVerdict {
    judge_curve(metric, points, policy).expect("valid policy")
}

fn verdicts(curve: &CurveVerdict) -> Vec<Verdict> {
    curve.points.iter().map(|p| p.verdict).collect()
}

fn estimate_of(verdict: &PointMetricVerdict) -> Estimate {
    verdict.estimate.expect("an estimate")
}

#[test]
fn identical_samples_pass_every_metric() {
    let points = curve(&[1.0, 1.0, 1.0], 1, 3);
    for metric in Metric::ALL {
        let verdict = judge(metric, &points, &Policy::default());
        assert_eq!(verdicts(&verdict), vec![Verdict::Pass; 3], "{metric:?}");
        assert_eq!(verdict.curve.verdict, Verdict::Pass);
        assert!(!verdict.fails_gate());
        let e = estimate_of(&verdict.points[0]);
        assert!(e.log_ratio.abs() < 1e-12);
        assert!(e.low_log < 0.0 && e.high_log > 0.0);
    }
}

#[test]
fn clear_slowdown_regresses_at_the_slow_point_only() {
    let points = curve(&[1.0, 0.75, 0.99], 5, 3);
    let verdict = judge(Metric::InputThroughput, &points, &Policy::default());
    assert_eq!(verdict.regressed_points(), vec!["ctx8000_cache25"]);
    assert_eq!(verdict.points[0].verdict, Verdict::Pass);
    assert_eq!(verdict.points[2].verdict, Verdict::Pass);
    assert!(verdict.fails_gate());
    let slow = estimate_of(&verdict.points[1]);
    assert!((slow.change_pct + 25.0).abs() < 0.5, "{}", slow.change_pct);
    assert!(slow.high_log < 0.0);
    assert!(slow.p_adjusted.unwrap() <= 0.01);
}

#[test]
fn noisy_change_beyond_tolerance_is_inconclusive_not_regressed() {
    // An 8 % drop measured with ±15 % phase-to-phase noise.
    let noisy = |level: f64| vec![level * 1.15, level * 0.85, level];
    let points = vec![point("p", vec![noisy(1000.0)], noisy(920.0))];
    let verdict = judge(Metric::OutputThroughput, &points, &Policy::default());
    assert_eq!(verdict.points[0].verdict, Verdict::Inconclusive);
    assert!(!verdict.fails_gate());
    // Sample noise dominates here, so more samples would help.
    assert!(needs_more_samples(&verdict.points[0]));
}

#[test]
fn a_significant_change_inside_the_tolerance_is_a_pass_that_says_so() {
    // TTFT p95 7.4 % higher, flat samples: the floor's variance only
    // (2 × 0.02², df 50), t ≈ 2.5, one-sided p ≈ 0.007 < 0.01, so the
    // change is real; the 15 % tolerance accepts it.
    let flat = |level: f64| vec![level; 3];
    let points = vec![point("p", vec![flat(1.0)], flat(1.074))];
    let verdict = judge(Metric::TtftP95, &points, &Policy::default());
    let e = estimate_of(&verdict.points[0]);
    assert!(e.p_adjusted.unwrap() < 0.01, "{e:?}");
    assert!(e.low_pct > 0.0 && e.high_pct > e.change_pct);
    assert_eq!(verdict.points[0].verdict, Verdict::Pass);
    assert_eq!(
        verdict.points[0].reason.as_deref(),
        Some("a significant change, inside the ±15 % tolerance")
    );
    assert!(!needs_more_samples(&verdict.points[0]));
    // The same change under a 5 % tolerance is a regression.
    let strict = Policy {
        tolerances: Tolerances {
            ttft_p95: 0.05,
            ..Tolerances::default()
        },
        ..Policy::default()
    };
    let verdict = judge(Metric::TtftP95, &points, &strict);
    assert_eq!(verdict.points[0].verdict, Verdict::Regressed);
    assert_eq!(verdict.points[0].reason, None);
}

#[test]
fn more_samples_are_not_asked_for_when_run_noise_dominates() {
    // 6 % slower, ±1 % samples, 1-run baseline: beyond tolerance but not
    // significant, and the run-to-run term is nearly all the variance.
    let points = vec![point("p", vec![spread(1000.0, 3)], spread(940.0, 3))];
    let verdict = judge(Metric::InputThroughput, &points, &Policy::default());
    assert_eq!(verdict.points[0].verdict, Verdict::Inconclusive);
    assert!(estimate_of(&verdict.points[0]).current_sample_share < 0.05);
    assert!(!needs_more_samples(&verdict.points[0]));
}

#[test]
fn holm_keeps_a_borderline_point_from_regressing() {
    // Identical samples within each run: the variance is the floor's
    // 2 × 0.02², df 50, and a 7.4 % drop has t ≈ 2.6: one-sided p ≈ 0.006,
    // below α = 0.01 alone but not after Holm's ×3 across three points.
    let flat = |level: f64| vec![level; 3];
    let borderline = point("ctx8000_cache50", vec![flat(1000.0)], flat(929.0));
    let same = |name: &str| point(name, vec![flat(1000.0)], flat(1000.0));
    let policy = Policy::default();

    let alone = judge(
        Metric::InputThroughput,
        std::slice::from_ref(&borderline),
        &policy,
    );
    assert_eq!(alone.points[0].verdict, Verdict::Regressed);

    let three = vec![same("ctx8000_cache0"), borderline, same("ctx8000_cache100")];
    let verdict = judge(Metric::InputThroughput, &three, &policy);
    let e = estimate_of(&verdict.points[1]);
    assert!(e.p_value < 0.01, "raw p {}", e.p_value);
    assert!(
        e.p_adjusted.unwrap() > 0.01,
        "adjusted p {:?}",
        e.p_adjusted
    );
    assert!((e.p_adjusted.unwrap() - 3.0 * e.p_value).abs() < 1e-12);
    assert_eq!(verdict.points[1].verdict, Verdict::Inconclusive);
    assert!(!verdict.fails_gate());
}

#[test]
fn curve_catches_a_broad_regression_no_single_point_flags() {
    // Every point 7.5 % slower: each alone is borderline (p ≈ 0.005 < α),
    // so with five points Holm clears all of them; their weighted mean is
    // one test at α and is flagged.
    let points = curve(&[0.925; 5], 1, 3);
    let verdict = judge(Metric::InputThroughput, &points, &Policy::default());
    assert!(
        verdict.regressed_points().is_empty(),
        "{:?}",
        verdicts(&verdict)
    );
    assert!(
        verdicts(&verdict)
            .iter()
            .all(|v| *v == Verdict::Inconclusive)
    );
    assert_eq!(verdict.curve.verdict, Verdict::Regressed);
    assert_eq!(verdict.curve.points, 5);
    assert!(verdict.fails_gate());
    let curve = verdict.curve.estimate.unwrap();
    let one_point = estimate_of(&verdict.points[0]);
    // The shared run noise is not divided away: averaging five points
    // shrinks only the sample-noise part of the standard error.
    assert!(curve.std_error > 0.95 * one_point.std_error);
    assert!(curve.std_error < one_point.std_error);
}

#[test]
fn curve_weights_follow_sample_noise() {
    // The noisy point (−20 %) barely moves the weighted mean.
    let noisy = |level: f64| vec![level * 1.2, level * 0.8, level];
    let mut points = curve(&[1.0, 1.0], 1, 3);
    points.push(point("noisy", vec![noisy(1000.0)], noisy(800.0)));
    let verdict = judge(Metric::InputThroughput, &points, &Policy::default());
    let curve = verdict.curve.estimate.unwrap();
    assert!(curve.change_pct > -1.0, "{}", curve.change_pct);
}

#[test]
fn mde_grows_with_the_run_noise_floor_and_shrinks_with_baseline_runs() {
    let mde = |runs: usize, floor: f64| {
        let policy = Policy {
            run_noise_floor: floor,
            ..Policy::default()
        };
        let verdict = judge(Metric::InputThroughput, &curve(&[1.0; 3], runs, 3), &policy);
        estimate_of(&verdict.points[0])
    };
    let base = mde(1, 0.02);
    assert!(mde(1, 0.04).mde_log > 1.8 * base.mde_log);
    assert!(mde(1, 0.01).mde_log < base.mde_log);
    let five = mde(5, 0.02);
    assert!(
        five.mde_log < 0.85 * base.mde_log,
        "{} vs {}",
        five.mde_log,
        base.mde_log
    );
    // The current run's own offset stays: no number of baseline runs brings
    // the MDE below the one-run term.
    assert!(mde(50, 0.02).mde_log > 0.02 * 3.0);
    // With the default 5 % tolerance, 2 % run noise and one baseline run a
    // 5 % regression is not reliably seen, and the verdict says so.
    assert!(base.tolerance_below_mde);
    assert!(base.mde_pct > 5.0);
}

#[test]
fn insufficient_data_is_refused_with_a_reason() {
    let policy = Policy::default();
    let cases = [
        (vec![vec![1000.0; 3]], vec![1000.0], "sample"),
        (vec![vec![1000.0; 3]], vec![1000.0, 1000.0], "at least 3"),
        (vec![], vec![1000.0; 3], "no samples"),
        (vec![vec![]], vec![1000.0; 3], "no samples"),
        (vec![vec![1000.0; 3]], vec![1000.0, f64::NAN, 1000.0], "NaN"),
        (vec![vec![1000.0, 0.0, 1000.0]], vec![1000.0; 3], "is 0"),
        (vec![vec![1000.0; 3]], vec![1000.0, -5.0, 1000.0], "is -5"),
        (vec![vec![1000.0; 3]], vec![f64::INFINITY; 3], "inf"),
    ];
    for (baseline, current, why) in cases {
        let points = vec![point("p", baseline.clone(), current.clone())];
        let verdict = judge(Metric::InputThroughput, &points, &policy);
        let p = &verdict.points[0];
        assert_eq!(p.verdict, Verdict::Insufficient, "{baseline:?} {current:?}");
        assert!(p.estimate.is_none());
        let reason = p.reason.as_deref().unwrap();
        assert!(reason.contains(why), "{reason:?} lacks {why:?}");
        assert_eq!(verdict.curve.verdict, Verdict::Insufficient);
    }
}

#[test]
fn insufficient_points_leave_the_holm_family() {
    let mut points = curve(&[0.929, 1.0], 1, 3);
    points[1].samples.current.truncate(1);
    let verdict = judge(Metric::InputThroughput, &points, &Policy::default());
    assert_eq!(verdict.points[1].verdict, Verdict::Insufficient);
    let e = estimate_of(&verdict.points[0]);
    assert_eq!(e.p_adjusted, Some(e.p_value));
    assert_eq!(verdict.curve.points, 1);
}

#[test]
fn ttft_higher_is_worse() {
    // TTFT 25 % higher at one point: a regression for latency, while the
    // same numbers read as throughput would be an improvement.
    let points = curve(&[1.0, 1.25, 1.0], 5, 3);
    for metric in [Metric::TtftP50, Metric::TtftP95] {
        let verdict = judge(metric, &points, &Policy::default());
        assert_eq!(verdict.direction, Direction::LowerIsBetter);
        assert_eq!(
            verdict.regressed_points(),
            vec!["ctx8000_cache25"],
            "{metric:?}"
        );
    }
    let as_throughput = judge(Metric::InputThroughput, &points, &Policy::default());
    assert_eq!(as_throughput.points[1].verdict, Verdict::Improved);
    let faster = judge(
        Metric::TtftP50,
        &curve(&[1.0, 0.75, 1.0], 5, 3),
        &Policy::default(),
    );
    assert_eq!(faster.points[1].verdict, Verdict::Improved);
}

#[test]
fn improvement_mirrors_regression() {
    let policy = Policy::default();
    let slower = judge(
        Metric::InputThroughput,
        &curve(&[1.0, 0.8, 1.0], 3, 3),
        &policy,
    );
    let faster = judge(
        Metric::InputThroughput,
        &curve(&[1.0, 1.25, 1.0], 3, 3),
        &policy,
    );
    assert_eq!(verdicts(&slower)[1], Verdict::Regressed);
    assert_eq!(verdicts(&faster)[1], Verdict::Improved);
    let (s, f) = (
        estimate_of(&slower.points[1]),
        estimate_of(&faster.points[1]),
    );
    // 0.8 and 1.25 are mirror images in log space: same |effect|, same p.
    assert!((s.log_ratio + f.log_ratio).abs() < 1e-12);
    assert!((s.p_value - f.p_value).abs() < 1e-12);
    assert!((s.p_adjusted.unwrap() - f.p_adjusted.unwrap()).abs() < 1e-12);
    assert!(!faster.fails_gate());
}

#[test]
fn error_rate_over_the_limit_is_an_error_not_a_slowdown() {
    let mut points = curve(&[1.0, 1.0, 1.0], 1, 3);
    points[2].health = Some(PointHealth {
        error_rate: 0.05,
        cache_hit_gap: None,
        ..PointHealth::default()
    });
    points[0].health = Some(PointHealth {
        error_rate: 0.0,
        cache_hit_gap: Some(0.25),
        ..PointHealth::default()
    });
    points[1].health = Some(PointHealth {
        error_rate: 0.001,
        cache_hit_gap: Some(0.01),
        ..PointHealth::default()
    });
    let verdict = judge(Metric::InputThroughput, &points, &Policy::default());
    assert_eq!(
        verdicts(&verdict),
        vec![Verdict::Error, Verdict::Pass, Verdict::Error]
    );
    assert!(
        verdict.points[2]
            .reason
            .as_deref()
            .unwrap()
            .contains("error rate 5.00 %")
    );
    assert!(
        verdict.points[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("cache hit")
    );
    assert!(verdict.fails_gate());
    assert!(verdict.regressed_points().is_empty());
    assert_eq!(verdict.curve.points, 1);
}

#[test]
fn an_error_rate_is_judged_with_its_count() {
    let health = |failed: u64, requests: u64| PointHealth {
        error_rate: failed as f64 / requests as f64,
        requests,
        failed,
        cache_hit_gap: None,
    };
    let mut points = curve(&[1.0, 1.0, 1.0], 1, 3);
    // One dropped request of ten is 10 %, and what a server failing 1 %
    // of requests shows one time in ten: reported, not an error.
    points[0].health = Some(health(1, 10));
    // Five of a hundred: P(X ≥ 5 | 100, 1 %) = 0.0034, beyond chance.
    points[1].health = Some(health(5, 100));
    // Three of a hundred: P(X ≥ 3 | 100, 1 %) = 0.079, chance.
    points[2].health = Some(health(3, 100));
    let verdict = judge(Metric::InputThroughput, &points, &Policy::default());
    assert_eq!(
        verdicts(&verdict),
        vec![Verdict::Pass, Verdict::Error, Verdict::Pass]
    );
    let reason = verdict.points[1].reason.as_deref().unwrap();
    assert!(
        reason.contains("5 of 100 requests failed (5.0 %), more than the 4 that chance explains"),
        "{reason}"
    );
}

#[test]
fn invalid_policy_is_refused() {
    let points = curve(&[1.0], 1, 3);
    for policy in [
        Policy {
            run_noise_floor: 0.0,
            ..Policy::default()
        },
        Policy {
            confidence: 1.0,
            ..Policy::default()
        },
        Policy {
            run_noise_floor_df: f64::INFINITY,
            ..Policy::default()
        },
    ] {
        assert!(judge_curve(Metric::InputThroughput, &points, &policy).is_err());
    }
}

#[test]
fn verdict_serializes_with_lowercase_names() {
    let verdict = judge(
        Metric::TtftP95,
        &curve(&[1.0, 0.5], 1, 3),
        &Policy::default(),
    );
    let json = serde_json::to_value(&verdict).unwrap();
    assert_eq!(json["metric"], "ttft_p95");
    assert_eq!(json["direction"], "lower_is_better");
    assert_eq!(json["points"][0]["verdict"], "pass");
    assert_eq!(json["points"][1]["verdict"], "improved");
    assert_eq!(json["points"][0]["estimate"]["run_noise_source"], "floor");
    assert_eq!(json["points"][0]["tolerance_pct"], 15.0);
    assert_eq!(json["curve"]["tolerance_pct"], 15.0);
    let back: CurveVerdict = serde_json::from_value(json).unwrap();
    assert_eq!(back, verdict);
    for (v, name) in [
        (Verdict::Insufficient, "\"insufficient\""),
        (Verdict::Inconclusive, "\"inconclusive\""),
        (Verdict::Regressed, "\"regressed\""),
        (Verdict::Error, "\"error\""),
    ] {
        assert_eq!(serde_json::to_string(&v).unwrap(), name);
    }
}

#[test]
fn the_mde_floor_and_the_runs_that_bring_it_under_a_tolerance() {
    // α = 1 % split over 3 points: z(0.99667) = 2.71305, z(0.8) = 0.84162.
    let alpha = 0.01 / 3.0;
    let z = 2.713_052 + 0.841_621;
    let floor = mde_floor(0.02, 5, alpha);
    assert!((floor - z * 0.02 * 1.2_f64.sqrt()).abs() < 1e-5, "{floor}");
    // 10 %: one run gives z·σ·√2 = 10.05 % > ln 1.1, two give 8.71 %.
    assert_eq!(runs_for_tolerance(0.02, alpha, 0.10_f64.ln_1p()), Some(2));
    assert!(mde_floor(0.02, 1, alpha) > 0.10_f64.ln_1p());
    assert!(mde_floor(0.02, 2, alpha) < 0.10_f64.ln_1p());
    // 5 % is below z·σ = 7.1 %: no number of runs.
    assert_eq!(runs_for_tolerance(0.02, alpha, 0.05_f64.ln_1p()), None);
}
