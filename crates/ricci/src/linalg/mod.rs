//! Linear algebra on batches of matrices, with gradients.
//!
//! Every function takes tensors of shape `[..., m, n]` and works on each
//! matrix of the leading (batch) dims, as `torch.linalg` does; f32 and f64.
//! Kernels are faer's (pure Rust, no LAPACK). A batch of several matrices
//! runs in parallel over the batch with a sequential kernel each; a single
//! large matrix uses faer's internal threading.
//!
//! # Conventions (equal to numpy / torch)
//! - singular values are descending, `eigh` eigenvalues ascending;
//! - `svd` returns `vt` (V transposed, numpy's `vh`), `A = U diag(S) Vᵀ`;
//! - singular vectors and eigenvectors are unique only up to sign (and up to
//!   a rotation inside a repeated value's subspace); ricci returns faer's
//!   choice, so compare subspaces or products (`U S Vᵀ`), not raw vectors;
//! - `eigh` and `cholesky` read the lower triangle only (numpy's
//!   `UPLO='L'`); their gradients are symmetric, as torch's are;
//! - `qr` is the reduced QR (`Q: [m, k]`, `R: [k, n]`, `k = min(m, n)`),
//!   R's diagonal has faer's signs (not made positive).
//! - a NaN or inf in the input: `eigh`, `svd` (and their value-only forms),
//!   `solve`, `inv` and `cholesky` fail naming the batch item ("matrix 1 of
//!   the batch contains NaN or inf"), where LAPACK would fail to converge or
//!   return garbage; `qr`, `det`, `slogdet` and `lu` propagate it, as numpy
//!   does.
//!
//! # Gradients
//! Each differentiable routine records one node whose VJP is written in
//! ricci's differentiable ops (matmul, transpose, triangular solves, ...).
//! When the backward pass is itself recorded (`backward_with_graph`,
//! `hvp`), the VJP recomputes the factorisation with the recorded routine,
//! so the gradient is a differentiable function of the input and second
//! derivatives are right; otherwise the forward results are reused. Forward
//! mode (`jvp`, and the tangent pass of a Hessian-vector product) takes
//! each routine's JVP from its VJP, one node at a time
//! ([`crate::autograd::GradFn::jvp`]'s default).
//! References: Giles 2008 (inv, det, solve), Murray 2016 (Cholesky),
//! Townsend 2016 (SVD), Liao et al. 2019 (QR).
//!
//! At repeated singular values or eigenvalues (and zero singular values of
//! a non-square matrix) the vectors are not unique and the VJP formulas
//! divide by zero. ricci returns a finite value: the reciprocals
//! `1/(σⱼ² − σᵢ²)`, `1/(λⱼ − λᵢ)` and `1/σᵢ` are replaced by 0 where the
//! denominator is below `eps · scale` (torch returns inf/NaN there). This is
//! the exact gradient for losses of the values and of whole eigenspaces
//! (e.g. the projector onto the eigenvectors of a repeated value, or onto
//! the others), which are tested. For losses whose true gradient is a 0/0
//! limit inside a repeated block (the reconstruction `V Λ Vᵀ`, the polar
//! factor `U Vᵀ` at exactly equal singular values) the within-block terms
//! are dropped: the result is finite but not the gradient; differentiate
//! such quantities through their own smooth formula.

mod cholesky;
mod eigh;
mod lanczos;
mod lstsq;
mod lu;
mod norms;
mod orthogonal;
mod qr;
mod randomized;
mod svd;
mod tridiagonal;

pub use cholesky::{cholesky, solve_triangular};
pub use eigh::{eigh, eigvalsh, Eigh};
pub use lanczos::{
    lanczos, lanczos_quadrature, power_iteration, Lanczos, LanczosParams, PowerIteration,
    Quadrature, Which,
};
pub use lstsq::{lstsq, pinv};
pub use lu::{det, inv, lu, slogdet, solve, Lu};
pub use norms::{cond, matrix_norm, matrix_rank, vector_norm, MatrixNorm};
pub use orthogonal::orthogonal;
pub use qr::{qr, Qr};
pub use randomized::{randomized_svd, RandomizedSvdParams};
pub use svd::{svd, svd_thin, svdvals, Svd};

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::{Mat, MatRef, Par};
use rayon::prelude::*;

