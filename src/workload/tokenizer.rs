//! Where token counts come from: a local `tokenizer.json`, one fetched
//! from the Hugging Face hub by model id (cached), or the server's own
//! `/tokenize`. Used once at the start to tokenise the content, never per
//! request.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::{Client, describe, shown};
use crate::error::{Error, Result};

/// The tokenizer of a run.
pub enum Tokenizer {
    /// The server's `/tokenize`.
    Server,
    /// A Hugging Face `tokenizer.json`; the text says where it came from.
    Local(Box<tokenizers::Tokenizer>, String),
}

/// Where downloaded tokenizers are kept: `$CACHERATE_CACHE_DIR`, else
/// `~/.cache/cacherate`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CACHERATE_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("cacherate")
}

fn load(path: &Path) -> Result<tokenizers::Tokenizer> {
    tokenizers::Tokenizer::from_file(path).map_err(|e| {
        Error::Usage(format!(
            "{} is not a Hugging Face tokenizer.json: {e}",
            path.display()
        ))
    })
}

/// How long a tokenizer download may wait.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// For the connection to open.
    connect: Duration,
    /// For the response to begin, and then between two pieces of it.
    idle: Duration,
    /// For the whole download (tokenizer.json files run to tens of MB).
    total: Duration,
}

impl Timeouts {
    const HUB: Timeouts = Timeouts {
        connect: Duration::from_secs(15),
        idle: Duration::from_secs(30),
        total: Duration::from_secs(600),
    };
}

/// What to do when the hub cannot be had.
const ADVICE: &str = "set HF_ENDPOINT to a mirror you can reach, or download tokenizer.json \
                      where there is network access and give its path: \
                      --tokenizer ./tokenizer.json";

/// `name` or `org/name` as the hub spells them: the id becomes a URL path
/// and a directory name in the cache, so nothing else may pass.
fn is_hub_id(id: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match id.split_once('/') {
        Some((org, name)) => part(org) && part(name),
        None => part(id),
    }
}

/// Downloads `tokenizer.json` of hub model `id` into the cache, once.
async fn fetch_from_hub(id: &str) -> Result<PathBuf> {
    let target = cache_dir()
        .join("tokenizers")
        .join(id.replace('/', "--"))
        .join("tokenizer.json");
    if target.is_file() {
        return Ok(target);
    }
    let hub = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    let url = format!(
        "{}/{id}/resolve/main/tokenizer.json",
        hub.trim_end_matches('/')
    );
    let token = std::env::var("HF_TOKEN").ok();
    download(&url, &target, token.as_deref(), Timeouts::HUB)
        .await
        .map_err(|e| match e {
            Error::Usage(message) => {
                Error::Usage(format!("cannot download the tokenizer of {id}: {message}"))
            }
            other => other,
        })?;
    Ok(target)
}

/// A file being downloaded, under a name no other download uses (this
/// process's id and a random number); removed unless it is moved into
/// place.
struct Partial {
    path: PathBuf,
    file: std::fs::File,
    kept: bool,
}

impl Partial {
    fn create(target: &Path) -> std::io::Result<Partial> {
        let name = format!(
            "{}.{}.{:016x}.partial",
            target
                .file_name()
                .map_or("download".into(), |n| n.to_string_lossy()),
            std::process::id(),
            rand::random::<u64>()
        );
        let path = target.with_file_name(name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Partial {
            path,
            file,
            kept: false,
        })
    }

    /// Moves the whole file into place in one step: a reader of `target`
    /// sees the old file or the new one, never part of one, and two
    /// downloads at once each put a whole file there.
    fn persist(mut self, target: &Path) -> std::io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.path, target)?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn usage(what: String) -> Error {
    Error::Usage(format!("{what}; {ADVICE}"))
}

fn internal(what: String) -> Error {
    Error::Internal(anyhow::anyhow!(what))
}

