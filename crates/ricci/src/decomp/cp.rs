//! CP decomposition by alternating least squares (Kolda & Bader 2009, §3.4).
//!
//! With all factors but `Aₙ` fixed, the best `Aₙ` solves the normal
//! equations `Aₙ V = M`, where `V = ∗_{m≠n} AₘᵀAₘ` (Hadamard product of the
//! `R x R` Gram matrices) and `M = X₍ₙ₎ (⊙_{m≠n} Aₘ)` is the MTTKRP.
//! `M` is computed without unfolding `X` or forming the Khatri-Rao product
//! of all other factors: with `X` viewed as `[P, Iₙ, S]` (the modes before
//! and after `n`), `M[i, r] = Σ_{p,s} X[p, i, s] L[p, r] R[s, r]` for the
//! partial Khatri-Rao products `L` of the modes before and `R` of those
//! after; one matmul contracts the larger of `P` and `S` on a zero-copy
//! view of `X` (`2 N R` flops, `X` read once), a broadcast multiply and sum
//! the smaller.
//!
//! After each update the columns of `Aₙ` are normalised and their norms
//! kept as the weights `λ`, so every factor but the one being solved has
//! unit columns. The relative error after a sweep comes from
//! `‖X − X̂‖² = ‖X‖² − 2⟨X, X̂⟩ + ‖X̂‖²`, whose terms are already at hand
//! (`⟨X, X̂⟩ = Σ M ∘ Aₙ` and `‖X̂‖² = Σ (AₙᵀAₙ) ∘ V` for the last mode); this
//! loses precision below `√eps` relative error, where the residual is
//! computed directly instead. The iteration stops when the relative error
//! changes by less than `tol` between sweeps (TensorLy's `abs_rec_error`
//! criterion) or after `max_iter` sweeps.

use super::subspace::unfolding_basis;
use super::tensor_ops::{khatri_rao, split_at_mode};
use super::{check_input, check_tol, eps_of, relative_error_between};
use crate::autograd::no_grad;
use crate::error::{Error, Result};
use crate::linalg::{pinv, solve};
use crate::tensor::{Rng, Tensor};

/// How [`cp_als`] starts.
///
/// ```
/// # use ricci::{decomp::{self, CpInit, CpParams}, DType, Rng, Tensor};
/// let x = Tensor::randn(&[4, 5, 6], DType::F64, &mut Rng::new(0));
/// let params = CpParams { init: CpInit::Random, seed: 3, ..CpParams::default() };
/// assert_eq!(decomp::cp_als(&x, 2, &params)?.rank(), 2);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpInit {
    /// Leading left singular vectors of each unfolding (TensorLy's
    /// `init='svd'`); columns beyond a mode's size are seeded random.
    Svd,
    /// Seeded standard normal factors, columns normalised.
    Random,
}

/// Parameters of [`cp_als`].
///
/// ```
/// # use ricci::{decomp::{self, CpParams}, DType, Rng, Tensor};
/// let x = Tensor::randn(&[4, 5, 6], DType::F32, &mut Rng::new(0));
/// let cp = decomp::cp_als(&x, 3, &CpParams { max_iter: 5, tol: 0.0, ..CpParams::default() })?;
/// assert_eq!((cp.iterations, cp.converged), (5, false));
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CpParams {
    /// The most ALS sweeps (one sweep updates every factor once).
    pub max_iter: usize,
    /// Stop when the relative error changes by less than this between sweeps.
    pub tol: f64,
    /// Initialisation.
    pub init: CpInit,
    /// Seed of the random initialisation (and of the padding columns of `Svd`).
    pub seed: u64,
}

impl Default for CpParams {
    /// TensorLy's `parafac` defaults: 100 sweeps, `tol = 1e-8`, SVD init.
    fn default() -> Self {
        CpParams {
            max_iter: 100,
            tol: 1e-8,
            init: CpInit::Svd,
            seed: 0,
        }
    }
}

