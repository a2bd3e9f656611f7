//! Orthogonal initialisation of weights (Saxe et al. 2014), as
//! `torch.nn.init.orthogonal_`: the QR of a Gaussian matrix with the signs
//! of R's diagonal folded into Q, so that Q is Haar-distributed.

use super::qr;
use crate::error::{Error, Result};
use crate::tensor::{DType, Rng, Tensor};

/// A tensor of `shape` (rank ≥ 2) whose `[shape[0], prod(shape[1..])]`
/// matricisation has orthonormal rows (if it has fewer rows than columns)
/// or orthonormal columns, times `gain`.
///
/// ```
/// # use ricci::{DType, Rng, Tensor, linalg};
/// let w = linalg::orthogonal(&[64, 32], 1.0, &mut Rng::new(0), DType::F32)?;
/// let wtw = w.t()?.matmul(&w)?;
/// assert!(wtw.sub(&Tensor::eye(32, DType::F32))?.abs().max_all()?.to_f64()? < 1e-5);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn orthogonal(shape: &[usize], gain: f64, rng: &mut Rng, dtype: DType) -> Result<Tensor> {
    if shape.len() < 2 || shape.contains(&0) {
        return Err(Error::invalid(
            "orthogonal",
            format!("needs a shape of rank >= 2 with no zero dim, got {shape:?}"),
        ));
    }
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    let _g = crate::no_grad();
    let flat = Tensor::randn(&[rows, cols], dtype, rng);
    let tall = if rows < cols { flat.t()? } else { flat };
    let f = qr(&tall)?;
    // Q's columns times the signs of R's diagonal: the distribution no longer
    // depends on the sign convention of the Householder reflections.
    let signs = f.r.diagonal(0, 0, 1)?.sign();
    let q = f.q.mul(&signs.unsqueeze(0)?)?;
    let q = if rows < cols { q.t()? } else { q };
    q.mul_scalar(gain).contiguous().reshape(shape.to_vec())
}
