//! Optimizers that update [`Var`] parameters in place from a backward
//! pass's [`Grads`]: [`Sgd`] (momentum, Nesterov, weight decay), [`Adam`]
//! and [`AdamW`] (Loshchilov & Hutter's decoupled weight decay); the
//! learning-rate schedule [`WarmupCosine`]; and [`clip_grad_norm`].
//!
//! The update formulas and their order of floating-point operations follow
//! PyTorch's (`torch.optim`), so a model trained here and one trained there
//! from the same weights and batches follow the same path. Each step works
//! on the parameters' own buffers and the optimizer's state buffers: no
//! allocation per step. The state is a list of named tensors, saved in
//! checkpoints and loaded back for bit-exact resumption.
//!
//! ```
//! use ricci::nn::{Linear, Module};
//! use ricci::optim::{AdamConfig, AdamW, Optimizer};
//! use ricci::{DType, Rng, Tensor};
//! let mut rng = Rng::new(0);
//! let layer = Linear::new(4, 1, true, DType::F64, &mut rng);
//! let mut opt = AdamW::new(layer.named_parameters(), AdamConfig { lr: 0.05, ..AdamConfig::default() });
//! let x = Tensor::randn(&[32, 4], DType::F64, &mut rng);
//! let target = x.sum(-1, true)?;
//! let mse = |l: &Linear| -> ricci::Result<f64> { l.forward(&x)?.sub(&target)?.square().mean_all().to_f64() };
//! let before = mse(&layer)?;
//! for _ in 0..200 {
//!     let loss = layer.forward(&x)?.sub(&target)?.square().mean_all();
//!     opt.step(&loss.backward()?)?;
//! }
//! assert!(mse(&layer)? < before / 100.0);
//! # Ok::<(), ricci::Error>(())
//! ```

mod adam;
mod sgd;

pub use adam::{Adam, AdamConfig, AdamW};
pub use sgd::{Sgd, SgdConfig};

use crate::autograd::Grads;
use crate::error::{Error, Result};
use crate::kernels::simd::{dispatch_kernel, Kernel};
use crate::nn::{sum_squares, Var};
use crate::tensor::{with_dtype, Element, Tensor};
use rayon::prelude::*;

/// What every optimizer offers a training loop.
pub trait Optimizer {
    /// One update of every parameter that has a gradient in `grads`
    /// (parameters without one are left as they are, as in PyTorch).
    fn step(&mut self, grads: &Grads) -> Result<()>;
    fn lr(&self) -> f64;
    fn set_lr(&mut self, lr: f64);
    /// The state as named tensors (for checkpoints): handles to the live
    /// buffers, so write them out (or copy them) before the next step.
    /// The step count is one for the whole optimizer; PyTorch counts per
    /// parameter, which differs only for parameters that sometimes receive
    /// no gradient.
    fn state(&self) -> Vec<(String, Tensor)>;
    /// Restores a state written by [`Optimizer::state`] of the same optimizer
    /// over the same parameters.
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()>;
}

/// Scales all gradients of `params` together so their global L2 norm is at
/// most `max_norm`, as `torch.nn.utils.clip_grad_norm_`: the factor is
/// `max_norm / (norm + 1e-6)` when that is below 1. Returns the norm before
/// clipping.
pub fn clip_grad_norm(grads: &mut Grads, params: &[Var], max_norm: f64) -> Result<f64> {
    if max_norm.is_nan() || max_norm <= 0.0 {
        return Err(Error::invalid(
            "clip_grad_norm",
            format!("max_norm must be > 0, got {max_norm}"),
        ));
    }
    // One task per gradient, the squares added in parameter order (so the
    // norm does not depend on the thread count).
    let present: Vec<&Tensor> = params
        .iter()
        .filter_map(|p| grads.get(p.tensor()))
        .collect();
    let squares: Vec<f64> = present.par_iter().map(|g| sum_squares(g)).collect();
    let total = squares.iter().sum::<f64>().sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for p in params {
            if let Some(g) = grads.get(p.tensor()) {
                let scaled = g.mul_scalar(coef);
                grads.insert(p.tensor(), scaled);
            }
        }
    }
    Ok(total)
}

/// Linear warm-up from 0 to `base_lr` over `warmup_steps`, then a cosine
/// decay to `min_lr` at `total_steps` (constant after).
#[derive(Clone, Debug, PartialEq)]
pub struct WarmupCosine {
    pub base_lr: f64,
    pub min_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl WarmupCosine {
    /// The learning rate for step `step` (counted from 0).
    ///
    /// ```
    /// use ricci::optim::WarmupCosine;
    /// let s = WarmupCosine { base_lr: 1.0, min_lr: 0.1, warmup_steps: 10, total_steps: 110 };
    /// assert_eq!(s.lr(4), 0.5);
    /// assert_eq!(s.lr(9), 1.0);
    /// assert!((s.lr(60) - 0.55).abs() < 1e-12);
    /// assert_eq!(s.lr(500), 0.1);
    /// ```
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + (self.base_lr - self.min_lr) * cosine
    }
}

