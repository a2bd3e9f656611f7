//! The symmetric tridiagonal eigenproblem by divide and conquer, the middle
//! step of [`super::eigh`] (reduce to tridiagonal, solve, transform back).
//!
//! Cuppen's method. The tridiagonal `T` (diagonal `d`, off-diagonal `e`)
//! is torn at its middle by a rank-one term: with `β = e[m-1]`, `ρ = |β|`
//! and `v = e_(m-1) + sign(β) e_m`,
//!
//! ```text
//! T = diag(T₁, T₂) + ρ v vᵀ     (T₁'s last and T₂'s first diagonal entry less ρ)
//! ```
//!
//! The halves are solved recursively (in parallel), `Tᵢ = Qᵢ Dᵢ Qᵢᵀ`, and
//! the merge solves `D + ρ z zᵀ` with `z = Qᵀ v`: its eigenvalues are the
//! roots of the secular equation `1 + ρ Σ z_j² / (d_j − λ) = 0`, one
//! between each pair of neighbouring `d_j`. Before that, components with a
//! negligible `z_j`, and pairs of `d_j` close enough that a rotation zeroes
//! one `z_j`, are deflated: they are eigenpairs already. The eigenvectors
//! follow Gu and Eisenstat (1995): the roots found are exact eigenvalues of
//! `D + ρ ẑ ẑᵀ` for a `ẑ` recomputed from them (Löwner's formula), whose
//! eigenvectors `(D − λ)⁻¹ ẑ` are then orthogonal to working precision
//! however close the roots are. Each root is held as the nearer pole plus
//! an offset, so `d_j − λ` is computed without cancellation. Small
//! problems go to faer's QR iteration.
//!
//! Why not faer's own divide and conquer: in a probe (1 thread, f64) its
//! top-level merge of a 100 x 100 tridiagonal (the secular equation and the
//! eigenvectors) took 265 of its 505 µs. Here the divisions of the secular
//! sums, Löwner's products and the vectors run in vectorised lanes: a whole
//! `eigh` at n = 100 went from 0.71-0.73 to 0.48-0.49 ms (faer's
//! reduction and back-transformation, about 200 µs, unchanged).

use faer::diag::{DiagMut, DiagRef};
use faer::linalg::evd::{self, ComputeEigenvectors, SelfAdjointEvdParams};
use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{with_stack, Scalar};
use crate::kernels::reduce::dot_slice;
use crate::kernels::simd::{dispatch_kernel, Kernel};
use crate::tensor::Element;

/// Problems up to this size go to faer's QR iteration.
const LEAF: usize = 32;

/// From this size a problem's two halves and its two products (and, from
/// this many kept positions, its roots and vectors) run on separate
/// threads. Below it a thread's wake-up costs more than it
/// saves: eigh at n = 100 on 2 threads took 0.55-0.80 ms with threading
/// from 32 or 64, 0.54 ms without; at n = 500, 17-24 ms with it from 128
/// against 24-34 ms without.
const JOIN_FROM: usize = 128;

/// Iterations allowed per root of the secular equation (it takes 2-6; the
/// bracket's bisection, the fallback, halves it each time).
const MAX_ITERATIONS: usize = 200;

/// A root of the secular equation or faer's QR iteration did not converge.
#[derive(Debug)]
pub(crate) struct NotConverged;

/// Eigenvalues (ascending, written over `d`) and orthonormal eigenvectors
/// (the columns of `u`, `n x n`) of the symmetric tridiagonal matrix with
/// diagonal `d` and off-diagonal `e` (`e.len() + 1 == d.len()`).
pub(crate) fn eigh<T: Scalar>(d: &mut [T], e: &[T], u: MatMut<'_, T>) -> Result<(), NotConverged> {
    debug_assert_eq!(e.len() + 1, d.len().max(1));
    debug_assert_eq!((u.nrows(), u.ncols()), (d.len(), d.len()));
    if d.is_empty() {
        return Ok(());
    }
    // Scale the largest entry to about 1 by a power of two (exact), as
    // LAPACK does before its divide and conquer: the eigenvectors'
    // unnormalised entries grow as 1/|T|, and their squared norm would
    // overflow below about 1e-154 (f64) or 1e-19 (f32), and underflow above
    // the reciprocals. Non-finite entries have no eigendecomposition.
    let largest = d
        .iter()
        .chain(e)
        .fold(0.0f64, |m, &x| m.max(Element::abs(x).to_f64()));
    if !largest.is_finite() || d.iter().chain(e).any(|x| x.is_nan()) {
        return Err(NotConverged);
    }
    if largest == 0.0 {
        return solve(d, e, u);
    }
    let exponent = largest.log2().round() as i32;
    let (down, up) = (
        T::from_f64(2f64.powi(-exponent)),
        T::from_f64(2f64.powi(exponent)),
    );
    let scaled: Vec<T> = e.iter().map(|&x| x * down).collect();
    for x in d.iter_mut() {
        *x *= down;
    }
    solve(d, &scaled, u)?;
    for x in d.iter_mut() {
        *x *= up;
    }
    Ok(())
}

