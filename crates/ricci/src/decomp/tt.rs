//! Tensor train by TT-SVD (Oseledets 2011, algorithm 1).
//!
//! Sweep left to right: at step `k` the remainder `C` is reshaped to
//! `[rₖ₋₁ Iₖ, rest]`, its SVD truncated to the smallest rank `rₖ` whose
//! discarded singular values have `‖σ_{>rₖ}‖ ≤ δ`, with
//! `δ = ε / √(d−1) · ‖X‖_F`; `Uₖ` becomes core `k` (`[rₖ₋₁, Iₖ, rₖ]`) and
//! `C ← diag(σ) Vᵀ = Uₖᵀ C` carries on. The cores are left-orthonormal, so
//! the `d − 1` truncation errors add in quadrature and
//! `‖X − X̂‖_F ≤ ε ‖X‖_F`. A `max_rank` caps every `rₖ` (the bound then no
//! longer holds), and singular values below `max(m, n) · eps · σ₁` count
//! as zero, so an exact TT tensor gets its own ranks back.
//!
//! A wide step (`rows ≤ cols`, as the first ones are) uses the Gram
//! matrix `C Cᵀ` and its eigh (`σ² = λ`) when `δ²` is far above the Gram's
//! rounding level; with a tight `ε` it falls back to the SVD.

use super::subspace::GRAM_RATIO;
use super::{check_input, eps_of, relative_error_between};
use crate::autograd::no_grad;
use crate::error::{Error, Result};
use crate::linalg::{eigh, svd_thin};
use crate::tensor::Tensor;

/// Parameters of [`tensor_train`]: a relative error bound, a rank cap, or both.
///
/// ```
/// # use ricci::{decomp::{self, TtParams}, DType, Rng, Tensor};
/// let x = Tensor::randn(&[4, 5, 6, 7], DType::F64, &mut Rng::new(0));
/// let tt = decomp::tensor_train(&x, &TtParams { eps: Some(0.1), max_rank: Some(3) })?;
/// assert!(tt.ranks().iter().all(|&r| r <= 3));
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct TtParams {
    /// Relative Frobenius error bound `ε` (`None`: exact up to rounding).
    pub eps: Option<f64>,
    /// The largest TT rank allowed (`None`: no cap).
    pub max_rank: Option<usize>,
}

/// A tensor train: `X[i₀, …, i_{d-1}] = G₀[:, i₀, :] ⋯ G_{d-1}[:, i_{d-1}, :]`.
///
/// ```
/// # use ricci::{decomp::{self, TtParams}, DType, Rng, Tensor};
/// let x = Tensor::randn(&[4, 5, 6], DType::F64, &mut Rng::new(0));
/// let tt = decomp::tensor_train(&x, &TtParams { eps: None, max_rank: Some(2) })?;
/// assert_eq!(tt.cores[1].shape(), &[2, 5, 2]);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TensorTrain {
    /// Core `k` is `[rₖ₋₁, Iₖ, rₖ]`, with `r₋₁ = r_{d-1} = 1`.
    pub cores: Vec<Tensor>,
}

