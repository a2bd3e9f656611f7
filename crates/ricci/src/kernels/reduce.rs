//! Reductions over a contiguous buffer seen as `[a, r, b]`: the reduced
//! dims form the middle block `r`, kept dims before it `a` and after it `b`.
//! `b == 1` reduces contiguous rows; `b > 1` accumulates whole rows of `b`
//! at a time, which vectorises without transposing.

use rayon::prelude::*;

use super::par::{rows_per_task, threads, PAR_MIN_ELEMS};
use super::simd::{dispatch_kernel, Kernel};
use super::strided::{Plan, SyncPtr};
use crate::tensor::Element;

/// Which reduction to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Max,
    Min,
    /// `log(sum(exp(x)))`, computed as `m + log(sum(exp(x - m)))` with `m` the max.
    LogSumExp,
}

/// Indices of the first maximum or minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgReduce {
    Max,
    Min,
}

/// Sum of a contiguous slice: 32 independent lanes (four AVX2 vectors, so
/// that four adds are in flight rather than one waiting on the last) per
/// block of 1024, blocks accumulated in f64 so that summing millions of f32
/// keeps about f32 precision. Against the earlier 8 lanes read as four
/// interleaved streams, alternating runs of rows of 64k and 4k f32 on one
/// thread measured 1.61-1.77 against 1.74-1.88 ms and 1.62-1.76 against
/// 1.64-1.80 ms per 64 MB; on two threads the two were level.
#[inline(always)]
pub fn sum_slice<T: Element>(s: &[T]) -> T {
    T::from_f64(sum_blocks(s))
}

/// [`sum_slice`] as an f64.
#[inline(always)]
fn sum_blocks<T: Element>(s: &[T]) -> f64 {
    let mut total = 0.0f64;
    for block in s.chunks(1024) {
        let mut lanes = [T::ZERO; 32];
        let mut it = block.chunks_exact(32);
        for c in &mut it {
            for k in 0..32 {
                lanes[k] += c[k];
            }
        }
        let mut acc = T::ZERO;
        for &x in it.remainder() {
            acc += x;
        }
        for l in lanes {
            acc += l;
        }
        total += acc.to_f64();
    }
    total
}

#[inline(always)]
pub(super) fn max_slice<T: Element>(s: &[T]) -> T {
    let mut lanes = [T::NEG_INFINITY; 8];
    let mut nan = false;
    let mut it = s.chunks_exact(8);
    for c in &mut it {
        for k in 0..8 {
            // `>` is false for NaN; NaN is tracked separately.
            lanes[k] = if c[k] > lanes[k] { c[k] } else { lanes[k] };
            nan |= c[k].is_nan();
        }
    }
    let mut m = T::NEG_INFINITY;
    for &x in it.remainder().iter().chain(lanes.iter()) {
        m = if x > m { x } else { m };
        nan |= x.is_nan();
    }
    if nan {
        T::NAN
    } else {
        m
    }
}

#[inline(always)]
fn min_slice<T: Element>(s: &[T]) -> T {
    let mut lanes = [T::INFINITY; 8];
    let mut nan = false;
    let mut it = s.chunks_exact(8);
    for c in &mut it {
        for k in 0..8 {
            lanes[k] = if c[k] < lanes[k] { c[k] } else { lanes[k] };
            nan |= c[k].is_nan();
        }
    }
    let mut m = T::INFINITY;
    for &x in it.remainder().iter().chain(lanes.iter()) {
        m = if x < m { x } else { m };
        nan |= x.is_nan();
    }
    if nan {
        T::NAN
    } else {
        m
    }
}

#[inline(always)]
fn logsumexp_slice<T: Element>(s: &[T]) -> T {
    let m = max_slice(s);
    if m.is_nan() || m == T::NEG_INFINITY || m == T::INFINITY {
        // empty, all -inf, NaN, or +inf: the max is the answer
        return if s.is_empty() { T::NEG_INFINITY } else { m };
    }
    let mut acc = 0.0f64;
    for block in s.chunks(1024) {
        let part: T = block.iter().map(|&x| (x - m).exp()).sum();
        acc += part.to_f64();
    }
    m + T::from_f64(acc).ln()
}

/// One contiguous slice reduced by `op` (a [`Kernel`], so the slice loops
/// are compiled for AVX2).
struct ReduceSlice<'a, T> {
    s: &'a [T],
    op: Reduce,
}

impl<T: Element> Kernel for ReduceSlice<'_, T> {
    type Output = T;
    #[inline(always)]
    fn run(self) -> T {
        let s = self.s;
        match self.op {
            Reduce::Sum => sum_slice(s),
            Reduce::Max => max_slice(s),
            Reduce::Min => min_slice(s),
            Reduce::LogSumExp => logsumexp_slice(s),
        }
    }
}

fn reduce_slice<T: Element>(s: &[T], op: Reduce) -> T {
    dispatch_kernel(ReduceSlice { s, op })
}

