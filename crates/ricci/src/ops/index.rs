//! Indexing: select, gather, scatter-add, masks, triangles, one-hot and
//! embedding lookup.
//!
//! ricci has float dtypes only, so index tensors hold integers as floats
//! (exact to 2^24 in f32, 2^53 in f64). Every index is checked: it must be
//! a non-negative integer below the size of the dimension it indexes.

use super::{dim, Dim};
use crate::autograd::{record_jvp, sum_tangents};
use crate::error::{Error, Result};
use crate::tensor::{alloc_uninit, alloc_zeroed, with_dtype, Element, Tensor};

/// Reads an index tensor as `usize`s, checking each against `bound`.
fn read_indices(op: &'static str, index: &Tensor, bound: usize) -> Result<Vec<usize>> {
    index
        .to_vec_f64()
        .into_iter()
        .map(|v| {
            if v >= 0.0 && v.fract() == 0.0 && v < bound as f64 {
                Ok(v as usize)
            } else {
                Err(Error::invalid(
                    op,
                    format!("index {v} is out of range for a dimension of size {bound}"),
                ))
            }
        })
        .collect()
}

/// The JVP of an op that adds `src` into a copy of `base` (`index_add`,
/// `scatter_add`): linear in both, so the same op on the tangents, `add`,
/// with a zero base where `base` has no tangent.
fn add_into_tangent(
    out: &Tensor,
    t: &[Option<Tensor>],
    add: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let base = t[0].clone().unwrap_or_else(|| out.zeros_like());
    match &t[1] {
        Some(src) => add(&base, src),
        None => Ok(base),
    }
}