impl TensorTrain {
    /// The TT ranks `[1, r₀, …, r_{d-2}, 1]`.
    ///
    /// ```
    /// # use ricci::{decomp::{self, TtParams}, DType, Rng, Tensor};
    /// let x = Tensor::randn(&[2, 3, 4], DType::F64, &mut Rng::new(0));
    /// assert_eq!(decomp::tensor_train(&x, &TtParams::default())?.ranks(), vec![1, 2, 4, 1]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn ranks(&self) -> Vec<usize> {
        let mut ranks = vec![self
            .cores
            .first()
            .and_then(|c| c.shape().first().copied())
            .unwrap_or(1)];
        ranks.extend(
            self.cores
                .iter()
                .map(|c| c.shape().get(2).copied().unwrap_or(0)),
        );
        ranks
    }

    /// The full tensor (differentiable in the cores): the cores multiplied
    /// left to right, `[I₀ ⋯ Iₖ, rₖ] · [rₖ, Iₖ₊₁ rₖ₊₁]`.
    ///
    /// ```
    /// # use ricci::{decomp::TensorTrain, DType, Tensor};
    /// let tt = TensorTrain { cores: vec![Tensor::ones(&[1, 2, 3], DType::F64),
    ///                                    Tensor::ones(&[3, 2, 1], DType::F64)] };
    /// assert_eq!(tt.reconstruct()?.to_vec::<f64>()?, vec![3.0; 4]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn reconstruct(&self) -> Result<Tensor> {
        let op = "TensorTrain::reconstruct";
        let shapes: Vec<Vec<usize>> = self.cores.iter().map(|c| c.shape().to_vec()).collect();
        let valid = shapes.iter().all(|s| s.len() == 3)
            && shapes.windows(2).all(|w| w[0][2] == w[1][0])
            && shapes.first().is_some_and(|s| s[0] == 1)
            && shapes.last().is_some_and(|s| s[2] == 1);
        if !valid {
            return Err(Error::invalid(
                op,
                format!(
                    "cores {shapes:?} must be [r, I, r'] with matching ranks and 1 at both ends"
                ),
            ));
        }
        let mut acc = self.cores[0].reshape([shapes[0][1], shapes[0][2]])?;
        for (core, s) in self.cores[1..].iter().zip(&shapes[1..]) {
            let rows = acc.shape()[0] * s[1];
            acc = acc
                .matmul(&core.reshape([s[0], s[1] * s[2]])?)?
                .reshape([rows, s[2]])?;
        }
        let dims: Vec<usize> = shapes.iter().map(|s| s[1]).collect();
        acc.reshape(dims)
    }

    /// `‖x − reconstruct()‖_F / ‖x‖_F`, computed directly.
    ///
    /// ```
    /// # use ricci::{decomp::{self, TtParams}, DType, Rng, Tensor};
    /// let x = Tensor::randn(&[4, 5, 6], DType::F64, &mut Rng::new(0));
    /// let tt = decomp::tensor_train(&x, &TtParams { eps: Some(0.3), max_rank: None })?;
    /// assert!(tt.relative_error(&x)? <= 0.3);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn relative_error(&self, x: &Tensor) -> Result<f64> {
        relative_error_between("TensorTrain::relative_error", &self.reconstruct()?, x)
    }

    /// Stored numbers: `Σₖ rₖ₋₁ Iₖ rₖ`.
    ///
    /// ```
    /// # use ricci::{decomp::{self, TtParams}, DType, Rng, Tensor};
    /// let x = Tensor::randn(&[4, 5, 6], DType::F64, &mut Rng::new(0));
    /// let tt = decomp::tensor_train(&x, &TtParams { eps: None, max_rank: Some(2) })?;
    /// assert_eq!(tt.ranks(), vec![1, 2, 2, 1]);
    /// assert_eq!(tt.num_parameters(), 4 * 2 + 2 * 5 * 2 + 2 * 6);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn num_parameters(&self) -> usize {
        self.cores.iter().map(Tensor::numel).sum()
    }
}

