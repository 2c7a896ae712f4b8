//! The verdict statistics pinned to values computed outside the crate:
//! `scripts/reference/verdict_reference.py` (mpmath at 50 digits, SciPy's
//! Student t as a second opinion on every quantile and tail), whose output
//! is pasted at the end of this file. The inputs are the verdict fixture's
//! (`tests/verdict_fixture/mod.rs`, rebuilt here from the same formulas)
//! and a few constructed cases that reach the other branches of the model:
//! run noise estimated from the baseline's runs above the floor, and
//! single-sample baseline runs.
//!
//! Tolerances: arithmetic (log ratios, variances, degrees of freedom,
//! Holm) to 1e-12 relative, tails to 1e-10; what goes through a t quantile
//! to the accuracy `src/analysis/dist.rs` states for it at that df and p
//! ([`stated_accuracy`]), an interval's end through its half-width only.

use cacherate::analysis::{
    CurveVerdict, Effect, Estimate, Metric, MetricSamples, PointHealth, PointSamples, Policy,
    RunNoiseSource, Verdict, estimate_effect, holm_adjust, judge_curve, minimum_detectable_effect,
    satterthwaite_df, t_quantile, t_upper_tail,
};

const ARITHMETIC: f64 = 1e-12;
/// Relative accuracy of `t_upper_tail` (`statrs`' incomplete beta).
const TAIL: f64 = 1e-10;

#[track_caller]
fn close(what: &str, ours: f64, reference: f64, relative: f64) {
    let error = ((ours - reference) / reference).abs();
    assert!(
        error <= relative,
        "{what}: the crate gives {ours:.17e}, the reference {reference:.17e} \
         (relative error {error:.1e} > {relative:.0e})"
    );
}

// --- Inputs: the verdict fixture's formulas ----------------------------

/// Input tok/s, output tok/s, TTFT p50, TTFT p95 of a fixture point.
fn base_values(context: u64, rate: u32) -> [f64; 4] {
    let speedup = 1.0 + f64::from(rate) / 25.0;
    let input = 4000.0 * speedup * (8000.0 / context as f64).sqrt();
    let ttft = 0.2 * context as f64 / 2048.0 / speedup;
    [input, input / 30.0, ttft, ttft * 1.4]
}

/// The fixture's baseline: 5 runs of 3 samples, runs ±0.3 % apart,
/// samples ±0.4 %.
fn fixture_baseline(context: u64, rate: u32, metric: usize) -> Vec<Vec<f64>> {
    let base = base_values(context, rate)[metric];
    (0..5)
        .map(|r| {
            let run_offset = 1.0 + 0.003 * ((r % 3) as f64 - 1.0);
            (0..3)
                .map(|k| {
                    let wobble = 1.0 + 0.004 * (((r + k) % 3) as f64 - 1.0);
                    base * run_offset * wobble
                })
                .collect()
        })
        .collect()
}

/// The fixture's current run: 3 samples ±0.4 % (±13 % when `noisy`).
fn fixture_current(context: u64, rate: u32, metric: usize, factor: f64, noisy: bool) -> Vec<f64> {
    let base = base_values(context, rate)[metric];
    let spread = if noisy { 0.13 } else { 0.004 };
    (0..3)
        .map(|k| base * factor * (1.0 + spread * (k as f64 - 1.0)))
        .collect()
}

fn fixture_point(context: u64, rate: u32, metric: usize, factor: f64, noisy: bool) -> PointSamples {
    PointSamples {
        point: format!("ctx{context}_cache{rate}"),
        samples: MetricSamples {
            baseline_runs: fixture_baseline(context, rate, metric),
            current: fixture_current(context, rate, metric, factor, noisy),
        },
        health: Some(PointHealth::default()),
    }
}

/// The fixture's ctx2048 curve of `metric` (input or output tok/s), its
/// 0, 50 and 100 % points changed by `factors`.
fn fixture_curve_2048(metric: Metric, factors: [f64; 3]) -> CurveVerdict {
    let index = Metric::ALL.iter().position(|&m| m == metric).unwrap();
    let points: Vec<PointSamples> = [0, 50, 100]
        .into_iter()
        .zip(factors)
        .map(|(rate, factor)| fixture_point(2048, rate, index, factor, false))
        .collect();
    judge_curve(metric, &points, &Policy::default()).unwrap()
}

