//! Cholesky factorisation `A = L Lᵀ` of symmetric positive-definite matrices.
//!
//! VJP (Murray 2016, the form torch uses), with `Φ` taking the lower
//! triangle and halving the diagonal:
//!
//! ```text
//! S  = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹,   dA = (S + Sᵀ) / 2
//! ```
//!
//! The two triangular solves are ricci's recorded [`solve_triangular`], so
//! the gradient is differentiable again.

use faer::linalg::cholesky::llt::factor::{self as llt, LltError};
use faer::{Mat, MatMut};

use super::{mt, par_for_each_matrix, recording, square_dims, with_stack, Batch, Scalar};
use crate::autograd::record;
use crate::error::{Error, Result};
use crate::tensor::{with_type, Tensor};

pub use super::lu::solve_triangular;

/// From this size on a matrix is factored in its row-major layout (see
/// `cholesky_raw`): at n = 100 that took 0.103 ms against 0.045 ms for
/// copying to and from faer's column-major layout, at n = 500 2.7 ms
/// against 3.9 ms (medians of three alternating rounds each).
const ROW_MAJOR_FROM: usize = 256;

fn cholesky_raw<T: Scalar>(a: &Tensor) -> Result<Tensor> {
    let op = "cholesky";
    let (_, n) = square_dims(op, a)?;
    // One row-major copy of the input, factored in place. From
    // `ROW_MAJOR_FROM` on, faer factors the row-major view itself (it reads
    // and writes only the lower triangle, numpy's UPLO='L'), so there is no
    // transposing copy in or out: those two copies took a third of a
    // 1000 x 1000 factorisation. Below it, faer's column-major kernel is
    // the faster one (about 2x at n = 100) and the copies are cheap.
    let mut data = a.to_vec::<T>()?;
    par_for_each_matrix(&mut data, n * n, (n * n * n / 3) as f64, |i, l, par| {
        let factor = |m: MatMut<'_, T>| {
            let req = llt::cholesky_in_place_scratch::<T>(n, par, Default::default());
            with_stack(req, |stack| {
                llt::cholesky_in_place(m, Default::default(), par, stack, Default::default())
            })
            .map_err(|e| match e {
                LltError::NonPositivePivot { index } => Error::NotPositiveDefinite {
                    op,
                    batch_index: i,
                    pivot: index,
                },
            })
        };
        if n >= ROW_MAJOR_FROM {
            factor(MatMut::from_row_major_slice_mut(l, n, n))?;
        } else {
            let mut c = Mat::<T>::from_fn(n, n, |r, k| if k <= r { l[r * n + k] } else { T::ZERO });
            factor(c.as_mut())?;
            for (r, row) in l.chunks_exact_mut(n).enumerate() {
                for (k, x) in row[..=r].iter_mut().enumerate() {
                    *x = c[(r, k)];
                }
            }
        }
        // The factor is lower triangular whatever the input held above the diagonal.
        for (r, row) in l.chunks_exact_mut(n).enumerate() {
            row[r + 1..].fill(T::ZERO);
        }
        Ok(())
    })
    .map_err(|e| match e {
        // A NaN or inf fails a pivot too: say so rather than "not
        // positive definite" (the input is intact; `data` was the copy).
        Error::NotPositiveDefinite { batch_index, .. } => Batch::<T>::new(a, n, n)
            .and_then(|b| b.require_finite(op, batch_index, true))
            .err()
            .unwrap_or(e),
        e => e,
    })?;
    Ok(Tensor::from_typed(data, a.shape()))
}

/// The lower Cholesky factor `L` of each symmetric positive-definite matrix
/// of `a: [..., n, n]`, `A = L Lᵀ` (only the lower triangle of `a` is read).
/// A matrix that is not positive definite is [`Error::NotPositiveDefinite`]
/// naming the batch item and the pivot. Differentiable to any order; the
/// gradient is symmetric.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![4.0f64, 2.0, 2.0, 5.0], &[2, 2])?;
/// assert_eq!(linalg::cholesky(&a)?.to_vec::<f64>()?, vec![2.0, 0.0, 1.0, 2.0]);
/// let indefinite = Tensor::from_vec(vec![1.0f64, 2.0, 2.0, 1.0], &[2, 2])?;
/// assert!(matches!(
///     linalg::cholesky(&indefinite),
///     Err(ricci::Error::NotPositiveDefinite { pivot: 1, .. })
/// ));
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn cholesky(a: &Tensor) -> Result<Tensor> {
    let l = with_type!(a.dtype(), T => cholesky_raw::<T>(a)?);
    let cached = l.clone();
    Ok(record("cholesky", l, &[a], move |inp, g, _| {
        let l = if recording() {
            cholesky(&inp[0])?
        } else {
            cached.clone()
        };
        Ok(vec![Some(cholesky_backward(&l, g)?)])
    }))
}

fn cholesky_backward(l: &Tensor, dl: &Tensor) -> Result<Tensor> {
    let lt = mt(l)?;
    let p = lt.matmul(dl)?;
    let phi = p.tril(-1)?.add(&p.tril(0)?.triu(0)?.mul_scalar(0.5))?;
    // S = L⁻ᵀ Φ L⁻¹ as two upper-triangular solves with Lᵀ.
    let x = solve_triangular(&lt, &phi, true)?;
    let s = mt(&solve_triangular(&lt, &mt(&x)?, true)?)?;
    Ok(s.add(&mt(&s)?)?.mul_scalar(0.5))
}
