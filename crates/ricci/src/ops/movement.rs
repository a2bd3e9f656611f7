//! Views (no copy: reshape, permute, narrow, slice, broadcast, squeeze,
//! diagonal) and the ops that move data between tensors (contiguous, cat,
//! stack, split, pad).

use super::{dim, dims, Dim, Dims};
use crate::autograd::{record_jvp, sum_tangents};
use crate::error::{Error, Result};
use crate::kernels::strided;
use crate::tensor::{
    alloc_uninit, broadcast_shapes, inverse_permutation, resolve_dim, with_dtype, DimVec, Element,
    Layout, Tensor,
};

impl Tensor {
    /// A view with a new shape; one entry may be `-1` (inferred). Copies only
    /// when the strides cannot express the new shape (as `torch.reshape`).
    ///
    /// ```
    /// # use ricci::{Tensor, DType};
    /// let x = Tensor::zeros(&[2, 3, 4], DType::F32);
    /// assert_eq!(x.reshape([6, -1])?.shape(), &[6, 4]);
    /// assert!(x.reshape([5, -1]).is_err());
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn reshape(&self, shape: impl Dims) -> Result<Tensor> {
        let spec = shape.to_dims();
        let new_shape = infer_shape(self.shape(), &spec)?;
        if new_shape == self.shape() {
            return Ok(self.clone());
        }
        match self.layout().reshape_view(&new_shape) {
            Some(l) => Ok(self.reshaped(self.view_with(l))),
            None => Ok(self.reshaped(
                self.contiguous_data()
                    .view_with(Layout::contiguous(&new_shape)),
            )),
        }
    }

    /// Alias of [`Tensor::reshape`] (PyTorch's `view` name; copies if it must).
    pub fn view(&self, shape: impl Dims) -> Result<Tensor> {
        self.reshape(shape)
    }

    /// Reorders dimensions (a view). `[b, h, w, c] -> [b, c, h, w]` is `permute([0, 3, 1, 2])`.
    ///
    /// ```
    /// # use ricci::{Tensor, DType};
    /// let nhwc = Tensor::zeros(&[8, 32, 32, 3], DType::F32);
    /// let nchw = nhwc.permute([0, 3, 1, 2])?;
    /// assert_eq!(nchw.shape(), &[8, 3, 32, 32]);
    /// assert!(nchw.shares_storage_with(&nhwc));
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn permute(&self, order: impl Dims) -> Result<Tensor> {
        let rank = self.rank();
        let raw = order.to_dims();
        if raw.len() != rank {
            return Err(Error::invalid(
                "permute",
                format!(
                    "{raw:?} has {} dims but the tensor of shape {:?} has {rank}",
                    raw.len(),
                    self.shape()
                ),
            ));
        }
        let order: Vec<usize> = raw
            .iter()
            .map(|&d| resolve_dim("permute", d, rank))
            .collect::<Result<_>>()?;
        self.permute_dims(&order)
    }

    /// Swaps two dimensions (a view).
    pub fn transpose(&self, d0: impl Dim, d1: impl Dim) -> Result<Tensor> {
        let (a, b) = (
            dim("transpose", d0, self.rank())?,
            dim("transpose", d1, self.rank())?,
        );
        let mut order: Vec<usize> = (0..self.rank()).collect();
        order.swap(a, b);
        self.permute_dims(&order)
    }

    /// Transpose of the last two dims (of a matrix or a batch of them); a
    /// 1-D tensor is returned unchanged, as numpy's `.T`.
    pub fn t(&self) -> Result<Tensor> {
        match self.rank() {
            0 | 1 => Ok(self.clone()),
            _ => self.transpose(-2, -1),
        }
    }

    /// Moves dimension `src` to position `dst` (a view).
    pub fn movedim(&self, src: impl Dim, dst: impl Dim) -> Result<Tensor> {
        let (s, d) = (
            dim("movedim", src, self.rank())?,
            dim("movedim", dst, self.rank())?,
        );
        let mut order: Vec<usize> = (0..self.rank()).filter(|&i| i != s).collect();
        order.insert(d, s);
        self.permute_dims(&order)
    }

