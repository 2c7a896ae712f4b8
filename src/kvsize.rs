//! KV-cache size estimate: bytes per token from the model's shape, per
//! request and for the working set, as the seed tool prints before a run.

use std::fmt::Write;

use crate::error::{Error, Result};

/// The attention shape that sets KV bytes per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub layers: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
}

/// Known models, matched by a lowercase substring of the model id; the
/// first match wins, so more specific names come first.
const MODELS: &[(&str, ModelShape)] = &[
    ("llama-3.1-405b", shape(126, 8, 128)),
    ("llama-3.1-70b", shape(80, 8, 128)),
    ("llama-3.3-70b", shape(80, 8, 128)),
    ("llama-3.1-8b", shape(32, 8, 128)),
    ("llama-3-8b", shape(32, 8, 128)),
    ("llama-3.2-3b", shape(28, 8, 128)),
    ("llama-3.2-1b", shape(16, 8, 64)),
    ("qwen2.5-72b", shape(80, 8, 128)),
    ("qwen2.5-32b", shape(64, 8, 128)),
    ("qwen2.5-14b", shape(48, 8, 128)),
    ("qwen2.5-7b", shape(28, 4, 128)),
    ("qwen3-32b", shape(64, 8, 128)),
    ("qwen3-8b", shape(36, 8, 128)),
    ("mixtral-8x7b", shape(32, 8, 128)),
    ("mistral-7b", shape(32, 8, 128)),
    ("gpt-oss-120b", shape(36, 8, 64)),
    ("gpt-oss-20b", shape(24, 8, 64)),
    ("smollm2-135m", shape(30, 3, 64)),
    // The embedded simulator is modelled on an 8B Llama-shaped model.
    ("cacherate-sim", shape(32, 8, 128)),
];

const fn shape(layers: u32, kv_heads: u32, head_dim: u32) -> ModelShape {
    ModelShape {
        layers,
        kv_heads,
        head_dim,
    }
}

impl ModelShape {
    /// The table's entry for `model`, if any.
    pub fn lookup(model: &str) -> Option<ModelShape> {
        let model = model.to_lowercase();
        MODELS
            .iter()
            .find(|(name, _)| model.contains(name))
            .map(|(_, shape)| *shape)
    }

    /// The shape from the table with each given flag overriding it; `None`
    /// when some dimension is known from neither.
    pub fn resolve(
        model: Option<&str>,
        layers: Option<u32>,
        kv_heads: Option<u32>,
        head_dim: Option<u32>,
    ) -> Option<ModelShape> {
        let known = model.and_then(ModelShape::lookup);
        Some(ModelShape {
            layers: layers.or(known.map(|s| s.layers))?,
            kv_heads: kv_heads.or(known.map(|s| s.kv_heads))?,
            head_dim: head_dim.or(known.map(|s| s.head_dim))?,
        })
    }

    /// K and V, for every layer and KV head.
    pub fn bytes_per_token(&self, bytes_per_element: u8) -> u64 {
        2 * u64::from(self.layers)
            * u64::from(self.kv_heads)
            * u64::from(self.head_dim)
            * u64::from(bytes_per_element)
    }
}

/// `ceil(n / chunk) * chunk`.
pub fn round_up(n: u64, chunk: u64) -> u64 {
    n.div_ceil(chunk) * chunk
}

/// Number of working-set prompts for a context: `ceil(ws / ctx_rounded)`,
/// at least one.
pub fn working_set_prompts(working_set_size: u64, context_size: u64, chunk: u64) -> u64 {
    working_set_size
        .div_ceil(round_up(context_size, chunk))
        .max(1)
}

/// `1.50 GiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// The estimate as printed before a run and by `cacherate kv-size`.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub shape: ModelShape,
    pub bytes_per_element: u8,
    /// Per context size: (context, rounded context, prompts, bytes per
    /// request, bytes of the working set).
    pub rows: Vec<(u64, u64, u64, u64, u64)>,
}

