//! Tucker decomposition: HOSVD and HOOI (De Lathauwer, De Moor &
//! Vandewalle 2000).
//!
//! HOSVD takes `Uₙ` as the `rₙ` leading left singular vectors of each
//! unfolding `X₍ₙ₎` and the core `G = X ×₀ U₀ᵀ ×₁ … ×_{d-1} U_{d-1}ᵀ`; its
//! error is at most `√d` times the best rank-`(r₀, …)` error. HOOI starts
//! there and replaces each `Uₙ` in turn by the leading left singular vectors
//! of `(X ×_{m≠n} Uₘᵀ)₍ₙ₎`, a `[Iₙ, ∏_{m≠n} rₘ]` matrix, never increasing
//! the error. With orthonormal factors `‖X − X̂‖² = ‖X‖² − ‖G‖²`, which
//! gives the error after each sweep for free; HOOI stops when it changes by
//! less than `tol` (TensorLy's criterion) or after `max_iter` sweeps.
//!
//! Mode products are applied in the order that shrinks the tensor fastest
//! (largest `Iₘ / rₘ` first), each one a matmul on a view. A HOOI sweep
//! touches the full `X` twice, not `d` times: `X ×_{d-1} U_{d-1}ᵀ` is
//! shared by the updates of modes `0..d-1`, which all come before
//! `U_{d-1}` changes.

use super::subspace::unfolding_basis;
use super::tensor_ops::mode_product;
use super::{check_input, check_tol, relative_error_between};
use crate::autograd::no_grad;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Parameters of [`tucker_hooi`].
///
/// ```
/// # use ricci::{decomp::{self, TuckerParams}, DType, Rng, Tensor};
/// let x = Tensor::randn(&[5, 6, 7], DType::F64, &mut Rng::new(0));
/// let t = decomp::tucker_hooi(&x, &[2, 2, 2], &TuckerParams { max_iter: 3, tol: 0.0 })?;
/// assert_eq!(t.iterations, 3);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TuckerParams {
    /// The most HOOI sweeps after the HOSVD start.
    pub max_iter: usize,
    /// Stop when the relative error changes by less than this between sweeps.
    pub tol: f64,
}

impl Default for TuckerParams {
    /// 100 sweeps, `tol = 1e-8` (TensorLy's `tucker` uses `tol = 1e-4`).
    fn default() -> Self {
        TuckerParams {
            max_iter: 100,
            tol: 1e-8,
        }
    }
}

/// A Tucker decomposition `X ≈ G ×₀ U₀ ×₁ … ×_{d-1} U_{d-1}`.
///
/// ```
/// # use ricci::{decomp, DType, Rng, Tensor};
/// let x = Tensor::randn(&[5, 6, 7], DType::F64, &mut Rng::new(0));
/// let t = decomp::tucker_hosvd(&x, &[2, 3, 4])?;
/// assert_eq!(t.factors[2].shape(), &[7, 4]);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Tucker {
    /// The core `G: [r₀, …, r_{d-1}]`.
    pub core: Tensor,
    /// `Uₙ: [Iₙ, rₙ]` with orthonormal columns.
    pub factors: Vec<Tensor>,
    /// HOOI sweeps run (0 for HOSVD).
    pub iterations: usize,
    /// Whether HOOI's error change fell below `tol` (true for HOSVD).
    pub converged: bool,
}

