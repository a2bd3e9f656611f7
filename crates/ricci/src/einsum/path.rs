//! Contraction paths: which pair of operands to contract first.
//!
//! The cost model is opt_einsum's, so our figures and theirs can be compared
//! one for one. Contracting tensors with index sets `A` and `B` costs
//! `size(A ∪ B) · (2 if some index is summed away else 1)`, where `size` is
//! the product of the index sizes; an index is summed away when neither the
//! output nor any operand still waiting needs it. A single-operand
//! expression costs `size(A) · (2 if summed)`, and the naive cost of an
//! `n`-operand expression is `size(all) · (n - 1 + [some index is shared])`.
//!
//! Two planners:
//! - **optimal**: dynamic programming over subsets of operands. The best
//!   cost of the tensor made from subset `S` is the minimum, over splits of
//!   `S` into `A` and `S \ A`, of the two halves' best costs plus the cost of
//!   contracting them; the result of `S` keeps the indices of `S` that the
//!   output or an operand outside `S` needs. All splits are tried, outer
//!   products included, so the path is the one opt_einsum's `'optimal'`
//!   finds (same cost; ties may pick another path). About `3^n / 2` splits:
//!   used up to [`OPTIMAL_MAX_OPERANDS`].
//! - **greedy**: repeatedly contracts the pair sharing an index whose result
//!   is smallest relative to its inputs (`size(out) - size(a) - size(b)`, as
//!   opt_einsum's greedy), then outer products of the smallest tensors.
//!
//! Paths use opt_einsum's linear format: each step names two positions in
//! the current operand list; both operands leave the list and their result
//! is appended at its end.

use std::fmt;

use super::parse::Expr;
use crate::error::{Error, Result};

/// The largest operand count the exact planner takes under
/// [`Strategy::Auto`] (a few milliseconds at 12 operands).
pub const OPTIMAL_MAX_OPERANDS: usize = 12;

/// How to search for a contraction path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Optimal up to [`OPTIMAL_MAX_OPERANDS`] operands, greedy beyond.
    #[default]
    Auto,
    /// Dynamic programming over subsets: the cheapest path in the cost model.
    Optimal,
    /// Greedy: fast for any number of operands, not always the cheapest.
    Greedy,
}

/// Options of [`einsum_path_with`](super::einsum_path_with).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathOptions {
    /// Which planner to run.
    pub strategy: Strategy,
    /// The most elements an intermediate (not the output) may hold.
    pub memory_limit: Option<u128>,
}

/// One pairwise (or, for a one-operand expression, single) contraction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathStep {
    /// Positions in the current operand list (opt_einsum's linear format).
    pub operands: Vec<usize>,
    /// What this step computes, as an einsum equation.
    pub equation: String,
    /// The shape of the step's result.
    pub shape: Vec<usize>,
    /// Its cost in the model of the module doc.
    pub flops: u128,
}

/// A contraction path with its cost. Costs and sizes saturate at
/// `u128::MAX` (the naive cost of a large network can exceed it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EinsumPath {
    /// Steps in opt_einsum's linear format.
    pub path: Vec<Vec<usize>>,
    /// The same steps with their equations, shapes and costs.
    pub steps: Vec<PathStep>,
    /// Total cost of the path.
    pub flops: u128,
    /// Cost of contracting all operands at once.
    pub naive_flops: u128,
    /// Elements of the largest result of a step (the output included).
    pub largest_intermediate: u128,
    /// The planner that made the path ([`Strategy::Optimal`] or [`Strategy::Greedy`]).
    pub strategy: Strategy,
}

impl fmt::Display for EinsumPath {
    /// The table `ricci einsum --explain` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let planner = match self.strategy {
            Strategy::Greedy => "greedy",
            _ => "optimal",
        };
        writeln!(f, "path ({planner}): {:?}", self.path)?;
        writeln!(
            f,
            "flops: {} (naive {}, speedup {:.1}x); largest intermediate: {} elements",
            self.flops,
            self.naive_flops,
            self.naive_flops as f64 / (self.flops.max(1)) as f64,
            self.largest_intermediate
        )?;
        for (k, step) in self.steps.iter().enumerate() {
            writeln!(
                f,
                "  step {k}: operands {:?}  {}  -> {:?}  flops {}",
                step.operands, step.equation, step.shape, step.flops
            )?;
        }
        Ok(())
    }
}

