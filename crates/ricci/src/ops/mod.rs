//! The tensor operations, one file per family. Every op validates its
//! arguments and returns an error naming itself and the shapes at fault.
//!
//! Dimension arguments accept `usize`, `i32`, `i64` or `isize`; negative
//! values count from the end as in numpy and PyTorch. Sets of dims accept a
//! single dim, an array, a slice or a `Vec`.

mod binary;
mod index;
mod matmul;
mod movement;
mod norm;
mod reduce;
mod unary;

pub use matmul::linear;

use smallvec::SmallVec;

use crate::error::Result;
use crate::tensor::{resolve_dim, DimVec, INLINE_DIMS};

/// Dimension indices as given (inline up to [`INLINE_DIMS`], no allocation).
pub type DimList = SmallVec<[i64; INLINE_DIMS]>;

/// A dimension index (negative counts from the end).
pub trait Dim: Copy {
    fn to_i64(self) -> i64;
}
macro_rules! impl_dim {
    ($($t:ty),*) => {$(impl Dim for $t { #[inline] fn to_i64(self) -> i64 { self as i64 } })*};
}
impl_dim!(usize, isize, i32, i64, u32);

/// A set of dimensions.
pub trait Dims {
    fn to_dims(&self) -> DimList;
}
impl<D: Dim> Dims for D {
    fn to_dims(&self) -> DimList {
        smallvec::smallvec![self.to_i64()]
    }
}
impl<D: Dim, const N: usize> Dims for [D; N] {
    fn to_dims(&self) -> DimList {
        self.iter().map(|d| d.to_i64()).collect()
    }
}
impl<D: Dim, const N: usize> Dims for &[D; N] {
    fn to_dims(&self) -> DimList {
        self.iter().map(|d| d.to_i64()).collect()
    }
}
impl<D: Dim> Dims for &[D] {
    fn to_dims(&self) -> DimList {
        self.iter().map(|d| d.to_i64()).collect()
    }
}
impl<D: Dim> Dims for Vec<D> {
    fn to_dims(&self) -> DimList {
        self.iter().map(|d| d.to_i64()).collect()
    }
}
impl Dims for DimVec {
    fn to_dims(&self) -> DimList {
        self.iter().map(|d| d.to_i64()).collect()
    }
}
impl Dims for &DimVec {
    fn to_dims(&self) -> DimList {
        self.iter().map(|d| d.to_i64()).collect()
    }
}
impl<D: Dim> Dims for &Vec<D> {
    fn to_dims(&self) -> DimList {
        self.iter().map(|d| d.to_i64()).collect()
    }
}

/// Resolves one dim against `rank`.
pub(crate) fn dim(op: &'static str, d: impl Dim, rank: usize) -> Result<usize> {
    resolve_dim(op, d.to_i64(), rank)
}

/// Resolves a set of dims: sorted, each once (a repeat is an error).
pub(crate) fn dims(op: &'static str, ds: &impl Dims, rank: usize) -> Result<DimVec> {
    let mut out = DimVec::new();
    for d in ds.to_dims() {
        let r = resolve_dim(op, d, rank)?;
        if out.contains(&r) {
            return Err(crate::Error::invalid(op, format!("dim {d} given twice")));
        }
        out.push(r);
    }
    out.sort_unstable();
    Ok(out)
}

/// Applies `$body` (an expression in `$x: T`) to every element, giving a
/// new tensor of the same shape and dtype. The input is walked in memory
/// order and the output keeps that layout (a transposed input gives a
/// transposed output), so strided inputs cost no more than contiguous ones.
macro_rules! unary_map {
    ($self:expr, |$x:ident| $body:expr) => {{
        let t: &$crate::Tensor = $self;
        let storage = t.storage();
        $crate::tensor::with_dtype!(&*storage, T, s => {
            let mut out = $crate::tensor::alloc_uninit::<T>(t.numel());
            #[allow(unused_imports)]
            use $crate::tensor::Element as _;
            let order = t.layout().memory_order();
            let walk = t.layout().permute(&order).expect("memory order is a permutation");
            $crate::kernels::strided::map_unary(s, &walk, &mut out, |$x: T| $body);
            $crate::Tensor::from_typed_in_order(out, t.shape(), &order)
        })
    }};
}
pub(crate) use unary_map;
