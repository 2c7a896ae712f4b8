//! What one streamed request measured, folded from its events as they
//! arrive.

use std::time::Duration;

use crate::record::ErrorKind;

use super::describe::{char_boundary_at_most, shown};
use super::events::{ChunkView, quick_scan};

/// What one streamed request measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub endpoint: u32,
    pub ttft: Option<Duration>,
    pub ttlt: Option<Duration>,
    pub finish: Duration,
    pub chunks: u32,
    pub max_chunk_gap: Option<Duration>,
    /// When each chunk came, in microseconds since launch.
    pub chunk_times_us: Vec<u32>,
    /// Each chunk's token count as the server gave it (`token_ids`), 0
    /// where it did not; empty when no chunk said.
    pub chunk_tokens: Vec<u32>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub status: u16,
    pub error_kind: Option<ErrorKind>,
    pub error: Option<String>,
    /// The first send met a connection the server had closed, and the
    /// request went again on a new one.
    pub resent: bool,
    /// `[DONE]` or a finish reason was seen.
    pub(super) done: bool,
    /// At least one event's data was read.
    pub(super) saw_event: bool,
    pub(super) last_token: Option<Duration>,
    /// Chunks to make room for at the first one.
    pub(super) expected_chunks: usize,
}

impl Measured {
    pub(super) fn fail(&mut self, kind: ErrorKind, message: impl Into<String>) {
        if self.error_kind.is_none() {
            self.error_kind = Some(kind);
            let mut message = message.into();
            // The message may hold a server's text: cut it between
            // characters, never inside one.
            message.truncate(char_boundary_at_most(&message, 500));
            self.error = Some(message);
        }
    }

    /// Counts an event that may carry generated text (or token ids whose
    /// text the server holds back, such as half a UTF-8 character).
    fn token_event(&mut self, has_text: bool, tokens: Option<u32>, at: Duration) {
        if !has_text && tokens.is_none_or(|n| n == 0) {
            return;
        }
        self.chunks = self.chunks.saturating_add(1);
        if self.chunk_times_us.capacity() == 0 {
            self.chunk_times_us
                .reserve_exact(self.expected_chunks.max(1));
        }
        self.chunk_times_us
            .push(u32::try_from(at.as_micros()).unwrap_or(u32::MAX));
        // Token counts are kept only once a server gives one: most never do.
        if let Some(n) = tokens.filter(|&n| n > 0) {
            self.chunk_tokens.resize(self.chunk_times_us.len() - 1, 0);
            self.chunk_tokens.push(n);
        } else if !self.chunk_tokens.is_empty() {
            self.chunk_tokens.push(0);
        }
        self.ttft.get_or_insert(at);
        if let Some(previous) = self.last_token {
            let gap = at.saturating_sub(previous);
            if self.max_chunk_gap.is_none_or(|max| gap > max) {
                self.max_chunk_gap = Some(gap);
            }
        }
        self.last_token = Some(at);
        self.ttlt = Some(at);
    }

    /// Reads the data of an event the stream ended inside (no blank line
    /// after it): taken whole when it reads (a server may end its last
    /// event without the blank line), else the stream was cut short.
    pub(super) fn unterminated_event(&mut self, data: &[u8], at: Duration) {
        if data == b"[DONE]" || serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok() {
            return self.event(data, at);
        }
        self.saw_event = true;
        self.fail(
            ErrorKind::Incomplete,
            format!("the stream ended inside an event: {}", shown(data, 200)),
        );
    }

