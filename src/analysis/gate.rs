//! What a verdict does to a gate: the policy a comparison decides with
//! ([`GatePolicy`]), how each verdict bears on the gate ([`bearing`]) and
//! the process exit code of an overall verdict ([`exit_code`]). JUnit's
//! failures and the exit code come from the same [`bearing`], so they
//! cannot disagree.

use super::policy::{Metric, Policy};
use super::verdict::Verdict;
use crate::exit;

/// What a comparison decides with besides the samples.
#[derive(Debug, Clone, PartialEq)]
pub struct GatePolicy {
    pub policy: Policy,
    /// Metrics whose verdicts fail the gate (the rest are shown).
    pub gated: Vec<Metric>,
    /// An inconclusive gated verdict fails the gate (exit 4).
    pub fail_on_inconclusive: bool,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            policy: Policy::default(),
            gated: Metric::ALL.to_vec(),
            fail_on_inconclusive: false,
        }
    }
}

/// How one verdict bears on the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearing {
    /// Within tolerance, or better.
    Passes,
    /// Fails the gate: a regression, or an inconclusive verdict under
    /// `--fail-on-inconclusive`.
    Fails,
    /// Fails the gate because the measurement cannot be trusted: a health
    /// limit crossed (`error`), or samples that cannot support any verdict
    /// (`insufficient`, which can no more say "pass" than "regressed").
    Broken,
    /// Shown, deciding nothing: a metric that is not gated, or an
    /// inconclusive verdict without `--fail-on-inconclusive`.
    Shown,
}

/// How `verdict`, of a metric gated or not, bears on the gate.
pub fn bearing(verdict: Verdict, gated: bool, fail_on_inconclusive: bool) -> Bearing {
    match (verdict, gated) {
        (Verdict::Pass | Verdict::Improved, _) => Bearing::Passes,
        (_, false) => Bearing::Shown,
        (Verdict::Regressed, true) => Bearing::Fails,
        (Verdict::Inconclusive, true) if fail_on_inconclusive => Bearing::Fails,
        (Verdict::Inconclusive, true) => Bearing::Shown,
        (Verdict::Error | Verdict::Insufficient, true) => Bearing::Broken,
    }
}

impl Verdict {
    /// Whether an overall verdict fails the gate whatever
    /// `--fail-on-inconclusive` says: `regressed`, `error`, `insufficient`.
    pub fn fails_gate(self) -> bool {
        matches!(bearing(self, true, false), Bearing::Fails | Bearing::Broken)
    }
}

/// The process exit code of an overall verdict: 1 when it fails the gate
/// (`regressed`, `error`, `insufficient`), 4 for `inconclusive` under
/// `--fail-on-inconclusive`, else 0.
pub fn exit_code(overall: Verdict, fail_on_inconclusive: bool) -> i32 {
    match (bearing(overall, true, fail_on_inconclusive), overall) {
        (Bearing::Fails, Verdict::Inconclusive) => exit::INCONCLUSIVE,
        (Bearing::Fails | Bearing::Broken, _) => exit::REGRESSION,
        (Bearing::Passes | Bearing::Shown, _) => exit::PASS,
    }
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn only_a_pass_or_an_improvement_exits_0_under_the_flag() {
        for &verdict in Verdict::VARIANTS {
            let code = exit_code(verdict, true);
            let passes = matches!(verdict, Verdict::Pass | Verdict::Improved);
            assert_eq!(code == exit::PASS, passes, "{verdict}");
        }
        assert_eq!(exit_code(Verdict::Inconclusive, true), exit::INCONCLUSIVE);
        assert_eq!(exit_code(Verdict::Inconclusive, false), exit::PASS);
    }

    #[test]
    fn insufficient_data_fails_the_gate_like_an_error() {
        assert_eq!(exit_code(Verdict::Insufficient, false), exit::REGRESSION);
        assert_eq!(bearing(Verdict::Insufficient, true, false), Bearing::Broken);
        assert_eq!(bearing(Verdict::Insufficient, false, false), Bearing::Shown);
        assert!(Verdict::Insufficient.fails_gate());
        assert!(!Verdict::Inconclusive.fails_gate());
    }
}
