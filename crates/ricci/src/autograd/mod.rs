//! The autograd slot every tensor carries.
//!
//! An op that is recorded stores a [`GradFn`] in its output: the op's inputs
//! and a vector-Jacobian product written in ricci's own differentiable ops,
//! so that gradients are themselves differentiable. The graph walk,
//! `backward`, `Grads` and the functional transforms build on this.

use std::cell::Cell;

use crate::error::Result;
use crate::tensor::Tensor;

/// The backward rule of one recorded op.
pub trait GradFn: Send + Sync {
    /// The op's name, for error messages and graph dumps.
    fn name(&self) -> &'static str;
    /// The op's tensor inputs, in the order `vjp` returns their gradients.
    fn inputs(&self) -> &[Tensor];
    /// Given the gradient of the output, the gradient of each input
    /// (`None` for inputs that do not need one).
    fn vjp(&self, grad_out: &Tensor) -> Result<Vec<Option<Tensor>>>;
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