/// Asks for `url` and returns the response once it says 200.
async fn ask(url: &str, token: Option<&str>, timeouts: Timeouts) -> Result<reqwest::Response> {
    let client = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .build()
        .map_err(|e| internal(format!("cannot build the HTTP client: {e}")))?;
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let idle = timeouts.idle.as_secs_f64();
    let response = match tokio::time::timeout(timeouts.idle, request.send()).await {
        Err(_) => return Err(usage(format!("{url} did not answer within {idle} s"))),
        Ok(Err(e)) if e.is_connect() && e.is_timeout() => {
            return Err(usage(format!(
                "cannot connect to {url} within {} s",
                timeouts.connect.as_secs_f64()
            )));
        }
        Ok(Err(e)) => return Err(usage(format!("cannot reach {url}: {}", describe(&e)))),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if !status.is_success() {
        let hint = if status == 401 || status == 403 {
            " (a gated model: set HF_TOKEN)"
        } else {
            ""
        };
        return Err(usage(format!(
            "{url} answered {status}{hint}; is it a Hugging Face model id?"
        )));
    }
    Ok(response)
}

/// What a body held: its length and its first kilobyte.
struct Received {
    length: usize,
    head: Vec<u8>,
}

/// Writes the body of `response` into `partial`, failing when the server
/// stops sending for the idle timeout.
async fn receive(
    mut response: reqwest::Response,
    partial: &mut Partial,
    url: &str,
    timeouts: Timeouts,
) -> Result<Received> {
    let idle = timeouts.idle.as_secs_f64();
    let mut received = Received {
        length: 0,
        head: Vec::new(),
    };
    loop {
        let length = received.length;
        let chunk = match tokio::time::timeout(timeouts.idle, response.chunk()).await {
            Err(_) => {
                return Err(usage(format!(
                    "{url} stopped sending for {idle} s after {length} bytes"
                )));
            }
            Ok(Err(e)) => {
                return Err(usage(format!(
                    "the download of {url} broke off after {length} bytes: {}",
                    describe(&e)
                )));
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        received.length = length.saturating_add(chunk.len());
        let room = 1024usize.saturating_sub(received.head.len());
        received
            .head
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        partial
            .file
            .write_all(&chunk)
            .map_err(|e| internal(format!("cannot write {}: {e}", partial.path.display())))?;
    }
    partial
        .file
        .flush()
        .map_err(|e| internal(format!("cannot write {}: {e}", partial.path.display())))?;
    Ok(received)
}

/// A mirror's error page or a login form answers 200 too: the file is
/// parsed before it goes in the cache, where every later run would find
/// it. Parsing takes a while; it does not hold up the runtime.
async fn check_tokenizer(
    partial: Partial,
    url: &str,
    content_type: Option<String>,
    received: &Received,
) -> Result<Partial> {
    let (partial, parsed) = tokio::task::spawn_blocking(move || {
        let parsed = tokenizers::Tokenizer::from_file(&partial.path).map(drop);
        (partial, parsed)
    })
    .await
    .map_err(|e| internal(format!("checking the downloaded tokenizer failed: {e}")))?;
    if let Err(e) = parsed {
        let content_type = content_type.map_or_else(
            || "no content type".to_string(),
            |t| format!("content type {t:?}"),
        );
        return Err(usage(format!(
            "{url} did not send a tokenizer.json ({e}); it sent {} bytes ({content_type}) \
             beginning \"{}\"",
            received.length,
            shown(&received.head, 200)
        )));
    }
    Ok(partial)
}

/// Downloads `url` into `target`, a `tokenizer.json` checked before it is
/// put in place. A server that does not answer, or stops sending, fails
/// within `timeouts` with an error that names the URL.
async fn download(url: &str, target: &Path, token: Option<&str>, timeouts: Timeouts) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| internal(format!("cannot create {}: {e}", dir.display())))?;
    let fetch = async {
        let response = ask(url, token, timeouts).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let mut partial = Partial::create(target)
            .map_err(|e| internal(format!("cannot write in {}: {e}", dir.display())))?;
        let received = receive(response, &mut partial, url, timeouts).await?;
        check_tokenizer(partial, url, content_type, &received)
            .await?
            .persist(target)
            .map_err(|e| internal(format!("cannot write {}: {e}", target.display())))
    };
    match tokio::time::timeout(timeouts.total, fetch).await {
        Ok(outcome) => outcome,
        Err(_) => Err(usage(format!(
            "the download of {url} took more than {} s",
            timeouts.total.as_secs_f64()
        ))),
    }
}

impl Tokenizer {
    /// `--tokenizer`: a path to a `tokenizer.json` (or a directory holding
    /// one), a hub model id, or nothing for the server's `/tokenize`.
    pub async fn resolve(spec: Option<&str>) -> Result<Tokenizer> {
        let Some(spec) = spec else {
            return Ok(Tokenizer::Server);
        };
        let path = Path::new(spec);
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        if file.is_file() {
            let tokenizer = load(&file)?;
            return Ok(Tokenizer::Local(
                Box::new(tokenizer),
                format!("the local tokenizer {}", file.display()),
            ));
        }
        if path.exists()
            || spec.starts_with('.')
            || spec.starts_with('/')
            || spec.ends_with(".json")
        {
            return Err(Error::Usage(format!(
                "--tokenizer {spec}: no tokenizer.json there"
            )));
        }
        if !is_hub_id(spec) {
            return Err(Error::Usage(format!(
                "--tokenizer {spec:?} is neither a tokenizer.json, a directory holding one, nor \
                 a Hugging Face model id (name or org/name of letters, digits, '-', '_', '.')"
            )));
        }
        let file = fetch_from_hub(spec).await?;
        let tokenizer = load(&file)?;
        Ok(Tokenizer::Local(
            Box::new(tokenizer),
            format!("the Hugging Face tokenizer of {spec} ({})", file.display()),
        ))
    }

    /// Token ids of `text`, without special tokens.
    pub async fn encode(&self, client: &Client, model: &str, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Server => client.tokenize(model, text).await.map(|(ids, _)| ids),
            Tokenizer::Local(tokenizer, _) => tokenizer
                .encode(text, false)
                .map(|encoding| encoding.get_ids().to_vec())
                .map_err(|e| Error::Internal(anyhow::anyhow!("the tokenizer failed: {e}"))),
        }
    }

    /// What run.json says about it (the server's request shape is added
    /// by the caller once known).
    pub fn describe(&self) -> String {
        match self {
            Tokenizer::Server => "the server's /tokenize".to_string(),
            Tokenizer::Local(_, what) => what.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Short enough for a test, long enough for a loaded machine.
    const QUICK: Timeouts = Timeouts {
        connect: Duration::from_secs(5),
        idle: Duration::from_millis(500),
        total: Duration::from_secs(20),
    };

    /// A word-level tokenizer.json of `words` words (about 12 bytes each).
    fn tokenizer_json(words: usize) -> Vec<u8> {
        let vocab: serde_json::Map<String, serde_json::Value> = (0..words)
            .map(|i| (format!("word{i}"), serde_json::json!(i)))
            .chain([("[UNK]".to_string(), serde_json::json!(words))])
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": null,
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
        }))
        .unwrap()
    }

    /// Reads a request's head (a GET has no body).
    async fn read_head(socket: &mut TcpStream) {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// How a test server answers.
    #[derive(Clone, Copy)]
    enum Answer {
        /// Reads the request and says nothing.
        Nothing,
        /// Sends the head and half the body, then nothing more.
        Half,
        /// Sends a byte of the body every 100 ms: never idle, never done.
        Trickle,
    }

    /// A server on 127.0.0.1:0 that answers every request as `answer`
    /// says, with a body of `body`; the URL of its tokenizer.json.
    async fn server(answer: Answer, body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/tokenizer.json", listener.local_addr().unwrap());
        let body = Arc::new(body);
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let body = body.clone();
                tokio::spawn(async move {
                    read_head(&mut socket).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n",
                        body.len()
                    );
                    match answer {
                        Answer::Nothing => {}
                        Answer::Half => {
                            socket.write_all(head.as_bytes()).await.unwrap();
                            socket.write_all(&body[..body.len() / 2]).await.unwrap();
                        }
                        Answer::Trickle => {
                            socket.write_all(head.as_bytes()).await.unwrap();
                            for byte in body.iter() {
                                if socket.write_all(&[*byte]).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                    // Hold the connection open until the client gives up.
                    let _ = socket.read(&mut [0u8; 64]).await;
                });
            }
        });
        url
    }

    /// The files of `dir` but `tokenizer.json`: left-over partial files.
    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|name| name != "tokenizer.json")
                    .collect()
            })
            .unwrap_or_default()
    }

    fn assert_says_what_to_do(error: &Error, url: &str, what: &str) {
        let message = error.to_string();
        assert!(matches!(error, Error::Usage(_)), "{message}");
        assert!(message.contains(url), "names the URL: {message}");
        assert!(message.contains(what), "says {what:?}: {message}");
        assert!(message.contains("HF_ENDPOINT"), "{message}");
        assert!(
            message.contains("--tokenizer ./tokenizer.json"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_with_what_to_do() {
        let url = server(Answer::Nothing, tokenizer_json(10)).await;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m/tokenizer.json");
        let started = std::time::Instant::now();
        let error = download(&url, &target, None, QUICK).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_says_what_to_do(&error, &url, "did not answer within 0.5 s");
        assert!(!target.exists());
    }

    #[tokio::test]
    async fn a_server_that_stalls_mid_body_times_out_and_leaves_nothing() {
        let url = server(Answer::Half, tokenizer_json(1000)).await;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokenizer.json");
        let error = download(&url, &target, None, QUICK).await.unwrap_err();
        assert_says_what_to_do(&error, &url, "stopped sending for 0.5 s");
        assert!(!target.exists());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_download_that_never_ends_is_cut_at_the_total_timeout() {
        let url = server(Answer::Trickle, tokenizer_json(1000)).await;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokenizer.json");
        let timeouts = Timeouts {
            total: Duration::from_secs(2),
            ..QUICK
        };
        let error = download(&url, &target, None, timeouts).await.unwrap_err();
        assert_says_what_to_do(&error, &url, "took more than 2 s");
        assert!(!target.exists());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_page_that_is_no_tokenizer_is_not_cached() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/tokenizer.json", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            read_head(&mut socket).await;
            let page = "<html><body>Sign in to continue</body></html>";
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokenizer.json");
        let error = download(&url, &target, None, QUICK).await.unwrap_err();
        assert_says_what_to_do(&error, &url, "did not send a tokenizer.json");
        let message = error.to_string();
        assert!(message.contains("\"text/html\""), "{message}");
        assert!(message.contains("<html><body>Sign in"), "{message}");
        assert!(!target.exists());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_downloads_of_one_tokenizer_each_leave_a_whole_file() {
        // A body of a few MB, sent in pieces to every downloader at once,
        // so that their writes overlap.
        let body = Arc::new(tokenizer_json(100_000));
        const DOWNLOADS: usize = 4;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/tokenizer.json", listener.local_addr().unwrap());
        let all_asked = Arc::new(tokio::sync::Barrier::new(DOWNLOADS));
        let server_body = body.clone();
        tokio::spawn(async move {
            for _ in 0..DOWNLOADS {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (body, all_asked) = (server_body.clone(), all_asked.clone());
                tokio::spawn(async move {
                    read_head(&mut socket).await;
                    all_asked.wait().await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    socket.write_all(head.as_bytes()).await.unwrap();
                    for piece in body.chunks(64 * 1024) {
                        socket.write_all(piece).await.unwrap();
                        tokio::task::yield_now().await;
                    }
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("org--model/tokenizer.json");
        let downloads: Vec<_> = (0..DOWNLOADS)
            .map(|_| {
                let (url, target) = (url.clone(), target.clone());
                // The idle timeout is long here: this is about the files,
                // and the machine may be busy.
                let timeouts = Timeouts {
                    idle: Duration::from_secs(20),
                    total: Duration::from_secs(120),
                    ..QUICK
                };
                tokio::spawn(async move { download(&url, &target, None, timeouts).await })
            })
            .collect();
        for download in downloads {
            download.await.unwrap().unwrap();
        }
        let written = std::fs::read(&target).unwrap();
        assert!(
            written == *body,
            "{} bytes of {}",
            written.len(),
            body.len()
        );
        assert!(load(&target).is_ok());
        assert_eq!(leftovers(target.parent().unwrap()), Vec::<String>::new());
    }

    #[test]
    fn only_hub_ids_go_to_the_hub() {
        for id in ["gpt2", "meta-llama/Llama-3.1-8B", "org_x/m.v2"] {
            assert!(is_hub_id(id), "{id}");
        }
        for id in ["", "a/b/c", "../x", "a/..", "x y", "a?b", "a/", "/a", "a#b"] {
            assert!(!is_hub_id(id), "{id}");
        }
    }

    #[test]
    fn partial_files_have_names_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tokenizer.json");
        let a = Partial::create(&target).unwrap();
        let b = Partial::create(&target).unwrap();
        assert_ne!(a.path, b.path);
        let name = a.path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!("tokenizer.json.{}.", std::process::id())),
            "{name}"
        );
        drop((a, b));
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }
}