/// Rows up to this long (a classifier's logits, a head's few values) are
/// reduced and softmaxed by plain loops, all rows in one dispatch: the
/// wide accumulators of the long-row kernels cost more to set up and fold
/// than such a row holds.
const SHORT_ROW: usize = 32;

/// Sum, max or min of each of many short rows (see [`SHORT_ROW`]); NaN
/// propagates as in [`reduce_slice`]. Row sums of a `[128, 10]` tensor:
/// 2.9 µs row by row.
struct ReduceShortRows<'a, T> {
    src: &'a [T],
    r: usize,
    op: Reduce,
    out: &'a mut [T],
}

impl<T: Element> Kernel for ReduceShortRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let ReduceShortRows { src, r, op, out } = self;
        for (o, row) in out.iter_mut().zip(src.chunks_exact(r)) {
            *o = match op {
                Reduce::Sum => row.iter().fold(T::ZERO, |a, &x| a + x),
                Reduce::Max | Reduce::Min => short_extreme(row, op == Reduce::Max),
                Reduce::LogSumExp => reduce_slice(row, op),
            };
        }
    }
}

/// The maximum (or minimum) of a short row by a plain loop; NaN if the row
/// holds one.
#[inline(always)]
fn short_extreme<T: Element>(row: &[T], max: bool) -> T {
    let mut m = if max { T::NEG_INFINITY } else { T::INFINITY };
    let mut nan = false;
    for &x in row {
        let better = if max { x > m } else { x < m };
        m = if better { x } else { m };
        nan |= x.is_nan();
    }
    if nan {
        T::NAN
    } else {
        m
    }
}

/// `out[i] = Σ_j a[i k + j] b[i k + j]`: dot products of the `out.len()`
/// rows of length `k` of two contiguous buffers, in one pass that stores no
/// product. Rows run in parallel; one long row is split into parts.
pub fn dot_rows<T: Element>(a: &[T], b: &[T], k: usize, out: &mut [T]) {
    debug_assert_eq!(a.len(), out.len() * k);
    debug_assert_eq!(b.len(), a.len());
    if k == 0 {
        out.fill(T::ZERO);
        return;
    }
    let par = a.len() >= PAR_MIN_ELEMS && threads() > 1;
    let dot = |x: &[T], y: &[T]| dispatch_kernel(DotSlice { x, y });
    if out.len() == 1 {
        out[0] = T::from_f64(dot_f64(a, b));
    } else if par {
        out.par_iter_mut()
            .zip(a.par_chunks(k).zip(b.par_chunks(k)))
            .for_each(|(o, (x, y))| *o = dot(x, y));
    } else {
        out.iter_mut()
            .zip(a.chunks(k).zip(b.chunks(k)))
            .for_each(|(o, (x, y))| *o = dot(x, y));
    }
}

/// `Σ x[j] y[j]` of two equally long slices: 32 independent lanes (four
/// AVX2 registers of f32) per block of 1024, blocks accumulated in f64 as
/// in [`sum_slice`]. Vectorised only inside a [`Kernel`].
#[inline(always)]
pub fn dot_slice<T: Element>(x: &[T], y: &[T]) -> T {
    let mut total = 0.0f64;
    for (bx, by) in x.chunks(1024).zip(y.chunks(1024)) {
        let mut lanes = [T::ZERO; 32];
        let (mut ix, mut iy) = (bx.chunks_exact(32), by.chunks_exact(32));
        for (cx, cy) in (&mut ix).zip(&mut iy) {
            for j in 0..32 {
                lanes[j] += cx[j] * cy[j];
            }
        }
        let mut acc = T::ZERO;
        for (&p, &q) in ix.remainder().iter().zip(iy.remainder()) {
            acc += p * q;
        }
        for l in lanes {
            acc += l;
        }
        total += acc.to_f64();
    }
    T::from_f64(total)
}

/// `Σ x[j] y[j]` of two equally long slices, in f64: [`dot_slice`] per
/// chunk of 64k elements (in parallel when large), the chunks' sums added
/// in order, so the result does not depend on the thread count.
pub fn dot_f64<T: Element>(x: &[T], y: &[T]) -> f64 {
    debug_assert_eq!(x.len(), y.len());
    const CHUNK: usize = 64 * 1024;
    let dot = |(x, y): (&[T], &[T])| dispatch_kernel(DotSlice { x, y }).to_f64();
    if x.len() >= PAR_MIN_ELEMS && threads() > 1 {
        let parts: Vec<f64> = x
            .par_chunks(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .map(dot)
            .collect();
        parts.iter().sum()
    } else {
        x.chunks(CHUNK).zip(y.chunks(CHUNK)).map(dot).sum()
    }
}

/// [`dot_slice`] as a [`Kernel`].
struct DotSlice<'a, T> {
    x: &'a [T],
    y: &'a [T],
}

