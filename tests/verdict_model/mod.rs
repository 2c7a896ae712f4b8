//! The Monte-Carlo model of a gate, shared by `tests/verdict_mc.rs` (a
//! size that runs in seconds, so a change to the rule that raises false
//! alarms fails CI) and `benches/verdict_mc.rs` (the README's tables).
//!
//! The noise model, in log space: every run (each baseline run and the
//! current run) draws one offset u ~ N(0, σ_run) that moves all points and
//! all metrics of that run together (throughput × e^u, TTFT × e^−u: a slow
//! run is slow everywhere); every sample of every point and metric has its
//! own N(0, σ_sample) noise. A slowdown s multiplies the current run's
//! throughput by 1 − s and its TTFT by 1 / (1 − s). A gate has 3 points and
//! the 4 metrics; it fails when any point of a judged metric is `regressed`
//! or `error`, or a curve is `regressed` (`CurveVerdict::fails_gate`).
//!
//! The gate's second look is modelled as `cacherate gate` takes it
//! (`src/commands/gate.rs`): after the first verdict, every point where a
//! judged metric is inconclusive and [`needs_more_samples`] says more
//! samples could decide it gets up to [`MAX_EXTRA_SAMPLES`] more samples of
//! the same current run (its offset, fresh sample noise), once; then every
//! curve is judged again and that verdict is the gate's.

#![allow(dead_code, reason = "the test and the bench use different parts")]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cacherate::analysis::{
    Direction, Metric, MetricSamples, PointSamples, Policy, Verdict, judge_curve,
    needs_more_samples,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

pub const POINTS: usize = 3;
/// `--max-extra-samples`' default (`src/commands/gate.rs`).
pub const MAX_EXTRA_SAMPLES: usize = 3;
/// Gates per chunk: the unit of work and of seeding.
const CHUNK: usize = 250;

#[derive(Clone, Copy, Debug)]
pub struct Noise {
    pub run_sd: f64,
    pub sample_sd: f64,
    /// Probability that the first sample of a point in a run is slow, and
    /// by how much.
    pub cold_start: Option<(f64, f64)>,
}

/// 2 % run-to-run noise, 1 % sample noise: the README's model.
pub const NOMINAL: Noise = Noise {
    run_sd: 0.02,
    sample_sd: 0.01,
    cold_start: None,
};

#[derive(Clone, Copy, Debug)]
pub struct Cell {
    pub runs: usize,
    pub samples: usize,
    pub slowdown: f64,
    pub noise: Noise,
    /// The metrics the gate judges (`--gate-metrics`).
    pub metrics: &'static [Metric],
}

impl Cell {
    /// The defaults: a 5-run baseline, 3 samples a point, every metric.
    pub fn defaults(slowdown: f64) -> Cell {
        Cell {
            runs: 5,
            samples: 3,
            slowdown,
            noise: NOMINAL,
            metrics: &Metric::ALL,
        }
    }
}

