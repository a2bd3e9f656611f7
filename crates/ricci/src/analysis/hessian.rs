//! The Hessian of a scalar loss over a set of parameters, used only through
//! Hessian-vector products: `H v` is the gradient of the directional
//! derivative `⟨∇L, v⟩` (Pearlmutter 1994), so the `n x n` Hessian is never
//! formed and one product costs a small multiple of a gradient.
//!
//! [`Hessian::new`] evaluates the loss once with its graph recorded. The
//! first product pushes `v` forward through that graph (forward mode,
//! recorded), which gives `⟨∇L, v⟩` without ever forming `∇L`, then
//! differentiates the result (reverse over forward). For an MLP's first
//! layer `x W₁ᵀ` that is two large products after the forward, `x V₁ᵀ` and
//! one back to `W₁`, as JAX's compiled forward-over-reverse; reverse over
//! reverse would also form `W₁`'s gradient `gᵀ x`, whose value nobody
//! reads. From the second product on, the gradient is recorded once and
//! every product differentiates it again (reverse over reverse): what the
//! tangent rules recompute per product (attention probabilities, GELU's
//! `Φ` and `φ`) is then computed once for all of them. A GPT's Lanczos and
//! trace run (`ricci analyze`) took 2.5-2.7 s with every product reverse
//! over forward, 1.7-1.8 s so. On top of the products:
//!
//! - extreme eigenpairs by Lanczos with full reorthogonalisation
//!   ([`Hessian::eigenpairs`]) or power iteration ([`Hessian::power_iteration`]);
//! - the trace by Hutchinson's estimator `tr H = E[zᵀ H z]` with Rademacher
//!   probes `z` (Hutchinson 1990), reported with its standard error
//!   ([`Hessian::trace`]);
//! - the eigenvalue density by stochastic Lanczos quadrature (Lin, Saad &
//!   Yang 2016; Ghorbani, Krishnan & Xiao 2019; PyHessian, Yao et al. 2020):
//!   the spectral measure seen from each Gaussian probe, approximated by the
//!   Gauss rule of a short Lanczos run, averaged over probes and smoothed
//!   with a Gaussian kernel ([`Hessian::density`], [`SpectralDensity`]).
//!
//! Vectors in parameter space are "flat": the parameters' elements in the
//! order given, each tensor in row-major order.

use crate::autograd::{forward_tangents, grad_of_allow_unused, set_grad_enabled, sum_of_dots};
use crate::error::{Error, Result};
use crate::linalg::{self, Lanczos, LanczosParams, PowerIteration};
use crate::tensor::{DType, Rng, Tensor};

/// The Hessian of a loss at fixed parameter values, as an operator.
///
/// ```
/// use ricci::{Tensor, analysis::Hessian};
/// // L(w) = Σ wᵢ⁴ / 4 has the Hessian diag(3 wᵢ²).
/// let w = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?.set_requires_grad(true);
/// let h = Hessian::new(|| Ok(w.powf(4.0).sum_all().div_scalar(4.0)), &[w.clone()])?;
/// let hv = h.hvp_flat(&Tensor::from_vec(vec![1.0f64, 1.0], &[2])?)?;
/// assert_eq!(hv.to_vec::<f64>()?, vec![3.0, 12.0]);
/// let top = h.eigenpairs(&Default::default())?;
/// assert!((top.values.to_vec::<f64>()?[0] - 12.0).abs() < 1e-9);
/// # Ok::<(), ricci::Error>(())
/// ```
pub struct Hessian {
    params: Vec<Tensor>,
    /// The loss with its graph recorded.
    value: Tensor,
    /// `∇L` with its backward pass recorded, made at the second product;
    /// `None` where the loss does not depend on a parameter.
    grads: std::sync::OnceLock<Vec<Option<Tensor>>>,
    /// Whether a product has been made (the first is reverse over forward).
    used: std::sync::atomic::AtomicBool,
    loss: f64,
    dim: usize,
    dtype: DType,
}

impl std::fmt::Debug for Hessian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hessian")
            .field("dim", &self.dim)
            .field("parameters", &self.params.len())
            .field("loss", &self.loss)
            .finish()
    }
}

