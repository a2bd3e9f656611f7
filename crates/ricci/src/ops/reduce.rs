//! Reductions over any set of dims (`keepdim` as PyTorch), their
//! whole-tensor forms, and softmax / log-softmax along one dim.
//!
//! An empty set of dims reduces nothing (numpy's `axis=()`).

use super::{dim, Dim, Dims};
use crate::autograd::{record_jvp, sum_tangents};
use crate::error::{Error, Result};
use crate::kernels::reduce::{self as k, ArgReduce, Reduce};
use crate::kernels::strided::Plan;
use crate::tensor::{alloc_uninit, with_dtype, DimVec, Element, Layout, Tensor};

/// The kept shape after reducing `dims` of `shape`.
fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| {
            if dims.contains(&i) {
                keepdim.then_some(1)
            } else {
                Some(d)
            }
        })
        .collect()
}

/// A reduction laid out for the `[a, r, b]` kernels.
struct ArbPlan {
    /// A tensor whose storage from its offset holds the `[a, r, b]` buffer.
    buf: Tensor,
    a: usize,
    r: usize,
    b: usize,
    /// All dims in the order `buf` holds them (for same-shape outputs like softmax).
    full_order: DimVec,
}

impl ArbPlan {
    /// The kept dims in the order the kernel writes them (`a` dims then `b` dims).
    fn kept_order(&self, dims: &[usize]) -> Vec<usize> {
        self.full_order
            .iter()
            .copied()
            .filter(|d| !dims.contains(d))
            .collect()
    }
}

impl Tensor {
    /// Brings the reduced dims into one middle block of a contiguous
    /// buffer: [`Tensor::arb_in_place`] where it applies, otherwise
    /// [`Tensor::arb_copy`].
    fn arb_plan(&self, dims: &[usize]) -> ArbPlan {
        self.arb_in_place(dims)
            .unwrap_or_else(|| self.arb_copy(dims))
    }