fn effect(baseline_runs: Vec<Vec<f64>>, current: Vec<f64>) -> Effect {
    estimate_effect(
        &MetricSamples {
            baseline_runs,
            current,
        },
        &Policy::default(),
    )
    .expect("enough samples")
}

/// The effect of one point and the estimate of it as the only point of a
/// curve of `metric`.
fn alone(metric: Metric, baseline_runs: Vec<Vec<f64>>, current: Vec<f64>) -> (Effect, Estimate) {
    let e = effect(baseline_runs.clone(), current.clone());
    let points = [PointSamples {
        point: "p".into(),
        samples: MetricSamples {
            baseline_runs,
            current,
        },
        health: None,
    }];
    let curve = judge_curve(metric, &points, &Policy::default()).unwrap();
    (e, curve.points[0].estimate.expect("an estimate"))
}

/// What the reference prints for one point and metric.
struct PointReference {
    log_ratio: f64,
    change_pct: f64,
    std_error: f64,
    df: f64,
    run_noise: f64,
    run_df: f64,
    t_099: f64,
    low_pct: f64,
    high_pct: f64,
    mde_pct: f64,
    p_value: f64,
}

/// An interval's end against the reference's percent change: in log
/// space, within what the quantile's stated accuracy moves the half-width.
#[track_caller]
fn close_bound(what: &str, ours_log: f64, reference_pct: f64, half_width: f64, accuracy: f64) {
    let reference_log = (reference_pct / 100.0).ln_1p();
    let allowed = accuracy * half_width + 1e-15;
    assert!(
        (ours_log - reference_log).abs() <= allowed,
        "{what}: the crate gives log {ours_log:.17e}, the reference {reference_log:.17e} \
         (allowed {allowed:.1e})"
    );
}

/// Checks an effect and the estimate `judge_curve` made of it against the
/// reference; the MDE's level is α / `family`, the curve's tested points.
fn check_point(name: &str, e: &Effect, verdict: &Estimate, family: f64, r: &PointReference) {
    let at = |what: &str| format!("{name}: {what}");
    close(&at("log ratio"), e.log_ratio, r.log_ratio, ARITHMETIC);
    close(&at("std error"), e.std_error(), r.std_error, ARITHMETIC);
    close(&at("Welch–Satterthwaite df"), e.df, r.df, ARITHMETIC);
    close(&at("run noise"), e.run_noise, r.run_noise, ARITHMETIC);
    close(&at("run-noise df"), e.run_df, r.run_df, ARITHMETIC);
    let at_99 = stated_accuracy(e.df, 0.99);
    close(
        &at("t quantile at 99 %"),
        t_quantile(0.99, e.df),
        r.t_099,
        at_99,
    );
    close(&at("change"), verdict.change_pct, r.change_pct, 1e-11);
    let half_width = r.t_099 * r.std_error;
    close_bound(
        &at("interval low"),
        verdict.low_log,
        r.low_pct,
        half_width,
        at_99,
    );
    close_bound(
        &at("interval high"),
        verdict.high_log,
        r.high_pct,
        half_width,
        at_99,
    );
    let mde_accuracy = stated_accuracy(e.df, 1.0 - 0.01 / family);
    close(&at("MDE"), verdict.mde_pct, r.mde_pct, mde_accuracy);
    close(&at("p"), verdict.p_value, r.p_value, TAIL);
    assert_eq!(
        verdict.df, e.df,
        "{name}: the estimate shows the effect's df"
    );
    assert_eq!(verdict.std_error, e.std_error());
}

#[test]
fn an_unchanged_fixture_point_matches_the_reference() {
    // ctx2048 input_tps of the fixture's mixed(): cache0 unchanged,
    // cache50 20 % slower, cache100 25 % faster: three tested points.
    let curve = fixture_curve_2048(Metric::InputThroughput, [1.0, 0.80, 1.25]);
    let e = effect(
        fixture_baseline(2048, 0, 0),
        fixture_current(2048, 0, 0, 1.0, false),
    );
    assert_eq!(e.run_noise_source, RunNoiseSource::Floor);
    let estimate = curve.points[0].estimate.unwrap();
    check_point(
        "ctx2048/cache0",
        &e,
        &estimate,
        3.0,
        &PointReference {
            log_ratio: 0.000_602_701_812_159_824_9,
            change_pct: 0.060_288_347_339_103_335,
            std_error: 0.022_054_479_744_509_366,
            df: 51.182_998_618_325_69,
            run_noise: 0.02,
            run_df: 50.0,
            t_099: 2.401_439_844_446_735,
            low_pct: -5.101_264_460_304_47,
            high_pct: 5.502_578_587_726_964,
            mde_pct: 8.447_070_054_742_12,
            p_value: 0.489_152_254_477_992_65,
        },
    );
    assert_eq!(curve.points[0].verdict, Verdict::Pass);
}