/// How many simulated gates did what.
#[derive(Default, Clone, Copy, Debug)]
pub struct Tally {
    pub gates: usize,
    /// Gates whose first verdict failed (no extra samples).
    pub failed_first: usize,
    /// Gates that failed as `cacherate gate` decides: after the second
    /// look where one was taken.
    pub failed: usize,
    /// Failed gates with no point regressed or in error: a curve did it.
    pub failed_by_curve_only: usize,
    /// Gates whose first verdict did not fail but had an inconclusive point.
    pub inconclusive: usize,
    /// Gates that took the second look.
    pub second_looks: usize,
    /// Gates the second look made fail, and gates it made pass.
    pub failed_by_second_look: usize,
    pub passed_by_second_look: usize,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.gates += other.gates;
        self.failed_first += other.failed_first;
        self.failed += other.failed;
        self.failed_by_curve_only += other.failed_by_curve_only;
        self.inconclusive += other.inconclusive;
        self.second_looks += other.second_looks;
        self.failed_by_second_look += other.failed_by_second_look;
        self.passed_by_second_look += other.passed_by_second_look;
    }

    pub fn pct(&self, n: usize) -> f64 {
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

/// One run's samples: [metric][point][sample], `samples` of each.
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
            Some((probability, slow)) if rng.random_bool(probability) => 1.0 - slow,
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
                            if metric.direction() == Direction::LowerIsBetter {
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

/// One simulated gate: the baseline's runs and the current run, whose
/// samples past `cell.samples` are the extra ones a second look measures.
pub struct SimulatedGate {
    baseline: Vec<Vec<Vec<Vec<f64>>>>,
    current: Vec<Vec<Vec<f64>>>,
    samples: usize,
}

impl SimulatedGate {
    pub fn draw(rng: &mut StdRng, cell: &Cell) -> SimulatedGate {
        let baseline = (0..cell.runs)
            .map(|_| simulate_run(rng, &cell.noise, cell.samples, 0.0))
            .collect();
        let current = simulate_run(
            rng,
            &cell.noise,
            cell.samples + MAX_EXTRA_SAMPLES,
            cell.slowdown,
        );
        SimulatedGate {
            baseline,
            current,
            samples: cell.samples,
        }
    }

    /// Each metric's curve, the current run with its extra samples at the
    /// points `extended` marks.
    fn curves(&self, extended: &[bool; POINTS]) -> Vec<Vec<PointSamples>> {
        (0..Metric::ALL.len())
            .map(|m| {
                (0..POINTS)
                    .map(|p| {
                        let taken = if extended[p] {
                            self.samples + MAX_EXTRA_SAMPLES
                        } else {
                            self.samples
                        };
                        PointSamples {
                            point: format!("p{p}"),
                            samples: MetricSamples {
                                baseline_runs: self
                                    .baseline
                                    .iter()
                                    .map(|run| run[m][p].clone())
                                    .collect(),
                                current: self.current[m][p][..taken].to_vec(),
                            },
                            health: None,
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// One verdict over a gate's judged metrics.
#[derive(Clone, Copy)]
struct Look {
    failed: bool,
    failed_by_points: bool,
    inconclusive: bool,
    /// The points the gate would add samples at.
    needs_more: [bool; POINTS],
}

fn look(curves: &[Vec<PointSamples>], policy: &Policy, metrics: &[Metric]) -> Look {
    let mut out = Look {
        failed: false,
        failed_by_points: false,
        inconclusive: false,
        needs_more: [false; POINTS],
    };
    for (metric, points) in Metric::ALL.iter().zip(curves) {
        if !metrics.contains(metric) {
            continue;
        }
        let verdict = judge_curve(*metric, points, policy).expect("valid policy");
        out.failed |= verdict.fails_gate();
        for (p, point) in verdict.points.iter().enumerate() {
            out.failed_by_points |= matches!(point.verdict, Verdict::Regressed | Verdict::Error);
            out.inconclusive |= point.verdict == Verdict::Inconclusive;
            out.needs_more[p] |= needs_more_samples(point);
        }
    }
    out
}

/// The gate's outcome under `policy`: the first verdict, and the second
/// after extra samples where the first asked for them.
pub fn judge_gate(gate: &SimulatedGate, policy: &Policy, metrics: &[Metric]) -> Tally {
    let first = look(&gate.curves(&[false; POINTS]), policy, metrics);
    let second_look = first.needs_more.iter().any(|&more| more);
    let last = if second_look {
        look(&gate.curves(&first.needs_more), policy, metrics)
    } else {
        first
    };
    Tally {
        gates: 1,
        failed_first: first.failed as usize,
        failed: last.failed as usize,
        failed_by_curve_only: (last.failed && !last.failed_by_points) as usize,
        inconclusive: (!first.failed && first.inconclusive) as usize,
        second_looks: second_look as usize,
        failed_by_second_look: (last.failed && !first.failed) as usize,
        passed_by_second_look: (first.failed && !last.failed) as usize,
    }
}

/// Simulates `gates` gates of `cell` on `threads` threads and judges each
/// under every policy. Deterministic for a seed and a gate count, whatever
/// the number of threads.
pub fn run_cell(
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
        for _ in 0..threads.max(1) {
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
                    for _ in 0..CHUNK.min(gates - chunk * CHUNK) {
                        let gate = SimulatedGate::draw(&mut rng, &cell);
                        for (tally, policy) in local.iter_mut().zip(policies) {
                            tally.add(judge_gate(&gate, policy, cell.metrics));
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

/// The one-sided Clopper–Pearson bounds (Clopper & Pearson 1934,
/// Biometrika 26:404) at `confidence` of a rate seen `k` times in `n`:
/// (lower, upper), as fractions.
pub fn clopper_pearson(k: usize, n: usize, confidence: f64) -> (f64, f64) {
    use statrs::function::beta::inv_beta_reg;
    let (k, n) = (k as f64, n as f64);
    let lower = if k == 0.0 {
        0.0
    } else {
        inv_beta_reg(k, n - k + 1.0, 1.0 - confidence)
    };
    let upper = if k == n {
        1.0
    } else {
        inv_beta_reg(k + 1.0, n - k, confidence)
    };
    (lower, upper)
}

/// Which one-sided bound a rate is quoted with: the upper for a rate that
/// must stay low (false alarms), the lower for one that must stay high.
#[derive(Clone, Copy, Debug)]
pub enum Bound {
    Upper,
    Lower,
}

/// "k of n = r % (95 % Clopper–Pearson upper bound u %)", the way rates
/// are quoted; the bound as a fraction beside it.
pub fn quote(k: usize, n: usize, bound: Bound) -> (String, f64) {
    let (lower, upper) = clopper_pearson(k, n, 0.95);
    let (name, value) = match bound {
        Bound::Upper => ("upper", upper),
        Bound::Lower => ("lower", lower),
    };
    let text = format!(
        "{k} of {n} = {:.2} % (95 % Clopper–Pearson {name} bound {:.2} %)",
        100.0 * k as f64 / n as f64,
        100.0 * value
    );
    (text, value)
}