/// The TT-SVD of `x` (order ≥ 3) with error bound `params.eps` and/or rank
/// cap `params.max_rank` (the method is described at the top of `decomp/tt.rs`).
///
/// ```
/// # use ricci::{decomp::{self, TtParams}, DType, Rng, Tensor};
/// let x = Tensor::randn(&[3, 4, 5, 6], DType::F64, &mut Rng::new(0));
/// // eps = 0 keeps everything: exact, ranks limited only by the shape.
/// let tt = decomp::tensor_train(&x, &TtParams { eps: Some(0.0), max_rank: None })?;
/// assert_eq!(tt.ranks(), vec![1, 3, 12, 6, 1]);
/// assert!(tt.relative_error(&x)? < 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn tensor_train(x: &Tensor, params: &TtParams) -> Result<TensorTrain> {
    let op = "tensor_train";
    check_input(op, x, 3)?;
    let eps = params.eps.unwrap_or(0.0);
    if !eps.is_finite() || eps < 0.0 {
        return Err(Error::invalid(
            op,
            format!("eps must be a finite number >= 0, got {eps}"),
        ));
    }
    if params.max_rank == Some(0) {
        return Err(Error::invalid(op, "max_rank must be at least 1, got 0"));
    }
    let _no_graph = no_grad();
    let x = x.detach().contiguous();
    let shape = x.shape().to_vec();
    let d = shape.len();
    let delta = eps / ((d - 1) as f64).sqrt() * x.norm_all().to_f64()?;
    let mut cores = Vec::with_capacity(d);
    let mut c = x;
    let mut r_prev = 1;
    for &size in &shape[..d - 1] {
        let rows = r_prev * size;
        let cols = c.numel() / rows;
        let (u, next) = truncated_step(&c.reshape([rows, cols])?, delta, params.max_rank)?;
        let r = u.shape()[1];
        cores.push(u.reshape([r_prev, size, r])?);
        c = next;
        r_prev = r;
    }
    cores.push(c.reshape([r_prev, shape[d - 1], 1])?);
    Ok(TensorTrain { cores })
}

/// Truncates `m: [rows, cols]` to `U: [rows, r]` (orthonormal) and
/// `Uᵀ m: [r, cols]`.
fn truncated_step(m: &Tensor, delta: f64, max_rank: Option<usize>) -> Result<(Tensor, Tensor)> {
    let (rows, cols) = (m.shape()[0], m.shape()[1]);
    let eps = eps_of(m);
    if rows * GRAM_RATIO <= cols {
        let gram = eigh(&m.matmul(&m.t()?)?)?;
        // Descending σ² = λ (clamped: rounding can make tiny λ negative).
        let lambda: Vec<f64> = gram
            .values
            .to_vec_f64()
            .into_iter()
            .rev()
            .map(|l| l.max(0.0))
            .collect();
        let lmax = lambda.first().copied().unwrap_or(0.0);
        // Rounding level of the Gram's eigenvalues; σ² below it is noise.
        let floor = 100.0 * rows as f64 * eps * lmax;
        if delta * delta >= 10.0 * rows as f64 * floor {
            let r = rank_for(&lambda, delta, max_rank, floor);
            let idx: Vec<usize> = (0..r).map(|k| rows - 1 - k).collect();
            let u = gram
                .vectors
                .index_select(1, &Tensor::from_indices(&idx, &[r], m.dtype())?)?;
            let next = u.t()?.matmul(m)?;
            return Ok((u, next));
        }
    }
    let svd = svd_thin(m)?;
    let s = svd.s.to_vec_f64();
    let lambda: Vec<f64> = s.iter().map(|v| v * v).collect();
    let smax = s.first().copied().unwrap_or(0.0);
    let zero = rows.max(cols) as f64 * eps * smax;
    let r = rank_for(&lambda, delta, max_rank, zero * zero);
    let u = svd.u.narrow(1, 0, r)?;
    let next = svd
        .vt
        .narrow(0, 0, r)?
        .mul(&svd.s.narrow(0, 0, r)?.unsqueeze(1)?)?;
    Ok((u, next))
}

/// The smallest `r ≥ 1` with `Σ_{i≥r} λᵢ ≤ δ²` (λ descending), keeping no
/// `λ ≤ zero`, capped by `max_rank`.
fn rank_for(lambda: &[f64], delta: f64, max_rank: Option<usize>, zero: f64) -> usize {
    let mut tail = 0.0;
    let mut r = lambda.len();
    while r > 0 && tail + lambda[r - 1] <= delta * delta {
        tail += lambda[r - 1];
        r -= 1;
    }
    let nonzero = lambda.iter().take_while(|&&l| l > zero).count();
    r.min(nonzero).min(max_rank.unwrap_or(usize::MAX)).max(1)
}
