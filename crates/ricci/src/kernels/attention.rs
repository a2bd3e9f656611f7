//! Fused scaled dot-product attention over packed projections.
//!
//! The input is the output of a fused QKV projection, `[b, t, 3, h, d]`
//! row-major (queries, keys and values of every head side by side, as
//! `CausalSelfAttention` makes them). Each (sequence, head) pair is one task:
//!
//! ```text
//! S = scale · Q Kᵀ,   P = softmax_rows(S) (masked above the diagonal when causal),   Y = P V
//! ```
//!
//! `Y` is written straight into `[b, t, h, d]` (the layout the output
//! projection reads), and `P` is kept for the backward pass:
//!
//! ```text
//! dV = Pᵀ dY,   dP = dY Vᵀ,   dS = P ⊙ (dP - rowsum(P ⊙ dP)),   dQ = scale · dS K,   dK = scale · dSᵀ Q
//! ```
//!
//! whose three results land in one `[b, t, 3, h, d]` gradient. Causal
//! attention skips the blocks above the diagonal: the rows are taken in
//! blocks of [`BLOCK`], and a block of queries meets only the keys up to
//! its last row. Products are faer's sequential kernel; the tasks run in
//! parallel.

use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::matmul::MatmulElement;
use super::reduce::{dot_slice, max_slice, scale_by_inverse, sum_slice};
use super::simd::{dispatch_kernel, Kernel};
use super::strided::SyncPtr;
use crate::tensor::Element;

/// Rows per block of queries in causal attention. 32 measured fastest of
/// 8-256 for the GPT configs' heads (64 x 32 and 256 x 64): smaller blocks
/// skip more of the masked triangle but make more, smaller products.
pub const BLOCK: usize = 32;

/// The shape of a packed attention problem.
#[derive(Clone, Copy, Debug)]
pub struct Packed {
    /// Sequences.
    pub b: usize,
    /// Positions per sequence (queries and keys alike).
    pub t: usize,
    /// Heads.
    pub h: usize,
    /// Width of one head.
    pub d: usize,
    /// Whether a query sees only the keys at or before its position.
    pub causal: bool,
    /// The factor on `Q Kᵀ` (usually `1 / sqrt(d)`).
    pub scale: f64,
}

impl Packed {
    fn c(&self) -> usize {
        self.h * self.d
    }

    /// Offset of part `p` (0 queries, 1 keys, 2 values) of head `hi` of
    /// sequence `bi` in the packed `[b, t, 3, h, d]` buffer; its rows are
    /// `3 h d` apart.
    fn packed_off(&self, bi: usize, hi: usize, p: usize) -> usize {
        (bi * self.t * 3 + p) * self.c() + hi * self.d
    }

    /// Offset of head `hi` of sequence `bi` in a `[b, t, h, d]` buffer;
    /// its rows are `h d` apart.
    fn head_off(&self, bi: usize, hi: usize) -> usize {
        bi * self.t * self.c() + hi * self.d
    }

    /// Keys seen by the queries of rows `r0..r1`.
    fn keys_upto(&self, r1: usize) -> usize {
        if self.causal {
            r1
        } else {
            self.t
        }
    }

    /// Blocks of query rows `(r0, r1)`: one block unless causal.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let step = if self.causal { BLOCK } else { self.t.max(1) };
        (0..self.t)
            .step_by(step)
            .map(move |r0| (r0, (r0 + step).min(self.t)))
    }
}

/// A `rows x cols` view at `ptr` with the given row stride (columns contiguous).
///
/// # Safety
/// The view must lie inside one live allocation.
unsafe fn view<'a, T: MatmulElement>(
    ptr: *const T,
    rows: usize,
    cols: usize,
    row_stride: usize,
) -> MatRef<'a, T> {
    MatRef::from_raw_parts(ptr, rows, cols, row_stride as isize, 1)
}

/// As [`view`], writable.
///
/// # Safety
/// The view must lie inside one live allocation that nothing else touches
/// while the view lives.
unsafe fn view_mut<'a, T: MatmulElement>(
    ptr: *mut T,
    rows: usize,
    cols: usize,
    row_stride: usize,
) -> MatMut<'a, T> {
    MatMut::from_raw_parts_mut(ptr, rows, cols, row_stride as isize, 1)
}

