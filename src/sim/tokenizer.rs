//! The simulator's built-in tokenizer: deterministic, dependency-free, and
//! documented so that clients can reason about token counts.
//!
//! It models no real model's vocabulary. Its rules:
//! - The vocabulary has [`VOCAB_SIZE`] ids: [`SPECIAL_TOKENS`] first, then one
//!   token per printable ASCII character, newline and tab, then one token per
//!   space-prefixed punctuation mark or digit, then synthetic words, half of
//!   them space-prefixed (`" word"`), half bare (`"word"`).
//! - Text splits into: special markers (`<|user|>`…); an optional single space
//!   followed by a run of ASCII letters (one token per word, whatever its
//!   length), by one digit, or by one symbol (any character but a letter,
//!   digit, space, newline or tab); any other character on its own.
//! - A word that is not in the vocabulary maps, by a stable hash, to a word of
//!   the same kind (space-prefixed or bare), so counts are exact but unknown
//!   words do not decode back to themselves. Symbols outside ASCII map to `?`.
//!
//! So `encode(decode(encode(text))) == encode(text)` for any text, and the
//! number of tokens of a text is the number of pieces above.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

/// Number of token ids; every id a client sends must be below it.
pub const VOCAB_SIZE: u32 = 32_000;

/// Reserved markers, ids `0..SPECIAL_TOKENS.len()`.
pub const SPECIAL_TOKENS: [&str; 5] = [
    "<|endoftext|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
];

const SYLLABLES: [&str; 32] = [
    "ba", "ce", "di", "fo", "gu", "ha", "je", "ki", "lo", "mu", "na", "pe", "qui", "ro", "su",
    "ta", "ve", "wi", "xo", "yu", "za", "bre", "cla", "dro", "fen", "gri", "tor", "sel", "mon",
    "dar", "lin", "vus",
];

/// A token id.
pub type TokenId = u32;

struct Vocab {
    pieces: Vec<String>,
    ids: HashMap<String, TokenId>,
    /// First id of the space-prefixed words and how many there are; bare words
    /// follow them, as many.
    word_start: TokenId,
    words_per_kind: u32,
}

fn vocab() -> &'static Vocab {
    static VOCAB: OnceLock<Vocab> = OnceLock::new();
    VOCAB.get_or_init(build_vocab)
}

/// Everything but letters, digits, space, newline and tab: each is a token
/// of its own (non-ASCII ones become `?`).
fn is_symbol(c: char) -> bool {
    !c.is_ascii_alphanumeric() && !matches!(c, ' ' | '\n' | '\t')
}

fn synthetic_word(mut index: u32) -> String {
    // Bijective base-32 numeration over syllables: distinct indexes give
    // distinct words, and no word is a prefix-run of two others because every
    // syllable is lowercase letters and words are whole letter runs.
    let mut word = String::new();
    loop {
        word.push_str(SYLLABLES[(index % 32) as usize]);
        index /= 32;
        if index == 0 {
            break;
        }
        index -= 1;
    }
    word
}

fn build_vocab() -> Vocab {
    let mut pieces: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
    pieces.extend((0x20u8..0x7f).map(|b| (b as char).to_string()));
    pieces.push("\n".to_string());
    pieces.push("\t".to_string());
    pieces.extend(
        (0x21u8..0x7f)
            .map(|b| b as char)
            .filter(|c| !c.is_ascii_alphabetic())
            .map(|c| format!(" {c}")),
    );
    let word_start = pieces.len() as TokenId;
    let words_per_kind = (VOCAB_SIZE - word_start) / 2;
    let words: Vec<String> = (0..words_per_kind).map(synthetic_word).collect();
    pieces.extend(words.iter().map(|w| format!(" {w}")));
    pieces.extend(words);
    // An odd remainder is padded with spare words so the size is exact.
    let mut spare = words_per_kind;
    while pieces.len() < VOCAB_SIZE as usize {
        pieces.push(format!(" {}", synthetic_word(spare)));
        spare += 1;
    }
    let ids = pieces
        .iter()
        .enumerate()
        .map(|(id, piece)| (piece.clone(), id as TokenId))
        .collect();
    Vocab {
        pieces,
        ids,
        word_start,
        words_per_kind,
    }
}

