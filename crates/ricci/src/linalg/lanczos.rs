//! Extreme eigenpairs of a symmetric operator known only through its
//! products `v ↦ A v`: Lanczos with full reorthogonalisation, and power
//! iteration. This is what Hessian analysis uses, with `A v` a
//! Hessian-vector product.
//!
//! Lanczos builds an orthonormal Krylov basis `Q_j` of
//! `span{q, Aq, …, A^{j-1} q}` in which `A` is tridiagonal,
//! `T_j = Q_jᵀ A Q_j`; the eigenpairs `(θ, s)` of `T_j` give Ritz pairs
//! `(θ, Q_j s)` whose residual is `‖A Q_j s − θ Q_j s‖ = β_j |s_j|`
//! (Golub & Van Loan §10.1), so convergence is checked without extra
//! products. After the three-term recurrence each new vector is
//! orthogonalised against the whole basis (classical Gram-Schmidt, a second
//! pass when the first cancels most of it), which keeps the basis
//! orthonormal to rounding and rules out the spurious copies of converged
//! eigenvalues that plain Lanczos produces. The recurrence runs in f64
//! whatever the operator's dtype.

use faer::Mat;

use crate::error::{Error, Result};
use crate::kernels::basis;
use crate::tensor::{DType, Rng, Tensor};

/// Which end of the spectrum to find (algebraically largest or smallest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Which {
    #[default]
    Largest,
    Smallest,
}

/// Parameters of [`lanczos`] and [`power_iteration`].
#[derive(Clone, Debug)]
pub struct LanczosParams {
    /// Number of eigenpairs (Lanczos only).
    pub k: usize,
    /// Which end of the spectrum (Lanczos only).
    pub which: Which,
    /// At most this many products with the operator.
    pub max_iter: usize,
    /// Converged when every wanted residual `‖A x − θ x‖ ≤ tol · max(|θ|, ‖T‖)`.
    pub tol: f64,
    /// Seed of the random start vector.
    pub seed: u64,
    /// Dtype of the vectors handed to the operator.
    pub dtype: DType,
}

impl Default for LanczosParams {
    fn default() -> Self {
        LanczosParams {
            k: 1,
            which: Which::Largest,
            max_iter: 300,
            tol: 1e-8,
            seed: 0,
            dtype: DType::F64,
        }
    }
}

/// The result of [`lanczos`].
#[derive(Clone, Debug)]
pub struct Lanczos {
    /// The `k` eigenvalues, from the extreme inwards (descending for
    /// `Largest`, ascending for `Smallest`), `[k]`.
    pub values: Tensor,
    /// The matching unit eigenvectors as columns, `[n, k]`.
    pub vectors: Tensor,
    /// Products with the operator that were made.
    pub matvecs: usize,
}

