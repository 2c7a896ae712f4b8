//! The client against servers that are not the simulator: llama.cpp's
//! /tokenize request shape.

use std::time::Duration;

use axum::routing::post;
use cacherate::client::Client;
use cacherate::record::ErrorKind;
use serde_json::{Value, json};

/// Answers like llama-server: it reads `content`, and a body without it
/// gets an empty token list rather than an error.
async fn llama_tokenize(body: axum::body::Bytes) -> String {
    let body: Value = serde_json::from_slice(&body).unwrap();
    let tokens: Vec<u32> = match body.get("content").and_then(Value::as_str) {
        Some(text) => text
            .split_whitespace()
            .map(|w| w.len() as u32 + 100)
            .collect(),
        None => Vec::new(),
    };
    json!({ "tokens": tokens }).to_string()
}

#[tokio::test]
async fn tokenize_falls_back_to_the_llama_cpp_shape() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/tokenize", post(llama_tokenize));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Client::new(vec![url], None, Duration::from_secs(5)).unwrap();
    let (tokens, shape) = client.tokenize("m", "one three seven").await.unwrap();
    assert_eq!(shape, "llama.cpp");
    assert_eq!(tokens, [103, 105, 105]);
    server.abort();
}

/// Every side call and completion carries the URL's credentials as basic
/// auth (decoded), to the URL without them; `--api-key` goes as a bearer.
#[tokio::test]
async fn credentials_in_the_url_are_sent_as_basic_auth_and_not_named() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = {
        let seen = seen.clone();
        move |headers: HeaderMap| async move {
            let auth = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            seen.lock().unwrap().push(auth);
            "x"
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(record.clone()))
        .route("/v1/completions", post(record));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = Client::new(
        vec![format!("http://me:p%40ss@{addr}")],
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(client.endpoints(), [format!("http://{addr}")]);
    client
        .get_text(&format!("http://{addr}/metrics"))
        .await
        .unwrap();
    let measured = stream_once_with(&client).await;
    assert_eq!(measured.error_kind, Some(ErrorKind::Protocol));
    // "me:p@ss" in base64.
    let basic = "Basic bWU6cEBzcw==".to_string();
    assert_eq!(*seen.lock().unwrap(), [basic.clone(), basic]);

    seen.lock().unwrap().clear();
    let keyed = Client::new(
        vec![format!("http://{addr}")],
        Some("k1"),
        Duration::from_secs(5),
    )
    .unwrap();
    keyed
        .get_text(&format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["Bearer k1"]);
    assert!(!format!("{client:?}{keyed:?}").contains("p@ss"));
    assert!(!format!("{keyed:?}").contains("k1"));
    server.abort();
}

/// Reads one HTTP request from `socket`: its headers, then the body its
/// length says. False when the client closed the connection first.
async fn read_request(socket: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        if n == 0 {
            return false;
        }
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                return true;
            }
        }
    }
}

/// A keep-alive server that answers the first request on each connection
/// and closes the connection when a second one arrives on it, unanswered:
/// what llama.cpp's HTTP library does when it times out an idle
/// connection just as a request goes out on it.
async fn one_answer_per_connection(body: &'static str, content_type: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                if !read_request(&mut socket).await {
                    return;
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                     Connection: keep-alive\r\n\r\n",
                    body.len()
                );
                socket.write_all(head.as_bytes()).await.unwrap();
                socket.write_all(body.as_bytes()).await.unwrap();
                // The next request on this connection: read a little, close.
                let _ = socket.read(&mut [0u8; 4096]).await;
            });
        }
    });
    url
}

/// A server that answers every request with `response`, raw bytes as they
/// are (status line, headers and body), then closes the connection.
async fn answers_raw(response: Vec<u8>) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let response = std::sync::Arc::new(response);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let response = response.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await {
                    let _ = socket.write_all(&response).await;
                    let _ = socket.shutdown().await;
                }
            });
        }
    });
    url
}

/// A complete HTTP/1.1 response with a status, a content type (none when
/// empty) and a body.
fn http_response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut response = head.into_bytes();
    response.extend_from_slice(body);
    response
}

/// Streams one completion from `url` and returns what was measured.
async fn stream_once(url: String) -> cacherate::client::Measured {
    let client = Client::new(vec![url], None, Duration::from_secs(5)).unwrap();
    stream_once_with(&client).await
}

async fn stream_once_with(client: &Client) -> cacherate::client::Measured {
    let body = br#"{"model":"m","prompt":[1,2,3,4],"max_tokens":2,"stream":true}"#.to_vec();
    client.stream(body, std::time::Instant::now(), None).await
}

#[tokio::test]
async fn a_200_html_page_is_a_protocol_error_that_shows_what_came() {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>{}</body></html>\n",
        "<p>upstream unavailable</p>".repeat(200)
    );
    let url = answers_raw(http_response(
        "200 OK",
        "text/html; charset=utf-8",
        page.as_bytes(),
    ))
    .await;
    let m = stream_once(url).await;
    assert_eq!(m.status, 200);
    assert_eq!(m.error_kind, Some(ErrorKind::Protocol), "{:?}", m.error);
    let error = m.error.unwrap();
    assert!(error.contains("not an event stream"), "{error}");
    assert!(error.contains("text/html; charset=utf-8"), "{error}");
    assert!(
        error.contains(r"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway"),
        "the first bytes, escaped: {error}"
    );
    assert!(error.contains(&format!("{} bytes", page.len())), "{error}");
    assert!(error.contains("…"), "only the start: {error}");
    assert!(error.ends_with("does it stream?"), "bounded: {error}");
    assert!(!error.contains("finish reason"), "{error}");
}