/// The `step` count of a saved state: a whole number >= 0.
fn saved_step(state: &[(String, Tensor)]) -> Result<u64> {
    let step = state_tensor(state, "step", &[])?.to_f64()?;
    if !(step >= 0.0 && step.fract() == 0.0) {
        return Err(Error::invalid(
            "optimizer state",
            format!("step must be a whole number >= 0, got {step}"),
        ));
    }
    Ok(step as u64)
}

/// Finds `name` in a saved state, checking its shape.
pub(crate) fn state_tensor<'a>(
    state: &'a [(String, Tensor)],
    name: &str,
    shape: &[usize],
) -> Result<&'a Tensor> {
    let t = state
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| Error::invalid("optimizer state", format!("missing tensor '{name}'")))?;
    if t.shape() != shape {
        return Err(Error::invalid(
            "optimizer state",
            format!(
                "tensor '{name}' has shape {:?}, expected {shape:?}",
                t.shape()
            ),
        ));
    }
    Ok(t)
}

/// An elementwise update rule: given a parameter's elements, its gradient
/// and its state buffers (all the same length), updates them in place.
pub(crate) trait Rule: Sync {
    fn apply<T: Element>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]);
}

/// Applies `rule` to every parameter that has a gradient, in parallel over
/// parameters, with `states[i]` the state buffers of parameter `i`.
pub(crate) fn apply_rule(
    op: &'static str,
    params: &[(String, Var)],
    states: &[Vec<Tensor>],
    grads: &Grads,
    rule: &impl Rule,
) -> Result<()> {
    params
        .par_iter()
        .zip(states)
        .try_for_each(|((name, var), state)| {
            let Some(g) = grads.get(var.tensor()) else {
                return Ok(());
            };
            if g.shape() != var.shape() || g.dtype() != var.tensor().dtype() {
                return Err(Error::invalid(
                    op,
                    format!(
                        "gradient of '{name}' is {:?} {:?}, the parameter is {:?} {:?}",
                        g.shape(),
                        g.dtype(),
                        var.shape(),
                        var.tensor().dtype()
                    ),
                ));
            }
            let g = g.contiguous_data();
            let offset = g.layout().offset();
            let n = var.numel();
            let grad_storage = g.storage();
            let mut state_guards: Vec<_> = state.iter().map(|t| t.storage_mut()).collect();
            var.update(|p| {
                with_dtype!(p, T, p => {
                    let grad = &grad_storage.as_slice::<T>().expect("dtype checked")[offset..offset + n];
                    let mut bufs: Vec<&mut [T]> = state_guards
                        .iter_mut()
                        .map(|s| s.as_mut_slice::<T>().expect("state has the parameter's dtype"))
                        .collect();
                    dispatch_kernel(RuleKernel { rule, p: &mut p[..], grad, bufs: &mut bufs });
                })
            });
            Ok(())
        })
}

/// One parameter's update as a [`Kernel`], so the rule's loop is compiled
/// for AVX2 (rules mark `apply` `#[inline(always)]`).
struct RuleKernel<'a, 'b, R, T> {
    rule: &'a R,
    p: &'a mut [T],
    grad: &'a [T],
    bufs: &'a mut [&'b mut [T]],
}

impl<R: Rule, T: Element> Kernel for RuleKernel<'_, '_, R, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.rule.apply(self.p, self.grad, self.bufs);
    }
}

/// Zero-filled state buffers, one per parameter, `k` each.
pub(crate) fn zero_state(params: &[(String, Var)], k: usize) -> Vec<Vec<Tensor>> {
    params
        .iter()
        .map(|(_, v)| {
            (0..k)
                .map(|_| Tensor::zeros(v.shape(), v.tensor().dtype()))
                .collect()
        })
        .collect()
}

/// Restores a saved state into `states` (the buffers `param.suffix` of
/// every parameter) and returns its step count.
pub(crate) fn load_buffers(
    params: &[(String, Var)],
    states: &[Vec<Tensor>],
    suffixes: &[&str],
    saved: &[(String, Tensor)],
) -> Result<u64> {
    let step = saved_step(saved)?;
    for ((name, var), bufs) in params.iter().zip(states) {
        for (suffix, buf) in suffixes.iter().zip(bufs) {
            let t = state_tensor(saved, &format!("{name}.{suffix}"), var.shape())?;
            Var::assign_to(buf, t)?;
        }
    }
    Ok(step)
}

/// The state as saved: the step count, then named handles to every state
/// buffer, `param.suffix`.
pub(crate) fn named_buffers(
    step: u64,
    params: &[(String, Var)],
    states: &[Vec<Tensor>],
    suffixes: &[&str],
) -> Vec<(String, Tensor)> {
    let buffers = params.iter().zip(states).flat_map(|((name, _), bufs)| {
        suffixes
            .iter()
            .zip(bufs)
            .map(move |(s, b)| (format!("{name}.{s}"), b.detach()))
    });
    std::iter::once(("step".to_string(), Tensor::scalar(step as f64)))
        .chain(buffers)
        .collect()
}
