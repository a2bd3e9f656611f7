//! N-d strided traversal shared by the elementwise kernels.
//!
//! Operands are described over one common (broadcast) shape by their
//! strides. [`Plan`] merges dimensions that are contiguous in every operand,
//! so a contiguous tensor becomes one long row and a broadcast `[n, d] + [d]`
//! becomes `n` rows of `d` with inner strides `(1, 1)`. Kernels then run a
//! tight loop per row.

use rayon::prelude::*;

use super::par::{rows_per_task, threads, PAR_MIN_ELEMS};
use super::simd::{dispatch_kernel, Kernel};
use crate::tensor::Layout;

/// K operands over one merged shape (at least one dimension).
#[derive(Clone, Debug)]
pub struct Plan<const K: usize> {
    pub shape: Vec<usize>,
    pub strides: [Vec<isize>; K],
    pub offsets: [usize; K],
}

impl<const K: usize> Plan<K> {
    /// Merges dims of `shape` that are contiguous for every operand.
    pub fn new(shape: &[usize], strides: [&[isize]; K], offsets: [usize; K]) -> Self {
        let mut dims: Vec<usize> = Vec::with_capacity(shape.len());
        let mut st: [Vec<isize>; K] = std::array::from_fn(|_| Vec::with_capacity(shape.len()));
        for (i, &d) in shape.iter().enumerate() {
            if d == 1 {
                continue;
            }
            if let Some(&last) = dims.last() {
                let mergeable =
                    (0..K).all(|k| st[k][st[k].len() - 1] == strides[k][i] * d as isize);
                if mergeable {
                    let n = dims.len();
                    dims[n - 1] = last * d;
                    for k in 0..K {
                        let m = st[k].len();
                        st[k][m - 1] = strides[k][i];
                    }
                    continue;
                }
            }
            dims.push(d);
            for k in 0..K {
                st[k].push(strides[k][i]);
            }
        }
        if dims.is_empty() || shape.contains(&0) {
            let n = if shape.contains(&0) { 0 } else { 1 };
            dims = vec![n];
            st = std::array::from_fn(|_| vec![0]);
        }
        Plan {
            shape: dims,
            strides: st,
            offsets,
        }
    }

    pub fn inner(&self) -> usize {
        *self.shape.last().unwrap_or(&1)
    }
    pub fn inner_strides(&self) -> [isize; K] {
        std::array::from_fn(|k| *self.strides[k].last().unwrap_or(&0))
    }
    pub fn rows(&self) -> usize {
        self.shape[..self.shape.len() - 1].iter().product()
    }

    /// Calls `f(row, bases)` for rows `r0..r1`, where `bases[k]` is operand
    /// k's storage offset of the row's first element.
    pub fn for_rows(&self, r0: usize, r1: usize, mut f: impl FnMut(usize, [isize; K])) {
        let outer = &self.shape[..self.shape.len() - 1];
        let nd = outer.len();
        let mut idx = vec![0usize; nd];
        let mut rem = r0;
        for d in (0..nd).rev() {
            idx[d] = rem % outer[d];
            rem /= outer[d];
        }
        let mut base: [isize; K] = std::array::from_fn(|k| {
            self.offsets[k] as isize
                + (0..nd)
                    .map(|d| idx[d] as isize * self.strides[k][d])
                    .sum::<isize>()
        });
        for r in r0..r1 {
            f(r, base);
            // increment the multi-index
            let mut d = nd;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                for (k, b) in base.iter_mut().enumerate() {
                    *b += self.strides[k][d];
                }
                if idx[d] < outer[d] {
                    break;
                }
                for (k, b) in base.iter_mut().enumerate() {
                    *b -= self.strides[k][d] * outer[d] as isize;
                }
                idx[d] = 0;
            }
        }
    }
}

/// One row of [`map_unary`]: `o[i] = f(src[start + i stride])`.
struct MapRow<'a, T, U, F> {
    o: &'a mut [U],
    src: &'a [T],
    start: isize,
    stride: isize,
    f: &'a F,
}

impl<'a, T, U, F> MapRow<'a, T, U, F> {
    /// `o[i] = f(src[i])`.
    fn contiguous(o: &'a mut [U], src: &'a [T], f: &'a F) -> Self {
        MapRow {
            o,
            src,
            start: 0,
            stride: 1,
            f,
        }
    }
}

impl<T: Copy, U, F: Fn(T) -> U> Kernel for MapRow<'_, T, U, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let MapRow {
            o,
            src,
            start,
            stride,
            f,
        } = self;
        if stride == 1 {
            let sl = &src[start as usize..start as usize + o.len()];
            o.iter_mut().zip(sl).for_each(|(o, &x)| *o = f(x));
        } else {
            for (i, o) in o.iter_mut().enumerate() {
                *o = f(src[(start + i as isize * stride) as usize]);
            }
        }
    }
}