/// Forward pass: `y` (`[b, t, h, d]`) and the probabilities `p`
/// (`[b, h, t, t]`, zero above the diagonal when causal) from the packed
/// `qkv` (`[b, t, 3, h, d]`). Every element of `y` and `p` is written.
pub fn forward<T: MatmulElement>(qkv: &[T], s: Packed, y: &mut [T], p: &mut [T]) {
    let (t, d, c) = (s.t, s.d, s.c());
    debug_assert_eq!(qkv.len(), s.b * t * 3 * c);
    debug_assert_eq!(y.len(), s.b * t * c);
    debug_assert_eq!(p.len(), s.b * s.h * t * t);
    if t == 0 || s.b * s.h == 0 {
        return;
    }
    let y_ptr = SyncPtr(y.as_mut_ptr());
    let scale = T::from_f64(s.scale);
    p.par_chunks_mut(t * t).enumerate().for_each(|(i, pi)| {
        let (bi, hi) = (i / s.h, i % s.h);
        let base = qkv.as_ptr();
        for (r0, r1) in s.blocks() {
            let n = s.keys_upto(r1);
            // SAFETY: every view lies inside `qkv`, `pi` or `y` (offsets
            // from `Packed`, whose shape the caller checked against the
            // lengths); task `i` writes only its own `pi` and the `[t, d]`
            // block of head `hi` of sequence `bi` in `y`.
            unsafe {
                let q = view(
                    base.add(s.packed_off(bi, hi, 0) + r0 * 3 * c),
                    r1 - r0,
                    d,
                    3 * c,
                );
                let k = view(base.add(s.packed_off(bi, hi, 1)), n, d, 3 * c);
                let sc = view_mut(pi.as_mut_ptr().add(r0 * t), r1 - r0, n, t);
                faer_matmul(sc, Accum::Replace, q, k.transpose(), scale, Par::Seq);
            }
            dispatch_kernel(SoftmaxBlock {
                p: &mut pi[r0 * t..r1 * t],
                t,
                r0,
                causal: s.causal,
            });
            unsafe {
                let pb = view(pi.as_ptr().add(r0 * t), r1 - r0, n, t);
                let v = view(base.add(s.packed_off(bi, hi, 2)), n, d, 3 * c);
                let yb = view_mut(y_ptr.get().add(s.head_off(bi, hi) + r0 * c), r1 - r0, d, c);
                faer_matmul(yb, Accum::Replace, pb, v, T::ONE, Par::Seq);
            }
        }
    });
}

