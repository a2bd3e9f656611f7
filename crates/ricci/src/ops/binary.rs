//! Elementwise functions of two (or three) tensors with numpy broadcasting.
//!
//! Shapes are aligned from the right; a dimension of size 1 (or a missing
//! leading one) stretches to match the other operand. Mixing f32 and f64 is
//! an error naming both dtypes.

use std::ops;

use crate::autograd::{is_grad_enabled, record_jvp, will_record};
use crate::error::Result;
use crate::kernels::map;
use crate::tensor::{
    alloc_uninit, broadcast_shapes, iteration_order, with_dtype, Element, Storage, Tensor,
};

/// Runs `f` over the storages of `ts`, taking one read guard per distinct storage.
pub(crate) fn with_storages<R>(ts: &[&Tensor], f: impl FnOnce(&[&Storage]) -> R) -> R {
    let mut owners: Vec<usize> = Vec::with_capacity(ts.len());
    for (i, t) in ts.iter().enumerate() {
        let first = ts[..i]
            .iter()
            .position(|u| u.shares_storage_with(t))
            .unwrap_or(i);
        owners.push(first);
    }
    let guards: Vec<Option<std::sync::RwLockReadGuard<'_, Storage>>> = ts
        .iter()
        .enumerate()
        .map(|(i, t)| (owners[i] == i).then(|| t.storage()))
        .collect();
    let refs: Vec<&Storage> = owners
        .iter()
        .map(|&o| &**guards[o].as_ref().expect("owner guard"))
        .collect();
    f(&refs)
}

/// Runs `f` over the two storages, taking one read guard when they are the same storage.
pub(crate) fn with_two<R>(a: &Tensor, b: &Tensor, f: impl FnOnce(&Storage, &Storage) -> R) -> R {
    if a.shares_storage_with(b) {
        let s = a.storage();
        f(&s, &s)
    } else {
        let (sa, sb) = (a.storage(), b.storage());
        f(&sa, &sb)
    }
}

macro_rules! binary_map {
    ($op:expr, $a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {{
        let (a, b): (&Tensor, &Tensor) = ($a, $b);
        a.same_dtype($op, b)?;
        let shape = broadcast_shapes($op, a.shape(), b.shape())?;
        let la = a.layout().broadcast_to(&shape)?;
        let lb = b.layout().broadcast_to(&shape)?;
        let order = iteration_order(&[&la, &lb]);
        let (la, lb) = (la.permute(&order)?, lb.permute(&order)?);
        let n: usize = shape.iter().product();
        Ok(with_two(a, b, |sa, sb| {
            with_dtype!(sa, T, xa => {
                let xb = sb.as_slice::<T>().expect("dtypes checked");
                let mut out = alloc_uninit::<T>(n);
                map::binary(xa, &la, xb, &lb, &mut out, |$x: T, $y: T| $body);
                Tensor::from_typed_in_order(out, &shape, &order)
            })
        }))
    }};
}

/// When the result will be recorded, broadcasts both operands with the
/// (recorded) `broadcast_to` view first, so that the op's VJP sees equal
/// shapes and `broadcast_to`'s VJP is the one place that sums gradients
/// back to an operand's shape. Without recording the kernel broadcasts
/// by itself.
fn grad_operands(op: &'static str, a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    if !will_record(&[a, b]) || a.shape() == b.shape() {
        return Ok((a.clone(), b.clone()));
    }
    a.same_dtype(op, b)?;
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    Ok((a.broadcast_to(&shape)?, b.broadcast_to(&shape)?))
}

/// `vjp(a, b, g, i)`: the gradient of operand `i` (0 for `a`, 1 for `b`),
/// computed only for the operands that need one.
type Vjp2 = fn(&Tensor, &Tensor, &Tensor, usize) -> Result<Tensor>;
/// `jvp(a, b, out, [da, db])`: the output's tangent for the operands'
/// tangents (`None` is zero).
type Jvp2 = fn(&Tensor, &Tensor, &Tensor, [Option<&Tensor>; 2]) -> Result<Tensor>;

