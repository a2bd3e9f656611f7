//! The standard layers. Each forward is a handful of differentiable ops.

use std::sync::Mutex;

use super::{init, prefixed, Lora, Module, Var};
use crate::error::{Error, Result};
use crate::ops::linear;
use crate::tensor::{DType, Rng, Tensor};

/// `y = x Wᵀ + b` over the last dim (PyTorch's `nn.Linear`; weight `[out, in]`).
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Var,
    pub bias: Option<Var>,
    /// A LoRA adapter ([`Linear::add_lora`]); while present the base
    /// weight and bias are frozen (no gradient reaches them).
    pub lora: Option<Lora>,
}

impl Linear {
    /// PyTorch's default initialisation: weight and bias from U[-k, k], `k = 1/sqrt(in)`.
    pub fn new(
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Linear {
        let k = 1.0 / (in_features.max(1) as f64).sqrt();
        let weight = Var::new(&init::uniform(
            &[out_features, in_features],
            -k,
            k,
            dtype,
            rng,
        ));
        let bias = bias.then(|| Var::new(&init::uniform(&[out_features], -k, k, dtype, rng)));
        Linear {
            weight,
            bias,
            lora: None,
        }
    }

    /// A layer with the given weight `[out, in]` and optional bias `[out]`.
    pub fn from_weights(weight: &Tensor, bias: Option<&Tensor>) -> Result<Linear> {
        if weight.rank() != 2 {
            return Err(Error::invalid(
                "Linear",
                format!("weight must be [out, in], got {:?}", weight.shape()),
            ));
        }
        if let Some(b) = bias {
            if b.shape() != [weight.shape()[0]] {
                return Err(Error::shape("Linear", weight.shape(), b.shape()));
            }
        }
        Ok(Linear {
            weight: Var::new(weight),
            bias: bias.map(Var::new),
            lora: None,
        })
    }

    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Attaches a LoRA adapter of rank `rank` and scale `alpha / rank`
    /// (Hu et al. 2021): `A: [rank, in]` uniform with PyTorch's `Linear`
    /// bound (as PEFT initialises it), `B: [out, rank]` zero, so the layer's
    /// output is unchanged until `B` is trained. The base weight and bias
    /// are frozen from now on; the adapter's parameters are named
    /// `lora_a`, `lora_b`.
    ///
    /// ```
    /// use ricci::nn::{Linear, Module};
    /// use ricci::{DType, Rng, Tensor};
    /// let mut rng = Rng::new(0);
    /// let mut layer = Linear::new(16, 8, true, DType::F64, &mut rng);
    /// let x = Tensor::randn(&[4, 16], DType::F64, &mut rng);
    /// let before = layer.forward(&x)?;
    /// layer.add_lora(2, 4.0, &mut rng)?;
    /// assert_eq!(layer.forward(&x)?.to_vec::<f64>()?, before.to_vec::<f64>()?);
    /// let grads = layer.forward(&x)?.square().sum_all().backward()?;
    /// assert!(grads.get(layer.weight.tensor()).is_none()); // frozen
    /// let lora = layer.lora.as_ref().unwrap();
    /// // B = 0 makes A's first gradient zero; B's is not.
    /// assert!(grads.get(lora.a.tensor()).unwrap().to_vec::<f64>()?.iter().all(|g| *g == 0.0));
    /// assert!(grads.get(lora.b.tensor()).unwrap().to_vec::<f64>()?.iter().any(|g| *g != 0.0));
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn add_lora(&mut self, rank: usize, alpha: f64, rng: &mut Rng) -> Result<()> {
        let (out, inp) = (self.out_features(), self.in_features());
        if rank == 0 || rank > inp.min(out) {
            return Err(Error::invalid(
                "Linear::add_lora",
                format!(
                    "rank {rank} is out of range for a layer of shape [{out}, {inp}] (1..={})",
                    inp.min(out)
                ),
            ));
        }
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(Error::invalid(
                "Linear::add_lora",
                format!("alpha must be positive, got {alpha}"),
            ));
        }
        let dtype = self.weight.tensor().dtype();
        let k = 1.0 / (inp as f64).sqrt();
        self.lora = Some(Lora {
            a: Var::new(&init::uniform(&[rank, inp], -k, k, dtype, rng)),
            b: Var::new(&Tensor::zeros(&[out, rank], dtype)),
            scale: alpha / rank as f64,
        });
        Ok(())
    }

    /// Folds the adapter into the weight, `W + (α/r) B A`, and removes it:
    /// the layer computes the same function as one dense map again.
    pub fn merge_lora(&mut self) -> Result<()> {
        if let Some(lora) = self.lora.take() {
            let _off = crate::no_grad();
            let delta = lora
                .b
                .tensor()
                .matmul(lora.a.tensor())?
                .mul_scalar(lora.scale);
            self.weight.assign(&self.weight.tensor().add(&delta)?)?;
        }
        Ok(())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.lora {
            None => linear(x, self.weight.tensor(), self.bias.as_ref().map(Var::tensor)),
            Some(lora) => {
                let bias = self.bias.as_ref().map(|b| b.tensor().detach());
                let base = linear(x, &self.weight.tensor().detach(), bias.as_ref())?;
                base.add(&lora.forward(x)?)
            }
        }
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        if let Some(lora) = &self.lora {
            p.extend(lora.named_parameters());
        }
        p
    }
}

