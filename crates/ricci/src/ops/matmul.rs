//! Matrix products with numpy's `matmul` semantics, and `linear`.
//!
//! - 1-D x 1-D is a dot product (rank 0);
//! - a 1-D left operand is a row vector, a 1-D right operand a column
//!   vector (the added dim is removed from the result);
//! - leading (batch) dims broadcast.
//!
//! Strides are handed to the kernel, so `a.matmul(&b.t()?)` never copies `b`.

use crate::autograd::{record_jvp, sum_tangents};
use crate::error::{Error, Result};
use crate::kernels::matmul::{self as k, Operand};
use crate::tensor::{alloc_uninit, broadcast_shapes, with_dtype, Layout, Tensor};

/// Offsets of every batch item of a `[batch..., r, c]` layout broadcast to `batch_shape`.
fn batch_offsets(layout: &Layout, batch_shape: &[usize]) -> Result<Vec<usize>> {
    let rank = layout.rank();
    let own = Layout::from_parts(
        &layout.shape()[..rank - 2],
        &layout.strides()[..rank - 2],
        layout.offset(),
    );
    let b = own.broadcast_to(batch_shape)?;
    let n: usize = batch_shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; batch_shape.len()];
    for _ in 0..n {
        out.push(b.offset_of(&idx));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < batch_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// A matrix operand whose strides faer can read: a zero stride along a
/// dimension longer than 1 (a broadcast matrix) is made contiguous first.
fn readable(t: &Tensor) -> Tensor {
    let r = t.rank();
    let bad = (r - 2..r).any(|d| t.stride()[d] == 0 && t.shape()[d] > 1);
    if bad {
        t.contiguous_data()
    } else {
        t.clone()
    }
}

/// Whether the matrices of operand `x` (rank >= 2) are stored transposed
/// (column-major, unit stride down a column) and `x` has the batch dims of
/// the output gradient `g`, so no batch sum is needed for its gradient.
fn col_major_unbroadcast(x: &Tensor, g: &Tensor) -> bool {
    let r = x.rank();
    let (shape, stride) = (x.shape(), x.stride());
    shape[r - 2] > 1
        && shape[r - 1] > 1
        && stride[r - 2] == 1
        && stride[r - 1] >= shape[r - 2] as isize
        && shape[..r - 2] == g.shape()[..g.rank() - 2]
}

impl Tensor {
    /// Matrix product with numpy semantics (see the module doc).
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let x = Tensor::from_vec(vec![1.0f32, 1.0], &[2])?;
    /// assert_eq!(a.matmul(&x)?.to_vec::<f32>()?, vec![3.0, 7.0]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        let op = "matmul";
        self.same_dtype(op, other)?;
        if self.rank() == 0 || other.rank() == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "operands must have at least one dim, got {:?} and {:?}",
                    self.shape(),
                    other.shape()
                ),
            ));
        }
        let a = if self.rank() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if other.rank() == 1 {
            other.unsqueeze(1)?
        } else {
            other.clone()
        };
        let (ar, br) = (a.rank(), b.rank());
        let (m, ka) = (a.shape()[ar - 2], a.shape()[ar - 1]);
        let (kb, n) = (b.shape()[br - 2], b.shape()[br - 1]);
        if ka != kb {
            return Err(Error::shape(op, self.shape(), other.shape()));
        }
        let batch = broadcast_shapes(op, &a.shape()[..ar - 2], &b.shape()[..br - 2])
            .map_err(|_| Error::shape(op, self.shape(), other.shape()))?;
        let (a_in, b_in) = (a.clone(), b.clone());
        let (a, b) = (readable(&a), readable(&b));
        let la = batch_offsets(a.layout(), &batch)?;
        let lb = batch_offsets(b.layout(), &batch)?;
        let opa = Operand {
            offsets: &la,
            row_stride: a.stride()[ar - 2],
            col_stride: a.stride()[ar - 1],
        };
        let opb = Operand {
            offsets: &lb,
            row_stride: b.stride()[br - 2],
            col_stride: b.stride()[br - 1],
        };
        let mut shape = batch.clone();
        shape.extend([m, n]);
        let total: usize = shape.iter().product();
        let out = super::binary::with_two(&a, &b, |sa, sb| {
            with_dtype!(sa, T, xa => {
                let xb = sb.as_slice::<T>().expect("dtypes checked");
                let mut out = alloc_uninit::<T>(total);
                k::matmul(xa, &opa, xb, &opb, m, ka, n, &mut out, false);
                Tensor::from_typed(out, &shape)
            })
        });
        // dA = dC Bᵀ, dB = Aᵀ dC, summed back over broadcast batch dims. An
        // operand stored transposed (as `w.t()` in `linear`) gets its
        // gradient in the same layout, (B dCᵀ)ᵀ or (dCᵀ A)ᵀ, so the gradient
        // of `w` itself comes out contiguous (as PyTorch's mm backward).
        let out = record_jvp(
            "matmul",
            out,
            &[&a_in, &b_in],
            |inp, g, needs| {
                let (a, b) = (&inp[0], &inp[1]);
                let da = if !needs[0] {
                    None
                } else if col_major_unbroadcast(a, g) {
                    Some(b.matmul(&g.t()?)?.t()?)
                } else {
                    Some(g.matmul(&b.t()?)?.sum_to_shape(a.shape())?)
                };
                let db = if !needs[1] {
                    None
                } else if col_major_unbroadcast(b, g) {
                    Some(g.t()?.matmul(a)?.t()?)
                } else {
                    Some(a.t()?.matmul(g)?.sum_to_shape(b.shape())?)
                };
                Ok(vec![da, db])
            },
            // d(AB) = dA B + A dB.
            |inp, _, t| {
                sum_tangents(t, |i, t| {
                    if i == 0 {
                        t.matmul(&inp[1])
                    } else {
                        inp[0].matmul(t)
                    }
                })
            },
        );
        // Drop the dims added for 1-D operands.
        let mut final_shape = batch;
        if self.rank() > 1 {
            final_shape.push(m);
        }
        if other.rank() > 1 {
            final_shape.push(n);
        }
        if final_shape.len() != out.rank() {
            return out.reshape(final_shape);
        }
        Ok(out)
    }
}

