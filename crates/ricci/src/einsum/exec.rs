//! Executes a planned einsum with ricci's differentiable ops, so every
//! result has a gradient (and a gradient of the gradient) for free.
//!
//! - Each operand first gets its single-operand work: size-1 dims that
//!   broadcast are expanded (a stride-0 view), a repeated label becomes a
//!   diagonal (a view), and labels no other operand nor the output uses are
//!   summed away, so the pairwise steps see smaller tensors.
//! - A pairwise step splits labels into batch (in both, still needed),
//!   contracted (in both, not needed), left (only in the first) and right
//!   (only in the second). The operands are permuted to `[batch, left,
//!   contracted]` and `[batch, contracted, right]`, each group merged into
//!   one dim by a reshape (a view when the strides allow), and multiplied by
//!   a batched matmul, which reads transposed views in place. Groups are
//!   ordered by stride so that merging rarely needs a copy.
//! - A step with nothing to contract is a broadcast product. One whose left
//!   and right groups are empty (batched dot products) is `vecdot`: one
//!   fused pass that stores no product, where a 1 x k by k x 1 matmul per
//!   batch item would pay its call cost, and a product then a sum would
//!   write and re-read the product.

use std::cmp::Reverse;

use super::parse::{Expr, Label};
use crate::error::Result;
use crate::tensor::Tensor;

/// A tensor with one distinct label per dim.
struct Term {
    tensor: Tensor,
    labels: Vec<Label>,
}

/// Runs `path` (linear format) on the operands of `expr`.
pub(crate) fn execute(expr: &Expr, path: &[Vec<usize>], operands: &[&Tensor]) -> Result<Tensor> {
    let n = operands.len();
    let mut terms = Vec::with_capacity(n);
    for (i, (&t, labels)) in operands.iter().zip(&expr.inputs).enumerate() {
        // Needed: the output's labels and every other operand's.
        let mut needed: Vec<Label> = expr.output.clone();
        for (j, other) in expr.inputs.iter().enumerate() {
            if j != i {
                needed.extend(other);
            }
        }
        terms.push(prepare(expr, t, labels, &needed)?);
    }
    let mut list: Vec<Term> = terms;
    for step in path {
        if step.len() != 2 {
            continue; // a one-operand expression: prepare did the work
        }
        let (i, j) = (step[0].min(step[1]), step[0].max(step[1]));
        let b = list.remove(j);
        let a = list.remove(i);
        let mut keep: Vec<Label> = expr.output.clone();
        for t in &list {
            keep.extend(&t.labels);
        }
        list.push(contract_pair(expr, a, b, &keep)?);
    }
    let Some(last) = list.pop() else {
        return Err(crate::Error::invalid("einsum", "no operands"));
    };
    // Any label left that the output lacks is summed (possible only when
    // the path left an operand untouched), then dims are put in order.
    let last = sum_labels(last, |l| !expr.output.contains(&l))?;
    let order: Vec<usize> = expr
        .output
        .iter()
        .filter_map(|l| last.labels.iter().position(|m| m == l))
        .collect();
    if order.iter().enumerate().all(|(k, &p)| k == p) {
        return Ok(last.tensor);
    }
    last.tensor.permute(order)
}

/// Single-operand work: broadcast expansion, diagonals, sums of labels that
/// nothing in `needed` uses.
fn prepare(expr: &Expr, t: &Tensor, labels: &[Label], needed: &[Label]) -> Result<Term> {
    let full: Vec<usize> = expr.shape_of(labels);
    let mut tensor = if full.as_slice() != t.shape() {
        t.broadcast_to(&full)?
    } else {
        t.clone()
    };
    let mut labels = labels.to_vec();
    // A repeated label: take the diagonal (appended as the last dim).
    while let Some((d0, d1)) = first_repeat(&labels) {
        tensor = tensor.diagonal(0, d0, d1)?;
        let l = labels[d0];
        labels.remove(d1);
        labels.remove(d0);
        labels.push(l);
    }
    sum_labels(Term { tensor, labels }, |l| !needed.contains(&l))
}

fn first_repeat(labels: &[Label]) -> Option<(usize, usize)> {
    for d1 in 1..labels.len() {
        if let Some(d0) = labels[..d1].iter().position(|&l| l == labels[d1]) {
            return Some((d0, d1));
        }
    }
    None
}

/// Sums the dims whose label satisfies `drop`.
fn sum_labels(term: Term, drop: impl Fn(Label) -> bool) -> Result<Term> {
    let dims: Vec<usize> = (0..term.labels.len())
        .filter(|&d| drop(term.labels[d]))
        .collect();
    if dims.is_empty() {
        return Ok(term);
    }
    let labels = term.labels.iter().copied().filter(|&l| !drop(l)).collect();
    Ok(Term {
        tensor: term.tensor.sum(dims, false)?,
        labels,
    })
}