fn solve<T: Scalar>(d: &mut [T], e: &[T], u: MatMut<'_, T>) -> Result<(), NotConverged> {
    let n = d.len();
    if n <= LEAF {
        return leaf(d, e, u);
    }
    let m = n / 2;
    let beta = e[m - 1];
    let rho = Element::abs(beta);
    let sign = if beta < T::ZERO { -T::ONE } else { T::ONE };
    d[m - 1] -= rho;
    d[m] -= rho;
    let mut q1 = vec![T::ZERO; m * m];
    let mut q2 = vec![T::ZERO; (n - m) * (n - m)];
    {
        let (d1, d2) = d.split_at_mut(m);
        let (e1, e2) = (&e[..m - 1], &e[m..]);
        let mut top = || solve(d1, e1, MatMut::from_column_major_slice_mut(&mut q1, m, m));
        let mut bottom = || {
            solve(
                d2,
                e2,
                MatMut::from_column_major_slice_mut(&mut q2, n - m, n - m),
            )
        };
        let (r1, r2) = if n >= JOIN_FROM && rayon::current_num_threads() > 1 {
            rayon::join(top, bottom)
        } else {
            (top(), bottom())
        };
        r1?;
        r2?;
    }
    merge(
        d,
        rho,
        sign,
        MatRef::from_column_major_slice(&q1, m, m),
        MatRef::from_column_major_slice(&q2, n - m, n - m),
        u,
    )
}

/// faer's QR iteration (its divide and conquer switched off).
fn leaf<T: Scalar>(d: &mut [T], e: &[T], u: MatMut<'_, T>) -> Result<(), NotConverged> {
    let n = d.len();
    let mut sub = vec![T::ZERO; n];
    sub[..n - 1].copy_from_slice(e);
    let mut values = vec![T::ZERO; n];
    let mut params: SelfAdjointEvdParams = faer::Auto::<T>::auto();
    params.recursion_threshold = usize::MAX;
    let req =
        evd::self_adjoint_evd_scratch::<T>(n, ComputeEigenvectors::Yes, Par::Seq, params.into());
    with_stack(req, |stack| {
        evd::tridiagonal_self_adjoint_evd(
            DiagRef::from_slice(d),
            DiagRef::from_slice(&sub),
            DiagMut::from_slice_mut(&mut values),
            Some(u),
            Par::Seq,
            stack,
            params.into(),
        )
    })
    .map_err(|_| NotConverged)?;
    d.copy_from_slice(&values);
    Ok(())
}

fn max_abs<T: Scalar>(x: &[T]) -> T {
    x.iter().fold(T::ZERO, |a, &v| {
        if Element::abs(v) > a {
            Element::abs(v)
        } else {
            a
        }
    })
}

/// Where a final eigenpair comes from: a deflated position, or a root of
/// the secular equation.
#[derive(Clone, Copy)]
enum Source {
    Deflated(usize),
    Root(usize),
}