/// A CP decomposition `X ≈ Σᵣ λᵣ a⁽⁰⁾ᵣ ∘ … ∘ a⁽ᵈ⁻¹⁾ᵣ`, from [`cp_als`].
///
/// ```
/// # use ricci::{decomp, DType, Rng, Tensor};
/// let x = Tensor::randn(&[3, 4, 5], DType::F64, &mut Rng::new(0));
/// let cp = decomp::cp_als(&x, 2, &Default::default())?;
/// assert_eq!(cp.factors.len(), 3);
/// assert!(cp.error > 0.0 && cp.error < 1.0);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Cp {
    /// `λ: [R]`, non-negative, descending.
    pub weights: Tensor,
    /// `Aₙ: [Iₙ, R]`, unit-norm columns.
    pub factors: Vec<Tensor>,
    /// ALS sweeps run.
    pub iterations: usize,
    /// Whether the error change fell below `tol` (else `max_iter` was reached).
    pub converged: bool,
    /// Relative error `‖X − X̂‖_F / ‖X‖_F` after the last sweep.
    pub error: f64,
}

impl Cp {
    /// The rank `R`.
    ///
    /// ```
    /// # use ricci::{decomp, DType, Rng, Tensor};
    /// let x = Tensor::randn(&[3, 4, 5], DType::F64, &mut Rng::new(0));
    /// assert_eq!(decomp::cp_als(&x, 4, &Default::default())?.rank(), 4);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn rank(&self) -> usize {
        self.weights.numel()
    }

    /// The tensor `Σᵣ λᵣ a⁽⁰⁾ᵣ ∘ … ∘ a⁽ᵈ⁻¹⁾ᵣ` (differentiable in the weights
    /// and factors): `(λ ∘ A₀) ⊙ … ⊙ A_{d-2}` times `A_{d-1}ᵀ`, reshaped.
    ///
    /// ```
    /// # use ricci::{decomp::Cp, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f64, 2.0], &[2, 1])?;
    /// let cp = Cp { weights: Tensor::from_vec(vec![3.0f64], &[1])?, factors: vec![a.clone(), a.clone(), a],
    ///               iterations: 0, converged: true, error: 0.0 };
    /// let x = cp.reconstruct()?;
    /// assert_eq!(x.shape(), &[2, 2, 2]);
    /// assert_eq!(x.to_vec::<f64>()?[7], 3.0 * 8.0);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn reconstruct(&self) -> Result<Tensor> {
        let op = "Cp::reconstruct";
        let r = self.rank();
        if self.factors.is_empty()
            || self.weights.rank() != 1
            || self
                .factors
                .iter()
                .any(|f| f.rank() != 2 || f.shape()[1] != r)
        {
            let shapes: Vec<Vec<usize>> = self.factors.iter().map(|f| f.shape().to_vec()).collect();
            return Err(Error::invalid(
                op,
                format!(
                    "factors {shapes:?} must be matrices with one column per weight (weights {:?})",
                    self.weights.shape()
                ),
            ));
        }
        let shape: Vec<usize> = self.factors.iter().map(|f| f.shape()[0]).collect();
        let first = self.factors[0].mul(&self.weights.unsqueeze(0)?)?;
        let d = self.factors.len();
        if d == 1 {
            return first.sum(1, false);
        }
        let mut left: Vec<&Tensor> = vec![&first];
        left.extend(&self.factors[1..d - 1]);
        khatri_rao(&left)?
            .matmul(&self.factors[d - 1].t()?)?
            .reshape(shape)
    }

    /// `‖x − reconstruct()‖_F / ‖x‖_F`, computed directly.
    ///
    /// ```
    /// # use ricci::{decomp, DType, Rng, Tensor};
    /// let x = Tensor::randn(&[4, 5, 6], DType::F64, &mut Rng::new(0));
    /// let cp = decomp::cp_als(&x, 2, &Default::default())?;
    /// assert!((cp.relative_error(&x)? - cp.error).abs() < 1e-6);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn relative_error(&self, x: &Tensor) -> Result<f64> {
        relative_error_between("Cp::relative_error", &self.reconstruct()?, x)
    }

    /// Stored numbers: `R + R Σₙ Iₙ`.
    ///
    /// ```
    /// # use ricci::{decomp, DType, Rng, Tensor};
    /// let x = Tensor::randn(&[4, 5, 6], DType::F32, &mut Rng::new(0));
    /// assert_eq!(decomp::cp_als(&x, 2, &Default::default())?.num_parameters(), 2 + 2 * 15);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn num_parameters(&self) -> usize {
        self.weights.numel() + self.factors.iter().map(Tensor::numel).sum::<usize>()
    }
}

