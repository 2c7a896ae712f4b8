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

    /// Property tests: the reader against a plain line-by-line model of
    /// what it does, on inputs cut into pieces anywhere.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Cases per property; the every-offset property parses each of
        /// its streams once per byte offset on top.
        const CASES: u32 = 2000;

        /// The reader's contract read plainly: lines end at `\n` (a `\r`
        /// before it is dropped), a blank line ends an event that has
        /// data, `data:` values (less one leading space) are joined by
        /// `\n`, other lines are ignored, and an event the input ends in
        /// still counts.
        fn model(bytes: &[u8]) -> Vec<Vec<u8>> {
            let mut events = Vec::new();
            let mut data: Option<Vec<u8>> = None;
            for line in bytes.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    events.extend(data.take());
                } else if let Some(value) = line.strip_prefix(b"data:") {
                    let value = value.strip_prefix(b" ").unwrap_or(value);
                    match &mut data {
                        Some(data) => {
                            data.push(b'\n');
                            data.extend_from_slice(value);
                        }
                        None => data = Some(value.to_vec()),
                    }
                }
            }
            events.extend(data);
            events
        }

        /// What the reader makes of `bytes` pushed in pieces cut at `cuts`.
        fn read(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
            let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut reader = SseReader::new();
            let mut events = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                reader.push(&bytes[start..cut], |data| events.push(data.to_vec()));
                start = cut;
            }
            reader.finish(|data| events.push(data.to_vec()));
            events
        }

        /// Bytes made mostly of what SSE is made of, so that events,
        /// blank lines and line endings split in two come up often.
        fn sse_like() -> impl Strategy<Value = Vec<u8>> {
            let piece = prop_oneof![
                Just(b"data:".to_vec()),
                Just(b"data: ".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b": ping".to_vec()),
                Just(b"event: x".to_vec()),
                Just(b"[DONE]".to_vec()),
                Just(br#"{"choices":[{"text":"a"}]}"#.to_vec()),
                prop::collection::vec(any::<u8>(), 0..8),
            ];
            prop::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
        }

        /// A well-formed stream of events: each one or more `data:` lines
        /// (with or without the space, with LF or CRLF), perhaps after a
        /// comment or an `event:` line, ended by a blank line.
        fn well_formed() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
            let line = "[ -~]{0,40}";
            let event = (
                prop::collection::vec(line, 1..4),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            );
            prop::collection::vec(event, 1..5).prop_map(|events| {
                let mut stream = Vec::new();
                let mut expected = Vec::new();
                for (lines, crlf, space, comment) in events {
                    let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
                    if comment {
                        stream.extend_from_slice(b": keep-alive");
                        stream.extend_from_slice(end);
                    }
                    for line in &lines {
                        stream.extend_from_slice(if space { b"data: " } else { b"data:" });
                        stream.extend_from_slice(line.as_bytes());
                        stream.extend_from_slice(end);
                    }
                    stream.extend_from_slice(end);
                    let joined = lines
                        .iter()
                        .map(|line| {
                            // Without the space, a value's own first space is
                            // taken as the separator.
                            let line = line.as_bytes();
                            if space {
                                line
                            } else {
                                line.strip_prefix(b" ").unwrap_or(line)
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(&b'\n');
                    expected.push(joined);
                }
                (stream, expected)
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(CASES))]

            #[test]
            fn any_bytes_in_any_pieces_never_panic_and_read_as_the_model(
                bytes in prop::collection::vec(any::<u8>(), 0..4096),
                cuts in prop::collection::vec(any::<usize>(), 0..16),
            ) {
                let cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
                prop_assert_eq!(read(&bytes, &cuts), model(&bytes));
            }

            #[test]
            fn sse_like_bytes_read_the_same_however_they_are_cut(
                bytes in sse_like(),
                cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            ) {
                let cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
                let whole = read(&bytes, &[]);
                prop_assert_eq!(&whole, &model(&bytes));
                prop_assert_eq!(read(&bytes, &cuts), whole);
                // One byte at a time.
                let every: Vec<usize> = (0..bytes.len()).collect();
                prop_assert_eq!(read(&bytes, &every), model(&bytes));
            }

            #[test]
            fn events_split_at_every_byte_offset_read_as_unsplit(
                (stream, expected) in well_formed(),
            ) {
                prop_assert_eq!(read(&stream, &[]), expected.clone());
                for offset in 0..=stream.len() {
                    prop_assert_eq!(read(&stream, &[offset]), expected.clone(), "split at {}", offset);
                }
            }
        }

        proptest! {
            // Each case moves hundreds of kilobytes through the reader.
            #![proptest_config(ProptestConfig::with_cases(32))]

            #[test]
            fn lines_of_hundreds_of_kilobytes_are_whole(
                length in 100_000usize..800_000,
                piece in 1usize..100_000,
                crlf in any::<bool>(),
                byte in 0x20u8..0x7f,
            ) {
                let value = vec![byte; length];
                let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
                let mut stream = b"data: ".to_vec();
                stream.extend_from_slice(&value);
                stream.extend_from_slice(end);
                stream.extend_from_slice(end);
                stream.extend_from_slice(b"data: [DONE]");
                stream.extend_from_slice(end);
                stream.extend_from_slice(end);
                let cuts: Vec<usize> = (piece..stream.len()).step_by(piece).collect();
                let events = read(&stream, &cuts);
                prop_assert_eq!(events.len(), 2);
                prop_assert!(events[0] == value, "the long line came out {} bytes long", events[0].len());
                prop_assert_eq!(&events[1][..], b"[DONE]");
            }
        }
    }
}