/// `x · wᵀ + b` for `x: [..., in]`, `w: [out, in]`, `b: [out]` (PyTorch's `F.linear`).
///
/// ```
/// # use ricci::{Tensor, DType, linear};
/// let x = Tensor::ones(&[4, 3], DType::F32);
/// let w = Tensor::ones(&[2, 3], DType::F32);
/// let b = Tensor::from_vec(vec![0.5f32, -0.5], &[2])?;
/// assert_eq!(linear(&x, &w, Some(&b))?.shape(), &[4, 2]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    x.same_dtype("linear", w)?;
    if let Some(b) = b {
        x.same_dtype("linear", b)?;
    }
    if w.rank() != 2 || x.rank() == 0 || x.shape()[x.rank() - 1] != w.shape()[1] {
        return Err(Error::shape("linear", x.shape(), w.shape()));
    }
    // Fold leading dims into rows so one large product runs instead of a batch.
    let in_f = w.shape()[1];
    let lead: Vec<usize> = x.shape()[..x.rank() - 1].to_vec();
    let x2 = x.reshape([-1, in_f as i64])?;
    let y = match b {
        Some(b) => {
            if b.shape() != [w.shape()[0]] {
                return Err(Error::shape("linear", w.shape(), b.shape()));
            }
            linear_bias(&x2, w, b)?
        }
        None => x2.matmul(&w.t()?)?,
    };
    let mut shape = lead;
    shape.push(w.shape()[0]);
    y.reshape(shape)
}

/// `x · wᵀ + b` for a 2-D `x`, shapes checked by [`linear`]. The bias rows
/// are written into the output and the product is accumulated onto them,
/// so the output is written once instead of being read back by an add.
/// The VJP is in differentiable ops; `w`'s gradient `gᵀ x` is contiguous.
fn linear_bias(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (rows, in_f, out_f) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let (xr, wt, bias) = (readable(x), readable(&w.detach().t()?), b.contiguous_data());
    let operand = |t: &Tensor| (t.layout().offset(), t.stride()[0], t.stride()[1]);
    let ((ox, rx, cx), (ow, rw, cw)) = (operand(&xr), operand(&wt));
    let (offx, offw) = ([ox], [ow]);
    let opx = Operand {
        offsets: &offx,
        row_stride: rx,
        col_stride: cx,
    };
    let opw = Operand {
        offsets: &offw,
        row_stride: rw,
        col_stride: cw,
    };
    let out = super::binary::with_storages(&[&xr, &wt, &bias], |s| {
        with_dtype!(s[0], T, xs => {
            let ws = s[1].as_slice::<T>().expect("dtypes checked");
            let bs = s[2].as_slice::<T>().expect("dtypes checked");
            let bs = &bs[bias.layout().offset()..bias.layout().offset() + out_f];
            let mut out = alloc_uninit::<T>(rows * out_f);
            crate::kernels::par::fill_rows(&mut out, bs);
            k::matmul(xs, &opx, ws, &opw, rows, in_f, out_f, &mut out, true);
            Tensor::from_typed(out, &[rows, out_f])
        })
    });
    Ok(record_jvp(
        "linear",
        out,
        &[x, w, b],
        |inp, g, needs| {
            let (x, w) = (&inp[0], &inp[1]);
            let dx = if needs[0] { Some(g.matmul(w)?) } else { None };
            let dw = if needs[1] {
                Some(g.t()?.matmul(x)?)
            } else {
                None
            };
            let db = if needs[2] {
                Some(g.sum(0, false)?)
            } else {
                None
            };
            Ok(vec![dx, dw, db])
        },
        // d(x wᵀ + b) = dx wᵀ + (x dwᵀ + db), each part one fused `linear`.
        |inp, _, t| {
            let (x, w) = (&inp[0], &inp[1]);
            let through_x = t[0].as_ref().map(|dx| linear(dx, w, None)).transpose()?;
            let through_wb = match (&t[1], &t[2]) {
                (Some(dw), db) => Some(linear(x, dw, db.as_ref())?),
                (None, Some(db)) => Some(db.clone()),
                (None, None) => None,
            };
            match (through_x, through_wb) {
                (Some(a), Some(b)) => a.add(&b),
                (Some(a), None) => Ok(a),
                (None, Some(b)) => b.broadcast_to(&[x.shape()[0], w.shape()[0]]),
                (None, None) => Err(crate::error::Error::invalid(
                    "jvp",
                    "internal: no tangent given",
                )),
            }
        },
    ))
}
