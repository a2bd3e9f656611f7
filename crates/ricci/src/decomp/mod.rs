//! Tensor decompositions: CP, Tucker and tensor train.
//!
//! # Unfoldings (the convention everything here uses)
//! The mode-`n` unfolding `X₍ₙ₎` of `X: [I₀, …, I_{d-1}]` moves mode `n` to
//! the front and reshapes, in C (row-major) order, to `[Iₙ, ∏_{m≠n} Iₘ]`:
//! the remaining modes keep their order and the last one varies fastest.
//! This is TensorLy's convention (numpy's
//! `np.moveaxis(x, n, 0).reshape(x.shape[n], -1)`), not Kolda & Bader's
//! Fortran-order one; the two differ by a permutation of columns only.
//! With it, the Khatri-Rao product `A ⊙ B` (column-wise Kronecker) lists
//! the rows of its first factor slowest, and
//! `X₍ₙ₎ = Aₙ diag(λ) (A₀ ⊙ … ⊙ Aₙ₋₁ ⊙ Aₙ₊₁ ⊙ … ⊙ A_{d-1})ᵀ` for a CP tensor.
//! The mode-`n` product `X ×ₙ M` (`M: [J, Iₙ]`) multiplies every mode-`n`
//! fibre by `M`: `(X ×ₙ M)₍ₙ₎ = M X₍ₙ₎`.
//!
//! # The three decompositions
//! - **CP** (CANDECOMP/PARAFAC), [`cp_als`]: `X ≈ Σᵣ λᵣ a⁽⁰⁾ᵣ ∘ … ∘ a⁽ᵈ⁻¹⁾ᵣ`
//!   with unit-norm factor columns and weights `λ`, fitted by alternating
//!   least squares. Each step solves the normal equations
//!   `Aₙ V = X₍ₙ₎ (⊙_{m≠n} Aₘ)` with `V = ∗_{m≠n} AₘᵀAₘ` (the Hadamard
//!   product of `R x R` Gram matrices), so the only large computation is the
//!   MTTKRP on the right, done as one matrix product on a zero-copy view of
//!   `X` (Kolda & Bader 2009, §3.4).
//! - **Tucker**, [`tucker_hosvd`] and [`tucker_hooi`]: `X ≈ G ×₀ U₀ ×₁ … ×_{d-1} U_{d-1}`
//!   with orthonormal `Uₙ: [Iₙ, rₙ]` and a core `G: [r₀, …, r_{d-1}]`.
//!   HOSVD takes `Uₙ` as the leading left singular vectors of `X₍ₙ₎` (De
//!   Lathauwer et al. 2000); HOOI then improves them in turn from
//!   `X ×_{m≠n} Uₘᵀ`, each step not increasing the error.
//! - **Tensor train**, [`tensor_train`]: `X[i₀, …, i_{d-1}] = G₀[i₀] ⋯ G_{d-1}[i_{d-1}]`
//!   with cores `Gₖ: [rₖ₋₁, Iₖ, rₖ]`, `r₋₁ = r_{d-1} = 1`, by TT-SVD
//!   (Oseledets 2011): sweep left to right, truncating each reshaped SVD at
//!   `δ = ε/√(d−1) · ‖X‖_F`, so that `‖X − X̂‖_F ≤ ε ‖X‖_F`.
//!
//! Leading singular vectors of a wide matrix `M: [m, n]`, `m ≪ n` (the
//! usual unfolding), are computed as the eigenvectors of the small Gram
//! matrix `M Mᵀ` (one matrix product and an `m x m` eigh) instead of an SVD
//! of `M`: the leading vectors come out accurate to about
//! `eps · (σ₁ / σᵣ)²`, and TT-SVD takes this route only when its truncation
//! threshold is far above the Gram's rounding level.
//!
//! The fitting routines run without recording a graph; their results
//! (`Cp`, `Tucker`, `TensorTrain`) hold plain tensors, and `reconstruct()`
//! is built from differentiable ops, so a decomposition can be refined by
//! gradient descent on its factors. Everything works in f32 and f64.
//!
//! ```
//! use ricci::decomp::{cp_als, tensor_train, tucker_hosvd, CpParams, TtParams};
//! use ricci::{DType, Rng, Tensor};
//!
//! // A rank-2 CP tensor [6, 7, 8].
//! let mut rng = Rng::new(0);
//! let a = Tensor::randn(&[6, 2], DType::F64, &mut rng);
//! let b = Tensor::randn(&[7, 2], DType::F64, &mut rng);
//! let c = Tensor::randn(&[8, 2], DType::F64, &mut rng);
//! let x = ricci::einsum("ir,jr,kr->ijk", &[&a, &b, &c])?;
//!
//! let cp = cp_als(&x, 2, &CpParams { tol: 1e-14, max_iter: 500, ..CpParams::default() })?;
//! assert!(cp.relative_error(&x)? < 1e-8);
//! let tucker = tucker_hosvd(&x, &[2, 2, 2])?;
//! assert!(tucker.relative_error(&x)? < 1e-12);
//! let tt = tensor_train(&x, &TtParams { eps: Some(1e-12), max_rank: None })?;
//! assert_eq!(tt.ranks(), vec![1, 2, 2, 1]);
//! assert!(tt.num_parameters() < x.numel());
//! # Ok::<(), ricci::Error>(())
//! ```

