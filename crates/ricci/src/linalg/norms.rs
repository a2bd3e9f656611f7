//! Matrix and vector norms, rank and condition number (numpy's / torch's
//! definitions), built from recorded ops so that they are differentiable
//! (the spectral and nuclear norms and `cond` through the SVD).

use super::{lstsq::default_rtol, matrix_dims, svdvals};
use crate::error::{Error, Result};
use crate::ops::Dims;
use crate::tensor::Tensor;

/// Which matrix norm [`matrix_norm`] computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatrixNorm {
    /// Frobenius: `sqrt(Σ a_ij²)` (`'fro'`).
    #[default]
    Frobenius,
    /// Nuclear: the sum of singular values (`'nuc'`).
    Nuclear,
    /// Spectral: the largest singular value (`2`).
    Spectral,
}

/// The norm `ord` of each matrix of `a: [..., m, n]`, shape `[...]`.
///
/// ```
/// # use ricci::{Tensor, linalg::{self, MatrixNorm}};
/// let a = Tensor::from_vec(vec![3.0f64, 0.0, 0.0, 4.0], &[2, 2])?;
/// assert_eq!(linalg::matrix_norm(&a, MatrixNorm::Frobenius)?.to_f64()?, 5.0);
/// assert!((linalg::matrix_norm(&a, MatrixNorm::Nuclear)?.to_f64()? - 7.0).abs() < 1e-14);
/// assert!((linalg::matrix_norm(&a, MatrixNorm::Spectral)?.to_f64()? - 4.0).abs() < 1e-14);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn matrix_norm(a: &Tensor, ord: MatrixNorm) -> Result<Tensor> {
    matrix_dims("matrix_norm", a)?;
    match ord {
        MatrixNorm::Frobenius => Ok(a.square().sum([-2i64, -1], false)?.sqrt()),
        MatrixNorm::Nuclear => svdvals(a)?.sum(-1, false),
        MatrixNorm::Spectral => svdvals(a)?.narrow(-1, 0, 1)?.squeeze(-1),
    }
}

/// The `ord`-norm of `x` over `dims` (torch's `vector_norm`): `ord` may be
/// any positive number, `f64::INFINITY` (max |x|), `f64::NEG_INFINITY`
/// (min |x|) or `0` (number of non-zeros, not differentiable).
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let x = Tensor::from_vec(vec![3.0f64, -4.0], &[2])?;
/// assert_eq!(linalg::vector_norm(&x, 2.0, -1, false)?.to_f64()?, 5.0);
/// assert_eq!(linalg::vector_norm(&x, f64::INFINITY, -1, false)?.to_f64()?, 4.0);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn vector_norm(x: &Tensor, ord: f64, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
    if ord.is_nan() || (ord < 0.0 && ord != f64::NEG_INFINITY) {
        return Err(Error::invalid(
            "vector_norm",
            format!("ord must be positive, 0, inf or -inf, got {ord}"),
        ));
    }
    if ord == f64::NEG_INFINITY {
        return x.abs().min(dims, keepdim);
    }
    if ord == 0.0 {
        return x.ne(&x.zeros_like())?.detach().sum(dims, keepdim);
    }
    x.norm(ord, dims, keepdim)
}

/// The numerical rank of each matrix of `a: [..., m, n]`: the number of
/// singular values above `rtol · σ_max` (`None`: `max(m, n) · eps`, numpy's
/// default), as a float tensor of shape `[...]`.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 2.0, 4.0], &[2, 2])?;
/// assert_eq!(linalg::matrix_rank(&a, None)?.to_f64()?, 1.0);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn matrix_rank(a: &Tensor, rtol: Option<f64>) -> Result<Tensor> {
    let rtol = match rtol {
        Some(r) => r,
        None => default_rtol(a)?,
    };
    let s = {
        let _g = crate::no_grad();
        svdvals(a)?
    };
    let smax = s.max(-1, true)?;
    s.gt(&smax.mul_scalar(rtol))?.sum(-1, false)
}

/// The 2-norm condition number `σ_max / σ_min` of each matrix of
/// `a: [..., m, n]` (infinite for a singular matrix). Differentiable.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![10.0f64, 0.0, 0.0, 0.1], &[2, 2])?;
/// assert!((linalg::cond(&a)?.to_f64()? - 100.0).abs() < 1e-10);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn cond(a: &Tensor) -> Result<Tensor> {
    let s = svdvals(a)?;
    let k = s.shape()[s.rank() - 1];
    if k == 0 {
        return Err(Error::invalid(
            "cond",
            format!("needs a non-empty matrix, got shape {:?}", a.shape()),
        ));
    }
    s.narrow(-1, 0, 1)?
        .squeeze(-1)?
        .div(&s.narrow(-1, k - 1, 1)?.squeeze(-1)?)
}
