//! The element types a tensor can hold and the scalar math the kernels use.

use std::fmt;

/// The runtime element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }

    /// The numpy-style name (`float32`, `float64`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        })
    }
}

/// A floating-point element type (`f32` or `f64`). Kernels are generic over
/// it; `Tensor` itself is not.
pub trait Element:
    Copy
    + Send
    + Sync
    + PartialOrd
    + PartialEq
    + fmt::Debug
    + fmt::Display
    + Default
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
    + std::iter::Sum
    + super::storage::StorageElement
    + 'static
{
    const DTYPE: DType;
    const ZERO: Self;
    const ONE: Self;
    const INFINITY: Self;
    const NEG_INFINITY: Self;
    const NAN: Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// `e^x`; for f32 a branch-free version that vectorises (within 2 ulp).
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    /// `tanh x`; for f32 a branch-free version that vectorises (within 2 ulp).
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn erf(self) -> Self;
    /// GELU `x Φ(x)`; for f32 a fused form that vectorises.
    fn gelu(self) -> Self;
    fn is_nan(self) -> bool;
    fn floor(self) -> Self;
    /// Maximum that propagates NaN, as numpy's `maximum`.
    #[inline]
    fn max_nan(self, other: Self) -> Self {
        if self.is_nan() || other.is_nan() {
            Self::NAN
        } else if other > self {
            other
        } else {
            self
        }
    }
    /// Minimum that propagates NaN, as numpy's `minimum`.
    #[inline]
    fn min_nan(self, other: Self) -> Self {
        if self.is_nan() || other.is_nan() {
            Self::NAN
        } else if other < self {
            other
        } else {
            self
        }
    }
}

macro_rules! impl_element {
    ($t:ty, $d:expr, $erf:path, $gelu:path, $exp:path, $tanh:path) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = <$t>::INFINITY;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const NAN: Self = <$t>::NAN;
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn gelu(self) -> Self {
                $gelu(self)
            }
            #[inline]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline]
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
        }
    };
}
impl_element!(
    f32,
    DType::F32,
    crate::kernels::special::erf_f32,
    crate::kernels::special::gelu_f32,
    crate::kernels::simd::exp_f32,
    crate::kernels::simd::tanh_f32
);
impl_element!(
    f64,
    DType::F64,
    crate::kernels::special::erf,
    crate::kernels::special::gelu,
    f64::exp,
    f64::tanh
);
