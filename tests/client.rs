//! The client against servers that are not the simulator: llama.cpp's
//! /tokenize request shape.

use std::time::Duration;

use axum::routing::post;
use cacherate::client::Client;
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
