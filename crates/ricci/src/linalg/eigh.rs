//! Symmetric eigendecomposition `A = V diag(λ) Vᵀ`, eigenvalues ascending.
//!
//! VJP (for symmetric perturbations, as torch), with `F_ij = 1/(λⱼ − λᵢ)`
//! off the diagonal, 0 on it:
//!
//! ```text
//! G  = V (diag(λ̄) + F ∘ (Vᵀ V̄)) Vᵀ,   dA = (G + Gᵀ) / 2
//! ```
//!
//! `F` uses [`super::safe_recip`]: at repeated eigenvalues the gradient is
//! finite, and exact for losses of the eigenvalues and of whole eigenspaces
//! (see the module doc of [`super`] for the cases where it is not).

use faer::diag::DiagMut;
use faer::dyn_stack::StackReq;
use faer::linalg::evd::tridiag::{self, TridiagParams};
use faer::linalg::evd::{self, ComputeEigenvectors};
use faer::linalg::householder::{
    apply_block_householder_sequence_on_the_left_in_place_scratch,
    apply_block_householder_sequence_on_the_left_in_place_with_conj,
};
use faer::linalg::qr::no_pivoting::factor::recommended_block_size;
use faer::reborrow::ReborrowMut;
use faer::{Conj, Mat, MatMut, MatRef, Par};

use super::{
    diag_embed, evd_params, mt, par_for_each_matrix, record_multi, recording, safe_recip,
    square_dims, tridiagonal, with_stack, Batch, Scalar,
};
use crate::error::{Error, Result};
use crate::tensor::{alloc_uninit, contiguous_strides, with_type, Layout, Tensor};

/// The result of [`eigh`]: `A = V diag(values) Vᵀ`.
#[derive(Clone, Debug)]
pub struct Eigh {
    /// Eigenvalues, ascending, `[..., n]`.
    pub values: Tensor,
    /// Orthonormal eigenvectors as columns, `[..., n, n]`.
    pub vectors: Tensor,
}

impl Eigh {
    /// `V diag(λ) Vᵀ`, the matrix this decomposition factors.
    pub fn reconstruct(&self) -> Result<Tensor> {
        self.vectors
            .mul(&self.values.unsqueeze(-2)?)?
            .matmul(&mt(&self.vectors)?)
    }
}

/// Each item's results go straight into one buffer as faer writes them,
/// `[item][vectors (column-major, n x n) | values (n)]`, and the outputs
/// are strided views of it: the eigenvector tensor is the transpose of a
/// row-major layout, as numpy's (LAPACK's column-major array, not copied).
/// Against stacking faer's own matrices into row-major tensors, this saves
/// zeroing the matrix, the transposing copy and two allocations: at n = 100
/// about 10 µs of 730.
fn eigh_raw<T: Scalar>(a: &Tensor, vectors: bool) -> Result<(Tensor, Option<Tensor>)> {
    let op = "eigh";
    let (batch, n) = square_dims(op, a)?;
    let b = Batch::<T>::new(a, n, n)?;
    let compute = if vectors {
        ComputeEigenvectors::Yes
    } else {
        ComputeEigenvectors::No
    };
    let size = if vectors { n * n } else { 0 };
    let item = size + n;
    // Every element is written by faer below (or the call fails).
    let mut buf = alloc_uninit::<T>(b.count * item);
    par_for_each_matrix(&mut buf, item, 9.0 * (n * n * n) as f64, |i, chunk, par| {
        b.require_finite(op, i, true)?;
        let (u, s) = chunk.split_at_mut(size);
        if vectors && n >= DIVIDE_FROM {
            let u = MatMut::from_column_major_slice_mut(u, n, n);
            return divide_and_conquer(b.mat(i), s, u, par).map_err(|_| Error::NotConverged {
                op,
                iterations: None,
            });
        }
        let params = evd_params::<T>().into();
        let req = evd::self_adjoint_evd_scratch::<T>(n, compute, par, params);
        with_stack(req, |stack| {
            // faer reads only the lower triangle (numpy's UPLO='L'),
            // copying it into its own work matrix.
            evd::self_adjoint_evd(
                b.mat(i),
                DiagMut::from_slice_mut(s),
                vectors.then(|| MatMut::from_column_major_slice_mut(u, n, n)),
                par,
                stack,
                params,
            )
        })
        .map_err(|_| Error::NotConverged {
            op,
            iterations: None,
        })
    })?;
    // Item strides over the batch dims, then each output's own.
    let items: Vec<isize> = contiguous_strides(&batch)
        .iter()
        .map(|&s| s * item as isize)
        .collect();
    let with_dims = |tail: &[usize], tail_strides: &[isize], offset: usize| {
        let shape: Vec<usize> = batch.iter().chain(tail).copied().collect();
        let strides: Vec<isize> = items.iter().chain(tail_strides).copied().collect();
        Layout::from_parts(&shape, &strides, offset)
    };
    let storage = Tensor::from_storage(T::into_storage(buf), with_dims(&[n], &[1], size));
    let vectors = vectors.then(|| storage.view_with(with_dims(&[n, n], &[1, n as isize], 0)));
    Ok((storage, vectors))
}