/// A rank-`rank` CP decomposition of `x` (order ≥ 3, f32 or f64) by
/// alternating least squares (the method is described at the top of
/// `decomp/cp.rs`). `rank` may exceed a mode's size but not
/// `min_n ∏_{m≠n} Iₘ`, the largest rank a
/// tensor of this shape can need.
///
/// ```
/// # use ricci::{decomp::{self, CpParams}, DType, Rng, Tensor};
/// let mut rng = Rng::new(1);
/// let factors: Vec<Tensor> = [5, 6, 7].iter().map(|&n| Tensor::randn(&[n, 3], DType::F64, &mut rng)).collect();
/// let x = ricci::einsum("ir,jr,kr->ijk", &[&factors[0], &factors[1], &factors[2]])?;
/// let cp = decomp::cp_als(&x, 3, &CpParams { tol: 1e-14, max_iter: 1000, ..Default::default() })?;
/// assert!(cp.converged && cp.relative_error(&x)? < 1e-9);
/// assert_eq!(cp.factors[1].shape(), &[6, 3]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn cp_als(x: &Tensor, rank: usize, params: &CpParams) -> Result<Cp> {
    let op = "cp_als";
    check_input(op, x, 3)?;
    let shape = x.shape().to_vec();
    let numel = x.numel();
    let max_rank = shape.iter().map(|&n| numel / n).min().unwrap_or(0);
    if rank == 0 || rank > max_rank {
        return Err(Error::invalid(
            op,
            format!("rank must be in 1..={max_rank} for shape {shape:?}, got {rank}"),
        ));
    }
    check_tol(op, params.tol)?;
    let _no_graph = no_grad();
    let x = x.detach().contiguous();
    let d = shape.len();
    let norm_x = x.norm_all().to_f64()?;
    let mut rng = Rng::new(params.seed);
    let mut factors = shape
        .iter()
        .enumerate()
        .map(|(n, &size)| init_factor(&x, n, size, rank, params.init, &mut rng))
        .collect::<Result<Vec<_>>>()?;
    let mut weights = Tensor::ones(&[rank], x.dtype());
    if norm_x == 0.0 {
        return finish(weights.mul_scalar(0.0), factors, 0, true, 0.0);
    }
    let mut grams = factors
        .iter()
        .map(|a| a.t()?.matmul(a))
        .collect::<Result<Vec<_>>>()?;
    let exact_below = 100.0 * eps_of(&x).sqrt();
    let mut errors: Vec<f64> = Vec::new();
    let mut converged = false;
    for _ in 0..params.max_iter {
        let mut last = None;
        for n in 0..d {
            let m = mttkrp(&x, &factors, n)?;
            let v = hadamard_except(&grams, n)?;
            let raw = solve_normal_equations(&v, &m)?;
            let norms = raw.square().sum(0, false)?.sqrt();
            // A zero column stays zero (divide by 1 there, not by 0).
            let safe = norms.add(&norms.eq_scalar(0.0))?;
            factors[n] = raw.div(&safe.unsqueeze(0)?)?;
            grams[n] = factors[n].t()?.matmul(&factors[n])?;
            weights = norms;
            if n == d - 1 {
                last = Some((m, raw, v));
            }
        }
        let (m, raw, v) = last.ok_or_else(|| Error::invalid(op, "internal: no sweep"))?;
        let inner = m.mul(&raw)?.sum_all().to_f64()?;
        let model_sq = raw.t()?.matmul(&raw)?.mul(&v)?.sum_all().to_f64()?;
        let residual_sq = (norm_x * norm_x - 2.0 * inner + model_sq).max(0.0);
        let mut error = residual_sq.sqrt() / norm_x;
        if error < exact_below {
            let cp = Cp {
                weights: weights.clone(),
                factors: factors.clone(),
                iterations: 0,
                converged: false,
                error,
            };
            error = cp.relative_error(&x)?;
        }
        errors.push(error);
        if let [.., prev, cur] = errors[..] {
            if (prev - cur).abs() < params.tol {
                converged = true;
                break;
            }
        }
    }
    let error = errors.last().copied().unwrap_or(f64::NAN);
    finish(weights, factors, errors.len(), converged, error)
}

