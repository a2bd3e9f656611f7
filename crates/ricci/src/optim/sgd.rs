//! Stochastic gradient descent with momentum (as `torch.optim.SGD`):
//! `g ← g + wd·p`; `b ← μ b + (1 - dampening) g` (`b = g` on the first
//! step); `g ← g + μ b` with Nesterov, else `g ← b`; `p ← p - lr·g`.

use super::{apply_rule, load_buffers, named_buffers, zero_state, Optimizer, Rule};
use crate::autograd::Grads;
use crate::error::{Error, Result};
use crate::nn::Var;
use crate::tensor::{Element, Tensor};

/// Hyper-parameters of [`Sgd`].
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

/// SGD with optional momentum, Nesterov momentum and weight decay.
pub struct Sgd {
    config: SgdConfig,
    params: Vec<(String, Var)>,
    /// `[momentum_buffer]` per parameter.
    state: Vec<Vec<Tensor>>,
    step: u64,
}

const BUFFERS: [&str; 1] = ["momentum_buffer"];

struct SgdRule<'a> {
    config: &'a SgdConfig,
    first: bool,
}

impl Rule for SgdRule<'_> {
    // Inlined into `apply_rule`'s AVX2 kernel.
    #[inline(always)]
    fn apply<T: Element>(&self, p: &mut [T], g: &[T], state: &mut [&mut [T]]) {
        let [buf] = state else {
            unreachable!("SGD keeps one buffer")
        };
        let c = |x: f64| T::from_f64(x);
        let cfg = self.config;
        let (lr, mu, wd, damp) = (
            c(cfg.lr),
            c(cfg.momentum),
            c(cfg.weight_decay),
            c(1.0 - cfg.dampening),
        );
        for i in 0..p.len() {
            let mut grad = g[i];
            if cfg.weight_decay != 0.0 {
                grad += wd * p[i];
            }
            if cfg.momentum != 0.0 {
                buf[i] = if self.first {
                    grad
                } else {
                    mu * buf[i] + damp * grad
                };
                grad = if cfg.nesterov {
                    grad + mu * buf[i]
                } else {
                    buf[i]
                };
            }
            p[i] -= lr * grad;
        }
    }
}

impl Sgd {
    /// Fails for Nesterov momentum without momentum or with dampening, as PyTorch does.
    pub fn new(params: Vec<(String, Var)>, config: SgdConfig) -> Result<Sgd> {
        if config.nesterov && (config.momentum <= 0.0 || config.dampening != 0.0) {
            return Err(Error::invalid(
                "Sgd",
                "Nesterov momentum needs momentum > 0 and zero dampening",
            ));
        }
        let state = zero_state(&params, 1);
        Ok(Sgd {
            config,
            params,
            state,
            step: 0,
        })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        let rule = SgdRule {
            config: &self.config,
            first: self.step == 0,
        };
        apply_rule("Sgd::step", &self.params, &self.state, grads, &rule)?;
        self.step += 1;
        Ok(())
    }
    fn lr(&self) -> f64 {
        self.config.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        named_buffers(self.step, &self.params, &self.state, &BUFFERS)
    }
    fn load_state(&mut self, saved: &[(String, Tensor)]) -> Result<()> {
        self.step = load_buffers(&self.params, &self.state, &BUFFERS, saved)?;
        Ok(())
    }
}
