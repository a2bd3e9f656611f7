//! Creating tensors: from data, constants, ranges, identity, random.

use super::{with_type, DType, Element, Rng, Tensor};
use crate::error::{Error, Result};

fn check_len(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n != Some(len) {
        return Err(Error::invalid(
            op,
            format!("{len} elements cannot fill shape {shape:?}"),
        ));
    }
    Ok(())
}

impl Tensor {
    /// A tensor owning `data`, laid out row-major in `shape`.
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(x.shape(), &[2, 3]);
    /// assert!(Tensor::from_vec(vec![1.0f32; 5], &[2, 3]).is_err());
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        check_len("from_vec", data.len(), shape)?;
        Ok(Tensor::from_typed(data, shape))
    }

    /// A tensor copying `data`, laid out row-major in `shape`.
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        check_len("from_slice", data.len(), shape)?;
        Ok(Tensor::from_typed(data.to_vec(), shape))
    }

    /// A rank-0 tensor holding `value`.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor::from_typed(vec![value], &[])
    }

    /// A rank-0 tensor of `dtype` holding `value`.
    pub fn scalar_of(value: f64, dtype: DType) -> Tensor {
        Tensor::full(&[], value, dtype)
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        let n = shape.iter().product();
        with_type!(dtype, T => {
            let mut v = super::alloc_uninit::<T>(n);
            crate::kernels::par::fill(&mut v, T::from_f64(value));
            Tensor::from_typed(v, shape)
        })
    }

    /// Zeros of `shape`.
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 0.0, dtype)
    }

    /// Ones of `shape`.
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 1.0, dtype)
    }

    /// Zeros with this tensor's shape and dtype.
    pub fn zeros_like(&self) -> Tensor {
        Tensor::zeros(self.shape(), self.dtype())
    }

    /// Ones with this tensor's shape and dtype.
    pub fn ones_like(&self) -> Tensor {
        Tensor::ones(self.shape(), self.dtype())
    }

    /// `value` with this tensor's shape and dtype.
    pub fn full_like(&self, value: f64) -> Tensor {
        Tensor::full(self.shape(), value, self.dtype())
    }

    /// `start, start + step, ...` below `end` (as numpy's `arange`).
    ///
    /// ```
    /// # use ricci::{Tensor, DType};
    /// let x = Tensor::arange(0.0, 1.0, 0.25, DType::F64)?;
    /// assert_eq!(x.to_vec::<f64>()?, vec![0.0, 0.25, 0.5, 0.75]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid(
                "arange",
                format!("need finite start, end and a non-zero step; got {start}, {end}, {step}"),
            ));
        }
        let count = ((end - start) / step).ceil().max(0.0);
        if count > (1u64 << 40) as f64 {
            return Err(Error::invalid(
                "arange",
                format!("{start}..{end} by {step} would have {count:e} elements"),
            ));
        }
        let n = count as usize;
        Ok(with_type!(dtype, T => {
            let v: Vec<T> = (0..n).map(|i| T::from_f64(start + i as f64 * step)).collect();
            Tensor::from_typed(v, &[n])
        }))
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive.
    pub fn linspace(start: f64, end: f64, steps: usize, dtype: DType) -> Result<Tensor> {
        if !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid(
                "linspace",
                format!("need finite ends, got {start}, {end}"),
            ));
        }
        let step = if steps > 1 {
            (end - start) / (steps - 1) as f64
        } else {
            0.0
        };
        Ok(with_type!(dtype, T => {
            let v: Vec<T> = (0..steps)
                .map(|i| if i + 1 == steps && steps > 1 { T::from_f64(end) } else { T::from_f64(start + i as f64 * step) })
                .collect();
            Tensor::from_typed(v, &[steps])
        }))
    }

    /// The `n x n` identity matrix.
    pub fn eye(n: usize, dtype: DType) -> Tensor {
        with_type!(dtype, T => {
            let mut v = vec![T::ZERO; n * n];
            for i in 0..n {
                v[i * n + i] = T::ONE;
            }
            Tensor::from_typed(v, &[n, n])
        })
    }

    /// Uniform samples in `[0, 1)` from `rng`.
    ///
    /// ```
    /// # use ricci::{Tensor, DType, Rng};
    /// let a = Tensor::rand(&[3], DType::F32, &mut Rng::new(0));
    /// let b = Tensor::rand(&[3], DType::F32, &mut Rng::new(0));
    /// assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn rand(shape: &[usize], dtype: DType, rng: &mut Rng) -> Tensor {
        let n = shape.iter().product();
        with_type!(dtype, T => {
            let mut v = super::alloc_uninit::<T>(n);
            v.iter_mut().for_each(|x| *x = T::from_f64(rng.uniform()));
            Tensor::from_typed(v, shape)
        })
    }

    /// Standard normal samples from `rng`.
    pub fn randn(shape: &[usize], dtype: DType, rng: &mut Rng) -> Tensor {
        let n = shape.iter().product();
        with_type!(dtype, T => {
            let mut v = super::alloc_uninit::<T>(n);
            v.iter_mut().for_each(|x| *x = T::from_f64(rng.normal()));
            Tensor::from_typed(v, shape)
        })
    }

    /// Uniform samples in `[low, high)` from `rng`.
    pub fn uniform(shape: &[usize], low: f64, high: f64, dtype: DType, rng: &mut Rng) -> Tensor {
        let n = shape.iter().product();
        with_type!(dtype, T => {
            let mut v = super::alloc_uninit::<T>(n);
            v.iter_mut().for_each(|x| *x = T::from_f64(low + (high - low) * rng.uniform()));
            Tensor::from_typed(v, shape)
        })
    }

    /// A tensor of integer ids (stored in `dtype`), for `index_select`, `gather`, `embedding`.
    ///
    /// ricci has float dtypes only; indices are floats holding integers
    /// (exact up to 2^24 in f32 and 2^53 in f64) and are checked when used.
    pub fn from_indices(ids: &[usize], shape: &[usize], dtype: DType) -> Result<Tensor> {
        check_len("from_indices", ids.len(), shape)?;
        Ok(with_type!(dtype, T => {
            Tensor::from_typed(ids.iter().map(|&i| T::from_f64(i as f64)).collect::<Vec<T>>(), shape)
        }))
    }
}
