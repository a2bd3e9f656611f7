//! Layer normalisation over the last dimension, fused.
//!
//! For each row `x` (length `n`, the last dim):
//!
//! ```text
//! x̂ = (x - mean(x)) · rstd,   rstd = 1 / sqrt(var(x) + eps)   (var divides by n)
//! y = x̂ · w + b
//! ```
//!
//! The forward pass is one kernel ([`crate::kernels::norm`]); composed from
//! primitives it would be six passes and five temporaries. The VJP (for
//! `g = dL/dy`):
//!
//! ```text
//! dx̂ = g · w
//! dx = rstd · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂))
//! dw = Σ_rows g · x̂,   db = Σ_rows g
//! ```
//!
//! It is written in ricci's differentiable ops and recomputes `x̂` and
//! `rstd` from `x`, so second derivatives come out right too.

use crate::autograd::{is_grad_enabled, record_jvp, sum_tangents};
use crate::error::{Error, Result};
use crate::kernels::norm as k;
use crate::tensor::{alloc_uninit, with_type, Tensor};

impl Tensor {
    /// Layer normalisation over the last dimension (PyTorch's
    /// `F.layer_norm(x, x.shape[-1:], weight, bias, eps)`): each row is
    /// centred, divided by `sqrt(var + eps)` (biased variance), then scaled
    /// by `weight` and shifted by `bias` when given (both of shape
    /// `[last dim]`). Any leading shape; f32 or f64; differentiable to any
    /// order in `self`, `weight` and `bias`.
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0], &[2, 4])?;
    /// let w = Tensor::from_vec(vec![2.0f32; 4], &[4])?;
    /// let b = Tensor::from_vec(vec![1.0f32; 4], &[4])?;
    /// let y = x.layer_norm(Some(&w), Some(&b), 1e-5)?;
    /// // Every row of 2·x̂ + 1 has mean 1 and variance 4.
    /// let mean = y.mean(-1, false)?.to_vec::<f32>()?;
    /// let var = y.var_correction(-1, 0, false)?.to_vec::<f32>()?;
    /// assert!(mean.iter().all(|m| (m - 1.0).abs() < 1e-5));
    /// assert!(var.iter().all(|v| (v - 4.0).abs() < 1e-3));
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn layer_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        const OP: &str = "layer_norm";
        if self.rank() == 0 {
            return Err(Error::invalid(
                OP,
                "needs at least one dimension, got a scalar",
            ));
        }
        if !(eps >= 0.0 && eps.is_finite()) {
            return Err(Error::invalid(
                OP,
                format!("eps must be finite and >= 0, got {eps}"),
            ));
        }
        let n = self.shape()[self.rank() - 1];
        for p in [weight, bias].into_iter().flatten() {
            self.same_dtype(OP, p)?;
            if p.shape() != [n] {
                return Err(Error::shape(OP, self.shape(), p.shape()));
            }
        }
        let x = self.contiguous_data();
        let out = with_type!(self.dtype(), T => {
            // Parameters are n elements: a copy is cheap and avoids holding
            // several storage locks at once (weight and bias may share one).
            let w = weight.map(|w| w.to_vec::<T>()).transpose()?;
            let b = bias.map(|b| b.to_vec::<T>()).transpose()?;
            let storage = x.storage();
            let src = storage.contiguous_span::<T>(x.layout(), OP)?;
            let mut out = alloc_uninit::<T>(src.len());
            k::layer_norm_rows(src, n, w.as_deref(), b.as_deref(), eps, &mut out);
            Tensor::from_typed(out, self.shape())
        });
        let inputs: Vec<&Tensor> = [Some(self), weight, bias].into_iter().flatten().collect();
        let (has_w, has_b) = (weight.is_some(), bias.is_some());
        Ok(record_jvp(
            OP,
            out,
            &inputs,
            move |inp, g, needs| {
                if !is_grad_enabled() {
                    return layer_norm_grad_fused(&inp[0], has_w.then(|| &inp[1]), has_b, g, eps);
                }
                let x = &inp[0];
                let w = has_w.then(|| &inp[1]);
                let mean = x.mean(-1, true)?;
                let xc = x.sub(&mean)?;
                let var = xc.square().mean(-1, true)?;
                let rstd = var.add_scalar(eps).rsqrt();
                let xhat = xc.mul(&rstd)?;
                let mut grads = Vec::with_capacity(inp.len());
                grads.push(if needs[0] {
                    let dxhat = match w {
                        Some(w) => g.mul(w)?,
                        None => g.clone(),
                    };
                    let proj = dxhat.mul(&xhat)?.mean(-1, true)?;
                    let centred = dxhat.sub(&dxhat.mean(-1, true)?)?;
                    Some(centred.sub(&xhat.mul(&proj)?)?.mul(&rstd)?)
                } else {
                    None
                });
                if has_w {
                    grads.push(if needs[1] {
                        Some(g.mul(&xhat)?.sum_to_shape(&[xhat.shape()[x.rank() - 1]])?)
                    } else {
                        None
                    });
                }
                if has_b {
                    let i = grads.len();
                    grads.push(if needs[i] {
                        Some(g.sum_to_shape(&[g.shape()[g.rank() - 1]])?)
                    } else {
                        None
                    });
                }
                Ok(grads)
            },
            // The normalisation's Jacobian is symmetric, so dx̂ has the form of
            // its VJP: rstd (dx - mean(dx) - x̂ mean(dx x̂)); then
            // dy = dx̂ w + x̂ dw + db.
            move |inp, _, t| {
                let xhat = |x: &Tensor| -> Result<(Tensor, Tensor)> {
                    let xc = x.sub(&x.mean(-1, true)?)?;
                    let rstd = xc.square().mean(-1, true)?.add_scalar(eps).rsqrt();
                    Ok((xc.mul(&rstd)?, rstd))
                };
                let (xh, rstd) = xhat(&inp[0])?;
                sum_tangents(t, |i, t| match i {
                    0 => {
                        let proj = t.mul(&xh)?.mean(-1, true)?;
                        let dxh = t
                            .sub(&t.mean(-1, true)?)?
                            .sub(&xh.mul(&proj)?)?
                            .mul(&rstd)?;
                        if has_w {
                            dxh.mul(&inp[1])
                        } else {
                            Ok(dxh)
                        }
                    }
                    1 if has_w => xh.mul(t),
                    _ => t.broadcast_to(xh.shape()),
                })
            },
        ))
    }
}

