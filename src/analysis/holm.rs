//! Multiplicity across the points of a curve: Holm's step-down procedure.

/// Holm-adjusted p-values (Holm 1979, "A simple sequentially rejective
/// multiple test procedure", Scand. J. Statist. 6:65–70), in the input's
/// order. With the p-values sorted ascending, `p̃₍ᵢ₎ = max_{j ≤ i} min(1,
/// (n − j + 1) p₍ⱼ₎)`; rejecting where `p̃ ≤ α` is the step-down test that
/// keeps the family-wise error rate at α under any dependence between the
/// tests, which matters here: the points of one run share its run noise.
/// NaN p-values sort last and stay NaN.
pub fn holm_adjust(p_values: &[f64]) -> Vec<f64> {
    let n = p_values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![f64::NAN; n];
    let mut running_max = 0.0_f64;
    for (rank, &i) in order.iter().enumerate() {
        let p = p_values[i];
        if p.is_nan() {
            continue;
        }
        running_max = running_max.max(((n - rank) as f64 * p).min(1.0));
        adjusted[i] = running_max;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_step_down_by_hand() {
        // Sorted: 0.01 × 3 = 0.03, 0.02 × 2 = 0.04, 0.04 × 1 = 0.04.
        let adjusted = holm_adjust(&[0.04, 0.01, 0.02]);
        let expected = [0.04, 0.03, 0.04];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
    }

    #[test]
    fn monotone_and_capped() {
        let adjusted = holm_adjust(&[0.5, 0.001, 0.6, 0.0011]);
        assert!((adjusted[1] - 0.004).abs() < 1e-12);
        assert!((adjusted[3] - 0.004).abs() < 1e-12); // max(0.0033, 0.004)
        assert_eq!(adjusted[0], 1.0);
        assert_eq!(adjusted[2], 1.0);
    }

    #[test]
    fn a_single_test_is_unchanged() {
        assert_eq!(holm_adjust(&[0.03]), vec![0.03]);
        assert!(holm_adjust(&[]).is_empty());
    }
}
