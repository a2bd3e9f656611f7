//! The backward walk: topological order by an iterative depth-first search
//! (so a chain of 100,000 ops cannot overflow the stack), then one pass in
//! reverse order that hands each node's finished gradient to its op's VJP
//! and drops it right after. The forward (tangent) walk uses the same order
//! front to back.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::{is_grad_enabled, set_grad_enabled, GradFn};
use crate::error::{Error, Result};
use crate::tensor::{Tensor, TensorId};

/// Hashes a [`TensorId`] (a unique counter) with one multiply by an odd
/// constant, which spreads consecutive ids over the table; SipHash, the
/// default, costs several times more, and a walk does a few hash
/// operations per node.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type IdMap<V> = HashMap<TensorId, V, BuildHasherDefault<IdHasher>>;
type IdSet = HashSet<TensorId, BuildHasherDefault<IdHasher>>;

/// Gradients of a backward pass, keyed by tensor.
#[derive(Default, Clone)]
pub struct Grads {
    map: IdMap<Tensor>,
}

impl std::fmt::Debug for Grads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Grads({} tensors)", self.map.len())
    }
}

impl Grads {
    /// The gradient of `t`, if it received one.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }
    /// Removes and returns the gradient of `t`.
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }
    /// Sets (or replaces) the gradient of `t`, e.g. after clipping it.
    pub fn insert(&mut self, t: &Tensor, grad: Tensor) {
        self.map.insert(t.id(), grad);
    }
    /// Number of tensors with a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Adds `other`'s gradients to these: summed where both have one, moved
    /// in where only `other` has. How gradients of pieces of a batch
    /// computed separately combine into the batch's gradient.
    pub fn add(&mut self, other: Grads) -> Result<()> {
        for (id, g) in other.map {
            accumulate(&mut self.map, id, g)?;
        }
        Ok(())
    }
}

