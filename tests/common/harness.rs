//! The harness of the test binaries that decide only at run time whether a
//! test can run (libtest-mimic, `harness = false` in Cargo.toml): a test
//! that needs what a machine may lack — an outside tool, a filesystem
//! feature — is reported as ignored where it is missing, with a line on
//! stderr saying why and how to get it, and fails under CI, where it must
//! run. Never reported as passed without having run.

use libtest_mimic::{Arguments, Failed, Trial};

/// Whether the tests run under CI: `CI` is `true` (GitHub Actions, GitLab
/// CI, CircleCI and most others) or `1`, in any case.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// The trial of `test`, which needs what `missing` names (`None`: nothing
/// is missing here). With something missing the trial is ignored and
/// stderr says why, unless under CI, where it fails with that message; run
/// anyway (`--include-ignored`), it fails with it too.
pub fn trial_needing(
    args: &Arguments,
    name: &str,
    missing: Option<String>,
    test: impl FnOnce() -> Result<(), Failed> + Send + 'static,
) -> Trial {
    let Some(why) = missing else {
        return Trial::test(name, test);
    };
    let ci = under_ci();
    if !ci && !args.list {
        eprintln!("IGNORED {name}: {why}");
    }
    let message = if ci {
        format!("{why} (CI=true: this test must run here)")
    } else {
        why
    };
    Trial::test(name, move || Err(message.into())).with_ignored_flag(!ci)
}

/// A test that fails by panicking, as a trial's body.
pub fn body(test: fn()) -> impl FnOnce() -> Result<(), Failed> + Send + 'static {
    move || {
        test();
        Ok(())
    }
}