/// One product `A v` through the user's closure, checked.
fn apply(
    op: &dyn Fn(&Tensor) -> Result<Tensor>,
    v: &[f64],
    dtype: DType,
    name: &'static str,
) -> Result<Vec<f64>> {
    let x = Tensor::from_vec(v.to_vec(), &[v.len()])?.to_dtype(dtype);
    let y = op(&x)?;
    if y.numel() != v.len() {
        return Err(Error::invalid(
            name,
            format!(
                "the operator must map a vector of length {} to one of the same length, got shape {:?}",
                v.len(),
                y.shape()
            ),
        ));
    }
    Ok(y.to_vec_f64())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn start_vector(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let s = norm(&v);
    v.into_iter().map(|x| x / s).collect()
}

/// An orthonormal basis of vectors of length `n`, stored as the columns of
/// one column-major buffer so that projecting onto all of them is two
/// matrix-vector products (faer's, vectorised and threaded) instead of `j`
/// scalar dot products: at 50k parameters and 80 steps this is where most
/// of a Hessian Lanczos run's time outside the products goes.
struct Basis {
    n: usize,
    /// Room for every column the run can make, allocated once (a growing
    /// vector reallocated and page-faulted its way to 32 MB in an 80-step
    /// run over 50,890 parameters); the first `len` columns are the basis.
    data: Vec<f64>,
    len: usize,
}

impl Drop for Basis {
    /// Hands the buffer to the storage pool, so that the next run of the
    /// same size (a density's next probe) reuses its pages.
    fn drop(&mut self) {
        crate::tensor::recycle(std::mem::take(&mut self.data));
    }
}

impl Basis {
    /// A basis starting from the unit vector `first`, with room for
    /// `columns` columns in all.
    fn new(first: Vec<f64>, columns: usize) -> Basis {
        let n = first.len();
        let mut data = crate::tensor::alloc_uninit::<f64>(n * columns.max(1));
        data[..n].copy_from_slice(&first);
        Basis { n, data, len: 1 }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn column(&self, j: usize) -> &[f64] {
        debug_assert!(j < self.len);
        &self.data[j * self.n..(j + 1) * self.n]
    }

    /// Appends the column `v` (of length `n`); grows the storage if the
    /// run makes more columns than planned.
    fn push(&mut self, v: impl IntoIterator<Item = f64>) {
        let (n, end) = (self.n, (self.len + 1) * self.n);
        if end > self.data.len() {
            self.data.resize(end, 0.0);
        }
        let slot = &mut self.data[end - n..end];
        let mut filled = 0;
        for (s, x) in slot.iter_mut().zip(v) {
            *s = x;
            filled += 1;
        }
        debug_assert_eq!(filled, n);
        self.len += 1;
    }

    /// Removes from `w` its components along the basis by classical
    /// Gram-Schmidt, with a second pass when the first one cancelled most
    /// of `w` (the DGKS criterion, Daniel et al. 1976: the norm fell below
    /// `1/√2` of what it was). Then the rounding error left by the first
    /// pass is a large fraction of what remains and one more pass removes
    /// it ("twice is enough", Parlett); otherwise one pass is orthogonal to
    /// working precision and the second would only double the memory
    /// traffic, which is what a long Lanczos run spends its time on.
    fn orthogonalise(&self, w: &mut [f64]) {
        let (n, j) = (self.n, self.len());
        let mut c = vec![0.0; j];
        for pass in 0..2 {
            let before = norm(w);
            let q = &self.data[..n * j];
            basis::dots(q, n, w, &mut c);
            basis::subtract(q, n, &c, w);
            if pass == 0 && norm(w) > std::f64::consts::FRAC_1_SQRT_2 * before {
                break;
            }
        }
    }

    /// `w -= c q_j`.
    fn subtract(&self, w: &mut [f64], c: f64, j: usize) {
        w.iter_mut()
            .zip(self.column(j))
            .for_each(|(x, q)| *x -= c * q);
    }

    /// `Σ_r coef(r) q_r`.
    fn combine(&self, coef: impl Fn(usize) -> f64) -> Vec<f64> {
        let mut out = vec![0.0; self.n];
        for r in 0..self.len() {
            let c = coef(r);
            out.iter_mut()
                .zip(self.column(r))
                .for_each(|(o, q)| *o += c * q);
        }
        out
    }
}

/// One Lanczos step from the basis vector `j`: `α_j = q_jᵀ A q_j` and the
/// next residual `A q_j − α_j q_j − β_{j−1} q_{j−1}` (the three-term
/// recurrence, `prev_beta` = `β_{j−1}`), then made orthogonal to the whole
/// basis to remove the rounding the recurrence alone would let grow.
fn krylov_step(
    op: &dyn Fn(&Tensor) -> Result<Tensor>,
    basis: &Basis,
    j: usize,
    prev_beta: Option<f64>,
    dtype: DType,
    name: &'static str,
) -> Result<(f64, Vec<f64>)> {
    let mut w = apply(op, basis.column(j), dtype, name)?;
    let a = dot(&w, basis.column(j));
    basis.subtract(&mut w, a, j);
    if let (Some(b), true) = (prev_beta, j > 0) {
        basis.subtract(&mut w, b, j - 1);
    }
    basis.orthogonalise(&mut w);
    Ok((a, w))
}

/// Eigenpairs of the symmetric tridiagonal `T` (ascending), solved as a
/// tridiagonal (no dense reduction): [`super::tridiagonal::eigh`].
fn tridiag_eig(alpha: &[f64], beta: &[f64]) -> Result<(Vec<f64>, Mat<f64>)> {
    let m = alpha.len();
    let mut values = alpha.to_vec();
    let mut u = Mat::<f64>::zeros(m, m);
    super::tridiagonal::eigh(&mut values, &beta[..m.saturating_sub(1)], u.as_mut()).map_err(
        |_| Error::NotConverged {
            op: "lanczos",
            iterations: None,
        },
    )?;
    Ok((values, u))
}

/// The `params.k` extreme eigenpairs of the symmetric `n x n` operator
/// `op` (a closure mapping a vector `[n]` to `A v`).
///
/// Stops when the wanted Ritz pairs have converged (see [`LanczosParams::tol`]),
/// when the Krylov space is invariant, or with [`Error::NotConverged`]
/// after `max_iter` products.
///
/// ```
/// # use ricci::{Tensor, DType, linalg::{self, LanczosParams, Which}};
/// // A diagonal operator with eigenvalues 1..=100.
/// let d = Tensor::arange(1.0, 101.0, 1.0, DType::F64)?;
/// let params = LanczosParams { k: 2, which: Which::Largest, ..Default::default() };
/// let r = linalg::lanczos(|v| v.mul(&d), 100, &params)?;
/// let l = r.values.to_vec::<f64>()?;
/// assert!((l[0] - 100.0).abs() < 1e-6 && (l[1] - 99.0).abs() < 1e-6);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn lanczos(
    op: impl Fn(&Tensor) -> Result<Tensor>,
    n: usize,
    params: &LanczosParams,
) -> Result<Lanczos> {
    let name = "lanczos";
    let k = params.k;
    if k == 0 || k > n {
        return Err(Error::invalid(
            name,
            format!("k must be in 1..={n}, got {k}"),
        ));
    }
    let max_steps = params.max_iter.min(n);
    // Most runs converge in far fewer steps than allowed: room for 128
    // columns first, more only when needed.
    let mut basis = Basis::new(start_vector(n, params.seed), max_steps.min(128));
    let (mut alpha, mut beta) = (Vec::<f64>::new(), Vec::<f64>::new());
    for j in 0..max_steps {
        let (a, w) = krylov_step(&op, &basis, j, beta.last().copied(), params.dtype, name)?;
        alpha.push(a);
        let b = norm(&w);
        let steps = j + 1;
        let invariant = b <= 1e-14 * alpha.iter().map(|x| x.abs()).fold(1e-300, f64::max);
        let check =
            steps >= k && (steps <= 100 || steps % 10 == 0 || invariant || steps == max_steps);
        if check {
            let (theta, s) = tridiag_eig(&alpha, &beta)?;
            let wanted: Vec<usize> = match params.which {
                Which::Largest => (0..k).map(|i| steps - 1 - i).collect(),
                Which::Smallest => (0..k).collect(),
            };
            let scale = theta.iter().map(|x| x.abs()).fold(0.0, f64::max);
            let converged = invariant
                || steps == n
                || wanted.iter().all(|&i| {
                    (b * s[(steps - 1, i)]).abs() <= params.tol * theta[i].abs().max(scale)
                });
            if converged {
                let mut vecs = vec![0.0f64; n * k];
                for (c, &i) in wanted.iter().enumerate() {
                    let ritz = basis.combine(|r| s[(r, i)]);
                    for (row, x) in ritz.into_iter().enumerate() {
                        vecs[row * k + c] = x;
                    }
                }
                let values: Vec<f64> = wanted.iter().map(|&i| theta[i]).collect();
                return Ok(Lanczos {
                    values: Tensor::from_vec(values, &[k])?.to_dtype(params.dtype),
                    vectors: Tensor::from_vec(vecs, &[n, k])?.to_dtype(params.dtype),
                    matvecs: steps,
                });
            }
        }
        if invariant {
            // The Krylov space closed before k pairs were found: continue
            // from a fresh direction orthogonal to it (β = 0 decouples T).
            let mut fresh = start_vector(n, params.seed.wrapping_add(steps as u64));
            basis.orthogonalise(&mut fresh);
            let f = norm(&fresh);
            beta.push(0.0);
            basis.push(fresh.into_iter().map(|x| x / f));
            continue;
        }
        beta.push(b);
        basis.push(w.into_iter().map(|x| x / b));
    }
    Err(Error::NotConverged {
        op: name,
        iterations: Some(max_steps),
    })
}

/// The result of [`power_iteration`].
#[derive(Clone, Debug)]
pub struct PowerIteration {
    /// The eigenvalue of largest magnitude (a Rayleigh quotient).
    pub value: f64,
    /// Its unit eigenvector, `[n]`.
    pub vector: Tensor,
    /// Products with the operator that were made.
    pub matvecs: usize,
}

/// The eigenvalue of largest magnitude of the symmetric operator `op` and
/// its eigenvector, by power iteration (uses `max_iter`, `tol`, `seed`,
/// `dtype` of `params`). Converges at the rate `|λ₂/λ₁|` per product; use
/// [`lanczos`] when the gap is small. [`Error::NotConverged`] after `max_iter`.
///
/// ```
/// # use ricci::{Tensor, linalg::{self, LanczosParams}};
/// let a = Tensor::from_vec(vec![2.0f64, 1.0, 1.0, 2.0], &[2, 2])?;
/// let r = linalg::power_iteration(|v| a.matmul(v), 2, &LanczosParams::default())?;
/// assert!((r.value - 3.0).abs() < 1e-8);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn power_iteration(
    op: impl Fn(&Tensor) -> Result<Tensor>,
    n: usize,
    params: &LanczosParams,
) -> Result<PowerIteration> {
    let name = "power_iteration";
    if n == 0 {
        return Err(Error::invalid(name, "n must be positive"));
    }
    let mut v = start_vector(n, params.seed);
    for it in 1..=params.max_iter {
        let w = apply(&op, &v, params.dtype, name)?;
        let lambda = dot(&v, &w);
        let residual: f64 = w
            .iter()
            .zip(&v)
            .map(|(a, b)| (a - lambda * b).powi(2))
            .sum::<f64>()
            .sqrt();
        let wn = norm(&w);
        if residual <= params.tol * lambda.abs().max(f64::MIN_POSITIVE) || wn == 0.0 {
            return Ok(PowerIteration {
                value: lambda,
                vector: Tensor::from_vec(v, &[n])?.to_dtype(params.dtype),
                matvecs: it,
            });
        }
        v = w.into_iter().map(|x| x / wn).collect();
    }
    Err(Error::NotConverged {
        op: name,
        iterations: Some(params.max_iter),
    })
}

