//! Functional transforms in the style of JAX / `torch.func`: `grad`,
//! `vjp`, `jvp`, `jacobian`, `hessian`, `hvp`.
//!
//! Each transform calls `f` on inputs that require grad and differentiates
//! the result. Inputs that already require grad are used as they are and
//! the backward pass is recorded, so transforms nest: `hessian` is the
//! `jacobian` of `grad`, and a third derivative is a `grad` of a `hessian`.

use super::engine::{forward_tangents, grad_of_allow_unused};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Leaves for `xs`: inputs that already require grad are kept (so an outer
/// transform can differentiate through this one), others get a fresh leaf.
fn as_leaves(xs: &[Tensor]) -> (Vec<Tensor>, bool) {
    let nested = xs.iter().any(|x| x.requires_grad());
    let leaves = xs
        .iter()
        .map(|x| {
            if x.requires_grad() {
                x.clone()
            } else {
                x.set_requires_grad(true)
            }
        })
        .collect();
    (leaves, nested)
}

fn zeros_for_unused(gs: Vec<Option<Tensor>>, xs: &[Tensor]) -> Vec<Tensor> {
    gs.into_iter()
        .zip(xs)
        .map(|(g, x)| g.unwrap_or_else(|| x.zeros_like()))
        .collect()
}

/// The gradient of a scalar function at `xs` (one tensor per input).
/// Inputs `f` does not depend on get zeros.
///
/// ```
/// use ricci::{Tensor, autograd::grad};
/// let x = Tensor::from_vec(vec![0.5f64], &[1])?;
/// let g = grad(|x| Ok(x[0].tanh().sum_all()), &[x])?;
/// let want = 1.0 - 0.5f64.tanh().powi(2);
/// assert!((g[0].to_vec::<f64>()?[0] - want).abs() < 1e-15);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn grad(f: impl Fn(&[Tensor]) -> Result<Tensor>, xs: &[Tensor]) -> Result<Vec<Tensor>> {
    let (leaves, nested) = as_leaves(xs);
    let y = {
        let _mode = super::set_grad_enabled(true);
        f(&leaves)?
    };
    if y.numel() != 1 {
        return Err(Error::invalid(
            "grad",
            format!(
                "the function must return a scalar, it returned shape {:?}",
                y.shape()
            ),
        ));
    }
    let refs: Vec<&Tensor> = leaves.iter().collect();
    let gs = grad_of_allow_unused(&y, &refs, None, nested)?;
    Ok(zeros_for_unused(gs, &leaves))
}

/// `(f(xs), vᵀ J)`: the value and the vector-Jacobian product with `v`
/// (same shape as the output).
pub fn vjp(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    xs: &[Tensor],
    v: &Tensor,
) -> Result<(Tensor, Vec<Tensor>)> {
    let (leaves, nested) = as_leaves(xs);
    let y = {
        let _mode = super::set_grad_enabled(true);
        f(&leaves)?
    };
    let refs: Vec<&Tensor> = leaves.iter().collect();
    let gs = grad_of_allow_unused(&y, &refs, Some(v), nested || v.requires_grad())?;
    Ok((y, zeros_for_unused(gs, &leaves)))
}

/// `(f(xs), J t)`: the value and the Jacobian-vector product with tangents
/// `ts` (one per input), by forward mode: `f` runs once with its graph
/// recorded, then the tangents are pushed through that graph op by op
/// ([`forward_tangents`]). The tangent pass is recorded when an input or a
/// tangent requires grad, so `jvp` nests under the other transforms.
///
/// ```
/// use ricci::{Tensor, autograd::jvp};
/// let x = Tensor::from_vec(vec![0.5f64, -1.0], &[2])?;
/// let t = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let (y, dy) = jvp(|xs| Ok(xs[0].sin()), &[x.clone()], &[t])?;
/// assert_eq!(y.to_vec::<f64>()?, vec![0.5f64.sin(), (-1.0f64).sin()]);
/// assert_eq!(dy.to_vec::<f64>()?, vec![0.5f64.cos(), 2.0 * (-1.0f64).cos()]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn jvp(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    xs: &[Tensor],
    ts: &[Tensor],
) -> Result<(Tensor, Tensor)> {
    if ts.len() != xs.len() {
        return Err(Error::invalid(
            "jvp",
            format!("{} tangents for {} inputs", ts.len(), xs.len()),
        ));
    }
    for (x, t) in xs.iter().zip(ts) {
        if x.shape() != t.shape() {
            return Err(Error::shape("jvp", x.shape(), t.shape()));
        }
        x.same_dtype("jvp", t)?;
    }
    let (leaves, nested) = as_leaves(xs);
    let y = {
        let _mode = super::set_grad_enabled(true);
        f(&leaves)?
    };
    let _mode = super::set_grad_enabled(nested || ts.iter().any(Tensor::requires_grad));
    let seeds: Vec<(&Tensor, &Tensor)> = leaves.iter().zip(ts).collect();
    let jt = forward_tangents(&[&y], &seeds)?
        .pop()
        .flatten()
        .unwrap_or_else(|| y.zeros_like());
    Ok((y.detach(), jt))
}