/// Dims of `t` holding `labels`, in the given label order.
fn dims_of(t: &Term, labels: &[Label]) -> Vec<usize> {
    labels
        .iter()
        .filter_map(|l| t.labels.iter().position(|m| m == l))
        .collect()
}

/// Orders `labels` of `t` by decreasing stride (memory order), so that a
/// group of dims merges into one without a copy when it can.
fn by_stride(t: &Term, labels: &mut [Label]) {
    let strides = t.tensor.stride();
    labels.sort_by_key(|l| {
        let d = t.labels.iter().position(|m| m == l).unwrap_or(0);
        Reverse(strides[d].unsigned_abs())
    });
}

fn product(t: &Term, dims: &[usize]) -> usize {
    dims.iter().map(|&d| t.tensor.shape()[d]).product()
}

/// Contracts two terms, keeping the labels in `keep`.
fn contract_pair(expr: &Expr, a: Term, b: Term, keep: &[Label]) -> Result<Term> {
    // A label only one side has that nothing needs is summed first.
    let (a_labels, b_labels) = (a.labels.clone(), b.labels.clone());
    let a = sum_labels(a, |l| !b_labels.contains(&l) && !keep.contains(&l))?;
    let b = sum_labels(b, |l| !a_labels.contains(&l) && !keep.contains(&l))?;
    let in_b = |l: &Label| b.labels.contains(l);
    let batch: Vec<Label> = a
        .labels
        .iter()
        .copied()
        .filter(|l| in_b(l) && keep.contains(l))
        .collect();
    let mut contracted: Vec<Label> = a
        .labels
        .iter()
        .copied()
        .filter(|l| in_b(l) && !keep.contains(l))
        .collect();
    let mut left: Vec<Label> = a.labels.iter().copied().filter(|l| !in_b(l)).collect();
    let mut right: Vec<Label> = b
        .labels
        .iter()
        .copied()
        .filter(|l| !a.labels.contains(l))
        .collect();
    by_stride(&a, &mut left);
    by_stride(&b, &mut right);
    if a.tensor.numel() >= b.tensor.numel() {
        by_stride(&a, &mut contracted);
    } else {
        by_stride(&b, &mut contracted);
    }
    let batch_shape = expr.shape_of(&batch);
    let out_labels: Vec<Label> = batch.iter().chain(&left).chain(&right).copied().collect();
    let out_shape = expr.shape_of(&out_labels);

    if contracted.is_empty() {
        // Broadcast product: a as [batch, left, 1..], b as [batch, 1.., right].
        let mut a_order = dims_of(&a, &batch);
        a_order.extend(dims_of(&a, &left));
        let mut b_order = dims_of(&b, &batch);
        b_order.extend(dims_of(&b, &right));
        let mut a_shape = batch_shape.clone();
        a_shape.extend(expr.shape_of(&left));
        a_shape.extend(std::iter::repeat_n(1, right.len()));
        let mut b_shape = batch_shape.clone();
        b_shape.extend(std::iter::repeat_n(1, left.len()));
        b_shape.extend(expr.shape_of(&right));
        let x = a.tensor.permute(a_order)?.reshape(a_shape)?;
        let y = b.tensor.permute(b_order)?.reshape(b_shape)?;
        return Ok(Term {
            tensor: x.mul(&y)?,
            labels: out_labels,
        });
    }

    let mut a_order = dims_of(&a, &batch);
    a_order.extend(dims_of(&a, &left));
    a_order.extend(dims_of(&a, &contracted));
    let mut b_order = dims_of(&b, &batch);
    b_order.extend(dims_of(&b, &contracted));
    b_order.extend(dims_of(&b, &right));
    let m = product(&a, &dims_of(&a, &left));
    let k = product(&a, &dims_of(&a, &contracted));
    let n = product(&b, &dims_of(&b, &right));

    if left.is_empty() && right.is_empty() {
        // Batched dot products over the contracted group.
        let mut shape = batch_shape.clone();
        shape.push(k);
        let x = a.tensor.permute(a_order)?.reshape(shape.clone())?;
        let y = b.tensor.permute(b_order)?.reshape(shape)?;
        return Ok(Term {
            tensor: x.vecdot(&y)?,
            labels: out_labels,
        });
    }

    let mut a_shape = batch_shape.clone();
    a_shape.extend([m, k]);
    let mut b_shape = batch_shape;
    b_shape.extend([k, n]);
    let x = a.tensor.permute(a_order)?.reshape(a_shape)?;
    let y = b.tensor.permute(b_order)?.reshape(b_shape)?;
    let product = x.matmul(&y)?;
    Ok(Term {
        tensor: product.reshape(out_shape)?,
        labels: out_labels,
    })
}
