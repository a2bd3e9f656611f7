//! Multi-head causal self-attention (Vaswani et al. 2017), as in GPT-2:
//! one fused projection to queries, keys and values, `softmax(q kᵀ / sqrt(d))`
//! with future positions masked, the weighted sum of values, and an output
//! projection.

use super::{prefixed, Linear, Module, Var};
use crate::autograd::{is_grad_enabled, record_jvp};
use crate::error::{Error, Result};
use crate::kernels::attention::{self as kernel, Packed};
use crate::tensor::{alloc_uninit, with_type, DType, Element, Rng, Tensor};

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
        let y = attention_packed(&self.qkv.forward(x)?, self.n_head, true)?;
        self.proj.forward(&y)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = prefixed("qkv", &self.qkv);
        p.extend(prefixed("proj", &self.proj));
        p
    }
}

/// Multi-head scaled dot-product attention on the packed output of a fused
/// QKV projection, in one kernel (as FlashAttention's
/// `flash_attn_qkvpacked_func`): `qkv` is `[batch, seq, 3 n_embd]`, each
/// position's queries, keys and values side by side, each split into
/// `n_head` heads of `n_embd / n_head`. Returns `[batch, seq, n_embd]`, the
/// heads' outputs side by side, equal (to rounding) to splitting `qkv` into
/// `[batch, n_head, seq, d]` queries, keys and values, applying
/// `softmax(q kᵀ / sqrt(d)) v` (with the causal mask of
/// [`causal_attention`] when `causal`) and joining the heads again.
///
/// Nothing of size `[seq, seq]` is built but the probabilities, which the
/// backward pass reuses; causal attention skips the products above the
/// diagonal. Differentiable to any order: a recorded backward (for
/// Hessian-vector products) is written in differentiable ops.
///
/// ```
/// use ricci::{nn::{attention_packed, causal_attention}, DType, Rng, Tensor};
/// let mut rng = Rng::new(0);
/// let qkv = Tensor::randn(&[2, 5, 3 * 8], DType::F64, &mut rng);
/// let y = attention_packed(&qkv, 2, true)?;
/// // The same as splitting heads and calling causal_attention.
/// let heads = qkv.reshape([2, 5, 3, 2, 4])?.permute([2, 0, 3, 1, 4])?;
/// let part = |i| heads.narrow(0, i, 1)?.squeeze(0);
/// let want = causal_attention(&part(0)?, &part(1)?, &part(2)?)?
///     .permute([0, 2, 1, 3])?
///     .reshape([2, 5, 8])?;
/// let diff = y.sub(&want)?.abs().max_all()?.to_scalar::<f64>()?;
/// assert!(diff < 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn attention_packed(qkv: &Tensor, n_head: usize, causal: bool) -> Result<Tensor> {
    const OP: &str = "attention_packed";
    let shape = qkv.shape();
    if qkv.rank() != 3 || n_head == 0 || !shape[2].is_multiple_of(3 * n_head) {
        return Err(Error::invalid(
            OP,
            format!(
                "expected qkv [batch, seq, 3 * n_embd] with n_embd divisible by n_head \
                 ({n_head}), got {shape:?}"
            ),
        ));
    }
    let (b, t, c) = (shape[0], shape[1], shape[2] / 3);
    let d = c / n_head;
    let spec = Packed {
        b,
        t,
        h: n_head,
        d,
        causal,
        scale: 1.0 / (d.max(1) as f64).sqrt(),
    };
    let x = qkv.contiguous_data();
    let (y, probs) = with_type!(qkv.dtype(), T => {
        let storage = x.storage();
        let src = storage.contiguous_span::<T>(x.layout(), OP)?;
        let mut y = alloc_uninit::<T>(b * t * c);
        let mut p = alloc_uninit::<T>(b * n_head * t * t);
        kernel::forward(src, spec, &mut y, &mut p);
        (
            Tensor::from_typed(y, &[b, t, c]),
            Tensor::from_typed(p, &[b, n_head, t, t]),
        )
    });
    Ok(record_jvp(
        OP,
        y,
        &[qkv],
        move |inp, g, _| {
            let grad = if is_grad_enabled() {
                packed_grad_composite(&inp[0], g, n_head, causal)?
            } else {
                packed_grad_fused(&inp[0], &probs, g, spec)?
            };
            Ok(vec![Some(grad)])
        },
        move |inp, _, t| {
            crate::autograd::sum_tangents(t, |_, t| packed_jvp(&inp[0], t, n_head, causal))
        },
    ))
}