/// Eigenpairs of `diag(Q₁, Q₂) (D + ρ z zᵀ) diag(Q₁, Q₂)ᵀ`, where `D` is
/// `d` (the halves' eigenvalues, each half ascending), `Qᵢ` the halves'
/// eigenvectors, and `z = (last row of Q₁, sign · first row of Q₂)`.
fn merge<T: Scalar>(
    d: &mut [T],
    rho: T,
    sign: T,
    q1: MatRef<'_, T>,
    q2: MatRef<'_, T>,
    mut u: MatMut<'_, T>,
) -> Result<(), NotConverged> {
    let n = d.len();
    let m = q1.nrows();
    // |z| = √2: halve z and double ρ so that z is a unit vector.
    let half = T::from_f64(std::f64::consts::FRAC_1_SQRT_2);
    let z: Vec<T> = (0..m)
        .map(|j| q1[(m - 1, j)] * half)
        .chain((0..n - m).map(|j| sign * q2[(0, j)] * half))
        .collect();
    let rho = rho + rho;

    // Positions: the coordinates ordered by d (two ascending runs merged).
    let perm = merge_runs(&d[..m], &d[m..]);
    let mut dv: Vec<T> = perm.iter().map(|&c| d[c]).collect();
    let mut zv: Vec<T> = perm.iter().map(|&c| z[c]).collect();

    // Deflation. A position whose ρ|z| is below `tol` is an eigenpair as it
    // stands; of two positions whose d are close, a rotation zeroes the z
    // of the first, at the cost of an off-diagonal `cs (d_b − d_a)` below
    // `tol`, and the first is then an eigenpair.
    let eps = T::from_f64(super::eps(T::DTYPE));
    let scale = max_abs(&dv).max_nan(rho * max_abs(&zv));
    let tol = T::from_f64(8.0) * eps * scale;
    let mut deflated = vec![false; n];
    let mut keep: Vec<usize> = Vec::with_capacity(n);
    let mut rotations: Vec<(usize, usize, T, T)> = Vec::new();
    let mut last: Option<usize> = None;
    for p in 0..n {
        if rho * Element::abs(zv[p]) <= tol {
            deflated[p] = true;
            continue;
        }
        if let Some(a) = last {
            let r = (zv[a] * zv[a] + zv[p] * zv[p]).sqrt();
            let (c, s) = (zv[p] / r, -zv[a] / r);
            if Element::abs(c * s * (dv[p] - dv[a])) <= tol {
                let (da, dp) = (dv[a], dv[p]);
                dv[a] = c * c * da + s * s * dp;
                dv[p] = s * s * da + c * c * dp;
                zv[a] = T::ZERO;
                zv[p] = r;
                deflated[a] = true;
                rotations.push((a, p, c, s));
                last = Some(p);
                continue;
            }
            keep.push(a);
        }
        last = Some(p);
    }
    if let Some(a) = last {
        keep.push(a);
    }

    // The secular equation on the k positions kept.
    let k = keep.len();
    let dk: Vec<T> = keep.iter().map(|&p| dv[p]).collect();
    let zk: Vec<T> = keep.iter().map(|&p| zv[p]).collect();
    // delta[i * k + j] = dk[j] − λ_i, the root held as pole plus offset.
    let mut delta = vec![T::ZERO; k * k];
    let mut lambda = vec![T::ZERO; k];
    let threads = k >= JOIN_FROM && rayon::current_num_threads() > 1;
    if k > 0 {
        let per_task = if threads { k.div_ceil(4) } else { k };
        let run = |(t, (cols, ls)): (usize, (&mut [T], &mut [T]))| {
            dispatch_kernel(Roots {
                dk: &dk,
                zk: &zk,
                rho,
                first: t * per_task,
                delta: cols,
                lambda: ls,
            })
        };
        let chunks = delta
            .chunks_mut(per_task * k)
            .zip(lambda.chunks_mut(per_task));
        if threads {
            chunks.enumerate().par_bridge().try_for_each(run)?;
        } else {
            chunks.enumerate().try_for_each(run)?;
        }
    }

    // Gu-Eisenstat: ẑ_j² = Π_i (λ_i − d_j) / (ρ Π_{i≠j} (d_i − d_j)), each
    // factor positive by interlacing; the sign is z_j's.
    let zhat = dispatch_kernel(Loewner {
        dk: &dk,
        zk: &zk,
        rho,
        delta: &delta,
    });

    // The final order, ascending; then W (coordinates x final columns)
    // holds each eigenvector in the basis of the halves' eigenvectors:
    // W = P R₁ ⋯ R_t X with X's columns on the positions, written straight
    // into the coordinate rows (P X), the rotations then undone there.
    let mut order: Vec<(T, Source)> = (0..n)
        .filter(|&p| deflated[p])
        .map(|p| (dv[p], Source::Deflated(p)))
        .chain(
            lambda
                .iter()
                .enumerate()
                .map(|(i, &l)| (l, Source::Root(i))),
        )
        .collect();
    order.sort_by(|a, b| a.0.to_f64().total_cmp(&b.0.to_f64()));
    let mut w = vec![T::ZERO; n * n];
    let fill = |(cols, sources): (&mut [T], &[(T, Source)])| {
        dispatch_kernel(Vectors {
            zhat: &zhat,
            keep: &keep,
            perm: &perm,
            delta: &delta,
            sources,
            x: cols,
        })
    };
    if threads {
        let per_task = n.div_ceil(4);
        w.par_chunks_mut(per_task * n)
            .zip(order.par_chunks(per_task))
            .for_each(fill);
    } else {
        fill((&mut w, &order));
    }
    // Undo the deflating rotations, last first (P R P⁻¹ rotates rows
    // perm[a] and perm[p]).
    for &(a, p, c, s) in rotations.iter().rev() {
        let (a, p) = (perm[a], perm[p]);
        for col in w.chunks_mut(n) {
            let (xa, xp) = (col[a], col[p]);
            col[a] = c * xa - s * xp;
            col[p] = s * xa + c * xp;
        }
    }
    for (dj, (l, _)) in d.iter_mut().zip(&order) {
        *dj = *l;
    }

    // The eigenvectors: diag(Q₁, Q₂) W, one product per block.
    let w = MatRef::from_column_major_slice(&w, n, n);
    let (u1, u2) = u.rb_mut().split_at_row_mut(m);
    let top = || matmul(u1, Accum::Replace, q1, w.subrows(0, m), T::ONE, Par::Seq);
    let bottom = || {
        matmul(
            u2,
            Accum::Replace,
            q2,
            w.subrows(m, n - m),
            T::ONE,
            Par::Seq,
        )
    };
    if n >= JOIN_FROM && rayon::current_num_threads() > 1 {
        rayon::join(top, bottom);
    } else {
        top();
        bottom();
    }
    Ok(())
}

