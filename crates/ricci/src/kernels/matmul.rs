//! Dense matrix products on faer's kernels.
//!
//! Operands are passed as strided views (`row_stride`, `col_stride`), so a
//! transposed operand is read in place, never copied. Threads never share
//! one of faer's products: a batch of products runs in parallel over the
//! batch with a sequential kernel each (whatever their size, when the batch
//! splits evenly over the threads), which measured 2-3x faster than faer's
//! internal threading on 2 cores for shapes like `[64, 128, 64]`; one large
//! product is cut into one strip of output rows or columns per thread, each
//! a sequential product. On 2 cores the strips beat faer's internal
//! threading on every shape measured (alternating runs, f32 / f64 GFLOP/s,
//! faer -> strips): 256³ 130 -> 192 / 70 -> 87, 1024³ 189 -> 203 /
//! 95 -> 103, 4096x768x3072 195-215 -> 207; a `[128, 16] x [16, 16384]`
//! product (an einsum's last Tucker step) 0.57 -> 0.37 ms.

use faer::linalg::matmul::matmul as faer_matmul;
use std::ops::Range;

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::par::threads;
use super::strided::SyncPtr;
use crate::tensor::Element;

/// Element types faer can multiply.
pub trait MatmulElement: Element + faer::traits::ComplexField {}
impl MatmulElement for f32 {}
impl MatmulElement for f64 {}

/// A strided matrix operand: storage offset of each batch item plus strides.
#[derive(Clone, Debug)]
pub struct Operand<'a> {
    pub offsets: &'a [usize],
    pub row_stride: isize,
    pub col_stride: isize,
}

/// Products below this many multiply-adds run single-threaded (threads are
/// spread over the batch instead, if there is one).
const SEQ_BELOW_MACS: usize = 96 * 96 * 96;

/// Strips of a split product are multiples of this many rows or columns
/// (faer's f32 micro-kernels are 16 wide at most); a product whose longer
/// output side fits in one strip is left to faer's own threading.
const STRIP_ALIGN: usize = 16;

