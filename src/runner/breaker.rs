//! The circuit breaker: a point whose requests only meet connection-level
//! failures stops; and the checks that tell a server that went away (the
//! run ends, and the same command resumes) from one that failed a point
//! (the sweep goes on).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::record::{ErrorKind, RequestRecord};
use crate::store::{PhaseRecord, PointId};

/// Stops a point whose requests only meet connection-level failures
/// (connect, disconnect, timeout, 5xx): after `failures` of them in a row
/// with no success for `window`, no phase launches another request until
/// the breaker is armed again for the next point. Other failures (429,
/// 4xx, a broken stream) neither count nor reset: the server answered.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    window: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug)]
struct BreakerState {
    in_a_row: u32,
    kinds: BTreeMap<ErrorKind, u32>,
    last_error: String,
    since: Instant,
    tripped: Option<String>,
}

impl Breaker {
    /// `failures` 0 turns it off.
    pub fn new(failures: u32, window: Duration) -> Breaker {
        Breaker {
            failures,
            window,
            state: Mutex::new(BreakerState {
                in_a_row: 0,
                kinds: BTreeMap::new(),
                last_error: String::new(),
                since: Instant::now(),
                tripped: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the breaker and starts its window now.
    pub fn arm(&self) {
        let mut state = self.lock();
        state.in_a_row = 0;
        state.kinds.clear();
        state.since = Instant::now();
        state.tripped = None;
    }

    /// Counts a finished request.
    pub fn record(&self, record: &RequestRecord) {
        if self.failures == 0 {
            return;
        }
        let mut state = self.lock();
        match record.error_kind {
            None => {
                state.in_a_row = 0;
                state.kinds.clear();
                state.since = Instant::now();
            }
            Some(
                kind @ (ErrorKind::Connect
                | ErrorKind::Disconnect
                | ErrorKind::Timeout
                | ErrorKind::Http5xx),
            ) => {
                state.in_a_row += 1;
                *state.kinds.entry(kind).or_insert(0) += 1;
                state.last_error = record.error.clone().unwrap_or_default();
                let quiet = state.since.elapsed();
                if state.tripped.is_none()
                    && state.in_a_row >= self.failures
                    && quiet >= self.window
                {
                    let kinds: Vec<String> = state
                        .kinds
                        .iter()
                        .map(|(kind, n)| format!("{} {n}", kind.name()))
                        .collect();
                    state.tripped = Some(format!(
                        "circuit breaker: {} connection-level failures in a row ({}) and no \
                         success for {:.1} s; the last: {}",
                        state.in_a_row,
                        kinds.join(", "),
                        quiet.as_secs_f64(),
                        state.last_error
                    ));
                }
            }
            Some(_) => {}
        }
    }

    /// Why the breaker stopped the point, once it has.
    pub fn tripped(&self) -> Option<String> {
        self.lock().tripped.clone()
    }
}

/// [`Error::Unreachable`] when every request of a committed phase (or
/// sustained period) failed to connect: the server is gone, and the same
/// command resumes once it is back. A tripped breaker stops the point
/// instead, and the sweep asks whether the server is still there
/// ([`still_answering`]).
pub fn check_answering(
    breaker: &Breaker,
    phase: &PhaseRecord,
    records: &[RequestRecord],
) -> Result<()> {
    let f = &phase.figures;
    if f.completed == 0
        && f.errors.keys().all(|kind| kind == "connect")
        && f.failed > 0
        && breaker.tripped().is_none()
    {
        let first = records.iter().find_map(|r| r.error.clone());
        return Err(Error::Unreachable(format!(
            "the server stopped answering during {} (ctx {}, {}%): {}; what was measured \
             is saved, so run the same command again to resume once it is back",
            phase.phase_id,
            phase.context_size,
            phase.cache_hit_rate,
            first.unwrap_or_default()
        )));
    }
    Ok(())
}

/// After a point the breaker stopped: the sweep goes on if the server
/// still answers, else it ends here (the same command resumes).
pub async fn still_answering(
    breaker: &Breaker,
    client: &crate::client::Client,
    id: PointId,
) -> Result<()> {
    if breaker.tripped().is_some()
        && let Err(e) = client.models().await
    {
        return Err(Error::Unreachable(format!(
            "the circuit breaker stopped {id} and the server no longer answers ({e}); what \
             was measured is saved, so run the same command again to resume once it is back"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: Option<ErrorKind>) -> RequestRecord {
        let mut record: RequestRecord = serde_json::from_value(serde_json::json!({
            "context_size": 512, "cache_hit_rate": 0, "phase_id": "RAMP_c2",
            "phase_index": 0, "concurrency": 2, "request_id": 1, "endpoint": 0,
            "working_set_prompt": 0, "launch_unix_s": 0.0, "dispatch_delay_s": null,
            "ttft_s": null, "ttlt_s": null, "finish_s": 0.1, "chunks": 0,
            "max_chunk_gap_s": null, "expected_prompt_tokens": 512,
            "target_cached_tokens": 0, "prompt_tokens": null, "completion_tokens": null,
            "cached_tokens": null, "status": 0, "error_kind": null, "error": null,
            "in_window": true
        }))
        .unwrap();
        record.error_kind = kind;
        record.error = kind.map(|k| format!("{} happened", k.name()));
        record
    }

    #[test]
    fn the_breaker_counts_connection_failures_in_a_row() {
        let breaker = Breaker::new(3, Duration::ZERO);
        breaker.record(&row(Some(ErrorKind::Connect)));
        breaker.record(&row(Some(ErrorKind::Http5xx)));
        // A success starts the count again; a 429 or a broken stream
        // neither counts nor resets.
        breaker.record(&row(None));
        breaker.record(&row(Some(ErrorKind::Timeout)));
        breaker.record(&row(Some(ErrorKind::RateLimited)));
        breaker.record(&row(Some(ErrorKind::Protocol)));
        breaker.record(&row(Some(ErrorKind::Disconnect)));
        assert_eq!(breaker.tripped(), None);
        breaker.record(&row(Some(ErrorKind::Connect)));
        let why = breaker.tripped().unwrap();
        assert!(
            why.contains(
                "3 connection-level failures in a row (connect 1, timeout 1, disconnect 1)"
            ) && why.ends_with("the last: connect happened"),
            "{why}"
        );
        breaker.arm();
        assert_eq!(breaker.tripped(), None);
    }

    #[test]
    fn the_breaker_waits_for_its_window_and_zero_turns_it_off() {
        let patient = Breaker::new(1, Duration::from_secs(3600));
        let off = Breaker::new(0, Duration::ZERO);
        for _ in 0..100 {
            patient.record(&row(Some(ErrorKind::Connect)));
            off.record(&row(Some(ErrorKind::Connect)));
        }
        assert_eq!(patient.tripped(), None);
        assert_eq!(off.tripped(), None);
    }
}