impl<T: Element> Kernel for DotSlice<'_, T> {
    type Output = T;
    #[inline(always)]
    fn run(self) -> T {
        dot_slice(self.x, self.y)
    }
}

/// Reduces `src` seen as `[a, r, b]` over `r` into `out` (`a * b` elements).
pub fn reduce<T: Element>(src: &[T], a: usize, r: usize, b: usize, op: Reduce, out: &mut [T]) {
    debug_assert_eq!(src.len(), a * r * b);
    debug_assert_eq!(out.len(), a * b);
    if out.is_empty() {
        return;
    }
    if r == 0 {
        // Reducing an empty dim: the identity of the reduction (max/min of
        // nothing is refused by the op before reaching here).
        out.fill(match op {
            Reduce::Sum => T::ZERO,
            Reduce::Max | Reduce::LogSumExp => T::NEG_INFINITY,
            Reduce::Min => T::INFINITY,
        });
        return;
    }
    let par = src.len() >= PAR_MIN_ELEMS && threads() > 1;
    if b == 1 {
        if a == 1 && par && op == Reduce::Sum {
            // One long row: split it across threads, combine in f64.
            let total: f64 = src
                .par_chunks(64 * 1024)
                .map(|c| sum_slice(c).to_f64())
                .sum();
            out[0] = T::from_f64(total);
        } else if a == 1 && par && matches!(op, Reduce::Max | Reduce::Min) {
            let parts: Vec<T> = src
                .par_chunks(64 * 1024)
                .map(|c| reduce_slice(c, op))
                .collect();
            out[0] = reduce_slice(&parts, op);
        } else if par && r > 0 {
            out.par_iter_mut()
                .zip(src.par_chunks(r))
                .for_each(|(o, row)| *o = reduce_slice(row, op));
        } else if r <= SHORT_ROW && op != Reduce::LogSumExp {
            dispatch_kernel(ReduceShortRows { src, r, op, out });
        } else {
            for (i, o) in out.iter_mut().enumerate() {
                *o = reduce_slice(&src[i * r..(i + 1) * r], op);
            }
        }
        return;
    }
    // b > 1: out[i, :] = fold over k of src[i, k, :].
    let plane = |i: usize, o: &mut [T]| {
        dispatch_kernel(ReducePlane {
            base: &src[i * r * b..(i + 1) * r * b],
            o,
            op,
        })
    };
    if par && a > 1 {
        out.par_chunks_mut(b)
            .enumerate()
            .for_each(|(i, o)| plane(i, o));
    } else if par && a == 1 && op == Reduce::Sum && b >= 64 {
        // Column sums of one tall matrix: split the columns across threads.
        let cols = b.div_ceil(threads());
        out.par_chunks_mut(cols).enumerate().for_each(|(t, o)| {
            let c0 = t * cols;
            dispatch_kernel(ColumnSums { src, b, c0, o });
        });
    } else {
        out.chunks_mut(b).enumerate().for_each(|(i, o)| plane(i, o));
    }
}

/// Sum, max or min of strided rows, one output per row of `plan`: row
/// `i` is the plan's innermost dim, `plan.inner()` elements
/// `plan.inner_strides()` apart from the row's base. This reads a view
/// such as a batch of diagonals (`bii->b`) where it lies, with no copy
/// into a contiguous buffer first. A run with stride 1 (a narrowed view)
/// goes to the vectorised slice kernels; otherwise the sum keeps four f64
/// partial sums, so consecutive adds do not wait on each other. Summing the
/// rows of a `[4096, 2048]` narrow of a 4096² f32 matrix took 2.0 ms on 1
/// thread this way, against 3.9 ms copying it first (and 4.3 ms with the
/// scalar loop); the rows of 4096 diagonals of 64x64 blocks, 0.38-0.43
/// against 0.71-0.80 ms.
pub fn reduce_strided<T: Element>(src: &[T], plan: &Plan<1>, op: Reduce, out: &mut [T]) {
    let (r, [s]) = (plan.inner(), plan.inner_strides());
    debug_assert_eq!(out.len(), plan.rows());
    debug_assert!(op != Reduce::LogSumExp);
    let row = |base: isize| -> T {
        if s == 1 {
            // A contiguous run (a narrowed view): the vectorised kernels.
            return reduce_slice(&src[base as usize..base as usize + r], op);
        }
        let at = |i: usize| src[(base + i as isize * s) as usize];
        match op {
            Reduce::Sum => {
                let mut acc = [0.0f64; 4];
                let full = r - r % 4;
                for i in (0..full).step_by(4) {
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a += at(i + j).to_f64();
                    }
                }
                for (j, i) in (full..r).enumerate() {
                    acc[j] += at(i).to_f64();
                }
                T::from_f64((acc[0] + acc[1]) + (acc[2] + acc[3]))
            }
            Reduce::Max => (0..r).fold(T::NEG_INFINITY, |m, i| m.max_nan(at(i))),
            _ => (0..r).fold(T::INFINITY, |m, i| m.min_nan(at(i))),
        }
    };
    let run = |r0: usize, o: &mut [T]| {
        plan.for_rows(r0, r0 + o.len(), |i, [base]| o[i - r0] = row(base));
    };
    if out.len() * r >= PAR_MIN_ELEMS && threads() > 1 && out.len() > 1 {
        let per = rows_per_task(out.len(), r);
        out.par_chunks_mut(per)
            .enumerate()
            .for_each(|(t, o)| run(t * per, o));
    } else {
        run(0, out);
    }
}

