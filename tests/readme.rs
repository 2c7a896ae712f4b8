//! The README's gate example from a fresh checkout, in a test binary of its
//! own so that no other test shares the machine with it: the quick profile
//! on the embedded simulator (a fresh one, with its own speed) gated
//! against the committed `baselines/sim-quick.json` does not regress.

use std::path::Path;
use std::process::Command;

#[test]
fn the_committed_quick_baseline_passes_a_gate_of_the_embedded_simulator() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let baseline = repo.join("baselines/sim-quick.json");
    let committed = cacherate::baseline::Baseline::read(&baseline).unwrap();
    assert_eq!(committed.runs.len(), 5);
    assert_eq!(committed.points.len(), 3);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("output");
    let output = Command::new(env!("CARGO_BIN_EXE_cacherate"))
        .current_dir(root.path())
        .args(["gate", "--profile", "quick", "--baseline"])
        .arg(&baseline)
        .args(["--skip-graphs", "--quiet"])
        .output()
        .unwrap();
    let text = std::fs::read_to_string(out.join("compare/verdict.json")).unwrap_or_default();
    let verdict: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Measured at the baseline's loads.
    for point in verdict["points"].as_array().unwrap() {
        assert_eq!(
            point["current"]["concurrency"],
            point["baseline"]["concurrency"]
        );
    }
}