/// Records a two-input op of equal-shaped operands with VJP `vjp(a, b, g, i)`
/// and JVP `jvp(a, b, out, tangents)`.
fn rec2(name: &'static str, out: Tensor, a: &Tensor, b: &Tensor, vjp: Vjp2, jvp: Jvp2) -> Tensor {
    record_jvp(
        name,
        out,
        &[a, b],
        move |inp, g, needs| {
            (0..2)
                .map(|i| needs[i].then(|| vjp(&inp[0], &inp[1], g, i)).transpose())
                .collect()
        },
        move |inp, out, t| jvp(&inp[0], &inp[1], out, [t[0].as_ref(), t[1].as_ref()]),
    )
}

/// `Jₐ da + J_b db` for an elementwise op whose partial derivatives are
/// `ja(da)` and `jb(db)`, skipping a zero tangent.
fn each_tangent(
    t: [Option<&Tensor>; 2],
    ja: impl FnOnce(&Tensor) -> Result<Tensor>,
    jb: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    match t {
        [Some(da), Some(db)] => ja(da)?.add(&jb(db)?),
        [Some(da), None] => ja(da),
        [None, Some(db)] => jb(db),
        [None, None] => Err(crate::error::Error::invalid(
            "jvp",
            "internal: no tangent given",
        )),
    }
}

/// For `maximum(a, b)` (`max`) or `minimum(a, b)`: the share of the output
/// that operand `i` gives, 1 where it is chosen, 0 where the other is, 1/2
/// at ties (the gradient splits evenly, as PyTorch's).
fn share_of_extreme(a: &Tensor, b: &Tensor, max: bool, i: usize) -> Result<Tensor> {
    let wins = if max { a.gt(b)? } else { a.lt(b)? };
    let to_a = wins.add(&a.eq(b)?.mul_scalar(0.5))?;
    Ok(if i == 0 { to_a } else { to_a.rsub_scalar(1.0) })
}

/// The JVP of `maximum` / `minimum`: each tangent times its operand's share.
fn extreme_tangent(a: &Tensor, b: &Tensor, max: bool, t: [Option<&Tensor>; 2]) -> Result<Tensor> {
    each_tangent(
        t,
        |da| da.mul(&share_of_extreme(a, b, max, 0)?),
        |db| db.mul(&share_of_extreme(a, b, max, 1)?),
    )
}

