//! Tensor networks: the documented MPS example (norm and overlap of two
//! 16-site MPS with bond dimension 32) through `contract_network`, against
//! a transfer-matrix contraction written here with plain loops on the raw
//! values (no einsum, no matmul), and the gradient of the overlap against
//! the same loops.

use ricci::einsum::contract_network_path;
use ricci::{contract_network, DType, Rng, Tensor};

const SITES: usize = 16;
const PHYS: usize = 2;
const BOND: usize = 32;

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

fn network_labels() -> Vec<Vec<i64>> {
    let mut labels = chain_labels(100);
    labels.extend(chain_labels(200));
    labels
}

fn overlap(a: &[Tensor], b: &[Tensor]) -> Tensor {
    let tensors: Vec<&Tensor> = a.iter().chain(b).collect();
    let labels = network_labels();
    let refs: Vec<&[i64]> = labels.iter().map(|l| l.as_slice()).collect();
    contract_network(&tensors, &refs).unwrap()
}

/// Site i of an MPS as `[left, phys, right]` values (boundary bonds of size 1).
fn site_values(t: &Tensor) -> (usize, usize, Vec<f64>) {
    let s = t.shape();
    match s.len() {
        2 if s[0] == PHYS => (1, s[1], t.to_vec_f64()),
        2 => (s[0], 1, t.to_vec_f64()),
        _ => (s[0], s[2], t.to_vec_f64()),
    }
}

/// `<a|b>` by transfer matrices: E[x][y] over the virtual bonds of a and b,
/// one site at a time, with loops.
fn overlap_by_loops(a: &[Tensor], b: &[Tensor]) -> f64 {
    let mut e = vec![1.0f64];
    let (mut da, mut db) = (1usize, 1usize);
    for (ta, tb) in a.iter().zip(b) {
        let (la, ra, va) = site_values(ta);
        let (lb, rb, vb) = site_values(tb);
        assert_eq!((la, lb), (da, db));
        let mut next = vec![0.0; ra * rb];
        for x in 0..la {
            for y in 0..lb {
                let exy = e[x * lb + y];
                for s in 0..PHYS {
                    for x2 in 0..ra {
                        let av = exy * va[(x * PHYS + s) * ra + x2];
                        for y2 in 0..rb {
                            next[x2 * rb + y2] += av * vb[(y * PHYS + s) * rb + y2];
                        }
                    }
                }
            }
        }
        e = next;
        (da, db) = (ra, rb);
    }
    e[0]
}

#[test]
fn mps_norm_and_overlap_match_transfer_matrices() {
    let mut rng = Rng::new(2026);
    let psi = random_mps(&mut rng);
    let phi = random_mps(&mut rng);
    for (a, b) in [(&psi, &psi), (&phi, &phi), (&psi, &phi)] {
        let got = overlap(a, b).to_f64().unwrap();
        let want = overlap_by_loops(a, b);
        assert!(
            (got - want).abs() <= 1e-10 * want.abs().max(1e-300),
            "network {got} vs transfer matrices {want}"
        );
    }
    // A norm is positive and the overlap of a state with itself is its norm squared.
    assert!(overlap(&psi, &psi).to_f64().unwrap() > 0.0);
}

#[test]
fn mps_path_never_builds_the_full_state() {
    let mut rng = Rng::new(1);
    let psi = random_mps(&mut rng);
    let shapes: Vec<&[usize]> = psi.iter().chain(&psi).map(|t| t.shape()).collect();
    let labels = network_labels();
    let refs: Vec<&[i64]> = labels.iter().map(|l| l.as_slice()).collect();
    let plan = contract_network_path(&shapes, &refs).unwrap();
    assert_eq!(plan.path.len(), 2 * SITES - 1);
    // The 2^16 amplitudes never appear; a good path keeps intermediates near
    // D^2 * d^2 elements.
    assert!(
        plan.largest_intermediate < 1 << 16,
        "largest intermediate {}",
        plan.largest_intermediate
    );
}

#[test]
fn overlap_gradient_matches_the_loops() {
    // d<a|b>/d a[3] · v equals (<a + h v|b> - <a - h v|b>) / 2h, exactly
    // linear, so the loop reference can be differenced with a large h.
    let mut rng = Rng::new(5);
    let a = random_mps(&mut rng);
    let b = random_mps(&mut rng);
    let site = 3;
    let x = a[site].set_requires_grad(true);
    let mut a_var = a.clone();
    a_var[site] = x.clone();
    let g = ricci::autograd::grad(
        |xs| {
            let mut av = a.clone();
            av[site] = xs[0].clone();
            Ok(overlap(&av, &b))
        },
        &[x],
    )
    .unwrap();
    let v = Tensor::randn(a[site].shape(), DType::F64, &mut rng);
    let shifted = |sign: f64| {
        let mut av = a.clone();
        av[site] = a[site].add(&v.mul_scalar(sign)).unwrap();
        overlap_by_loops(&av, &b)
    };
    let fd = (shifted(1.0) - shifted(-1.0)) / 2.0;
    let ad = g[0].mul(&v).unwrap().sum_all().to_f64().unwrap();
    assert!(
        (ad - fd).abs() <= 1e-9 * fd.abs().max(1e-300),
        "{ad} vs {fd}"
    );
    drop(a_var);
}