mod cp;
mod subspace;
mod tensor_ops;
mod tt;
mod tucker;

pub use cp::{cp_als, Cp, CpInit, CpParams};
pub use tensor_ops::{fold, khatri_rao, kronecker, mode_product, unfold};
pub use tt::{tensor_train, TensorTrain, TtParams};
pub use tucker::{tucker_hooi, tucker_hosvd, Tucker, TuckerParams};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Checks the input of a decomposition: order at least `min_order`, not
/// empty, every value finite.
pub(crate) fn check_input(op: &'static str, x: &Tensor, min_order: usize) -> Result<()> {
    if x.rank() < min_order {
        return Err(Error::invalid(
            op,
            format!(
                "needs a tensor of order {min_order} or more, got shape {:?} (order {}); for a matrix use linalg::svd",
                x.shape(),
                x.rank()
            ),
        ));
    }
    if x.numel() == 0 {
        return Err(Error::invalid(
            op,
            format!("the input of shape {:?} is empty", x.shape()),
        ));
    }
    // One cheap pass; the element is located only when there is one.
    if !x.abs().sum_all().to_f64()?.is_finite() {
        let values = x.contiguous().to_vec_f64();
        if let Some(flat) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                op,
                format!(
                    "the input of shape {:?} has the non-finite value {} at index {:?}",
                    x.shape(),
                    values[flat],
                    unravel(flat, x.shape())
                ),
            ));
        }
    }
    Ok(())
}

/// The multi-index of flat (C-order) position `flat` in `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        idx[d] = flat % n.max(1);
        flat /= n.max(1);
    }
    idx
}

/// `‖a − b‖_F / ‖b‖_F` for tensors of one shape (0 when both are zero).
/// A convergence tolerance must be a number `>= 0`.
pub(crate) fn check_tol(op: &'static str, tol: f64) -> Result<()> {
    if tol.is_nan() || tol < 0.0 {
        return Err(Error::invalid(op, format!("tol must be >= 0, got {tol}")));
    }
    Ok(())
}

pub(crate) fn relative_error_between(op: &'static str, approx: &Tensor, x: &Tensor) -> Result<f64> {
    if approx.shape() != x.shape() {
        return Err(Error::shape(op, approx.shape(), x.shape()));
    }
    let x = x.detach().to_dtype(approx.dtype());
    let num = approx.detach().sub(&x)?.norm_all().to_f64()?;
    let den = x.norm_all().to_f64()?;
    Ok(if den > 0.0 {
        num / den
    } else if num == 0.0 {
        0.0
    } else {
        f64::INFINITY
    })
}

/// Machine epsilon of `x`'s dtype.
pub(crate) fn eps_of(x: &Tensor) -> f64 {
    crate::linalg::eps(x.dtype())
}