#[test]
fn a_noisy_fixture_point_at_two_and_a_third_df_matches_the_reference() {
    // ctx8000 input_tps of mixed(): cache0 7 % slower with samples ±13 %,
    // cache50 an error (out of the family), cache100 unchanged.
    let mut errored = fixture_point(8000, 50, 0, 1.0, false);
    errored.health = Some(PointHealth {
        error_rate: 0.2,
        cache_hit_gap: None,
        ..PointHealth::default()
    });
    let points = vec![
        fixture_point(8000, 0, 0, 0.93, true),
        errored,
        fixture_point(8000, 100, 0, 1.0, false),
    ];
    let curve = judge_curve(Metric::InputThroughput, &points, &Policy::default()).unwrap();
    assert_eq!(curve.points[1].verdict, Verdict::Error);
    let e = effect(
        fixture_baseline(8000, 0, 0),
        fixture_current(8000, 0, 0, 0.93, true),
    );
    check_point(
        "ctx8000/cache0",
        &e,
        &curve.points[0].estimate.unwrap(),
        2.0,
        &PointReference {
            log_ratio: -0.077_644_135_849_761_35,
            change_pct: -7.470_635_320_143_902,
            std_error: 0.078_656_039_861_121_9,
            df: 2.350_804_996_311_265,
            run_noise: 0.02,
            run_df: 50.0,
            t_099: 5.712_853_382_249_434,
            low_pct: -40.962_335_192_979_28,
            high_pct: 45.020_697_482_595_075,
            mde_pct: 99.617_385_649_508_1,
            p_value: 0.207_017_507_771_878_97,
        },
    );
    // Beyond the 5 % tolerance, nowhere near significant.
    assert_eq!(curve.points[0].verdict, Verdict::Inconclusive);
}

#[test]
fn run_noise_from_disagreeing_baseline_runs_matches_the_reference() {
    let baseline = vec![
        vec![100.0, 100.5, 99.5],
        vec![110.0, 110.5, 109.5],
        vec![90.0, 90.5, 89.5],
    ];
    let current = vec![100.0, 100.5, 99.5];
    let (e, estimate) = alone(Metric::InputThroughput, baseline, current);
    assert_eq!(e.run_noise_source, RunNoiseSource::BaselineRuns);
    check_point(
        "runs 10 % apart",
        &e,
        &estimate,
        1.0,
        &PointReference {
            log_ratio: 0.003_350_281_442_200_372_8,
            change_pct: 0.335_589_990_779_952_83,
            std_error: 0.115_906_942_134_371_87,
            df: 2.172_388_759_139_382_2,
            run_noise: 0.100_336_626_228_718_22,
            run_df: 2.168_779_457_721_038,
            t_099: 6.260_324_356_010_394,
            low_pct: -51.434_887_926_347_23,
            high_pct: 107.293_470_331_750_98,
            mde_pct: 133.072_645_865_967_2,
            p_value: 0.489_689_476_571_924_24,
        },
    );
}

#[test]
fn single_sample_baseline_runs_borrow_the_current_spread_as_the_reference_does() {
    let baseline = vec![vec![1000.0], vec![1012.0], vec![991.0]];
    let current = vec![990.0, 1003.0, 1011.0, 985.0];
    let (e, estimate) = alone(Metric::OutputThroughput, baseline, current);
    assert_eq!(e.baseline_sample_df, 3.0, "the current run's m − 1");
    check_point(
        "single-sample runs",
        &e,
        &estimate,
        1.0,
        &PointReference {
            log_ratio: -0.003_769_739_899_062_439,
            change_pct: -0.376_264_334_979_143_8,
            std_error: 0.024_824_924_211_021_164,
            df: 55.372_948_032_345_5,
            run_noise: 0.02,
            run_df: 50.0,
            t_099: 2.395_598_185_228_194,
            low_pct: -6.128_211_163_214_234,
            high_pct: 5.728_130_153_248_537,
            mde_pct: 8.385_710_237_065_595,
            p_value: 0.439_927_391_244_638_26,
        },
    );
}