/// A lookup table `[vocab, dim]`: ids of any shape give `ids.shape() + [dim]`.
#[derive(Clone, Debug)]
pub struct Embedding {
    pub weight: Var,
}

impl Embedding {
    /// Weights from N(0, 1), as PyTorch's `nn.Embedding`.
    pub fn new(vocab: usize, dim: usize, dtype: DType, rng: &mut Rng) -> Embedding {
        Embedding {
            weight: Var::new(&init::normal(&[vocab, dim], 0.0, 1.0, dtype, rng)),
        }
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.weight.tensor().embedding(ids)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        vec![("weight".to_string(), self.weight.clone())]
    }
}

/// Ba et al. (2016): normalise over the last dim to zero mean and unit
/// variance (biased), then scale and shift.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Var,
    pub bias: Option<Var>,
    pub eps: f64,
}

impl LayerNorm {
    /// Weight ones, bias zeros, as PyTorch.
    pub fn new(dim: usize, eps: f64, bias: bool, dtype: DType) -> LayerNorm {
        LayerNorm {
            weight: Var::new(&Tensor::ones(&[dim], dtype)),
            bias: bias.then(|| Var::new(&Tensor::zeros(&[dim], dtype))),
            eps,
        }
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.layer_norm(
            Some(self.weight.tensor()),
            self.bias.as_ref().map(Var::tensor),
            self.eps,
        )
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}

/// Zhang & Sennrich (2019): `x / sqrt(mean(x²) + eps) * weight` over the last dim.
#[derive(Clone, Debug)]
pub struct RmsNorm {
    pub weight: Var,
    pub eps: f64,
}

impl RmsNorm {
    pub fn new(dim: usize, eps: f64, dtype: DType) -> RmsNorm {
        RmsNorm {
            weight: Var::new(&Tensor::ones(&[dim], dtype)),
            eps,
        }
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let ms = x.square().mean(-1, true)?;
        x.mul(&ms.add_scalar(self.eps).rsqrt())?
            .mul(self.weight.tensor())
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        vec![("weight".to_string(), self.weight.clone())]
    }
}

/// Srivastava et al. (2014): in training, zeroes each element with
/// probability `p` and scales the rest by `1 / (1 - p)`; the identity in
/// evaluation. Masks come from the layer's own seeded generator.
#[derive(Debug)]
pub struct Dropout {
    pub p: f64,
    training: bool,
    rng: Mutex<Rng>,
}

impl Dropout {
    pub fn new(p: f64, seed: u64) -> Result<Dropout> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                "Dropout",
                format!("p must lie in [0, 1), got {p}"),
            ));
        }
        Ok(Dropout {
            p,
            training: true,
            rng: Mutex::new(Rng::new(seed)),
        })
    }
}

impl Clone for Dropout {
    fn clone(&self) -> Self {
        let rng = self
            .rng
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        Dropout {
            p: self.p,
            training: self.training,
            rng: Mutex::new(rng),
        }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training || self.p == 0.0 {
            return Ok(x.clone());
        }
        let u = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            Tensor::rand(x.shape(), x.dtype(), &mut rng)
        };
        let keep = 1.0 - self.p;
        // mask / keep is 0 or 1/keep; it is data, not part of the graph.
        let scale = u.lt_scalar(keep).mul_scalar(1.0 / keep);
        x.mul(&scale)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        Vec::new()
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// The feed-forward non-linearity of an [`Mlp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Exact GELU, `x Φ(x)` (PyTorch's `nn.GELU()` default).
    Gelu,
    /// GELU's tanh approximation (GPT-2's).
    GeluTanh,
    Relu,
}

impl Activation {
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Gelu => x.gelu(),
            Activation::GeluTanh => x.gelu_tanh(),
            Activation::Relu => x.relu(),
        }
    }
}

/// The transformer feed-forward block: `proj(act(fc(x)))`, hidden width `hidden`.
#[derive(Clone, Debug)]
pub struct Mlp {
    pub fc: Linear,
    pub proj: Linear,
    pub activation: Activation,
}

impl Mlp {
    pub fn new(
        dim: usize,
        hidden: usize,
        activation: Activation,
        dtype: DType,
        rng: &mut Rng,
    ) -> Mlp {
        Mlp {
            fc: Linear::new(dim, hidden, true, dtype, rng),
            proj: Linear::new(hidden, dim, true, dtype, rng),
            activation,
        }
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.activation.apply(&self.fc.forward(x)?);
        self.proj.forward(&h)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = prefixed("fc", &self.fc);
        p.extend(prefixed("proj", &self.proj));
        p
    }
}