use crate::autograd::{is_grad_enabled, record};
use crate::error::{Error, Result};
use crate::kernels::matmul::MatmulElement;
use crate::tensor::{Element, Tensor};

/// Element types the decompositions run on (`f32`, `f64`).
pub(crate) trait Scalar: MatmulElement + faer::traits::RealField {}
impl Scalar for f32 {}
impl Scalar for f64 {}

/// The batch dims and the matrix dims `(m, n)` of `t: [..., m, n]`.
pub(crate) fn matrix_dims(op: &'static str, t: &Tensor) -> Result<(Vec<usize>, usize, usize)> {
    let r = t.rank();
    if r < 2 {
        return Err(Error::invalid(
            op,
            format!(
                "needs a matrix or a batch of matrices [..., m, n], got shape {:?}",
                t.shape()
            ),
        ));
    }
    Ok((
        t.shape()[..r - 2].to_vec(),
        t.shape()[r - 2],
        t.shape()[r - 1],
    ))
}

/// As [`matrix_dims`] for square matrices; returns `(batch, n)`.
pub(crate) fn square_dims(op: &'static str, t: &Tensor) -> Result<(Vec<usize>, usize)> {
    let (batch, m, n) = matrix_dims(op, t)?;
    if m != n {
        return Err(Error::Linalg {
            op,
            msg: format!("needs square matrices, got shape {:?}", t.shape()),
        });
    }
    Ok((batch, n))
}

/// Row-major copies of the matrices of a `[..., m, n]` tensor.
pub(crate) struct Batch<T> {
    data: Vec<T>,
    pub count: usize,
    pub m: usize,
    pub n: usize,
}

impl<T: Scalar> Batch<T> {
    pub fn new(t: &Tensor, m: usize, n: usize) -> Result<Self> {
        let data = t.to_vec::<T>()?;
        let count = t.shape()[..t.rank() - 2].iter().product();
        Ok(Batch { data, count, m, n })
    }

    /// An error naming `op` and batch item `i` when matrix `i` holds a NaN
    /// or an infinity (in its lower triangle only, with `lower`: what
    /// `eigh` and `cholesky` read). The iterative routines (eigh, svd)
    /// check first, since faer may return finite values for such input or
    /// fail with a bare "did not converge"; the direct ones (solve,
    /// cholesky) check only when they fail, so that a NaN is not reported
    /// as a singular or indefinite matrix. `x - x` is 0 exactly when `x`
    /// is finite, and a sum of them stays 0 only if all are: one pass
    /// in eight independent lanes, without a branch per element.
    #[allow(clippy::eq_op)] // `x - x` is the finiteness test, on purpose
    pub fn require_finite(&self, op: &'static str, i: usize, lower: bool) -> Result<()> {
        let size = self.m * self.n;
        let rows = self.data[i * size..(i + 1) * size].chunks_exact(self.n.max(1));
        let finite = rows.enumerate().all(|(r, row)| {
            let row = if lower {
                &row[..(r + 1).min(self.n)]
            } else {
                row
            };
            let mut lanes = [T::ZERO; 8];
            let mut it = row.chunks_exact(8);
            for c in &mut it {
                for k in 0..8 {
                    lanes[k] += c[k] - c[k];
                }
            }
            let rest = it.remainder().iter().fold(T::ZERO, |a, &x| a + (x - x));
            lanes.iter().fold(rest, |a, &l| a + l) == T::ZERO
        });
        if finite {
            Ok(())
        } else {
            Err(Error::Linalg {
                op,
                msg: format!("matrix {i} of the batch contains NaN or inf"),
            })
        }
    }

