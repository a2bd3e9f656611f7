//! Reductions over a contiguous buffer seen as `[a, r, b]`: the reduced
//! dims form the middle block `r`, kept dims before it `a` and after it `b`.
//! `b == 1` reduces contiguous rows; `b > 1` accumulates whole rows of `b`
//! at a time, which vectorises without transposing.

use rayon::prelude::*;

use super::par::{threads, PAR_MIN_ELEMS};
use super::simd::{dispatch_kernel, Kernel};
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
    if src.len() >= PAR_MIN_ELEMS && threads() > 1 {
        src.par_chunks(r).zip(out.par_chunks_mut(r)).for_each(row);
    } else {
        src.chunks(r).zip(out.chunks_mut(r)).for_each(row);
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
/// `b > 1` (softmax along a dim that is not innermost in memory) the passes
/// run along whole rows of `b`, which vectorises without transposing.
pub fn softmax<T: Element>(src: &[T], a: usize, r: usize, b: usize, log: bool, out: &mut [T]) {
    if src.is_empty() {
        return;
    }
    if b == 1 {
        return softmax_rows(src, r, log, out);
    }
    let plane = |(s, o): (&[T], &mut [T])| dispatch_kernel(SoftmaxPlane { s, o, b, log });
    if r == 0 {
        return;
    }
    let par = src.len() >= PAR_MIN_ELEMS && threads() > 1;
    if par && a > 1 {
        src.par_chunks(r * b)
            .zip(out.par_chunks_mut(r * b))
            .for_each(plane);
    } else if par && b >= 64 {
        // One plane: split its columns across threads; each column is
        // independent, and each thread touches only its own column range.
        let cols = b.div_ceil(threads());
        let optr = super::strided::SyncPtr(out.as_mut_ptr());
        (0..b.div_ceil(cols)).into_par_iter().for_each(|t| {
            let (c0, c1) = (t * cols, ((t + 1) * cols).min(b));
            // SAFETY: rows of `out` restricted to [c0, c1) are disjoint between tasks.
            let rows: Vec<&mut [T]> = (0..r)
                .map(|k| unsafe {
                    std::slice::from_raw_parts_mut(optr.get().add(k * b + c0), c1 - c0)
                })
                .collect();
            let src_rows: Vec<&[T]> = (0..r).map(|k| &src[k * b + c0..k * b + c1]).collect();
            dispatch_kernel(SoftmaxColumns {
                src: &src_rows,
                out: rows,
                log,
            });
        });
    } else {
        src.chunks(r * b).zip(out.chunks_mut(r * b)).for_each(plane);
    }
}

/// Softmax over the rows of one `[r, b]` plane, column by column.
struct SoftmaxPlane<'a, T> {
    s: &'a [T],
    o: &'a mut [T],
    b: usize,
    log: bool,
}

impl<T: Element> Kernel for SoftmaxPlane<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let src_rows: Vec<&[T]> = self.s.chunks_exact(self.b).collect();
        let out_rows: Vec<&mut [T]> = self.o.chunks_exact_mut(self.b).collect();
        softmax_columns(&src_rows, out_rows, self.log);
    }
}

/// [`softmax_columns`] as a [`Kernel`].
struct SoftmaxColumns<'a, 'b, T> {
    src: &'a [&'b [T]],
    out: Vec<&'b mut [T]>,
    log: bool,
}

impl<T: Element> Kernel for SoftmaxColumns<'_, '_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        softmax_columns(self.src, self.out, self.log);
    }
}

/// Softmax down the columns of equally long rows: column `j` is
/// `rows[0][j], rows[1][j], ...`. Every pass runs along whole rows, so it
/// vectorises across columns.
#[inline(always)]
fn softmax_columns<T: Element>(src: &[&[T]], mut out: Vec<&mut [T]>, log: bool) {
    let Some(first) = src.first() else { return };
    let w = first.len();
    let mut m = vec![T::NEG_INFINITY; w];
    for row in src {
        m.iter_mut()
            .zip(row.iter())
            .for_each(|(m, &x)| *m = m.max_nan(x));
    }
    let mut sum = vec![T::ZERO; w];
    for (row, orow) in src.iter().zip(out.iter_mut()) {
        orow.iter_mut()
            .zip(row.iter())
            .zip(&m)
            .for_each(|((o, &x), &m)| *o = (x - m).exp());
        sum.iter_mut().zip(orow.iter()).for_each(|(s, &e)| *s += e);
    }
    if log {
        let lse: Vec<T> = sum.iter().map(|s| s.ln()).collect();
        for (row, orow) in src.iter().zip(out.iter_mut()) {
            orow.iter_mut()
                .zip(row.iter())
                .zip(m.iter().zip(&lse))
                .for_each(|((o, &x), (&m, &l))| *o = (x - m) - l);
        }
    } else {
        let inv: Vec<T> = sum.iter().map(|&s| T::ONE / s).collect();
        for orow in out.iter_mut() {
            orow.iter_mut().zip(&inv).for_each(|(o, &i)| *o *= i);
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
    fn f32_sum_of_many_small_values_keeps_precision() {
        let v = vec![0.1f32; 10_000_000];
        let s = sum_slice(&v) as f64;
        assert!((s - 1_000_000.0).abs() / 1e6 < 1e-6, "{s}");
    }
}