    /// `len` elements from `start` along `dim` (a view).
    pub fn narrow(&self, d: impl Dim, start: usize, len: usize) -> Result<Tensor> {
        let d = dim("narrow", d, self.rank())?;
        let out = self.view_with(self.layout().narrow(d, start, len)?);
        let size = self.shape()[d];
        Ok(record_jvp(
            "narrow",
            out,
            &[self],
            move |inp, g, _| {
                let mut pads = vec![(0, 0); inp[0].rank()];
                pads[d] = (start, size - start - len);
                Ok(vec![Some(g.pad(&pads, 0.0)?)])
            },
            move |_, _, t| sum_tangents(t, |_, t| t.narrow(d, start, len)),
        ))
    }

    /// Elements `start, start + step, ...` below `end` along `dim` (a view,
    /// like `x[start:end:step]`; `end` is clamped to the size).
    ///
    /// ```
    /// # use ricci::{Tensor, DType};
    /// let x = Tensor::arange(0.0, 10.0, 1.0, DType::F64)?;
    /// assert_eq!(x.slice(0, 1, 8, 3)?.to_vec::<f64>()?, vec![1.0, 4.0, 7.0]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn slice(&self, d: impl Dim, start: usize, end: usize, step: usize) -> Result<Tensor> {
        let d = dim("slice", d, self.rank())?;
        let out = self.view_with(self.layout().slice(d, start, end, step)?);
        let picked: Vec<usize> = (0..out.shape()[d]).map(|i| start + i * step).collect();
        Ok(record_jvp(
            "slice",
            out,
            &[self],
            move |inp, g, _| {
                let idx = Tensor::from_indices(&picked, &[picked.len()], g.dtype())?;
                Ok(vec![Some(inp[0].zeros_like().index_add(d, &idx, g)?)])
            },
            move |_, _, t| sum_tangents(t, |_, t| t.slice(d, start, end, step)),
        ))
    }

    /// Removes dimension `dim`, which must have size 1 (a view).
    pub fn squeeze(&self, d: impl Dim) -> Result<Tensor> {
        let d = dim("squeeze", d, self.rank())?;
        if self.shape()[d] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!(
                    "dim {d} has size {} (shape {:?}), not 1",
                    self.shape()[d],
                    self.shape()
                ),
            ));
        }
        Ok(self.reshaped(self.view_with(self.layout().squeeze(d))))
    }

    /// Removes every size-1 dimension (a view).
    pub fn squeeze_all(&self) -> Tensor {
        let mut l = self.layout().clone();
        for d in (0..self.rank()).rev() {
            if self.shape()[d] == 1 {
                l = l.squeeze(d);
            }
        }
        self.reshaped(self.view_with(l))
    }

    /// Inserts a size-1 dimension at `dim` (`-1` appends), a view.
    pub fn unsqueeze(&self, d: impl Dim) -> Result<Tensor> {
        let d = resolve_dim("unsqueeze", d.to_i64(), self.rank() + 1)?;
        Ok(self.reshaped(self.view_with(self.layout().unsqueeze(d))))
    }

    /// Broadcasts to `shape` with numpy rules (a view with stride 0 along stretched dims).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let out = self.view_with(self.layout().broadcast_to(shape)?);
        Ok(record_jvp(
            "broadcast_to",
            out,
            &[self],
            |inp, g, _| Ok(vec![Some(g.sum_to_shape(inp[0].shape())?)]),
            |_, out, t| sum_tangents(t, |_, t| t.broadcast_to(out.shape())),
        ))
    }

    /// PyTorch's `expand`: like `broadcast_to`, with `-1` meaning "keep this size".
    pub fn expand(&self, shape: impl Dims) -> Result<Tensor> {
        let spec = shape.to_dims();
        let requested: Vec<usize> = spec.iter().map(|&s| s.max(0) as usize).collect();
        let mismatch = || Error::ShapeMismatch {
            op: "expand",
            lhs: self.shape().to_vec(),
            rhs: requested.clone(),
        };
        let lead = spec.len().checked_sub(self.rank()).ok_or_else(mismatch)?;
        let target: Vec<usize> = spec
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                if s == -1 && i >= lead {
                    Ok(self.shape()[i - lead])
                } else if s >= 0 {
                    Ok(s as usize)
                } else {
                    Err(Error::invalid(
                        "expand",
                        format!("bad size {s} in {spec:?}"),
                    ))
                }
            })
            .collect::<Result<_>>()?;
        self.broadcast_to(&target).map_err(|_| mismatch())
    }

    /// Merges dims `start..=end` into one (a view when possible).
    pub fn flatten(&self, start: impl Dim, end: impl Dim) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape([1]);
        }
        let (s, e) = (
            dim("flatten", start, self.rank())?,
            dim("flatten", end, self.rank())?,
        );
        if s > e {
            return Err(Error::invalid(
                "flatten",
                format!("start dim {s} is after end dim {e}"),
            ));
        }
        let mut shape: Vec<usize> = self.shape()[..s].to_vec();
        shape.push(self.shape()[s..=e].iter().product());
        shape.extend_from_slice(&self.shape()[e + 1..]);
        self.reshape(shape)
    }

    /// All elements as one dimension.
    pub fn flatten_all(&self) -> Tensor {
        self.reshape([-1]).unwrap_or_else(|_| self.clone())
    }

    /// The diagonal of dims `d0`, `d1` with `offset` (positive: above), as
    /// the last dimension of a view (numpy's `diagonal`).
    pub fn diagonal(&self, offset: isize, d0: impl Dim, d1: impl Dim) -> Result<Tensor> {
        let (a, b) = (
            dim("diagonal", d0, self.rank())?,
            dim("diagonal", d1, self.rank())?,
        );
        let out = self.view_with(self.layout().diagonal(offset, a, b)?);
        Ok(record_jvp(
            "diagonal",
            out,
            &[self],
            move |inp, g, _| {
                Ok(vec![Some(diagonal_backward(
                    g,
                    inp[0].shape(),
                    offset,
                    a,
                    b,
                )?)])
            },
            move |_, _, t| sum_tangents(t, |_, t| t.diagonal(offset, a, b)),
        ))
    }

    /// This tensor with a row-major layout: itself if already so, else a copy.
    pub fn contiguous(&self) -> Tensor {
        // A contiguous window into a larger buffer (e.g. from `narrow` on
        // dim 0) is already row-major and is returned as is.
        if self.is_contiguous() {
            return self.clone();
        }
        self.copy()
    }

    /// A fresh row-major copy that shares nothing with `self`.
    pub fn copy(&self) -> Tensor {
        record_jvp(
            "copy",
            self.copy_data(),
            &[self],
            |_, g, _| Ok(vec![Some(g.clone())]),
            |_, _, t| sum_tangents(t, |_, t| Ok(t.clone())),
        )
    }

    /// A fresh row-major copy of the elements, outside the graph.
    pub(crate) fn copy_data(&self) -> Tensor {
        let storage = self.storage();
        with_dtype!(&*storage, T, s => {
            let mut out = alloc_uninit::<T>(self.numel());
            strided::copy_to_contiguous(s, self.layout(), &mut out);
            Tensor::from_typed(out, self.shape())
        })
    }

    /// The elements row-major, outside the graph: `self` detached when
    /// already contiguous, else a copy. For ops that hand contiguous data to
    /// a kernel and record their own VJP, so no copy node is built for nothing.
    pub(crate) fn contiguous_data(&self) -> Tensor {
        if self.is_contiguous() {
            self.detach()
        } else {
            self.copy_data()
        }
    }

    /// Joins tensors along an existing dimension.
    ///
    /// ```
    /// # use ricci::{Tensor, DType};
    /// let a = Tensor::zeros(&[2, 3], DType::F32);
    /// let b = Tensor::ones(&[2, 1], DType::F32);
    /// assert_eq!(Tensor::cat(&[&a, &b], 1)?.shape(), &[2, 4]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn cat(tensors: &[&Tensor], d: impl Dim) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("cat", "no tensors given"))?;
        let rank = first.rank();
        if rank == 0 {
            return Err(Error::invalid(
                "cat",
                "cannot concatenate rank-0 tensors (use stack)",
            ));
        }
        let d = dim("cat", d, rank)?;
        let mut shape = first.shape().to_vec();
        shape[d] = 0;
        for t in tensors {
            first.same_dtype("cat", t)?;
            let ok =
                t.rank() == rank && (0..rank).all(|i| i == d || t.shape()[i] == first.shape()[i]);
            if !ok {
                return Err(Error::shape("cat", first.shape(), t.shape()));
            }
            shape[d] += t.shape()[d];
        }
        let n: usize = shape.iter().product();
        let out_layout = Layout::contiguous(&shape);
        let out = crate::tensor::with_type!(first.dtype(), T => {
            let mut out = alloc_uninit::<T>(n);
            let mut at = 0;
            for t in tensors {
                let len = t.shape()[d];
                let dst = out_layout.narrow(d, at, len)?;
                let storage = t.storage();
                let src = &storage.as_slice::<T>().expect("dtype checked");
                strided::assign(&mut out, &dst, src, t.layout());
                at += len;
            }
            Tensor::from_typed(out, &shape)
        });
        let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[d]).collect();
        Ok(record_jvp(
            "cat",
            out,
            tensors,
            move |_, g, needs| {
                let mut at = 0;
                let mut grads = Vec::with_capacity(sizes.len());
                for (&len, &need) in sizes.iter().zip(needs) {
                    grads.push(if need {
                        Some(g.narrow(d, at, len)?)
                    } else {
                        None
                    });
                    at += len;
                }
                Ok(grads)
            },
            move |inp, _, t| {
                let parts: Vec<Tensor> = inp
                    .iter()
                    .zip(t)
                    .map(|(x, t)| t.clone().unwrap_or_else(|| x.zeros_like()))
                    .collect();
                Tensor::cat(&parts.iter().collect::<Vec<_>>(), d)
            },
        ))
    }

    /// Joins same-shaped tensors along a new dimension `dim`.
    pub fn stack(tensors: &[&Tensor], d: impl Dim) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("stack", "no tensors given"))?;
        let d = resolve_dim("stack", d.to_i64(), first.rank() + 1)?;
        let mut parts = Vec::with_capacity(tensors.len());
        for t in tensors {
            first.same_dtype("stack", t)?;
            if t.shape() != first.shape() {
                return Err(Error::shape("stack", first.shape(), t.shape()));
            }
            parts.push(t.unsqueeze(d)?);
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        Tensor::cat(&refs, d)
    }

    /// Views of consecutive pieces of `size` along `dim` (the last may be smaller).
    pub fn split(&self, size: usize, d: impl Dim) -> Result<Vec<Tensor>> {
        let d = dim("split", d, self.rank())?;
        if size == 0 {
            return Err(Error::invalid("split", "piece size must be positive"));
        }
        let n = self.shape()[d];
        (0..n.div_ceil(size).max(1))
            .map(|i| {
                let start = (i * size).min(n);
                self.narrow(d, start, size.min(n - start))
            })
            .collect()
    }

    /// Views of pieces of the given sizes along `dim` (they must sum to its size).
    pub fn split_sizes(&self, sizes: &[usize], d: impl Dim) -> Result<Vec<Tensor>> {
        let d = dim("split_sizes", d, self.rank())?;
        if sizes.iter().sum::<usize>() != self.shape()[d] {
            return Err(Error::invalid(
                "split_sizes",
                format!(
                    "sizes {sizes:?} do not sum to dim {d} of shape {:?}",
                    self.shape()
                ),
            ));
        }
        let mut at = 0;
        sizes
            .iter()
            .map(|&s| {
                let v = self.narrow(d, at, s);
                at += s;
                v
            })
            .collect()
    }

    /// `chunks` views of (nearly) equal size along `dim`, as `torch.chunk`.
    pub fn chunk(&self, chunks: usize, d: impl Dim) -> Result<Vec<Tensor>> {
        let dd = dim("chunk", d, self.rank())?;
        if chunks == 0 {
            return Err(Error::invalid("chunk", "number of chunks must be positive"));
        }
        let size = self.shape()[dd].div_ceil(chunks).max(1);
        self.split(size, dd)
    }

    /// Pads with a constant: `pads[i] = (before, after)` for dim `i`, outermost
    /// first, one pair per dimension (numpy's `pad` with mode "constant").
    pub fn pad(&self, pads: &[(usize, usize)], value: f64) -> Result<Tensor> {
        if pads.len() != self.rank() {
            return Err(Error::invalid(
                "pad",
                format!(
                    "{} (before, after) pairs given for a tensor of shape {:?}",
                    pads.len(),
                    self.shape()
                ),
            ));
        }
        let shape: Vec<usize> = self
            .shape()
            .iter()
            .zip(pads)
            .map(|(&d, &(b, a))| d.checked_add(b).and_then(|x| x.checked_add(a)))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::invalid(
                    "pad",
                    format!("padding {pads:?} of shape {:?} overflows", self.shape()),
                )
            })?;
        if shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .is_none()
        {
            return Err(Error::invalid(
                "pad",
                format!("padded shape {shape:?} is too large"),
            ));
        }
        let mut dst = Layout::contiguous(&shape);
        for (i, &(b, _)) in pads.iter().enumerate() {
            dst = dst.narrow(i, b, self.shape()[i])?;
        }
        let n: usize = shape.iter().product();
        let storage = self.storage();
        let out = with_dtype!(&*storage, T, s => {
            let mut out = alloc_uninit::<T>(n);
            crate::kernels::par::fill(&mut out, T::from_f64(value));
            strided::assign(&mut out, &dst, s, self.layout());
            Tensor::from_typed(out, &shape)
        });
        let pads = pads.to_vec();
        let pads_jvp = pads.clone();
        Ok(record_jvp(
            "pad",
            out,
            &[self],
            move |inp, g, _| {
                let mut x = g.clone();
                for (i, &(b, _)) in pads.iter().enumerate() {
                    x = x.narrow(i, b, inp[0].shape()[i])?;
                }
                Ok(vec![Some(x)])
            },
            // The padding is a constant: its tangent is zero.
            move |_, _, t| sum_tangents(t, |_, t| t.pad(&pads_jvp, 0.0)),
        ))
    }

    /// Records `out` (a reshape of `self`) with the VJP "reshape back".
    fn reshaped(&self, out: Tensor) -> Tensor {
        record_jvp(
            "reshape",
            out,
            &[self],
            |inp, g, _| Ok(vec![Some(g.reshape(inp[0].shape().to_vec())?)]),
            |_, out, t| sum_tangents(t, |_, t| t.reshape(out.shape().to_vec())),
        )
    }

    /// The permuted view, recorded with the VJP "permute back".
    fn permute_dims(&self, order: &[usize]) -> Result<Tensor> {
        let out = self.view_with(self.layout().permute(order)?);
        let inv = inverse_permutation(order);
        let order = order.to_vec();
        Ok(record_jvp(
            "permute",
            out,
            &[self],
            move |_, g, _| Ok(vec![Some(g.permute(inv.clone())?)]),
            move |_, _, t| sum_tangents(t, |_, t| t.permute(order.clone())),
        ))
    }

    /// Sums a gradient of a broadcast shape back to `shape` (the VJP of
    /// `broadcast_to`): over the leading dims it added, and over the dims
    /// where `shape` has size 1.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let full = broadcast_shapes("sum_to_shape", shape, self.shape())?;
        if full[..] != *self.shape() {
            return Err(Error::shape("sum_to_shape", self.shape(), shape));
        }
        let lead = self.rank() - shape.len();
        let mut x = if lead > 0 {
            self.sum((0..lead).collect::<Vec<usize>>(), false)?
        } else {
            self.clone()
        };
        let ones: Vec<usize> = (0..shape.len())
            .filter(|&i| shape[i] == 1 && x.shape()[i] != 1)
            .collect();
        if !ones.is_empty() {
            x = x.sum(ones, true)?;
        }
        Ok(x)
    }

    /// Resolves `dims` against this tensor's rank (sorted, unique).
    pub(crate) fn resolve_dims(&self, op: &'static str, ds: &impl Dims) -> Result<DimVec> {
        dims(op, ds, self.rank())
    }
}