#[test]
fn holm_p_values_and_the_curve_of_a_fixture_curve_match_the_reference() {
    // ctx2048 output_tps of mixed(): only cache50 changes (20 % slower).
    let curve = fixture_curve_2048(Metric::OutputThroughput, [1.0, 0.80, 1.0]);
    let reference = [
        (0.489_152_254_477_992_15, 1.0),
        (4.551_042_261_812_002e-14, 1.365_312_678_543_600_7e-13),
        (0.489_152_254_477_992_65, 1.0),
    ];
    for (point, (p, adjusted)) in curve.points.iter().zip(reference) {
        let e = point.estimate.unwrap();
        close(&format!("{} p", point.point), e.p_value, p, 1e-9);
        close(
            &format!("{} Holm-adjusted p", point.point),
            e.p_adjusted.unwrap(),
            adjusted,
            1e-9,
        );
    }
    assert_eq!(
        curve.points.iter().map(|p| p.verdict).collect::<Vec<_>>(),
        [Verdict::Pass, Verdict::Regressed, Verdict::Pass]
    );
    let c = curve.curve.estimate.unwrap();
    close(
        "curve change",
        c.change_pct,
        -7.112_256_583_783_219_5,
        1e-11,
    );
    close(
        "curve std error",
        c.std_error,
        0.021_957_535_356_538_948,
        ARITHMETIC,
    );
    close("curve df", c.df, 50.439_625_343_090_02, ARITHMETIC);
    let at_99 = stated_accuracy(c.df, 0.99);
    let half_width = t_quantile(0.99, c.df) * c.std_error;
    close_bound(
        "curve low",
        c.low_log,
        -11.885_513_449_620_01,
        half_width,
        at_99,
    );
    close_bound(
        "curve high",
        c.high_log,
        -2.080_427_240_261_602_4,
        half_width,
        at_99,
    );
    // The curve is one test at α: its MDE's level is α itself.
    close("curve MDE", c.mde_pct, 7.400_261_364_704_287, at_99);
    close("curve p", c.p_value, 0.000_745_656_527_259_769_2, TAIL);
    assert_eq!(curve.curve.verdict, Verdict::Regressed);
}

#[test]
fn holm_adjust_matches_the_reference() {
    let adjusted = holm_adjust(&[0.004, 0.03, 0.0101, 0.2, 0.0005, 0.03]);
    for (ours, reference) in adjusted.iter().zip([0.02, 0.09, 0.0404, 0.2, 0.003, 0.09]) {
        close("Holm", *ours, reference, ARITHMETIC);
    }
}

#[test]
fn satterthwaite_df_matches_the_reference() {
    close(
        "three terms",
        satterthwaite_df(&[(1e-4, 2.0), (4e-5, 14.0), (5.3333e-4, 50.0)]),
        41.966_948_592_480_39,
        ARITHMETIC,
    );
    close(
        "fractional df",
        satterthwaite_df(&[(0.3, 1.5), (0.1, 7.25)]),
        2.606_741_573_033_708,
        ARITHMETIC,
    );
}

#[test]
fn the_mde_is_the_sum_of_two_reference_quantiles_times_the_std_error() {
    // (t_{1-α/2}(ν) + t_{0.8}(ν)) · SE for the noisy fixture point.
    let (se, df) = (0.078_656_039_861_121_9, 2.350_804_996_311_265);
    let mde = minimum_detectable_effect(se, df, 0.005);
    close("MDE", 100.0 * mde.exp_m1(), 99.617_385_649_508_1, 1e-12);
}