/// One `[r, b]` plane of [`reduce`] folded over its rows into `o` (`b` long).
struct ReducePlane<'a, T> {
    base: &'a [T],
    o: &'a mut [T],
    op: Reduce,
}

impl<T: Element> Kernel for ReducePlane<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let ReducePlane { base, o, op } = self;
        let b = o.len();
        match op {
            Reduce::Sum => column_sums(o, base, b, 0),
            Reduce::Max | Reduce::Min | Reduce::LogSumExp => {
                let is_min = op == Reduce::Min;
                o.fill(if is_min { T::INFINITY } else { T::NEG_INFINITY });
                for row in base.chunks_exact(b) {
                    o.iter_mut()
                        .zip(row)
                        .for_each(|(o, &x)| *o = if is_min { o.min_nan(x) } else { o.max_nan(x) });
                }
                if op == Reduce::LogSumExp {
                    let mut acc = vec![T::ZERO; b];
                    for row in base.chunks_exact(b) {
                        for ((s, &x), &m) in acc.iter_mut().zip(row).zip(o.iter()) {
                            if m > T::NEG_INFINITY && m < T::INFINITY {
                                *s += (x - m).exp();
                            }
                        }
                    }
                    for (o, s) in o.iter_mut().zip(acc) {
                        if *o > T::NEG_INFINITY && *o < T::INFINITY {
                            *o += s.ln();
                        }
                    }
                }
            }
        }
    }
}

/// Columns `c0..c0 + o.len()` of the rows (length `b`) of `src`, summed into `o`.
struct ColumnSums<'a, T> {
    src: &'a [T],
    b: usize,
    c0: usize,
    o: &'a mut [T],
}

impl<T: Element> Kernel for ColumnSums<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let ColumnSums { src, b, c0, o } = self;
        column_sums(o, src, b, c0);
    }
}

/// `o[j] = Σ_i rows[i][c0 + j]` over the rows (length `b`) of `rows`, in
/// row order. Four rows per pass over `o`: `o + r0 + r1 + r2 + r3` adds in
/// the same order as one row at a time (same bits) with a quarter of the
/// loads and stores of `o`.
#[inline(always)]
fn column_sums<T: Element>(o: &mut [T], rows: &[T], b: usize, c0: usize) {
    let w = o.len();
    o.fill(T::ZERO);
    let mut quads = rows.chunks_exact(4 * b);
    for q in &mut quads {
        let (r0, r1, r2, r3) = (
            &q[c0..c0 + w],
            &q[b + c0..b + c0 + w],
            &q[2 * b + c0..2 * b + c0 + w],
            &q[3 * b + c0..3 * b + c0 + w],
        );
        for j in 0..w {
            o[j] = o[j] + r0[j] + r1[j] + r2[j] + r3[j];
        }
    }
    for row in quads.remainder().chunks_exact(b) {
        o.iter_mut()
            .zip(&row[c0..c0 + w])
            .for_each(|(o, &x)| *o += x);
    }
}

/// Index (along `r`) of the first max/min of `src` seen as `[a, r, b]`.
/// NaN counts as the maximum and the minimum, as numpy's `argmax` does.
pub fn arg_reduce<T: Element>(
    src: &[T],
    a: usize,
    r: usize,
    b: usize,
    op: ArgReduce,
    out: &mut [usize],
) {
    let better = |x: T, best: T| match op {
        ArgReduce::Max => x > best || (x.is_nan() && !best.is_nan()),
        ArgReduce::Min => x < best || (x.is_nan() && !best.is_nan()),
    };
    for i in 0..a {
        for j in 0..b {
            let mut best_k = 0;
            let mut best = src[i * r * b + j];
            for k in 1..r {
                let x = src[(i * r + k) * b + j];
                if better(x, best) {
                    best = x;
                    best_k = k;
                }
            }
            out[i * b + j] = best_k;
        }
    }
}