/// The training (unrecorded) backward of [`Tensor::layer_norm`] in one
/// kernel: `[dx, dw (if a weight), db (if a bias)]`.
fn layer_norm_grad_fused(
    x: &Tensor,
    weight: Option<&Tensor>,
    has_b: bool,
    g: &Tensor,
    eps: f64,
) -> Result<Vec<Option<Tensor>>> {
    const OP: &str = "layer_norm backward";
    let n = x.shape()[x.rank() - 1];
    let (x, g) = (x.contiguous_data(), g.contiguous_data());
    let (dx, dw, db) = with_type!(x.dtype(), T => {
        let w = weight.map(|w| w.to_vec::<T>()).transpose()?;
        let (xs, gs) = (x.storage(), g.storage());
        let src = xs.contiguous_span::<T>(x.layout(), OP)?;
        let gy = gs.contiguous_span::<T>(g.layout(), OP)?;
        let mut dx = alloc_uninit::<T>(src.len());
        let (dw, db) = k::layer_norm_backward_rows(src, gy, n, w.as_deref(), eps, &mut dx);
        (
            Tensor::from_typed(dx, x.shape()),
            Tensor::from_typed(dw, &[n]),
            Tensor::from_typed(db, &[n]),
        )
    });
    let mut grads = vec![Some(dx)];
    if weight.is_some() {
        grads.push(Some(dw));
    }
    if has_b {
        grads.push(Some(db));
    }
    Ok(grads)
}

#[cfg(test)]
mod tests {
    use crate::{DType, Rng, Tensor};

    #[test]
    fn bad_arguments_are_errors_naming_layer_norm() {
        let x = Tensor::zeros(&[2, 3], DType::F32);
        let w4 = Tensor::ones(&[4], DType::F32);
        let w64 = Tensor::ones(&[3], DType::F64);
        let cases = [
            Tensor::scalar(1.0f32).layer_norm(None, None, 1e-5),
            x.layer_norm(Some(&w4), None, 1e-5),
            x.layer_norm(None, Some(&w4), 1e-5),
            x.layer_norm(Some(&w64), None, 1e-5),
            x.layer_norm(None, None, -1.0),
            x.layer_norm(None, None, f64::NAN),
        ];
        for r in cases {
            let msg = r.expect_err("must fail").to_string();
            assert!(msg.starts_with("layer_norm"), "{msg}");
        }
    }

    #[test]
    fn strided_input_and_leading_dims_match_the_contiguous_result() {
        let mut rng = Rng::new(7);
        let x = Tensor::randn(&[4, 3, 5], DType::F64, &mut rng);
        let seen = x.transpose(0, 1).unwrap(); // [3, 4, 5], not contiguous
        let got = seen.layer_norm(None, None, 1e-5).unwrap();
        let want = seen.contiguous().layer_norm(None, None, 1e-5).unwrap();
        assert_eq!(got.shape(), &[3, 4, 5]);
        assert_eq!(got.to_vec::<f64>().unwrap(), want.to_vec::<f64>().unwrap());
    }

    #[test]
    fn empty_tensors_pass_through() {
        let x = Tensor::zeros(&[0, 4], DType::F32);
        assert_eq!(x.layer_norm(None, None, 1e-5).unwrap().shape(), &[0, 4]);
        let y = Tensor::zeros(&[3, 0], DType::F32);
        assert_eq!(y.layer_norm(None, None, 1e-5).unwrap().shape(), &[3, 0]);
    }
}
