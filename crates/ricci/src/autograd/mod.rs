//! Reverse-mode automatic differentiation whose gradients are themselves
//! differentiable.
//!
//! An op that is recorded stores a [`GradFn`] in its output: the op's
//! inputs and a vector-Jacobian product written in ricci's own
//! differentiable ops. `backward()` walks the graph with recording off (no
//! graph of the backward pass is kept, intermediate gradients are freed as
//! soon as they are used); `backward_with_graph()` and the functional
//! transforms in [`functional`] record the backward pass, so gradients can
//! be differentiated again: Hessians, Hessian-vector products, `jvp`.
//!
//! VJPs recompute what they need from the op's inputs rather than saving
//! its output, so no tensor holds a reference to itself through its graph.
//!
//! Forward mode runs over the same recorded graph: [`forward_tangents`]
//! walks it inputs-first and asks each op for its Jacobian-vector product
//! ([`GradFn::jvp`]), also written in differentiable ops, so tangents can
//! be differentiated in turn. `jvp` costs one tangent pass (not two
//! backward passes), and a Hessian-vector product is the gradient of a
//! directional derivative (reverse over forward), which never forms the
//! gradient's own value.

mod check;
mod engine;
pub mod functional;

use std::cell::Cell;
use std::sync::Arc;

pub use check::{gradcheck, GradcheckOptions};
pub(crate) use engine::grad_of_allow_unused;
pub use engine::{forward_tangents, grad_of, Grads};
pub use functional::{grad, hessian, hvp, jacobian, jvp, vjp};

use crate::error::Result;
use crate::tensor::Tensor;

