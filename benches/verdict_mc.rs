//! Monte-Carlo of the verdict rule (`cacherate::analysis`) as `cacherate
//! gate` applies it, second look included: how often a gate fails when
//! nothing changed (false alarms, A/A) and how often it catches a uniform
//! slowdown, for baselines of 1, 3 and 5 runs, 3, 5 and 10 samples a point,
//! at 95 % and 99 % confidence; what the second look (extra samples at
//! inconclusive points) changes; and the counts with their Clopper–Pearson
//! bounds behind every rate the README quotes.
//!
//! `cargo bench --bench verdict_mc` (add `-- --gates N --seed S` to change
//! the number of simulated gates per cell or the seed). Deterministic for a
//! given seed and gate count, whatever the number of threads.
//!
//! The model (`tests/verdict_model/mod.rs`, which `tests/verdict_mc.rs`
//! runs at a CI-sized count): run noise 2 % shared by every point and
//! metric of a run, sample noise 1 %, 3 points × 4 metrics a gate.
//!
//! More tables: a cold start (with probability 1/2 the first sample of a
//! point in a run is 10 % slow, as when a phase is measured before the
//! server has warmed up), run noise larger than the policy's 2 % floor
//! (what happens when the floor is set too low), input throughput judged
//! alone (to set beside figures quoted per metric), and the second look
//! under noisier samples, where it is taken more often.

#[path = "../tests/verdict_model/mod.rs"]
mod verdict_model;

use std::time::Instant;

use cacherate::analysis::{Metric, Policy};
use verdict_model::{Cell, NOMINAL, Noise, POINTS, Tally, clopper_pearson, run_cell};

const SLOWDOWNS: [f64; 4] = [0.02, 0.05, 0.10, 0.20];
const RUNS: [usize; 3] = [1, 3, 5];
const SAMPLES: [usize; 3] = [3, 5, 10];
const CONFIDENCES: [f64; 2] = [0.95, 0.99];

/// "k (l–u %)": a count with its two-sided 95 % Clopper–Pearson interval.
fn counted(tally: &Tally, k: usize) -> String {
    let (lower, upper) = clopper_pearson(k, tally.gates, 0.975);
    format!(
        "{:.2} ({k}; {:.2}–{:.2})",
        tally.pct(k),
        100.0 * lower,
        100.0 * upper
    )
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
         gate, the gate's second look included\n\nRun noise σ {} % (shared by all points and \
         metrics of a run), sample noise σ {} %, policy floor {} % with {} df, tolerances {} % / \
         {} % / {} % (throughput / TTFT p50 / TTFT p95). Rates in % of gates; in brackets the \
         count and the two-sided 95 % Clopper–Pearson interval.\n",
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
            "| baseline runs | samples | false alarms (A/A) | A/A, first look alone | A/A \
             inconclusive | A/A second looks | caught 2 % | caught 5 % | caught 10 % | caught 20 % \
             | 10 % caught by curve only |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (runs, samples, row) in &grid {
            let aa = row[0][c];
            let caught: Vec<String> = row[1..]
                .iter()
                .map(|t| counted(&t[c], t[c].failed))
                .collect();
            let ten = row[3][c];
            println!(
                "| {runs} | {samples} | {} | {} | {:.1} | {:.1} | {} | {:.1} |",
                counted(&aa, aa.failed),
                counted(&aa, aa.failed_first),
                aa.pct(aa.inconclusive),
                aa.pct(aa.second_looks),
                caught.join(" | "),
                ten.pct(ten.failed_by_curve_only),
            );
        }
        println!();
    }

    // What the second look changes, where the rule has to decide: A/A, at
    // the tolerance and at 10 %, at the defaults, under noisier samples;
    // ten times the gates, since what it changes is rare.
    let look_gates = 10 * gates;
    println!(
        "## The second look (99 %, 5 baseline runs, 3 samples + up to 3 extra, {look_gates} \
         gates a cell)\n"
    );
    println!(
        "| sample noise | slowdown | second looks | gate failed | first look alone failed | made \
         fail by the second look | made pass by it |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let at_99 = [policy(0.99)];
    for sample_sd in [0.01, 0.03, 0.05] {
        for slowdown in [0.0, 0.05, 0.10] {
            let cell = Cell {
                noise: Noise {
                    sample_sd,
                    ..NOMINAL
                },
                ..Cell::defaults(slowdown)
            };
            let t = run_cell(cell, &at_99, look_gates, seed, threads)[0];
            println!(
                "| {} % | {} % | {:.1} | {} | {} | {} | {} |",
                sample_sd * 100.0,
                slowdown * 100.0,
                t.pct(t.second_looks),
                counted(&t, t.failed),
                counted(&t, t.failed_first),
                counted(&t, t.failed_by_second_look),
                counted(&t, t.passed_by_second_look),
            );
        }
    }
    println!();

    // Cold start: the first sample of a point in a run 10 % slow half the time.
    let cold = Noise {
        cold_start: Some((0.5, 0.10)),
        ..NOMINAL
    };
    println!("## Cold start (first sample of a point 10 % slow with probability 1/2, every run)\n");
    println!(
        "| baseline runs | samples | false alarms 95 % | caught 10 % at 95 % | false alarms 99 % | \
         caught 10 % at 99 % | A/A second looks (99 %) |"
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
                "| {runs} | {samples} | {} | {} | {} | {} | {:.1} |",
                counted(&aa[0], aa[0].failed),
                counted(&ten[0], ten[0].failed),
                counted(&aa[1], aa[1].failed),
                counted(&ten[1], ten[1].failed),
                aa[1].pct(aa[1].second_looks),
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
                "| {} % | {runs} | {} | {} |",
                run_sd * 100.0,
                counted(&aa[0], aa[0].failed),
                counted(&aa[1], aa[1].failed),
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
            "| {runs} | {} | {} | {} | {} |",
            counted(&aa[0], aa[0].failed),
            counted(&ten[0], ten[0].failed),
            counted(&aa[1], aa[1].failed),
            counted(&ten[1], ten[1].failed),
        );
    }
    println!(
        "\n{threads} thread(s), {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