#[tokio::test]
async fn a_200_json_body_or_garbage_without_a_content_type_is_a_protocol_error() {
    // A server that ignored `stream: true` and answered in one piece.
    let json = br#"{"id":"cmpl-1","choices":[{"text":"ab","finish_reason":"length"}]}"#;
    let m = stream_once(answers_raw(http_response("200 OK", "application/json", json)).await).await;
    assert_eq!(m.error_kind, Some(ErrorKind::Protocol), "{:?}", m.error);
    let error = m.error.unwrap();
    assert!(error.contains("application/json"), "{error}");
    assert!(error.contains(r#"{"id":"cmpl-1","choices""#), "{error}");

    // Control bytes and invalid UTF-8 come out escaped, and a long body
    // only by its start.
    let mut garbage = b"\x00\x01\x1b[31m\xff\xfe".to_vec();
    garbage.extend(std::iter::repeat_n(b'z', 100_000));
    let m = stream_once(answers_raw(http_response("200 OK", "", &garbage)).await).await;
    assert_eq!(m.error_kind, Some(ErrorKind::Protocol), "{:?}", m.error);
    let error = m.error.unwrap();
    assert!(error.contains("no content type"), "{error}");
    assert!(error.contains(r"\0\u{1}\u{1b}[31m\xff\xfezzz"), "{error}");
    assert!(
        !error.contains('\0') && !error.contains('\u{1b}'),
        "{error}"
    );
    assert!(error.ends_with("does it stream?"), "bounded: {error}");
}

#[tokio::test]
async fn an_event_stream_that_ends_before_its_finish_is_still_incomplete() {
    let partial = b"data: {\"choices\":[{\"index\":0,\"text\":\"a\",\"finish_reason\":null}]}\n\n";
    let m =
        stream_once(answers_raw(http_response("200 OK", "text/event-stream", partial)).await).await;
    assert_eq!(m.error_kind, Some(ErrorKind::Incomplete), "{:?}", m.error);
    assert_eq!(m.chunks, 1);
    // Nothing at all with an event-stream type: the server stopped early.
    let m = stream_once(answers_raw(http_response("200 OK", "text/event-stream", b"")).await).await;
    assert_eq!(m.error_kind, Some(ErrorKind::Incomplete), "{:?}", m.error);
}

#[tokio::test]
async fn an_error_body_cut_inside_a_character_does_not_panic() {
    // 500 bytes of a message end inside a three-byte character.
    let body = "€".repeat(400);
    let url = answers_raw(http_response(
        "500 Internal Server Error",
        "text/plain; charset=utf-8",
        body.as_bytes(),
    ))
    .await;
    let m = stream_once(url).await;
    assert_eq!(m.error_kind, Some(ErrorKind::Http5xx));
    let error = m.error.unwrap();
    assert!(error.starts_with("HTTP 500: €€€"), "{error}");
    assert!(error.len() <= 500, "{}", error.len());
}

#[tokio::test]
async fn a_get_on_a_connection_the_server_closed_is_sent_again() {
    let url = one_answer_per_connection("counter 1\n", "text/plain").await;
    let client = Client::new(vec![url.clone()], None, Duration::from_secs(5)).unwrap();
    let metrics = format!("{url}/metrics");
    for _ in 0..3 {
        assert_eq!(client.get_text(&metrics).await.unwrap(), "counter 1\n");
    }
    let (status, text) = client
        .post_text(&format!("{url}/tokenize"), &json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!((status, text.as_str()), (200, "counter 1\n"));
}

#[tokio::test]
async fn a_completion_on_a_connection_the_server_closed_is_sent_again_and_marked() {
    const STREAM: &str = "data: {\"choices\":[{\"index\":0,\"text\":\"a\",\"finish_reason\":null}]}\n\n\
        data: {\"choices\":[{\"index\":0,\"text\":\"b\",\"finish_reason\":\"length\"}]}\n\n\
        data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\
        \"total_tokens\":6}}\n\n\
        data: [DONE]\n\n";
    let url = one_answer_per_connection(STREAM, "text/event-stream").await;
    let client = Client::new(vec![url], None, Duration::from_secs(5)).unwrap();
    let body = br#"{"model":"m","prompt":[1,2,3,4],"max_tokens":2,"stream":true}"#.to_vec();
    let first = client
        .stream(body.clone(), std::time::Instant::now(), None)
        .await;
    assert_eq!(first.error_kind, None, "{:?}", first.error);
    assert!(!first.resent);
    let second = client.stream(body, std::time::Instant::now(), None).await;
    assert_eq!(second.error_kind, None, "{:?}", second.error);
    assert!(
        second.resent,
        "the second request went out on the closed connection"
    );
    assert_eq!(second.prompt_tokens, Some(4));
}

#[tokio::test]
async fn tokenize_on_a_connection_the_server_closed_keeps_its_shape() {
    let url = one_answer_per_connection(r#"{"tokens":[5,6]}"#, "application/json").await;
    let client = Client::new(vec![url], None, Duration::from_secs(5)).unwrap();
    for _ in 0..3 {
        // A closed connection must not read as "the vLLM shape failed".
        assert_eq!(
            client.tokenize("m", "a b").await.unwrap(),
            (vec![5, 6], "vLLM")
        );
    }
}

#[tokio::test]
async fn a_server_error_body_reaches_the_record_with_control_characters_escaped() {
    let url = answers_raw(http_response(
        "500 Internal Server Error",
        "text/plain",
        b"boom\x1b[2J\x1b]0;title\x07\r\nnext line",
    ))
    .await;
    let measured = stream_once(url).await;
    assert_eq!(measured.error_kind, Some(ErrorKind::Http5xx));
    let message = measured.error.unwrap();
    assert_eq!(
        message,
        r"HTTP 500: boom\u{1b}[2J\u{1b}]0;title\u{7}\r\nnext line"
    );
}
