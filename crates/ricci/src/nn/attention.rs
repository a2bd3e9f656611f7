//! Multi-head causal self-attention (Vaswani et al. 2017), as in GPT-2:
//! one fused projection to queries, keys and values, `softmax(q kᵀ / sqrt(d))`
//! with future positions masked, the weighted sum of values, and an output
//! projection.

use super::{prefixed, Linear, Module, Var};
use crate::error::{Error, Result};
use crate::tensor::{with_type, DType, Element, Rng, Tensor};

/// Scaled dot-product attention with a causal mask over `[.., T, D]`
/// queries, keys and values: position `i` attends to positions `<= i`.
///
/// ```
/// use ricci::{nn::causal_attention, DType, Rng, Tensor};
/// let mut rng = Rng::new(0);
/// let q = Tensor::randn(&[2, 4, 3], DType::F64, &mut rng);
/// let y = causal_attention(&q, &q, &q)?;
/// // The first position can only see itself.
/// assert_eq!(y.narrow(1, 0, 1)?.to_vec::<f64>()?, q.narrow(1, 0, 1)?.to_vec::<f64>()?);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    if q.rank() < 2 || q.shape() != k.shape() || k.shape() != v.shape() {
        return Err(Error::shape("causal_attention", q.shape(), k.shape()));
    }
    let t = q.shape()[q.rank() - 2];
    let d = q.shape()[q.rank() - 1];
    // Scale the queries rather than the scores: [T, D] is smaller than [T, T]
    // whenever the context is longer than a head.
    let q = q.mul_scalar(1.0 / (d as f64).sqrt());
    let scores = q.matmul(&k.transpose(-2, -1)?)?;
    // An additive mask (-inf above the diagonal) costs no pass in the
    // backward: the gradient of an addition is the incoming gradient.
    let att = scores.add(&causal_mask(t, q.dtype()))?.softmax(-1)?;
    att.matmul(v)
}

/// `[t, t]`: 0 where a query may attend (key position <= query position), -inf elsewhere.
fn causal_mask(t: usize, dtype: DType) -> Tensor {
    with_type!(dtype, T => {
        let mut m = vec![T::ZERO; t * t];
        for i in 0..t {
            m[i * t + i + 1..(i + 1) * t].fill(T::NEG_INFINITY);
        }
        Tensor::from_typed(m, &[t, t])
    })
}

/// Multi-head causal self-attention over `[batch, seq, n_embd]`.
#[derive(Clone, Debug)]
pub struct CausalSelfAttention {
    /// Projects to queries, keys and values side by side: `[3 n_embd, n_embd]`.
    pub qkv: Linear,
    pub proj: Linear,
    pub n_head: usize,
}

impl CausalSelfAttention {
    pub fn new(n_embd: usize, n_head: usize, dtype: DType, rng: &mut Rng) -> Result<Self> {
        if n_head == 0 || !n_embd.is_multiple_of(n_head) {
            return Err(Error::invalid(
                "CausalSelfAttention",
                format!("n_embd ({n_embd}) must be divisible by n_head ({n_head})"),
            ));
        }
        Ok(CausalSelfAttention {
            qkv: Linear::new(n_embd, 3 * n_embd, true, dtype, rng),
            proj: Linear::new(n_embd, n_embd, true, dtype, rng),
            n_head,
        })
    }
}

impl Module for CausalSelfAttention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.proj.in_features();
        if x.rank() != 3 || x.shape()[2] != c {
            return Err(Error::invalid(
                "CausalSelfAttention",
                format!("expected input [batch, seq, {c}], got {:?}", x.shape()),
            ));
        }
        let (b, t, h) = (x.shape()[0], x.shape()[1], self.n_head);
        let d = c / h;
        // [B, T, 3C] -> [3, B, H, T, D]: q, k, v are views, no copies.
        let qkv = self
            .qkv
            .forward(x)?
            .reshape([b, t, 3, h, d])?
            .permute([2, 0, 3, 1, 4])?;
        let q = qkv.narrow(0, 0, 1)?.squeeze(0)?;
        let k = qkv.narrow(0, 1, 1)?.squeeze(0)?;
        let v = qkv.narrow(0, 2, 1)?.squeeze(0)?;
        let y = causal_attention(&q, &k, &v)?;
        let y = y.permute([0, 2, 1, 3])?.reshape([b, t, c])?;
        self.proj.forward(&y)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = prefixed("qkv", &self.qkv);
        p.extend(prefixed("proj", &self.proj));
        p
    }
}
