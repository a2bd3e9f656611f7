//! Losses.

use std::sync::Arc;

use super::with_slice;
use crate::autograd::{is_grad_enabled, no_grad, record_jvp, sum_tangents};
use crate::error::{Error, Result};
use crate::tensor::{alloc_uninit, with_dtype, Element, Tensor};

/// Mean cross-entropy between `logits` `[.., classes]` and integer class
/// ids `targets` (the leading shape of `logits`, ids stored as floats), as
/// PyTorch's `F.cross_entropy(logits.view(-1, V), targets.view(-1),
/// ignore_index=...)`: positions whose target equals `ignore_index` add
/// nothing and are not counted in the mean. With every position ignored the
/// mean is 0/0 = NaN, as in PyTorch.
///
/// One recorded op. Its gradient `w (softmax(x) - onehot)` (with `w` the
/// row's weight, `1/count` or 0) is a recorded op too, whose Jacobian is
/// `w (diag(p) - p pᵀ)` per row, so gradients of any order follow; forward
/// mode gets the directional derivative `Σ ∇ ⊙ t` in two more ops. Written
/// as `log_softmax`, `gather` and a masked mean, it was five recorded ops
/// on 2-d logits and its tangent nine; now one and three, which took a
/// Hessian-vector product of a small MLP from 443 to about 433 µs.
///
/// ```
/// use ricci::{nn::cross_entropy, Tensor};
/// let logits = Tensor::from_vec(vec![0.0f64, 0.0, 5.0, 0.0], &[2, 2])?;
/// let targets = Tensor::from_vec(vec![1.0f64, -1.0], &[2])?;
/// let loss = cross_entropy(&logits, &targets, Some(-1))?;
/// assert!((loss.to_scalar::<f64>()? - 2f64.ln()).abs() < 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    ignore_index: Option<i64>,
) -> Result<Tensor> {
    let r = logits.rank();
    if r == 0 || targets.shape() != &logits.shape()[..r - 1] {
        return Err(Error::shape(
            "cross_entropy",
            logits.shape(),
            targets.shape(),
        ));
    }
    logits.same_dtype("cross_entropy", targets)?;
    let classes = logits.shape()[r - 1];
    let n = targets.numel();
    // Read the targets once: each row's class, and its weight in the mean
    // (ignored rows weigh 0; their class is never read).
    let ids = targets.to_vec_f64();
    let mut class = Vec::with_capacity(n);
    let mut kept = 0usize;
    for (pos, &t) in ids.iter().enumerate() {
        if ignore_index.is_some_and(|ig| t == ig as f64) {
            class.push(None);
        } else if t >= 0.0 && t.fract() == 0.0 && (t as usize) < classes {
            class.push(Some(t as usize));
            kept += 1;
        } else {
            return Err(Error::invalid(
                "cross_entropy",
                format!("target {t} at position {pos} is not a class id in 0..{classes}"),
            ));
        }
    }
    // 1/0 * 0 is NaN: with every row ignored, every weight is NaN, and so
    // are the loss and its gradient, as PyTorch's 0/0.
    let scale = 1.0 / kept as f64;
    let weight = class
        .iter()
        .map(|c| if c.is_some() { scale } else { 0.0 * scale })
        .collect();
    let rows = Arc::new(Rows {
        class: class.into_iter().map(|c| c.unwrap_or(0)).collect(),
        weight,
    });
    let x = logits.reshape([n, classes])?;
    let p = {
        let _g = no_grad();
        x.softmax(-1)?
    };
    let loss = with_slice(&p, |ps, po| {
        with_slice(&x, |xs, xo| {
            with_dtype!(ps, T, ps => {
                let xs = xs.as_slice::<T>().expect("dtypes checked");
                let rows_in = ps[po..po + n * classes].chunks_exact(classes);
                let rows_x = xs[xo..xo + n * classes].chunks_exact(classes);
                let mut acc = 0.0f64;
                for (r, (pr, xr)) in rows_in.zip(rows_x).enumerate() {
                    let w = rows.weight[r];
                    if w != 0.0 {
                        acc -= w * log_prob(pr, xr, rows.class[r]);
                    }
                }
                acc
            })
        })
    });
    let out = Tensor::scalar_of(loss, logits.dtype());
    let (vjp_rows, jvp_rows, jvp_p) = (rows.clone(), rows, p.clone());
    Ok(record_jvp(
        "cross_entropy",
        out,
        &[&x],
        move |inp, g, _| {
            // A training backward uses the saved probabilities as they
            // are, scaled by the (scalar) output gradient in the same pass.
            let grad = if is_grad_enabled() {
                gradient(&inp[0], &vjp_rows, &p)?.mul(g)?
            } else {
                shifted_softmax(&p, &vjp_rows, g.to_f64()?)
            };
            Ok(vec![Some(grad)])
        },
        move |inp, _, t| {
            let grad = gradient(&inp[0], &jvp_rows, &jvp_p)?;
            sum_tangents(t, |_, t| Ok(grad.mul(t)?.sum_all()))
        },
    ))
}

