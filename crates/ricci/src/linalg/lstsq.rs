//! Least squares and the pseudo-inverse, through the thin SVD:
//! `A⁺ = V diag(1/σ) Uᵀ` over the singular values above a cutoff, and
//! `lstsq(A, B) = A⁺ B`, the minimum-norm least-squares solution (what
//! LAPACK's `gelsd`, numpy's default, returns). Both are built from
//! recorded ops, so they are differentiable wherever the rank is constant.

use super::{matrix_dims, svd_thin};
use crate::error::{Error, Result};
use crate::tensor::{broadcast_shapes, Tensor};

/// The default cutoff `max(m, n) · eps · σ_max` (numpy's `lstsq` and `matrix_rank`).
pub(crate) fn default_rtol(a: &Tensor) -> Result<f64> {
    let (_, m, n) = matrix_dims("pinv", a)?;
    Ok(m.max(n) as f64 * super::eps(a.dtype()))
}

/// The Moore-Penrose pseudo-inverse of each matrix of `a: [..., m, n]`,
/// `[..., n, m]`. Singular values at or below `rtol · σ_max` (`None`: the
/// default `max(m, n) · eps`) are treated as zero.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// // A rank-1 matrix: pinv(A) = Aᵀ / ‖A‖²_F.
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 2.0, 4.0], &[2, 2])?;
/// let p = linalg::pinv(&a, None)?.to_vec::<f64>()?;
/// assert!(p.iter().zip([0.04, 0.08, 0.08, 0.16]).all(|(x, y)| (x - y).abs() < 1e-14));
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn pinv(a: &Tensor, rtol: Option<f64>) -> Result<Tensor> {
    let rtol = match rtol {
        Some(r) => r,
        None => default_rtol(a)?,
    };
    let svd = svd_thin(a)?;
    // The cutoff is a constant per matrix: which values count does not move under a small change.
    let smax = svd.s.detach().max(-1, true)?;
    let keep = svd.s.detach().gt(&smax.mul_scalar(rtol))?;
    let denom = svd.s.mul(&keep)?.add(&keep.rsub_scalar(1.0))?;
    let s_inv = denom.recip().mul(&keep)?;
    super::mt(&svd.vt)?
        .mul(&s_inv.unsqueeze(-2)?)?
        .matmul(&super::mt(&svd.u)?)
}

/// The minimum-norm least-squares solution `X` of `A X ≈ B` for
/// `a: [..., m, n]` and `b: [..., m, k]` (or `[..., m]`), batch dims
/// broadcast; singular values below `rtol · σ_max` (`None`: `max(m, n) · eps`)
/// are cut, as numpy's `lstsq` with `rcond=None`. Differentiable.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// // Fit y = 1 + 2x through three exact points.
/// let a = Tensor::from_vec(vec![1.0f64, 0.0, 1.0, 1.0, 1.0, 2.0], &[3, 2])?;
/// let y = Tensor::from_vec(vec![1.0f64, 3.0, 5.0], &[3])?;
/// let x = linalg::lstsq(&a, &y, None)?.to_vec::<f64>()?;
/// assert!((x[0] - 1.0).abs() < 1e-13 && (x[1] - 2.0).abs() < 1e-13);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn lstsq(a: &Tensor, b: &Tensor, rtol: Option<f64>) -> Result<Tensor> {
    let op = "lstsq";
    a.same_dtype(op, b)?;
    let (abatch, m, _) = matrix_dims(op, a)?;
    let vector =
        b.rank() == 1 || (b.rank() + 1 == a.rank() && b.shape() == &a.shape()[..a.rank() - 1]);
    let bm = if vector { b.unsqueeze(-1)? } else { b.clone() };
    if bm.rank() < 2 || bm.shape()[bm.rank() - 2] != m {
        return Err(Error::shape(op, a.shape(), b.shape()));
    }
    broadcast_shapes(op, &abatch, &bm.shape()[..bm.rank() - 2])
        .map_err(|_| Error::shape(op, a.shape(), b.shape()))?;
    let x = pinv(a, rtol)?.matmul(&bm)?;
    if vector {
        x.squeeze(-1)
    } else {
        Ok(x)
    }
}
