//! How failures are told: a transport error's causes and kind, a server's
//! bytes shown readably, and whether a body starts like an event stream.

use crate::record::ErrorKind;

/// The largest length of `text`, at most `max` bytes, that ends between
/// two characters.
pub(super) fn char_boundary_at_most(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// The start of `bytes` as readable text for an error message: at most
/// `max_chars` characters, control characters and backslashes escaped
/// (`\n`, `\u{1b}`, `\\`), bytes that are not UTF-8 as `\xNN`, and `…`
/// when there was more.
pub(crate) fn shown(bytes: &[u8], max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut push = |piece: &str, out: &mut String| {
        let n = piece.chars().count();
        if count + n > max_chars {
            return false;
        }
        count += n;
        out.push_str(piece);
        true
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let piece = if c.is_control() || c == '\\' {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            };
            if !push(&piece, &mut out) {
                out.push('…');
                return out;
            }
        }
        for byte in chunk.invalid() {
            if !push(&format!("\\x{byte:02x}"), &mut out) {
                out.push('…');
                return out;
            }
        }
    }
    out
}

/// Whether the start of a body reads as server-sent events: its first
/// line is a field (`data:`, `event:`, `id:`, `retry:`) or a comment.
/// An empty start says nothing either way.
pub(super) fn looks_like_events(head: &[u8]) -> bool {
    let start = head.trim_ascii_start();
    let line = start.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let field = line.split(|&b| b == b':').next().unwrap_or_default();
    start.is_empty()
        || line.starts_with(b":")
        || [&b"data"[..], b"event", b"id", b"retry"].contains(&field)
}

pub(crate) fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(super) fn classify(error: &reqwest::Error) -> ErrorKind {
    if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Disconnect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_bytes_are_escaped_and_bounded() {
        assert_eq!(shown(b"<p>\"a\"</p>\r\n\\", 100), "<p>\"a\"</p>\\r\\n\\\\");
        assert_eq!(shown(b"ok\xff\x00", 100), "ok\\xff\\0");
        assert_eq!(shown("€uro".as_bytes(), 2), "€u…");
        // An escape is never cut in half.
        assert_eq!(shown(b"ab\x1b", 4), "ab…");
        assert_eq!(shown(b"", 10), "");
    }

    #[test]
    fn what_reads_as_an_event_stream() {
        for head in [
            &b""[..],
            b"data: {}",
            b": ping\n",
            b"\nevent: x",
            b"retry: 5",
            b"data\r\n",
            b"id:7\n",
        ] {
            assert!(looks_like_events(head), "{}", String::from_utf8_lossy(head));
        }
        for head in [
            &b"<!DOCTYPE html>"[..],
            b"{\"choices\":[]}",
            b"Internal error",
            b"idle timeout\n",
            b"database: down",
        ] {
            assert!(
                !looks_like_events(head),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
