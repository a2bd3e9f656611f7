//! Einstein summation with an optimised contraction path, differentiable.
//!
//! `einsum("bhqd,bhkd->bhqk", &[&q, &k])` names every dim of every operand
//! with a letter; letters shared between operands are multiplied together,
//! letters absent from the output are summed:
//! `out[b,h,q,k] = Σ_d q[b,h,q,d] · k[b,h,k,d]`. The grammar is numpy's
//! (implicit output, `...` broadcasting, repeated letters for diagonals and
//! traces, scalars as empty terms, size-1 dims broadcasting). A malformed
//! equation is an [`Error::Einsum`](crate::Error::Einsum) naming the
//! position and the fault: a bad character, an index with two sizes (both
//! named), an output index absent from the inputs, a count or rank mismatch.
//!
//! With more than two operands the order of contraction decides the cost:
//! `ij,jk,kl->il` with a tall `i` and a small `l` is far cheaper as
//! `ij,(jk,kl)`. [`einsum_path`] finds the cheapest pairwise order in
//! opt_einsum's cost model, exactly for up to [`OPTIMAL_MAX_OPERANDS`]
//! operands and greedily beyond, and reports it in opt_einsum's linear
//! format. Each pairwise step then runs as permute + reshape + batched
//! matmul (views wherever strides allow), so the speed is the matmul's and
//! the gradient comes from the ops' own VJPs, to any order.
//!
//! [`contract_network`] contracts a tensor network given ncon-style
//! integer labels.
//!
//! ```
//! use ricci::{einsum, einsum_path, DType, Rng, Tensor};
//!
//! let mut rng = Rng::new(0);
//! let a = Tensor::randn(&[64, 8], DType::F64, &mut rng);
//! let b = Tensor::randn(&[8, 64], DType::F64, &mut rng);
//! let c = Tensor::randn(&[64, 2], DType::F64, &mut rng);
//! // (a b) c costs 64·8·64 + 64·64·2 multiply-adds; a (b c) only 8·64·2 + 64·8·2.
//! let plan = einsum_path("ij,jk,kl->il", &[[64, 8], [8, 64], [64, 2]])?;
//! assert_eq!(plan.path, vec![vec![1, 2], vec![0, 1]]);
//! assert!(plan.flops < plan.naive_flops);
//! let d = einsum("ij,jk,kl->il", &[&a, &b, &c])?;
//! let reference = a.matmul(&b)?.matmul(&c)?;
//! let diff = d.sub(&reference)?.abs().max_all()?.to_f64()?;
//! assert!(diff < 1e-12);
//! # Ok::<(), ricci::Error>(())
//! ```

mod exec;
mod network;
mod parse;
mod path;

pub use network::{contract_network, contract_network_path};
pub use path::{EinsumPath, PathOptions, PathStep, Strategy, OPTIMAL_MAX_OPERANDS};

use crate::error::Result;
use crate::tensor::Tensor;

/// Evaluates an einsum equation (numpy's grammar) on `operands`, along the
/// cheapest contraction path. Differentiable in every operand.
///
/// ```
/// # use ricci::{einsum, Tensor};
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// // Trace, transpose, and a matrix-vector product.
/// assert_eq!(einsum("ii", &[&a])?.to_vec::<f32>()?, vec![5.0]);
/// assert_eq!(einsum("ij->ji", &[&a])?.to_vec::<f32>()?, vec![1.0, 3.0, 2.0, 4.0]);
/// let x = Tensor::from_vec(vec![1.0f32, 1.0], &[2])?;
/// assert_eq!(einsum("ij,j", &[&a, &x])?.to_vec::<f32>()?, vec![3.0, 7.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn einsum(equation: &str, operands: &[&Tensor]) -> Result<Tensor> {
    einsum_with(equation, operands, &PathOptions::default())
}

/// [`einsum`] with a chosen planner or memory limit.
///
/// ```
/// # use ricci::{einsum_with, PathOptions, Strategy, Tensor, DType};
/// let x = Tensor::ones(&[3, 4], DType::F64);
/// let greedy = PathOptions { strategy: Strategy::Greedy, ..Default::default() };
/// let s = einsum_with("ij,jk,kl->", &[&x, &x.t()?, &x], &greedy)?;
/// assert_eq!(s.to_f64()?, 3.0 * 4.0 * 3.0 * 4.0);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn einsum_with(equation: &str, operands: &[&Tensor], options: &PathOptions) -> Result<Tensor> {
    if let Some(first) = operands.first() {
        for other in &operands[1..] {
            first.same_dtype("einsum", other)?;
        }
    }
    let shapes: Vec<&[usize]> = operands.iter().map(|t| t.shape()).collect();
    let expr = parse::parse(equation, &shapes)?;
    let (path, _) = path::plan_path(&expr, options)?;
    exec::execute(&expr, &path, operands)
}

/// The contraction path [`einsum`] takes for operands of these shapes, with
/// its cost in opt_einsum's model (see [`EinsumPath`]).
///
/// ```
/// # use ricci::einsum_path;
/// // Tucker reconstruction: core [8,8,8] times three factors [64,8].
/// let p = einsum_path("abc,ia,jb,kc->ijk", &[vec![8, 8, 8], vec![64, 8], vec![64, 8], vec![64, 8]])?;
/// assert_eq!(p.path.len(), 3);
/// assert_eq!(p.steps.last().unwrap().shape, vec![64, 64, 64]);
/// assert!(p.flops * 10 < p.naive_flops);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn einsum_path<S: AsRef<[usize]>>(equation: &str, shapes: &[S]) -> Result<EinsumPath> {
    einsum_path_with(equation, shapes, &PathOptions::default())
}

/// [`einsum_path`] with a chosen planner or memory limit.
///
/// ```
/// # use ricci::{einsum_path_with, PathOptions};
/// let shapes = [[10, 10], [10, 10], [10, 10]];
/// let tight = PathOptions { memory_limit: Some(50), ..Default::default() };
/// assert!(einsum_path_with("ab,bc,cd->ad", &shapes, &tight).is_err());
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn einsum_path_with<S: AsRef<[usize]>>(
    equation: &str,
    shapes: &[S],
    options: &PathOptions,
) -> Result<EinsumPath> {
    let shapes: Vec<&[usize]> = shapes.iter().map(|s| s.as_ref()).collect();
    let expr = parse::parse(equation, &shapes)?;
    path::plan(&expr, options)
}
