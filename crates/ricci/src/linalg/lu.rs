//! LU with partial pivoting and what is built on it: `solve`, `inv`, `det`,
//! `slogdet`, and triangular solves.
//!
//! VJPs (Giles 2008), with `X` the result and `Ḡ` the output gradient:
//!
//! ```text
//! X = A⁻¹ B      dB = A⁻ᵀ Ḡ,  dA = −dB Xᵀ
//! X = A⁻¹        dA = −Xᵀ Ḡ Xᵀ
//! d = det A      dA = Ḡ d A⁻ᵀ
//! l = log|det A| dA = Ḡ A⁻ᵀ
//! X = T⁻¹ B      dB = T⁻ᵀ Ḡ,  dT = −tril(dB Xᵀ)  (triu for upper T)
//! ```
//!
//! A matrix is singular for `solve`/`inv` when LU meets an exactly zero
//! pivot (LAPACK's rule): [`Error::Singular`] names the batch item and row.
//! A nearly singular matrix solves with a large error; check [`super::cond`].

use faer::linalg::lu::partial_pivoting::{factor as lu_factor, solve as lu_solve};
use faer::linalg::triangular_solve as tri;
use faer::perm::PermRef;
use faer::{Mat, MatMut, MatRef, Par};

use super::{
    from_mats, matrix_dims, mt, par_map, record_multi, recording, square_dims, with_stack, Batch,
    Scalar,
};
use crate::autograd::record;
use crate::error::{Error, Result};
use crate::tensor::{broadcast_shapes, with_type, Element, Tensor};

/// LU factors of one matrix: `P A = L U` with L unit lower (packed below
/// the diagonal of `lu`) and U upper.
struct Factor<T> {
    lu: Mat<T>,
    fwd: Vec<usize>,
    bwd: Vec<usize>,
    swaps: usize,
}

impl<T: Scalar> Factor<T> {
    fn new(a: MatRef<'_, T>, par: Par) -> Self {
        let (m, n) = (a.nrows(), a.ncols());
        let mut lu = a.to_owned();
        let (mut fwd, mut bwd) = (vec![0usize; m], vec![0usize; m]);
        let req = lu_factor::lu_in_place_scratch::<usize, T>(m, n, par, Default::default());
        let swaps = with_stack(req, |stack| {
            let (info, _) = lu_factor::lu_in_place(
                lu.as_mut(),
                &mut fwd,
                &mut bwd,
                par,
                stack,
                Default::default(),
            );
            info.transposition_count
        });
        Factor {
            lu,
            fwd,
            bwd,
            swaps,
        }
    }

    /// The first row whose pivot is exactly zero (or not finite).
    fn zero_pivot(&self) -> Option<usize> {
        let k = self.lu.nrows().min(self.lu.ncols());
        (0..k).find(|&i| {
            let p = self.lu[(i, i)];
            p == T::ZERO || !p.to_f64().is_finite()
        })
    }

    fn solve_in_place(&self, rhs: MatMut<'_, T>, par: Par) {
        let n = self.lu.nrows();
        let perm = PermRef::new_checked(&self.fwd, &self.bwd, n);
        let req = lu_solve::solve_in_place_scratch::<usize, T>(n, rhs.ncols(), par);
        with_stack(req, |stack| {
            lu_solve::solve_in_place(self.lu.as_ref(), self.lu.as_ref(), perm, rhs, par, stack)
        });
    }

    /// The determinant: the product of U's diagonal times the permutation's parity.
    fn det(&self) -> f64 {
        // After an exactly zero pivot faer's later entries are 0/0: the
        // determinant is 0. A NaN or inf pivot first (the input held one)
        // leaves the product NaN or inf, as numpy's is.
        if let Some(i) = self.zero_pivot() {
            if self.lu[(i, i)] == T::ZERO {
                return 0.0;
            }
        }
        let sign = if self.swaps.is_multiple_of(2) {
            1.0
        } else {
            -1.0
        };
        (0..self.lu.nrows()).fold(sign, |d, i| d * self.lu[(i, i)].to_f64())
    }

    /// `(sign, log|det|)` from U's diagonal and the permutation's parity.
    fn slogdet(&self) -> (f64, f64) {
        let mut sign = if self.swaps.is_multiple_of(2) {
            1.0
        } else {
            -1.0
        };
        let mut logabs = 0.0;
        for i in 0..self.lu.nrows() {
            let p = self.lu[(i, i)].to_f64();
            if p == 0.0 {
                return (0.0, f64::NEG_INFINITY);
            }
            sign *= p.signum();
            logabs += p.abs().ln();
        }
        (sign, logabs)
    }
}

