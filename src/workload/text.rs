//! Synthetic prompt content: natural sentences, code, technical terms,
//! symbols and formatting, so routing and tokenisation see varied traffic.
//! Deterministic for a seed.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

const WORDS: &[&str] = &[
    "the",
    "a",
    "system",
    "request",
    "returns",
    "value",
    "after",
    "before",
    "every",
    "when",
    "memory",
    "cache",
    "server",
    "client",
    "model",
    "user",
    "data",
    "time",
    "first",
    "last",
    "quickly",
    "carefully",
    "should",
    "would",
    "might",
    "table",
    "report",
    "shows",
    "that",
    "because",
    "while",
    "under",
    "over",
    "between",
    "small",
    "large",
    "new",
    "old",
    "team",
    "result",
    "change",
    "version",
    "error",
    "message",
    "file",
    "line",
    "number",
    "each",
    "other",
    "river",
    "mountain",
    "window",
    "garden",
    "history",
    "science",
    "music",
    "question",
    "answer",
    "people",
    "market",
    "energy",
    "water",
    "city",
    "morning",
    "evening",
    "story",
    "reason",
];

const TECH: &[&str] = &[
    "Kubernetes",
    "tensor",
    "latency",
    "throughput",
    "p99",
    "gRPC",
    "HTTP/2",
    "TLS",
    "JSON",
    "PostgreSQL",
    "SIMD",
    "CUDA",
    "NVLink",
    "prefix-cache",
    "KV-cache",
    "attention",
    "quantization",
    "FP8",
    "BF16",
    "tokenizer",
    "embedding",
    "scheduler",
    "batch",
    "mutex",
    "epoll",
    "io_uring",
    "mmap",
    "SHA-256",
    "UTF-8",
    "RFC 9110",
    "x86_64",
    "aarch64",
    "PCIe",
    "NUMA",
    "DRAM",
];

const CODE: &[&str] = &[
    "fn main() {\n    let mut total = 0;\n    for item in items.iter() {\n        total += item.len();\n    }\n    println!(\"{}\", total);\n}\n",
    "def handler(event, context):\n    body = json.loads(event[\"body\"])\n    return {\"status\": 200, \"items\": body.get(\"items\", [])}\n",
    "SELECT id, name, created_at FROM users WHERE active = true ORDER BY created_at DESC LIMIT 50;\n",
    "if (ptr == NULL) { return -ENOMEM; }\nmemcpy(dst, src, n * sizeof(uint32_t));\n",
    "const result = await fetch(`${base}/v1/models`, { headers: { Authorization: token } });\n",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }\n",
    "match state {\n    State::Idle => start(),\n    State::Busy(n) if n > 3 => wait(),\n    _ => {}\n}\n",
];

const SYMBOLS: &[&str] = &[
    "->", "=>", "::", "&&", "||", "!=", "<=", ">=", "%", "#", "@", "$", "~", "^", "|", "\\", "[0]",
    "{}", "()", "<T>", "\"\"", "''",
];

fn sentence(rng: &mut StdRng, out: &mut String) {
    let words = rng.random_range(6..18);
    for i in 0..words {
        let word = if rng.random_bool(0.12) {
            *TECH.choose(rng).expect("non-empty")
        } else {
            *WORDS.choose(rng).expect("non-empty")
        };
        if i == 0 {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push(' ');
            if rng.random_bool(0.05) {
                out.push_str(&rng.random_range(0..100_000).to_string());
                out.push(' ');
            }
            if rng.random_bool(0.04) {
                out.push_str(SYMBOLS.choose(rng).expect("non-empty"));
                out.push(' ');
            }
            out.push_str(word);
        }
        if i + 1 < words && rng.random_bool(0.08) {
            out.push(',');
        }
    }
    out.push_str(if rng.random_bool(0.15) { "?" } else { "." });
}

/// About `words` words of mixed content.
pub fn synthetic_text(seed: u64, words: usize) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::with_capacity(words * 7);
    let mut written = 0;
    while written < words {
        match rng.random_range(0..10) {
            0 => {
                out.push_str("\n## ");
                sentence(&mut rng, &mut out);
                out.push('\n');
                written += 8;
            }
            1 => {
                out.push_str("\n```\n");
                let code = CODE.choose(&mut rng).expect("non-empty");
                out.push_str(code);
                out.push_str("```\n");
                written += code.split_whitespace().count();
            }
            2 => {
                out.push_str("\n- ");
                sentence(&mut rng, &mut out);
                out.push_str("\n- ");
                sentence(&mut rng, &mut out);
                out.push('\n');
                written += 24;
            }
            _ => {
                out.push(' ');
                sentence(&mut rng, &mut out);
                written += 12;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_varied() {
        let a = synthetic_text(7, 2000);
        assert_eq!(a, synthetic_text(7, 2000));
        assert_ne!(a, synthetic_text(8, 2000));
        assert!(a.split_whitespace().count() >= 2000);
        assert!(a.contains("```") && a.contains("## ") && a.contains("- "));
    }
}