    /// Reads one event's data, received `at` after launch.
    pub(super) fn event(&mut self, data: &[u8], at: Duration) {
        self.saw_event = true;
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        if let Some(has_text) = quick_scan(data) {
            self.token_event(has_text, None, at);
            return;
        }
        let chunk: ChunkView = match serde_json::from_slice(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                self.fail(
                    ErrorKind::Protocol,
                    format!("unreadable event ({e}): {}", shown(data, 200)),
                );
                return;
            }
        };
        if let Some(error) = chunk.error {
            self.fail(ErrorKind::StreamError, error.to_string());
            return;
        }
        if chunk.choices.finished {
            self.done = true;
        }
        self.token_event(chunk.choices.has_text, chunk.choices.token_ids, at);
        if let Some(usage) = chunk.usage {
            self.prompt_tokens = usage.prompt_tokens.or(self.prompt_tokens);
            self.completion_tokens = usage.completion_tokens.or(self.completion_tokens);
            if let Some(cached) = usage.prompt_tokens_details.and_then(|d| d.cached_tokens) {
                self.cached_tokens = Some(cached);
            }
        }
        // llama.cpp also reports the prompt tokens it took from its cache
        // in `timings.cache_n`; usage details win when both are there.
        if let Some(cached) = chunk.timings.and_then(|t| t.cache_n)
            && self.cached_tokens.is_none()
        {
            self.cached_tokens = Some(cached);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttft_starts_at_the_first_text_not_at_a_role_only_delta() {
        let mut m = Measured::default();
        let ms = Duration::from_millis;
        m.event(
            br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            ms(5),
        );
        assert_eq!(m.ttft, None);
        m.event(
            br#"{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}"#,
            ms(9),
        );
        m.event(
            br#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            ms(20),
        );
        m.event(
            br#"{"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"length"}]}"#,
            ms(50),
        );
        m.event(
            br#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#,
            ms(51),
        );
        m.event(b"[DONE]", ms(51));
        assert_eq!(m.ttft, Some(ms(9)));
        assert_eq!(m.ttlt, Some(ms(50)));
        assert_eq!(m.chunks, 3);
        assert_eq!(m.max_chunk_gap, Some(ms(30)));
        assert_eq!(m.chunk_times_us, [9000, 20000, 50000]);
        assert!(m.chunk_tokens.is_empty(), "the server did not say");
        assert_eq!(
            (m.prompt_tokens, m.completion_tokens, m.cached_tokens),
            (Some(7), Some(3), Some(4))
        );
        assert!(m.done && m.error_kind.is_none());
    }

    #[test]
    fn token_ids_give_each_chunk_its_count_even_without_text() {
        let mut m = Measured::default();
        let ms = Duration::from_millis;
        m.event(
            br#"{"choices":[{"index":0,"text":"ab","token_ids":[5,6],"finish_reason":null}],"usage":null}"#,
            ms(10),
        );
        // Half a character: vLLM holds the text back but sends the id.
        m.event(
            br#"{"choices":[{"index":0,"text":"","token_ids":[7],"finish_reason":null}],"usage":null}"#,
            ms(12),
        );
        m.event(
            br#"{"choices":[{"index":0,"text":"c","token_ids":null,"finish_reason":null}],"usage":null}"#,
            ms(15),
        );
        assert_eq!(m.chunk_times_us, [10000, 12000, 15000]);
        assert_eq!(m.chunk_tokens, [2, 1, 0]);
    }

    #[test]
    fn in_stream_errors_and_garbage_are_failures() {
        let mut m = Measured::default();
        m.event(
            br#"{"error": {"message": "boom", "code": 400}}"#,
            Duration::ZERO,
        );
        assert_eq!(m.error_kind, Some(ErrorKind::StreamError));
        let mut m = Measured::default();
        m.event(b"{not json", Duration::ZERO);
        assert_eq!(m.error_kind, Some(ErrorKind::Protocol));
    }

    #[test]
    fn a_stream_cut_inside_an_event_is_incomplete_not_garbage() {
        let mut m = Measured::default();
        m.unterminated_event(br#"{"choices":[{"index":0,"te"#, Duration::ZERO);
        assert_eq!(m.error_kind, Some(ErrorKind::Incomplete));
        assert!(m.error.unwrap().contains("ended inside an event"));
        // A last event without its blank line is still an event.
        let mut m = Measured::default();
        m.unterminated_event(b"[DONE]", Duration::ZERO);
        assert!(m.done && m.error_kind.is_none());
        let mut m = Measured::default();
        m.unterminated_event(br#"{"choices":[{"text":"a"}]}"#, Duration::ZERO);
        assert_eq!((m.chunks, m.error_kind), (1, None));
    }

    #[test]
    fn a_message_is_cut_between_characters() {
        let mut m = Measured::default();
        m.fail(ErrorKind::Http5xx, "€".repeat(400));
        let error = m.error.unwrap();
        assert_eq!(error.len(), 498);
        assert!(error.chars().all(|c| c == '€'));
        assert_eq!(char_boundary_at_most("ab", 5), 2);
        assert_eq!(char_boundary_at_most("a€", 2), 1);
    }
}
