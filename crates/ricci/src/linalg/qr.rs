//! Reduced QR `A = Q R`, `Q: [m, k]` with orthonormal columns, `R: [k, n]`
//! upper triangular (trapezoidal), `k = min(m, n)`; Householder, blocked.
//!
//! VJP (Walter & Lehmann 2018, Liao et al. 2019) for `m ≥ n`, with
//! `copyltu(M) = tril(M) + tril(M, −1)ᵀ`:
//!
//! ```text
//! M  = R R̄ᵀ − Q̄ᵀ Q
//! dA = (Q̄ + Q copyltu(M)) R⁻ᵀ
//! ```
//!
//! For `m < n`, `A = [X | Y]` and `R = [U | V]` with `X = Q U` square:
//! `dX` is the square rule applied to `(Q̄ + Y V̄ᵀ, Ū)` and `dY = Q V̄`.
//! `R⁻ᵀ` is a recorded triangular solve, so the gradient needs `R` to have
//! a non-zero diagonal (A of full column rank, its leading block for wide A).

use faer::linalg::householder;
use faer::linalg::qr::no_pivoting::factor as qr_factor;
use faer::{Conj, Mat, MatRef, Par};

use super::{
    from_mats, matrix_dims, mt, par_map, record_multi, recording, with_stack, Batch, Scalar,
};
use crate::error::{Error, Result};
use crate::tensor::{with_type, Tensor};

/// The result of [`qr`]: `A = Q R`.
#[derive(Clone, Debug)]
pub struct Qr {
    /// Orthonormal columns, `[..., m, k]`.
    pub q: Tensor,
    /// Upper-triangular, `[..., k, n]`.
    pub r: Tensor,
}

impl Qr {
    /// `Q R`, the matrix this QR factors.
    pub fn reconstruct(&self) -> Result<Tensor> {
        self.q.matmul(&self.r)
    }
}

fn qr_raw<T: Scalar>(a: &Tensor) -> Result<(Tensor, Tensor)> {
    let (batch, m, n) = matrix_dims("qr", a)?;
    let k = m.min(n);
    let b = Batch::<T>::new(a, m, n)?;
    let flops = 4.0 * (m * n * k) as f64;
    let parts = par_map(b.count, flops, |i, par| {
        let mut f = b.mat(i).to_owned();
        let bs = block_size::<T>(m, n);
        let mut coeff = Mat::<T>::zeros(bs, k);
        let req = qr_factor::qr_in_place_scratch::<T>(m, n, bs, par, Default::default());
        with_stack(req, |stack| {
            qr_factor::qr_in_place(f.as_mut(), coeff.as_mut(), par, stack, Default::default())
        });
        let r = Mat::<T>::from_fn(k, n, |r, c| if c >= r { f[(r, c)] } else { T::ZERO });
        Ok((thin_q(f.as_ref(), coeff.as_ref(), k, par), r))
    })?;
    let (qs, rs): (Vec<Mat<T>>, Vec<Mat<T>>) = parts.into_iter().unzip();
    Ok((from_mats(&batch, &qs, m, k), from_mats(&batch, &rs, k, n)))
}

/// The Householder block size: faer's recommendation, except 32 where it
/// recommends 48 or less (up to 1024 x 1024). At n = 1000, 32 instead of 48
/// measured 87-96 ms against 129-132 ms for factorisation plus `Q` on one
/// thread, and at n = 100, 32 instead of 8 0.51 against 0.62 ms.
fn block_size<T: Scalar>(m: usize, n: usize) -> usize {
    let recommended = qr_factor::recommended_block_size::<T>(m, n);
    if recommended <= 48 {
        32.min(m.min(n)).max(1)
    } else {
        recommended
    }
}

