//! An incremental server-sent-events reader: bytes in, `data:` payloads
//! out. Events may be split anywhere across reads and lines may be any
//! length (a 50K-token prompt's echo, a long error): nothing is limited.
//! Complete lines are read where they arrive; only a line split across
//! reads is copied.

/// Accumulates bytes and yields complete events' data.
#[derive(Debug, Default)]
pub struct SseReader {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// `data:` lines of the event being read, joined by `\n`, when the
    /// event has more than one or spans reads.
    data: Vec<u8>,
    /// The event being read has data.
    has_data: bool,
}

fn data_value(line: &[u8]) -> Option<&[u8]> {
    let value = line.strip_prefix(b"data:")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

impl SseReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one complete line (without its line ending).
    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(&[u8])) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                on_event(&self.data);
            }
            self.data.clear();
            self.has_data = false;
        } else if let Some(value) = data_value(line) {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        // Other fields (event:, id:, retry:) and comments are ignored.
    }

    /// Feeds `bytes`, calling `on_event` with each complete event's data.
    pub fn push(&mut self, bytes: &[u8], mut on_event: impl FnMut(&[u8])) {
        let mut rest = bytes;
        if !self.partial.is_empty() {
            let Some(end) = memchr::memchr(b'\n', rest) else {
                self.partial.extend_from_slice(rest);
                return;
            };
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..end]);
            self.line(&line, &mut on_event);
            line.clear();
            self.partial = line;
            rest = &rest[end + 1..];
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let line = &rest[..end];
            // The common case, `data: {...}` then a blank line, passes the
            // payload without copying it.
            if !self.has_data
                && let Some(value) = data_value(line.strip_suffix(b"\r").unwrap_or(line))
            {
                let after = &rest[end + 1..];
                let blank = if after.starts_with(b"\r\n") {
                    Some(2)
                } else if after.starts_with(b"\n") {
                    Some(1)
                } else {
                    None
                };
                if let Some(blank) = blank {
                    on_event(value);
                    rest = &after[blank..];
                    continue;
                }
            }
            self.line(line, &mut on_event);
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// Data of an event the stream ended inside (no blank line after it).
    pub fn finish(&mut self, mut on_event: impl FnMut(&[u8])) {
        let partial = std::mem::take(&mut self.partial);
        if !partial.is_empty() {
            self.line(&partial, &mut on_event);
        }
        if self.has_data {
            on_event(&self.data);
        }
        self.data.clear();
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<String> {
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.push(chunk, |data| {
                out.push(String::from_utf8(data.to_vec()).unwrap())
            });
        }
        reader.finish(|data| out.push(String::from_utf8(data.to_vec()).unwrap()));
        out
    }

    #[test]
    fn events_split_anywhere_are_reassembled() {
        let stream = b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n";
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(
                events(&[a, b]),
                ["{\"a\":1}", "{\"b\":2}", "[DONE]"],
                "split {split}"
            );
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events(&bytewise), ["{\"a\":1}", "{\"b\":2}", "[DONE]"]);
    }

    #[test]
    fn crlf_comments_multiline_data_and_no_trailing_blank_line() {
        let stream = b": keep-alive\r\nevent: x\r\ndata: a\r\ndata:b\r\n\r\ndata: tail";
        assert_eq!(events(&[stream]), ["a\nb", "tail"]);
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(events(&[a, b]), ["a\nb", "tail"], "split {split}");
        }
    }

    #[test]
    fn very_long_lines_are_whole() {
        let long = "x".repeat(3_000_000);
        let stream = format!("data: {long}\n\n");
        let chunks: Vec<&[u8]> = stream.as_bytes().chunks(8192).collect();
        assert_eq!(events(&chunks), [long]);
    }
}
