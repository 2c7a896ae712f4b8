//! Monte-Carlo of the verdict rule (`cacherate::analysis`): how often a gate
//! fails when nothing changed (false alarms, A/A) and how often it catches
//! a uniform slowdown, for baselines of 1, 3 and 5 runs, 3, 5 and 10
//! samples a point, at 95 % and 99 % confidence.
//!
//! `cargo bench --bench verdict_mc` (add `-- --gates N --seed S` to change
//! the number of simulated gates per cell or the seed). Deterministic for a
//! given seed and gate count, whatever the number of threads.
//!
//! The noise model, in log space: every run (each baseline run and the
//! current run) draws one offset u ~ N(0, σ_run = 2 %) that moves all
//! points and all metrics of that run together (throughput × e^u, TTFT
//! × e^−u: a slow run is slow everywhere); every sample of every point and
//! metric has its own N(0, σ_sample = 1 %) noise. A slowdown s multiplies
//! the current run's throughput by 1 − s and its TTFT by 1 / (1 − s). A
//! gate has 3 points and the 4 metrics; it fails when any point of any
//! metric is `regressed` or `error`, or a curve is `regressed`
//! (`CurveVerdict::fails_gate`). Extra samples for inconclusive points are
//! not simulated: the "inconclusive" column says how often a gate would
//! have asked for some.
//!
//! Three more tables: a cold start (with probability 1/2 the first sample of
//! a point in a run is 10 % slow, as when a phase is measured before the
//! server has warmed up), and run noise larger than the policy's 2 % floor
//! (what happens when the floor is set too low), and input throughput
//! judged alone (to set beside figures quoted per metric).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cacherate::analysis::{
    Metric, MetricSamples, PointSamples, Policy, Verdict, judge_curve, needs_more_samples,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

const POINTS: usize = 3;
const SLOWDOWNS: [f64; 4] = [0.02, 0.05, 0.10, 0.20];
const RUNS: [usize; 3] = [1, 3, 5];
const SAMPLES: [usize; 3] = [3, 5, 10];
const CONFIDENCES: [f64; 2] = [0.95, 0.99];
/// Gates per chunk: the unit of work and of seeding.
const CHUNK: usize = 500;

#[derive(Clone, Copy)]
struct Noise {
    run_sd: f64,
    sample_sd: f64,
    /// Probability that the first sample of a point in a run is slow, and
    /// by how much.
    cold_start: Option<(f64, f64)>,
}

const NOMINAL: Noise = Noise {
    run_sd: 0.02,
    sample_sd: 0.01,
    cold_start: None,
};

#[derive(Clone, Copy)]
struct Cell {
    runs: usize,
    samples: usize,
    slowdown: f64,
    noise: Noise,
    /// The metrics the gate judges.
    metrics: &'static [Metric],
}

/// How many simulated gates failed, and how many (not failing) had an
/// inconclusive point that would ask for more samples.
#[derive(Default, Clone, Copy)]
struct Tally {
    gates: usize,
    failed: usize,
    failed_by_curve_only: usize,
    inconclusive: usize,
    more_samples: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.gates += other.gates;
        self.failed += other.failed;
        self.failed_by_curve_only += other.failed_by_curve_only;
        self.inconclusive += other.inconclusive;
        self.more_samples += other.more_samples;
    }

    fn pct(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.gates as f64
    }
}

/// Level of a metric at a point (any positive values do: the rule works
/// on log ratios).
fn level(metric: Metric, point: usize) -> f64 {
    let p = (point + 1) as f64;
    match metric {
        Metric::InputThroughput => 20_000.0 * p,
        Metric::OutputThroughput => 800.0 * p,
        Metric::TtftP50 => 0.15 * p,
        Metric::TtftP95 => 0.4 * p,
    }
}