/// Sorts the components by weight, largest first.
fn finish(
    weights: Tensor,
    factors: Vec<Tensor>,
    iterations: usize,
    converged: bool,
    error: f64,
) -> Result<Cp> {
    let w = weights.to_vec_f64();
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.sort_by(|&a, &b| w[b].total_cmp(&w[a]));
    let idx = Tensor::from_indices(&order, &[order.len()], weights.dtype())?;
    Ok(Cp {
        weights: weights.index_select(0, &idx)?,
        factors: factors
            .iter()
            .map(|f| Ok(f.index_select(1, &idx)?.contiguous()))
            .collect::<Result<Vec<_>>>()?,
        iterations,
        converged,
        error,
    })
}

/// The initial factor of mode `n`: `[size, rank]` with unit columns.
fn init_factor(
    x: &Tensor,
    n: usize,
    size: usize,
    rank: usize,
    init: CpInit,
    rng: &mut Rng,
) -> Result<Tensor> {
    let from_svd = match init {
        CpInit::Svd => rank.min(size),
        CpInit::Random => 0,
    };
    let mut parts = Vec::new();
    if from_svd > 0 {
        parts.push(unfolding_basis(x, n, from_svd)?);
    }
    if rank > from_svd {
        let g = Tensor::randn(&[size, rank - from_svd], x.dtype(), rng);
        let norms = g.square().sum(0, true)?.sqrt();
        parts.push(g.div(&norms.add(&norms.eq_scalar(0.0))?)?);
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    Tensor::cat(&refs, 1)
}

/// `V = ∗_{m≠n} AₘᵀAₘ`.
fn hadamard_except(grams: &[Tensor], n: usize) -> Result<Tensor> {
    let mut others = grams.iter().enumerate().filter(|&(m, _)| m != n);
    let (_, first) = others
        .next()
        .ok_or_else(|| Error::invalid("cp_als", "internal: one mode"))?;
    others.try_fold(first.clone(), |acc, (_, g)| acc.mul(g))
}

/// `A = M V⁻¹` for symmetric `V` (as `Aᵀ = V⁻¹ Mᵀ`); the pseudo-inverse
/// when `V` is singular (collinear or zero columns).
fn solve_normal_equations(v: &Tensor, m: &Tensor) -> Result<Tensor> {
    match solve(v, &m.t()?) {
        Ok(at) if at.abs().sum_all().to_f64()?.is_finite() => at.t(),
        _ => m.matmul(&pinv(v, None)?),
    }
}

/// `X₍ₙ₎ (⊙_{m≠n} Aₘ)`, `[Iₙ, R]`, without unfolding `x` (contiguous).
fn mttkrp(x: &Tensor, factors: &[Tensor], n: usize) -> Result<Tensor> {
    let d = factors.len();
    let r = factors[0].shape()[1];
    let (p, i, s) = split_at_mode(x.shape(), n);
    let partial = |range: &[Tensor]| -> Result<Option<Tensor>> {
        if range.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&Tensor> = range.iter().collect();
        khatri_rao(&refs).map(Some)
    };
    let left = partial(&factors[..n])?;
    let right = partial(&factors[n + 1..d])?;
    match (left, right) {
        (None, Some(kr)) => x.reshape([i, s])?.matmul(&kr),
        (Some(kl), None) => x.reshape([p, i])?.t()?.matmul(&kl),
        (Some(kl), Some(kr)) if s >= p => {
            // T[p, i, r] = Σ_s X[p, i, s] R[s, r], then Σ_p T[p, i, r] L[p, r].
            let t = x.reshape([p * i, s])?.matmul(&kr)?.reshape([p, i, r])?;
            t.mul(&kl.unsqueeze(1)?)?.sum(0, false)
        }
        (Some(kl), Some(kr)) => {
            // T[i, s, r] = Σ_p X[p, i, s] L[p, r], then Σ_s T[i, s, r] R[s, r].
            let t = x
                .reshape([p, i * s])?
                .t()?
                .matmul(&kl)?
                .reshape([i, s, r])?;
            t.mul(&kr.unsqueeze(0)?)?.sum(1, false)
        }
        (None, None) => Err(Error::invalid("cp_als", "internal: order-1 tensor")),
    }
}