/// Roots `first..` of the secular equation, one column of `delta` each.
struct Roots<'a, T> {
    dk: &'a [T],
    zk: &'a [T],
    rho: T,
    first: usize,
    delta: &'a mut [T],
    lambda: &'a mut [T],
}

impl<T: Scalar> Kernel for Roots<'_, T> {
    type Output = Result<(), NotConverged>;
    #[inline(always)]
    fn run(self) -> Self::Output {
        let k = self.dk.len();
        for (t, (col, l)) in self
            .delta
            .chunks_mut(k)
            .zip(self.lambda.iter_mut())
            .enumerate()
        {
            *l = root(self.dk, self.zk, self.rho, self.first + t, col)?;
        }
        Ok(())
    }
}

/// Gu and Eisenstat's `ẑ` from the roots (Löwner's formula).
struct Loewner<'a, T> {
    dk: &'a [T],
    zk: &'a [T],
    rho: T,
    delta: &'a [T],
}

impl<T: Scalar> Kernel for Loewner<'_, T> {
    type Output = Vec<T>;
    #[inline(always)]
    fn run(self) -> Vec<T> {
        let Loewner { dk, zk, rho, delta } = self;
        let k = dk.len();
        let mut zhat: Vec<T> = (0..k).map(|j| -delta[j * k + j] / rho).collect();
        for (i, col) in delta.chunks_exact(k.max(1)).enumerate() {
            let di = dk[i];
            let (below, above) = zhat.split_at_mut(i);
            for ((zh, &c), &dj) in below.iter_mut().zip(col).zip(dk) {
                *zh *= -c / (di - dj);
            }
            for ((zh, &c), &dj) in above[1..].iter_mut().zip(&col[i + 1..]).zip(&dk[i + 1..]) {
                *zh *= -c / (di - dj);
            }
        }
        for (zh, &zj) in zhat.iter_mut().zip(zk) {
            let r = zh.max_nan(T::ZERO).sqrt();
            *zh = if zj < T::ZERO { -r } else { r };
        }
        zhat
    }
}