/// The result of [`lu`]: `A = P L U`, as `torch.linalg.lu`.
#[derive(Clone, Debug)]
pub struct Lu {
    /// Permutation matrices, `[..., m, m]`.
    pub p: Tensor,
    /// Unit lower-triangular factors, `[..., m, k]`.
    pub l: Tensor,
    /// Upper-triangular (trapezoidal) factors, `[..., k, n]`.
    pub u: Tensor,
}

impl Lu {
    /// `P L U`, the matrix this LU factors.
    pub fn reconstruct(&self) -> Result<Tensor> {
        self.p.matmul(&self.l)?.matmul(&self.u)
    }
}

/// LU with partial pivoting of each matrix of `a: [..., m, n]`: `A = P L U`
/// (torch's convention). Not differentiable (use [`solve`], [`det`] for gradients).
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![0.0f64, 1.0, 2.0, 3.0], &[2, 2])?;
/// let lu = linalg::lu(&a)?;
/// assert_eq!(lu.reconstruct()?.to_vec::<f64>()?, vec![0.0, 1.0, 2.0, 3.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn lu(a: &Tensor) -> Result<Lu> {
    let (batch, m, n) = matrix_dims("lu", a)?;
    let k = m.min(n);
    with_type!(a.dtype(), T => {
        let b = Batch::<T>::new(a, m, n)?;
        let parts = par_map(b.count, (m * n * k) as f64, |i, par| {
            let f = Factor::new(b.mat(i), par);
            let mut p = Mat::<T>::zeros(m, m);
            for (row, &src) in f.fwd.iter().enumerate() {
                // Row `row` of P A is row `src` of A, so A = Pᵀ (L U).
                p[(src, row)] = T::ONE;
            }
            let l = Mat::<T>::from_fn(m, k, |i, j| match i.cmp(&j) {
                std::cmp::Ordering::Greater => f.lu[(i, j)],
                std::cmp::Ordering::Equal => T::ONE,
                std::cmp::Ordering::Less => T::ZERO,
            });
            let u = Mat::<T>::from_fn(k, n, |i, j| if j >= i { f.lu[(i, j)] } else { T::ZERO });
            Ok((p, l, u))
        })?;
        let ps: Vec<Mat<T>> = parts.iter().map(|x| x.0.clone()).collect();
        let ls: Vec<Mat<T>> = parts.iter().map(|x| x.1.clone()).collect();
        let us: Vec<Mat<T>> = parts.iter().map(|x| x.2.clone()).collect();
        Ok(Lu {
            p: from_mats(&batch, &ps, m, m),
            l: from_mats(&batch, &ls, m, k),
            u: from_mats(&batch, &us, k, n),
        })
    })
}

/// `A⁻¹ B` for `a: [..., n, n]`, `b: [..., n, k]` with equal batch dims.
fn solve_raw<T: Scalar>(op: &'static str, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (batch, n) = square_dims(op, a)?;
    let k = b.shape()[b.rank() - 1];
    let ba = Batch::<T>::new(a, n, n)?;
    let bb = Batch::<T>::new(b, n, k)?;
    let flops = (2 * n * n * n / 3 + 2 * n * n * k) as f64;
    let xs = par_map(ba.count, flops, |i, par| {
        let f = Factor::new(ba.mat(i), par);
        if let Some(pivot) = f.zero_pivot() {
            ba.require_finite(op, i, false)?;
            return Err(Error::Singular {
                op,
                batch_index: i,
                pivot,
            });
        }
        let mut x = bb.mat(i).to_owned();
        f.solve_in_place(x.as_mut(), par);
        Ok(x)
    })?;
    Ok(from_mats(&batch, &xs, n, k))
}

/// The recorded solve for operands of equal batch shape, matrix right-hand side.
fn solve_core(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let x = with_type!(a.dtype(), T => solve_raw::<T>("solve", a, b)?);
    let cached = x.clone();
    Ok(record("solve", x, &[a, b], move |inp, g, needs| {
        let (a, b) = (&inp[0], &inp[1]);
        let db = solve_core(&mt(a)?, g)?;
        let da = if needs[0] {
            let x = if recording() {
                solve_core(a, b)?
            } else {
                cached.clone()
            };
            Some(db.matmul(&mt(&x)?)?.neg())
        } else {
            None
        };
        Ok(vec![da, needs[1].then_some(db)])
    }))
}