impl Tensor {
    /// `self + other`, broadcast.
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// let b = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], &[3])?;
    /// assert_eq!(a.add(&b)?.to_vec::<f32>()?, vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = grad_operands("add", self, other)?;
        let out: Tensor = binary_map!("add", &a, &b, |x, y| x + y)?;
        Ok(rec2(
            "add",
            out,
            &a,
            &b,
            |_, _, g, _| Ok(g.clone()),
            |_, _, _, t| each_tangent(t, |da| Ok(da.clone()), |db| Ok(db.clone())),
        ))
    }
    /// `self - other`, broadcast.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = grad_operands("sub", self, other)?;
        let out: Tensor = binary_map!("sub", &a, &b, |x, y| x - y)?;
        Ok(rec2(
            "sub",
            out,
            &a,
            &b,
            |_, _, g, i| Ok(if i == 0 { g.clone() } else { g.neg() }),
            |_, _, _, t| match t {
                [Some(da), Some(db)] => da.sub(db),
                _ => each_tangent(t, |da| Ok(da.clone()), |db| Ok(db.neg())),
            },
        ))
    }
    /// `self * other`, broadcast.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = grad_operands("mul", self, other)?;
        let out: Tensor = binary_map!("mul", &a, &b, |x, y| x * y)?;
        Ok(rec2(
            "mul",
            out,
            &a,
            &b,
            |a, b, g, i| g.mul(if i == 0 { b } else { a }),
            |a, b, _, t| each_tangent(t, |da| da.mul(b), |db| a.mul(db)),
        ))
    }
    /// `g · gelu'(self)` in one pass, `gelu'(x) = Φ(x) + x φ(x)`: the
    /// training (unrecorded) backward of [`Tensor::gelu`].
    pub(crate) fn gelu_backward(&self, g: &Tensor) -> Result<Tensor> {
        use super::unary::{FRAC_1_SQRT_2, FRAC_1_SQRT_2PI};
        binary_map!("gelu backward", self, g, |x, g| {
            let cdf = T::from_f64(0.5) * (T::ONE + Element::erf(x * T::from_f64(FRAC_1_SQRT_2)));
            let pdf = Element::exp(T::from_f64(-0.5) * x * x) * T::from_f64(FRAC_1_SQRT_2PI);
            g * (cdf + x * pdf)
        })
    }
    /// `t · (1 - y²)` for `self = y = tanh(x)`: tanh's derivative applied
    /// to `t` in one pass, the VJP and the JVP of [`Tensor::tanh`]. Recorded,
    /// with its own VJP and JVP, so that a tangent pass through tanh is one
    /// op instead of three (square, subtract, multiply) and the backward
    /// through that tangent two instead of five.
    pub(crate) fn tanh_slope(&self, t: &Tensor) -> Result<Tensor> {
        let (y, t) = grad_operands("tanh_slope", self, t)?;
        let out: Tensor = binary_map!("tanh_slope", &y, &t, |y, t| t * (T::ONE - y * y))?;
        // ∂/∂t = 1 - y² (this op again); ∂/∂y = -2 t y.
        Ok(rec2(
            "tanh_slope",
            out,
            &y,
            &t,
            |y, t, g, i| match i {
                0 if is_grad_enabled() => Ok(g.mul(t)?.mul(y)?.mul_scalar(-2.0)),
                0 => {
                    let gt = g.mul(t)?;
                    binary_map!("tanh_slope backward", &gt, y, |gt, y| T::from_f64(-2.0)
                        * gt
                        * y)
                }
                _ => y.tanh_slope(g),
            },
            |y, t, _, d| {
                each_tangent(
                    d,
                    |dy| Ok(dy.mul(t)?.mul(y)?.mul_scalar(-2.0)),
                    |dt| y.tanh_slope(dt),
                )
            },
        ))
    }
    /// `g · d/dx gelu_tanh(self)` in one pass: with `u = sqrt(2/π)(x +
    /// 0.044715 x³)` and `s = sigmoid(2u)`, the derivative is
    /// `s + x s (1 - s) 2u'`. The training backward of [`Tensor::gelu_tanh`].
    pub(crate) fn gelu_tanh_backward(&self, g: &Tensor) -> Result<Tensor> {
        use super::unary::SQRT_2_OVER_PI;
        binary_map!("gelu_tanh backward", self, g, |x, g| {
            let x2 = x * x;
            let c = T::from_f64(2.0 * SQRT_2_OVER_PI);
            let u2 = c * x * (T::ONE + T::from_f64(0.044715) * x2);
            let s = T::ONE / (T::ONE + Element::exp(-u2));
            let du2 = c * (T::ONE + T::from_f64(3.0 * 0.044715) * x2);
            g * (s + x * s * (T::ONE - s) * du2)
        })
    }
    /// `self / other`, broadcast.
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = grad_operands("div", self, other)?;
        let out: Tensor = binary_map!("div", &a, &b, |x, y| x / y)?;
        Ok(rec2(
            "div",
            out,
            &a,
            &b,
            |a, b, g, i| match i {
                0 => g.div(b),
                _ => Ok(g.mul(a)?.div(&b.square())?.neg()),
            },
            // d(a/b) = (da - (a/b) db) / b.
            |_, b, out, t| {
                let num = each_tangent(t, |da| Ok(da.clone()), |db| Ok(out.mul(db)?.neg()))?;
                num.div(b)
            },
        ))
    }
    /// `self ^ other`, broadcast (NaN for a negative base with a fractional exponent).
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = grad_operands("pow", self, other)?;
        let out: Tensor = binary_map!("pow", &a, &b, |x, y| x.powf(y))?;
        Ok(rec2(
            "pow",
            out,
            &a,
            &b,
            |a, b, g, i| match i {
                0 => g.mul(b)?.mul(&a.pow(&b.add_scalar(-1.0))?),
                _ => g.mul(&a.pow(b)?)?.mul(&a.log()),
            },
            |a, b, out, t| {
                each_tangent(
                    t,
                    |da| da.mul(b)?.mul(&a.pow(&b.add_scalar(-1.0))?),
                    |db| db.mul(out)?.mul(&a.log()),
                )
            },
        ))
    }
    /// Elementwise maximum; NaN propagates (numpy's `maximum`).
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = grad_operands("maximum", self, other)?;
        let out: Tensor = binary_map!("maximum", &a, &b, |x, y| x.max_nan(y))?;
        Ok(rec2(
            "maximum",
            out,
            &a,
            &b,
            |a, b, g, i| g.mul(&share_of_extreme(a, b, true, i)?),
            |a, b, _, t| extreme_tangent(a, b, true, t),
        ))
    }
    /// Elementwise minimum; NaN propagates (numpy's `minimum`).
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = grad_operands("minimum", self, other)?;
        let out: Tensor = binary_map!("minimum", &a, &b, |x, y| x.min_nan(y))?;
        Ok(rec2(
            "minimum",
            out,
            &a,
            &b,
            |a, b, g, i| g.mul(&share_of_extreme(a, b, false, i)?),
            |a, b, _, t| extreme_tangent(a, b, false, t),
        ))
    }

    /// Mask (1.0 / 0.0, same dtype) of `self == other`. Not differentiable.
    pub fn eq(&self, other: &Tensor) -> Result<Tensor> {
        binary_map!("eq", self, other, |x, y| if x == y {
            T::ONE
        } else {
            T::ZERO
        })
    }
    /// Mask of `self != other`. Not differentiable.
    pub fn ne(&self, other: &Tensor) -> Result<Tensor> {
        binary_map!("ne", self, other, |x, y| if x != y {
            T::ONE
        } else {
            T::ZERO
        })
    }
    /// Mask of `self < other`. Not differentiable.
    pub fn lt(&self, other: &Tensor) -> Result<Tensor> {
        binary_map!("lt", self, other, |x, y| if x < y {
            T::ONE
        } else {
            T::ZERO
        })
    }
    /// Mask of `self <= other`. Not differentiable.
    pub fn le(&self, other: &Tensor) -> Result<Tensor> {
        binary_map!("le", self, other, |x, y| if x <= y {
            T::ONE
        } else {
            T::ZERO
        })
    }
    /// Mask of `self > other`. Not differentiable.
    pub fn gt(&self, other: &Tensor) -> Result<Tensor> {
        binary_map!("gt", self, other, |x, y| if x > y {
            T::ONE
        } else {
            T::ZERO
        })
    }
    /// Mask of `self >= other`. Not differentiable.
    pub fn ge(&self, other: &Tensor) -> Result<Tensor> {
        binary_map!("ge", self, other, |x, y| if x >= y {
            T::ONE
        } else {
            T::ZERO
        })
    }

    /// Mask of `self == c`. Not differentiable.
    pub fn eq_scalar(&self, c: f64) -> Tensor {
        super::unary_map!(self, |x| if x == T::from_f64(c) { T::ONE } else { T::ZERO })
    }
    /// Mask of `self < c`. Not differentiable.
    pub fn lt_scalar(&self, c: f64) -> Tensor {
        super::unary_map!(self, |x| if x < T::from_f64(c) { T::ONE } else { T::ZERO })
    }
    /// Mask of `self > c`. Not differentiable.
    pub fn gt_scalar(&self, c: f64) -> Tensor {
        super::unary_map!(self, |x| if x > T::from_f64(c) { T::ONE } else { T::ZERO })
    }
    /// Elementwise maximum with a scalar (NaN propagates).
    pub fn maximum_scalar(&self, c: f64) -> Tensor {
        let out = super::unary_map!(self, |x| x.max_nan(T::from_f64(c)));
        let to_x = move |x: &Tensor| x.gt_scalar(c).add(&x.eq_scalar(c).mul_scalar(0.5));
        record_jvp(
            "maximum_scalar",
            out,
            &[self],
            move |inp, g, _| Ok(vec![Some(g.mul(&to_x(&inp[0])?)?)]),
            move |inp, _, t| crate::autograd::sum_tangents(t, |_, t| t.mul(&to_x(&inp[0])?)),
        )
    }
    /// Elementwise minimum with a scalar (NaN propagates).
    pub fn minimum_scalar(&self, c: f64) -> Tensor {
        let out = super::unary_map!(self, |x| x.min_nan(T::from_f64(c)));
        let to_x = move |x: &Tensor| x.lt_scalar(c).add(&x.eq_scalar(c).mul_scalar(0.5));
        record_jvp(
            "minimum_scalar",
            out,
            &[self],
            move |inp, g, _| Ok(vec![Some(g.mul(&to_x(&inp[0])?)?)]),
            move |inp, _, t| crate::autograd::sum_tangents(t, |_, t| t.mul(&to_x(&inp[0])?)),
        )
    }

    /// `cond ? on_true : on_false` elementwise, all three broadcast together;
    /// `cond` is true where non-zero.
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let c = Tensor::from_vec(vec![1.0f32, 0.0], &[2])?;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
    /// let b = Tensor::from_vec(vec![-1.0f32], &[1])?;
    /// assert_eq!(Tensor::where_(&c, &a, &b)?.to_vec::<f32>()?, vec![1.0, -1.0]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn where_(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        let op = "where";
        if will_record(&[on_true, on_false]) {
            let s1 = broadcast_shapes(op, cond.shape(), on_true.shape())?;
            let shape = broadcast_shapes(op, &s1, on_false.shape())?;
            let (a, b) = (
                on_true.broadcast_to(&shape)?,
                on_false.broadcast_to(&shape)?,
            );
            let c = cond.detach().broadcast_to(&shape)?;
            let out = {
                let _off = crate::autograd::no_grad();
                Tensor::where_(&c, &a, &b)?
            };
            // The condition is not differentiable; the gradient flows to the chosen branch.
            let c_jvp = c.clone();
            return Ok(record_jvp(
                op,
                out,
                &[&a, &b],
                move |_, g, needs| {
                    let zero = g.zeros_like();
                    Ok(vec![
                        if needs[0] {
                            Some(Tensor::where_(&c, g, &zero)?)
                        } else {
                            None
                        },
                        if needs[1] {
                            Some(Tensor::where_(&c, &zero, g)?)
                        } else {
                            None
                        },
                    ])
                },
                move |_, out, t| {
                    let zero = || out.zeros_like();
                    let (da, db) = (
                        t[0].clone().unwrap_or_else(zero),
                        t[1].clone().unwrap_or_else(zero),
                    );
                    Tensor::where_(&c_jvp, &da, &db)
                },
            ));
        }
        cond.same_dtype(op, on_true)?;
        on_true.same_dtype(op, on_false)?;
        let s1 = broadcast_shapes(op, cond.shape(), on_true.shape())?;
        let shape = broadcast_shapes(op, &s1, on_false.shape())?;
        let lc = cond.layout().broadcast_to(&shape)?;
        let la = on_true.layout().broadcast_to(&shape)?;
        let lb = on_false.layout().broadcast_to(&shape)?;
        let order = iteration_order(&[&la, &lb, &lc]);
        let (lc, la, lb) = (
            lc.permute(&order)?,
            la.permute(&order)?,
            lb.permute(&order)?,
        );
        let n: usize = shape.iter().product();
        Ok(with_storages(&[cond, on_true, on_false], |st| {
            with_dtype!(st[0], T, c => {
                let a = st[1].as_slice::<T>().expect("dtypes checked");
                let b = st[2].as_slice::<T>().expect("dtypes checked");
                let mut out = alloc_uninit::<T>(n);
                map::ternary(c, &lc, a, &la, b, &lb, &mut out, |c, a, b| if c != T::ZERO { a } else { b });
                Tensor::from_typed_in_order(out, &shape, &order)
            })
        }))
    }

    /// Elementwise `cond ? self : other` (method form of [`Tensor::where_`]).
    pub fn where_cond(&self, cond: &Tensor, other: &Tensor) -> Result<Tensor> {
        Tensor::where_(cond, self, other)
    }
}

// Operator overloads. Tensor-tensor operators can fail on shapes, so they
// yield `Result<Tensor>` (write `(&a + &b)?`); scalar operators cannot.
macro_rules! tensor_op {
    ($trait:ident, $fn:ident, $method:ident, $scalar:ident) => {
        impl ops::$trait<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $fn(self, rhs: &Tensor) -> Result<Tensor> {
                self.$method(rhs)
            }
        }
        impl ops::$trait<Tensor> for Tensor {
            type Output = Result<Tensor>;
            fn $fn(self, rhs: Tensor) -> Result<Tensor> {
                Tensor::$method(&self, &rhs)
            }
        }
        impl ops::$trait<f64> for &Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: f64) -> Tensor {
                self.$scalar(rhs)
            }
        }
        impl ops::$trait<f64> for Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: f64) -> Tensor {
                Tensor::$scalar(&self, rhs)
            }
        }
    };
}
tensor_op!(Add, add, add, add_scalar);
tensor_op!(Sub, sub, sub, sub_scalar);
tensor_op!(Mul, mul, mul, mul_scalar);
tensor_op!(Div, div, div, div_scalar);

impl ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}
impl ops::Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