impl Tucker {
    /// The ranks `(r₀, …, r_{d-1})`.
    ///
    /// ```
    /// # use ricci::{decomp, DType, Rng, Tensor};
    /// let x = Tensor::randn(&[5, 6, 7], DType::F32, &mut Rng::new(0));
    /// assert_eq!(decomp::tucker_hosvd(&x, &[1, 2, 3])?.ranks(), vec![1, 2, 3]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn ranks(&self) -> Vec<usize> {
        self.core.shape().to_vec()
    }

    /// The tensor `G ×₀ U₀ ×₁ … ×_{d-1} U_{d-1}` (differentiable in the core
    /// and factors).
    ///
    /// ```
    /// # use ricci::{decomp::Tucker, DType, Tensor};
    /// let t = Tucker { core: Tensor::ones(&[1, 1, 1], DType::F64),
    ///                  factors: vec![Tensor::ones(&[2, 1], DType::F64); 3],
    ///                  iterations: 0, converged: true };
    /// assert_eq!(t.reconstruct()?.to_vec::<f64>()?, vec![1.0; 8]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn reconstruct(&self) -> Result<Tensor> {
        if self.factors.len() != self.core.rank() {
            return Err(Error::invalid(
                "Tucker::reconstruct",
                format!(
                    "{} factors for a core of shape {:?}",
                    self.factors.len(),
                    self.core.shape()
                ),
            ));
        }
        let mut order: Vec<usize> = (0..self.factors.len()).collect();
        // Grow the smallest expansion first, so intermediates stay small.
        order.sort_by_key(|&n| self.factors[n].shape().first().copied().unwrap_or(0));
        let mut y = self.core.clone();
        for n in order {
            y = mode_product(&y, &self.factors[n], n)?;
        }
        Ok(y)
    }

    /// `‖x − reconstruct()‖_F / ‖x‖_F`, computed directly.
    ///
    /// ```
    /// # use ricci::{decomp, DType, Rng, Tensor};
    /// let x = Tensor::randn(&[4, 5, 6], DType::F64, &mut Rng::new(0));
    /// // Full ranks: exact.
    /// assert!(decomp::tucker_hosvd(&x, &[4, 5, 6])?.relative_error(&x)? < 1e-12);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn relative_error(&self, x: &Tensor) -> Result<f64> {
        relative_error_between("Tucker::relative_error", &self.reconstruct()?, x)
    }

    /// Stored numbers: `∏ rₙ + Σ Iₙ rₙ`.
    ///
    /// ```
    /// # use ricci::{decomp, DType, Rng, Tensor};
    /// let x = Tensor::randn(&[4, 5, 6], DType::F32, &mut Rng::new(0));
    /// assert_eq!(decomp::tucker_hosvd(&x, &[2, 2, 3])?.num_parameters(), 12 + 8 + 10 + 18);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn num_parameters(&self) -> usize {
        self.core.numel() + self.factors.iter().map(Tensor::numel).sum::<usize>()
    }
}

fn check_ranks(op: &'static str, x: &Tensor, ranks: &[usize]) -> Result<()> {
    check_input(op, x, 3)?;
    if ranks.len() != x.rank() {
        return Err(Error::invalid(
            op,
            format!(
                "ranks {ranks:?} has {} entries but the tensor of shape {:?} has {} modes",
                ranks.len(),
                x.shape(),
                x.rank()
            ),
        ));
    }
    for (n, (&r, &size)) in ranks.iter().zip(x.shape()).enumerate() {
        if r == 0 || r > size {
            return Err(Error::invalid(
                op,
                format!(
                    "rank {r} of mode {n} must be in 1..={size} (mode {n} of shape {:?} has size {size})",
                    x.shape()
                ),
            ));
        }
    }
    Ok(())
}

/// `x ×ₘ Uₘᵀ` for every mode `m` in `modes`, largest shrink first.
fn project(x: &Tensor, factors: &[Tensor], modes: &[usize]) -> Result<Tensor> {
    let mut modes = modes.to_vec();
    // Ascending rₘ / Iₘ: the mode that shrinks the tensor most goes first.
    modes.sort_by(|&a, &b| {
        let ratio = |m: usize| factors[m].shape()[1] as f64 / factors[m].shape()[0] as f64;
        ratio(a).total_cmp(&ratio(b))
    });
    let mut y = x.clone();
    for m in modes {
        y = mode_product(&y, &factors[m].t()?, m)?;
    }
    Ok(y)
}