/// Columns of P X for `sources` (rows are coordinates): a unit vector for a
/// deflated position, the normalised `(D − λ_i)⁻¹ ẑ` on the kept positions
/// for a root.
struct Vectors<'a, T> {
    zhat: &'a [T],
    keep: &'a [usize],
    /// Each position's coordinate row.
    perm: &'a [usize],
    delta: &'a [T],
    sources: &'a [(T, Source)],
    x: &'a mut [T],
}

impl<T: Scalar> Kernel for Vectors<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let k = self.zhat.len();
        let n = self.x.len() / self.sources.len().max(1);
        let mut v = vec![T::ZERO; k];
        for (col, (_, source)) in self.x.chunks_mut(n).zip(self.sources) {
            match *source {
                Source::Deflated(p) => col[self.perm[p]] = T::ONE,
                Source::Root(i) => {
                    let dcol = &self.delta[i * k..(i + 1) * k];
                    for ((vj, &zh), &dj) in v.iter_mut().zip(self.zhat).zip(dcol) {
                        *vj = zh / dj;
                    }
                    let inv = T::ONE / dot_slice(&v, &v).sqrt();
                    for (&vj, &p) in v.iter().zip(self.keep) {
                        col[self.perm[p]] = vj * inv;
                    }
                }
            }
        }
    }
}

/// The indices of `a ++ b` (each ascending) in ascending order of value.
fn merge_runs<T: Scalar>(a: &[T], b: &[T]) -> Vec<usize> {
    let m = a.len();
    let mut out = Vec::with_capacity(m + b.len());
    let (mut i, mut j) = (0, 0);
    while i < m || j < b.len() {
        if j == b.len() || (i < m && a[i] <= b[j]) {
            out.push(i);
            i += 1;
        } else {
            out.push(m + j);
            j += 1;
        }
    }
    out
}

/// `ψ, ψ', φ, φ'` at `τ`: the sums of `z_j² / δ_j` and `z_j² / δ_j²`
/// (`δ_j = diff_j − τ`) over `j ≤ i` and over `j > i`.
#[inline(always)]
fn sums<T: Scalar>(diff: &[T], z: &[T], tau: T, i: usize) -> (T, T, T, T) {
    let (psi, dpsi) = sum_range(&diff[..i + 1], &z[..i + 1], tau);
    let (phi, dphi) = sum_range(&diff[i + 1..], &z[i + 1..], tau);
    (psi, dpsi, phi, dphi)
}

/// `Σ z_j² / δ_j` and `Σ z_j² / δ_j²` in independent lanes, so that the
/// loop vectorises (the divisions are most of a merge's time).
#[inline(always)]
fn sum_range<T: Scalar>(diff: &[T], z: &[T], tau: T) -> (T, T) {
    const LANES: usize = 8;
    let (mut s, mut ds) = ([T::ZERO; LANES], [T::ZERO; LANES]);
    let whole = diff.len() - diff.len() % LANES;
    for (dc, zc) in diff[..whole]
        .chunks_exact(LANES)
        .zip(z[..whole].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let t = zc[l] / (dc[l] - tau);
            s[l] += zc[l] * t;
            ds[l] += t * t;
        }
    }
    let (mut s0, mut ds0) = (T::ZERO, T::ZERO);
    for (&d, &zj) in diff[whole..].iter().zip(&z[whole..]) {
        let t = zj / (d - tau);
        s0 += zj * t;
        ds0 += t * t;
    }
    for l in 0..LANES {
        s0 += s[l];
        ds0 += ds[l];
    }
    (s0, ds0)
}

