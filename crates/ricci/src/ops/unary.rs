//! Elementwise functions of one tensor. They cannot fail, so they return
//! `Tensor` directly.

use super::unary_map;
use crate::error::{Error, Result};
use crate::tensor::{with_dtype, with_type, DType, Element, Tensor};

/// sqrt(2 / pi), for the tanh form of GELU.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;

impl Tensor {
    /// `-x`.
    pub fn neg(&self) -> Tensor {
        unary_map!(self, |x| -x)
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
        unary_map!(self, |x| Element::exp(x))
    }
    /// Natural logarithm (NaN below 0, -inf at 0, as numpy).
    pub fn log(&self) -> Tensor {
        unary_map!(self, |x| x.ln())
    }
    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        unary_map!(self, |x| x.sqrt())
    }
    /// `1 / sqrt(x)`.
    pub fn rsqrt(&self) -> Tensor {
        unary_map!(self, |x| T::ONE / x.sqrt())
    }
    /// `1 / x`.
    pub fn recip(&self) -> Tensor {
        unary_map!(self, |x| T::ONE / x)
    }
    /// `x * x`.
    pub fn square(&self) -> Tensor {
        unary_map!(self, |x| x * x)
    }
    pub fn sin(&self) -> Tensor {
        unary_map!(self, |x| x.sin())
    }
    pub fn cos(&self) -> Tensor {
        unary_map!(self, |x| x.cos())
    }
    pub fn tanh(&self) -> Tensor {
        unary_map!(self, |x| x.tanh())
    }
    pub fn abs(&self) -> Tensor {
        unary_map!(self, |x| x.abs())
    }
    /// `sign(x)`: -1, 0 or 1 (NaN stays NaN).
    pub fn sign(&self) -> Tensor {
        unary_map!(self, |x| if x > T::ZERO {
            T::ONE
        } else if x < T::ZERO {
            -T::ONE
        } else {
            x
        })
    }
    /// `1 / (1 + e^-x)`, computed without overflow for large `|x|`.
    pub fn sigmoid(&self) -> Tensor {
        // exp(-x) overflows to inf for very negative x, and 1/inf = 0 is
        // the right limit, so the plain form is stable (and branch-free).
        unary_map!(self, |x| T::ONE / (T::ONE + Element::exp(-x)))
    }
    /// `max(x, 0)`; NaN stays NaN. The gradient convention at 0 is 0 (as PyTorch).
    pub fn relu(&self) -> Tensor {
        unary_map!(self, |x| if x > T::ZERO || x.is_nan() {
            x
        } else {
            T::ZERO
        })
    }
    /// GELU, exact form `x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))` (PyTorch's default).
    pub fn gelu(&self) -> Tensor {
        unary_map!(self, |x| {
            let half = T::from_f64(0.5);
            half * x * (T::ONE + <T as Element>::erf(x * T::from_f64(FRAC_1_SQRT_2)))
        })
    }
    /// GELU, tanh approximation `x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`
    /// (PyTorch's `approximate='tanh'`, GPT-2's).
    pub fn gelu_tanh(&self) -> Tensor {
        // (1 + tanh u) / 2 = sigmoid(2u): one exp, no cancellation for x << 0.
        unary_map!(self, |x| {
            let u = T::from_f64(SQRT_2_OVER_PI) * (x + T::from_f64(0.044715) * x * x * x);
            x / (T::ONE + Element::exp(-(u + u)))
        })
    }
    /// `x^e` for a scalar exponent.
    pub fn powf(&self, e: f64) -> Tensor {
        if e == 2.0 {
            return self.square();
        }
        unary_map!(self, |x| x.powf(T::from_f64(e)))
    }
    /// Limits every element to `[min, max]`; NaN stays NaN.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max {
            return Err(Error::invalid(
                "clamp",
                format!("min {min} is greater than max {max}"),
            ));
        }
        Ok(unary_map!(self, |x| {
            let (lo, hi) = (T::from_f64(min), T::from_f64(max));
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        }))
    }
    /// `x + c` for a scalar `c`.
    pub fn add_scalar(&self, c: f64) -> Tensor {
        unary_map!(self, |x| x + T::from_f64(c))
    }
    /// `x - c` for a scalar `c`.
    pub fn sub_scalar(&self, c: f64) -> Tensor {
        unary_map!(self, |x| x - T::from_f64(c))
    }
    /// `x * c` for a scalar `c`.
    pub fn mul_scalar(&self, c: f64) -> Tensor {
        unary_map!(self, |x| x * T::from_f64(c))
    }
    /// `x / c` for a scalar `c`.
    pub fn div_scalar(&self, c: f64) -> Tensor {
        unary_map!(self, |x| x / T::from_f64(c))
    }
    /// `c - x` for a scalar `c`.
    pub fn rsub_scalar(&self, c: f64) -> Tensor {
        unary_map!(self, |x| T::from_f64(c) - x)
    }
    /// `x * a + b` for scalars, in one pass.
    pub fn affine(&self, a: f64, b: f64) -> Tensor {
        unary_map!(self, |x| x * T::from_f64(a) + T::from_f64(b))
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
                Tensor::from_typed(out, self.shape())
            })
        })
    }
}