impl Hessian {
    /// Evaluates `loss` with gradient recording on, keeping the graph for
    /// Hessian-vector products with respect to `params`.
    /// Every parameter must require grad (model parameters do), all of one
    /// dtype; the loss must be a scalar.
    pub fn new(loss: impl FnOnce() -> Result<Tensor>, params: &[Tensor]) -> Result<Hessian> {
        let name = "Hessian";
        let first = params
            .first()
            .ok_or_else(|| Error::invalid(name, "no parameters given"))?;
        for (i, p) in params.iter().enumerate() {
            if !p.requires_grad() {
                return Err(Error::invalid(
                    name,
                    format!(
                        "parameter {i} (shape {:?}) does not require grad; call set_requires_grad(true) or pass model parameters",
                        p.shape()
                    ),
                ));
            }
            first.same_dtype(name, p)?;
        }
        let _mode = set_grad_enabled(true);
        let value = loss()?;
        if value.numel() != 1 {
            return Err(Error::invalid(
                name,
                format!(
                    "the loss must be a scalar, it has shape {:?}",
                    value.shape()
                ),
            ));
        }
        first.same_dtype(name, &value)?;
        Ok(Hessian {
            params: params.to_vec(),
            loss: value.to_f64()?,
            value,
            grads: std::sync::OnceLock::new(),
            used: std::sync::atomic::AtomicBool::new(false),
            dim: params.iter().map(Tensor::numel).sum(),
            dtype: first.dtype(),
        })
    }

    /// The number of parameters `n` (the Hessian is `n x n`).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The loss at the parameters.
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// The gradient `∇L`, one tensor per parameter (a backward pass
    /// through the recorded loss, not recorded itself).
    pub fn gradient(&self) -> Result<Vec<Tensor>> {
        let grads = match self.grads.get() {
            Some(g) => g.iter().map(|g| g.as_ref().map(Tensor::detach)).collect(),
            None => {
                let refs: Vec<&Tensor> = self.params.iter().collect();
                grad_of_allow_unused(&self.value, &refs, None, false)?
            }
        };
        Ok(grads
            .into_iter()
            .zip(&self.params)
            .map(|(g, p)| g.unwrap_or_else(|| p.zeros_like()))
            .collect())
    }

    /// `H v` for `v` given as one tensor per parameter (same shapes).
    pub fn hvp(&self, v: &[Tensor]) -> Result<Vec<Tensor>> {
        let name = "Hessian::hvp";
        if v.len() != self.params.len() {
            return Err(Error::invalid(
                name,
                format!(
                    "{} vectors given for {} parameters",
                    v.len(),
                    self.params.len()
                ),
            ));
        }
        let mut directions = Vec::with_capacity(v.len());
        for (p, vi) in self.params.iter().zip(v) {
            if p.shape() != vi.shape() {
                return Err(Error::shape(name, p.shape(), vi.shape()));
            }
            p.same_dtype(name, vi)?;
            directions.push(vi.detach());
        }
        let first = !self.used.swap(true, std::sync::atomic::Ordering::Relaxed);
        // ⟨∇L, v⟩, recorded so that it can be differentiated: by forward
        // mode for a first product, else through the recorded gradient.
        let slope = {
            let _mode = set_grad_enabled(true);
            match self.grads.get() {
                None if first => {
                    let seeds: Vec<(&Tensor, &Tensor)> =
                        self.params.iter().zip(&directions).collect();
                    forward_tangents(&[&self.value], &seeds)?.remove(0)
                }
                _ => self.slope_through_gradient(&directions)?,
            }
        };
        let zeros = || self.params.iter().map(Tensor::zeros_like).collect();
        let Some(slope) = slope else {
            return Ok(zeros());
        };
        let refs: Vec<&Tensor> = self.params.iter().collect();
        let hv = grad_of_allow_unused(&slope, &refs, None, false)?;
        Ok(hv
            .into_iter()
            .zip(&self.params)
            .map(|(h, p)| h.unwrap_or_else(|| p.zeros_like()))
            .collect())
    }

    /// `Σᵢ ⟨∇ᵢL, vᵢ⟩` through the recorded gradient (made on first use);
    /// `None` if the loss depends on no parameter.
    fn slope_through_gradient(&self, v: &[Tensor]) -> Result<Option<Tensor>> {
        let grads = match self.grads.get() {
            Some(g) => g,
            None => {
                let refs: Vec<&Tensor> = self.params.iter().collect();
                let g = grad_of_allow_unused(&self.value, &refs, None, true)?;
                self.grads.get_or_init(|| g)
            }
        };
        sum_of_dots(
            grads
                .iter()
                .zip(v)
                .filter_map(|(g, vi)| g.as_ref().map(|g| (g, vi))),
        )
    }

    /// `H v` for a flat vector `v: [n]` (see the module doc), as a flat `[n]`.
    pub fn hvp_flat(&self, v: &Tensor) -> Result<Tensor> {
        flatten(&self.hvp(&self.unflatten(v)?)?)
    }

