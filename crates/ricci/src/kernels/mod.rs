//! Plain CPU loops that ops call. Kernels see slices and layouts, never
//! `Tensor` or the autograd graph.
//!
//! Each family has a contiguous fast path of tight loops the compiler
//! vectorises, a strided fallback whose innermost loop runs along the
//! output's contiguous dimension, and rayon parallelism above
//! [`par::PAR_MIN_ELEMS`].

pub mod attention;
pub mod basis;
pub mod map;
pub mod matmul;
pub mod norm;
pub mod par;
pub mod reduce;
pub mod simd;
pub mod special;
pub mod strided;