/// The VJP of `diagonal`: `g` (shape `rest + [L]`) placed on the diagonal
/// of dims `d0`, `d1` of a zero tensor of `shape`. With selection matrices
/// `S0[i, k] = [i = k + start0]` and `S1[j, k] = [j = k + start1]`, the
/// plane is `S0 diag(g) S1ᵀ`, computed with differentiable ops so that the
/// gradient can be differentiated again.
fn diagonal_backward(
    g: &Tensor,
    shape: &[usize],
    offset: isize,
    d0: usize,
    d1: usize,
) -> Result<Tensor> {
    let (n0, n1) = (shape[d0], shape[d1]);
    let len = g.shape()[g.rank() - 1];
    let (start0, start1) = if offset >= 0 {
        (0, offset as usize)
    } else {
        (offset.unsigned_abs(), 0)
    };
    let selection = |n: usize, start: usize| -> Result<Tensor> {
        let mut m = vec![0.0f64; n * len];
        for k in 0..len {
            m[(k + start) * len + k] = 1.0;
        }
        Ok(Tensor::from_vec(m, &[n, len])?.to_dtype(g.dtype()))
    };
    let (s0, s1) = (selection(n0, start0)?, selection(n1, start1)?);
    // [rest..., n0, L] * [rest..., 1, L] -> matmul [L, n1] -> [rest..., n0, n1]
    let plane = s0.mul(&g.unsqueeze(-2)?)?.matmul(&s1.t()?)?;
    let rank = shape.len();
    let mut rest = 0..rank - 2;
    let perm: Vec<usize> = (0..rank)
        .map(|p| {
            if p == d0 {
                rank - 2
            } else if p == d1 {
                rank - 1
            } else {
                rest.next().unwrap_or(0)
            }
        })
        .collect();
    plane.permute(perm)
}

/// Resolves a reshape spec (one `-1` allowed) against the element count of `shape`.
fn infer_shape(shape: &[usize], spec: &[i64]) -> Result<Vec<usize>> {
    let numel: usize = shape.iter().product();
    let mut infer = None;
    let mut known = 1usize;
    for (i, &s) in spec.iter().enumerate() {
        if s == -1 {
            if infer.replace(i).is_some() {
                return Err(Error::invalid(
                    "reshape",
                    format!("more than one -1 in {spec:?}"),
                ));
            }
        } else if s < 0 {
            return Err(Error::invalid(
                "reshape",
                format!("negative size {s} in {spec:?}"),
            ));
        } else {
            known = known.saturating_mul(s as usize);
        }
    }
    let mut out: Vec<usize> = spec.iter().map(|&s| s.max(0) as usize).collect();
    if let Some(i) = infer {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(Error::invalid(
                "reshape",
                format!("cannot reshape {shape:?} ({numel} elements) into {spec:?}"),
            ));
        }
        out[i] = numel / known;
    } else if known != numel {
        return Err(Error::invalid(
            "reshape",
            format!("cannot reshape {shape:?} ({numel} elements) into {spec:?}"),
        ));
    }
    Ok(out)
}