    /// Splits a flat `[n]` vector into views shaped like the parameters.
    pub fn unflatten(&self, v: &Tensor) -> Result<Vec<Tensor>> {
        if v.rank() != 1 || v.numel() != self.dim {
            return Err(Error::invalid(
                "Hessian::hvp_flat",
                format!(
                    "expected a flat vector of shape [{}] (one entry per parameter), got {:?}",
                    self.dim,
                    v.shape()
                ),
            ));
        }
        let mut offset = 0;
        self.params
            .iter()
            .map(|p| {
                let part = v.narrow(0, offset, p.numel())?.reshape(p.shape().to_vec());
                offset += p.numel();
                part
            })
            .collect()
    }

    /// The `params.k` extreme eigenpairs (largest by default) by Lanczos
    /// with full reorthogonalisation; eigenvectors are flat (`[n, k]`).
    /// `params.dtype` is replaced by the parameters' dtype.
    pub fn eigenpairs(&self, params: &LanczosParams) -> Result<Lanczos> {
        let params = LanczosParams {
            dtype: self.dtype,
            ..params.clone()
        };
        linalg::lanczos(|v| self.hvp_flat(v), self.dim, &params)
    }

    /// The eigenvalue of largest magnitude by power iteration.
    pub fn power_iteration(&self, params: &LanczosParams) -> Result<PowerIteration> {
        let params = LanczosParams {
            dtype: self.dtype,
            ..params.clone()
        };
        linalg::power_iteration(|v| self.hvp_flat(v), self.dim, &params)
    }

    /// Hutchinson's estimate of `tr H` from `params.probes` Rademacher
    /// probes `z` (entries ±1): the mean of `zᵀ H z`, whose variance is
    /// `2 Σ_{i≠j} H_ij²` per probe, with the standard error of that mean.
    pub fn trace(&self, params: &TraceParams) -> Result<Trace> {
        if params.probes < 2 {
            return Err(Error::invalid(
                "Hessian::trace",
                format!(
                    "at least 2 probes are needed for a standard error, got {}",
                    params.probes
                ),
            ));
        }
        let mut rng = Rng::new(params.seed);
        let samples = (0..params.probes)
            .map(|_| {
                let z: Vec<f64> = (0..self.dim)
                    .map(|_| if rng.below(2) == 0 { -1.0 } else { 1.0 })
                    .collect();
                let z = Tensor::from_vec(z, &[self.dim])?.to_dtype(self.dtype);
                self.hvp_flat(&z)?.mul(&z)?.sum_all().to_f64()
            })
            .collect::<Result<Vec<f64>>>()?;
        let m = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / m;
        let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (m - 1.0);
        Ok(Trace {
            estimate: mean,
            std_error: (var / m).sqrt(),
            samples,
        })
    }

    /// The eigenvalue density by stochastic Lanczos quadrature:
    /// `params.probes` Gaussian probes, `params.steps` Lanczos steps each.
    pub fn density(&self, params: &DensityParams) -> Result<SpectralDensity> {
        if params.probes == 0 || params.steps == 0 {
            return Err(Error::invalid(
                "Hessian::density",
                format!(
                    "probes and steps must be positive, got {} and {}",
                    params.probes, params.steps
                ),
            ));
        }
        let mut rng = Rng::new(params.seed);
        let mut nodes = Vec::with_capacity(params.probes);
        let mut weights = Vec::with_capacity(params.probes);
        let mut matvecs = 0;
        for _ in 0..params.probes {
            let v = Tensor::randn(&[self.dim], self.dtype, &mut rng);
            let q = linalg::lanczos_quadrature(|x| self.hvp_flat(x), &v, params.steps)?;
            matvecs += q.matvecs;
            nodes.push(q.nodes);
            weights.push(q.weights);
        }
        Ok(SpectralDensity {
            nodes,
            weights,
            matvecs,
        })
    }
}

/// The tensors' elements as one flat vector, each tensor in row-major
/// order (the inverse of [`Hessian::unflatten`]).
///
/// ```
/// use ricci::{analysis::flatten, DType, Tensor};
/// let v = flatten(&[Tensor::ones(&[2, 2], DType::F32), Tensor::zeros(&[3], DType::F32)])?;
/// assert_eq!(v.to_vec::<f32>()?, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn flatten(parts: &[Tensor]) -> Result<Tensor> {
    let flat: Vec<Tensor> = parts
        .iter()
        .map(|t| t.reshape([t.numel()]))
        .collect::<Result<_>>()?;
    Tensor::cat(&flat.iter().collect::<Vec<_>>(), 0)
}