/// Root `i` of `g(λ) = 1/ρ + Σ z_j² / (d_j − λ)` (`d` strictly ascending,
/// every `z_j ≠ 0`, `ρ > 0`): `λ_i` lies in `(d_i, d_(i+1))`, the last in
/// `(d_(k-1), d_(k-1) + ρ |z|²]`. Returns `λ_i` and writes `d_j − λ_i` to
/// `delta`.
///
/// The root is held as `d_o + τ` with `o` the nearer pole, found from the
/// sign of `g` at the interval's middle. Each step fits
/// `c + s_i / (δ_i − η) + s_(i+1) / (δ_(i+1) − η)` to `g` and its two
/// partial derivatives (Li's "middle way") and takes its root; a step that
/// leaves the bracket on τ (kept from g's signs) is a bisection instead.
#[inline(always)]
fn root<T: Scalar>(
    dk: &[T],
    zk: &[T],
    rho: T,
    i: usize,
    delta: &mut [T],
) -> Result<T, NotConverged> {
    let k = dk.len();
    let eps = T::from_f64(super::eps(T::DTYPE));
    let two = T::from_f64(2.0);
    let inv_rho = T::ONE / rho;
    let last = i + 1 == k;
    if k == 1 {
        let tau = rho * zk[0] * zk[0];
        delta[0] = -tau;
        return Ok(dk[0] + tau);
    }
    for (dj, &x) in delta.iter_mut().zip(dk) {
        *dj = x - dk[i];
    }
    let (origin, mut lo, mut hi, mut tau, mut s);
    if last {
        let w: T = zk.iter().map(|&z| z * z).sum();
        origin = i;
        lo = T::ZERO;
        hi = rho * w;
        tau = hi / two;
        s = sums(delta, zk, tau, i);
    } else {
        let gap = delta[i + 1];
        let mid = gap / two;
        s = sums(delta, zk, mid, i);
        if inv_rho + s.0 + s.2 >= T::ZERO {
            origin = i;
            (lo, hi, tau) = (T::ZERO, mid, mid);
        } else {
            origin = i + 1;
            for (dj, &x) in delta.iter_mut().zip(dk) {
                *dj = x - dk[i + 1];
            }
            // τ from the right pole; δ_i = −gap exactly.
            let at = delta[i] + mid;
            (lo, hi, tau) = (at, T::ZERO, at);
        }
    }
    let mut converged = false;
    for _ in 0..MAX_ITERATIONS {
        let (psi, dpsi, phi, dphi) = s;
        let g = inv_rho + psi + phi;
        // g's rounding error: ψ < 0 < φ, so φ − ψ sums the terms' sizes.
        let bound =
            eps * (inv_rho + T::from_f64(8.0) * (phi - psi) + T::from_f64(3.0) * Element::abs(g));
        if Element::abs(g) <= bound {
            converged = true;
            break;
        }
        if g > T::ZERO {
            hi = tau;
        } else {
            lo = tau;
        }
        let di = delta[i] - tau;
        let eta = if last {
            // One pole: c + s_i / (δ_i − η) = 0.
            let c = g - di * dpsi;
            di + dpsi * di * di / c
        } else {
            let dn = delta[i + 1] - tau;
            let (si, sn) = (dpsi * di * di, dphi * dn * dn);
            let c = g - di * dpsi - dn * dphi;
            let a = c * (di + dn) + si + sn;
            let b = di * dn * g;
            if c == T::ZERO {
                b / a
            } else {
                // c η² − a η + b = 0: the root inside the bracket.
                let disc = (a * a - T::from_f64(4.0) * b * c).max_nan(T::ZERO).sqrt();
                let big = if a < T::ZERO { a - disc } else { a + disc };
                let small = two * b / big;
                let t = tau + small;
                if t > lo && t < hi {
                    small
                } else {
                    big / (two * c)
                }
            }
        };
        let mut next = tau + eta;
        let inside = next > lo && (next < hi || (last && next <= hi));
        if !inside || next.is_nan() {
            next = (lo + hi) / two;
        }
        let width = hi - lo;
        let size = Element::abs(lo).max_nan(Element::abs(hi));
        if next == tau || width <= two * eps * size {
            tau = next;
            converged = true;
            break;
        }
        tau = next;
        s = sums(delta, zk, tau, i);
    }
    if !converged {
        return Err(NotConverged);
    }
    for dj in delta.iter_mut() {
        *dj -= tau;
    }
    Ok(dk[origin] + tau)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    /// Residual `|T V − V Λ|`, orthogonality `|VᵀV − I|` (max entries,
    /// relative to |T|) and the values against faer's.
    fn check(d: &[f64], e: &[f64]) -> (f64, f64, f64) {
        let n = d.len();
        let mut values = d.to_vec();
        let mut v = Mat::<f64>::zeros(n, n);
        eigh(&mut values, e, v.as_mut()).unwrap();
        for w in values.windows(2) {
            assert!(w[0] <= w[1], "not ascending: {values:?}");
        }
        let t = Mat::<f64>::from_fn(n, n, |i, j| {
            if i == j {
                d[i]
            } else if i == j + 1 {
                e[j]
            } else if j == i + 1 {
                e[i]
            } else {
                0.0
            }
        });
        let norm = t.norm_max().max(f64::MIN_POSITIVE);
        let tv = &t * &v;
        let mut residual = 0.0f64;
        for j in 0..n {
            for i in 0..n {
                residual = residual.max((tv[(i, j)] - v[(i, j)] * values[j]).abs());
            }
        }
        let vtv = v.transpose() * &v;
        let mut orth = 0.0f64;
        for j in 0..n {
            for i in 0..n {
                let want = if i == j { 1.0 } else { 0.0 };
                orth = orth.max((vtv[(i, j)] - want).abs());
            }
        }
        let mut reference = d.to_vec();
        let mut vr = Mat::<f64>::zeros(n, n);
        leaf(&mut reference, e, vr.as_mut()).unwrap();
        let diff = values
            .iter()
            .zip(&reference)
            .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
        (residual / norm, orth, diff / norm)
    }

    fn assert_accurate(name: &str, d: &[f64], e: &[f64]) {
        let n = d.len() as f64;
        let (residual, orth, diff) = check(d, e);
        let limit = 20.0 * n * f64::EPSILON;
        assert!(
            residual < limit && orth < limit && diff < limit,
            "{name} (n = {n}): residual {residual:e}, orthogonality {orth:e}, values {diff:e}"
        );
    }

    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        }
    }

    #[test]
    fn random_tridiagonals_of_every_shape_of_split() {
        for (n, seed) in [(33, 1), (64, 2), (65, 3), (100, 4), (129, 5), (300, 6)] {
            let mut r = lcg(seed);
            let d: Vec<f64> = (0..n).map(|_| r()).collect();
            let e: Vec<f64> = (0..n - 1).map(|_| r()).collect();
            assert_accurate("random", &d, &e);
        }
    }

    #[test]
    fn structured_tridiagonals_that_deflate() {
        let n = 100;
        // Wilkinson's W⁺: pairs of eigenvalues agreeing to many digits.
        let d: Vec<f64> = (0..n)
            .map(|i| (i as f64 - (n as f64 - 1.0) / 2.0).abs())
            .collect();
        assert_accurate("wilkinson", &d, &vec![1.0; n - 1]);
        // The 1-D Laplacian (distinct, evenly spread eigenvalues).
        assert_accurate("laplacian", &vec![2.0; n], &vec![-1.0; n - 1]);
        // Identity, and a zero off-diagonal at the split: all deflate.
        assert_accurate("identity", &vec![1.0; n], &vec![0.0; n - 1]);
        let mut r = lcg(7);
        let d: Vec<f64> = (0..n).map(|_| r()).collect();
        let mut e: Vec<f64> = (0..n - 1).map(|_| r()).collect();
        for i in (0..n - 1).step_by(3) {
            e[i] = 0.0;
        }
        assert_accurate("zeros in e", &d, &e);
        // Glued copies of one block: every eigenvalue repeated, off by the glue.
        let mut r = lcg(8);
        let block: Vec<f64> = (0..10).map(|_| r()).collect();
        let be: Vec<f64> = (0..9).map(|_| r()).collect();
        let d: Vec<f64> = (0..n).map(|i| block[i % 10]).collect();
        let e: Vec<f64> = (0..n - 1)
            .map(|i| if i % 10 == 9 { 1e-10 } else { be[i % 10] })
            .collect();
        assert_accurate("glued", &d, &e);
        // Graded: entries over 30 orders of magnitude.
        let d: Vec<f64> = (0..n).map(|i| 10f64.powf(-(i as f64) * 0.3)).collect();
        let e: Vec<f64> = (0..n - 1)
            .map(|i| 10f64.powf(-(i as f64) * 0.3 - 0.15))
            .collect();
        assert_accurate("graded", &d, &e);
        // Negative off-diagonal (the sign of the rank-one tear).
        let mut r = lcg(9);
        let d: Vec<f64> = (0..n).map(|_| r()).collect();
        let e: Vec<f64> = (0..n - 1).map(|_| -r().abs() - 0.1).collect();
        assert_accurate("negative e", &d, &e);
    }

    #[test]
    fn many_random_sizes_and_scales_agree_with_qr_iteration() {
        let mut r = lcg(12);
        for case in 0..40 {
            let n = 33 + (case * 37) % 180;
            let scale = 10f64.powi((case % 7) as i32 - 3);
            // Every fourth case mostly repeats a few values (deflation).
            let d: Vec<f64> = (0..n)
                .map(|i| {
                    if case % 4 == 0 {
                        scale * [0.5, -1.0, 2.0][i % 3]
                    } else {
                        scale * r()
                    }
                })
                .collect();
            let e: Vec<f64> = (0..n - 1)
                .map(|_| {
                    if case % 4 == 0 {
                        scale * 1e-3 * r()
                    } else {
                        scale * r()
                    }
                })
                .collect();
            assert_accurate("random case", &d, &e);
        }
    }

    #[test]
    fn huge_and_tiny_matrices_are_scaled_first() {
        for scale in [1e-300, 1e-160, 1e150, 1e300] {
            let n = 100;
            let mut r = lcg(13);
            let d: Vec<f64> = (0..n).map(|_| scale * r()).collect();
            let e: Vec<f64> = (0..n - 1).map(|_| scale * r()).collect();
            assert_accurate("scaled", &d, &e);
        }
        for scale in [1e-30f32, 1e-20, 1e25, 1e30] {
            let n = 100;
            let mut r = lcg(14);
            let d: Vec<f32> = (0..n).map(|_| scale * r() as f32).collect();
            let e: Vec<f32> = (0..n - 1).map(|_| scale * r() as f32).collect();
            let mut values = d.clone();
            let mut v = Mat::<f32>::zeros(n, n);
            eigh(&mut values, &e, v.as_mut()).unwrap();
            let vtv = v.transpose() * &v;
            for j in 0..n {
                assert!(values[j].is_finite(), "{scale}: value {j}");
                for i in 0..n {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (vtv[(i, j)] - want).abs() < 20.0 * n as f32 * f32::EPSILON,
                        "{scale}: VtV"
                    );
                }
            }
        }
    }

    #[test]
    fn nan_and_infinite_entries_are_an_error() {
        for bad in [f64::NAN, f64::INFINITY] {
            let n = 100;
            let mut r = lcg(11);
            let mut d: Vec<f64> = (0..n).map(|_| r()).collect();
            let e: Vec<f64> = (0..n - 1).map(|_| r()).collect();
            let mut e2 = e.clone();
            e2[20] = bad;
            let mut v = Mat::<f64>::zeros(n, n);
            assert!(eigh(&mut d.clone(), &e2, v.as_mut()).is_err(), "{bad} in e");
            d[70] = bad;
            assert!(eigh(&mut d, &e, v.as_mut()).is_err(), "{bad} in d");
        }
    }

    #[test]
    fn f32_tridiagonal_is_accurate_to_its_precision() {
        let n = 100;
        let mut r = lcg(10);
        let d: Vec<f32> = (0..n).map(|_| r() as f32).collect();
        let e: Vec<f32> = (0..n - 1).map(|_| r() as f32).collect();
        let mut values = d.clone();
        let mut v = Mat::<f32>::zeros(n, n);
        eigh(&mut values, &e, v.as_mut()).unwrap();
        let d64: Vec<f64> = d.iter().map(|&x| x as f64).collect();
        let e64: Vec<f64> = e.iter().map(|&x| x as f64).collect();
        let mut want = d64.clone();
        let mut v64 = Mat::<f64>::zeros(n, n);
        eigh(&mut want, &e64, v64.as_mut()).unwrap();
        for (a, b) in values.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 20.0 * n as f64 * f32::EPSILON as f64);
        }
        let vtv = v.transpose() * &v;
        for j in 0..n {
            for i in 0..n {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((vtv[(i, j)] - want).abs() < 20.0 * n as f32 * f32::EPSILON);
            }
        }
    }
}