/// One run's samples: [metric][point][sample].
fn simulate_run(
    rng: &mut StdRng,
    noise: &Noise,
    samples: usize,
    slowdown: f64,
) -> Vec<Vec<Vec<f64>>> {
    let standard = Normal::new(0.0, 1.0).expect("valid normal");
    let speed = (noise.run_sd * standard.sample(rng)).exp() * (1.0 - slowdown);
    let cold: Vec<f64> = (0..POINTS)
        .map(|_| match noise.cold_start {
            Some((probability, slow)) if rand::Rng::random_bool(rng, probability) => 1.0 - slow,
            _ => 1.0,
        })
        .collect();
    Metric::ALL
        .iter()
        .map(|&metric| {
            (0..POINTS)
                .map(|point| {
                    (0..samples)
                        .map(|i| {
                            let mut factor = speed;
                            if i == 0 {
                                factor *= cold[point];
                            }
                            if metric.direction() == cacherate::analysis::Direction::LowerIsBetter {
                                factor = 1.0 / factor;
                            }
                            level(metric, point)
                                * factor
                                * (noise.sample_sd * standard.sample(rng)).exp()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// One gate's curves: for each metric, its points' samples.
fn simulate_gate(rng: &mut StdRng, cell: &Cell) -> Vec<Vec<PointSamples>> {
    let baseline: Vec<_> = (0..cell.runs)
        .map(|_| simulate_run(rng, &cell.noise, cell.samples, 0.0))
        .collect();
    let current = simulate_run(rng, &cell.noise, cell.samples, cell.slowdown);
    (0..Metric::ALL.len())
        .map(|m| {
            (0..POINTS)
                .map(|p| PointSamples {
                    point: format!("p{p}"),
                    samples: MetricSamples {
                        baseline_runs: baseline.iter().map(|run| run[m][p].clone()).collect(),
                        current: current[m][p].clone(),
                    },
                    health: None,
                })
                .collect()
        })
        .collect()
}

fn judge_gate(curves: &[Vec<PointSamples>], policy: &Policy, metrics: &[Metric]) -> Tally {
    let mut failed = false;
    let mut failed_by_points = false;
    let mut inconclusive = false;
    let mut more_samples = false;
    for (metric, points) in Metric::ALL.iter().zip(curves) {
        if !metrics.contains(metric) {
            continue;
        }
        let verdict = judge_curve(*metric, points, policy).expect("valid policy");
        failed |= verdict.fails_gate();
        failed_by_points |= verdict
            .points
            .iter()
            .any(|p| matches!(p.verdict, Verdict::Regressed | Verdict::Error));
        inconclusive |= verdict
            .points
            .iter()
            .any(|p| p.verdict == Verdict::Inconclusive);
        more_samples |= verdict.points.iter().any(needs_more_samples);
    }
    Tally {
        gates: 1,
        failed: failed as usize,
        failed_by_curve_only: (failed && !failed_by_points) as usize,
        inconclusive: (!failed && inconclusive) as usize,
        more_samples: (!failed && more_samples) as usize,
    }
}

/// Simulates `gates` gates of `cell` and judges each under every policy.
fn run_cell(
    cell: Cell,
    policies: &[Policy],
    gates: usize,
    seed: u64,
    threads: usize,
) -> Vec<Tally> {
    let chunks = gates.div_ceil(CHUNK);
    let next = AtomicUsize::new(0);
    let totals = Mutex::new(vec![Tally::default(); policies.len()]);
    let cell_seed = seed
        ^ (cell.runs as u64) << 8
        ^ (cell.samples as u64) << 16
        ^ ((cell.slowdown * 1000.0) as u64) << 24
        ^ ((cell.noise.run_sd * 1000.0) as u64) << 40
        ^ (cell.noise.cold_start.is_some() as u64) << 56;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut local = vec![Tally::default(); policies.len()];
                loop {
                    let chunk = next.fetch_add(1, Ordering::Relaxed);
                    if chunk >= chunks {
                        break;
                    }
                    let mut rng = StdRng::seed_from_u64(
                        cell_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ chunk as u64,
                    );
                    let n = CHUNK.min(gates - chunk * CHUNK);
                    for _ in 0..n {
                        let curves = simulate_gate(&mut rng, &cell);
                        for (tally, policy) in local.iter_mut().zip(policies) {
                            tally.add(judge_gate(&curves, policy, cell.metrics));
                        }
                    }
                }
                let mut totals = totals.lock().expect("no panics while holding the lock");
                for (total, tally) in totals.iter_mut().zip(local) {
                    total.add(tally);
                }
            });
        }
    });
    totals.into_inner().expect("threads done")
}

fn policy(confidence: f64) -> Policy {
    Policy {
        confidence,
        ..Policy::default()
    }
}

fn main() {
    let mut gates = 10_000;
    let mut seed = 20_240_601_u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--gates" => gates = args.next().and_then(|v| v.parse().ok()).expect("--gates N"),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).expect("--seed S"),
            // `cargo bench` passes --bench; other flags are not ours.
            _ => {}
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let policies: Vec<Policy> = CONFIDENCES.iter().map(|&c| policy(c)).collect();
    let started = Instant::now();
    let defaults = Policy::default();
    println!(
        "# Verdict Monte-Carlo: {gates} gates per cell, seed {seed}, {POINTS} points × 4 metrics a \
         gate\n\nRun noise σ {} % (shared by all points and metrics of a run), sample noise σ {} %, \
         policy floor {} % with {} df, tolerances {} % / {} % / {} % (throughput / TTFT p50 / TTFT \
         p95). Rates in % of gates; Monte-Carlo standard error ≈ 0.1 point at 1 %, 0.2 at 95 %.\n",
        NOMINAL.run_sd * 100.0,
        NOMINAL.sample_sd * 100.0,
        defaults.run_noise_floor * 100.0,
        defaults.run_noise_floor_df,
        defaults.tolerances.throughput * 100.0,
        defaults.tolerances.ttft_p50 * 100.0,
        defaults.tolerances.ttft_p95 * 100.0,
    );

    // Main grid: every cell simulated once and judged at both confidences.
    let mut grid = Vec::new();
    for runs in RUNS {
        for samples in SAMPLES {
            let mut row = Vec::new();
            for slowdown in std::iter::once(0.0).chain(SLOWDOWNS) {
                let cell = Cell {
                    runs,
                    samples,
                    slowdown,
                    noise: NOMINAL,
                    metrics: &Metric::ALL,
                };
                row.push(run_cell(cell, &policies, gates, seed, threads));
            }
            grid.push((runs, samples, row));
        }
    }
    for (c, confidence) in CONFIDENCES.iter().enumerate() {
        println!("## Confidence {} %\n", confidence * 100.0);
        println!(
            "| baseline runs | samples | false alarms (A/A) | A/A inconclusive | A/A would add samples \
             | caught 2 % | caught 5 % | caught 10 % | caught 20 % | 10 % caught by curve only |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (runs, samples, row) in &grid {
            let aa = row[0][c];
            let caught: Vec<String> = row[1..]
                .iter()
                .map(|t| format!("{:.1}", t[c].pct(t[c].failed)))
                .collect();
            let ten = row[3][c];
            println!(
                "| {runs} | {samples} | {:.2} | {:.1} | {:.1} | {} | {:.1} |",
                aa.pct(aa.failed),
                aa.pct(aa.inconclusive),
                aa.pct(aa.more_samples),
                caught.join(" | "),
                ten.pct(ten.failed_by_curve_only),
            );
        }
        println!();
    }

    // Cold start: the first sample of a point in a run 10 % slow half the time.
    let cold = Noise {
        cold_start: Some((0.5, 0.10)),
        ..NOMINAL
    };
    println!("## Cold start (first sample of a point 10 % slow with probability 1/2, every run)\n");
    println!(
        "| baseline runs | samples | false alarms 95 % | caught 10 % at 95 % | false alarms 99 % | \
         caught 10 % at 99 % | A/A would add samples (99 %) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for runs in RUNS {
        for samples in SAMPLES {
            let cell = |slowdown| Cell {
                runs,
                samples,
                slowdown,
                noise: cold,
                metrics: &Metric::ALL,
            };
            let aa = run_cell(cell(0.0), &policies, gates, seed, threads);
            let ten = run_cell(cell(0.10), &policies, gates, seed, threads);
            println!(
                "| {runs} | {samples} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1} |",
                aa[0].pct(aa[0].failed),
                ten[0].pct(ten[0].failed),
                aa[1].pct(aa[1].failed),
                ten[1].pct(ten[1].failed),
                aa[1].pct(aa[1].more_samples),
            );
        }
    }
    println!();

    // The floor set too low: true run noise above the policy's 2 %.
    println!("## Run noise above the floor (floor 2 %, 3 samples, A/A false alarms)\n");
    println!("| true run noise | baseline runs | false alarms 95 % | false alarms 99 % |");
    println!("|---:|---:|---:|---:|");
    for run_sd in [0.01, 0.03, 0.04] {
        for runs in RUNS {
            let cell = Cell {
                runs,
                samples: 3,
                slowdown: 0.0,
                noise: Noise { run_sd, ..NOMINAL },
                metrics: &Metric::ALL,
            };
            let aa = run_cell(cell, &policies, gates, seed, threads);
            println!(
                "| {} % | {runs} | {:.2} | {:.2} |",
                run_sd * 100.0,
                aa[0].pct(aa[0].failed),
                aa[1].pct(aa[1].failed),
            );
        }
    }
    // One metric alone, as a gate on input throughput only would judge it:
    // the same simulated runs as the main grid (same seeds), fewer tests.
    println!("\n## Input throughput alone (3 points and its curve, 3 samples)\n");
    println!(
        "| baseline runs | false alarms 95 % | caught 10 % at 95 % | false alarms 99 % | caught 10 % at 99 % |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for runs in RUNS {
        let cell = |slowdown| Cell {
            runs,
            samples: 3,
            slowdown,
            noise: NOMINAL,
            metrics: &[Metric::InputThroughput],
        };
        let aa = run_cell(cell(0.0), &policies, gates, seed, threads);
        let ten = run_cell(cell(0.10), &policies, gates, seed, threads);
        println!(
            "| {runs} | {:.2} | {:.1} | {:.2} | {:.1} |",
            aa[0].pct(aa[0].failed),
            ten[0].pct(ten[0].failed),
            aa[1].pct(aa[1].failed),
            ten[1].pct(ten[1].failed),
        );
    }
    println!(
        "\n{threads} thread(s), {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