/// Softmax (or log-softmax) of each contiguous row of length `r`.
/// Subtracting the row max before `exp` keeps logits of 1e4 finite. Each
/// pass is a separate loop (max, exp, sum, scale) so every one vectorises;
/// a fused loop with a running sum would serialise on the adds.
pub fn softmax_rows<T: Element>(src: &[T], r: usize, log: bool, out: &mut [T]) {
    let row = |(s, o): (&[T], &mut [T])| dispatch_kernel(SoftmaxRow { s, o, log });
    if r == 0 {
        return;
    }
    if r <= SHORT_ROW && src.len() < PAR_MIN_ELEMS {
        return dispatch_kernel(SoftmaxShortRows {
            s: src,
            o: out,
            r,
            log,
        });
    }
    if src.len() >= PAR_MIN_ELEMS && threads() > 1 {
        src.par_chunks(r).zip(out.par_chunks_mut(r)).for_each(row);
    } else {
        src.chunks(r).zip(out.chunks_mut(r)).for_each(row);
    }
}

/// Many short rows of [`softmax_rows`] (see [`SHORT_ROW`]) in one
/// dispatch, each with plain loops (a `[128, 10]` log-softmax took 8.8 µs
/// row by row, 4.1 µs so).
struct SoftmaxShortRows<'a, T> {
    s: &'a [T],
    o: &'a mut [T],
    r: usize,
    log: bool,
}

impl<T: Element> Kernel for SoftmaxShortRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxShortRows { s, o, r, log } = self;
        for (s, o) in s.chunks_exact(r).zip(o.chunks_exact_mut(r)) {
            let m = short_extreme(s, true);
            // The exps as a map of their own, which vectorises; a sum in
            // the same loop would chain every exp behind the last add.
            o.iter_mut().zip(s).for_each(|(o, &x)| *o = (x - m).exp());
            let total = o.iter().fold(T::ZERO, |a, &b| a + b);
            if log {
                let l = total.ln();
                o.iter_mut().zip(s).for_each(|(o, &x)| *o = (x - m) - l);
            } else {
                scale_by_inverse(o, total);
            }
        }
    }
}

/// One row of [`softmax_rows`].
struct SoftmaxRow<'a, T> {
    s: &'a [T],
    o: &'a mut [T],
    log: bool,
}

impl<T: Element> Kernel for SoftmaxRow<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxRow { s, o, log } = self;
        let m = max_slice(s);
        o.iter_mut().zip(s).for_each(|(o, &x)| *o = (x - m).exp());
        let total = sum_slice(o);
        if log {
            // (x - m) - ln(sum), not x - (m + ln(sum)): for logits near 1e4
            // the sum m + ln(sum) would round away the small part in f32.
            let l = total.ln();
            o.iter_mut().zip(s).for_each(|(o, &x)| *o = (x - m) - l);
        } else {
            scale_by_inverse(o, total);
        }
    }
}

/// `o ← o / total`, as one reciprocal and a multiply per element: the last
/// pass of a softmax row.
#[inline(always)]
pub(super) fn scale_by_inverse<T: Element>(o: &mut [T], total: T) {
    let inv = T::ONE / total;
    o.iter_mut().for_each(|o| *o *= inv);
}

/// Softmax (or log-softmax) over the middle dim of `[a, r, b]`. With
/// `b > 1` (softmax along a dim that is not innermost in memory) each
/// `[r, b]` plane runs in tiles of whole rows, see `softmax_plane`.
pub fn softmax<T: Element>(src: &[T], a: usize, r: usize, b: usize, log: bool, out: &mut [T]) {
    if src.is_empty() {
        return;
    }
    if b == 1 {
        return softmax_rows(src, r, log, out);
    }
    let n = r * b;
    if n == 0 {
        return;
    }
    debug_assert_eq!(src.len(), a * n);
    let plane = |(s, o): (&[T], &mut [T])| softmax_plane(s, o, r, b, log, false);
    if n >= PAR_MIN_ELEMS {
        // Large planes one after another, each spread over the threads.
        let par = threads() > 1;
        src.chunks(n)
            .zip(out.chunks_mut(n))
            .for_each(|(s, o)| softmax_plane(s, o, r, b, log, par));
    } else if src.len() >= PAR_MIN_ELEMS && threads() > 1 {
        src.par_chunks(n).zip(out.par_chunks_mut(n)).for_each(plane);
    } else {
        src.chunks(n).zip(out.chunks_mut(n)).for_each(plane);
    }
}

/// Rows per tile of [`softmax_plane`]: each tile's partial maxima and sums
/// take one row of scratch, 1/64 of the plane.
const SOFTMAX_TILE_ROWS: usize = 64;
/// Columns per tile of [`softmax_plane`]: rows of a 4096-wide plane whole.
/// On 2 threads, a 4096² f32 plane took 10.2-12.6 ms in tiles 4096 wide,
/// 13.2-14.3 ms at 2048 and 13.8-16.6 ms at 1024 (probe, preallocated
/// output): shorter runs per row, 4-8 KB every 16 KB, stream less well.
const SOFTMAX_TILE_COLS: usize = 4096;