/// Nodes reachable from `roots` through recorded ops, inputs before users.
/// Nodes in `stop` are left out, and so is what lies behind them.
fn topological_order(roots: &[&Tensor], stop: &IdSet) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen: IdSet = stop.clone();
    let mut stack: Vec<(Tensor, bool)> =
        roots.iter().rev().map(|t| ((*t).clone(), false)).collect();
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(f) = t.grad_fn() {
            for input in f.inputs() {
                if input.requires_grad() && !seen.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}

/// Runs the backward pass from `root` seeded with `seed` (ones for a
/// scalar). Keeps the gradients of leaves and of the tensors in `keep`.
pub(crate) fn backward(
    root: &Tensor,
    seed: Option<&Tensor>,
    create_graph: bool,
    keep: &[TensorId],
) -> Result<Grads> {
    backward_within(root, seed, create_graph, keep, &IdSet::default())
}

/// As [`backward`], treating the tensors in `stop` as constants: no
/// gradient flows into them or past them.
fn backward_within(
    root: &Tensor,
    seed: Option<&Tensor>,
    create_graph: bool,
    keep: &[TensorId],
    stop: &IdSet,
) -> Result<Grads> {
    if !root.requires_grad() {
        return Err(Error::invalid(
            "backward",
            "the output does not require grad (no input of its graph was marked with set_requires_grad)",
        ));
    }
    let seed = match seed {
        Some(s) => {
            if s.shape() != root.shape() {
                return Err(Error::shape("backward", root.shape(), s.shape()));
            }
            root.same_dtype("backward", s)?;
            s.clone()
        }
        None => {
            if root.numel() != 1 {
                return Err(Error::invalid(
                    "backward",
                    format!(
                        "the output has shape {:?}; backward without a seed gradient needs a scalar (pass a seed)",
                        root.shape()
                    ),
                ));
            }
            root.ones_like()
        }
    };
    let _mode = set_grad_enabled(create_graph);
    let order = topological_order(&[root], stop);
    let mut pending: IdMap<Tensor> = IdMap::default();
    pending.insert(root.id(), seed);
    let mut out = Grads::default();
    for node in order.iter().rev() {
        let Some(g) = pending.remove(&node.id()) else {
            continue;
        };
        match node.grad_fn() {
            Some(f) => {
                let inputs = f.inputs();
                let needs: Vec<bool> = inputs
                    .iter()
                    .map(|t| t.requires_grad() && !stop.contains(&t.id()))
                    .collect();
                let grads = f.vjp(&g, &needs)?;
                for ((input, gi), need) in inputs.iter().zip(grads).zip(needs) {
                    let (Some(gi), true) = (gi, need) else {
                        continue;
                    };
                    if gi.shape() != input.shape() {
                        return Err(Error::invalid(
                            "backward",
                            format!(
                                "internal: the VJP of {} gave a gradient of shape {:?} for an input of shape {:?}",
                                f.name(),
                                gi.shape(),
                                input.shape()
                            ),
                        ));
                    }
                    accumulate(&mut pending, input.id(), gi)?;
                }
                if keep.contains(&node.id()) {
                    out.map.insert(node.id(), g);
                }
            }
            None => {
                out.map.insert(node.id(), g);
            }
        }
    }
    Ok(out)
}

/// The tangents of `outputs` when each tensor in `seeds` moves along its
/// tangent (forward mode, over the recorded graph): one pass inputs-first
/// in which every op on a path from a seeded tensor maps its inputs'
/// tangents with its [`GradFn::jvp`]. `None` for an output that no seeded
/// tensor reaches (its tangent is zero). A seeded tensor's own recorded
/// inputs are ignored, as for a leaf.
///
/// With grad mode on, the tangent pass is recorded, so tangents can be
/// differentiated: the gradient of a directional derivative `⟨∇f, v⟩` is
/// the Hessian-vector product `H v`.
///
/// ```
/// use ricci::{Tensor, autograd::forward_tangents};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?.set_requires_grad(true);
/// let y = x.square().sum_all(); // dy = 2 x · dx
/// let t = Tensor::from_vec(vec![1.0f64, 0.5], &[2])?;
/// let dy = forward_tangents(&[&y], &[(&x, &t)])?.remove(0).unwrap();
/// assert_eq!(dy.to_f64()?, 4.0);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn forward_tangents(
    outputs: &[&Tensor],
    seeds: &[(&Tensor, &Tensor)],
) -> Result<Vec<Option<Tensor>>> {
    let mut tangents: IdMap<Tensor> = IdMap::default();
    for (x, t) in seeds {
        if t.shape() != x.shape() {
            return Err(Error::shape("jvp", x.shape(), t.shape()));
        }
        x.same_dtype("jvp", t)?;
        tangents.insert(x.id(), (*t).clone());
    }
    let order = topological_order(outputs, &IdSet::default());
    // Uses left of each tangent, so that each is dropped after its last user.
    let mut uses: IdMap<usize> = IdMap::default();
    for node in &order {
        if let Some(f) = node.grad_fn() {
            for input in f.inputs() {
                *uses.entry(input.id()).or_default() += 1;
            }
        }
    }
    let wanted: IdSet = outputs.iter().map(|t| t.id()).collect();
    for node in &order {
        let Some(f) = node.grad_fn() else { continue };
        let inputs = f.inputs();
        let ts: Vec<Option<Tensor>> = inputs
            .iter()
            .map(|x| tangents.get(&x.id()).cloned())
            .collect();
        for x in inputs {
            if let Some(n) = uses.get_mut(&x.id()) {
                *n -= 1;
                if *n == 0 && !wanted.contains(&x.id()) {
                    tangents.remove(&x.id());
                }
            }
        }
        if tangents.contains_key(&node.id()) || ts.iter().all(Option::is_none) {
            continue;
        }
        let t = f.jvp(node, &ts)?;
        if t.shape() != node.shape() || t.dtype() != node.dtype() {
            return Err(Error::invalid(
                "jvp",
                format!(
                    "internal: the JVP of {} gave a tangent of shape {:?} ({:?}) for an output of shape {:?} ({:?})",
                    f.name(),
                    t.shape(),
                    t.dtype(),
                    node.shape(),
                    node.dtype()
                ),
            ));
        }
        tangents.insert(node.id(), t);
    }
    Ok(outputs
        .iter()
        .map(|y| tangents.get(&y.id()).cloned())
        .collect())
}