/// Queries, keys and values of a packed `[b, t, 3 c]` tensor, each
/// `[b, n_head, t, d]` (views).
fn split_heads(qkv: &Tensor, n_head: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, t, c) = (qkv.shape()[0], qkv.shape()[1], qkv.shape()[2] / 3);
    let heads = qkv
        .reshape([b, t, 3, n_head, c / n_head])?
        .permute([2, 0, 3, 1, 4])?;
    let part = |i: usize| heads.narrow(0, i, 1)?.squeeze(0);
    Ok((part(0)?, part(1)?, part(2)?))
}

/// The probabilities `softmax(q kᵀ / sqrt(d))` (causally masked) per head.
fn probabilities(q: &Tensor, k: &Tensor, causal: bool) -> Result<Tensor> {
    let (t, d) = (q.shape()[2], q.shape()[3]);
    let scale = 1.0 / (d.max(1) as f64).sqrt();
    let mut scores = q.matmul(&k.transpose(-2, -1)?)?.mul_scalar(scale);
    if causal {
        scores = scores.add(&causal_mask(t, q.dtype()))?;
    }
    scores.softmax(-1)
}

/// The JVP of [`attention_packed`] along `dqkv`, in differentiable ops:
/// `dS = (dq kᵀ + q dkᵀ) / sqrt(d)`, `dP = P (dS - rowsum(P dS))`,
/// `dy = dP v + P dv`. Masked entries have `P = 0`, so `dP` is 0 there.
fn packed_jvp(qkv: &Tensor, dqkv: &Tensor, n_head: usize, causal: bool) -> Result<Tensor> {
    let (b, t, c) = (qkv.shape()[0], qkv.shape()[1], qkv.shape()[2] / 3);
    let scale = 1.0 / ((c / n_head).max(1) as f64).sqrt();
    let (q, k, v) = split_heads(qkv, n_head)?;
    let (dq, dk, dv) = split_heads(dqkv, n_head)?;
    let p = probabilities(&q, &k, causal)?;
    let ds = dq
        .matmul(&k.transpose(-2, -1)?)?
        .add(&q.matmul(&dk.transpose(-2, -1)?)?)?
        .mul_scalar(scale);
    let dp = p.mul(&ds.sub(&p.mul(&ds)?.sum(-1, true)?)?)?;
    dp.matmul(&v)?
        .add(&p.matmul(&dv)?)?
        .permute([0, 2, 1, 3])?
        .reshape([b, t, c])
}

/// The training backward of [`attention_packed`]: one fused kernel.
fn packed_grad_fused(qkv: &Tensor, probs: &Tensor, g: &Tensor, spec: Packed) -> Result<Tensor> {
    const OP: &str = "attention_packed backward";
    let (x, g) = (qkv.contiguous_data(), g.contiguous_data());
    with_type!(qkv.dtype(), T => {
        let (xs, ps, gs) = (x.storage(), probs.storage(), g.storage());
        let src = xs.contiguous_span::<T>(x.layout(), OP)?;
        let p = ps.contiguous_span::<T>(probs.layout(), OP)?;
        let gy = gs.contiguous_span::<T>(g.layout(), OP)?;
        let mut out = alloc_uninit::<T>(src.len());
        kernel::backward(src, p, gy, spec, &mut out);
        Ok(Tensor::from_typed(out, qkv.shape()))
    })
}

/// The recorded backward of [`attention_packed`], in differentiable ops
/// (the formulas of [`crate::kernels::attention`]).
fn packed_grad_composite(qkv: &Tensor, g: &Tensor, n_head: usize, causal: bool) -> Result<Tensor> {
    let (b, t, c) = (qkv.shape()[0], qkv.shape()[1], qkv.shape()[2] / 3);
    let d = c / n_head;
    let scale = 1.0 / (d.max(1) as f64).sqrt();
    let (q, k, v) = split_heads(qkv, n_head)?;
    let p = probabilities(&q, &k, causal)?;
    let gy = g.reshape([b, t, n_head, d])?.permute([0, 2, 1, 3])?;
    let dv = p.transpose(-2, -1)?.matmul(&gy)?;
    let dp = gy.matmul(&v.transpose(-2, -1)?)?;
    let ds = p.mul(&dp.sub(&p.mul(&dp)?.sum(-1, true)?)?)?;
    let dq = ds.matmul(&k)?.mul_scalar(scale);
    let dk = ds.transpose(-2, -1)?.matmul(&q)?.mul_scalar(scale);
    Tensor::stack(&[&dq, &dk, &dv], 0)?
        .permute([1, 3, 0, 2, 4])?
        .reshape([b, t, 3 * c])
}