impl Tensor {
    /// Picks entries `indices` (a 1-D tensor of integer values) along `dim`.
    ///
    /// ```
    /// # use ricci::{Tensor, DType};
    /// let x = Tensor::arange(0.0, 6.0, 1.0, DType::F32)?.reshape([3, 2])?;
    /// let i = Tensor::from_indices(&[2, 0], &[2], DType::F32)?;
    /// assert_eq!(x.index_select(0, &i)?.to_vec::<f32>()?, vec![4.0, 5.0, 0.0, 1.0]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn index_select(&self, d: impl Dim, indices: &Tensor) -> Result<Tensor> {
        let d = dim("index_select", d, self.rank())?;
        if indices.rank() != 1 {
            return Err(Error::invalid(
                "index_select",
                format!("indices must be 1-D, got shape {:?}", indices.shape()),
            ));
        }
        let idx = read_indices("index_select", indices, self.shape()[d])?;
        let x = self.contiguous_data();
        let shape = x.shape();
        let (a, r, b): (usize, usize, usize) = (
            shape[..d].iter().product(),
            shape[d],
            shape[d + 1..].iter().product(),
        );
        let mut out_shape = shape.to_vec();
        out_shape[d] = idx.len();
        let storage = x.storage();
        let out = with_dtype!(&*storage, T, s => {
            let s = &s[x.layout().offset()..];
            let mut out = alloc_uninit::<T>(a * idx.len() * b);
            for i in 0..a {
                for (j, &k) in idx.iter().enumerate() {
                    let src = &s[(i * r + k) * b..(i * r + k + 1) * b];
                    out[(i * idx.len() + j) * b..(i * idx.len() + j + 1) * b].copy_from_slice(src);
                }
            }
            Tensor::from_typed(out, &out_shape)
        });
        let indices = indices.detach();
        let jvp_indices = indices.clone();
        Ok(record_jvp(
            "index_select",
            out,
            &[self],
            move |inp, g, _| Ok(vec![Some(inp[0].zeros_like().index_add(d, &indices, g)?)]),
            move |_, _, t| sum_tangents(t, |_, t| t.index_select(d, &jvp_indices)),
        ))
    }

    /// A copy of `self` with the slices of `src` along `dim` added at
    /// `indices` (a 1-D tensor of integer values; repeats accumulate), as
    /// PyTorch's `index_add`. The VJP of `index_select`.
    pub fn index_add(&self, d: impl Dim, indices: &Tensor, src: &Tensor) -> Result<Tensor> {
        let op = "index_add";
        let d = dim(op, d, self.rank())?;
        self.same_dtype(op, src)?;
        if indices.rank() != 1 {
            return Err(Error::invalid(
                op,
                format!("indices must be 1-D, got shape {:?}", indices.shape()),
            ));
        }
        let mut want = self.shape().to_vec();
        want[d] = indices.numel();
        if src.shape() != want.as_slice() {
            return Err(Error::shape(op, &want, src.shape()));
        }
        let idx = read_indices(op, indices, self.shape()[d])?;
        let base = self.copy_data();
        let src_c = src.contiguous_data();
        let shape = self.shape().to_vec();
        let (a, r, b): (usize, usize, usize) = (
            shape[..d].iter().product(),
            shape[d],
            shape[d + 1..].iter().product(),
        );
        {
            let mut out_storage = base.storage_mut();
            let src_storage = src_c.storage();
            with_dtype!(&mut *out_storage, T, out => {
                let sv = &src_storage.as_slice::<T>().expect("dtype checked")[src_c.layout().offset()..];
                let l = idx.len();
                for i in 0..a {
                    for (j, &k) in idx.iter().enumerate() {
                        let dst = &mut out[(i * r + k) * b..(i * r + k + 1) * b];
                        let from = &sv[(i * l + j) * b..(i * l + j + 1) * b];
                        dst.iter_mut().zip(from).for_each(|(o, &v)| *o += v);
                    }
                }
            });
        }
        let indices = indices.detach();
        let jvp_indices = indices.clone();
        Ok(record_jvp(
            op,
            base,
            &[self, src],
            move |_, g, needs| {
                Ok(vec![
                    needs[0].then(|| g.clone()),
                    if needs[1] {
                        Some(g.index_select(d, &indices)?)
                    } else {
                        None
                    },
                ])
            },
            move |_, out, t| {
                add_into_tangent(out, t, |base, src| base.index_add(d, &jvp_indices, src))
            },
        ))
    }

    /// Rows of this `[vocab, dim]` weight for each id: output shape is
    /// `ids.shape() + [dim]` (PyTorch's `F.embedding(ids, weight)`).
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(Error::invalid(
                "embedding",
                format!("weight must be [vocab, dim], got shape {:?}", self.shape()),
            ));
        }
        read_indices("embedding", ids, self.shape()[0])?;
        let flat = ids.flatten_all();
        let rows = self.index_select(0, &flat)?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.shape()[1]);
        rows.reshape(shape)
    }

    /// `out[..., i, ...] = self[..., index[..., i, ...], ...]` along `dim`
    /// (PyTorch's `gather`): `index` has this tensor's rank, and is no larger
    /// than it along every other dim; the output has `index`'s shape.
    pub fn gather(&self, d: impl Dim, index: &Tensor) -> Result<Tensor> {
        let op = "gather";
        let d = dim(op, d, self.rank())?;
        check_index_shape(op, self.shape(), index.shape(), d)?;
        let idx = read_indices(op, index, self.shape()[d])?;
        let x = self.contiguous_data();
        let strides = crate::tensor::contiguous_strides(x.shape());
        let ishape = index.shape().to_vec();
        let storage = x.storage();
        let out = with_dtype!(&*storage, T, s => {
            let s = &s[x.layout().offset()..];
            let mut out = alloc_uninit::<T>(idx.len());
            for_each_index(&ishape, |flat, pos| {
                let mut o = 0isize;
                for (k, &p) in pos.iter().enumerate() {
                    o += if k == d { idx[flat] as isize } else { p as isize } * strides[k];
                }
                out[flat] = s[o as usize];
            });
            Tensor::from_typed(out, &ishape)
        });
        let index = index.detach();
        let jvp_index = index.clone();
        Ok(record_jvp(
            op,
            out,
            &[self],
            move |inp, g, _| Ok(vec![Some(inp[0].zeros_like().scatter_add(d, &index, g)?)]),
            move |_, _, t| sum_tangents(t, |_, t| t.gather(d, &jvp_index)),
        ))
    }

    /// A copy of `self` with `src` added at `index` along `dim`:
    /// `out[..., index[..., i, ...], ...] += src[..., i, ...]` (PyTorch's
    /// `scatter_add`; repeated indices accumulate).
    pub fn scatter_add(&self, d: impl Dim, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let op = "scatter_add";
        let d = dim(op, d, self.rank())?;
        self.same_dtype(op, src)?;
        check_index_shape(op, self.shape(), index.shape(), d)?;
        if src.rank() != index.rank() || index.shape().iter().zip(src.shape()).any(|(i, s)| i > s) {
            return Err(Error::shape(op, index.shape(), src.shape()));
        }
        let idx = read_indices(op, index, self.shape()[d])?;
        let base = self.copy_data();
        let strides = crate::tensor::contiguous_strides(self.shape());
        let sstrides = src.stride().to_vec();
        let soff = src.layout().offset();
        let ishape = index.shape().to_vec();
        {
            let mut out_storage = base.storage_mut();
            let src_storage = src.storage();
            with_dtype!(&mut *out_storage, T, out => {
                let sv = &src_storage.as_slice::<T>().expect("dtype checked");
                for_each_index(&ishape, |flat, pos| {
                    let mut o = 0isize;
                    let mut so = soff as isize;
                    for (k, &p) in pos.iter().enumerate() {
                        o += if k == d { idx[flat] as isize } else { p as isize } * strides[k];
                        so += p as isize * sstrides[k];
                    }
                    out[o as usize] += sv[so as usize];
                });
            });
        }
        let index = index.detach();
        let src_shape = src.shape().to_vec();
        let jvp_index = index.clone();
        Ok(record_jvp(
            op,
            base,
            &[self, src],
            move |_, g, needs| {
                let dsrc = if needs[1] {
                    // Only the part of src that index covers was scattered.
                    let picked = g.gather(d, &index)?;
                    let pads: Vec<(usize, usize)> = picked
                        .shape()
                        .iter()
                        .zip(&src_shape)
                        .map(|(&p, &s)| (0, s - p))
                        .collect();
                    Some(picked.pad(&pads, 0.0)?)
                } else {
                    None
                };
                Ok(vec![needs[0].then(|| g.clone()), dsrc])
            },
            move |_, out, t| {
                add_into_tangent(out, t, |base, src| base.scatter_add(d, &jvp_index, src))
            },
        ))
    }

    /// `value` where `mask` (broadcast to this shape, any dtype) is non-zero, `self` elsewhere.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        self.same_dtype("masked_fill", mask)?;
        let m = mask
            .broadcast_to(self.shape())
            .map_err(|_| Error::shape("masked_fill", self.shape(), mask.shape()))?;
        let fill = Tensor::scalar_of(value, self.dtype());
        Tensor::where_(&m, &fill, self)
    }

    /// The lower triangle of the last two dims (entries with `j - i <= k`), zeros above.
    pub fn tril(&self, k: isize) -> Result<Tensor> {
        self.triangle("tril", k, true)
    }
    /// The upper triangle of the last two dims (entries with `j - i >= k`), zeros below
    /// (exact zeros, even where the input is infinite or NaN, as in numpy).
    ///
    /// ```
    /// # use ricci::{Tensor, DType};
    /// let mask = Tensor::full(&[3, 3], f64::NEG_INFINITY, DType::F32).triu(1)?;
    /// assert_eq!(mask.to_vec::<f32>()?[..4], [0.0, f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn triu(&self, k: isize) -> Result<Tensor> {
        self.triangle("triu", k, false)
    }

    fn triangle(&self, op: &'static str, k: isize, lower: bool) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::invalid(
                op,
                format!("needs a matrix, got shape {:?}", self.shape()),
            ));
        }
        let (m, n) = (self.shape()[self.rank() - 2], self.shape()[self.rank() - 1]);
        let mut mask = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let diff = j as isize - i as isize;
                if (lower && diff <= k) || (!lower && diff >= k) {
                    mask[i * n + j] = 1.0;
                }
            }
        }
        let mask = Tensor::from_vec(mask, &[m, n])?.to_dtype(self.dtype());
        // A select, not a product with the mask: inf * 0 would leave NaN
        // where numpy and torch give 0 (`triu(full(-inf), 1)` is the usual
        // way to build a causal mask).
        Tensor::where_(&mask, self, &Tensor::scalar_of(0.0, self.dtype()))
    }

    /// One-hot rows for integer values in `self`: shape `self.shape() + [num_classes]`.
    pub fn one_hot(&self, num_classes: usize) -> Result<Tensor> {
        let idx = read_indices("one_hot", self, num_classes)?;
        let mut shape = self.shape().to_vec();
        shape.push(num_classes);
        Ok(crate::tensor::with_type!(self.dtype(), T => {
            let mut out = alloc_zeroed::<T>(idx.len() * num_classes);
            for (r, &c) in idx.iter().enumerate() {
                out[r * num_classes + c] = T::ONE;
            }
            Tensor::from_typed(out, &shape)
        }))
    }
}

fn check_index_shape(op: &'static str, shape: &[usize], ishape: &[usize], d: usize) -> Result<()> {
    let ok = ishape.len() == shape.len()
        && ishape
            .iter()
            .zip(shape)
            .enumerate()
            .all(|(k, (i, s))| k == d || i <= s);
    if !ok {
        return Err(Error::shape(op, shape, ishape));
    }
    Ok(())
}

/// Calls `f(flat, multi_index)` for every position of `shape` in row-major order.
fn for_each_index(shape: &[usize], mut f: impl FnMut(usize, &[usize])) {
    let n: usize = shape.iter().product();
    let mut pos = vec![0usize; shape.len()];
    for flat in 0..n {
        f(flat, &pos);
        for k in (0..shape.len()).rev() {
            pos[k] += 1;
            if pos[k] < shape[k] {
                break;
            }
            pos[k] = 0;
        }
    }
}