impl Estimate {
    pub fn new(
        shape: ModelShape,
        bytes_per_element: u8,
        context_sizes: &[u64],
        working_set_size: Option<u64>,
        chunk: u64,
    ) -> Result<Estimate> {
        if !matches!(bytes_per_element, 1 | 2) {
            return Err(Error::Usage(format!(
                "--kv-cache-quantization is bytes per element: 1 (FP8) or 2 (FP16), got \
                 {bytes_per_element}"
            )));
        }
        if chunk == 0 {
            return Err(Error::Usage("--chunk-size must be at least 1".into()));
        }
        let per_token = shape.bytes_per_token(bytes_per_element);
        let rows = context_sizes
            .iter()
            .map(|&context| {
                let rounded = round_up(context, chunk);
                let prompts = working_set_size
                    .map(|ws| working_set_prompts(ws, context, chunk))
                    .unwrap_or(0);
                (
                    context,
                    rounded,
                    prompts,
                    rounded * per_token,
                    prompts * rounded * per_token,
                )
            })
            .collect();
        Ok(Estimate {
            shape,
            bytes_per_element,
            rows,
        })
    }

    pub fn render(&self) -> String {
        let per_token = self.shape.bytes_per_token(self.bytes_per_element);
        let mut out = String::new();
        let precision = if self.bytes_per_element == 1 {
            "FP8"
        } else {
            "FP16"
        };
        let _ = writeln!(
            out,
            "KV cache estimate: {} layers x {} KV heads x {} head dim, {precision}: {} per token",
            self.shape.layers,
            self.shape.kv_heads,
            self.shape.head_dim,
            human_bytes(per_token)
        );
        for &(context, rounded, prompts, request, working_set) in &self.rows {
            let _ = write!(
                out,
                "  context {context} ({rounded} aligned): {} per request",
                human_bytes(request)
            );
            if prompts > 0 {
                let _ = write!(
                    out,
                    "; working set of {prompts} prompts ({} tokens): {}",
                    prompts * rounded,
                    human_bytes(working_set)
                );
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_8b_fp16_is_128_kib_per_token() {
        let shape = ModelShape::lookup("meta-llama/Llama-3.1-8B-Instruct").unwrap();
        assert_eq!(shape.bytes_per_token(2), 131_072);
        assert_eq!(shape.bytes_per_token(1), 65_536);
    }

    #[test]
    fn flags_override_and_fill_the_table() {
        assert_eq!(
            ModelShape::resolve(Some("unknown/model"), None, None, None),
            None
        );
        let shape = ModelShape::resolve(Some("unknown"), Some(10), Some(2), Some(64)).unwrap();
        assert_eq!(shape.bytes_per_token(2), 2 * 10 * 2 * 64 * 2);
        let shape = ModelShape::resolve(Some("Qwen/Qwen2.5-7B"), Some(1), None, None).unwrap();
        assert_eq!((shape.layers, shape.kv_heads), (1, 4));
    }

    #[test]
    fn working_set_rounds_contexts_up_to_the_chunk() {
        assert_eq!(round_up(8000, 256), 8192);
        assert_eq!(working_set_prompts(2_000_000, 8000, 256), 245);
        assert_eq!(working_set_prompts(100, 8000, 256), 1);
        let estimate = Estimate::new(shape(32, 8, 128), 2, &[8000], Some(2_000_000), 256).unwrap();
        assert_eq!(
            estimate.rows[0],
            (8000, 8192, 245, 8192 * 131_072, 245 * 8192 * 131_072)
        );
        let text = estimate.render();
        assert!(text.contains("128.00 KiB per token"), "{text}");
        assert!(text.contains("1.00 GiB per request"), "{text}");
        assert!(
            text.contains("245 prompts (2007040 tokens): 245.00 GiB"),
            "{text}"
        );
    }
}
