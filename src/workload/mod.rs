//! What is sent: synthetic content, tokenised once into a pool, and the
//! working-set prompts and unique suffixes built from it.

pub mod content;
pub mod prompts;
pub mod text;
pub mod text_pool;
pub mod tokenizer;

pub use prompts::{BuiltRequest, Content, FactoryOptions, PromptFactory, TokenPool, suffix_nonce};
pub use text_pool::TextPool;
