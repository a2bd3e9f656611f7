//! BERT encoders and sentence embeddings (all-MiniLM-L6-v2 and any other
//! BERT-family sentence-transformers checkpoint).
//!
//! The encoder, in ricci ops:
//!
//! ```text
//! x = LayerNorm(word[ids] + position[0..seq] + token_type[type_ids])
//! for each layer:
//!     q, k, v = split(x Wqkvᵀ + bqkv) into heads        (one product for all three)
//!     a = softmax(q kᵀ / sqrt(d_head) + mask) v          (mask: -1e9 on padding keys)
//!     x = LayerNorm(x + a Woᵀ + bo)
//!     x = LayerNorm(x + gelu(x W1ᵀ + b1) W2ᵀ + b2)       (gelu with erf, as BERT)
//! ```
//!
//! then pooling over the non-padding tokens (mean, CLS, max, mean/sqrt(n))
//! and, when the folder's `modules.json` has a Normalize module, division
//! by the L2 norm. Batches are padded to their longest text and texts
//! longer than `max_seq_length` are truncated, as sentence-transformers
//! does; [`SentenceEncoder`] is the entry point.
//!
//! Tokenisation is the Hugging Face `tokenizers` crate reading the
//! folder's `tokenizer.json`, built without its network and progress-bar
//! features. Its regex backend is `fancy-regex` (pure Rust) rather than
//! `onig` (a C library): BERT's WordPiece pipeline uses no regex at all,
//! and a pure-Rust build needs no C toolchain and compiles faster.

mod config;
mod model;
mod sentence;

pub use config::{Activation, BertConfig, Pooling, SentenceConfig};
pub use model::BertModel;
pub use sentence::{pool, SentenceEncoder, DEFAULT_BATCH_SIZE};
