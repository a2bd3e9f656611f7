//! Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019).
//!
//! With bias corrections `c1 = 1 - β1^t`, `c2 = 1 - β2^t`, one step is
//! `m ← β1 m + (1-β1) g`, `v ← β2 v + (1-β2) g²`,
//! `p ← p - (lr / c1) · m / (sqrt(v) / sqrt(c2) + eps)`.
//! Adam adds weight decay to the gradient (`g + wd·p`, an L2 penalty);
//! AdamW decays the weights directly, `p ← p (1 - lr·wd)`, before the step.

use super::{apply_rule, load_buffers, named_buffers, zero_state, Optimizer, Rule};
use crate::autograd::Grads;
use crate::error::Result;
use crate::nn::Var;
use crate::tensor::{Element, Tensor};

/// Hyper-parameters of [`Adam`] and [`AdamW`].
#[derive(Clone, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    /// PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no decay.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adam with L2 weight decay added to the gradient (`torch.optim.Adam`).
pub struct Adam(AdamCore);

/// Adam with decoupled weight decay (`torch.optim.AdamW`).
pub struct AdamW(AdamCore);

struct AdamCore {
    config: AdamConfig,
    decoupled: bool,
    params: Vec<(String, Var)>,
    /// `[exp_avg, exp_avg_sq]` per parameter.
    state: Vec<Vec<Tensor>>,
    step: u64,
}

const BUFFERS: [&str; 2] = ["exp_avg", "exp_avg_sq"];

struct AdamRule {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    bias_correction1: f64,
    bias_correction2_sqrt: f64,
}

impl Rule for AdamRule {
    // Inlined into `apply_rule`'s AVX2 kernel, where the loop vectorises
    // (zipped slices: no bounds checks). Plain multiplies and adds in
    // PyTorch's order, no fused multiply-add, so the steps stay PyTorch's.
    #[inline(always)]
    fn apply<T: Element>(&self, p: &mut [T], g: &[T], state: &mut [&mut [T]]) {
        let [m, v] = state else {
            unreachable!("Adam keeps two buffers")
        };
        let c = |x: f64| T::from_f64(x);
        let (b1, b2, one) = (c(self.beta1), c(self.beta2), T::ONE);
        let decay = c(1.0 - self.lr * self.weight_decay);
        let wd = c(self.weight_decay);
        let step_size = c(self.lr / self.bias_correction1);
        let c2 = c(self.bias_correction2_sqrt);
        let eps = c(self.eps);
        let decoupled = self.decoupled;
        let lanes = p.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut()));
        for ((p, &g), (m, v)) in lanes {
            let mut grad = g;
            if decoupled {
                *p *= decay;
            } else {
                grad += wd * *p;
            }
            *m += (one - b1) * (grad - *m);
            *v = b2 * *v + (one - b2) * grad * grad;
            let denom = v.sqrt() / c2 + eps;
            *p -= step_size * (*m / denom);
        }
    }
}

impl AdamCore {
    fn new(params: Vec<(String, Var)>, config: AdamConfig, decoupled: bool) -> AdamCore {
        let state = zero_state(&params, BUFFERS.len());
        AdamCore {
            config,
            decoupled,
            params,
            state,
            step: 0,
        }
    }

    fn step(&mut self, grads: &Grads) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let cfg = &self.config;
        let rule = AdamRule {
            lr: cfg.lr,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
            decoupled: self.decoupled,
            bias_correction1: 1.0 - cfg.beta1.powi(t),
            bias_correction2_sqrt: (1.0 - cfg.beta2.powi(t)).sqrt(),
        };
        apply_rule("Adam::step", &self.params, &self.state, grads, &rule)
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named_buffers(self.step, &self.params, &self.state, &BUFFERS)
    }

    fn load_state(&mut self, saved: &[(String, Tensor)]) -> Result<()> {
        self.step = load_buffers(&self.params, &self.state, &BUFFERS, saved)?;
        Ok(())
    }
}

macro_rules! adam_optimizer {
    ($name:ident, $decoupled:expr) => {
        impl $name {
            /// An optimizer over `params` (names as `named_parameters` gives them).
            pub fn new(params: Vec<(String, Var)>, config: AdamConfig) -> $name {
                $name(AdamCore::new(params, config, $decoupled))
            }

            pub fn config(&self) -> &AdamConfig {
                &self.0.config
            }

            /// Steps taken so far.
            pub fn steps(&self) -> u64 {
                self.0.step
            }
        }

        impl Optimizer for $name {
            fn step(&mut self, grads: &Grads) -> Result<()> {
                self.0.step(grads)
            }
            fn lr(&self) -> f64 {
                self.0.config.lr
            }
            fn set_lr(&mut self, lr: f64) {
                self.0.config.lr = lr;
            }
            fn state(&self) -> Vec<(String, Tensor)> {
                self.0.state()
            }
            fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
                self.0.load_state(state)
            }
        }
    };
}

adam_optimizer!(Adam, false);
adam_optimizer!(AdamW, true);
