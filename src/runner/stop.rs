//! Stopping a run on request (SIGINT, SIGTERM): first the phase in flight
//! finishes and is saved, then the run ends; asked again, the requests in
//! flight are abandoned and those already completed are saved.

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Shared by whoever asks a run to stop and the runner, which looks at it
/// between phases (and, for [`Stop::now`], while requests stream).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    after_phase: CancellationToken,
    now: CancellationToken,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// A stop that follows this one (asked here, it is asked there too)
    /// and may also be asked on its own: a run's, which the death of the
    /// server it measures stops without stopping the command.
    pub fn child(&self) -> Stop {
        Stop {
            after_phase: self.after_phase.child_token(),
            now: self.now.child_token(),
        }
    }

    /// Asks the run to end once the phase in flight is saved.
    pub fn after_phase(&self) {
        self.after_phase.cancel();
    }

    /// Asks the run to end at once, saving the requests already completed.
    pub fn now(&self) {
        self.after_phase.cancel();
        self.now.cancel();
    }

    pub fn is_requested(&self) -> bool {
        self.after_phase.is_cancelled()
    }

    pub fn is_now(&self) -> bool {
        self.now.is_cancelled()
    }

    /// Resolves when a stop (after the phase, or now) is asked for.
    pub async fn until_requested(&self) {
        self.after_phase.cancelled().await;
    }

    /// Resolves when [`Stop::now`] is asked for.
    pub async fn until_now(&self) {
        self.now.cancelled().await;
    }

    /// [`Error::Interrupted`] once a stop was asked for: the check between
    /// two phases.
    pub fn check(&self) -> Result<()> {
        if self.is_requested() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_now_is_also_a_stop_after_the_phase() {
        let stop = Stop::new();
        assert!(stop.check().is_ok());
        let seen = stop.clone();
        stop.after_phase();
        assert!(seen.is_requested() && !seen.is_now());
        assert_eq!(
            seen.check().unwrap_err().exit_code(),
            crate::exit::INTERRUPTED
        );
        stop.now();
        assert!(seen.is_now());
    }

    #[test]
    fn a_child_follows_its_parent_and_not_the_other_way() {
        let parent = Stop::new();
        let child = parent.child();
        child.now();
        assert!(child.is_now() && !parent.is_requested());
        let parent = Stop::new();
        let child = parent.child();
        parent.after_phase();
        assert!(child.is_requested() && !child.is_now());
    }
}