/// `out[i] = lhs[i] (m x k) * rhs[i] (k x n)` for each batch item `i`;
/// `out` is contiguous `[batch, m, n]`. With `accumulate` the products are
/// added to what `out` holds (`out[i] += ...`) instead.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: MatmulElement>(
    lhs: &[T],
    l: &Operand,
    rhs: &[T],
    r: &Operand,
    m: usize,
    k: usize,
    n: usize,
    out: &mut [T],
    accumulate: bool,
) {
    let batch = l.offsets.len();
    debug_assert_eq!(batch, r.offsets.len());
    debug_assert_eq!(out.len(), batch * m * n);
    if m * n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.fill(T::ZERO);
        }
        return;
    }
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    let macs = m * n * k;
    let nthreads = threads();
    let out_ptr = SyncPtr(out.as_mut_ptr());
    // Rows `rows` and columns `cols` of batch item i's output: those rows
    // of its lhs times those columns of its rhs.
    let part = |i: usize, rows: Range<usize>, cols: Range<usize>, par: Par| {
        let a_off = l.offsets[i] as isize + rows.start as isize * l.row_stride;
        let b_off = r.offsets[i] as isize + cols.start as isize * r.col_stride;
        let c_off = i * m * n + rows.start * n + cols.start;
        // SAFETY: the caller built offsets and strides from layouts that lie
        // inside `lhs` and `rhs` (checked by debug_asserts in the op), and
        // the ranges lie inside m and n; callers give concurrent calls
        // disjoint blocks of `out`.
        unsafe {
            let a = MatRef::<T>::from_raw_parts(
                lhs.as_ptr().offset(a_off),
                rows.len(),
                k,
                l.row_stride,
                l.col_stride,
            );
            let b = MatRef::<T>::from_raw_parts(
                rhs.as_ptr().offset(b_off),
                k,
                cols.len(),
                r.row_stride,
                r.col_stride,
            );
            let c = MatMut::<T>::from_raw_parts_mut(
                out_ptr.get().add(c_off),
                rows.len(),
                cols.len(),
                n as isize,
                1,
            );
            faer_matmul(c, accum, a, b, T::ONE, par);
        }
    };
    let one = |i: usize, par: Par| part(i, 0..m, 0..n, par);
    // A batch that splits evenly over the threads (or is long enough for
    // the remainder not to matter) runs one sequential product per task,
    // whatever the product's size: no synchronisation inside a product.
    let even = batch.is_multiple_of(nthreads) || batch >= 4 * nthreads;
    // Otherwise each large product is cut into one strip per thread along
    // its longer output side.
    let by_cols = n >= m;
    let side = if by_cols { n } else { m };
    let strip = side.div_ceil(nthreads).div_ceil(STRIP_ALIGN) * STRIP_ALIGN;
    if nthreads > 1 && batch > 1 && (even || macs < SEQ_BELOW_MACS) {
        (0..batch).into_par_iter().for_each(|i| one(i, Par::Seq));
    } else if nthreads > 1 && macs >= SEQ_BELOW_MACS && strip < side {
        for i in 0..batch {
            (0..side.div_ceil(strip)).into_par_iter().for_each(|p| {
                let s = p * strip..((p + 1) * strip).min(side);
                if by_cols {
                    part(i, 0..m, s, Par::Seq);
                } else {
                    part(i, s, 0..n, Par::Seq);
                }
            });
        }
    } else if nthreads > 1 && macs >= SEQ_BELOW_MACS {
        let par = Par::rayon(nthreads);
        (0..batch).for_each(|i| one(i, par));
    } else {
        (0..batch).for_each(|i| one(i, Par::Seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scheduling branch (batch-parallel, strips of columns, strips
    /// of rows, faer's threading, one thread), replacing and accumulating,
    /// against a naive product, with a transposed right operand.
    #[test]
    fn each_thread_schedule_matches_naive() {
        // Each above SEQ_BELOW_MACS: n > m (column strips), m > n (row
        // strips, a short last one), 20 x 24 (strips of 16 and 8), and
        // 12 x 16 (one strip would hold it all: faer's threading).
        let cases = [
            (100, 97, 101),
            (101, 97, 100),
            (20, 2000, 24),
            (12, 5000, 16),
        ];
        let schedules = [(1, 2), (2, 2), (3, 2), (8, 2), (3, 1), (1, 3)];
        for ((m, k, n), (batch, threads)) in cases
            .into_iter()
            .flat_map(|c| schedules.into_iter().map(move |s| (c, s)))
        {
            let accumulate = batch % 2 == 1;
            let lhs: Vec<f64> = (0..batch * m * k)
                .map(|i| ((i * 7) % 13) as f64 - 6.0)
                .collect();
            // rhs stored as [batch, n, k]; read as k x n (row stride 1, column stride k).
            let rhs: Vec<f64> = (0..batch * n * k)
                .map(|i| ((i * 5) % 11) as f64 - 5.0)
                .collect();
            let lo: Vec<usize> = (0..batch).map(|b| b * m * k).collect();
            let ro: Vec<usize> = (0..batch).map(|b| b * n * k).collect();
            let l = Operand {
                offsets: &lo,
                row_stride: k as isize,
                col_stride: 1,
            };
            let r = Operand {
                offsets: &ro,
                row_stride: 1,
                col_stride: k as isize,
            };
            let start = |i: usize| (i % 3) as f64;
            let mut out: Vec<f64> = (0..batch * m * n).map(start).collect();
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| matmul(&lhs, &l, &rhs, &r, m, k, n, &mut out, accumulate));
            for b in 0..batch {
                for i in 0..m {
                    for j in 0..n {
                        let at = b * m * n + i * n + j;
                        let dot: f64 = (0..k)
                            .map(|p| lhs[lo[b] + i * k + p] * rhs[ro[b] + j * k + p])
                            .sum();
                        let want = if accumulate { start(at) + dot } else { dot };
                        assert_eq!(
                            out[at], want,
                            "{m}x{k}x{n} batch {batch} threads {threads} at ({b}, {i}, {j})"
                        );
                    }
                }
            }
        }
    }
}