fn stable_hash(text: &str) -> u64 {
    // SipHash with the fixed zero key of `DefaultHasher::new()`: stable
    // within a build, which is all the simulator needs.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Splits `text` into tokens by the rules in the module documentation.
pub fn encode(text: &str) -> Vec<TokenId> {
    let vocab = vocab();
    let mut tokens = Vec::with_capacity(text.len() / 4 + 1);
    let mut rest = text;
    while let Some(first) = rest.chars().next() {
        if let Some(special) = SPECIAL_TOKENS.iter().position(|s| rest.starts_with(s)) {
            tokens.push(special as TokenId);
            rest = &rest[SPECIAL_TOKENS[special].len()..];
            continue;
        }
        let spaced = first == ' ';
        let body = if spaced { &rest[1..] } else { rest };
        let next = body.chars().next();
        let piece_len = match next {
            Some(c) if c.is_ascii_alphabetic() => {
                body.find(|c: char| !c.is_ascii_alphabetic())
                    .unwrap_or(body.len())
                    + usize::from(spaced)
            }
            Some(c) if spaced && (c.is_ascii_digit() || is_symbol(c)) => 1 + c.len_utf8(),
            _ => first.len_utf8(),
        };
        let piece = &rest[..piece_len];
        rest = &rest[piece_len..];
        let id = match vocab.ids.get(piece) {
            Some(&id) => id,
            None if piece
                .trim_start()
                .starts_with(|c: char| c.is_ascii_alphabetic()) =>
            {
                let offset = (stable_hash(piece) % u64::from(vocab.words_per_kind)) as TokenId;
                let kind_start = if spaced {
                    vocab.word_start
                } else {
                    vocab.word_start + vocab.words_per_kind
                };
                kind_start + offset
            }
            None if spaced => vocab.ids[" ?"],
            None => vocab.ids["?"],
        };
        tokens.push(id);
    }
    tokens
}

/// The text of one token, or `None` when the id is outside the vocabulary.
pub fn piece(id: TokenId) -> Option<&'static str> {
    vocab().pieces.get(id as usize).map(String::as_str)
}

/// Concatenates the pieces of `ids`; ids outside the vocabulary are skipped.
pub fn decode(ids: &[TokenId]) -> String {
    ids.iter().filter_map(|&id| piece(id)).collect()
}

/// The id of the `index`-th space-prefixed word (modulo their number): what
/// the simulator generates as output.
pub fn spaced_word(index: u64) -> TokenId {
    let vocab = vocab();
    vocab.word_start + (index % u64::from(vocab.words_per_kind)) as TokenId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_has_the_documented_size_and_unique_pieces() {
        let vocab = vocab();
        assert_eq!(vocab.pieces.len(), VOCAB_SIZE as usize);
        assert_eq!(
            vocab.ids.len(),
            VOCAB_SIZE as usize,
            "pieces must be unique"
        );
    }

    #[test]
    fn splits_words_digits_punctuation_and_whitespace() {
        let pieces: Vec<&str> = encode("Hello world, 42 times!\n\tok")
            .iter()
            .map(|&id| piece(id).unwrap())
            .collect();
        assert_eq!(pieces.len(), 10, "{pieces:?}");
        // Punctuation, digits and whitespace are in the vocabulary verbatim.
        assert_eq!(pieces[2], ",");
        assert_eq!(pieces[3], " 4");
        assert_eq!(pieces[4], "2");
        assert_eq!(pieces[6], "!");
        assert_eq!(pieces[7], "\n");
        assert_eq!(pieces[8], "\t");
        // English words are not synthetic words: each becomes one word of the
        // same kind, space-prefixed or bare.
        for (index, spaced) in [(0, false), (1, true), (5, true), (9, false)] {
            assert_eq!(pieces[index].starts_with(' '), spaced, "{pieces:?}");
            assert!(
                pieces[index]
                    .trim_start()
                    .chars()
                    .all(|c| c.is_ascii_lowercase())
            );
        }
    }

    #[test]
    fn encode_is_idempotent_through_decode() {
        let text = "  The quick brown fox — jumps over 13 lazy dogs;\nfn main() { x += 1 }";
        let once = encode(text);
        assert_eq!(encode(&decode(&once)), once);
    }

    #[test]
    fn vocabulary_words_round_trip() {
        let ids: Vec<TokenId> = (0..500).map(spaced_word).collect();
        assert_eq!(encode(&decode(&ids)), ids);
    }

    #[test]
    fn special_markers_are_single_tokens() {
        assert_eq!(encode("<|user|>hi<|end|>").len(), 3);
        assert_eq!(encode("<|user|>")[0], 2);
    }
}
