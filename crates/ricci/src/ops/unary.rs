//! Elementwise functions of one tensor. They cannot fail, so they return
//! `Tensor` directly.

use super::unary_map;
use crate::autograd::record_jvp;
use crate::error::{Error, Result};
use crate::tensor::{with_dtype, with_type, DType, Element, Tensor};

/// Records an elementwise op whose VJP is `dx = vjp(x, g)`, written in
/// differentiable ops so that it can itself be differentiated. The
/// Jacobian is diagonal, so the same map is the JVP: `dy = vjp(x, dx)`.
fn rec1(
    name: &'static str,
    out: Tensor,
    x: &Tensor,
    vjp: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Tensor {
    if !crate::autograd::will_record(&[x]) {
        return out;
    }
    let vjp = std::sync::Arc::new(vjp);
    let jvp = vjp.clone();
    record_jvp(
        name,
        out,
        &[x],
        move |inp, g, _| Ok(vec![Some(vjp(&inp[0], g)?)]),
        move |inp, _, t| crate::autograd::sum_tangents(t, |_, t| jvp(&inp[0], t)),
    )
}

/// As [`rec1`], for an op whose derivative is cheapest from its output:
/// the JVP is `dy = jvp(y, dx)`. Using the recorded output `y` in the
/// tangent pass adds no cycle (the tangent refers to `y`, not the reverse)
/// and saves recomputing the function.
fn rec1_from_output(
    name: &'static str,
    out: Tensor,
    x: &Tensor,
    vjp: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
    jvp: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Tensor {
    record_jvp(
        name,
        out,
        &[x],
        move |inp, g, _| Ok(vec![Some(vjp(&inp[0], g)?)]),
        move |_, y, t| crate::autograd::sum_tangents(t, |_, t| jvp(y, t)),
    )
}

/// sqrt(2 / pi), for the tanh form of GELU.
pub(super) const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
pub(super) const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi), the standard normal density at 0.
pub(super) const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

impl Tensor {
    /// `-x`.
    pub fn neg(&self) -> Tensor {
        let out = unary_map!(self, |x| -x);
        rec1("neg", out, self, |_, g| Ok(g.neg()))
    }
    /// `e^x`.
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let y = Tensor::from_vec(vec![0.0f64, 1.0], &[2])?.exp();
    /// assert_eq!(y.to_vec::<f64>()?, vec![1.0, std::f64::consts::E]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn exp(&self) -> Tensor {
        // `Element::exp`, not the inherent `f32::exp`: the f32 version is
        // branch-free and vectorises, libm's does not.
        let out = unary_map!(self, |x| Element::exp(x));
        rec1_from_output("exp", out, self, |x, g| g.mul(&x.exp()), |y, t| t.mul(y))
    }
    /// Natural logarithm (NaN below 0, -inf at 0, as numpy).
    pub fn log(&self) -> Tensor {
        let out = unary_map!(self, |x| x.ln());
        rec1("log", out, self, |x, g| g.div(x))
    }
    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        let out = unary_map!(self, |x| x.sqrt());
        rec1("sqrt", out, self, |x, g| g.mul(&x.rsqrt().mul_scalar(0.5)))
    }
    /// `1 / sqrt(x)`.
    pub fn rsqrt(&self) -> Tensor {
        let out = unary_map!(self, |x| T::ONE / x.sqrt());
        rec1("rsqrt", out, self, |x, g| {
            g.mul(&x.rsqrt().div(x)?.mul_scalar(-0.5))
        })
    }
    /// `1 / x`.
    pub fn recip(&self) -> Tensor {
        let out = unary_map!(self, |x| T::ONE / x);
        rec1("recip", out, self, |x, g| g.mul(&x.square().recip().neg()))
    }
    /// `x * x`.
    pub fn square(&self) -> Tensor {
        let out = unary_map!(self, |x| x * x);
        rec1("square", out, self, |x, g| g.mul(&x.mul_scalar(2.0)))
    }
    pub fn sin(&self) -> Tensor {
        let out = unary_map!(self, |x| x.sin());
        rec1("sin", out, self, |x, g| g.mul(&x.cos()))
    }
    pub fn cos(&self) -> Tensor {
        let out = unary_map!(self, |x| x.cos());
        rec1("cos", out, self, |x, g| g.mul(&x.sin().neg()))
    }
    pub fn tanh(&self) -> Tensor {
        // `Element::tanh`, not the inherent `f32::tanh`: the f32 version is
        // branch-free and vectorises, libm's does not.
        let out = unary_map!(self, |x| Element::tanh(x));
        // tanh' = 1 - tanh²: a training backward reuses the output (a
        // handle on its storage without the graph, so no cycle), saving a
        // tanh per element, in one fused pass; a recorded backward
        // recomputes tanh(x) so that the gradient stays a function of x.
        let saved = out.detach();
        rec1_from_output(
            "tanh",
            out,
            self,
            move |x, g| {
                if !crate::autograd::is_grad_enabled() {
                    return saved.tanh_slope(g);
                }
                x.tanh().tanh_slope(g)
            },
            |y, t| y.tanh_slope(t),
        )
    }
    pub fn abs(&self) -> Tensor {
        let out = unary_map!(self, |x| x.abs());
        rec1("abs", out, self, |x, g| g.mul(&x.sign()))
    }
    /// `sign(x)`: -1, 0 or 1 (NaN stays NaN).
    pub fn sign(&self) -> Tensor {
        let out = unary_map!(self, |x| if x > T::ZERO {
            T::ONE
        } else if x < T::ZERO {
            -T::ONE
        } else {
            x
        });
        // Piecewise constant: the derivative is 0 wherever it exists.
        rec1("sign", out, self, |x, _| Ok(x.zeros_like()))
    }
    /// `1 / (1 + e^-x)`, computed without overflow for large `|x|`.
    pub fn sigmoid(&self) -> Tensor {
        // exp(-x) overflows to inf for very negative x, and 1/inf = 0 is
        // the right limit, so the plain form is stable (and branch-free).
        let out = unary_map!(self, |x| T::ONE / (T::ONE + Element::exp(-x)));
        rec1_from_output(
            "sigmoid",
            out,
            self,
            |x, g| {
                let s = x.sigmoid();
                g.mul(&s.mul(&s.rsub_scalar(1.0))?)
            },
            |s, t| t.mul(&s.mul(&s.rsub_scalar(1.0))?),
        )
    }
    /// `max(x, 0)`; NaN stays NaN. The gradient convention at 0 is 0 (as PyTorch).
    pub fn relu(&self) -> Tensor {
        let out = unary_map!(self, |x| if x > T::ZERO || x.is_nan() {
            x
        } else {
            T::ZERO
        });
        rec1("relu", out, self, |x, g| g.mul(&x.gt_scalar(0.0)))
    }
    /// GELU, exact form `x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))` (PyTorch's default).
    pub fn gelu(&self) -> Tensor {
        let out = unary_map!(self, |x| Element::gelu(x));
        // d/dx x Phi(x) = Phi(x) + x phi(x): one fused pass for a training
        // backward, differentiable ops for a recorded one.
        rec1("gelu", out, self, |x, g| {
            if !crate::autograd::is_grad_enabled() {
                return x.gelu_backward(g);
            }
            let cdf = x.mul_scalar(FRAC_1_SQRT_2).erf().affine(0.5, 0.5);
            let pdf = x
                .square()
                .mul_scalar(-0.5)
                .exp()
                .mul_scalar(FRAC_1_SQRT_2PI);
            g.mul(&cdf.add(&x.mul(&pdf)?)?)
        })
    }
    /// GELU, tanh approximation `x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`
    /// (PyTorch's `approximate='tanh'`, GPT-2's).
    pub fn gelu_tanh(&self) -> Tensor {
        // (1 + tanh u) / 2 = sigmoid(2u): one exp, no cancellation for x << 0.
        let out = unary_map!(self, |x| {
            let u = T::from_f64(SQRT_2_OVER_PI) * (x + T::from_f64(0.044715) * x * x * x);
            x / (T::ONE + Element::exp(-(u + u)))
        });
        // y = x s with s = sigmoid(2u): dy/dx = s + x s (1 - s) 2u'.
        rec1("gelu_tanh", out, self, |x, g| {
            if !crate::autograd::is_grad_enabled() {
                return x.gelu_tanh_backward(g);
            }
            let x2 = x.square();
            let u = x
                .mul(&x2.affine(0.044715, 1.0))?
                .mul_scalar(2.0 * SQRT_2_OVER_PI);
            let s = u.sigmoid();
            let du = x2.affine(3.0 * 0.044715 * 2.0 * SQRT_2_OVER_PI, 2.0 * SQRT_2_OVER_PI);
            let ds = s.mul(&s.rsub_scalar(1.0))?.mul(&du)?;
            g.mul(&s.add(&x.mul(&ds)?)?)
        })
    }
    /// The error function `erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt`.
    pub fn erf(&self) -> Tensor {
        let out = unary_map!(self, |x| <T as Element>::erf(x));
        rec1("erf", out, self, |x, g| {
            g.mul(
                &x.square()
                    .neg()
                    .exp()
                    .mul_scalar(std::f64::consts::FRAC_2_SQRT_PI),
            )
        })
    }
    /// `x^e` for a scalar exponent.
    pub fn powf(&self, e: f64) -> Tensor {
        if e == 2.0 {
            return self.square();
        }
        let out = unary_map!(self, |x| x.powf(T::from_f64(e)));
        rec1("powf", out, self, move |x, g| {
            g.mul(&x.powf(e - 1.0).mul_scalar(e))
        })
    }
    /// Limits every element to `[min, max]`; NaN stays NaN.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max {
            return Err(Error::invalid(
                "clamp",
                format!("min {min} is greater than max {max}"),
            ));
        }
        let out = unary_map!(self, |x| {
            let (lo, hi) = (T::from_f64(min), T::from_f64(max));
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        });
        // Gradient 1 inside [min, max] (boundaries included, as PyTorch), 0 outside.
        Ok(rec1("clamp", out, self, move |x, g| {
            g.mul(&x.lt_scalar(min).add(&x.gt_scalar(max))?.rsub_scalar(1.0))
        }))
    }
    /// `x + c` for a scalar `c`.
    pub fn add_scalar(&self, c: f64) -> Tensor {
        let out = unary_map!(self, |x| x + T::from_f64(c));
        rec1("add_scalar", out, self, move |_, g| Ok(g.clone()))
    }
    /// `x - c` for a scalar `c`.
    pub fn sub_scalar(&self, c: f64) -> Tensor {
        let out = unary_map!(self, |x| x - T::from_f64(c));
        rec1("sub_scalar", out, self, move |_, g| Ok(g.clone()))
    }
    /// `x * c` for a scalar `c`.
    pub fn mul_scalar(&self, c: f64) -> Tensor {
        let out = unary_map!(self, |x| x * T::from_f64(c));
        rec1("mul_scalar", out, self, move |_, g| Ok(g.mul_scalar(c)))
    }
    /// `x / c` for a scalar `c`.
    pub fn div_scalar(&self, c: f64) -> Tensor {
        let out = unary_map!(self, |x| x / T::from_f64(c));
        rec1("div_scalar", out, self, move |_, g| Ok(g.div_scalar(c)))
    }
    /// `c - x` for a scalar `c`.
    pub fn rsub_scalar(&self, c: f64) -> Tensor {
        let out = unary_map!(self, |x| T::from_f64(c) - x);
        rec1("rsub_scalar", out, self, move |_, g| Ok(g.neg()))
    }
    /// `x * a + b` for scalars, in one pass.
    pub fn affine(&self, a: f64, b: f64) -> Tensor {
        let out = unary_map!(self, |x| x * T::from_f64(a) + T::from_f64(b));
        rec1("affine", out, self, move |_, g| Ok(g.mul_scalar(a)))
    }

    /// The same values as `dtype` (a copy; returns `self` if already `dtype`).
    ///
    /// ```
    /// # use ricci::{Tensor, DType};
    /// let x = Tensor::ones(&[2], DType::F32).to_dtype(DType::F64);
    /// assert_eq!(x.dtype(), DType::F64);
    /// ```
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let storage = self.storage();
        with_dtype!(&*storage, S, s => {
            with_type!(dtype, D => {
                let mut out = crate::tensor::alloc_uninit::<D>(self.numel());
                crate::kernels::strided::map_unary(s, self.layout(), &mut out, |x: S| D::from_f64(x.to_f64()));
                let from = self.dtype();
                record_jvp(
                    "to_dtype",
                    Tensor::from_typed(out, self.shape()),
                    &[self],
                    move |_, g, _| Ok(vec![Some(g.to_dtype(from))]),
                    move |_, _, t| crate::autograd::sum_tangents(t, |_, t| Ok(t.to_dtype(dtype))),
                )
            })
        })
    }
}