/// A set of labels (at most 128 distinct labels per expression).
type Bits = u128;

fn bits_of(labels: &[usize]) -> Bits {
    labels.iter().fold(0, |acc, &l| acc | (1 << l))
}

/// Product of the sizes of the labels in `bits` (saturating).
fn size_of(bits: Bits, sizes: &[usize]) -> u128 {
    let mut rest = bits;
    let mut product: u128 = 1;
    while rest != 0 {
        let l = rest.trailing_zeros() as usize;
        product = product.saturating_mul(sizes[l] as u128);
        rest &= rest - 1;
    }
    product
}

/// opt_einsum's `flop_count`.
fn flop_count(indices: Bits, inner: bool, terms: usize, sizes: &[usize]) -> u128 {
    let factor = terms.saturating_sub(1).max(1) + usize::from(inner);
    size_of(indices, sizes).saturating_mul(factor as u128)
}

/// Plans `expr` and describes the path.
pub(crate) fn plan(expr: &Expr, options: &PathOptions) -> Result<EinsumPath> {
    let (path, strategy) = plan_path(expr, options)?;
    let mut described = describe(expr, &path);
    described.strategy = strategy;
    Ok(described)
}

/// Plans `expr`: the linear path and the planner that made it.
pub(crate) fn plan_path(expr: &Expr, options: &PathOptions) -> Result<(Vec<Vec<usize>>, Strategy)> {
    if expr.sizes.len() > Bits::BITS as usize {
        return Err(Error::Einsum {
            equation: expr.equation.clone(),
            position: 0,
            msg: format!(
                "{} distinct indices; the planner handles at most {}",
                expr.sizes.len(),
                Bits::BITS
            ),
        });
    }
    let inputs: Vec<Bits> = expr.inputs.iter().map(|l| bits_of(l)).collect();
    let output = bits_of(&expr.output);
    let n = inputs.len();
    let optimal = match options.strategy {
        Strategy::Optimal => true,
        Strategy::Greedy => false,
        Strategy::Auto => n <= OPTIMAL_MAX_OPERANDS,
    };
    let limit = options.memory_limit;
    let found = if n <= 1 {
        Some(vec![vec![0]])
    } else if n == 2 {
        Some(vec![vec![0, 1]])
    } else if optimal {
        if n > 24 {
            return Err(Error::Einsum {
                equation: expr.equation.clone(),
                position: 0,
                msg: format!("{n} operands are too many for the optimal planner (at most 24); use the greedy one"),
            });
        }
        optimal_path(&inputs, output, &expr.sizes, limit)
    } else {
        greedy_path(&inputs, output, &expr.sizes, limit)
    };
    let Some(path) = found else {
        return Err(Error::Einsum {
            equation: expr.equation.clone(),
            position: 0,
            msg: format!(
                "no pairwise path keeps every intermediate within the memory limit of {} elements",
                limit.unwrap_or(u128::MAX)
            ),
        });
    };
    let strategy = if optimal {
        Strategy::Optimal
    } else {
        Strategy::Greedy
    };
    Ok((path, strategy))
}

