//! Property tests of views, broadcasting binary ops and reductions, each
//! against a naive reference written here with plain multi-index loops.
//!
//! The view reference never touches ricci's `Layout`: it keeps, for every
//! logical element of the view, the flat index of the base element it shows
//! and its offset in the storage it reads, and applies each view by gathering
//! elements one multi-index at a time. A reshape stays a view exactly when
//! those offsets are an affine function of the new multi-index; every other
//! view must share storage with its input.
//!
//! Random choices that depend on the current shape (which dim, which
//! permutation, which target shape) are drawn from a per-step seed, so a
//! case prints as the chain of concrete views that were applied.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ricci::{DType, Element, Tensor};

const CASES: u32 = 128;

// ---------------------------------------------------------------------------
// Multi-index helpers and a tiny seeded generator
// ---------------------------------------------------------------------------

/// All multi-indices of `shape` in row-major order.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0; shape.len()];
    for _ in 0..n {
        out.push(idx.clone());
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

/// Row-major position of `idx` in `shape`.
fn flat(shape: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// A splitmix64 stream for the shape-dependent choices of one step.
struct Pick(u64);

impl Pick {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    /// `d` as a dim argument: positive, or counted from the end.
    fn dim_arg(&mut self, d: usize, rank: usize) -> i64 {
        if self.chance(2) {
            d as i64
        } else {
            d as i64 - rank as i64
        }
    }
}

/// Resolves a possibly negative dim against `rank`.
fn resolve(d: i64, rank: usize) -> usize {
    if d < 0 {
        (d + rank as i64) as usize
    } else {
        d as usize
    }
}

/// Shapes of rank 0-4 with dims 0-5 (0 less often).
fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![9 => 1usize..=5, 1 => Just(0usize)], 0..=4)
}

// ---------------------------------------------------------------------------
// (1) Chains of views against an index-tracking reference
// ---------------------------------------------------------------------------

/// One concrete view, with the arguments given to ricci.
#[derive(Clone, Debug)]
enum View {
    Reshape(Vec<i64>),
    Permute(Vec<i64>),
    Transpose(i64, i64),
    Narrow(i64, usize, usize),
    Slice(i64, usize, usize, usize),
    Squeeze(i64),
    Unsqueeze(i64),
    BroadcastTo(Vec<usize>),
    Expand(Vec<i64>),
    Flatten(i64, i64),
    Diagonal(isize, i64, i64),
    T,
}

const VIEW_KINDS: u8 = 12;

/// A random factorisation of `n` into up to 4 dims (with a `-1` sometimes).
fn random_reshape(n: usize, shape: &[usize], p: &mut Pick) -> Vec<i64> {
    if p.chance(8) {
        return shape.iter().map(|&d| d as i64).collect();
    }
    let rank = if n == 1 { p.below(5) } else { 1 + p.below(4) };
    let mut dims = vec![1usize; rank];
    if n == 0 {
        for d in dims.iter_mut() {
            *d = p.below(4);
        }
        let z = p.below(rank);
        dims[z] = 0;
    } else {
        // Spread the prime factors of n over the dims.
        let mut m = n;
        let mut f = 2;
        while m > 1 {
            while m.is_multiple_of(f) {
                let k = p.below(rank);
                dims[k] *= f;
                m /= f;
            }
            f += 1;
        }
    }
    let mut spec: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    // `-1` is ambiguous for an empty tensor, so only infer non-empty shapes.
    if n > 0 && rank > 0 && p.chance(3) {
        let k = p.below(rank);
        spec[k] = -1;
    }
    spec
}