/// The truncated higher-order SVD of `x` (order ≥ 3) with ranks `ranks`
/// (one per mode, `1 ≤ rₙ ≤ Iₙ`).
///
/// ```
/// # use ricci::{decomp, DType, Rng, Tensor};
/// let mut rng = Rng::new(0);
/// // A planted Tucker tensor of ranks (2, 3, 2) is recovered exactly.
/// let core = Tensor::randn(&[2, 3, 2], DType::F64, &mut rng);
/// let us: Vec<Tensor> = [(6, 2), (7, 3), (8, 2)].iter().map(|&(i, r)| Tensor::randn(&[i, r], DType::F64, &mut rng)).collect();
/// let x = decomp::Tucker { core, factors: us, iterations: 0, converged: true }.reconstruct()?;
/// let t = decomp::tucker_hosvd(&x, &[2, 3, 2])?;
/// assert_eq!(t.core.shape(), &[2, 3, 2]);
/// assert!(t.relative_error(&x)? < 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn tucker_hosvd(x: &Tensor, ranks: &[usize]) -> Result<Tucker> {
    check_ranks("tucker_hosvd", x, ranks)?;
    let _no_graph = no_grad();
    let x = x.detach().contiguous();
    let factors = ranks
        .iter()
        .enumerate()
        .map(|(n, &r)| unfolding_basis(&x, n, r))
        .collect::<Result<Vec<_>>>()?;
    let all: Vec<usize> = (0..ranks.len()).collect();
    let core = project(&x, &factors, &all)?;
    Ok(Tucker {
        core,
        factors,
        iterations: 0,
        converged: true,
    })
}

/// Tucker by higher-order orthogonal iteration, started from
/// [`tucker_hosvd`] (TensorLy's `tucker` with `init='svd'`).
///
/// ```
/// # use ricci::{decomp::{self, TuckerParams}, DType, Rng, Tensor};
/// let x = Tensor::randn(&[6, 7, 8], DType::F64, &mut Rng::new(0));
/// let hosvd = decomp::tucker_hosvd(&x, &[2, 2, 2])?;
/// let hooi = decomp::tucker_hooi(&x, &[2, 2, 2], &TuckerParams::default())?;
/// assert!(hooi.relative_error(&x)? <= hosvd.relative_error(&x)? + 1e-12);
/// assert!(hooi.iterations >= 1);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn tucker_hooi(x: &Tensor, ranks: &[usize], params: &TuckerParams) -> Result<Tucker> {
    let op = "tucker_hooi";
    check_ranks(op, x, ranks)?;
    check_tol(op, params.tol)?;
    let _no_graph = no_grad();
    let x = x.detach().contiguous();
    let start = tucker_hosvd(&x, ranks)?;
    let mut factors = start.factors;
    let mut core = start.core;
    let norm_sq = x.square().sum_all().to_f64()?;
    let d = ranks.len();
    let mut errors = Vec::new();
    let mut converged = false;
    let last = d - 1;
    let before_last: Vec<usize> = (0..last).collect();
    for _ in 0..params.max_iter {
        // Modes 0..last all need X ×_last U_lastᵀ, and U_last changes only
        // at the end of the sweep: one product with the full X serves them all.
        let shared = project(&x, &factors, &[last])?;
        for n in 0..last {
            let others: Vec<usize> = before_last.iter().copied().filter(|&m| m != n).collect();
            let y = project(&shared, &factors, &others)?;
            factors[n] = unfolding_basis(&y, n, ranks[n])?;
        }
        let y = project(&x, &factors, &before_last)?;
        factors[last] = unfolding_basis(&y, last, ranks[last])?;
        core = mode_product(&y, &factors[last].t()?, last)?;
        let core_sq = core.square().sum_all().to_f64()?;
        let error = if norm_sq > 0.0 {
            ((norm_sq - core_sq).max(0.0) / norm_sq).sqrt()
        } else {
            0.0
        };
        errors.push(error);
        if let [.., prev, cur] = errors[..] {
            if (prev - cur).abs() < params.tol {
                converged = true;
                break;
            }
        }
    }
    Ok(Tucker {
        core,
        factors,
        iterations: errors.len(),
        converged,
    })
}
