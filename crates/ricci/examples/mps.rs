//! Norm and overlap of two matrix product states (MPS) of 16 sites with
//! physical dimension 2 and bond dimension 32, as one tensor network each.
//!
//! An MPS writes a state of 16 qubits (2^16 amplitudes) as a chain of
//! tensors `A[0]: [2, D]`, `A[i]: [D, 2, D]`, `A[15]: [D, 2]`. The overlap
//! `<ψ|φ> = Σ_s ψ(s) φ(s)` joins the two chains along their physical legs:
//! 32 tensors, 16 physical bonds and 30 virtual ones, no open leg. The
//! planner finds an order that never builds the 2^16 amplitudes.
//!
//! Run: `cargo run --release -p ricci --example mps`

use std::time::Instant;

use ricci::einsum::contract_network_path;
use ricci::{contract_network, DType, Rng, Tensor};

const SITES: usize = 16;
const PHYS: usize = 2;
const BOND: usize = 32;

/// A random MPS, entries scaled so that norms stay near 1 in magnitude.
fn random_mps(rng: &mut Rng) -> Vec<Tensor> {
    let scale = 1.0 / ((PHYS * BOND) as f64).sqrt();
    (0..SITES)
        .map(|i| {
            let shape = match i {
                0 => vec![PHYS, BOND],
                _ if i == SITES - 1 => vec![BOND, PHYS],
                _ => vec![BOND, PHYS, BOND],
            };
            Tensor::randn(&shape, DType::F64, rng).mul_scalar(scale)
        })
        .collect()
}

/// ncon labels of one chain: physical leg of site i is bond `1 + i` (shared
/// with the other chain), virtual bond i is `first_virtual + i`.
fn chain_labels(first_virtual: i64) -> Vec<Vec<i64>> {
    let phys = |i: usize| 1 + i as i64;
    let virt = |i: usize| first_virtual + i as i64;
    (0..SITES)
        .map(|i| match i {
            0 => vec![phys(0), virt(0)],
            _ if i == SITES - 1 => vec![virt(i - 1), phys(i)],
            _ => vec![virt(i - 1), phys(i), virt(i)],
        })
        .collect()
}

/// `<a|b>` for two MPS, as one network contraction.
fn overlap(a: &[Tensor], b: &[Tensor]) -> ricci::Result<f64> {
    let tensors: Vec<&Tensor> = a.iter().chain(b).collect();
    let labels = network_labels();
    let refs: Vec<&[i64]> = labels.iter().map(|l| l.as_slice()).collect();
    contract_network(&tensors, &refs)?.to_f64()
}

fn network_labels() -> Vec<Vec<i64>> {
    let mut labels = chain_labels(100);
    labels.extend(chain_labels(200));
    labels
}

fn main() -> ricci::Result<()> {
    let mut rng = Rng::new(2026);
    let psi = random_mps(&mut rng);
    let phi = random_mps(&mut rng);

    let shapes: Vec<&[usize]> = psi.iter().chain(&phi).map(|t| t.shape()).collect();
    let labels = network_labels();
    let refs: Vec<&[i64]> = labels.iter().map(|l| l.as_slice()).collect();
    let t0 = Instant::now();
    let plan = contract_network_path(&shapes, &refs)?;
    let planning = t0.elapsed();
    println!(
        // (The naive cost, 2^16 · 32^30 · 32, saturates u128 and is not shown.)
        "path of the overlap network: {} steps, {:.3e} flops, largest intermediate {} elements, planned in {:.2} ms",
        plan.path.len(),
        plan.flops as f64,
        plan.largest_intermediate,
        planning.as_secs_f64() * 1e3
    );

    let t0 = Instant::now();
    let norm_psi = overlap(&psi, &psi)?.sqrt();
    let norm_phi = overlap(&phi, &phi)?.sqrt();
    let psi_phi = overlap(&psi, &phi)?;
    println!(
        "|psi| = {norm_psi:.12e}, |phi| = {norm_phi:.12e}, <psi|phi> = {psi_phi:.12e}, fidelity {:.3e} ({:.1} ms for three contractions)",
        (psi_phi / (norm_psi * norm_phi)).abs(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
