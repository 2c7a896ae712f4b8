//! A fault-injecting HTTP proxy in front of the simulator, for the faults
//! the simulator cannot express: a reset inside the response headers, an
//! event cut short or garbled, events split across TCP writes, a response
//! that never ends, a gateway's HTML page, a 503 storm, a server that goes
//! away and comes back.
//!
//! One request per connection: the proxy answers with `Connection: close`
//! (so reqwest opens a new connection for the next request and every
//! request is seen whole) and asks the simulator in HTTP/1.0, whose
//! streamed body is delimited by the close rather than chunked, so the
//! proxy reads and rewrites plain SSE bytes.
//!
//! Faults hit only the load requests (completions asking for more than one
//! token): the warm-up (one token each) and the setup calls pass, so a run
//! gets to its phases.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// What the proxy does to a load request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Forward it untouched.
    Pass,
    /// Send half of the response headers, then reset the connection.
    ResetInHeaders,
    /// End the response (cleanly) in the middle of event `n` (from 0).
    TruncateInEvent(usize),
    /// Replace event `n` (from 0) with JSON cut in half.
    MalformedEvent(usize),
    /// Write each event in two pieces, cut `at` bytes into it, the second
    /// only once the client has read the first, so it reads them apart;
    /// see [`FaultProxy::splits`].
    Split { at: usize },
    /// Send the headers and `n` events, then hold the connection open.
    HangAfter(usize),
    /// Answer 200 with a gateway's HTML page.
    Html,
    /// Answer this status with a short body, without asking the server.
    Status(u16),
    /// Answer `status` to the `nth` load request (from 1) only; forward
    /// the others.
    StatusOnce { status: u16, nth: usize },
    /// Close the listener, drop every open connection, and listen again
    /// on the same port after this long; once.
    Away(Duration),
}

struct Plan {
    fault: Fault,
    /// The fault stops (and the proxy forwards again) this long after the
    /// first load request it hit.
    lasting: Option<Duration>,
    started: Option<Instant>,
    /// Load requests seen since the fault was set.
    seen: usize,
}

struct State {
    upstream: SocketAddr,
    plan: Mutex<Plan>,
    away: Notify,
    away_for: Mutex<Duration>,
    splits: Mutex<Splits>,
}

/// The events [`Fault::Split`] cut in two.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Splits {
    /// Events written in two pieces.
    pub written: u64,
    /// Of those, the ones whose first piece the client had read before the
    /// second was written: it cannot have read them as one.
    pub read_apart: u64,
}

pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1, port 0, forwarding to `upstream` (a base URL).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            plan: Mutex::new(Plan {
                fault: Fault::Pass,
                lasting: None,
                started: None,
                seen: 0,
            }),
            away: Notify::new(),
            away_for: Mutex::new(Duration::ZERO),
            splits: Mutex::new(Splits::default()),
        });
        let task = tokio::spawn(serve(listener, addr, Arc::clone(&state)));
        FaultProxy { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The events split so far.
    pub fn splits(&self) -> Splits {
        *self.state.splits.lock().unwrap()
    }

    /// Applies `fault` to every load request from now on.
    pub fn inject(&self, fault: Fault) {
        self.set(fault, None);
    }

    /// Applies `fault` from the first load request on, for `lasting`.
    pub fn inject_for(&self, fault: Fault, lasting: Duration) {
        self.set(fault, Some(lasting));
    }

    fn set(&self, fault: Fault, lasting: Option<Duration>) {
        *self.state.plan.lock().unwrap() = Plan {
            fault,
            lasting,
            started: None,
            seen: 0,
        };
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut listener: TcpListener, addr: SocketAddr, state: Arc<State>) {
    loop {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((socket, _)) = accepted {
                        connections.spawn(handle(socket, Arc::clone(&state)));
                    }
                }
                _ = state.away.notified() => break,
            }
        }
        connections.abort_all();
        drop(listener);
        let away_for = *state.away_for.lock().unwrap();
        tokio::time::sleep(away_for).await;
        listener = TcpListener::bind(addr)
            .await
            .expect("the port is free again");
    }
}

