//! # ricci
//!
//! The mathematics underneath large AI models, in Rust: n-d tensors with
//! broadcasting and zero-copy views, matrix products at BLAS speed, and
//! reverse-mode autograd whose gradients are themselves differentiable
//! (see [`autograd`]).
//!
//! ```
//! use ricci::{Tensor, DType, Rng};
//!
//! // A batch of 2 sequences of 3 tokens with 4-dim embeddings: [batch, seq, emb].
//! let mut rng = Rng::new(0);
//! let x = Tensor::randn(&[2, 3, 4], DType::F32, &mut rng);
//! let w = Tensor::randn(&[4, 4], DType::F32, &mut rng);
//! // Attention scores: (x W)(x W)^T / sqrt(d), softmax over keys.
//! let q = x.matmul(&w)?;
//! let scores = q.matmul(&q.transpose(1, 2)?)?.div_scalar(2.0);
//! let attn = scores.softmax(-1)?;
//! assert_eq!(attn.shape(), &[2, 3, 3]);
//! let row_sums = attn.sum(-1, false)?.to_vec::<f32>()?;
//! assert!(row_sums.iter().all(|s| (s - 1.0).abs() < 1e-6));
//! # Ok::<(), ricci::Error>(())
//! ```

pub mod alloc;
pub mod analysis;
pub mod autograd;
pub mod data;
pub mod decomp;
pub mod einsum;
mod error;
pub mod io;
pub mod kernels;
pub mod linalg;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod tensor;

pub use autograd::no_grad;
pub use einsum::{
    contract_network, einsum, einsum_path, einsum_path_with, einsum_with, EinsumPath, PathOptions,
    Strategy,
};
pub use error::{Error, Result};
pub use ops::{linear, Dim, Dims};
pub use tensor::{DType, Element, Layout, Rng, Tensor};

/// The README's tour, compiled and run as a doc test so it stays true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