    /// Matrix `i` of the batch.
    pub fn mat(&self, i: usize) -> MatRef<'_, T> {
        let size = self.m * self.n;
        MatRef::from_row_major_slice(&self.data[i * size..(i + 1) * size], self.m, self.n)
    }
}

/// Below this many flops in all a batch is not worth splitting over threads.
const PAR_MIN_FLOPS: f64 = 2.0e6;

/// Below this many flops one matrix is not worth faer's internal threading:
/// at n = 100 (4-12 MFLOP) it was level or slower for every function on 2
/// threads (QR 0.51 -> 0.89 ms, eigh 1.43 -> 1.51 ms, medians of three
/// alternating rounds), while at n = 500 (80 MFLOP and more) it gains.
const PAR_INNER_MIN_FLOPS: f64 = 3.0e7;

/// Runs `f(i, par)` for every batch item `i < count`: in parallel over the
/// batch (a sequential kernel each) when there are several items, or with
/// faer's internal threading for one large matrix. Errors of the first
/// failing item are returned.
pub(crate) fn par_map<R: Send>(
    count: usize,
    flops_per_item: f64,
    f: impl Fn(usize, Par) -> Result<R> + Sync + Send,
) -> Result<Vec<R>> {
    match schedule(count, flops_per_item) {
        None => (0..count).into_par_iter().map(|i| f(i, Par::Seq)).collect(),
        Some(par) => (0..count).map(|i| f(i, par)).collect(),
    }
}

/// As [`par_map`], for work done in place on the consecutive `size`-element
/// matrices of `data`: `f(i, matrix_i, par)`.
pub(crate) fn par_for_each_matrix<T: Send>(
    data: &mut [T],
    size: usize,
    flops_per_item: f64,
    f: impl Fn(usize, &mut [T], Par) -> Result<()> + Sync + Send,
) -> Result<()> {
    if size == 0 {
        return Ok(());
    }
    match schedule(data.len() / size, flops_per_item) {
        None => data
            .par_chunks_exact_mut(size)
            .enumerate()
            .try_for_each(|(i, m)| f(i, m, Par::Seq)),
        Some(par) => data
            .chunks_exact_mut(size)
            .enumerate()
            .try_for_each(|(i, m)| f(i, m, par)),
    }
}

/// `None`: run the batch items in parallel, each sequential; `Some(par)`:
/// one after another, each with `par`.
fn schedule(count: usize, flops_per_item: f64) -> Option<Par> {
    let threads = rayon::current_num_threads();
    if threads > 1 && count > 1 && flops_per_item * count as f64 >= PAR_MIN_FLOPS {
        None
    } else if threads > 1 && flops_per_item >= PAR_INNER_MIN_FLOPS {
        Some(Par::rayon(threads))
    } else {
        Some(Par::Seq)
    }
}

/// Size from which faer's SVD and symmetric eigendecomposition split the
/// bidiagonal or tridiagonal problem by divide and conquer; below it they
/// run QR iteration on the whole of it. faer's default is 128 (LAPACK
/// switches at 25). In a probe of faer's own calls on random f64 matrices,
/// 1 thread, 48 against 128: SVD 1.29-1.32 -> 1.15-1.19 ms at n = 100,
/// 52-53 -> 50 ms at 500 and 343 -> 335 ms at 1000; eigh 0.78-0.81 ->
/// 0.74-0.77 ms at 100, 27.5 -> 27 ms at 500 and level at 1000. (eigh's
/// eigenvectors from n = 33 come from ricci's own divide and conquer,
/// `tridiagonal`, not faer's.)
const DIVIDE_AND_CONQUER_FROM: usize = 48;