/// Walks a linear path, computing each step's result, equation and cost
/// exactly as opt_einsum's `contract_path` reports them.
pub(crate) fn describe(expr: &Expr, path: &[Vec<usize>]) -> EinsumPath {
    let sizes = &expr.sizes;
    let output = bits_of(&expr.output);
    let all = expr.inputs.iter().fold(0, |acc, l| acc | bits_of(l));
    let distinct_total: u32 = expr.inputs.iter().map(|l| bits_of(l).count_ones()).sum();
    let naive_flops = flop_count(
        all,
        distinct_total > all.count_ones(),
        expr.inputs.len(),
        sizes,
    );
    let mut current: Vec<Vec<usize>> = expr.inputs.clone();
    let mut steps = Vec::with_capacity(path.len());
    let (mut flops, mut largest) = (0u128, 0u128);
    for (k, step) in path.iter().enumerate() {
        let last = k + 1 == path.len();
        let mut positions = step.clone();
        positions.sort_unstable_by(|a, b| b.cmp(a));
        let taken: Vec<Vec<usize>> = positions.iter().map(|&p| current.remove(p)).collect();
        let either = taken.iter().fold(0, |acc, l| acc | bits_of(l));
        let keep = current.iter().fold(output, |acc, l| acc | bits_of(l));
        let result_bits = either & keep;
        let cost = flop_count(either, either & !keep != 0, step.len(), sizes);
        // Result labels: the output's order at the end, else first appearance.
        let result: Vec<usize> = if last {
            expr.output.clone()
        } else {
            let mut seen = Vec::new();
            for l in taken.iter().rev().flatten() {
                if result_bits & (1 << l) != 0 && !seen.contains(l) {
                    seen.push(*l);
                }
            }
            seen
        };
        let terms: Vec<String> = taken.iter().rev().map(|l| expr.term(l)).collect();
        let shape = expr.shape_of(&result);
        largest = largest.max(size_of(result_bits, sizes));
        flops = flops.saturating_add(cost);
        steps.push(PathStep {
            operands: step.clone(),
            equation: format!("{}->{}", terms.join(","), expr.term(&result)),
            shape,
            flops: cost,
        });
        current.push(result);
    }
    EinsumPath {
        path: path.to_vec(),
        steps,
        flops,
        naive_flops,
        largest_intermediate: largest,
        strategy: Strategy::Optimal,
    }
}

/// Dynamic programming over subsets of operands (see the module doc).
/// `None` when the memory limit rules out every path.
fn optimal_path(
    inputs: &[Bits],
    output: Bits,
    sizes: &[usize],
    limit: Option<u128>,
) -> Option<Vec<Vec<usize>>> {
    let n = inputs.len();
    let full: usize = (1 << n) - 1;
    // union[S]: indices of the operands in S.
    let mut union = vec![0 as Bits; full + 1];
    for s in 1..=full {
        let low = s.trailing_zeros() as usize;
        union[s] = union[s & (s - 1)] | inputs[low];
    }
    // The indices the tensor made from S carries: an operand keeps all of
    // its own (it is not reduced before its first contraction, as in
    // opt_einsum); an intermediate keeps those needed outside S.
    let tensor = |s: usize| -> Bits {
        if s.is_power_of_two() {
            inputs[s.trailing_zeros() as usize]
        } else {
            union[s] & (output | union[full ^ s])
        }
    };
    let mut cost = vec![u128::MAX; full + 1];
    let mut split = vec![0usize; full + 1];
    for i in 0..n {
        cost[1 << i] = 0;
    }
    for s in 1..=full {
        if s.is_power_of_two() {
            continue;
        }
        let kept = tensor(s);
        if let Some(limit) = limit {
            if s != full && size_of(kept, sizes) > limit {
                continue;
            }
        }
        let low = s & s.wrapping_neg();
        let rest = s ^ low;
        let (mut best, mut best_a) = (u128::MAX, 0);
        // Every split A | B with the lowest operand in A (each split once).
        let mut sub = rest;
        loop {
            sub = sub.wrapping_sub(1) & rest;
            let a = low | sub;
            let b = s ^ a;
            let (ca, cb) = (cost[a], cost[b]);
            // The halves alone already cost as much as the best split: skip
            // the size product (the inner loop's main cost).
            if ca != u128::MAX && cb != u128::MAX && ca.saturating_add(cb) < best {
                let either = tensor(a) | tensor(b);
                let step = flop_count(either, either & !kept != 0, 2, sizes);
                let total = ca.saturating_add(cb).saturating_add(step);
                if total < best {
                    best = total;
                    best_a = a;
                }
            }
            if sub == 0 {
                break;
            }
        }
        cost[s] = best;
        split[s] = best_a;
    }
    if cost[full] == u128::MAX {
        return None;
    }
    // Replay the tree in post-order as a linear path.
    let mut list: Vec<usize> = (0..n).map(|i| 1 << i).collect();
    let mut path = Vec::with_capacity(n - 1);
    let mut stack = vec![(full, false)];
    while let Some((s, expanded)) = stack.pop() {
        if s.is_power_of_two() {
            continue;
        }
        let a = split[s];
        if !expanded {
            stack.push((s, true));
            stack.push((s ^ a, false));
            stack.push((a, false));
            continue;
        }
        let pa = list.iter().position(|&x| x == a)?;
        let pb = list.iter().position(|&x| x == (s ^ a))?;
        let (i, j) = (pa.min(pb), pa.max(pb));
        list.remove(j);
        list.remove(i);
        list.push(s);
        path.push(vec![i, j]);
    }
    Some(path)
}