/// The fault for a request: only load requests are hit, and a fault with
/// a length ends that long after it first hit.
fn fault_for(state: &State, head: &str, body: &[u8]) -> Fault {
    let is_load = head.starts_with("POST /v1/") && !contains(body, b"\"max_tokens\":1,");
    if !is_load {
        return Fault::Pass;
    }
    let mut plan = state.plan.lock().unwrap();
    let started = *plan.started.get_or_insert_with(Instant::now);
    let fault = match plan.lasting {
        Some(lasting) if started.elapsed() > lasting => Fault::Pass,
        _ => plan.fault,
    };
    plan.seen += 1;
    // The server goes away once; it is there when it comes back.
    if matches!(fault, Fault::Away(_)) {
        plan.fault = Fault::Pass;
    }
    match fault {
        Fault::StatusOnce { status, nth } if plan.seen == nth => Fault::Status(status),
        Fault::StatusOnce { .. } => Fault::Pass,
        fault => fault,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads until the blank line that ends an HTTP head; returns the head and
/// what came after it.
async fn read_head(socket: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = bytes.split_off(end + 4);
            return Some((String::from_utf8_lossy(&bytes).into_owned(), rest));
        }
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// The head's lines but the start line, without the hop-by-hop headers.
fn headers(head: &str) -> impl Iterator<Item = &str> {
    head.split("\r\n").skip(1).filter(|line| {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        !line.is_empty() && !["connection", "keep-alive", "transfer-encoding"].contains(&&*name)
    })
}

async fn handle(mut client: TcpStream, state: Arc<State>) {
    client.set_nodelay(true).unwrap();
    let Some((head, mut body)) = read_head(&mut client).await else {
        return;
    };
    let length: usize = headers(&head)
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while body.len() < length {
        let mut buf = vec![0u8; length - body.len()];
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let fault = fault_for(&state, &head, &body);
    match fault {
        Fault::Status(status) => {
            let text = format!("{{\"error\":\"injected {status}\"}}");
            let answer = format!(
                "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = client.write_all(answer.as_bytes()).await;
            return;
        }
        Fault::Html => {
            let page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
                        <body><h1>Bad Gateway</h1></body></html>";
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = client.write_all(answer.as_bytes()).await;
            return;
        }
        Fault::Away(lasting) => {
            *state.away_for.lock().unwrap() = lasting;
            state.away.notify_one();
            return;
        }
        _ => {}
    }
    // Ask the server in HTTP/1.0: its answer is then delimited by the close.
    let Ok(mut upstream) = TcpStream::connect(state.upstream).await else {
        return;
    };
    let start = head.split("\r\n").next().unwrap_or("");
    let mut request = start.replace("HTTP/1.1", "HTTP/1.0");
    for line in headers(&head) {
        request.push_str("\r\n");
        request.push_str(line);
    }
    request.push_str("\r\n\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(&body);
    if upstream.write_all(&request).await.is_err() {
        return;
    }
    let Some((answer_head, first)) = read_head(&mut upstream).await else {
        return;
    };
    let status = answer_head.split("\r\n").next().unwrap_or("");
    let mut out = status.replace("HTTP/1.0", "HTTP/1.1");
    for line in headers(&answer_head) {
        out.push_str("\r\n");
        out.push_str(line);
    }
    out.push_str("\r\nconnection: close\r\n\r\n");
    let out = out.into_bytes();
    if fault == Fault::ResetInHeaders {
        let _ = client.write_all(&out[..out.len() / 2]).await;
        let _ = client.flush().await;
        let _ = client.set_zero_linger();
        return;
    }
    if client.write_all(&out).await.is_err() {
        return;
    }
    if fault == Fault::Pass {
        let _ = client.write_all(&first).await;
        let _ = tokio::io::copy(&mut upstream, &mut client).await;
        return;
    }
    let mut stream = first;
    let _ = upstream.read_to_end(&mut stream).await;
    let events = split_events(&stream);
    for (i, event) in events.iter().enumerate() {
        let written = match fault {
            Fault::TruncateInEvent(n) if i == n => {
                let _ = client.write_all(&event[..event.len() / 2]).await;
                let _ = client.shutdown().await;
                return;
            }
            Fault::MalformedEvent(n) if i == n => {
                client
                    .write_all(b"data: {\"choices\":[{\"index\":0,\"text\":\"x\"\n\n")
                    .await
            }
            Fault::HangAfter(n) if i == n => {
                // Hold on until the client gives up.
                let _ = client.read(&mut [0u8; 1]).await;
                return;
            }
            Fault::Split { at } if 0 < at && at < event.len() => {
                let first = client.write_all(&event[..at]).await;
                let apart = read_by_peer(&client).await;
                {
                    let mut splits = state.splits.lock().unwrap();
                    splits.written += 1;
                    splits.read_apart += u64::from(apart);
                }
                first.and(client.write_all(&event[at..]).await)
            }
            _ => client.write_all(event).await,
        };
        if written.is_err() {
            return;
        }
    }
}

/// Waits until everything written to `socket` has reached its peer and
/// the peer has read it: this end's send queue holds nothing unacknowledged
/// (SIOCOUTQ) and the peer's socket, in this process, nothing unread
/// (FIONREAD). Without a clock, so a busy host only makes it wait longer.
/// `false` when it cannot tell (the peer is not a socket of this process).
async fn read_by_peer(socket: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let Some(peer) = peer_fd(socket) else {
        return false;
    };
    let queued = |fd: i32, request| {
        let mut bytes: libc::c_int = 0;
        // SAFETY: both requests write one int through the pointer.
        let done = unsafe { libc::ioctl(fd, request, &mut bytes) };
        (done == 0).then_some(bytes)
    };
    loop {
        let unacknowledged = queued(socket.as_raw_fd(), libc::TIOCOUTQ);
        let unread = queued(peer, libc::FIONREAD);
        match (unacknowledged, unread) {
            (Some(0), Some(0)) => return true,
            (Some(_), Some(_)) => tokio::time::sleep(Duration::from_micros(100)).await,
            _ => return false,
        }
    }
}

/// The descriptor, in this process, of the other end of `socket`: the
/// socket whose address is `socket`'s peer and whose peer is `socket`.
fn peer_fd(socket: &TcpStream) -> Option<i32> {
    use std::os::fd::FromRawFd;
    let (local, peer) = (socket.local_addr().ok()?, socket.peer_addr().ok()?);
    std::fs::read_dir("/proc/self/fd").ok()?.find_map(|entry| {
        let fd: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        // SAFETY: borrowed only to ask its addresses, never closed; a
        // descriptor that is not a socket answers with an error.
        let candidate =
            std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
        (candidate.local_addr().ok()? == peer && candidate.peer_addr().ok()? == local).then_some(fd)
    })
}

/// An SSE body cut into its events, each with its blank line.
pub fn split_events(body: &[u8]) -> Vec<&[u8]> {
    let mut events = Vec::new();
    let mut rest = body;
    while let Some(end) = rest.windows(2).position(|w| w == b"\n\n") {
        events.push(&rest[..end + 2]);
        rest = &rest[end + 2..];
    }
    if !rest.is_empty() {
        events.push(rest);
    }
    events
}
