//! A stand-in for GitHub's REST API on 127.0.0.1:0, speaking the three
//! endpoints `cacherate comment` uses (list an issue's comments with
//! GitHub's paging — `Link` headers pointing at `/repositories/{id}/…`, as
//! github.com writes them — create one, update one), with switches for a
//! read-only token, failures and a `Link` to another host. Used by
//! tests/comment.rs and, through the action's scripts, tests/action.rs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde_json::{Value, json};

pub const TOKEN: &str = "ghs_TESTtoken0123456789abcdefNEVERPRINT";
pub const MARKER: &str = "<!-- cacherate-verdict -->";

/// A JSON response (the crate's axum has no `json` feature).
pub struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            self.0.to_string(),
        )
            .into_response()
    }
}

#[derive(Default)]
pub struct Fake {
    /// (id, author, body)
    pub comments: Vec<(u64, String, String)>,
    pub next_id: u64,
    /// Comments per page, whatever per_page asks (small, to force paging).
    pub page_size: usize,
    /// POST and PATCH answer 403, as for a read-only GITHUB_TOKEN.
    pub read_only: bool,
    /// Every request: method, path and query.
    pub log: Vec<String>,
    /// Error answers quote the token back (a badly behaved proxy).
    pub echo_token_in_errors: bool,
    /// Listing answers this status (GitHub failing).
    pub list_fails_with: Option<u16>,
    /// Creating answers this status.
    pub create_fails_with: Option<u16>,
    /// The `Link` to the next page points at this origin instead.
    pub links_to: Option<String>,
}

/// A failure GitHub answers with, quoting the token if the fake is told
/// to.
pub fn failure(fake: &Fake, status: u16) -> Response {
    let message = if fake.echo_token_in_errors {
        format!("Server Error (token {TOKEN})")
    } else {
        "Server Error".into()
    };
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({"message": message})),
    )
        .into_response()
}

pub type Shared = Arc<Mutex<Fake>>;

pub fn comment_json(addr: SocketAddr, id: u64, author: &str, body: &str) -> Value {
    json!({
        "id": id,
        "node_id": format!("IC_{id}"),
        "url": format!("http://{addr}/repos/acme/serving/issues/comments/{id}"),
        "html_url": format!("https://github.com/acme/serving/pull/7#issuecomment-{id}"),
        "body": body,
        "user": {"login": author, "id": 1, "type": "Bot"},
        "created_at": "2026-11-20T10:00:00Z",
        "updated_at": "2026-11-20T10:00:00Z",
        "author_association": "NONE",
    })
}

/// The 401 answer to a request without the expected token, if it lacks it.
pub fn unauthorised(fake: &Fake, headers: &HeaderMap) -> Option<Response> {
    let expected = format!("Bearer {TOKEN}");
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&expected)
    {
        return None;
    }
    let message = if fake.echo_token_in_errors {
        format!("Bad credentials: {:?}", headers.get(header::AUTHORIZATION))
    } else {
        "Bad credentials".into()
    };
    Some((StatusCode::UNAUTHORIZED, Json(json!({"message": message}))).into_response())
}

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn list(
    State((fake, addr)): State<(Shared, SocketAddr)>,
    UrlPath(params): UrlPath<Vec<(String, String)>>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let mut fake = fake.lock().unwrap();
    let path = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    fake.log.push(format!(
        "GET {path} page={} per_page={}",
        query.page.unwrap_or(1),
        query.per_page.unwrap_or(30)
    ));
    if let Some(response) = unauthorised(&fake, &headers) {
        return response;
    }
    if let Some(status) = fake.list_fails_with {
        return failure(&fake, status);
    }
    let size = fake.page_size.min(query.per_page.unwrap_or(30)).max(1);
    let page = query.page.unwrap_or(1).max(1);
    let pages = fake.comments.len().div_ceil(size).max(1);
    let items: Vec<Value> = fake
        .comments
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|(id, author, body)| comment_json(addr, *id, author, body))
        .collect();
    let origin = fake
        .links_to
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let link = |p: usize, rel: &str| {
        format!(
            "<{origin}/repositories/4242/issues/7/comments?per_page={}&page={p}>; rel=\"{rel}\"",
            query.per_page.unwrap_or(30)
        )
    };
    let mut links = Vec::new();
    if page < pages {
        links.push(link(page + 1, "next"));
        links.push(link(pages, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    let mut response = Json(Value::Array(items)).into_response();
    if !links.is_empty() {
        response
            .headers_mut()
            .insert(header::LINK, links.join(", ").parse().unwrap());
    }
    response
}

pub fn body_of(bytes: &Bytes) -> String {
    let value: Value = serde_json::from_slice(bytes).expect("a JSON body");
    value["body"].as_str().expect("a body field").to_string()
}

async fn create(
    State((fake, addr)): State<(Shared, SocketAddr)>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let mut fake = fake.lock().unwrap();
    fake.log.push(format!("POST {owner}/{repo}#{number}"));
    if let Some(response) = unauthorised(&fake, &headers) {
        return response;
    }
    if fake.read_only {
        return forbidden(&fake);
    }
    if let Some(status) = fake.create_fails_with {
        return failure(&fake, status);
    }
    fake.next_id += 1;
    let id = fake.next_id;
    let body = body_of(&bytes);
    fake.comments
        .push((id, "github-actions[bot]".into(), body.clone()));
    (
        StatusCode::CREATED,
        Json(comment_json(addr, id, "github-actions[bot]", &body)),
    )
        .into_response()
}

pub fn forbidden(fake: &Fake) -> Response {
    let message = if fake.echo_token_in_errors {
        format!("Resource not accessible by integration (token {TOKEN})")
    } else {
        "Resource not accessible by integration".into()
    };
    (
        StatusCode::FORBIDDEN,
        Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
            "status": "403",
        })),
    )
        .into_response()
}

async fn update(
    State((fake, addr)): State<(Shared, SocketAddr)>,
    UrlPath((owner, repo, id)): UrlPath<(String, String, u64)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let mut fake = fake.lock().unwrap();
    fake.log.push(format!("PATCH {owner}/{repo} comment {id}"));
    if let Some(response) = unauthorised(&fake, &headers) {
        return response;
    }
    if fake.read_only {
        return forbidden(&fake);
    }
    let body = body_of(&bytes);
    let Some(comment) = fake.comments.iter_mut().find(|c| c.0 == id) else {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
    };
    comment.2 = body.clone();
    let author = comment.1.clone();
    Json(comment_json(addr, id, &author, &body)).into_response()
}

/// The server: its address (`GITHUB_API_URL` is `http://{addr}`) and its
/// state, which a test reads (the comments, the request log) and switches.
pub struct FakeGithub {
    pub addr: SocketAddr,
    pub state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl FakeGithub {
    /// The API's base URL, as `GITHUB_API_URL` gives it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts the stand-in on a free loopback port, answering from `fake`.
pub async fn fake_github(fake: Fake) -> FakeGithub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state: Shared = Arc::new(Mutex::new(fake));
    let app = Router::new()
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(list).post(create),
        )
        .route("/repositories/{id}/issues/{number}/comments", get(list))
        .route("/repos/{owner}/{repo}/issues/comments/{id}", patch(update))
        .with_state((state.clone(), addr));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    FakeGithub {
        addr,
        state,
        shutdown: Some(tx),
    }
}