/// The view of kind `kind` for a tensor of `shape`, arguments drawn from
/// `seed`; kinds that do not apply to this shape fall back to `unsqueeze`.
fn choose_view(kind: u8, seed: u64, shape: &[usize]) -> View {
    let mut p = Pick(seed);
    let rank = shape.len();
    let n: usize = shape.iter().product();
    // Keep chains of broadcasts small enough to check element by element.
    let may_grow = rank < 6 && n <= 300;
    let fallback = |p: &mut Pick| {
        if rank < 7 {
            let d = p.below(rank + 1);
            View::Unsqueeze(p.dim_arg(d, rank + 1))
        } else {
            View::T
        }
    };
    match kind % VIEW_KINDS {
        0 => View::Reshape(random_reshape(n, shape, &mut p)),
        1 => {
            let mut order: Vec<usize> = (0..rank).collect();
            for i in (1..rank).rev() {
                order.swap(i, p.below(i + 1));
            }
            View::Permute(order.iter().map(|&d| p.dim_arg(d, rank)).collect())
        }
        2 if rank >= 1 => {
            let (a, b) = (p.below(rank), p.below(rank));
            View::Transpose(p.dim_arg(a, rank), p.dim_arg(b, rank))
        }
        3 if rank >= 1 => {
            let d = p.below(rank);
            let start = p.below(shape[d] + 1);
            let len = p.below(shape[d] - start + 1);
            View::Narrow(p.dim_arg(d, rank), start, len)
        }
        4 if rank >= 1 => {
            let d = p.below(rank);
            let start = p.below(shape[d] + 2);
            let end = p.below(shape[d] + 3);
            let step = 1 + p.below(3);
            View::Slice(p.dim_arg(d, rank), start, end, step)
        }
        5 => {
            let ones: Vec<usize> = (0..rank).filter(|&d| shape[d] == 1).collect();
            if ones.is_empty() {
                fallback(&mut p)
            } else {
                let d = ones[p.below(ones.len())];
                View::Squeeze(p.dim_arg(d, rank))
            }
        }
        6 => fallback(&mut p),
        7 | 8 => {
            let lead = if may_grow { p.below(3) } else { 0 };
            let mut target: Vec<usize> = (0..lead).map(|_| 1 + p.below(3)).collect();
            for &d in shape {
                target.push(if d == 1 && may_grow { p.below(4) } else { d });
            }
            if kind % VIEW_KINDS == 7 {
                View::BroadcastTo(target)
            } else {
                // `-1` keeps a dim of the input (only allowed on those).
                let spec = target
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| {
                        if i >= lead && t == shape[i - lead] && p.chance(2) {
                            -1
                        } else {
                            t as i64
                        }
                    })
                    .collect();
                View::Expand(spec)
            }
        }
        9 => {
            if rank == 0 {
                View::Flatten(0, 0)
            } else {
                let a = p.below(rank);
                let b = a + p.below(rank - a);
                View::Flatten(p.dim_arg(a, rank), p.dim_arg(b, rank))
            }
        }
        10 if rank >= 2 => {
            let a = p.below(rank);
            let b = (a + 1 + p.below(rank - 1)) % rank;
            let offset = p.below(7) as isize - 3;
            View::Diagonal(offset, p.dim_arg(a, rank), p.dim_arg(b, rank))
        }
        11 => View::T,
        _ => fallback(&mut p),
    }
}

/// What the reference knows about a view.
#[derive(Clone, Debug)]
struct RefView {
    shape: Vec<usize>,
    /// Per element (row-major): flat index of the base element it shows.
    src: Vec<usize>,
    /// Per element: its offset in the storage this view reads.
    offset: Vec<usize>,
    /// Which storage: 0 is the base's, each copy makes a new one.
    storage: usize,
}

impl RefView {
    fn base(shape: &[usize]) -> RefView {
        let n = shape.iter().product();
        RefView {
            shape: shape.to_vec(),
            src: (0..n).collect(),
            offset: (0..n).collect(),
            storage: 0,
        }
    }

    /// The view of `shape` whose element at `i` is this view's element at `from(i)`.
    fn gather(&self, shape: Vec<usize>, from: impl Fn(&[usize]) -> Vec<usize>) -> RefView {
        let (mut src, mut offset) = (Vec::new(), Vec::new());
        for idx in indices(&shape) {
            let j = flat(&self.shape, &from(&idx));
            src.push(self.src[j]);
            offset.push(self.offset[j]);
        }
        RefView {
            shape,
            src,
            offset,
            storage: self.storage,
        }
    }

    /// Same elements in the same order under a new shape; a copy (new
    /// storage) exactly when no strides express the offsets.
    fn reshape(&self, shape: Vec<usize>, storages: &mut usize) -> RefView {
        if is_affine(&shape, &self.offset) {
            return RefView {
                shape,
                ..self.clone()
            };
        }
        *storages += 1;
        RefView {
            offset: (0..self.src.len()).collect(),
            shape,
            src: self.src.clone(),
            storage: *storages,
        }
    }

