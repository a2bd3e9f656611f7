//! Randomized SVD (Halko, Martinsson & Tropp 2011, algorithms 4.4 + 5.1).
//!
//! A Gaussian test matrix `Ω: [n, k + p]` samples the range, `Y = A Ω`;
//! `q` power iterations `Y = A (Aᵀ Q)`, each re-orthonormalised by QR so
//! that small singular values are not lost to rounding, sharpen it when
//! the spectrum decays slowly. With `Q` an orthonormal basis of `Y`, the
//! small SVD of `B = Qᵀ A` gives `A ≈ (Q Ũ) S Vᵀ`. The cost is a few
//! products with `A` instead of an `O(m n min(m, n))` SVD; the error is
//! close to the optimal rank-k error `σ_{k+1}` (HMT Thm 10.6).
//!
//! Built from recorded ops (matmul, qr, svd_thin), so it is differentiable.

use super::{matrix_dims, mt, qr, svd_thin, Svd};
use crate::error::{Error, Result};
use crate::tensor::{Rng, Tensor};

/// Parameters of [`randomized_svd`].
#[derive(Clone, Debug)]
pub struct RandomizedSvdParams {
    /// Extra sampled directions beyond the rank (HMT's `p`; 10 is their advice).
    pub oversample: usize,
    /// Power iterations (HMT's `q`); 2 suits slowly decaying spectra.
    pub power_iters: usize,
    /// Seed of the Gaussian test matrix.
    pub seed: u64,
}

impl Default for RandomizedSvdParams {
    fn default() -> Self {
        RandomizedSvdParams {
            oversample: 10,
            power_iters: 2,
            seed: 0,
        }
    }
}

/// An approximate rank-`rank` thin SVD of each matrix of `a: [..., m, n]`:
/// `U: [..., m, r]`, `S: [..., r]`, `Vᵀ: [..., r, n]`.
///
/// ```
/// # use ricci::{Tensor, DType, Rng, linalg};
/// let mut rng = Rng::new(0);
/// // An exactly rank-3 matrix is recovered to rounding.
/// let a = Tensor::randn(&[80, 3], DType::F64, &mut rng)
///     .matmul(&Tensor::randn(&[3, 60], DType::F64, &mut rng))?;
/// let svd = linalg::randomized_svd(&a, 3, &Default::default())?;
/// assert!(svd.reconstruct()?.sub(&a)?.abs().max_all()?.to_f64()? < 1e-10);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn randomized_svd(a: &Tensor, rank: usize, params: &RandomizedSvdParams) -> Result<Svd> {
    let op = "randomized_svd";
    let (batch, m, n) = matrix_dims(op, a)?;
    if rank == 0 || rank > m.min(n) {
        return Err(Error::invalid(
            op,
            format!(
                "rank must be in 1..={} for shape {:?}, got {rank}",
                m.min(n),
                a.shape()
            ),
        ));
    }
    let l = (rank + params.oversample).min(m.min(n));
    let mut rng = Rng::new(params.seed);
    let mut shape = batch;
    shape.extend([n, l]);
    let omega = Tensor::randn(&shape, a.dtype(), &mut rng);
    let at = mt(a)?;
    let mut q = qr(&a.matmul(&omega)?)?.q;
    for _ in 0..params.power_iters {
        let z = qr(&at.matmul(&q)?)?.q;
        q = qr(&a.matmul(&z)?)?.q;
    }
    let small = svd_thin(&mt(&q)?.matmul(a)?)?;
    Ok(Svd {
        u: q.matmul(&small.u)?.narrow(-1, 0, rank)?,
        s: small.s.narrow(-1, 0, rank)?,
        vt: small.vt.narrow(-2, 0, rank)?,
    })
}