/// Backward pass: the gradient of the packed `qkv` (`[b, t, 3, h, d]`,
/// every element written) from the output gradient `gy` (`[b, t, h, d]`),
/// the input and the probabilities the forward pass kept.
pub fn backward<T: MatmulElement>(qkv: &[T], p: &[T], gy: &[T], s: Packed, dqkv: &mut [T]) {
    let (t, d, c) = (s.t, s.d, s.c());
    debug_assert_eq!(qkv.len(), s.b * t * 3 * c);
    debug_assert_eq!(dqkv.len(), qkv.len());
    debug_assert_eq!(gy.len(), s.b * t * c);
    debug_assert_eq!(p.len(), s.b * s.h * t * t);
    if t == 0 || s.b * s.h == 0 {
        return;
    }
    let d_ptr = SyncPtr(dqkv.as_mut_ptr());
    let scale = T::from_f64(s.scale);
    p.par_chunks(t * t).enumerate().for_each_init(
        || vec![T::ZERO; t * t],
        |ds, (i, pi)| {
            let (bi, hi) = (i / s.h, i % s.h);
            let base = qkv.as_ptr();
            let g_off = s.head_off(bi, hi);
            // SAFETY (all blocks below): views lie inside `qkv`, `p`, `gy`,
            // the scratch `ds` or `dqkv` (offsets from `Packed`, checked by
            // the caller); task `i` writes only the scratch and the three
            // `[t, d]` blocks of head `hi` of sequence `bi` in `dqkv`.
            // dP = dY Vᵀ, then dS = P ⊙ (dP - rowsum(P ⊙ dP)), block by block.
            for (r0, r1) in s.blocks() {
                let n = s.keys_upto(r1);
                unsafe {
                    let g = view(gy.as_ptr().add(g_off + r0 * c), r1 - r0, d, c);
                    let v = view(base.add(s.packed_off(bi, hi, 2)), n, d, 3 * c);
                    let dp = view_mut(ds.as_mut_ptr().add(r0 * t), r1 - r0, n, t);
                    faer_matmul(dp, Accum::Replace, g, v.transpose(), T::ONE, Par::Seq);
                }
                dispatch_kernel(SoftmaxGradBlock {
                    p: &pi[r0 * t..r1 * t],
                    ds: &mut ds[r0 * t..r1 * t],
                    t,
                    r0,
                    causal: s.causal,
                });
            }
            unsafe {
                let q = view(base.add(s.packed_off(bi, hi, 0)), t, d, 3 * c);
                let k = view(base.add(s.packed_off(bi, hi, 1)), t, d, 3 * c);
                let g = view(gy.as_ptr().add(g_off), t, d, c);
                let dsm = view(ds.as_ptr(), t, t, t);
                let pm = view(pi.as_ptr(), t, t, t);
                let dq = view_mut(d_ptr.get().add(s.packed_off(bi, hi, 0)), t, d, 3 * c);
                let dk = view_mut(d_ptr.get().add(s.packed_off(bi, hi, 1)), t, d, 3 * c);
                let dv = view_mut(d_ptr.get().add(s.packed_off(bi, hi, 2)), t, d, 3 * c);
                if s.causal {
                    // Rows r0..r1 of dQ need dS[r0..r1, ..r1]; rows j0..j1
                    // of dK and dV need dS and P at rows j0.. only (both
                    // are zero above the diagonal).
                    let mut dq = dq;
                    let mut dk = dk;
                    let mut dv = dv;
                    for (r0, r1) in s.blocks() {
                        let rows = r1 - r0;
                        faer_matmul(
                            dq.as_mut().subrows_mut(r0, rows),
                            Accum::Replace,
                            dsm.subrows(r0, rows).subcols(0, r1),
                            k.subrows(0, r1),
                            scale,
                            Par::Seq,
                        );
                        let below = t - r0;
                        faer_matmul(
                            dk.as_mut().subrows_mut(r0, rows),
                            Accum::Replace,
                            dsm.subrows(r0, below).subcols(r0, rows).transpose(),
                            q.subrows(r0, below),
                            scale,
                            Par::Seq,
                        );
                        faer_matmul(
                            dv.as_mut().subrows_mut(r0, rows),
                            Accum::Replace,
                            pm.subrows(r0, below).subcols(r0, rows).transpose(),
                            g.subrows(r0, below),
                            T::ONE,
                            Par::Seq,
                        );
                    }
                } else {
                    faer_matmul(dq, Accum::Replace, dsm, k, scale, Par::Seq);
                    faer_matmul(dk, Accum::Replace, dsm.transpose(), q, scale, Par::Seq);
                    faer_matmul(dv, Accum::Replace, pm.transpose(), g, T::ONE, Par::Seq);
                }
            }
        },
    );
}

/// Softmax of rows `r0..` of one head's scores, in place. Row `r` of a
/// causal head covers keys `0..=r`; the rest of the row is set to zero.
struct SoftmaxBlock<'a, T> {
    p: &'a mut [T],
    t: usize,
    r0: usize,
    causal: bool,
}

impl<T: Element> Kernel for SoftmaxBlock<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxBlock { p, t, r0, causal } = self;
        for (j, row) in p.chunks_mut(t).enumerate() {
            let n = if causal { r0 + j + 1 } else { t };
            let (seen, hidden) = row.split_at_mut(n);
            let m = max_slice(seen);
            seen.iter_mut().for_each(|x| *x = (*x - m).exp());
            scale_by_inverse(seen, sum_slice(seen));
            hidden.fill(T::ZERO);
        }
    }
}

/// `dS = P ⊙ (dP - rowsum(P ⊙ dP))` for rows `r0..` of one head, in place
/// over `dP`; zero above the diagonal of a causal head.
struct SoftmaxGradBlock<'a, T> {
    p: &'a [T],
    ds: &'a mut [T],
    t: usize,
    r0: usize,
    causal: bool,
}

impl<T: Element> Kernel for SoftmaxGradBlock<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxGradBlock {
            p,
            ds,
            t,
            r0,
            causal,
        } = self;
        for (j, (pr, dr)) in p.chunks(t).zip(ds.chunks_mut(t)).enumerate() {
            let n = if causal { r0 + j + 1 } else { t };
            let (seen, hidden) = dr.split_at_mut(n);
            let dot = dot_slice(&pr[..n], seen);
            seen.iter_mut()
                .zip(&pr[..n])
                .for_each(|(x, &pv)| *x = pv * (*x - dot));
            hidden.fill(T::ZERO);
        }
    }
}
