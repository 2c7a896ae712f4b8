//! Prompt content for the text and chat modes: words whose token counts
//! were measured once, pre-escaped for JSON, so a prompt of an exact token
//! count is a few copies. A word boundary falls at every multiple of the
//! chunk size, so the cached prefix of a prompt is always whole words and
//! re-tokenises the same (BPE tokenizers merge within a space-separated
//! word, not across); the server's own count is checked against the
//! target anyway (the prompt-token drift).

use crate::error::{Error, Result};

use super::prompts::HEAD_TOKENS;
use crate::rng::splitmix64;

/// Single-token words needed to draw unique heads from.
const MIN_SINGLE_TOKEN_WORDS: usize = 32;

#[derive(Debug)]
pub struct TextPool {
    /// The JSON-escaped text of every word, each with its leading space.
    json: Vec<u8>,
    /// Byte offset of each word in `json`, and its length at the end.
    offsets: Vec<usize>,
    counts: Vec<u32>,
    /// Words that are exactly one token.
    singles: Vec<usize>,
}

impl TextPool {
    /// `words`: each word (with its leading space) and its token count.
    pub fn new(words: &[(String, u32)]) -> Result<TextPool> {
        let mut json = Vec::new();
        let mut offsets = Vec::with_capacity(words.len() + 1);
        let mut counts = Vec::with_capacity(words.len());
        let mut singles = Vec::new();
        for (word, count) in words.iter().filter(|(_, count)| *count > 0) {
            if *count == 1 {
                singles.push(counts.len());
            }
            offsets.push(json.len());
            let quoted = serde_json::to_string(word).expect("a string serializes");
            json.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
            counts.push(*count);
        }
        offsets.push(json.len());
        if singles.len() < MIN_SINGLE_TOKEN_WORDS {
            return Err(Error::Usage(format!(
                "the tokenizer makes only {} of the content's words a single token; at least \
                 {MIN_SINGLE_TOKEN_WORDS} are needed for the text and chat prompt modes (use \
                 --prompt-mode tokens)",
                singles.len()
            )));
        }
        Ok(TextPool {
            json,
            offsets,
            counts,
            singles,
        })
    }

    fn push_word(&self, out: &mut Vec<u8>, word: usize) {
        out.extend_from_slice(&self.json[self.offsets[word]..self.offsets[word + 1]]);
    }

    fn single(&self, index: u64) -> usize {
        self.singles[(index % self.singles.len() as u64) as usize]
    }

    /// Appends the first `count` tokens of the text sequence drawn from
    /// `seed`: a head of single-token words, then content from a drawn
    /// offset, padded with single-token words so that a word ends at every
    /// multiple of `chunk` tokens. The sequence for a multiple of `chunk`
    /// is a prefix of the sequence for any larger count.
    pub fn push_sequence(&self, out: &mut Vec<u8>, seed: u64, count: usize, chunk: usize) {
        let mut state = seed;
        let head = count.min(HEAD_TOKENS);
        for _ in 0..head {
            let word = self.single(splitmix64(&mut state));
            self.push_word(out, word);
        }
        let mut emitted = head;
        let mut at = splitmix64(&mut state) as usize;
        let words = self.counts.len();
        while emitted < count {
            let boundary = ((emitted / chunk) + 1) * chunk;
            let room = boundary.min(count) - emitted;
            let word = at % words;
            at = at.wrapping_add(1);
            let tokens = self.counts[word] as usize;
            if tokens <= room {
                self.push_word(out, word);
                emitted += tokens;
            } else {
                for k in 0..room {
                    self.push_word(out, self.single(at as u64 + k as u64));
                }
                emitted += room;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words of 1, 2 or 3 "tokens" (a token per letter group of 2).
    fn pool() -> TextPool {
        let words: Vec<(String, u32)> = (0..200)
            .map(|i| {
                let count = 1 + (i % 3) as u32;
                (format!(" w{i}{}", "x".repeat(count as usize)), count)
            })
            .collect();
        TextPool::new(&words).unwrap()
    }

    fn count_of(text: &str) -> u32 {
        text.split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| {
                w.trim_start_matches(|c: char| c == 'w' || c.is_ascii_digit())
                    .len() as u32
            })
            .sum()
    }

    #[test]
    fn sequences_have_the_exact_count_and_chunk_aligned_prefixes() {
        let pool = pool();
        let mut full = Vec::new();
        pool.push_sequence(&mut full, 9, 1024, 256);
        let full = String::from_utf8(full).unwrap();
        assert_eq!(count_of(&full), 1024);
        for cached in [0, 256, 512, 768] {
            let mut prefix = Vec::new();
            pool.push_sequence(&mut prefix, 9, cached, 256);
            let prefix = String::from_utf8(prefix).unwrap();
            assert!(full.starts_with(&prefix), "{cached}");
            assert_eq!(count_of(&prefix), cached as u32);
        }
    }

    #[test]
    fn text_is_escaped_for_json() {
        let mut words: Vec<(String, u32)> = (0..40).map(|i| (format!(" s{i}"), 1)).collect();
        words.push((" say \"hi\"\n".to_string(), 3));
        let pool = TextPool::new(&words).unwrap();
        let mut out = b"\"".to_vec();
        pool.push_sequence(&mut out, 1, 4000, 16);
        out.push(b'"');
        let text: String = serde_json::from_slice(&out).unwrap();
        assert!(text.contains("say \"hi\"\n"));
    }

    #[test]
    fn too_few_single_token_words_are_refused() {
        let words: Vec<(String, u32)> = (0..100).map(|i| (format!(" w{i}"), 2)).collect();
        assert!(TextPool::new(&words).is_err());
    }
}