    /// The `[a, r, b]` plan with no copy: for a permutation of a contiguous
    /// tensor (a transposed matrix, `[b, c, h, w]` seen from `[b, h, w, c]`)
    /// whose reduced dims are adjacent in memory.
    fn arb_in_place(&self, dims: &[usize]) -> Option<ArbPlan> {
        let order = self.layout().memory_order();
        let in_memory = self
            .layout()
            .permute(&order)
            .expect("memory order is a permutation");
        let pos: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, d)| dims.contains(d))
            .map(|(p, _)| p)
            .collect();
        let adjacent = pos.windows(2).all(|w| w[1] == w[0] + 1);
        if !(in_memory.is_contiguous() && adjacent && !pos.is_empty()) {
            return None;
        }
        let (p0, p1) = (pos[0], pos[pos.len() - 1] + 1);
        let ms = in_memory.shape();
        Some(ArbPlan {
            buf: self.view_with(in_memory.clone()),
            a: ms[..p0].iter().product(),
            r: ms[p0..p1].iter().product(),
            b: ms[p1..].iter().product(),
            full_order: order,
        })
    }

    /// The kept dims, and the layout with the kept dims first and the
    /// reduced dims last (a plain view, not the recorded `permute`: the
    /// reductions record their own VJPs).
    fn reduced_last(&self, dims: &[usize]) -> (Vec<usize>, Layout) {
        let kept: Vec<usize> = (0..self.rank()).filter(|i| !dims.contains(i)).collect();
        let perm: Vec<usize> = kept.iter().chain(dims).copied().collect();
        let moved = self
            .layout()
            .permute(&perm)
            .expect("a permutation of all dims");
        (kept, moved)
    }

    /// The `[a, r, 1]` plan of a copy with the reduced dims moved last.
    fn arb_copy(&self, dims: &[usize]) -> ArbPlan {
        let shape = self.shape();
        let (kept, moved) = self.reduced_last(dims);
        ArbPlan {
            buf: self.view_with(moved).contiguous_data(),
            a: kept.iter().map(|&i| shape[i]).product(),
            r: dims.iter().map(|&i| shape[i]).product(),
            b: 1,
            full_order: kept.iter().chain(dims).copied().collect(),
        }
    }

    /// Wraps a kernel output (kept dims in `kept_order`) as a tensor of the
    /// logical reduced shape (a permuted view when the orders differ).
    fn reduced_output<T: Element>(
        &self,
        out: Vec<T>,
        kept_order: &[usize],
        dims: &[usize],
        keepdim: bool,
    ) -> Tensor {
        let mut kept_sorted = kept_order.to_vec();
        kept_sorted.sort_unstable();
        let kept_shape: Vec<usize> = kept_sorted.iter().map(|&d| self.shape()[d]).collect();
        // `order[i]` = position in kept_order of the i-th kept dim.
        let order: Vec<usize> = kept_order
            .iter()
            .map(|d| kept_sorted.iter().position(|k| k == d).unwrap_or(0))
            .collect();
        let t = Tensor::from_typed_in_order(out, &kept_shape, &order);
        if !keepdim {
            return t;
        }
        let full = reduced_shape(self.shape(), dims, true);
        t.reshape(full)
            .expect("inserting size-1 dims is always a view")
    }

    /// Sum, max or min read where the elements lie, for a view that
    /// [`Tensor::arb_in_place`] does not take (a batch of diagonals, a
    /// strided slice) and whose reduced dims merge into one strided run per
    /// output element. `None` where that does not hold.
    fn reduce_strided(&self, dims: &[usize], op: Reduce, keepdim: bool) -> Option<Tensor> {
        if op == Reduce::LogSumExp {
            return None;
        }
        let (kept, moved) = self.reduced_last(dims);
        let plan = Plan::new(moved.shape(), [moved.strides()], [moved.offset()]);
        let r: usize = dims.iter().map(|&d| self.shape()[d]).product();
        let rows: usize = kept.iter().map(|&d| self.shape()[d]).product();
        // Each output's run must be the closest-packed walk: summing down
        // the columns of a strided slice would jump a row per element, where
        // arb_copy's tiled copy then contiguous sums read every line once.
        let [inner] = plan.inner_strides();
        let outer = &plan.strides[0][..plan.shape.len() - 1];
        if r < 2
            || plan.inner() != r
            || plan.rows() != rows
            || outer.iter().any(|s| s.abs() < inner.abs())
        {
            return None;
        }
        let storage = self.storage();
        Some(with_dtype!(&*storage, T, s => {
            let mut out = alloc_uninit::<T>(rows);
            k::reduce_strided(s, &plan, op, &mut out);
            self.reduced_output(out, &kept, dims, keepdim)
        }))
    }

    /// Runs the `[a, r, b]` reduction kernel over `plan`.
    fn reduce_arb(&self, plan: ArbPlan, dims: &[usize], op: Reduce, keepdim: bool) -> Tensor {
        let kept_order = plan.kept_order(dims);
        let ArbPlan { buf, a, r, b, .. } = plan;
        let storage = buf.storage();
        with_dtype!(&*storage, T, s => {
            let off = buf.layout().offset();
            let src = &s[off..off + a * r * b];
            let mut out = alloc_uninit::<T>(a * b);
            k::reduce(src, a, r, b, op, &mut out);
            self.reduced_output(out, &kept_order, dims, keepdim)
        })
    }

    fn reduce_op(
        &self,
        name: &'static str,
        ds: &impl Dims,
        keepdim: bool,
        op: Reduce,
    ) -> Result<Tensor> {
        let dims = self.resolve_dims(name, ds)?;
        if dims.is_empty() {
            return Ok(self.clone());
        }
        if matches!(op, Reduce::Max | Reduce::Min) && dims.iter().any(|&d| self.shape()[d] == 0) {
            return Err(Error::invalid(
                name,
                format!("reducing an empty dim of shape {:?}", self.shape()),
            ));
        }
        // In place as [a, r, b]; else strided runs read in place; else a copy.
        let out = match self.arb_in_place(&dims) {
            Some(plan) => self.reduce_arb(plan, &dims, op, keepdim),
            None => self
                .reduce_strided(&dims, op, keepdim)
                .unwrap_or_else(|| self.reduce_arb(self.arb_copy(&dims), &dims, op, keepdim)),
        };
        let keep_shape = reduced_shape(self.shape(), &dims, true);
        // The weights that spread an output's gradient over its inputs (a
        // max's ties share it evenly, as PyTorch's amax/amin; logsumexp's
        // are the softmax); `None` for a sum (all ones).
        let weights = move |x: &Tensor, dims: &[usize]| -> Result<Option<Tensor>> {
            Ok(match op {
                Reduce::Sum => None,
                Reduce::Max | Reduce::Min => {
                    let best = if op == Reduce::Max {
                        x.max(dims.to_vec(), true)?
                    } else {
                        x.min(dims.to_vec(), true)?
                    };
                    let mask = x.eq(&best.detach())?;
                    let count = mask.sum(dims.to_vec(), true)?;
                    Some(mask.div(&count)?)
                }
                Reduce::LogSumExp => Some(x.sub(&x.logsumexp(dims.to_vec(), true)?)?.exp()),
            })
        };
        let jvp_dims = dims.clone();
        Ok(record_jvp(
            name,
            out,
            &[self],
            move |inp, g, _| {
                let x = &inp[0];
                let g = g.reshape(keep_shape.clone())?.broadcast_to(x.shape())?;
                Ok(vec![Some(match weights(x, &dims)? {
                    Some(w) => w.mul(&g)?,
                    None => g,
                })])
            },
            // The output moves by the weighted sum of its inputs' tangents.
            move |inp, _, t| {
                sum_tangents(t, |_, t| {
                    let spread = match weights(&inp[0], &jvp_dims)? {
                        Some(w) => w.mul(t)?,
                        None => t.clone(),
                    };
                    spread.sum(jvp_dims.clone(), keepdim)
                })
            },
        ))
    }

    /// Dot products along the last dim, `Σ_k self[..., k] other[..., k]`,
    /// as numpy's `vecdot` and `torch.linalg.vecdot` (real): the last dims
    /// must match, the leading dims broadcast, the result drops the last
    /// dim. Equal shapes run as one fused pass that stores no product.
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// let y = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0], &[2, 3])?;
    /// assert_eq!(x.vecdot(&y)?.to_vec::<f32>()?, vec![4.0, 5.0]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn vecdot(&self, other: &Tensor) -> Result<Tensor> {
        let name = "vecdot";
        self.same_dtype(name, other)?;
        let (ra, rb) = (self.rank(), other.rank());
        if ra == 0 || rb == 0 || self.shape()[ra - 1] != other.shape()[rb - 1] {
            return Err(Error::shape(name, self.shape(), other.shape()));
        }
        if self.shape() != other.shape() {
            return self.mul(other)?.sum(-1, false);
        }
        let k = self.shape()[ra - 1];
        let out_shape = self.shape()[..ra - 1].to_vec();
        let rows: usize = out_shape.iter().product();
        let (a, b) = (self.contiguous_data(), other.contiguous_data());
        let out = super::binary::with_two(&a, &b, |sa, sb| {
            with_dtype!(sa, T, xa => {
                let xb = sb.as_slice::<T>().expect("dtypes checked");
                let (oa, ob) = (a.layout().offset(), b.layout().offset());
                let mut out = alloc_uninit::<T>(rows);
                k::dot_rows(&xa[oa..oa + rows * k], &xb[ob..ob + rows * k], k, &mut out);
                Tensor::from_typed(out, &out_shape)
            })
        });
        Ok(record_jvp(
            name,
            out,
            &[self, other],
            |inp, g, needs| {
                let g = g.unsqueeze(-1)?;
                let grad = |i: usize, j: usize| -> Result<Option<Tensor>> {
                    Ok(if needs[i] {
                        Some(g.mul(&inp[j])?)
                    } else {
                        None
                    })
                };
                Ok(vec![grad(0, 1)?, grad(1, 0)?])
            },
            |inp, _, t| sum_tangents(t, |i, t| t.vecdot(&inp[1 - i])),
        ))
    }

    /// Sum over `dims`.
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(x.sum(1, false)?.to_vec::<f32>()?, vec![6.0, 15.0]);
    /// assert_eq!(x.sum([0, 1], true)?.shape(), &[1, 1]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn sum(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        self.reduce_op("sum", &dims, keepdim, Reduce::Sum)
    }
    /// Maximum over `dims` (NaN propagates).
    pub fn max(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        self.reduce_op("max", &dims, keepdim, Reduce::Max)
    }
    /// Minimum over `dims` (NaN propagates).
    pub fn min(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        self.reduce_op("min", &dims, keepdim, Reduce::Min)
    }
    /// `log(sum(exp(x)))` over `dims`, stable for large inputs.
    pub fn logsumexp(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        self.reduce_op("logsumexp", &dims, keepdim, Reduce::LogSumExp)
    }
    /// Mean over `dims`.
    pub fn mean(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        let ds = self.resolve_dims("mean", &dims)?;
        let n: usize = ds.iter().map(|&d| self.shape()[d]).product();
        Ok(self.sum(ds, keepdim)?.div_scalar(n as f64))
    }
    /// Variance over `dims` with Bessel's correction (`correction = 1`, PyTorch's default).
    pub fn var(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        self.var_correction(dims, 1, keepdim)
    }
    /// Variance over `dims` dividing by `N - correction` (`0`: population variance, numpy's default).
    pub fn var_correction(
        &self,
        dims: impl Dims,
        correction: usize,
        keepdim: bool,
    ) -> Result<Tensor> {
        let ds = self.resolve_dims("var", &dims)?;
        let n: usize = ds.iter().map(|&d| self.shape()[d]).product();
        let centered = self.sub(&self.mean(ds.clone(), true)?)?;
        let denom = n.saturating_sub(correction) as f64;
        Ok(centered.square().sum(ds, keepdim)?.div_scalar(denom))
    }
    /// Standard deviation over `dims` with Bessel's correction (PyTorch's default).
    pub fn std(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        let ds = self.resolve_dims("std", &dims)?;
        Ok(self.var(ds, keepdim)?.sqrt())
    }
    /// Standard deviation dividing by `N - correction`.
    pub fn std_correction(
        &self,
        dims: impl Dims,
        correction: usize,
        keepdim: bool,
    ) -> Result<Tensor> {
        let ds = self.resolve_dims("std", &dims)?;
        Ok(self.var_correction(ds, correction, keepdim)?.sqrt())
    }
    /// The p-norm over `dims`: `(sum |x|^p)^(1/p)`; `p = inf` is the max of `|x|`.
    pub fn norm(&self, p: f64, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        if p.is_nan() || p <= 0.0 {
            return Err(Error::invalid(
                "norm",
                format!("p must be positive, got {p}"),
            ));
        }
        let dims = self.resolve_dims("norm", &dims)?;
        if p == f64::INFINITY {
            return self.abs().max(dims, keepdim);
        }
        if p == 2.0 {
            return Ok(self.square().sum(dims, keepdim)?.sqrt());
        }
        if p == 1.0 {
            return self.abs().sum(dims, keepdim);
        }
        Ok(self.abs().powf(p).sum(dims, keepdim)?.powf(1.0 / p))
    }

    fn all_dims(&self) -> Vec<usize> {
        (0..self.rank()).collect()
    }
    /// Sum of all elements (a rank-0 tensor).
    pub fn sum_all(&self) -> Tensor {
        self.sum(self.all_dims(), false)
            .expect("all dims are valid")
    }
    /// Mean of all elements.
    pub fn mean_all(&self) -> Tensor {
        self.mean(self.all_dims(), false)
            .expect("all dims are valid")
    }
    /// Maximum of all elements (error if empty).
    pub fn max_all(&self) -> Result<Tensor> {
        self.max(self.all_dims(), false)
    }
    /// Minimum of all elements (error if empty).
    pub fn min_all(&self) -> Result<Tensor> {
        self.min(self.all_dims(), false)
    }
    /// Frobenius / 2-norm of all elements.
    pub fn norm_all(&self) -> Tensor {
        self.square().sum_all().sqrt()
    }
    /// logsumexp of all elements.
    pub fn logsumexp_all(&self) -> Tensor {
        self.logsumexp(self.all_dims(), false)
            .expect("all dims are valid")
    }

    fn arg_op(
        &self,
        name: &'static str,
        d: impl Dim,
        keepdim: bool,
        op: ArgReduce,
    ) -> Result<Tensor> {
        let d = dim(name, d, self.rank().max(1))?;
        let x = if self.rank() == 0 {
            self.reshape([1])?
        } else {
            self.clone()
        };
        if x.shape()[d] == 0 {
            return Err(Error::invalid(
                name,
                format!("empty dim {d} of shape {:?}", x.shape()),
            ));
        }
        let plan = x.arb_plan(&[d]);
        let kept_order = plan.kept_order(&[d]);
        let ArbPlan { buf, a, r, b, .. } = plan;
        let storage = buf.storage();
        let mut idx = vec![0usize; a * b];
        with_dtype!(&*storage, T, s => {
            let off = buf.layout().offset();
            k::arg_reduce(&s[off..off + a * r * b], a, r, b, op, &mut idx);
        });
        let keep = keepdim && self.rank() > 0;
        Ok(crate::tensor::with_type!(self.dtype(), T => {
            let idx: Vec<T> = idx.iter().map(|&i| T::from_f64(i as f64)).collect();
            x.reduced_output(idx, &kept_order, &[d], keep)
        }))
    }
    /// Index of the first maximum along `dim`, as a tensor of integer values
    /// in this tensor's dtype. Not differentiable.
    pub fn argmax(&self, d: impl Dim, keepdim: bool) -> Result<Tensor> {
        self.arg_op("argmax", d, keepdim, ArgReduce::Max)
    }
    /// Index of the first minimum along `dim`. Not differentiable.
    pub fn argmin(&self, d: impl Dim, keepdim: bool) -> Result<Tensor> {
        self.arg_op("argmin", d, keepdim, ArgReduce::Min)
    }
    /// Flat (row-major) index of the first maximum.
    pub fn argmax_all(&self) -> Result<usize> {
        Ok(self.flatten_all().argmax(0, false)?.to_f64()? as usize)
    }
    /// Flat (row-major) index of the first minimum.
    pub fn argmin_all(&self) -> Result<usize> {
        Ok(self.flatten_all().argmin(0, false)?.to_f64()? as usize)
    }

    fn softmax_impl(&self, name: &'static str, d: impl Dim, log: bool) -> Result<Tensor> {
        if self.rank() == 0 {
            return Err(Error::invalid(name, "needs at least one dimension"));
        }
        let d = dim(name, d, self.rank())?;
        let ArbPlan {
            buf,
            a,
            r,
            b,
            full_order,
            ..
        } = self.arb_plan(&[d]);
        let storage = buf.storage();
        let out = with_dtype!(&*storage, T, s => {
            let off = buf.layout().offset();
            let n = a * r * b;
            let mut out = alloc_uninit::<T>(n);
            k::softmax(&s[off..off + n], a, r, b, log, &mut out);
            Tensor::from_typed_in_order(out, self.shape(), &full_order)
        });
        drop(storage);
        // softmax: dx = y (g - sum(g y)); log_softmax: dx = g - softmax(x) sum(g).
        // y is recomputed from x so that the VJP is differentiable again.
        // JVP: softmax dy = y (t - sum(t y)); log_softmax dy = t - sum(t y).
        // A training backward reuses the output (its storage, without the
        // graph: no cycle); a recorded one recomputes y from x.
        let saved = out.detach();
        Ok(record_jvp(
            name,
            out,
            &[self],
            move |inp, g, _| {
                let y = match (crate::autograd::is_grad_enabled(), log) {
                    (true, _) => inp[0].softmax(d)?,
                    (false, true) => saved.exp(),
                    (false, false) => saved.clone(),
                };
                let dx = if log {
                    g.sub(&y.mul(&g.sum(d, true)?)?)?
                } else {
                    y.mul(&g.sub(&g.mul(&y)?.sum(d, true)?)?)?
                };
                Ok(vec![Some(dx)])
            },
            move |_, out, t| {
                sum_tangents(t, |_, t| {
                    let y = if log { out.exp() } else { out.clone() };
                    let centred = t.sub(&t.mul(&y)?.sum(d, true)?)?;
                    if log {
                        Ok(centred)
                    } else {
                        y.mul(&centred)
                    }
                })
            },
        ))
    }
    /// Softmax along `dim`; the max is subtracted first, so logits of 1e4 are fine.
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let x = Tensor::from_vec(vec![1e4f32, 1e4], &[2])?;
    /// assert_eq!(x.softmax(0)?.to_vec::<f32>()?, vec![0.5, 0.5]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn softmax(&self, d: impl Dim) -> Result<Tensor> {
        self.softmax_impl("softmax", d, false)
    }
    /// `log(softmax(x))` along `dim`, computed as `x - logsumexp(x)`.
    pub fn log_softmax(&self, d: impl Dim) -> Result<Tensor> {
        self.softmax_impl("log_softmax", d, true)
    }
}
