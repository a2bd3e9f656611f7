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
use faer::MatMut;

use super::{
    from_lower_col_major, lower_to_col_major, mt, par_map, recording, square_dims, with_stack,
    Batch, Scalar,
};
use crate::autograd::record;
use crate::error::{Error, Result};
use crate::tensor::{with_type, Tensor};

pub use super::lu::solve_triangular;

fn cholesky_raw<T: Scalar>(a: &Tensor) -> Result<Tensor> {
    let op = "cholesky";
    let (batch, n) = square_dims(op, a)?;
    let b = Batch::<T>::new(a, n, n)?;
    let ls = par_map(b.count, (n * n * n / 3) as f64, |i, par| {
        // Only the lower triangle is read (numpy's UPLO='L').
        let mut l = lower_to_col_major(b.slice(i), n);
        let req = llt::cholesky_in_place_scratch::<T>(n, par, Default::default());
        with_stack(req, |stack| {
            llt::cholesky_in_place(
                MatMut::from_column_major_slice_mut(&mut l, n, n),
                Default::default(),
                par,
                stack,
                Default::default(),
            )
        })
        .map_err(|e| match e {
            LltError::NonPositivePivot { index } => Error::NotPositiveDefinite {
                op,
                batch_index: i,
                pivot: index,
            },
        })?;
        Ok(l)
    })?;
    // The factor is lower triangular whatever faer left above the diagonal.
    let out = from_lower_col_major(&batch, &ls, n);
    ls.into_iter().for_each(crate::tensor::recycle);
    Ok(out)
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
