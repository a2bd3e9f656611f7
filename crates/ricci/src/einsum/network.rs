//! Tensor networks with ncon-style labels.
//!
//! Each tensor's dims are labelled with integers: a positive label is a
//! bond, contracted between the two dims that carry it (two dims of one
//! tensor make a trace); a negative label is an open leg, and the result's
//! dims are the open legs in the order -1, -2, -3, ... This is the
//! convention of ncon (Pfeifer, Evenbly, Singh, Vidal 2014), but the order
//! of contraction is not read from the labels: the network goes through
//! the einsum planner (optimal up to
//! [`OPTIMAL_MAX_OPERANDS`](super::OPTIMAL_MAX_OPERANDS) tensors, greedy
//! beyond), so labels only have to say what is connected to what.

use super::exec;
use super::parse::{generated_name, Expr};
use super::path::{self, EinsumPath, PathOptions};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

const OP: &str = "contract_network";

/// Contracts a tensor network (ncon-style labels, see the module doc).
/// Differentiable in every tensor.
///
/// ```
/// # use ricci::{contract_network, einsum, DType, Rng, Tensor};
/// let mut rng = Rng::new(1);
/// let a = Tensor::randn(&[3, 4], DType::F64, &mut rng);
/// let b = Tensor::randn(&[4, 5], DType::F64, &mut rng);
/// // Bond 1 joins a's columns to b's rows; -1, -2 are the open legs.
/// let ab = contract_network(&[&a, &b], &[&[-1, 1], &[1, -2]])?;
/// let diff = ab.sub(&a.matmul(&b)?)?.abs().max_all()?.to_f64()?;
/// assert!(diff < 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn contract_network(tensors: &[&Tensor], labels: &[&[i64]]) -> Result<Tensor> {
    if let Some(first) = tensors.first() {
        for t in &tensors[1..] {
            first.same_dtype(OP, t)?;
        }
    }
    let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
    let expr = network_expr(&shapes, labels)?;
    let (path, _) = path::plan_path(&expr, &PathOptions::default())?;
    exec::execute(&expr, &path, tensors)
}

/// The path [`contract_network`] takes for tensors of these shapes, with
/// its cost (see [`EinsumPath`]); step equations use generated letters.
///
/// ```
/// # use ricci::einsum::contract_network_path;
/// // A chain of three matrices: the small end is contracted first.
/// let p = contract_network_path(&[vec![100, 10], vec![10, 100], vec![100, 2]],
///                               &[&[-1, 1], &[1, 2], &[2, -2]])?;
/// assert_eq!(p.path[0], vec![1, 2]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn contract_network_path<S: AsRef<[usize]>>(
    shapes: &[S],
    labels: &[&[i64]],
) -> Result<EinsumPath> {
    let shapes: Vec<&[usize]> = shapes.iter().map(|s| s.as_ref()).collect();
    let expr = network_expr(&shapes, labels)?;
    path::plan(&expr, &PathOptions::default())
}

/// Builds the einsum expression of a network, checking its labels.
fn network_expr(tensors: &[&[usize]], labels: &[&[i64]]) -> Result<Expr> {
    if tensors.len() != labels.len() {
        return Err(Error::invalid(
            OP,
            format!("{} tensors but {} label lists", tensors.len(), labels.len()),
        ));
    }
    if tensors.is_empty() {
        return Err(Error::invalid(OP, "no tensors"));
    }
    // Distinct labels in order of first appearance, with their size, where
    // they were first seen, and how many dims carry them.
    let mut seen: Vec<(i64, usize, usize, usize)> = Vec::new();
    let mut inputs = Vec::with_capacity(tensors.len());
    for (i, (t, ls)) in tensors.iter().zip(labels).enumerate() {
        if ls.len() != t.len() {
            return Err(Error::invalid(
                OP,
                format!(
                    "tensor {i} has shape {t:?} (rank {}) but {} labels {:?}",
                    t.len(),
                    ls.len(),
                    ls
                ),
            ));
        }
        let mut ids = Vec::with_capacity(ls.len());
        for (d, &label) in ls.iter().enumerate() {
            if label == 0 {
                return Err(Error::invalid(
                    OP,
                    format!("tensor {i} dim {d}: label 0 is not allowed (bonds are positive, open legs negative)"),
                ));
            }
            let size = t[d];
            match seen.iter().position(|s| s.0 == label) {
                Some(id) => {
                    let (_, first_size, first_tensor, count) = seen[id];
                    if first_size != size {
                        return Err(Error::invalid(
                            OP,
                            format!(
                                "label {label} has size {first_size} on tensor {first_tensor} and size {size} on tensor {i}"
                            ),
                        ));
                    }
                    seen[id].3 = count + 1;
                    ids.push(id);
                }
                None => {
                    seen.push((label, size, i, 1));
                    ids.push(seen.len() - 1);
                }
            }
        }
        inputs.push(ids);
    }
    for &(label, _, _, count) in &seen {
        let want = if label > 0 { 2 } else { 1 };
        if count != want {
            let kind = if label > 0 { "bond" } else { "open leg" };
            return Err(Error::invalid(
                OP,
                format!(
                    "{kind} label {label} appears {count} times (a {kind} appears exactly {want})"
                ),
            ));
        }
    }
    let mut open: Vec<(i64, usize)> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 < 0)
        .map(|(id, s)| (s.0, id))
        .collect();
    open.sort_by_key(|&(label, _)| std::cmp::Reverse(label));
    let names: Vec<char> = (0..seen.len()).map(generated_name).collect();
    let mut expr = Expr {
        equation: String::new(),
        inputs,
        output: open.iter().map(|&(_, id)| id).collect(),
        sizes: seen.iter().map(|s| s.1).collect(),
        names,
    };
    let terms: Vec<String> = expr.inputs.iter().map(|l| expr.term(l)).collect();
    expr.equation = format!("{}->{}", terms.join(","), expr.term(&expr.output));
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;

    #[test]
    fn bad_labels_are_named() {
        let a = Tensor::zeros(&[2, 3], DType::F64);
        let b = Tensor::zeros(&[4, 3], DType::F64);
        let msg = |r: Result<Tensor>| r.unwrap_err().to_string();
        assert!(msg(contract_network(&[&a, &b], &[&[-1, 1], &[1, -2]]))
            .contains("label 1 has size 3 on tensor 0 and size 4 on tensor 1"));
        assert!(msg(contract_network(&[&a, &b], &[&[-1, 1], &[-2, 2]])).contains("appears 1 times"));
        assert!(msg(contract_network(&[&a], &[&[-1]])).contains("rank 2"));
        assert!(msg(contract_network(&[&a], &[&[0, -1]])).contains("label 0"));
    }
}
