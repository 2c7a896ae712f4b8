//! An incremental server-sent-events reader: bytes in, `data:` payloads
//! out. Events may be split anywhere across reads and lines may be any
//! length (a 50K-token prompt's echo, a long error): nothing is limited.

/// Accumulates bytes and yields complete events' data.
#[derive(Debug, Default)]
pub struct SseReader {
    buffer: Vec<u8>,
    /// Where the next line starts in `buffer`.
    line_start: usize,
    /// Bytes before this were searched for a newline already.
    scanned: usize,
    /// `data:` lines of the event being read, joined by `\n`.
    data: Vec<u8>,
    has_data: bool,
}

impl SseReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`, calling `on_event` with each complete event's data.
    pub fn push(&mut self, bytes: &[u8], mut on_event: impl FnMut(&[u8])) {
        self.buffer.extend_from_slice(bytes);
        let mut scan = self.scanned.max(self.line_start);
        while let Some(found) = memchr(b'\n', &self.buffer[scan..]) {
            let end = scan + found;
            let mut line = &self.buffer[self.line_start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                if self.has_data {
                    on_event(&self.data);
                }
                self.data.clear();
                self.has_data = false;
            } else if let Some(value) = line.strip_prefix(b"data:") {
                let value = value.strip_prefix(b" ").unwrap_or(value);
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            // Other fields (event:, id:, retry:) and comments are ignored.
            self.line_start = end + 1;
            scan = self.line_start;
        }
        self.scanned = self.buffer.len();
        // Drop consumed bytes once they dominate the buffer.
        if self.line_start > 0 && self.line_start * 2 >= self.buffer.len() {
            self.buffer.drain(..self.line_start);
            self.scanned -= self.line_start;
            self.line_start = 0;
        }
    }

    /// Data of an event the stream ended inside (no blank line after it).
    pub fn finish(&mut self, mut on_event: impl FnMut(&[u8])) {
        let rest = &self.buffer[self.line_start..];
        let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
        if let Some(value) = rest.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        if self.has_data {
            on_event(&self.data);
        }
        self.buffer.clear();
        self.data.clear();
        self.line_start = 0;
        self.scanned = 0;
        self.has_data = false;
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
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
        let stream = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(
                events(&[a, b]),
                ["{\"a\":1}", "{\"b\":2}", "[DONE]"],
                "split {split}"
            );
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events(&bytewise).len(), 3);
    }

    #[test]
    fn crlf_comments_multiline_data_and_no_trailing_blank_line() {
        let stream = b": keep-alive\r\nevent: x\r\ndata: a\r\ndata:b\r\n\r\ndata: tail";
        assert_eq!(events(&[stream]), ["a\nb", "tail"]);
    }

    #[test]
    fn very_long_lines_are_whole() {
        let long = "x".repeat(3_000_000);
        let stream = format!("data: {long}\n\n");
        let chunks: Vec<&[u8]> = stream.as_bytes().chunks(8192).collect();
        assert_eq!(events(&chunks), [long]);
    }
}