    fn apply(&self, view: &View, storages: &mut usize) -> RefView {
        let shape = &self.shape;
        let rank = shape.len();
        let n: usize = shape.iter().product();
        match view {
            View::Reshape(spec) => {
                let known: usize = spec
                    .iter()
                    .filter(|&&s| s >= 0)
                    .map(|&s| s as usize)
                    .product();
                let new: Vec<usize> = spec
                    .iter()
                    .map(|&s| if s < 0 { n / known } else { s as usize })
                    .collect();
                self.reshape(new, storages)
            }
            View::Permute(order) => {
                let order: Vec<usize> = order.iter().map(|&d| resolve(d, rank)).collect();
                self.permuted(&order)
            }
            View::Transpose(a, b) => {
                let mut order: Vec<usize> = (0..rank).collect();
                order.swap(resolve(*a, rank), resolve(*b, rank));
                self.permuted(&order)
            }
            View::T => {
                let mut order: Vec<usize> = (0..rank).collect();
                if rank >= 2 {
                    order.swap(rank - 2, rank - 1);
                }
                self.permuted(&order)
            }
            View::Narrow(d, start, len) => {
                let d = resolve(*d, rank);
                let mut new = shape.clone();
                new[d] = *len;
                self.gather(new, |i| {
                    let mut j = i.to_vec();
                    j[d] += start;
                    j
                })
            }
            View::Slice(d, start, end, step) => {
                let d = resolve(*d, rank);
                let end = (*end).min(shape[d]);
                let start = (*start).min(end);
                let mut new = shape.clone();
                new[d] = (end - start).div_ceil(*step);
                self.gather(new, |i| {
                    let mut j = i.to_vec();
                    j[d] = start + i[d] * step;
                    j
                })
            }
            View::Squeeze(d) => {
                let d = resolve(*d, rank);
                let mut new = shape.clone();
                new.remove(d);
                self.gather(new, |i| {
                    let mut j = i.to_vec();
                    j.insert(d, 0);
                    j
                })
            }
            View::Unsqueeze(d) => {
                let d = resolve(*d, rank + 1);
                let mut new = shape.clone();
                new.insert(d, 1);
                self.gather(new, |i| {
                    let mut j = i.to_vec();
                    j.remove(d);
                    j
                })
            }
            View::BroadcastTo(target) => self.broadcast(target.clone()),
            View::Expand(spec) => {
                let lead = spec.len() - rank;
                let target = spec
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| if s < 0 { shape[i - lead] } else { s as usize })
                    .collect();
                self.broadcast(target)
            }
            View::Flatten(a, b) => {
                if rank == 0 {
                    return self.reshape(vec![1], storages);
                }
                let (a, b) = (resolve(*a, rank), resolve(*b, rank));
                let mut new = shape[..a].to_vec();
                new.push(shape[a..=b].iter().product());
                new.extend_from_slice(&shape[b + 1..]);
                self.reshape(new, storages)
            }
            View::Diagonal(offset, d0, d1) => {
                let (d0, d1) = (resolve(*d0, rank), resolve(*d1, rank));
                let (s0, s1) = if *offset >= 0 {
                    (0, *offset as usize)
                } else {
                    ((-offset) as usize, 0)
                };
                let len = shape[d0]
                    .saturating_sub(s0)
                    .min(shape[d1].saturating_sub(s1));
                let others: Vec<usize> = (0..rank).filter(|&i| i != d0 && i != d1).collect();
                let mut new: Vec<usize> = others.iter().map(|&i| shape[i]).collect();
                new.push(len);
                self.gather(new, |i| {
                    let mut j = vec![0; rank];
                    for (k, &o) in others.iter().enumerate() {
                        j[o] = i[k];
                    }
                    let k = i[i.len() - 1];
                    j[d0] = s0 + k;
                    j[d1] = s1 + k;
                    j
                })
            }
        }
    }

    fn permuted(&self, order: &[usize]) -> RefView {
        let new = order.iter().map(|&d| self.shape[d]).collect();
        self.gather(new, |i| {
            let mut j = vec![0; order.len()];
            for (k, &d) in order.iter().enumerate() {
                j[d] = i[k];
            }
            j
        })
    }

    fn broadcast(&self, target: Vec<usize>) -> RefView {
        let lead = target.len() - self.shape.len();
        let shape = self.shape.clone();
        self.gather(target, |i| {
            (0..shape.len())
                .map(|k| if shape[k] == 1 { 0 } else { i[lead + k] })
                .collect()
        })
    }
}

/// Whether `offsets[flat(i)] == o + sum_d i_d * s_d` for some `o` and `s`,
/// i.e. whether some strided layout of `shape` reads exactly these offsets.
fn is_affine(shape: &[usize], offsets: &[usize]) -> bool {
    let Some(&o) = offsets.first() else {
        return true;
    };
    let strides: Vec<i64> = (0..shape.len())
        .map(|d| {
            if shape[d] < 2 {
                return 0;
            }
            let mut unit = vec![0; shape.len()];
            unit[d] = 1;
            offsets[flat(shape, &unit)] as i64 - o as i64
        })
        .collect();
    indices(shape).iter().zip(offsets).all(|(idx, &off)| {
        let at: i64 = idx.iter().zip(&strides).map(|(&i, &s)| i as i64 * s).sum();
        o as i64 + at == off as i64
    })
}

