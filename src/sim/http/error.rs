//! OpenAI-style API errors, JSON responses and request-body parsing.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::sim::wire::*;

/// An OpenAI-style error, turned into a response at the handler's edge.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) kind: &'static str,
    pub(super) message: String,
    pub(super) retry_after: Option<&'static str>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestError", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorInfo {
                message: self.message,
                kind: self.kind,
                param: None,
                code: self.status.as_u16(),
            },
        };
        let mut response = json_response(self.status, &body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response
    }
}

pub(super) type ApiResult<T = Response> = Result<T, ApiError>;

pub(super) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).expect("wire types serialize");
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// Parses a request body; failures read as FastAPI's validation errors do in
/// vLLM (type "Bad Request", Python's rendering of the error list).
pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        let offset = body
            .split(|&b| b == b'\n')
            .take(e.line().saturating_sub(1))
            .map(|line| line.len() + 1)
            .sum::<usize>()
            + e.column().saturating_sub(1);
        let kind = if e.is_syntax() || e.is_eof() {
            "json_invalid"
        } else {
            "value_error"
        };
        let detail = e.to_string().replace('\'', "\"");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            format!(
                "[{{'type': '{kind}', 'loc': ('body', {offset}), 'msg': 'JSON decode error', \
                 'input': {{}}, 'ctx': {{'error': '{detail}'}}}}]"
            ),
        )
    })
}
