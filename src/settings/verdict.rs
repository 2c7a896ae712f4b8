//! The verdict's options (`compare`, `gate`, `calibrate`): confidence,
//! tolerances, the run-noise floor, the samples a point needs, the gated
//! metrics and whether an inconclusive verdict fails — from the command
//! line, the environment, a profile or the defaults, in that order — and
//! `compare`'s settings.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::CompareArgs;
use crate::error::{Error, Result};

use super::layers;
use super::options::Metric;
use super::profile::{self, Options};
use super::resolve::required;

/// The verdict's options, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictSettings {
    /// Of the one-sided tests, Holm-adjusted across a curve's points.
    pub confidence: f64,
    pub tolerances: ToleranceSettings,
    /// Run-to-run noise assumed at least (≈ CV).
    pub run_noise_floor: f64,
    pub min_samples: usize,
    /// Metrics whose verdicts fail the gate.
    pub gate_metrics: Vec<Metric>,
    pub fail_on_inconclusive: bool,
}

/// How much a metric may change and still pass, as fractions (0.05 is
/// 5 %): `--tolerance-throughput`, `--tolerance-ttft-p50`,
/// `--tolerance-ttft-p95`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ToleranceSettings {
    pub throughput: f64,
    pub ttft_p50: f64,
    pub ttft_p95: f64,
}

impl VerdictSettings {
    /// The verdict's options of the layered `o`, checked.
    pub(super) fn of(o: &Options) -> Result<VerdictSettings> {
        let tolerances = ToleranceSettings {
            throughput: required(o.tolerance_throughput, "--tolerance-throughput")?,
            ttft_p50: required(o.tolerance_ttft_p50, "--tolerance-ttft-p50")?,
            ttft_p95: required(o.tolerance_ttft_p95, "--tolerance-ttft-p95")?,
        };
        let settings = VerdictSettings {
            confidence: required(o.confidence, "--confidence")?,
            tolerances,
            run_noise_floor: required(o.run_noise_floor, "--run-noise-floor")?,
            min_samples: required(o.min_samples, "--min-samples")?,
            gate_metrics: required(o.gate_metrics.clone(), "--gate-metrics")?,
            fail_on_inconclusive: o.fail_on_inconclusive.unwrap_or(false),
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<()> {
        let fail = |message: String| Err(Error::Usage(message));
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return fail(format!(
                "--confidence {} must lie strictly between 0.5 and 1, e.g. 0.99",
                self.confidence
            ));
        }
        let tolerances = &self.tolerances;
        for (option, tolerance) in [
            ("--tolerance-throughput", tolerances.throughput),
            ("--tolerance-ttft-p50", tolerances.ttft_p50),
            ("--tolerance-ttft-p95", tolerances.ttft_p95),
        ] {
            if !(tolerance.is_finite() && tolerance >= 0.0) {
                return fail(format!(
                    "{option} {tolerance} must be a non-negative fraction (0.05 = 5 %)"
                ));
            }
        }
        if !(self.run_noise_floor.is_finite() && self.run_noise_floor > 0.0) {
            return fail(format!(
                "--run-noise-floor {} must be positive: zero would claim that two runs never \
                 differ (0.02 is a 2 % coefficient of variation)",
                self.run_noise_floor
            ));
        }
        if self.min_samples < 2 {
            return fail("--min-samples must be at least 2: one sample has no spread".into());
        }
        if self.gate_metrics.is_empty() {
            return fail(format!(
                "--gate-metrics needs at least one of {}",
                Metric::ALL.map(Metric::name).join(", ")
            ));
        }
        Ok(())
    }
}

/// `cacherate compare`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSettings {
    pub run_dir: PathBuf,
    pub baseline: PathBuf,
    pub verdict: VerdictSettings,
}

impl CompareSettings {
    /// `args` over the environment, the profile and the defaults.
    pub fn resolve(args: &CompareArgs, config_dir: &Path) -> Result<CompareSettings> {
        let o = profile::load(&args.profiles, config_dir)?.over(layers::verdict(&args.verdict));
        Ok(CompareSettings {
            run_dir: args.run_dir.clone(),
            baseline: args.baseline.clone(),
            verdict: VerdictSettings::of(&o)?,
        })
    }
}
