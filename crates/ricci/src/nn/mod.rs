//! Neural-network building blocks: parameters ([`Var`]), the [`Module`]
//! trait, initialisers ([`init`]), layers ([`Linear`], [`Embedding`],
//! [`LayerNorm`], [`RmsNorm`], [`Dropout`], [`Mlp`]), attention
//! ([`CausalSelfAttention`]), losses ([`cross_entropy`]), and structured
//! layers for compression and fine-tuning ([`LowRankLinear`],
//! [`BlockDiagonalLinear`], LoRA adapters via [`Linear::add_lora`]).
//!
//! Layers are thin: each forward is a few of ricci's differentiable ops, so
//! every layer has exact gradients of any order without code of its own.
//! Parameter names follow PyTorch's `state_dict` (`blocks.0.attn.qkv.weight`),
//! so checkpoints map one to one onto a PyTorch model of the same shape.
//!
//! ```
//! use ricci::nn::{Linear, Module};
//! use ricci::{DType, Rng, Tensor};
//! let mut rng = Rng::new(0);
//! let layer = Linear::new(3, 2, true, DType::F32, &mut rng);
//! let y = layer.forward(&Tensor::ones(&[5, 3], DType::F32))?;
//! assert_eq!(y.shape(), &[5, 2]);
//! let names: Vec<String> = layer.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["weight", "bias"]);
//! # Ok::<(), ricci::Error>(())
//! ```

mod attention;
pub mod init;
mod layers;
mod loss;
mod structured;

pub use attention::{attention_packed, causal_attention, CausalSelfAttention};
pub use layers::{Activation, Dropout, Embedding, LayerNorm, Linear, Mlp, RmsNorm};
pub use loss::cross_entropy;
pub use structured::{
    compress_state_dict, fold_low_rank, is_lora_parameter, lora_parameters, BlockDiagonalLinear,
    LayerCompression, Lora, LowRankLinear, RankChoice, StateDict, Truncation,
};

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::tensor::{with_dtype, Storage, Tensor};

/// A trainable parameter: a leaf tensor that requires grad and owns its
/// storage, so an optimizer can update it in place. Cloning a `Var` gives a
/// second handle to the same values (this is how weight tying works).
#[derive(Clone)]
pub struct Var(Tensor);

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var({:?}, {:?})", self.0.shape(), self.0.dtype())
    }
}

impl Var {
    /// A parameter holding a private copy of `value`'s elements.
    pub fn new(value: &Tensor) -> Var {
        Var(value.copy_data().set_requires_grad(true))
    }

    /// The parameter as a tensor (to use in a forward pass).
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }

    pub fn shape(&self) -> &[usize] {
        self.0.shape()
    }

    pub fn numel(&self) -> usize {
        self.0.numel()
    }

    /// Overwrites the values with `value`'s (same shape and dtype), in place:
    /// every handle to this parameter sees the new values.
    pub fn assign(&self, value: &Tensor) -> Result<()> {
        Var::assign_to(&self.0, value)
    }

    /// Copies `value` into the storage of `dst`, a tensor that owns a
    /// contiguous buffer of exactly its size (a parameter or a state buffer).
    pub(crate) fn assign_to(dst: &Tensor, value: &Tensor) -> Result<()> {
        if value.shape() != dst.shape() {
            return Err(Error::shape("Var::assign", dst.shape(), value.shape()));
        }
        dst.same_dtype("Var::assign", value)?;
        let src = value.contiguous_data();
        let src_storage = src.storage();
        let offset = src.layout().offset();
        let n = dst.numel();
        let mut dst = dst.storage_mut();
        match (&mut *dst, &*src_storage) {
            (Storage::F32(d), Storage::F32(s)) => d.copy_from_slice(&s[offset..offset + n]),
            (Storage::F64(d), Storage::F64(s)) => d.copy_from_slice(&s[offset..offset + n]),
            _ => unreachable!("dtypes were checked above"),
        }
        Ok(())
    }

    /// Runs `f` on the parameter's elements, mutably, in place.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Storage) -> R) -> R {
        let mut s = self.0.storage_mut();
        f(&mut s)
    }
}

/// Runs `f` on the elements of `t` in row-major order, as one slice (a
/// contiguous tensor is read where it lies; others are copied first).
pub(crate) fn with_slice<R>(t: &Tensor, f: impl FnOnce(&Storage, usize) -> R) -> R {
    let c = t.contiguous_data();
    let offset = c.layout().offset();
    let s = c.storage();
    f(&s, offset)
}

/// A layer or model: a forward function plus named parameters.
pub trait Module {
    /// Applies the module to `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Every parameter with its `state_dict` name, in a fixed order.
    fn named_parameters(&self) -> Vec<(String, Var)>;

    /// Switches training behaviour (dropout) on or off; containers pass it on.
    fn set_training(&mut self, _training: bool) {}

    /// The parameters, in the order of [`Module::named_parameters`].
    fn parameters(&self) -> Vec<Var> {
        self.named_parameters()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Total number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, v)| v.numel()).sum()
    }

    /// The parameters' current values by name (the tensors are detached handles).
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        self.named_parameters()
            .into_iter()
            .map(|(n, v)| (n, v.tensor().detach()))
            .collect()
    }

    /// Copies values into the parameters by name. Every parameter must be
    /// present with its exact shape and dtype; unknown names are an error too,
    /// so a checkpoint of another model is refused rather than half-loaded.
    fn load_state_dict(&self, state: &[(String, Tensor)]) -> Result<()> {
        let params = self.named_parameters();
        let by_name: HashMap<&str, &Tensor> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let known: HashMap<&str, &Var> = params.iter().map(|(n, v)| (n.as_str(), v)).collect();
        if let Some((name, _)) = state.iter().find(|(n, _)| !known.contains_key(n.as_str())) {
            return Err(Error::invalid(
                "load_state_dict",
                format!("unexpected tensor '{name}' (not a parameter of this model)"),
            ));
        }
        for (name, var) in &params {
            let value = by_name.get(name.as_str()).ok_or_else(|| {
                Error::invalid("load_state_dict", format!("missing tensor '{name}'"))
            })?;
            if value.shape() != var.shape() || value.dtype() != var.tensor().dtype() {
                return Err(Error::invalid(
                    "load_state_dict",
                    format!(
                        "tensor '{name}' is {:?} {:?}, the model expects {:?} {:?}",
                        value.shape(),
                        value.dtype(),
                        var.shape(),
                        var.tensor().dtype()
                    ),
                ));
            }
        }
        for (name, var) in &params {
            var.assign(by_name[name.as_str()])?;
        }
        Ok(())
    }
}

/// `child`'s parameters with `prefix.` in front of their names.
pub(crate) fn prefixed(prefix: &str, child: &dyn Module) -> Vec<(String, Var)> {
    child
        .named_parameters()
        .into_iter()
        .map(|(n, v)| (format!("{prefix}.{n}"), v))
        .collect()
}

/// Sum of squares of all elements of `t`, in f64.
pub(crate) fn sum_squares(t: &Tensor) -> f64 {
    with_slice(
        t,
        |s, off| with_dtype!(s, T, v => { let v = &v[off..off + t.numel()]; crate::kernels::reduce::dot_f64(v, v) }),
    )
}
