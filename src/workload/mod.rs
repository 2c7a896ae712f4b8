//! What is sent: synthetic content, tokenised once into a pool, and the
//! working-set prompts and unique suffixes built from it.

pub mod prompts;
pub mod text;

pub use prompts::{BuiltRequest, FactoryOptions, PromptFactory, TokenPool};