/// (df, p, the p quantile of t(df)) from the reference.
const QUANTILES: &[(f64, f64, f64)] = &[
    (1.0, 0.8, 1.376_381_920_471_173_6),
    (1.0, 0.95, 6.313_751_514_675_043),
    (1.0, 0.99, 31.820_515_953_773_96),
    (1.0, 0.995, 63.656_741_162_871_58),
    (1.0, 0.999, 318.308_838_985_550_44),
    (1.0, 0.999_5, 636.619_248_768_719_7),
    (1.0, 0.999_9, 3_183.098_757_118_151),
    (1.0, 0.999_99, 31_830.988_607_907_093),
    (2.351, 0.8, 1.022_622_287_400_027_7),
    (2.351, 0.95, 2.643_360_344_445_58),
    (2.351, 0.99, 5.712_332_026_512_686),
    (2.351, 0.995, 7.764_519_808_977_736),
    (2.351, 0.999, 15.567_311_120_280_737),
    (2.351, 0.999_5, 20.940_049_506_786_29),
    (2.351, 0.999_9, 41.586_511_259_701_574),
    (2.351, 0.999_99, 110.789_493_205_098_44),
    (3.7, 0.8, 0.949_877_824_296_084_5),
    (3.7, 0.95, 2.182_493_803_914_602),
    (3.7, 0.99, 3.920_507_819_208_55),
    (3.7, 0.995, 4.869_252_253_227_829),
    (3.7, 0.999, 7.795_183_875_029_167),
    (3.7, 0.999_5, 9.474_240_137_124_372),
    (3.7, 0.999_9, 14.780_396_445_535_024),
    (3.7, 0.999_99, 27.675_897_978_814_68),
    (10.0, 0.8, 0.879_057_828_550_588_7),
    (10.0, 0.95, 1.812_461_122_811_676_5),
    (10.0, 0.99, 2.763_769_458_112_696),
    (10.0, 0.995, 3.169_272_672_616_951_3),
    (10.0, 0.999, 4.143_700_494_046_589),
    (10.0, 0.999_5, 4.586_893_858_702_636),
    (10.0, 0.999_9, 5.693_820_101_457_512),
    (10.0, 0.999_99, 7.526_954_019_339_651),
    (17.3, 0.8, 0.862_894_632_885_562),
    (17.3, 0.95, 1.737_872_838_582_026_8),
    (17.3, 0.99, 2.562_374_968_038_364_7),
    (17.3, 0.995, 2.892_027_641_127_294),
    (17.3, 0.999, 3.634_692_494_240_616_2),
    (17.3, 0.999_5, 3.951_469_419_260_875_2),
    (17.3, 0.999_9, 4.693_522_016_141_221),
    (17.3, 0.999_99, 5.797_495_724_116_433),
    (29.9, 0.8, 0.853_808_438_203_773_4),
    (29.9, 0.95, 1.697_441_707_238_452),
    (29.9, 0.99, 2.457_722_451_792_716),
    (29.9, 0.995, 2.750_614_269_193_997_4),
    (29.9, 0.999, 3.386_254_388_874_435),
    (29.9, 0.999_5, 3.647_259_085_690_303),
    (29.9, 0.999_9, 4.235_910_038_349_052),
    (29.9, 0.999_99, 5.057_071_137_914_108),
    (30.0, 0.8, 0.853_767_261_471_297_7),
    (30.0, 0.95, 1.697_260_886_593_957_8),
    (30.0, 0.99, 2.457_261_542_400_591_5),
    (30.0, 0.995, 2.749_995_653_567_225_4),
    (30.0, 0.999, 3.385_184_866_829_305),
    (30.0, 0.999_5, 3.645_958_635_042_022),
    (30.0, 0.999_9, 4.233_985_957_272_021),
    (30.0, 0.999_99, 5.054_032_421_446_494),
    (31.7, 0.8, 0.853_107_511_530_562_1),
    (31.7, 0.95, 1.694_366_640_865_702),
    (31.7, 0.99, 2.449_892_785_423_968_3),
    (31.7, 0.995, 2.740_110_657_265_477_6),
    (31.7, 0.999, 3.368_115_442_642_357_4),
    (31.7, 0.999_5, 3.625_214_606_370_446_5),
    (31.7, 0.999_9, 4.203_332_258_273_284),
    (31.7, 0.999_99, 5.005_708_052_376_063),
    (51.18, 0.8, 0.848_700_799_084_028_4),
    (51.18, 0.95, 1.675_175_957_361_117_8),
    (51.18, 0.99, 2.401_444_378_007_208),
    (51.18, 0.995, 2.675_358_347_098_435),
    (51.18, 0.999, 3.257_271_594_875_383_4),
    (51.18, 0.999_5, 3.491_019_962_725_758_3),
    (51.18, 0.999_9, 4.006_790_003_574_458),
    (51.18, 0.999_99, 4.699_838_135_631_488),
    (120.5, 0.8, 0.844_614_323_908_103_2),
    (120.5, 0.95, 1.657_597_386_387_203_6),
    (120.5, 0.99, 2.357_692_330_059_252),
    (120.5, 0.995, 2.617_245_970_983_195),
    (120.5, 0.999, 3.159_245_338_384_194_7),
    (120.5, 0.999_5, 3.373_101_915_418_303_5),
    (120.5, 0.999_9, 3.836_666_798_238_534),
    (120.5, 0.999_99, 4.440_804_193_661_535),
    (5_000.0, 0.8, 0.841_693_127_663_504_3),
    (5_000.0, 0.95, 1.645_158_437_596_971_4),
    (5_000.0, 0.99, 2.327_093_917_733_347_6),
    (5_000.0, 0.995, 2.576_812_966_556_281),
    (5_000.0, 0.999, 3.091_863_119_960_981_6),
    (5_000.0, 0.999_5, 3.292_473_723_370_851_4),
    (5_000.0, 0.999_9, 3.721_776_168_336_778),
    (5_000.0, 0.999_99, 4.268_986_270_337_225),
];