/// The JVP of one op by differentiating its VJP with respect to the
/// cotangent (see [`GradFn::jvp`]). The second backward stops at the op's
/// inputs and the tangents, so it costs about one more VJP, not a walk of
/// the whole graph behind them. The result is recorded when grad mode is on.
pub(crate) fn jvp_by_double_vjp<F: GradFn + ?Sized>(
    f: &F,
    out: &Tensor,
    tangents: &[Option<Tensor>],
) -> Result<Tensor> {
    let create_graph = is_grad_enabled();
    let _mode = set_grad_enabled(true);
    let u = out.zeros_like().set_requires_grad(true);
    let needs: Vec<bool> = tangents.iter().map(Option::is_some).collect();
    let grads = f.vjp(&u, &needs)?;
    let pairs = grads
        .iter()
        .zip(tangents)
        .filter_map(|(g, t)| g.as_ref().zip(t.as_ref()));
    let Some(inner) = super::sum_of_dots(pairs)?.filter(Tensor::requires_grad) else {
        return Ok(out.zeros_like());
    };
    let stop: IdSet = f
        .inputs()
        .iter()
        .chain(tangents.iter().flatten())
        .map(Tensor::id)
        .collect();
    let grads = backward_within(&inner, None, create_graph, &[u.id()], &stop)?;
    Ok(grads.get(&u).cloned().unwrap_or_else(|| out.zeros_like()))
}

fn accumulate(map: &mut IdMap<Tensor>, id: TensorId, g: Tensor) -> Result<()> {
    let sum = match map.remove(&id) {
        Some(prev) => prev.add(&g)?,
        None => g,
    };
    map.insert(id, sum);
    Ok(())
}

/// Gradients of `output` with respect to each of `inputs` (like
/// `torch.autograd.grad`). `seed` is the output's cotangent (required
/// unless the output is a scalar). With `create_graph` the backward pass is
/// recorded, so the results can be differentiated again.
///
/// An input that does not require grad, or that `output` does not depend
/// on, is an error.
///
/// ```
/// use ricci::{Tensor, autograd::grad_of};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?.set_requires_grad(true);
/// let y = x.square().sum_all();
/// let g = grad_of(&y, &[&x], None, false)?;
/// assert_eq!(g[0].to_vec::<f64>()?, vec![2.0, 4.0, 6.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn grad_of(
    output: &Tensor,
    inputs: &[&Tensor],
    seed: Option<&Tensor>,
    create_graph: bool,
) -> Result<Vec<Tensor>> {
    let grads = grad_of_allow_unused(output, inputs, seed, create_graph)?;
    grads
        .into_iter()
        .zip(inputs)
        .map(|(g, x)| {
            g.ok_or_else(|| {
                Error::invalid(
                    "grad",
                    format!(
                        "an input of shape {:?} is not part of the graph that produced the output",
                        x.shape()
                    ),
                )
            })
        })
        .collect()
}

/// As [`grad_of`], with `None` for inputs the output does not depend on.
pub(crate) fn grad_of_allow_unused(
    output: &Tensor,
    inputs: &[&Tensor],
    seed: Option<&Tensor>,
    create_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    for x in inputs {
        if !x.requires_grad() {
            return Err(Error::invalid(
                "grad",
                format!(
                    "an input of shape {:?} does not require grad (use set_requires_grad(true))",
                    x.shape()
                ),
            ));
        }
    }
    if !output.requires_grad() {
        return Ok(vec![None; inputs.len()]);
    }
    let keep: Vec<TensorId> = inputs.iter().map(|t| t.id()).collect();
    let grads = backward(output, seed, create_graph, &keep)?;
    Ok(inputs.iter().map(|x| grads.get(x).cloned()).collect())
}

impl Tensor {
    /// Backpropagates from this scalar: the gradient of every leaf that
    /// requires grad. Runs without recording (training style).
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let w = Tensor::from_vec(vec![3.0f32], &[1])?.set_requires_grad(true);
    /// let loss = w.mul(&w)?.sum_all();
    /// let grads = loss.backward()?;
    /// assert_eq!(grads.get(&w).unwrap().to_vec::<f32>()?, vec![6.0]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn backward(&self) -> Result<Grads> {
        backward(self, None, false, &[])
    }

    /// Backpropagates `seed` (the gradient of some scalar with respect to this tensor).
    pub fn backward_with_seed(&self, seed: &Tensor) -> Result<Grads> {
        backward(self, Some(seed), false, &[])
    }

    /// As [`Tensor::backward`], recording the backward pass so that the
    /// gradients can be differentiated again.
    pub fn backward_with_graph(&self) -> Result<Grads> {
        backward(self, None, true, &[])
    }
}