/// `out[i] = f(src[layout(i)])` for every logical index `i` (row-major).
///
/// Contiguous input is one flat loop. A permuted input whose unit-stride
/// dimension is not the last is walked in 32x32 tiles so that both reads and
/// writes stay in cache (this is what keeps a transposed input within 2x of
/// its contiguous twin).
pub fn map_unary<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    src: &[T],
    layout: &Layout,
    out: &mut [U],
    f: impl Fn(T) -> U + Sync + Send,
) {
    let n = out.len();
    debug_assert_eq!(n, layout.numel());
    if n == 0 {
        return;
    }
    let par = n >= PAR_MIN_ELEMS && threads() > 1;
    if layout.is_contiguous() {
        let src = &src[layout.offset()..layout.offset() + n];
        if par {
            out.par_chunks_mut(super::par::PAR_CHUNK)
                .zip(src.par_chunks(super::par::PAR_CHUNK))
                .for_each(|(o, s)| dispatch_kernel(MapRow::contiguous(o, s, &f)));
        } else {
            dispatch_kernel(MapRow::contiguous(out, src, &f));
        }
        return;
    }
    let plan = Plan::new(layout.shape(), [layout.strides()], [layout.offset()]);
    if let Some(tiled) = TilePlan::new(&plan) {
        tiled.run(src, out, &f, par);
        return;
    }
    let inner = plan.inner();
    let [s] = plan.inner_strides();
    let rows = plan.rows();
    let run = |r0: usize, chunk: &mut [U]| {
        let r1 = r0 + chunk.len() / inner;
        plan.for_rows(r0, r1, |r, [b]| {
            let o = &mut chunk[(r - r0) * inner..(r - r0 + 1) * inner];
            dispatch_kernel(MapRow {
                o,
                src,
                start: b,
                stride: s,
                f: &f,
            })
        });
    };
    if par {
        let rpt = rows_per_task(rows, inner);
        out.par_chunks_mut(rpt * inner)
            .enumerate()
            .for_each(|(t, chunk)| run(t * rpt, chunk));
    } else {
        run(0, out);
    }
}

/// Copies a strided view into a contiguous buffer.
pub fn copy_to_contiguous<T: Copy + Send + Sync>(src: &[T], layout: &Layout, out: &mut [T]) {
    map_unary(src, layout, out, |x| x);
}

/// A tiled walk for inputs whose unit-stride dim `p` is not the last dim.
/// The merged shape is seen as `[outer..., P, mid..., L]` where the tile
/// covers dims `P` and `L`.
struct TilePlan {
    shape: Vec<usize>,
    strides: Vec<isize>,
    offset: usize,
    p: usize,
}

const TILE: usize = 32;

impl TilePlan {
    fn new(plan: &Plan<1>) -> Option<TilePlan> {
        let nd = plan.shape.len();
        let st = &plan.strides[0];
        if nd < 2 || st[nd - 1].unsigned_abs() <= 1 {
            return None;
        }
        let p = (0..nd - 1).find(|&d| st[d] == 1)?;
        if plan.shape[p] < 4 || plan.shape[nd - 1] < 4 {
            return None;
        }
        Some(TilePlan {
            shape: plan.shape.clone(),
            strides: st.clone(),
            offset: plan.offsets[0],
            p,
        })
    }

    fn run<T: Copy + Send + Sync, U: Copy + Send + Sync>(
        &self,
        src: &[T],
        out: &mut [U],
        f: &(impl Fn(T) -> U + Sync),
        par: bool,
    ) {
        let nd = self.shape.len();
        let p = self.p;
        let l = self.shape[nd - 1];
        let sl = self.strides[nd - 1];
        let np = self.shape[p];
        // Output strides (row-major over the merged shape).
        let ostr = crate::tensor::contiguous_strides(&self.shape);
        // "Blocks": all dims except p and the last. Each block is an np x l
        // plane; planes are independent, and we also split along p tiles.
        let block_dims: Vec<usize> = (0..nd - 1).filter(|&d| d != p).collect();
        let n_blocks: usize = block_dims.iter().map(|&d| self.shape[d]).product();
        let p_tiles = np.div_ceil(TILE);
        let tasks = n_blocks * p_tiles;
        let out_ptr = SyncPtr(out.as_mut_ptr());
        let do_task = |t: usize| {
            let (blk, pt) = (t / p_tiles, t % p_tiles);
            let mut rem = blk;
            let (mut ib, mut ob) = (self.offset as isize, 0isize);
            for &d in block_dims.iter().rev() {
                let i = rem % self.shape[d];
                rem /= self.shape[d];
                ib += i as isize * self.strides[d];
                ob += i as isize * ostr[d];
            }
            let p0 = pt * TILE;
            let p1 = (p0 + TILE).min(np);
            let op = ostr[p];
            let mut j0 = 0;
            while j0 < l {
                let j1 = (j0 + TILE).min(l);
                dispatch_kernel(Tile {
                    src,
                    out: out_ptr,
                    rows: (p0, p1),
                    cols: (j0, j1),
                    at: (ib, sl),
                    to: (ob, op),
                    f,
                });
                j0 = j1;
            }
        };
        if par {
            (0..tasks).into_par_iter().for_each(do_task);
        } else {
            (0..tasks).for_each(do_task);
        }
    }
}

