//! Elementwise kernels over broadcast operands.
//!
//! Inputs arrive as layouts already broadcast to the output shape (stride 0
//! along stretched dims); the output is contiguous. The inner loop is
//! specialised for the stride pairs that dominate real programs: `(1, 1)`
//! (same shape), `(1, 0)` and `(0, 1)` (a row or scalar broadcast).

use rayon::prelude::*;

use super::par::{rows_per_task, threads, PAR_CHUNK, PAR_MIN_ELEMS};
use super::simd::{dispatch_kernel, Kernel};
use super::strided::Plan;
use crate::tensor::Layout;

/// `out[i] = f(a[i], b[i])` with `a`, `b` broadcast to `out`'s shape.
pub fn binary<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    out: &mut [U],
    f: impl Fn(T, T) -> U + Sync + Send,
) {
    let n = out.len();
    if n == 0 {
        return;
    }
    let par = n >= PAR_MIN_ELEMS && threads() > 1;
    let plan = Plan::new(
        la.shape(),
        [la.strides(), lb.strides()],
        [la.offset(), lb.offset()],
    );
    let inner = plan.inner();
    let [sa, sb] = plan.inner_strides();
    let rows = plan.rows();
    let row = |o: &mut [U], ba: isize, bb: isize| {
        dispatch_kernel(BinaryRow {
            o,
            a,
            b,
            at: (ba as usize, sa),
            bt: (bb as usize, sb),
            f: &f,
        })
    };
    if rows == 1 {
        // One long run: split it into chunks directly.
        let (ba, bb) = (plan.offsets[0] as isize, plan.offsets[1] as isize);
        if par {
            out.par_chunks_mut(PAR_CHUNK)
                .enumerate()
                .for_each(|(t, o)| {
                    let s = (t * PAR_CHUNK) as isize;
                    row(o, ba + s * sa, bb + s * sb)
                });
        } else {
            row(out, ba, bb);
        }
        return;
    }
    let run = |r0: usize, chunk: &mut [U]| {
        let r1 = r0 + chunk.len() / inner;
        plan.for_rows(r0, r1, |r, [ba, bb]| {
            row(&mut chunk[(r - r0) * inner..(r - r0 + 1) * inner], ba, bb)
        });
    };
    if par {
        let rpt = rows_per_task(rows, inner);
        out.par_chunks_mut(rpt * inner)
            .enumerate()
            .for_each(|(t, c)| run(t * rpt, c));
    } else {
        run(0, out);
    }
}

/// One output row of [`binary`]: `o[i] = f(a[at.0 + i at.1], b[bt.0 + i bt.1])`
/// (start, stride), with the unit- and zero-stride cases as plain slice
/// loops so that they vectorise.
struct BinaryRow<'a, T, U, F> {
    o: &'a mut [U],
    a: &'a [T],
    b: &'a [T],
    at: (usize, isize),
    bt: (usize, isize),
    f: &'a F,
}

impl<T: Copy, U, F: Fn(T, T) -> U> Kernel for BinaryRow<'_, T, U, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let BinaryRow { o, a, b, at, bt, f } = self;
        let n = o.len();
        let ((ba, sa), (bb, sb)) = (at, bt);
        match (sa, sb) {
            (1, 1) => {
                let (x, y) = (&a[ba..ba + n], &b[bb..bb + n]);
                o.iter_mut()
                    .zip(x.iter().zip(y))
                    .for_each(|(o, (&x, &y))| *o = f(x, y));
            }
            (1, 0) => {
                let (x, y) = (&a[ba..ba + n], b[bb]);
                o.iter_mut().zip(x).for_each(|(o, &x)| *o = f(x, y));
            }
            (0, 1) => {
                let (x, y) = (a[ba], &b[bb..bb + n]);
                o.iter_mut().zip(y).for_each(|(o, &y)| *o = f(x, y));
            }
            _ => {
                for (i, o) in o.iter_mut().enumerate() {
                    let x = a[(ba as isize + i as isize * sa) as usize];
                    let y = b[(bb as isize + i as isize * sb) as usize];
                    *o = f(x, y);
                }
            }
        }
    }
}

/// `out[i] = f(c[i], a[i], b[i])` with all three broadcast to `out`'s shape.
#[allow(clippy::too_many_arguments)]
pub fn ternary<T: Copy + Send + Sync>(
    c: &[T],
    lc: &Layout,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    out: &mut [T],
    f: impl Fn(T, T, T) -> T + Sync + Send,
) {
    let n = out.len();
    if n == 0 {
        return;
    }
    let par = n >= PAR_MIN_ELEMS && threads() > 1;
    let plan = Plan::new(
        lc.shape(),
        [lc.strides(), la.strides(), lb.strides()],
        [lc.offset(), la.offset(), lb.offset()],
    );
    let inner = plan.inner();
    let [sc, sa, sb] = plan.inner_strides();
    let rows = plan.rows();
    let run = |r0: usize, chunk: &mut [T]| {
        let r1 = r0 + chunk.len() / inner;
        plan.for_rows(r0, r1, |r, [bc, ba, bb]| {
            let o = &mut chunk[(r - r0) * inner..(r - r0 + 1) * inner];
            for (i, o) in o.iter_mut().enumerate() {
                let i = i as isize;
                *o = f(
                    c[(bc + i * sc) as usize],
                    a[(ba + i * sa) as usize],
                    b[(bb + i * sb) as usize],
                );
            }
        });
    };
    if par {
        let rpt = rows_per_task(rows, inner);
        out.par_chunks_mut(rpt * inner)
            .enumerate()
            .for_each(|(t, ch)| run(t * rpt, ch));
    } else {
        run(0, out);
    }
}