/// Softmax down the columns of one row-major `[r, b]` plane.
///
/// The plane is cut into tiles of up to [`SOFTMAX_TILE_ROWS`] rows by
/// [`SOFTMAX_TILE_COLS`] columns, and three passes run over the tiles,
/// each tile by one task: the column maxima of each tile's rows; `exp(x -
/// m)` written out with its column sums (log-softmax only sums); the scaling
/// by `1 / sum` (log-softmax writes `(x - m) - ln sum`). Between passes the
/// tiles' partial maxima and sums are combined in row order. A task reads
/// and writes whole rows of its tile, so every pass streams through memory
/// in long runs on every thread. Splitting the plane by columns instead
/// (each thread half of every row) made two threads no faster than one, at
/// 20 GB/s per pass. The tiling depends only on `r` and `b`, never on the
/// thread count, so neither do the results.
fn softmax_plane<T: Element>(src: &[T], out: &mut [T], r: usize, b: usize, log: bool, par: bool) {
    let tile_rows = r.div_ceil(r.div_ceil(SOFTMAX_TILE_ROWS));
    let blocks = r.div_ceil(tile_rows);
    let cols = SOFTMAX_TILE_COLS.min(b);
    let tiles: Vec<(usize, usize)> = (0..blocks)
        .flat_map(|i| (0..b.div_ceil(cols)).map(move |j| (i, j * cols)))
        .collect();
    // One row of partial results per block of rows.
    let mut part = vec![T::ZERO; blocks * b];
    let (optr, pptr) = (SyncPtr(out.as_mut_ptr()), SyncPtr(part.as_mut_ptr()));
    let run = |pass: TilePass, col: &[T], col2: &[T]| {
        let tile = |&(i, c0): &(usize, usize)| {
            let c1 = (c0 + cols).min(b);
            let k0 = i * tile_rows;
            // SAFETY: tile (i, c0) alone touches rows [k0, k0 + tile_rows)
            // x columns [c0, c1) of `out` and columns [c0, c1) of row i of
            // `part`; the tiles are disjoint and both buffers outlive the pass.
            let part_row =
                unsafe { std::slice::from_raw_parts_mut(pptr.get().add(i * b + c0), c1 - c0) };
            dispatch_kernel(SoftmaxTile {
                src: &src[k0 * b..((k0 + tile_rows).min(r)) * b],
                out: SyncPtr(unsafe { optr.get().add(k0 * b) }),
                b,
                c0,
                part: part_row,
                col: &col[c0..c1],
                col2: &col2[c0..c1],
                pass,
                log,
            })
        };
        if par {
            tiles.par_iter().for_each(tile);
        } else {
            tiles.iter().for_each(tile);
        }
    };
    // Column maxima `m`, then `last`: the column sums, then their logs
    // (log-softmax) or reciprocals. A pass reads only what it needs.
    let (mut m, mut last) = (vec![T::NEG_INFINITY; b], vec![T::ZERO; b]);
    run(TilePass::Max, &m, &last);
    for p in part.chunks_exact(b) {
        m.iter_mut().zip(p).for_each(|(m, &x)| *m = m.max_nan(x));
    }
    run(TilePass::ExpSum, &m, &last);
    for p in part.chunks_exact(b) {
        last.iter_mut().zip(p).for_each(|(t, &x)| *t += x);
    }
    last.iter_mut()
        .for_each(|s| *s = if log { s.ln() } else { T::ONE / *s });
    run(TilePass::Finish, &m, &last);
}

/// One pass of [`softmax_plane`] over one tile.
#[derive(Clone, Copy)]
enum TilePass {
    /// `part` = column maxima of the tile.
    Max,
    /// `out = exp(x - m)` (softmax only), `part` = column sums of `exp(x - m)`.
    ExpSum,
    /// `out *= 1 / sum`, or `out = (x - m) - ln sum` for log-softmax.
    Finish,
}

/// One tile of [`softmax_plane`]: rows `src.chunks(b)`, columns
/// `c0..c0 + part.len()`; `col` is the column max `m` (read by the passes
/// after the first), `col2` the reciprocal sum or its log (read by the last).
struct SoftmaxTile<'a, T> {
    src: &'a [T],
    out: SyncPtr<T>,
    b: usize,
    c0: usize,
    part: &'a mut [T],
    col: &'a [T],
    col2: &'a [T],
    pass: TilePass,
    log: bool,
}