/// From this size eigenvectors come from [`divide_and_conquer`] (whose
/// leaves hold at most 32); below it from faer's QR iteration on the whole
/// tridiagonal. f64, 1 thread, against faer's routine: 99-102 -> 63 µs at
/// n = 33, 177 -> 136 µs at 50, 251 -> 184 µs at 60.
const DIVIDE_FROM: usize = 33;

/// `A = V diag(s) Vᵀ` as faer's own routine does it (Householder reduction
/// to tridiagonal form, then back), with the tridiagonal solved by
/// [`tridiagonal::eigh`]. `u` receives V, column-major.
fn divide_and_conquer<T: Scalar>(
    a: MatRef<'_, T>,
    s: &mut [T],
    mut u: MatMut<'_, T>,
    par: Par,
) -> std::result::Result<(), tridiagonal::NotConverged> {
    let n = a.nrows();
    let bs = recommended_block_size::<T>(n, n);
    let mut trid = Mat::<T>::zeros(n, n);
    trid.copy_from_triangular_lower(a);
    let mut householder = Mat::<T>::zeros(bs, n - 1);
    let params: TridiagParams = faer::Auto::<T>::auto();
    let req = StackReq::any_of(&[
        tridiag::tridiag_in_place_scratch::<T>(n, par, params.into()),
        apply_block_householder_sequence_on_the_left_in_place_scratch::<T>(n - 1, bs, n),
    ]);
    with_stack(req, |stack| {
        tridiag::tridiag_in_place(
            trid.as_mut(),
            householder.as_mut(),
            par,
            stack,
            params.into(),
        );
        let e: Vec<T> = (0..n - 1).map(|i| trid[(i + 1, i)]).collect();
        for (i, si) in s.iter_mut().enumerate() {
            *si = trid[(i, i)];
        }
        tridiagonal::eigh(s, &e, u.rb_mut())?;
        apply_block_householder_sequence_on_the_left_in_place_with_conj(
            trid.as_ref().submatrix(1, 0, n - 1, n - 1),
            householder.as_ref(),
            Conj::No,
            u.rb_mut().subrows_mut(1, n - 1),
            par,
            stack,
        );
        Ok(())
    })
}

/// Eigenvalues (ascending) and orthonormal eigenvectors of each symmetric
/// matrix of `a: [..., n, n]`; only the lower triangle is read.
/// Differentiable (see the module doc); the gradient is symmetric.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![2.0f64, 1.0, 1.0, 2.0], &[2, 2])?;
/// let e = linalg::eigh(&a)?;
/// let l = e.values.to_vec::<f64>()?;
/// assert!((l[0] - 1.0).abs() < 1e-14 && (l[1] - 3.0).abs() < 1e-14);
/// assert!(e.reconstruct()?.sub(&a)?.abs().max_all()?.to_f64()? < 1e-14);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn eigh(a: &Tensor) -> Result<Eigh> {
    let (values, vectors) = with_type!(a.dtype(), T => eigh_raw::<T>(a, true)?);
    let vectors = vectors.ok_or_else(|| Error::invalid("eigh", "internal: no vectors"))?;
    let eps = super::eps(a.dtype());
    let scale = values.abs().to_vec_f64().into_iter().fold(0.0f64, f64::max);
    let n = values.shape()[values.rank() - 1];
    let cached = (values.clone(), vectors.clone());
    let outs = record_multi("eigh", vec![values, vectors], &[a], move |inp, g, _| {
        let (l, v) = if recording() {
            let d = eigh(&inp[0])?;
            (d.values, d.vectors)
        } else {
            cached.clone()
        };
        let e = l.unsqueeze(-2)?.sub(&l.unsqueeze(-1)?)?;
        let f = safe_recip(&e, (n.max(1) as f64) * eps * scale)?;
        let inner = diag_embed(&g[0])?.add(&f.mul(&mt(&v)?.matmul(&g[1])?)?)?;
        let full = v.matmul(&inner)?.matmul(&mt(&v)?)?;
        Ok(vec![Some(full.add(&mt(&full)?)?.mul_scalar(0.5))])
    })?;
    let mut it = outs.into_iter();
    match (it.next(), it.next()) {
        (Some(values), Some(vectors)) => Ok(Eigh { values, vectors }),
        _ => Err(Error::invalid("eigh", "internal: missing outputs")),
    }
}

/// The eigenvalues only (ascending), `[..., n]`; cheaper than [`eigh`] when
/// no gradient is needed (with one, the vectors are computed for the VJP
/// `dA = V diag(λ̄) Vᵀ`).
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![5.0f64, 0.0, 0.0, -1.0], &[2, 2])?;
/// assert_eq!(linalg::eigvalsh(&a)?.to_vec::<f64>()?, vec![-1.0, 5.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn eigvalsh(a: &Tensor) -> Result<Tensor> {
    if crate::autograd::will_record(&[a]) {
        return Ok(eigh(a)?.values);
    }
    Ok(with_type!(a.dtype(), T => eigh_raw::<T>(a, false)?.0))
}