/// Greedy planning (see the module doc). `None` when the memory limit
/// rules out every pair at some step.
fn greedy_path(
    inputs: &[Bits],
    output: Bits,
    sizes: &[usize],
    limit: Option<u128>,
) -> Option<Vec<Vec<usize>>> {
    let mut list: Vec<Bits> = inputs.to_vec();
    let mut path = Vec::with_capacity(inputs.len().saturating_sub(1));
    // How many tensors in the list carry each label.
    let mut count = [0u32; Bits::BITS as usize];
    for &t in &list {
        for_each_bit(t, |l| count[l] += 1);
    }
    while list.len() > 1 {
        let last = list.len() == 2;
        let mut best: Option<(i128, u128, usize, usize, Bits)> = None;
        for i in 0..list.len() {
            for j in i + 1..list.len() {
                let (a, b) = (list[i], list[j]);
                if a & b == 0 {
                    continue;
                }
                let kept = result_of(a, b, output, &count);
                let size = size_of(kept, sizes);
                if !last && limit.is_some_and(|m| size > m) {
                    continue;
                }
                let score = size as i128 - size_of(a, sizes) as i128 - size_of(b, sizes) as i128;
                let either = a | b;
                let flops = flop_count(either, either & !kept != 0, 2, sizes);
                if best.is_none_or(|(s, f, ..)| (score, flops) < (s, f)) {
                    best = Some((score, flops, i, j, kept));
                }
            }
        }
        let (i, j, kept) = match best {
            Some((_, _, i, j, kept)) => (i, j, kept),
            None => {
                // No pair shares an index: outer product of the two smallest.
                let mut order: Vec<usize> = (0..list.len()).collect();
                order.sort_by_key(|&k| (size_of(list[k], sizes), k));
                let (x, y) = (order[0], order[1]);
                let (i, j) = (x.min(y), x.max(y));
                let kept = result_of(list[i], list[j], output, &count);
                if !last && limit.is_some_and(|m| size_of(kept, sizes) > m) {
                    return None;
                }
                (i, j, kept)
            }
        };
        for_each_bit(list[i], |l| count[l] -= 1);
        for_each_bit(list[j], |l| count[l] -= 1);
        for_each_bit(kept, |l| count[l] += 1);
        list.remove(j);
        list.remove(i);
        list.push(kept);
        path.push(vec![i, j]);
    }
    Some(path)
}

/// The labels of `a`·`b` that the output or another tensor in the list needs.
fn result_of(a: Bits, b: Bits, output: Bits, count: &[u32]) -> Bits {
    let mut kept = (a | b) & output;
    for_each_bit((a | b) & !output, |l| {
        let own = u32::from(a & (1 << l) != 0) + u32::from(b & (1 << l) != 0);
        if count[l] > own {
            kept |= 1 << l;
        }
    });
    kept
}

fn for_each_bit(bits: Bits, mut f: impl FnMut(usize)) {
    let mut rest = bits;
    while rest != 0 {
        f(rest.trailing_zeros() as usize);
        rest &= rest - 1;
    }
}