fn apply_view(t: &Tensor, view: &View) -> ricci::Result<Tensor> {
    match view {
        View::Reshape(spec) => t.reshape(spec.clone()),
        View::Permute(order) => t.permute(order.clone()),
        View::Transpose(a, b) => t.transpose(*a, *b),
        View::Narrow(d, start, len) => t.narrow(*d, *start, *len),
        View::Slice(d, start, end, step) => t.slice(*d, *start, *end, *step),
        View::Squeeze(d) => t.squeeze(*d),
        View::Unsqueeze(d) => t.unsqueeze(*d),
        View::BroadcastTo(shape) => t.broadcast_to(shape),
        View::Expand(spec) => t.expand(spec.clone()),
        View::Flatten(a, b) => t.flatten(*a, *b),
        View::Diagonal(offset, d0, d1) => t.diagonal(*offset, *d0, *d1),
        View::T => t.t(),
    }
}

/// The elements of `t` read as `T` (checks the dtype-typed path too).
fn typed<T: Element>(t: &Tensor) -> Result<Vec<f64>, TestCaseError> {
    let v = t
        .to_vec::<T>()
        .map_err(|e| TestCaseError::fail(format!("to_vec: {e}")))?;
    Ok(v.into_iter().map(Element::to_f64).collect())
}