/// The Jacobian of `f` at `x`: shape `f(x).shape() + x.shape()`, one
/// backward pass per output element.
pub fn jacobian(f: impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor) -> Result<Tensor> {
    let (leaves, nested) = as_leaves(std::slice::from_ref(x));
    let x = &leaves[0];
    let y = {
        let _mode = super::set_grad_enabled(true);
        f(x)?
    };
    let m = y.numel();
    let mut rows = Vec::with_capacity(m);
    for i in 0..m {
        let seed = Tensor::from_indices(&[i], &[1], y.dtype())?
            .one_hot(m)?
            .reshape(y.shape().to_vec())?;
        let g = grad_of_allow_unused(&y, &[x], Some(&seed), true)?
            .pop()
            .flatten()
            .unwrap_or_else(|| x.zeros_like());
        rows.push(if nested { g } else { g.detach() });
    }
    let refs: Vec<&Tensor> = rows.iter().collect();
    let mut shape = y.shape().to_vec();
    shape.extend_from_slice(x.shape());
    if refs.is_empty() {
        return Ok(Tensor::zeros(&shape, x.dtype()));
    }
    Tensor::stack(&refs, 0)?.reshape(shape)
}

/// The Hessian of a scalar `f` at `x`: shape `x.shape() + x.shape()`.
pub fn hessian(f: impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor) -> Result<Tensor> {
    jacobian(
        |x| Ok(grad(|xs| f(&xs[0]), std::slice::from_ref(x))?.remove(0)),
        x,
    )
}

/// The Hessian-vector product `H v` of a scalar `f` at `x`, without forming
/// `H`: the gradient of the directional derivative `⟨∇f, v⟩`, which forward
/// mode gives without forming `∇f` (reverse over forward).
///
/// ```
/// use ricci::{Tensor, autograd::hvp};
/// // f(x) = x₀² x₁ has the Hessian [[2 x₁, 2 x₀], [2 x₀, 0]].
/// let x = Tensor::from_vec(vec![3.0f64, 2.0], &[2])?;
/// let v = Tensor::from_vec(vec![1.0f64, 1.0], &[2])?;
/// let hv = hvp(|x| Ok(x.narrow(0, 0, 1)?.square().mul(&x.narrow(0, 1, 1)?)?.sum_all()), &x, &v)?;
/// assert_eq!(hv.to_vec::<f64>()?, vec![10.0, 6.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn hvp(f: impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor, v: &Tensor) -> Result<Tensor> {
    if x.shape() != v.shape() {
        return Err(Error::shape("hvp", x.shape(), v.shape()));
    }
    x.same_dtype("hvp", v)?;
    let (leaves, nested) = as_leaves(std::slice::from_ref(x));
    let x = &leaves[0];
    let _mode = super::set_grad_enabled(true);
    let y = f(x)?;
    if y.numel() != 1 {
        return Err(Error::invalid(
            "hvp",
            format!(
                "the function must return a scalar, not shape {:?}",
                y.shape()
            ),
        ));
    }
    let Some(slope) = forward_tangents(&[&y], &[(x, v)])?.pop().flatten() else {
        return Ok(x.zeros_like());
    };
    let hv = grad_of_allow_unused(&slope, &[x], None, nested || v.requires_grad())?
        .pop()
        .flatten()
        .unwrap_or_else(|| x.zeros_like());
    Ok(hv)
}