/// Solves `A X = B` for each matrix of the batch (numpy's / torch's `solve`).
///
/// `a: [..., n, n]`; `b: [..., n, k]`, or a vector `[n]` / `[..., n]` when
/// its shape is `a`'s without the last dim. Batch dims broadcast.
/// Differentiable in both arguments, to any order.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![2.0f64, 1.0, 1.0, 3.0], &[2, 2])?;
/// let b = Tensor::from_vec(vec![3.0f64, 5.0], &[2])?;
/// let x = linalg::solve(&a, &b)?;
/// assert!(a.matmul(&x)?.sub(&b)?.abs().max_all()?.to_f64()? < 1e-14);
/// let singular = Tensor::zeros(&[2, 2], ricci::DType::F64);
/// assert!(matches!(linalg::solve(&singular, &b), Err(ricci::Error::Singular { pivot: 0, .. })));
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn solve(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let op = "solve";
    a.same_dtype(op, b)?;
    let (abatch, n) = square_dims(op, a)?;
    let vector =
        b.rank() == 1 || (b.rank() + 1 == a.rank() && b.shape() == &a.shape()[..a.rank() - 1]);
    let bm = if vector { b.unsqueeze(-1)? } else { b.clone() };
    if bm.rank() < 2 || bm.shape()[bm.rank() - 2] != n {
        return Err(Error::shape(op, a.shape(), b.shape()));
    }
    let k = bm.shape()[bm.rank() - 1];
    let batch = broadcast_shapes(op, &abatch, &bm.shape()[..bm.rank() - 2])
        .map_err(|_| Error::shape(op, a.shape(), b.shape()))?;
    let (mut sa, mut sb) = (batch.clone(), batch);
    sa.extend([n, n]);
    sb.extend([n, k]);
    let x = solve_core(&a.broadcast_to(&sa)?, &bm.broadcast_to(&sb)?)?;
    if vector {
        x.squeeze(-1)
    } else {
        Ok(x)
    }
}

/// The inverse of each matrix of `a: [..., n, n]`; [`Error::Singular`] at
/// an exactly zero pivot. Differentiable to any order.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![4.0f64, 7.0, 2.0, 6.0], &[2, 2])?;
/// let inv = linalg::inv(&a)?.to_vec::<f64>()?;
/// assert!((inv[0] - 0.6).abs() < 1e-14 && (inv[1] + 0.7).abs() < 1e-14);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn inv(a: &Tensor) -> Result<Tensor> {
    let (batch, n) = square_dims("inv", a)?;
    let mut shape = batch;
    shape.extend([n, n]);
    let eye = Tensor::eye(n, a.dtype()).broadcast_to(&shape)?;
    let x = with_type!(a.dtype(), T => solve_raw::<T>("inv", a, &eye)?);
    let cached = x.clone();
    Ok(record("inv", x, &[a], move |inp, g, _| {
        let x = if recording() {
            inv(&inp[0])?
        } else {
            cached.clone()
        };
        let xt = mt(&x)?;
        Ok(vec![Some(xt.matmul(g)?.matmul(&xt)?.neg())])
    }))
}

/// `(sign, log|det|, det)` per matrix, raw.
fn slogdet_raw<T: Scalar>(op: &'static str, a: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let (batch, n) = square_dims(op, a)?;
    let b = Batch::<T>::new(a, n, n)?;
    let parts = par_map(b.count, (2 * n * n * n / 3) as f64, |i, par| {
        let f = Factor::new(b.mat(i), par);
        let (sign, logabs) = f.slogdet();
        Ok((sign, logabs, f.det()))
    })?;
    let sign: Vec<T> = parts.iter().map(|p| T::from_f64(p.0)).collect();
    let logabs: Vec<T> = parts.iter().map(|p| T::from_f64(p.1)).collect();
    let det: Vec<T> = parts.iter().map(|p| T::from_f64(p.2)).collect();
    Ok((
        Tensor::from_typed(sign, &batch),
        Tensor::from_typed(logabs, &batch),
        Tensor::from_typed(det, &batch),
    ))
}

/// The determinant of each matrix of `a: [..., n, n]`, shape `[...]`.
///
/// Differentiable (`dA = Ḡ det(A) A⁻ᵀ`) to any order at invertible
/// matrices; at a singular one the backward pass returns [`Error::Singular`].
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?;
/// assert!((linalg::det(&a)?.to_f64()? + 2.0).abs() < 1e-14);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn det(a: &Tensor) -> Result<Tensor> {
    let (_, _, d) = with_type!(a.dtype(), T => slogdet_raw::<T>("det", a)?);
    Ok(record("det", d, &[a], |inp, g, _| {
        let a = &inp[0];
        let d = det(a)?;
        let scale = g.mul(&d)?.unsqueeze(-1)?.unsqueeze(-1)?;
        Ok(vec![Some(mt(&inv(a)?)?.mul(&scale)?)])
    }))
}

