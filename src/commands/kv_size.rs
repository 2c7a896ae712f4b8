//! `cacherate kv-size`: the KV-cache size of a request and of a working
//! set, from a model's shape.

use crate::cli::KvSizeArgs;
use crate::error::{Error, Result};

/// `cacherate kv-size`.
pub fn command(args: KvSizeArgs) -> Result<i32> {
    let shape = crate::kvsize::ModelShape::resolve(
        args.model.as_deref(),
        args.num_layers,
        args.num_kv_heads,
        args.head_dim,
    )
    .ok_or_else(|| {
        Error::Usage(format!(
            "the model shape is unknown{}: give --num-layers, --num-kv-heads and --head-dim, or \
             a --model from the built-in table (Llama 3.x, Qwen 2.5/3, Mistral, Mixtral, \
             gpt-oss, SmolLM2)",
            args.model
                .as_deref()
                .map(|m| format!(" for {m}"))
                .unwrap_or_default()
        ))
    })?;
    let estimate = crate::kvsize::Estimate::new(
        shape,
        args.kv_cache_quantization,
        &args.context_sizes,
        args.working_set_size,
        args.chunk_size,
    )?;
    print!("{}", estimate.render());
    Ok(crate::exit::PASS)
}