/// Gauss quadrature of the spectral measure of a symmetric operator seen
/// from one start vector: the result of [`lanczos_quadrature`].
///
/// For a unit start vector `v` and `A = Σ λᵢ uᵢ uᵢᵀ`, the measure
/// `μ_v = Σ (uᵢᵀv)² δ(λᵢ)` is approximated by `Σ wⱼ δ(θⱼ)`, where `θⱼ` are
/// the eigenvalues of the Lanczos tridiagonal `T_m` and `wⱼ` the squared
/// first components of its eigenvectors (Golub & Meurant 2010); the rule
/// integrates polynomials of degree up to `2m − 1` exactly. Averaged over
/// random start vectors, `μ_v` is the eigenvalue density of `A`
/// (stochastic Lanczos quadrature).
#[derive(Clone, Debug)]
pub struct Quadrature {
    /// Ritz values `θⱼ`, ascending.
    pub nodes: Vec<f64>,
    /// Their weights `wⱼ ≥ 0`, summing to 1.
    pub weights: Vec<f64>,
    /// Products with the operator that were made.
    pub matvecs: usize,
}

/// `steps` Lanczos steps (fewer if the Krylov space closes) of the
/// symmetric operator `op` from `start` (any non-zero vector `[n]`; it is
/// normalised), returned as a Gauss quadrature rule ([`Quadrature`]).
///
/// ```
/// # use ricci::{Tensor, DType, linalg};
/// // diag(1, 2, 3) seen from (1, 1, 1)/√3: mass 1/3 at each eigenvalue.
/// let d = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?;
/// let q = linalg::lanczos_quadrature(|v| v.mul(&d), &Tensor::ones(&[3], DType::F64), 3)?;
/// for (node, want) in q.nodes.iter().zip([1.0, 2.0, 3.0]) {
///     assert!((node - want).abs() < 1e-12);
/// }
/// assert!(q.weights.iter().all(|w| (w - 1.0 / 3.0).abs() < 1e-12));
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn lanczos_quadrature(
    op: impl Fn(&Tensor) -> Result<Tensor>,
    start: &Tensor,
    steps: usize,
) -> Result<Quadrature> {
    let name = "lanczos_quadrature";
    if start.rank() != 1 || start.numel() == 0 {
        return Err(Error::invalid(
            name,
            format!(
                "the start vector must be a non-empty 1-D tensor, got shape {:?}",
                start.shape()
            ),
        ));
    }
    if steps == 0 {
        return Err(Error::invalid(name, "steps must be positive"));
    }
    let n = start.numel();
    let v = start.to_vec_f64();
    let s = norm(&v);
    if !(s.is_finite() && s > 0.0) {
        return Err(Error::invalid(
            name,
            format!("the start vector must be finite and non-zero, its norm is {s}"),
        ));
    }
    let mut basis = Basis::new(v.into_iter().map(|x| x / s).collect(), steps.min(n));
    let (mut alpha, mut beta) = (Vec::<f64>::new(), Vec::<f64>::new());
    for j in 0..steps.min(n) {
        let (a, w) = krylov_step(&op, &basis, j, beta.last().copied(), start.dtype(), name)?;
        alpha.push(a);
        let b = norm(&w);
        let scale = alpha.iter().map(|x| x.abs()).fold(1e-300, f64::max);
        // An invariant subspace: the rule is exact with the nodes found so far.
        if j + 1 == steps.min(n) || b <= 1e-12 * scale {
            break;
        }
        beta.push(b);
        basis.push(w.into_iter().map(|x| x / b));
    }
    let (nodes, vectors) = tridiag_eig(&alpha, &beta)?;
    let weights = (0..nodes.len()).map(|i| vectors[(0, i)].powi(2)).collect();
    Ok(Quadrature {
        nodes,
        weights,
        matvecs: alpha.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_grows_past_its_planned_room_and_orthogonalises() {
        let n = 5;
        let e = |i: usize| {
            (0..n)
                .map(|k| if k == i { 1.0 } else { 0.0 })
                .collect::<Vec<f64>>()
        };
        // Room for 2 columns, 4 pushed: the storage grows, columns keep.
        let mut basis = Basis::new(e(0), 2);
        for i in 1..4 {
            basis.push(e(i));
        }
        assert_eq!(basis.len(), 4);
        for i in 0..4 {
            assert_eq!(basis.column(i), e(i).as_slice());
        }
        // Against e0..e3, only the last component of w survives.
        let mut w = vec![1.0, -2.0, 3.0, 4.0, 5.0];
        basis.orthogonalise(&mut w);
        assert_eq!(w, vec![0.0, 0.0, 0.0, 0.0, 5.0]);
    }
}