impl<T: Element> Kernel for SoftmaxTile<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxTile {
            src,
            out,
            b,
            c0,
            part,
            col,
            col2,
            pass,
            log,
        } = self;
        let w = part.len();
        let rows = src.chunks_exact(b).map(|row| &row[c0..c0 + w]);
        // SAFETY: the caller hands this tile rows of `out` at `k * b + c0`,
        // `w` long, that no other tile touches.
        let out_row =
            |k: usize| unsafe { std::slice::from_raw_parts_mut(out.get().add(k * b + c0), w) };
        match pass {
            TilePass::Max => {
                part.fill(T::NEG_INFINITY);
                for row in rows {
                    part.iter_mut()
                        .zip(row)
                        .for_each(|(p, &x)| *p = p.max_nan(x));
                }
            }
            TilePass::ExpSum => {
                part.fill(T::ZERO);
                for (k, row) in rows.enumerate() {
                    if log {
                        part.iter_mut()
                            .zip(row)
                            .zip(col)
                            .for_each(|((p, &x), &m)| *p += (x - m).exp());
                    } else {
                        // One loop: the sums are per column, so nothing
                        // serialises on them.
                        out_row(k)
                            .iter_mut()
                            .zip(row)
                            .zip(col)
                            .zip(part.iter_mut())
                            .for_each(|(((o, &x), &m), p)| {
                                let e = (x - m).exp();
                                *o = e;
                                *p += e;
                            });
                    }
                }
            }
            TilePass::Finish => {
                for (k, row) in rows.enumerate() {
                    let o = out_row(k);
                    if log {
                        o.iter_mut()
                            .zip(row)
                            .zip(col.iter().zip(col2))
                            .for_each(|((o, &x), (&m, &l))| *o = (x - m) - l);
                    } else {
                        o.iter_mut().zip(col2).for_each(|(o, &i)| *o *= i);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_f64_matches_naive_and_not_the_thread_count() {
        // Lengths below, at and across the 64k chunks and the 1024 blocks.
        for n in [0usize, 1, 31, 1025, 65_536, 200_003] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
                .collect();
            let naive: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
            let on = |t: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap()
                    .install(|| dot_f64(&x, &x))
            };
            let (one, two) = (on(1), on(2));
            assert!(
                (one - naive).abs() <= 1e-6 * naive.max(1e-30),
                "n {n}: {one} vs {naive}"
            );
            assert_eq!(one.to_bits(), two.to_bits(), "n {n}: 1 vs 2 threads");
        }
    }

    #[test]
    fn middle_reduction_matches_naive() {
        let (a, r, b) = (3, 5, 4);
        let src: Vec<f64> = (0..a * r * b)
            .map(|x| ((x * 7) % 11) as f64 - 5.0)
            .collect();
        for op in [Reduce::Sum, Reduce::Max, Reduce::Min, Reduce::LogSumExp] {
            let mut out = vec![0.0; a * b];
            reduce(&src, a, r, b, op, &mut out);
            for i in 0..a {
                for j in 0..b {
                    let col: Vec<f64> = (0..r).map(|k| src[(i * r + k) * b + j]).collect();
                    let want = match op {
                        Reduce::Sum => col.iter().sum(),
                        Reduce::Max => col.iter().cloned().fold(f64::MIN, f64::max),
                        Reduce::Min => col.iter().cloned().fold(f64::MAX, f64::min),
                        Reduce::LogSumExp => col.iter().map(|x| x.exp()).sum::<f64>().ln(),
                    };
                    assert!((out[i * b + j] - want).abs() < 1e-12, "{op:?}");
                }
            }
        }
    }

    /// Column sums in four-row passes (every remainder of rows mod 4), on
    /// one thread and split over columns on two, equal the row-by-row sum
    /// bit for bit (same order of additions).
    #[test]
    fn column_sums_add_in_row_order() {
        for (a, r, b) in [
            (1, 9, 4100),
            (1, 10, 4100),
            (1, 11, 70),
            (2, 7, 4100),
            (3, 4, 5),
        ] {
            let src: Vec<f32> = (0..a * r * b)
                .map(|x| ((x * 7919) % 1009) as f32 * 0.013 - 6.1)
                .collect();
            for threads in [1, 2] {
                let mut out = vec![0.0f32; a * b];
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| reduce(&src, a, r, b, Reduce::Sum, &mut out));
                for i in 0..a {
                    for j in 0..b {
                        let want = (0..r).fold(0.0f32, |acc, k| acc + src[(i * r + k) * b + j]);
                        assert_eq!(
                            out[i * b + j],
                            want,
                            "[{a}, {r}, {b}] at ({i}, {j}), {threads} threads"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn short_rows_reduce_like_a_naive_fold_with_nan() {
        for r in [1usize, 2, 10, 32, 33] {
            let a = 9;
            let mut src: Vec<f32> = (0..a * r).map(|x| ((x * 7) % 13) as f32 - 6.0).collect();
            src[r + r / 2] = f32::NAN; // row 1 holds a NaN
            for op in [Reduce::Sum, Reduce::Max, Reduce::Min] {
                let mut out = vec![0.0f32; a];
                reduce(&src, a, r, 1, op, &mut out);
                for (i, (row, &got)) in src.chunks(r).zip(&out).enumerate() {
                    let want = match op {
                        Reduce::Sum => row.iter().map(|&x| x as f64).sum::<f64>(),
                        _ if row.iter().any(|x| x.is_nan()) => f64::NAN,
                        Reduce::Max => row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64)),
                        _ => row.iter().fold(f64::INFINITY, |m, &x| m.min(x as f64)),
                    };
                    if want.is_nan() {
                        assert!(got.is_nan(), "{op:?} r {r} row {i}: {got}");
                    } else {
                        assert_eq!(got as f64, want, "{op:?} r {r} row {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn short_softmax_rows_match_a_naive_softmax_with_nan_and_infinities() {
        for r in [1usize, 3, 10, 32] {
            let rows = 7;
            let mut src: Vec<f32> = (0..rows * r)
                .map(|x| ((x * 13) % 11) as f32 * 0.9 - 4.0)
                .collect();
            src[r] = f32::NAN; // row 1 holds a NaN
            src[2 * r] = f32::NEG_INFINITY; // row 2 one -inf
            src[3 * r..4 * r].fill(f32::NEG_INFINITY); // row 3 all -inf
            for log in [false, true] {
                let mut out = vec![0.0f32; src.len()];
                softmax_rows(&src, r, log, &mut out);
                for (i, (s, o)) in src.chunks(r).zip(out.chunks(r)).enumerate() {
                    let m = s.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
                    let total: f64 = s.iter().map(|&x| (x as f64 - m).exp()).sum();
                    for (k, (&x, &y)) in s.iter().zip(o).enumerate() {
                        let want = if log {
                            (x as f64 - m) - total.ln()
                        } else {
                            (x as f64 - m).exp() / total
                        };
                        // A NaN, or a row all -inf, gives NaN everywhere.
                        if want.is_nan() {
                            assert!(y.is_nan(), "r {r} log {log} row {i} col {k}: {y}");
                        } else if want.is_infinite() {
                            assert_eq!(y as f64, want, "r {r} log {log} row {i} col {k}");
                        } else {
                            let tol = 1e-6 * (1.0 + want.abs());
                            assert!(
                                (y as f64 - want).abs() < tol,
                                "r {r} log {log} row {i} col {k}: {y} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn softmax_over_a_middle_dim_matches_rows_of_the_transpose() {
        let (a, r, b) = (2, 5, 3);
        let src: Vec<f64> = (0..a * r * b)
            .map(|x| ((x * 5) % 7) as f64 * 0.7 - 2.0)
            .collect();
        for log in [false, true] {
            let mut out = vec![0.0; src.len()];
            softmax(&src, a, r, b, log, &mut out);
            for i in 0..a {
                for j in 0..b {
                    let col: Vec<f64> = (0..r).map(|k| src[(i * r + k) * b + j]).collect();
                    let mut want = vec![0.0; r];
                    softmax_rows(&col, r, log, &mut want);
                    for k in 0..r {
                        assert!((out[(i * r + k) * b + j] - want[k]).abs() < 1e-14);
                    }
                }
            }
        }
    }

    #[test]
    fn column_softmax_in_tiles_matches_naive_on_any_thread_count() {
        // Planes of several row blocks and column tiles (150 rows: three
        // blocks of 50; 5000 columns: tiles of 4096 and 904), and many
        // small planes with two uneven row blocks.
        for (a, r, b) in [(1usize, 150usize, 5000usize), (3, 70, 40), (2, 64, 3)] {
            let src: Vec<f32> = (0..a * r * b)
                .map(|i| ((i * 7919) % 1013) as f32 * 0.01 - 5.0)
                .collect();
            for log in [false, true] {
                let on = |t: usize| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(t)
                        .build()
                        .unwrap();
                    let mut out = vec![0.0f32; src.len()];
                    pool.install(|| softmax(&src, a, r, b, log, &mut out));
                    out
                };
                let one = on(1);
                assert!(
                    one.iter()
                        .zip(on(2))
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{a}x{r}x{b} log {log}: 1 and 2 threads differ"
                );
                for i in 0..a {
                    for j in 0..b {
                        let at = |k: usize| (i * r + k) * b + j;
                        let m = (0..r).map(|k| src[at(k)] as f64).fold(f64::MIN, f64::max);
                        let sum: f64 = (0..r).map(|k| (src[at(k)] as f64 - m).exp()).sum();
                        for k in 0..r {
                            let z = src[at(k)] as f64 - m;
                            let want = if log { z - sum.ln() } else { z.exp() / sum };
                            let got = one[at(k)] as f64;
                            assert!(
                                (got - want).abs() <= 2e-6 * want.abs().max(1e-3),
                                "{a}x{r}x{b} log {log} at ({i}, {k}, {j}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn f32_sum_of_many_small_values_keeps_precision() {
        let v = vec![0.1f32; 10_000_000];
        let s = sum_slice(&v) as f64;
        assert!((s - 1_000_000.0).abs() / 1e6 < 1e-6, "{s}");
    }
}