/// faer's SVD parameters with [`DIVIDE_AND_CONQUER_FROM`].
pub(crate) fn svd_params<T: Scalar>() -> faer::linalg::svd::SvdParams {
    let mut p: faer::linalg::svd::SvdParams = faer::Auto::<T>::auto();
    p.recursion_threshold = DIVIDE_AND_CONQUER_FROM;
    p
}

/// faer's symmetric eigendecomposition parameters with
/// [`DIVIDE_AND_CONQUER_FROM`].
pub(crate) fn evd_params<T: Scalar>() -> faer::linalg::evd::SelfAdjointEvdParams {
    let mut p: faer::linalg::evd::SelfAdjointEvdParams = faer::Auto::<T>::auto();
    p.recursion_threshold = DIVIDE_AND_CONQUER_FROM;
    p
}

/// Runs `f` with a scratch stack of `req` bytes.
pub(crate) fn with_stack<R>(req: StackReq, f: impl FnOnce(&mut MemStack) -> R) -> R {
    let mut buf = MemBuffer::new(req);
    f(MemStack::new(&mut buf))
}

/// Stacks per-item matrices (each `rows x cols`) into a `[batch..., rows, cols]` tensor.
pub(crate) fn from_mats<T: Scalar>(
    batch: &[usize],
    mats: &[Mat<T>],
    rows: usize,
    cols: usize,
) -> Tensor {
    for m in mats {
        debug_assert_eq!((m.nrows(), m.ncols()), (rows, cols));
    }
    stack_transposed(batch, mats.len(), rows, cols, |i, j| {
        mats[i].col_as_slice(j)
    })
}

/// Stacks the transposes of per-item matrices (each `rows x cols`) into a
/// `[batch..., cols, rows]` tensor: column `j` of a column-major matrix is
/// row `j` of its row-major transpose, so this is one straight copy per column.
pub(crate) fn from_mats_transposed<T: Scalar>(
    batch: &[usize],
    mats: &[Mat<T>],
    rows: usize,
    cols: usize,
) -> Tensor {
    let mut out = crate::tensor::alloc_uninit::<T>(mats.len() * rows * cols);
    for (m, dst) in mats.iter().zip(out.chunks_exact_mut((rows * cols).max(1))) {
        debug_assert_eq!((m.nrows(), m.ncols()), (rows, cols));
        for (j, row) in dst.chunks_exact_mut(rows.max(1)).enumerate().take(cols) {
            row.copy_from_slice(&m.col_as_slice(j)[..rows]);
        }
    }
    let mut shape = batch.to_vec();
    shape.extend([cols, rows]);
    Tensor::from_typed(out, &shape)
}

/// Stacks `count` column-major matrices, whose column `j` of item `i` is
/// `column(i, j)`, into a row-major `[batch..., rows, cols]` tensor.
fn stack_transposed<'a, T: Scalar>(
    batch: &[usize],
    count: usize,
    rows: usize,
    cols: usize,
    column: impl Fn(usize, usize) -> &'a [T],
) -> Tensor {
    let size = rows * cols;
    // Every element is written below, so a recycled buffer needs no clearing.
    let mut out = crate::tensor::alloc_uninit::<T>(count * size);
    for (m, dst) in out.chunks_exact_mut(size.max(1)).enumerate() {
        // Column-major to row-major is a transpose: by tiles, so that both
        // the columns read and the rows written stay in cache. Each
        // output row segment is written contiguously, gathering from the
        // tile's column slices.
        let columns: Vec<&[T]> = (0..cols).map(|j| &column(m, j)[..rows]).collect();
        for jb in (0..cols).step_by(TILE) {
            let tile_cols = &columns[jb..(jb + TILE).min(cols)];
            for ib in (0..rows).step_by(TILE) {
                for i in ib..(ib + TILE).min(rows) {
                    let row = &mut dst[i * cols + jb..i * cols + jb + tile_cols.len()];
                    for (d, c) in row.iter_mut().zip(tile_cols) {
                        *d = c[i];
                    }
                }
            }
        }
    }
    let mut shape = batch.to_vec();
    shape.extend([rows, cols]);
    Tensor::from_typed(out, &shape)
}