/// The backward rule of one recorded op.
pub trait GradFn: Send + Sync {
    /// The op's name, for error messages and graph dumps.
    fn name(&self) -> &'static str;
    /// The op's tensor inputs, in the order `vjp` returns their gradients.
    fn inputs(&self) -> &[Tensor];
    /// Given the gradient of the output, the gradient of each input that
    /// `needs` asks for (`None` for the others).
    fn vjp(&self, grad_out: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>>;
    /// Given the op's output and one tangent per input (`None` for a zero
    /// tangent, at least one given), the output's tangent `Σᵢ Jᵢ tᵢ`. The
    /// default differentiates the VJP, which is linear in its cotangent
    /// `u`: `∂/∂u Σᵢ ⟨VJPᵢ(u), tᵢ⟩ = Σᵢ Jᵢ tᵢ` (the double-vjp trick, one
    /// op at a time); ops override it with a direct rule.
    fn jvp(&self, out: &Tensor, tangents: &[Option<Tensor>]) -> Result<Tensor> {
        engine::jvp_by_double_vjp(self, out, tangents)
    }
    /// Moves the inputs out (used to drop long graphs without recursion).
    fn take_inputs(&mut self) -> Vec<Tensor> {
        Vec::new()
    }
}

type VjpFn = dyn Fn(&[Tensor], &Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync;
type JvpFn = dyn Fn(&[Tensor], &Tensor, &[Option<Tensor>]) -> Result<Tensor> + Send + Sync;

/// A [`GradFn`] from closures; what ops use.
struct OpGrad {
    name: &'static str,
    inputs: Vec<Tensor>,
    vjp: Box<VjpFn>,
    jvp: Option<Box<JvpFn>>,
}

impl GradFn for OpGrad {
    fn name(&self) -> &'static str {
        self.name
    }
    fn inputs(&self) -> &[Tensor] {
        &self.inputs
    }
    fn vjp(&self, grad_out: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        (self.vjp)(&self.inputs, grad_out, needs)
    }
    fn jvp(&self, out: &Tensor, tangents: &[Option<Tensor>]) -> Result<Tensor> {
        match &self.jvp {
            Some(jvp) => jvp(&self.inputs, out, tangents),
            None => engine::jvp_by_double_vjp(self, out, tangents),
        }
    }
    fn take_inputs(&mut self) -> Vec<Tensor> {
        std::mem::take(&mut self.inputs)
    }
}

/// Records `out` as made by op `name` from `inputs` when grad mode is on and
/// some input requires grad; otherwise returns `out` untouched. `vjp` gets
/// the inputs, the output gradient and which inputs need a gradient.
pub(crate) fn record<F>(name: &'static str, out: Tensor, inputs: &[&Tensor], vjp: F) -> Tensor
where
    F: Fn(&[Tensor], &Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
{
    if !will_record(inputs) {
        return out;
    }
    record_op(name, out, inputs, Box::new(vjp), None)
}

/// Whether an op of these inputs is recorded: grad mode is on and some
/// input asks for gradients. Checked before the closures are boxed, so an
/// op outside the graph allocates nothing for autograd.
pub(crate) fn will_record(inputs: &[&Tensor]) -> bool {
    is_grad_enabled() && inputs.iter().any(|t| t.requires_grad())
}

/// As [`record`], with a direct Jacobian-vector product: `jvp` gets the
/// inputs, the output and one tangent per input (`None` is zero; at least
/// one is given) and returns the output's tangent, in differentiable ops.
pub(crate) fn record_jvp<F, J>(
    name: &'static str,
    out: Tensor,
    inputs: &[&Tensor],
    vjp: F,
    jvp: J,
) -> Tensor
where
    F: Fn(&[Tensor], &Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    J: Fn(&[Tensor], &Tensor, &[Option<Tensor>]) -> Result<Tensor> + Send + Sync + 'static,
{
    if !will_record(inputs) {
        return out;
    }
    record_op(name, out, inputs, Box::new(vjp), Some(Box::new(jvp)))
}

fn record_op(
    name: &'static str,
    out: Tensor,
    inputs: &[&Tensor],
    vjp: Box<VjpFn>,
    jvp: Option<Box<JvpFn>>,
) -> Tensor {
    // `record` and `record_jvp` have checked `will_record`.
    let grad_fn = OpGrad {
        name,
        inputs: inputs.iter().map(|t| (*t).clone()).collect(),
        vjp,
        jvp,
    };
    out.with_grad_fn(Arc::new(grad_fn))
}

/// `Σᵢ termᵢ(tᵢ)` over the given tangents: the JVP of an op that is a sum
/// of one linear map per input. At least one tangent must be given.
pub(crate) fn sum_tangents(
    tangents: &[Option<Tensor>],
    mut term: impl FnMut(usize, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let mut acc: Option<Tensor> = None;
    for (i, t) in tangents.iter().enumerate() {
        let Some(t) = t else { continue };
        let x = term(i, t)?;
        acc = Some(match acc {
            Some(a) => a.add(&x)?,
            None => x,
        });
    }
    acc.ok_or_else(|| crate::error::Error::invalid("jvp", "internal: no tangent given"))
}

/// `Σᵢ ⟨aᵢ, bᵢ⟩` over the pairs given (each pair of one shape), as one
/// recorded scalar; `None` for no pairs. The inner product of a gradient
/// with a direction, which its own gradient turns into a JVP or an hvp.
pub(crate) fn sum_of_dots<'a>(
    pairs: impl IntoIterator<Item = (&'a Tensor, &'a Tensor)>,
) -> Result<Option<Tensor>> {
    let mut acc: Option<Tensor> = None;
    for (a, b) in pairs {
        let term = a.reshape([-1])?.vecdot(&b.reshape([-1])?)?;
        acc = Some(match acc {
            Some(s) => s.add(&term)?,
            None => term,
        });
    }
    Ok(acc)
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops record the graph on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Turns recording off until the guard drops (like `torch.no_grad()`).
///
/// ```
/// let _guard = ricci::no_grad();
/// assert!(!ricci::autograd::is_grad_enabled());
/// ```
pub fn no_grad() -> GradModeGuard {
    set_grad_enabled(false)
}

/// Sets recording on or off until the guard drops.
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    let prev = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard { prev }
}

/// Restores the previous grad mode when dropped.
#[must_use = "grad mode is restored when the guard drops"]
pub struct GradModeGuard {
    prev: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.prev));
    }
}