/// The accuracy `src/analysis/dist.rs` states for `t_quantile`. Below 30
/// df it inverts `statrs`' incomplete beta function: 1e-10 relative, which
/// is what a p written in decimal allows (0.99999 is not exact in binary,
/// and at 1 df the quantile moves by 1e-11 relative with its last bit).
/// From 30 df the Cornish–Fisher expansion, whose error grows with p and
/// falls as df⁻⁵ (largest at 30 df; the reference's table at its end).
fn stated_accuracy(df: f64, p: f64) -> f64 {
    let p = p.max(1.0 - p);
    if df < 30.0 {
        1e-10
    } else if p <= 0.99 {
        6e-8
    } else if p <= 0.999 {
        6e-7
    } else if p <= 0.9995 {
        1.1e-6
    } else if p <= 0.9999 {
        3e-6
    } else {
        1e-5
    }
}

#[test]
fn t_quantiles_at_fractional_df_match_the_reference_within_the_stated_accuracy() {
    for &(df, p, reference) in QUANTILES {
        close(
            &format!("t quantile p {p} df {df}"),
            t_quantile(p, df),
            reference,
            stated_accuracy(df, p),
        );
        close(
            &format!("lower t quantile p {} df {df}", 1.0 - p),
            -t_quantile(1.0 - p, df),
            reference,
            stated_accuracy(df, p),
        );
    }
}

#[test]
fn t_upper_tails_match_the_reference() {
    for (t, df, reference) in [
        (0.5, 2.351, 0.330_008_728_051_052_97),
        (2.4, 51.18, 0.010_035_429_470_207_826),
        (3.1, 4.5, 0.015_457_772_336_867_038),
        (5.0, 30.0, 1.164_834_273_350_389_8e-05),
        (8.0, 120.5, 4.326_849_161_900_108e-13),
    ] {
        close(
            &format!("P(T > {t}) at df {df}"),
            t_upper_tail(t, df),
            reference,
            1e-10,
        );
    }
}