/// One tile of [`TilePlan::run`]: for `i` in `rows` and `j` in `cols`,
/// `out[to.0 + i to.1 + j] = f(src[at.0 + i + j at.1])`.
struct Tile<'a, T, U, F> {
    src: &'a [T],
    out: SyncPtr<U>,
    rows: (usize, usize),
    cols: (usize, usize),
    at: (isize, isize),
    to: (isize, isize),
    f: &'a F,
}

impl<T: Copy, U: Copy, F: Fn(T) -> U> Kernel for Tile<'_, T, U, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Tile {
            src,
            out,
            rows,
            cols,
            at,
            to,
            f,
        } = self;
        for i in rows.0..rows.1 {
            let ibase = at.0 + i as isize; // stride of p is 1
            let obase = to.0 + i as isize * to.1;
            for j in cols.0..cols.1 {
                let v = f(src[(ibase + j as isize * at.1) as usize]);
                // SAFETY: each (block, p-tile) task of `TilePlan::run` writes
                // a disjoint set of output positions (distinct block index or
                // p range), all inside `out` by construction of its strides.
                unsafe { *out.get().offset(obase + j as isize) = v };
            }
        }
    }
}

/// A raw pointer that may cross threads; users guarantee disjoint writes.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(pub *mut T);
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}
impl<T> SyncPtr<T> {
    #[inline]
    pub fn get(self) -> *mut T {
        self.0
    }
}

/// `dst[dst_layout(i)] = src[src_layout(i)]` for every logical index `i`
/// (the two layouts have the same shape). Used to build `cat`, `pad` and
/// `scatter`-style outputs from views.
pub fn assign<T: Copy + Send + Sync>(
    dst: &mut [T],
    dst_layout: &Layout,
    src: &[T],
    src_layout: &Layout,
) {
    debug_assert_eq!(dst_layout.shape(), src_layout.shape());
    if dst_layout.numel() == 0 {
        return;
    }
    let plan = Plan::new(
        dst_layout.shape(),
        [dst_layout.strides(), src_layout.strides()],
        [dst_layout.offset(), src_layout.offset()],
    );
    let inner = plan.inner();
    let [sd, ss] = plan.inner_strides();
    let rows = plan.rows();
    let dptr = SyncPtr(dst.as_mut_ptr());
    let dlen = dst.len();
    let run = |r0: usize, r1: usize| {
        plan.for_rows(r0, r1, |_, [bd, bs]| {
            for i in 0..inner as isize {
                let (od, os) = ((bd + i * sd) as usize, (bs + i * ss) as usize);
                assert!(od < dlen);
                // SAFETY: bounds-checked above; distinct rows of a
                // non-overlapping destination layout never alias.
                unsafe { *dptr.get().add(od) = src[os] };
            }
        });
    };
    if dst_layout.numel() >= PAR_MIN_ELEMS && threads() > 1 && rows > 1 {
        let rpt = rows_per_task(rows, inner);
        (0..rows.div_ceil(rpt))
            .into_par_iter()
            .for_each(|t| run(t * rpt, ((t + 1) * rpt).min(rows)));
    } else {
        run(0, rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(src: &[f32], layout: &Layout) -> Vec<f32> {
        let shape = layout.shape().to_vec();
        let n: usize = shape.iter().product();
        let mut out = Vec::with_capacity(n);
        let mut idx = vec![0usize; shape.len()];
        for _ in 0..n {
            out.push(src[layout.offset_of(&idx)]);
            for d in (0..shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out
    }

    #[test]
    fn copies_of_permuted_sliced_and_broadcast_views_match_naive() {
        let src: Vec<f32> = (0..(6 * 40 * 50)).map(|x| x as f32).collect();
        let base = Layout::contiguous(&[6, 40, 50]);
        let cases = vec![
            base.permute(&[2, 1, 0]).unwrap(),
            base.permute(&[0, 2, 1]).unwrap(),
            base.slice(1, 1, 39, 3)
                .unwrap()
                .permute(&[1, 0, 2])
                .unwrap(),
            base.narrow(2, 0, 1)
                .unwrap()
                .broadcast_to(&[6, 40, 7])
                .unwrap(),
            base.diagonal(0, 1, 2).unwrap(),
        ];
        for l in cases {
            let mut out = vec![0.0; l.numel()];
            copy_to_contiguous(&src, &l, &mut out);
            assert_eq!(out, naive(&src, &l), "layout {l:?}");
        }
    }
}