/// `(sign, log|det|)` of each matrix of `a: [..., n, n]`, both of shape
/// `[...]` (numpy's `slogdet`): safe where `det` would overflow. A singular
/// matrix gives `(0, -inf)`. `log|det|` is differentiable (`dA = Ḡ A⁻ᵀ`).
///
/// ```
/// # use ricci::{Tensor, DType, linalg};
/// let a = Tensor::eye(300, DType::F64).mul_scalar(10.0);
/// let (sign, logabs) = linalg::slogdet(&a)?;
/// assert_eq!(sign.to_f64()?, 1.0);
/// assert!((logabs.to_f64()? - 300.0 * 10f64.ln()).abs() < 1e-9);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn slogdet(a: &Tensor) -> Result<(Tensor, Tensor)> {
    let (sign, logabs, _) = with_type!(a.dtype(), T => slogdet_raw::<T>("slogdet", a)?);
    let outs = record_multi("slogdet", vec![logabs], &[a], |inp, g, _| {
        let scale = g[0].unsqueeze(-1)?.unsqueeze(-1)?;
        Ok(vec![Some(mt(&inv(&inp[0])?)?.mul(&scale)?)])
    })?;
    let logabs = outs
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("slogdet", "internal: missing output"))?;
    Ok((sign, logabs))
}

/// `T⁻¹ B` for triangular `t: [..., n, n]` (only its `upper` or lower
/// triangle is read) and `b: [..., n, k]` of equal batch dims.
fn solve_triangular_raw<T: Scalar>(t: &Tensor, b: &Tensor, upper: bool) -> Result<Tensor> {
    let op = "solve_triangular";
    let (batch, n) = square_dims(op, t)?;
    let k = b.shape()[b.rank() - 1];
    let bt = Batch::<T>::new(t, n, n)?;
    let bb = Batch::<T>::new(b, n, k)?;
    let xs = par_map(bt.count, (n * n * k) as f64, |i, par| {
        let tm = bt.mat(i);
        if let Some(pivot) = (0..n).find(|&j| tm[(j, j)] == T::ZERO) {
            return Err(Error::Singular {
                op,
                batch_index: i,
                pivot,
            });
        }
        let mut x = bb.mat(i).to_owned();
        if upper {
            tri::solve_upper_triangular_in_place(tm, x.as_mut(), par);
        } else {
            tri::solve_lower_triangular_in_place(tm, x.as_mut(), par);
        }
        Ok(x)
    })?;
    Ok(from_mats(&batch, &xs, n, k))
}

/// Solves `T X = B` for triangular `T` (the `upper` or lower triangle of
/// `t: [..., n, n]` is read, the other ignored); `b: [..., n, k]`, batch
/// dims broadcast. For `X T = B` use `solve_triangular(Tᵀ, Bᵀ, !upper)ᵀ`.
/// Differentiable in both arguments, to any order; the gradient of `t` is
/// triangular like `t`.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let l = Tensor::from_vec(vec![2.0f64, 0.0, 1.0, 4.0], &[2, 2])?;
/// let b = Tensor::from_vec(vec![2.0f64, 9.0], &[2, 1])?;
/// assert_eq!(linalg::solve_triangular(&l, &b, false)?.to_vec::<f64>()?, vec![1.0, 2.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn solve_triangular(t: &Tensor, b: &Tensor, upper: bool) -> Result<Tensor> {
    let op = "solve_triangular";
    t.same_dtype(op, b)?;
    let (tbatch, n) = square_dims(op, t)?;
    let (bbatch, bn, k) = matrix_dims(op, b)?;
    if bn != n {
        return Err(Error::shape(op, t.shape(), b.shape()));
    }
    let batch = broadcast_shapes(op, &tbatch, &bbatch)
        .map_err(|_| Error::shape(op, t.shape(), b.shape()))?;
    let (mut st, mut sb) = (batch.clone(), batch);
    st.extend([n, n]);
    sb.extend([n, k]);
    solve_triangular_core(&t.broadcast_to(&st)?, &b.broadcast_to(&sb)?, upper)
}

fn solve_triangular_core(t: &Tensor, b: &Tensor, upper: bool) -> Result<Tensor> {
    let x = with_type!(t.dtype(), T => solve_triangular_raw::<T>(t, b, upper)?);
    let cached = x.clone();
    Ok(record(
        "solve_triangular",
        x,
        &[t, b],
        move |inp, g, needs| {
            let (t, b) = (&inp[0], &inp[1]);
            let db = solve_triangular_core(&mt(t)?, g, !upper)?;
            let dt = if needs[0] {
                let x = if recording() {
                    solve_triangular_core(t, b, upper)?
                } else {
                    cached.clone()
                };
                let full = db.matmul(&mt(&x)?)?.neg();
                Some(if upper { full.triu(0)? } else { full.tril(0)? })
            } else {
                None
            };
            Ok(vec![dt, needs[1].then_some(db)])
        },
    ))
}