/// `log p[class]` of one row from its softmax `p`, or, where that has
/// underflowed (a logit gap beyond about 87 in f32), exactly from the
/// logits `x` as `x[class] - max - ln Σ exp(x - max)`.
fn log_prob<T: Element>(p: &[T], x: &[T], class: usize) -> f64 {
    let pc = p[class].to_f64();
    if pc > 1e-30 {
        return pc.ln();
    }
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v.to_f64()));
    let total: f64 = x.iter().map(|&v| (v.to_f64() - m).exp()).sum();
    x[class].to_f64() - m - total.ln()
}

/// Each row's class and weight in the mean (`1/count`, or 0 when ignored).
struct Rows {
    class: Vec<usize>,
    weight: Vec<f64>,
}

impl Rows {
    /// The weights as a `[rows, 1]` column of `dtype`.
    fn column(&self, dtype: crate::DType) -> Result<Tensor> {
        Tensor::from_vec(self.weight.clone(), &[self.weight.len(), 1]).map(|w| w.to_dtype(dtype))
    }
}

/// `scale w (p - onehot)` per row, from the probabilities `p`
/// `[rows, classes]` (not recorded).
fn shifted_softmax(p: &Tensor, rows: &Rows, scale: f64) -> Tensor {
    let (n, classes) = (p.shape()[0], p.shape()[1]);
    with_slice(p, |s, off| {
        with_dtype!(s, T, s => {
            let mut out = alloc_uninit::<T>(n * classes);
            let rows_in = s[off..off + n * classes].chunks_exact(classes);
            for (r, (o, pr)) in out.chunks_exact_mut(classes).zip(rows_in).enumerate() {
                let w = T::from_f64(scale * rows.weight[r]);
                for (o, &p) in o.iter_mut().zip(pr) {
                    *o = w * p;
                }
                o[rows.class[r]] -= w;
            }
            Tensor::from_vec(out, &[n, classes]).expect("shape of the input")
        })
    })
}

/// The gradient of the cross-entropy with respect to the logits `x`
/// `[rows, classes]`, `w (softmax(x) - onehot)`, as a recorded op, from
/// `p = softmax(x)` computed already (without the graph). Its
/// Jacobian is `w (diag(p) - p pᵀ)` per row: symmetric, so the VJP and the
/// JVP are one map, `w p (v - ⟨v, p⟩)`.
fn gradient(x: &Tensor, rows: &Arc<Rows>, p: &Tensor) -> Result<Tensor> {
    let out = shifted_softmax(p, rows, 1.0);
    let p = p.clone();
    let (vjp_rows, jvp_rows) = (rows.clone(), rows.clone());
    Ok(record_jvp(
        "cross_entropy_grad",
        out,
        &[x],
        move |inp, g, _| {
            let p = if is_grad_enabled() {
                inp[0].softmax(-1)?
            } else {
                p.clone()
            };
            Ok(vec![Some(curvature(&p, g, &vjp_rows)?)])
        },
        move |inp, _, t| {
            let p = inp[0].softmax(-1)?;
            sum_tangents(t, |_, t| curvature(&p, t, &jvp_rows))
        },
    ))
}

/// `w p (v - ⟨v, p⟩)` per row: the cross-entropy's Hessian with respect to
/// the logits applied to `v`. Recorded ops when grad mode is on (so that it
/// can be differentiated again), else one pass over the rows.
fn curvature(p: &Tensor, v: &Tensor, rows: &Rows) -> Result<Tensor> {
    if is_grad_enabled() {
        let centred = v.sub(&v.mul(p)?.sum(-1, true)?)?;
        return p.mul(&centred)?.mul(&rows.column(p.dtype())?);
    }
    p.same_dtype("cross_entropy", v)?;
    let (n, classes) = (p.shape()[0], p.shape()[1]);
    let v = v.contiguous_data();
    let (pv, vv) = (p.contiguous_data(), v.storage());
    let (po, vo) = (pv.layout().offset(), v.layout().offset());
    let ps = pv.storage();
    Ok(with_dtype!(&*ps, T, ps => {
        let vs = vv.as_slice::<T>().expect("dtypes checked");
        let (ps, vs) = (&ps[po..po + n * classes], &vs[vo..vo + n * classes]);
        let mut out = alloc_uninit::<T>(n * classes);
        let rows_in = ps.chunks_exact(classes).zip(vs.chunks_exact(classes));
        for (r, (o, (pr, vr))) in out.chunks_exact_mut(classes).zip(rows_in).enumerate() {
            let dot = pr.iter().zip(vr).fold(T::ZERO, |a, (&p, &v)| a + p * v);
            let w = T::from_f64(rows.weight[r]);
            for ((o, &p), &v) in o.iter_mut().zip(pr).zip(vr) {
                *o = w * p * (v - dot);
            }
        }
        Tensor::from_vec(out, &[n, classes]).expect("shape of the input")
    }))
}