/// Parameters of [`Hessian::trace`].
#[derive(Clone, Debug)]
pub struct TraceParams {
    /// Rademacher probes (each one Hessian-vector product).
    pub probes: usize,
    pub seed: u64,
}

impl Default for TraceParams {
    fn default() -> Self {
        TraceParams {
            probes: 100,
            seed: 0,
        }
    }
}

/// Hutchinson's trace estimate ([`Hessian::trace`]).
#[derive(Clone, Debug)]
pub struct Trace {
    /// The mean of `zᵀ H z` over the probes.
    pub estimate: f64,
    /// The standard error of that mean (sample standard deviation / √probes).
    pub std_error: f64,
    /// `zᵀ H z` for each probe.
    pub samples: Vec<f64>,
}

/// Parameters of [`Hessian::density`].
#[derive(Clone, Debug)]
pub struct DensityParams {
    /// Random start vectors (each one Lanczos run).
    pub probes: usize,
    /// Lanczos steps per probe (Hessian-vector products; the Gauss rule has
    /// this many nodes).
    pub steps: usize,
    pub seed: u64,
}

impl Default for DensityParams {
    fn default() -> Self {
        DensityParams {
            probes: 4,
            steps: 60,
            seed: 0,
        }
    }
}

/// An eigenvalue density from stochastic Lanczos quadrature: one Gauss rule
/// (nodes and weights summing to 1) per probe. The density is
/// `φ(t) = (1/P) Σ_p Σ_j w_pj g_σ(t − θ_pj)`, with `g_σ` the normal density
/// of standard deviation `σ`; it integrates to 1 (a probability density of
/// eigenvalues: multiply by `n` for a count).
///
/// ```
/// use ricci::analysis::SpectralDensity;
/// let d = SpectralDensity::from_rules(vec![vec![-1.0, 2.0]], vec![vec![0.25, 0.75]])?;
/// let (grid, phi) = d.curve(2001, 0.05);
/// let dt = grid[1] - grid[0];
/// assert!((phi.iter().sum::<f64>() * dt - 1.0).abs() < 1e-3);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SpectralDensity {
    /// Ritz values of each probe's Lanczos run.
    pub nodes: Vec<Vec<f64>>,
    /// Their Gauss weights.
    pub weights: Vec<Vec<f64>>,
    /// Hessian-vector products made in all.
    pub matvecs: usize,
}

impl SpectralDensity {
    /// A density from explicit Gauss rules (one `(nodes, weights)` per probe).
    pub fn from_rules(nodes: Vec<Vec<f64>>, weights: Vec<Vec<f64>>) -> Result<SpectralDensity> {
        let ok = !nodes.is_empty()
            && nodes.len() == weights.len()
            && nodes.iter().zip(&weights).all(|(n, w)| n.len() == w.len());
        if !ok {
            return Err(Error::invalid(
                "SpectralDensity",
                "nodes and weights must be non-empty lists of equal-length rules",
            ));
        }
        Ok(SpectralDensity {
            nodes,
            weights,
            matvecs: 0,
        })
    }

    /// The smallest and largest node (the range where the density lives).
    pub fn range(&self) -> (f64, f64) {
        self.nodes
            .iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            })
    }

    /// `φ(t)` at each point of `grid` with kernel width `sigma`.
    pub fn evaluate(&self, grid: &[f64], sigma: f64) -> Vec<f64> {
        let probes = self.nodes.len() as f64;
        let norm = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt() * probes);
        grid.iter()
            .map(|&t| {
                let mut acc = 0.0;
                for (ns, ws) in self.nodes.iter().zip(&self.weights) {
                    for (&x, &w) in ns.iter().zip(ws) {
                        let z = (t - x) / sigma;
                        acc += w * (-0.5 * z * z).exp();
                    }
                }
                acc * norm
            })
            .collect()
    }

    /// `points` evenly spaced grid points covering the nodes with a margin
    /// of `6 σ` on each side (so the curve holds all but ~1e-9 of the mass),
    /// and the density on them.
    pub fn curve(&self, points: usize, sigma: f64) -> (Vec<f64>, Vec<f64>) {
        let (lo, hi) = self.range();
        let (lo, hi) = (lo - 6.0 * sigma, hi + 6.0 * sigma);
        let points = points.max(2);
        let step = (hi - lo) / (points - 1) as f64;
        let grid: Vec<f64> = (0..points).map(|i| lo + step * i as f64).collect();
        let phi = self.evaluate(&grid, sigma);
        (grid, phi)
    }
}
