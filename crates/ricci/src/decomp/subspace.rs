//! Leading left singular vectors of unfoldings, by SVD or by the Gram matrix.
//!
//! For a wide `M: [m, n]` (`m ≤ n`; the usual unfolding has `m ≪ n`) the left singular
//! vectors are the eigenvectors of `M Mᵀ: [m, m]`, whose product is one
//! matmul at full speed (`2 m² n` flops) and whose eigh is tiny, where a
//! thin SVD of `M` first needs a QR of `Mᵀ` (`~4 m² n` flops at a lower
//! rate). The price is precision: eigenvalues are `σ²`, so directions with
//! `σ / σ_max` below `√eps` are noise. The *leading* vectors, which Tucker
//! and CP initialisation want, are still accurate to about
//! `eps · (σ_max / σ_r)²`, and any orthonormal basis of them projects
//! exactly; callers that decide a rank from small singular values
//! (TT-SVD with a tight ε) check the threshold is resolvable first.

use super::tensor_ops::{split_at_mode, unfold};
use crate::error::Result;
use crate::linalg::{eigh, svd_thin};
use crate::tensor::Tensor;

/// The Gram route is taken when `rows · GRAM_RATIO ≤ cols`. Measured (f64,
/// one thread, test profile, loaded machine): 100 x 10⁴ unfoldings, thin
/// SVD 90-100 ms against 10-18 ms for Gram + eigh; 100 x 400, 7.5 against
/// 3.0 ms; 100 x 100, 3.8-4.6 against 2.2 ms. So the Gram wins from square
/// shapes on; the leading vectors stay accurate (module doc).
pub(crate) const GRAM_RATIO: usize = 1;

/// The `r` leading left singular vectors of the mode-`mode` unfolding of `x`, `[Iₙ, r]`.
/// Requires `r ≤ Iₙ`.
pub(crate) fn unfolding_basis(x: &Tensor, mode: usize, r: usize) -> Result<Tensor> {
    let (p, i, s) = split_at_mode(x.shape(), mode);
    if i * GRAM_RATIO <= p * s {
        top_eigenvectors(&unfolding_gram(x, mode)?, r)
    } else {
        svd_thin(&unfold(x, mode)?)?.u.narrow(1, 0, r)
    }
}

/// `X₍ₙ₎ X₍ₙ₎ᵀ`, from views of `x` where possible (no unfolding copied).
pub(crate) fn unfolding_gram(x: &Tensor, mode: usize) -> Result<Tensor> {
    let (p, i, s) = split_at_mode(x.shape(), mode);
    if p == 1 {
        let u = x.reshape([i, s])?;
        u.matmul(&u.t()?)
    } else if s == 1 {
        let u = x.reshape([p, i])?;
        u.t()?.matmul(&u)
    } else if i <= s {
        // Σ_p X[p] X[p]ᵀ over the P leading items: P batched [I, S] products.
        let x3 = x.reshape([p, i, s])?;
        x3.matmul(&x3.transpose(1, 2)?)?.sum(0, false)
    } else {
        let u = unfold(x, mode)?;
        u.matmul(&u.t()?)
    }
}

/// Eigenvectors of the `r` largest eigenvalues of symmetric `g`, largest first, `[n, r]`.
pub(crate) fn top_eigenvectors(g: &Tensor, r: usize) -> Result<Tensor> {
    let n = g.shape()[0];
    let idx: Vec<usize> = (0..r).map(|k| n - 1 - k).collect();
    let vectors = eigh(g)?.vectors;
    vectors.index_select(1, &Tensor::from_indices(&idx, &[r], g.dtype())?)
}
