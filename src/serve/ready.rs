//! Before a served server is measured: nothing else may answer where it
//! will listen, and it must answer `GET /v1/models` with success.

use std::time::{Duration, Instant};

use crate::client::Client;

/// The first wait between two probes; it doubles up to [`MOST_BETWEEN`].
const FIRST_BETWEEN: Duration = Duration::from_millis(50);
const MOST_BETWEEN: Duration = Duration::from_secs(1);
/// One probe's time limit.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether something accepts connections at `endpoint`'s host and port.
pub(super) async fn something_listens(endpoint: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(endpoint) else {
        return false;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect((host, port))
        )
        .await,
        Ok(Ok(_))
    )
}

/// How the wait for the server ended.
pub(super) enum Waited {
    Ready(Duration),
    /// It did not answer in time; the last answer (or error).
    TimedOut(String),
    /// Its process exited.
    Exited,
    /// The run was asked to stop.
    Abandoned,
}

/// Probes `GET /v1/models` until it succeeds, `timeout` passes, `exited`
/// resolves or `abandon` does.
pub(super) async fn wait_ready(
    client: &Client,
    timeout: Duration,
    exited: impl Future<Output = ()>,
    abandon: impl Future<Output = ()>,
) -> Waited {
    let started = Instant::now();
    let url = format!("{}/v1/models", client.endpoints()[0]);
    let probes = async {
        let mut between = FIRST_BETWEEN;
        let mut last = "no answer yet".to_string();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Waited::TimedOut(last);
            }
            match tokio::time::timeout(left.min(PROBE_TIMEOUT), client.get_text(&url)).await {
                Ok(Ok(_)) => return Waited::Ready(started.elapsed()),
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
            }
            let left = timeout.saturating_sub(started.elapsed());
            tokio::time::sleep(between.min(left)).await;
            between = (between * 2).min(MOST_BETWEEN);
        }
    };
    tokio::select! {
        waited = probes => waited,
        () = exited => Waited::Exited,
        () = abandon => Waited::Abandoned,
    }
}