/// Tile edge of the transposing copies (32 x 32 f64 is 8 KB: two tiles fit in L1).
const TILE: usize = 32;

/// Stacks per-item vectors (each of length `len`) into a `[batch..., len]` tensor.
pub(crate) fn from_vecs<T: Element>(batch: &[usize], vecs: Vec<Vec<T>>, len: usize) -> Tensor {
    let mut out = Vec::with_capacity(vecs.len() * len);
    for v in vecs {
        debug_assert_eq!(v.len(), len);
        out.extend(v);
    }
    let mut shape = batch.to_vec();
    shape.push(len);
    Tensor::from_typed(out, &shape)
}

/// The matrix transpose of the last two dims (`mT` in torch).
pub(crate) fn mt(t: &Tensor) -> Result<Tensor> {
    t.transpose(-2, -1)
}

/// `[..., k] -> [..., k, k]` with `v` on the diagonal (differentiable).
pub(crate) fn diag_embed(v: &Tensor) -> Result<Tensor> {
    let k = v.shape()[v.rank() - 1];
    v.unsqueeze(-1)?.mul(&Tensor::eye(k, v.dtype()))
}

/// `1/x` where `|x| > tol`, else 0, with `tol` a constant; differentiable
/// where it is not cut off. Used for the `1/(σⱼ² − σᵢ²)` factors of the
/// SVD and eigh VJPs so that repeated values give finite gradients.
pub(crate) fn safe_recip(x: &Tensor, tol: f64) -> Result<Tensor> {
    let keep = x.abs().gt_scalar(tol).detach();
    // Where cut off, divide by 1 instead (then zero it), so no inf * 0 = NaN.
    let denom = x.mul(&keep)?.add(&keep.rsub_scalar(1.0))?;
    denom.recip().mul(&keep)
}

/// Whether the backward pass is being recorded: VJPs then recompute their
/// factorisations with recorded ops so that the gradient is differentiable.
pub(crate) fn recording() -> bool {
    is_grad_enabled()
}

/// Records several outputs of one routine as a single graph node: the
/// outputs are packed into one flat tensor whose VJP unpacks the output
/// gradients (zeros for an unused output) and calls `vjp`; the returned
/// tensors are views of the packed one. Without recording, returns `outs`.
pub(crate) fn record_multi<F>(
    name: &'static str,
    outs: Vec<Tensor>,
    inputs: &[&Tensor],
    vjp: F,
) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor], &[Tensor], &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
{
    if !crate::autograd::will_record(inputs) {
        return Ok(outs);
    }
    let shapes: Vec<Vec<usize>> = outs.iter().map(|t| t.shape().to_vec()).collect();
    let flat: Vec<Tensor> = outs.iter().map(|t| t.flatten_all()).collect();
    let refs: Vec<&Tensor> = flat.iter().collect();
    let packed = Tensor::cat(&refs, 0)?.detach();
    let unpack = {
        let shapes = shapes.clone();
        move |p: &Tensor| -> Result<Vec<Tensor>> {
            let mut start = 0;
            let mut parts = Vec::with_capacity(shapes.len());
            for s in &shapes {
                let len: usize = s.iter().product();
                parts.push(p.narrow(0, start, len)?.reshape(s.clone())?);
                start += len;
            }
            Ok(parts)
        }
    };
    let unpack_in_vjp = unpack.clone();
    let packed = record(name, packed, inputs, move |inp, g, needs| {
        let grads = unpack_in_vjp(g)?;
        vjp(inp, &grads, needs)
    });
    unpack(&packed)
}

/// Machine epsilon of `dtype`, for tolerances.
pub(crate) fn eps(dtype: crate::DType) -> f64 {
    match dtype {
        crate::DType::F32 => f32::EPSILON as f64,
        crate::DType::F64 => f64::EPSILON,
    }
}