/// The first `k` columns of `Q = H₀ H₁ ⋯ H_{k−1}` from the Householder
/// vectors below the diagonal of `f` (implicit unit diagonal) and their
/// block factors `coeff`, as LAPACK's `orgqr` forms them: the blocks are
/// applied last to first to the identity, and block `[j0, j1)` only to
/// `Q[j0.., j0..]`, since the reflectors after it leave the columns before
/// `j0` equal to the identity's and the rows before `j0` zero: for a square
/// matrix `4n³/3` flops instead of `2n³` for applying every block to all of `Q`.
fn thin_q<T: Scalar>(f: MatRef<'_, T>, coeff: MatRef<'_, T>, k: usize, par: Par) -> Mat<T> {
    let m = f.nrows();
    let bs = coeff.nrows();
    let mut q = Mat::<T>::zeros(m, k);
    for i in 0..k {
        q[(i, i)] = T::ONE;
    }
    let req = householder::apply_block_householder_on_the_left_in_place_scratch::<T>(m, bs, k);
    with_stack(req, |stack| {
        // The last block is the partial one, as faer's factorisation lays them out.
        let mut j1 = k;
        let mut width = if k.is_multiple_of(bs) { bs } else { k % bs };
        while j1 > 0 {
            let j0 = j1 - width;
            householder::apply_block_householder_on_the_left_in_place_with_conj(
                f.get(j0.., j0..j1),
                coeff.get(..j1 - j0, j0..j1),
                Conj::No,
                q.as_mut().get_mut(j0.., j0..),
                par,
                stack,
            );
            j1 = j0;
            width = bs;
        }
    });
    q
}

/// The reduced QR of each matrix of `a: [..., m, n]` (numpy's
/// `mode='reduced'`). R's diagonal keeps the signs of the Householder
/// reflections (it is not made positive; numpy's LAPACK does the same).
/// Differentiable (see the module doc for when).
///
/// ```
/// # use ricci::{Tensor, DType, Rng, linalg};
/// let a = Tensor::randn(&[6, 4], DType::F64, &mut Rng::new(3));
/// let qr = linalg::qr(&a)?;
/// let qtq = qr.q.t()?.matmul(&qr.q)?;
/// assert!(qtq.sub(&Tensor::eye(4, DType::F64))?.abs().max_all()?.to_f64()? < 1e-13);
/// assert!(qr.reconstruct()?.sub(&a)?.abs().max_all()?.to_f64()? < 1e-13);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn qr(a: &Tensor) -> Result<Qr> {
    let (q, r) = with_type!(a.dtype(), T => qr_raw::<T>(a)?);
    let cached = (q.clone(), r.clone());
    let outs = record_multi("qr", vec![q, r], &[a], move |inp, g, _| {
        let (q, r) = if recording() {
            let d = qr(&inp[0])?;
            (d.q, d.r)
        } else {
            cached.clone()
        };
        Ok(vec![Some(qr_backward(&inp[0], &q, &r, &g[0], &g[1])?)])
    })?;
    let mut it = outs.into_iter();
    match (it.next(), it.next()) {
        (Some(q), Some(r)) => Ok(Qr { q, r }),
        _ => Err(Error::invalid("qr", "internal: missing outputs")),
    }
}

/// The square/tall rule: `(Q̄ + Q copyltu(M)) R⁻ᵀ` with `M = R R̄ᵀ − Q̄ᵀ Q`.
fn qr_backward_tall(q: &Tensor, r: &Tensor, dq: &Tensor, dr: &Tensor) -> Result<Tensor> {
    let m = r.matmul(&mt(dr)?)?.sub(&mt(dq)?.matmul(q)?)?;
    let copyltu = m.tril(0)?.add(&mt(&m.tril(-1)?)?)?;
    let c = dq.add(&q.matmul(&copyltu)?)?;
    // C R⁻ᵀ = (R⁻¹ Cᵀ)ᵀ.
    mt(&super::solve_triangular(r, &mt(&c)?, true)?)
}

fn qr_backward(a: &Tensor, q: &Tensor, r: &Tensor, dq: &Tensor, dr: &Tensor) -> Result<Tensor> {
    let (m, n) = (a.shape()[a.rank() - 2], a.shape()[a.rank() - 1]);
    if m >= n {
        return qr_backward_tall(q, r, dq, dr);
    }
    let y = a.narrow(-1, m, n - m)?;
    let (u, dv) = (r.narrow(-1, 0, m)?, dr.narrow(-1, m, n - m)?);
    let du = dr.narrow(-1, 0, m)?;
    let dx = qr_backward_tall(q, &u, &dq.add(&y.matmul(&mt(&dv)?)?)?, &du)?;
    let dy = q.matmul(&dv)?;
    Tensor::cat(&[&dx, &dy], -1)
}