// The output of scripts/reference/verdict_reference.py these values come
// from, as it printed it:
//
// mpmath 1.4.1, 50 digits; scipy 1.17.1
//
// ## fixture ctx2048/cache0 input_tps (unchanged)  (run noise from floor, MDE at alpha/3)
// log_ratio                          0.0006027018121598249
// change_pct                         0.060288347339103335
// std_error                          0.022054479744509366
// df                                 51.18299861832569
// run_noise                          0.02
// run_df                             50.0
// t_0.99(df)                         2.401439844446735
// low_pct                            -5.10126446030447
// high_pct                           5.502578587726964
// mde_pct                            8.44707005474212
// p_value                            0.48915225447799265
//
// ## fixture ctx8000/cache0 input_tps (-7 %, samples +-13 %)  (run noise from floor, MDE at alpha/2)
// log_ratio                          -0.07764413584976135
// change_pct                         -7.470635320143902
// std_error                          0.0786560398611219
// df                                 2.350804996311265
// run_noise                          0.02
// run_df                             50.0
// t_0.99(df)                         5.712853382249434
// low_pct                            -40.96233519297928
// high_pct                           45.020697482595075
// mde_pct                            99.6173856495081
// p_value                            0.20701750777187897
//
// ## three baseline runs 10 % apart (src/analysis/effect.rs)  (run noise from baseline_runs, MDE at alpha/1)
// log_ratio                          0.0033502814422003728
// change_pct                         0.33558999077995283
// std_error                          0.11590694213437187
// df                                 2.1723887591393822
// run_noise                          0.10033662622871822
// run_df                             2.168779457721038
// t_0.99(df)                         6.260324356010394
// low_pct                            -51.43488792634723
// high_pct                           107.29347033175098
// mde_pct                            133.0726458659672
// p_value                            0.48968947657192424
//
// ## single-sample baseline runs borrow the current spread  (run noise from floor, MDE at alpha/1)
// log_ratio                          -0.003769739899062439
// change_pct                         -0.3762643349791438
// std_error                          0.024824924211021164
// df                                 55.3729480323455
// run_noise                          0.02
// run_df                             50.0
// t_0.99(df)                         2.395598185228194
// low_pct                            -6.128211163214234
// high_pct                           5.728130153248537
// mde_pct                            8.385710237065595
// p_value                            0.43992739124463826
//
// ## fixture mixed() ctx2048 output_tps: points and Holm across the curve
// cache0 p_value                     0.48915225447799215
// cache0 p_adjusted                  1.0
// cache50 p_value                    4.551042261812002e-14
// cache50 p_adjusted                 1.3653126785436007e-13
// cache100 p_value                   0.48915225447799265
// cache100 p_adjusted                1.0
// curve change_pct                   -7.1122565837832195
// curve std_error                    0.021957535356538948
// curve df                           50.43962534309002
// curve low_pct                      -11.88551344962001
// curve high_pct                     -2.0804272402616024
// curve mde_pct                      7.400261364704287
// curve p_value                      0.0007456565272597692
//
// ## holm_adjust
// in       ['0.004', '0.03', '0.0101', '0.2', '0.0005', '0.03']
// adjusted ['0.02', '0.09', '0.0404', '0.2', '0.003', '0.09']
//
// ## satterthwaite_df
// [(0.0001, 2.0), (4e-05, 14.0), (0.00053333, 50.0)] 41.96694859248039
// [(0.3, 1.5), (0.1, 7.25)]          2.606741573033708
//
// ## t quantiles (df, p, value) and upper tails (t, df, P(T > t))
//     (1.0, 0.8, 1.3763819204711736),
//     (1.0, 0.95, 6.313751514675043),
//     (1.0, 0.99, 31.82051595377396),
//     (1.0, 0.995, 63.65674116287158),
//     (1.0, 0.999, 318.30883898555044),
//     (1.0, 0.9995, 636.6192487687197),
//     (1.0, 0.9999, 3183.098757118151),
//     (1.0, 0.99999, 31830.988607907093),
//     (2.351, 0.8, 1.0226222874000277),
//     (2.351, 0.95, 2.64336034444558),
//     (2.351, 0.99, 5.712332026512686),
//     (2.351, 0.995, 7.764519808977736),
//     (2.351, 0.999, 15.567311120280737),
//     (2.351, 0.9995, 20.94004950678629),
//     (2.351, 0.9999, 41.586511259701574),
//     (2.351, 0.99999, 110.78949320509844),
//     (3.7, 0.8, 0.9498778242960845),
//     (3.7, 0.95, 2.182493803914602),
//     (3.7, 0.99, 3.92050781920855),
//     (3.7, 0.995, 4.869252253227829),
//     (3.7, 0.999, 7.795183875029167),
//     (3.7, 0.9995, 9.474240137124372),
//     (3.7, 0.9999, 14.780396445535024),
//     (3.7, 0.99999, 27.67589797881468),
//     (10.0, 0.8, 0.8790578285505887),
//     (10.0, 0.95, 1.8124611228116765),
//     (10.0, 0.99, 2.763769458112696),
//     (10.0, 0.995, 3.1692726726169513),
//     (10.0, 0.999, 4.143700494046589),
//     (10.0, 0.9995, 4.586893858702636),
//     (10.0, 0.9999, 5.693820101457512),
//     (10.0, 0.99999, 7.526954019339651),
//     (17.3, 0.8, 0.862894632885562),
//     (17.3, 0.95, 1.7378728385820268),
//     (17.3, 0.99, 2.5623749680383647),
//     (17.3, 0.995, 2.892027641127294),
//     (17.3, 0.999, 3.6346924942406162),
//     (17.3, 0.9995, 3.9514694192608752),
//     (17.3, 0.9999, 4.693522016141221),
//     (17.3, 0.99999, 5.797495724116433),
//     (29.9, 0.8, 0.8538084382037734),
//     (29.9, 0.95, 1.697441707238452),
//     (29.9, 0.99, 2.457722451792716),
//     (29.9, 0.995, 2.7506142691939974),
//     (29.9, 0.999, 3.386254388874435),
//     (29.9, 0.9995, 3.647259085690303),
//     (29.9, 0.9999, 4.235910038349052),
//     (29.9, 0.99999, 5.057071137914108),
//     (30.0, 0.8, 0.8537672614712977),
//     (30.0, 0.95, 1.6972608865939578),
//     (30.0, 0.99, 2.4572615424005915),
//     (30.0, 0.995, 2.7499956535672254),
//     (30.0, 0.999, 3.385184866829305),
//     (30.0, 0.9995, 3.645958635042022),
//     (30.0, 0.9999, 4.233985957272021),
//     (30.0, 0.99999, 5.054032421446494),
//     (31.7, 0.8, 0.8531075115305621),
//     (31.7, 0.95, 1.694366640865702),
//     (31.7, 0.99, 2.4498927854239683),
//     (31.7, 0.995, 2.7401106572654776),
//     (31.7, 0.999, 3.3681154426423574),
//     (31.7, 0.9995, 3.6252146063704465),
//     (31.7, 0.9999, 4.203332258273284),
//     (31.7, 0.99999, 5.005708052376063),
//     (51.18, 0.8, 0.8487007990840284),
//     (51.18, 0.95, 1.6751759573611178),
//     (51.18, 0.99, 2.401444378007208),
//     (51.18, 0.995, 2.675358347098435),
//     (51.18, 0.999, 3.2572715948753834),
//     (51.18, 0.9995, 3.4910199627257583),
//     (51.18, 0.9999, 4.006790003574458),
//     (51.18, 0.99999, 4.699838135631488),
//     (120.5, 0.8, 0.8446143239081032),
//     (120.5, 0.95, 1.6575973863872036),
//     (120.5, 0.99, 2.357692330059252),
//     (120.5, 0.995, 2.617245970983195),
//     (120.5, 0.999, 3.1592453383841947),
//     (120.5, 0.9995, 3.3731019154183035),
//     (120.5, 0.9999, 3.836666798238534),
//     (120.5, 0.99999, 4.440804193661535),
//     (5000.0, 0.8, 0.8416931276635043),
//     (5000.0, 0.95, 1.6451584375969714),
//     (5000.0, 0.99, 2.3270939177333476),
//     (5000.0, 0.995, 2.576812966556281),
//     (5000.0, 0.999, 3.0918631199609816),
//     (5000.0, 0.9995, 3.2924737233708514),
//     (5000.0, 0.9999, 3.721776168336778),
//     (5000.0, 0.99999, 4.268986270337225),
//     (0.5, 2.351, 0.33000872805105297),
//     (2.4, 51.18, 0.010035429470207826),
//     (3.1, 4.5, 0.015457772336867038),
//     (5.0, 30.0, 1.1648342733503898e-05),
//     (8.0, 120.5, 4.326849161900108e-13),
//
// ## Cornish-Fisher relative error against the quantile (rows df, columns p)
// df           0.8     0.95     0.99    0.999   0.9995   0.9999  0.99999
// 30       1.9e-09  4.9e-09  5.7e-08  5.9e-07  1.0e-06  2.9e-06  9.5e-06
// 31.7     1.5e-09  3.7e-09  4.3e-08  4.5e-07  7.7e-07  2.2e-06  7.3e-06
// 40       4.5e-10  1.2e-09  1.4e-08  1.4e-07  2.4e-07  7.0e-07  2.3e-06
// 51.18    1.3e-10  3.4e-10  4.0e-09  4.2e-08  7.2e-08  2.1e-07  6.9e-07
// 100      4.6e-12  1.2e-11  1.4e-10  1.5e-09  2.6e-09  7.5e-09  2.5e-08
// 1000     2.9e-17  1.1e-16  1.4e-15  1.5e-14  2.6e-14  7.6e-14  2.6e-13