fn check_view_chain(base_shape: &[usize], steps: &[(u8, u64)]) -> Result<(), TestCaseError> {
    for dtype in [DType::F32, DType::F64] {
        let n: usize = base_shape.iter().product();
        let data: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let base = match dtype {
            DType::F32 => Tensor::from_vec(data.iter().map(|&x| x as f32).collect(), base_shape),
            DType::F64 => Tensor::from_vec(data, base_shape),
        }
        .map_err(|e| TestCaseError::fail(format!("from_vec: {e}")))?;
        let (mut t, mut r) = (base.clone(), RefView::base(base_shape));
        let mut storages = 0;
        let mut chain = Vec::new();
        for &(kind, seed) in steps {
            let view = choose_view(kind, seed, &r.shape);
            chain.push(view.clone());
            let next = apply_view(&t, &view).map_err(|e| {
                TestCaseError::fail(format!("{dtype} {base_shape:?} {chain:?}: {e}"))
            })?;
            let r_next = r.apply(&view, &mut storages);
            prop_assert_eq!(
                next.shape(),
                &r_next.shape[..],
                "{} {:?} {:?}",
                dtype,
                base_shape,
                chain
            );
            {
                prop_assert_eq!(
                    next.shares_storage_with(&t),
                    r_next.storage == r.storage,
                    "sharing with the input: {} {:?} {:?}",
                    dtype,
                    base_shape,
                    chain
                );
                prop_assert_eq!(
                    next.shares_storage_with(&base),
                    r_next.storage == 0,
                    "sharing with the base: {} {:?} {:?}",
                    dtype,
                    base_shape,
                    chain
                );
            }
            let want: Vec<f64> = r_next.src.iter().map(|&i| i as f64).collect();
            prop_assert_eq!(
                next.to_vec_f64(),
                want,
                "{} {:?} {:?}",
                dtype,
                base_shape,
                chain
            );
            t = next;
            r = r_next;
        }
        let want: Vec<f64> = r.src.iter().map(|&i| i as f64).collect();
        let c = t.contiguous();
        prop_assert!(c.is_contiguous(), "{} {:?} {:?}", dtype, base_shape, chain);
        prop_assert_eq!(c.shape(), t.shape());
        let got = match dtype {
            DType::F32 => typed::<f32>(&c)?,
            DType::F64 => typed::<f64>(&c)?,
        };
        prop_assert_eq!(
            got,
            want,
            "contiguous: {} {:?} {:?}",
            dtype,
            base_shape,
            chain
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn view_chains_pick_the_elements_the_reference_picks(
        shape in shape_strategy(),
        steps in prop::collection::vec((0u8..VIEW_KINDS, any::<u64>()), 1..=5),
    ) {
        check_view_chain(&shape, &steps)?;
    }
}

// ---------------------------------------------------------------------------
// Inputs for (2) and (3): random values laid out as random views
// ---------------------------------------------------------------------------

/// Small integers and halves (exact in f32, so sums are exact in any
/// order), zeros, and NaN now and then when `with_nan`.
fn random_values(n: usize, with_nan: bool, p: &mut Pick) -> Vec<f64> {
    (0..n)
        .map(|_| {
            if with_nan && p.chance(40) {
                f64::NAN
            } else {
                (p.below(33) as f64 - 16.0) / 2.0
            }
        })
        .collect()
}

/// How a test input is laid out over its storage.
#[derive(Clone, Copy, Debug)]
enum Arrangement {
    Contiguous,
    /// A row-major buffer of the reversed shape, seen through `permute`.
    Reversed,
    /// Every other element of a larger buffer in every dim (`slice` step 2).
    Strided,
}

fn make<T: Element>(values: &[f64], shape: &[usize], arrangement: Arrangement) -> Tensor {
    let typed = |v: &[f64]| -> Vec<T> { v.iter().map(|&x| T::from_f64(x)).collect() };
    let rank = shape.len();
    match arrangement {
        Arrangement::Contiguous => Tensor::from_vec(typed(values), shape).unwrap(),
        Arrangement::Reversed => {
            let rev: Vec<usize> = shape.iter().rev().copied().collect();
            let mut buf = vec![0.0; values.len()];
            for (k, idx) in indices(shape).iter().enumerate() {
                let ridx: Vec<usize> = idx.iter().rev().copied().collect();
                buf[flat(&rev, &ridx)] = values[k];
            }
            let order: Vec<usize> = (0..rank).rev().collect();
            Tensor::from_vec(typed(&buf), &rev)
                .unwrap()
                .permute(order)
                .unwrap()
        }
        Arrangement::Strided => {
            let big: Vec<usize> = shape.iter().map(|&d| 2 * d + 1).collect();
            // Values at odd positions, a loud filler everywhere else.
            let mut buf = vec![1e6; big.iter().product()];
            for (k, idx) in indices(shape).iter().enumerate() {
                let bidx: Vec<usize> = idx.iter().map(|&i| 2 * i + 1).collect();
                buf[flat(&big, &bidx)] = values[k];
            }
            let mut t = Tensor::from_vec(typed(&buf), &big).unwrap();
            for (d, &size) in big.iter().enumerate() {
                t = t.slice(d, 1, size, 2).unwrap();
            }
            t
        }
    }
}

fn random_arrangement(p: &mut Pick) -> Arrangement {
    [
        Arrangement::Contiguous,
        Arrangement::Reversed,
        Arrangement::Strided,
    ][p.below(3)]
}

/// Equal as numbers, with NaN equal to NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

// ---------------------------------------------------------------------------
// (2) Broadcasting binary ops against a naive broadcast
// ---------------------------------------------------------------------------

/// `shape` with some leading dims dropped and some dims set to 1.
fn broadcastable_from(shape: &[usize], p: &mut Pick) -> Vec<usize> {
    let drop = if p.chance(3) {
        p.below(shape.len() + 1)
    } else {
        0
    };
    shape[drop..]
        .iter()
        .map(|&d| if p.chance(3) { 1 } else { d })
        .collect()
}

/// numpy's broadcast of two shapes, written out; `None` if incompatible.
fn naive_broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let pad = |s: &[usize]| -> Vec<usize> {
        let mut v = vec![1; rank - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (a, b) = (pad(a), pad(b));
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| match (x, y) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// The element of an operand of `shape` that output index `out` reads.
fn broadcast_source(shape: &[usize], out: &[usize]) -> usize {
    let lead = out.len() - shape.len();
    let idx: Vec<usize> = (0..shape.len())
        .map(|k| if shape[k] == 1 { 0 } else { out[lead + k] })
        .collect();
    flat(shape, &idx)
}

const BINARY_OPS: [&str; 5] = ["add", "sub", "mul", "div", "maximum"];

fn run_binary(op: &str, a: &Tensor, b: &Tensor) -> ricci::Result<Tensor> {
    match op {
        "add" => a.add(b),
        "sub" => a.sub(b),
        "mul" => a.mul(b),
        "div" => a.div(b),
        "maximum" => a.maximum(b),
        _ => unreachable!("unknown op {op}"),
    }
}

/// The op in `T` arithmetic, as numpy defines it (maximum propagates NaN).
fn reference_binary<T: Element>(op: &str, x: T, y: T) -> T {
    match op {
        "add" => x + y,
        "sub" => x - y,
        "mul" => x * y,
        "div" => x / y,
        "maximum" => {
            if x.is_nan() || y.is_nan() {
                T::NAN
            } else if y > x {
                y
            } else {
                x
            }
        }
        _ => unreachable!("unknown op {op}"),
    }
}

fn check_binary<T: Element>(shape: &[usize], seed: u64) -> Result<(), TestCaseError> {
    let mut p = Pick(seed);
    let (sa, sb) = (
        broadcastable_from(shape, &mut p),
        broadcastable_from(shape, &mut p),
    );
    let (sa, sb) = if p.chance(2) { (sa, sb) } else { (sb, sa) };
    let out_shape = naive_broadcast(&sa, &sb).expect("derived shapes broadcast");
    let with_nan = p.chance(4);
    let va = random_values(sa.iter().product(), with_nan, &mut p);
    let vb = random_values(sb.iter().product(), with_nan, &mut p);
    let (la, lb) = (random_arrangement(&mut p), random_arrangement(&mut p));
    let (a, b) = (make::<T>(&va, &sa, la), make::<T>(&vb, &sb, lb));
    for op in BINARY_OPS {
        let context = format!("{op} {}: {sa:?} {la:?} with {sb:?} {lb:?}", T::DTYPE);
        let got =
            run_binary(op, &a, &b).map_err(|e| TestCaseError::fail(format!("{context}: {e}")))?;
        prop_assert_eq!(got.shape(), &out_shape[..], "{}", context);
        prop_assert_eq!(got.dtype(), T::DTYPE, "{}", context);
        let got = got.to_vec_f64();
        for (k, idx) in indices(&out_shape).iter().enumerate() {
            let x = T::from_f64(va[broadcast_source(&sa, idx)]);
            let y = T::from_f64(vb[broadcast_source(&sb, idx)]);
            let want = reference_binary(op, x, y).to_f64();
            prop_assert!(
                same(got[k], want),
                "{}: at {:?} got {} want {} ({:?} {:?})",
                context,
                idx,
                got[k],
                want,
                x,
                y
            );
        }
    }
    Ok(())
}

/// Two shapes that clash in one dim (both sizes >= 2 and different).
fn clashing_shapes(shape: &[usize], p: &mut Pick) -> (Vec<usize>, Vec<usize>) {
    let mut a: Vec<usize> = shape.iter().map(|&d| d.max(1)).collect();
    if a.is_empty() {
        a.push(1);
    }
    let mut b = broadcastable_from(&a, p);
    if b.is_empty() {
        b.push(1);
    }
    let lead = a.len() - b.len();
    let k = p.below(b.len());
    a[lead + k] = 2 + p.below(4);
    b[k] = 2 + (a[lead + k] - 2 + 1 + p.below(3)) % 4;
    (a, b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn binary_ops_broadcast_like_numpy(shape in shape_strategy(), seed in any::<u64>()) {
        check_binary::<f32>(&shape, seed)?;
        check_binary::<f64>(&shape, seed)?;
    }

    #[test]
    fn incompatible_shapes_are_errors_not_panics(shape in shape_strategy(), seed in any::<u64>()) {
        let mut p = Pick(seed);
        let (sa, sb) = clashing_shapes(&shape, &mut p);
        prop_assert!(naive_broadcast(&sa, &sb).is_none(), "{:?} {:?}", sa, sb);
        let a = make::<f32>(&vec![1.0; sa.iter().product()], &sa, random_arrangement(&mut p));
        let b = make::<f32>(&vec![1.0; sb.iter().product()], &sb, random_arrangement(&mut p));
        for op in BINARY_OPS {
            prop_assert!(run_binary(op, &a, &b).is_err(), "{} {:?} {:?}", op, sa, sb);
            prop_assert!(run_binary(op, &b, &a).is_err(), "{} {:?} {:?}", op, sb, sa);
        }
        // Mixing dtypes is an error too, even when the shapes agree.
        let c = make::<f64>(&vec![1.0; sa.iter().product()], &sa, Arrangement::Contiguous);
        for op in BINARY_OPS {
            prop_assert!(run_binary(op, &a, &c).is_err(), "{} f32 with f64", op);
        }
    }
}

// ---------------------------------------------------------------------------
// (3) Reductions over random dim sets against a naive loop
// ---------------------------------------------------------------------------

/// Sum, max (NaN-propagating) and count of each output group, with the
/// output shape, computed by visiting every input element once.
struct Groups {
    shape: Vec<usize>,
    sum: Vec<f64>,
    max: Vec<f64>,
    count: usize,
}

fn naive_reduce(values: &[f64], shape: &[usize], dims: &[usize], keepdim: bool) -> Groups {
    let out_shape: Vec<usize> = (0..shape.len())
        .filter_map(|d| match (dims.contains(&d), keepdim) {
            (false, _) => Some(shape[d]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let m: usize = out_shape.iter().product();
    let mut sum = vec![0.0; m];
    let mut max = vec![f64::NEG_INFINITY; m];
    for (k, idx) in indices(shape).iter().enumerate() {
        let out: Vec<usize> = (0..shape.len())
            .filter_map(|d| match (dims.contains(&d), keepdim) {
                (false, _) => Some(idx[d]),
                (true, true) => Some(0),
                (true, false) => None,
            })
            .collect();
        let o = flat(&out_shape, &out);
        let x = values[k];
        sum[o] += x;
        if x.is_nan() || max[o].is_nan() {
            max[o] = f64::NAN;
        } else if x > max[o] {
            max[o] = x;
        }
    }
    Groups {
        shape: out_shape,
        sum,
        max,
        count: dims.iter().map(|&d| shape[d]).product(),
    }
}

fn check_reductions<T: Element>(shape: &[usize], seed: u64) -> Result<(), TestCaseError> {
    let mut p = Pick(seed);
    let rank = shape.len();
    // A random subset of dims, each as a positive or negative index, in random order.
    let mut dims: Vec<usize> = (0..rank).filter(|_| p.chance(2)).collect();
    for i in (1..dims.len()).rev() {
        dims.swap(i, p.below(i + 1));
    }
    let dim_args: Vec<i64> = dims.iter().map(|&d| p.dim_arg(d, rank)).collect();
    dims.sort_unstable();
    let keepdim = p.chance(2);
    let values = random_values(shape.iter().product(), p.chance(4), &mut p);
    let layout = random_arrangement(&mut p);
    let x = make::<T>(&values, shape, layout);
    let context = format!(
        "{} {shape:?} {layout:?} dims {dim_args:?} keepdim {keepdim}",
        T::DTYPE
    );
    // Values are exact in T, and so are their sums (halves below 2^13).
    let want = naive_reduce(&values, shape, &dims, keepdim);
    // With no dims there is nothing to reduce: the input comes back (numpy's axis=()).
    let want_shape = if dims.is_empty() {
        shape.to_vec()
    } else {
        want.shape.clone()
    };

    let fail = |what: &str, e: ricci::Error| TestCaseError::fail(format!("{what} {context}: {e}"));
    let sum = x
        .sum(dim_args.clone(), keepdim)
        .map_err(|e| fail("sum", e))?;
    prop_assert_eq!(sum.shape(), &want_shape[..], "sum {}", context);
    let got = sum.to_vec_f64();
    for (k, (&g, &w)) in got.iter().zip(&want.sum).enumerate() {
        prop_assert!(same(g, w), "sum {} at {}: got {} want {}", context, k, g, w);
    }

    let mean = x
        .mean(dim_args.clone(), keepdim)
        .map_err(|e| fail("mean", e))?;
    prop_assert_eq!(mean.shape(), &want_shape[..], "mean {}", context);
    let got = mean.to_vec_f64();
    for (k, (&g, &s)) in got.iter().zip(&want.sum).enumerate() {
        // The mean rounds once in T: sum / count (0 / 0 is NaN).
        let w = (T::from_f64(s) / T::from_f64(want.count as f64)).to_f64();
        let eps = match T::DTYPE {
            DType::F32 => f64::from(f32::EPSILON),
            DType::F64 => f64::EPSILON,
        };
        prop_assert!(
            same(g, w) || (g - w).abs() <= 2.0 * eps * w.abs(),
            "mean {} at {}: got {} want {}",
            context,
            k,
            g,
            w
        );
    }

    let max = x.max(dim_args.clone(), keepdim);
    if dims.iter().any(|&d| shape[d] == 0) {
        // numpy: "zero-size array to reduction operation maximum which has no identity".
        prop_assert!(
            max.is_err(),
            "max over an empty dim should fail: {}",
            context
        );
    } else {
        let max = max.map_err(|e| fail("max", e))?;
        prop_assert_eq!(max.shape(), &want_shape[..], "max {}", context);
        let got = max.to_vec_f64();
        for (k, (&g, &w)) in got.iter().zip(&want.max).enumerate() {
            prop_assert!(same(g, w), "max {} at {}: got {} want {}", context, k, g, w);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn reductions_match_a_naive_loop(shape in shape_strategy(), seed in any::<u64>()) {
        check_reductions::<f32>(&shape, seed)?;
        check_reductions::<f64>(&shape, seed)?;
    }
}

/// Reductions of views that are read in place, strided, with no copy: a
/// batch of diagonals (`bii->b`), a broadcast, a strided slice and a
/// narrowed one large enough to run over the threads, against naive loops. Sums of integers
/// are exact in any order; max and min must propagate NaN.
#[test]
fn reductions_of_diagonals_broadcasts_and_slices_match_naive() {
    let (b, n) = (5usize, 70usize);
    let vals: Vec<f64> = (0..b * n * n)
        .map(|i| ((i * 37) % 101) as f64 - 50.0)
        .collect();
    let x = Tensor::from_vec(vals.clone(), &[b, n, n]).unwrap();
    let diag = x.diagonal(0, 1, 2).unwrap();
    let trace: Vec<f64> = (0..b)
        .map(|k| (0..n).map(|i| vals[(k * n + i) * n + i]).sum())
        .collect();
    assert_eq!(diag.sum(-1, false).unwrap().to_vec_f64(), trace);
    let dmax: Vec<f64> = (0..b)
        .map(|k| {
            (0..n)
                .map(|i| vals[(k * n + i) * n + i])
                .fold(f64::MIN, f64::max)
        })
        .collect();
    assert_eq!(diag.max(-1, false).unwrap().to_vec_f64(), dmax);

    // [1, 300] broadcast to [200, 300], summed down dim 0 (stride 0): 60,000
    // elements, over the threads.
    let row: Vec<f32> = (0..300).map(|j| (j % 13) as f32 - 6.0).collect();
    let bc = Tensor::from_vec(row.clone(), &[1, 300])
        .unwrap()
        .broadcast_to(&[200, 300])
        .unwrap();
    let want: Vec<f64> = row.iter().map(|&v| 200.0 * v as f64).collect();
    assert_eq!(bc.sum(0, true).unwrap().to_vec_f64(), want);

    // Every other column of [300, 400], summed and maxed along rows; one
    // NaN in row 7.
    let mut vals: Vec<f32> = (0..300 * 400)
        .map(|i| ((i * 7) % 61) as f32 - 30.0)
        .collect();
    vals[7 * 400 + 10] = f32::NAN;
    let t = Tensor::from_vec(vals.clone(), &[300, 400])
        .unwrap()
        .slice(1, 0, 400, 2)
        .unwrap();
    let got_sum = t.sum(1, false).unwrap().to_vec_f64();
    let got_min = t.min(1, false).unwrap().to_vec_f64();
    // Columns 3..253 of each row: contiguous runs (the vectorised kernels).
    let narrow = Tensor::from_vec(vals.clone(), &[300, 400])
        .unwrap()
        .narrow(1, 3, 250)
        .unwrap();
    let (n_sum, n_max) = (
        narrow.sum(1, false).unwrap().to_vec_f64(),
        narrow.max(1, false).unwrap().to_vec_f64(),
    );
    for r in 0..300 {
        let run = (3..253).map(|c| vals[r * 400 + c] as f64);
        let (s, m) = (run.clone().sum::<f64>(), run.fold(f64::MIN, f64::max));
        if r == 7 {
            assert!(n_sum[r].is_nan() && n_max[r].is_nan(), "narrow row 7");
        } else {
            assert_eq!((n_sum[r], n_max[r]), (s, m), "narrow row {r}");
        }
    }
    for r in 0..300 {
        let picked = (0..200).map(|c| vals[r * 400 + 2 * c] as f64);
        let (s, m) = (picked.clone().sum::<f64>(), picked.fold(f64::MAX, f64::min));
        if r == 7 {
            assert!(got_sum[r].is_nan() && got_min[r].is_nan(), "row 7");
        } else {
            assert_eq!((got_sum[r], got_min[r]), (s, m), "row {r}");
        }
    }
}

// ---------------------------------------------------------------------------
// Regressions: bugs the properties above found (fixed), as minimal cases
// ---------------------------------------------------------------------------

#[test]
fn empty_layouts_are_contiguous() {
    // contiguous_strides([2, 0]) is [1, 1] (sizes clamped to 1), but
    // is_contiguous multiplies by the unclamped size 0 and then expects
    // stride 0 for dim 0. So contiguous() copies empty tensors and returns
    // a tensor that says it is not contiguous, and reshape copies them.
    let x = Tensor::zeros(&[2, 0], DType::F32);
    assert!(x.is_contiguous());
    assert!(x.contiguous().is_contiguous());
    assert!(x.reshape([0, 2]).unwrap().shares_storage_with(&x));
}

#[test]
fn reducing_before_an_empty_trailing_block_does_not_panic() {
    // as_arb gives (a, r, b) = (1, 1, 0); kernels::reduce::reduce then
    // calls out.chunks_mut(b) with b = 0.
    let x = Tensor::zeros(&[1, 0], DType::F32);
    assert_eq!(x.sum(0, false).unwrap().shape(), &[0]);
    assert_eq!(x.max(0, true).unwrap().shape(), &[1, 0]);
    assert_eq!(x.mean(0, false).unwrap().shape(), &[0]);
}
