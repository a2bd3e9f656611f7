//! Shared helpers of the linalg tests: test matrices with known spectra,
//! built from Householder reflections (orthogonal by construction, so no
//! ricci decomposition is used to make the data it is tested on).
#![allow(dead_code)]

use ricci::{DType, Rng, Tensor};

/// Largest absolute entry.
pub fn maxabs(t: &Tensor) -> f64 {
    t.to_vec_f64().into_iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Largest absolute entry of `a - b`.
pub fn maxdiff(a: &Tensor, b: &Tensor) -> f64 {
    maxabs(&a.to_dtype(DType::F64).sub(&b.to_dtype(DType::F64)).unwrap())
}

pub fn eps(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => f32::EPSILON as f64,
        DType::F64 => f64::EPSILON,
    }
}

/// An `n x n` orthogonal matrix: a product of three Householder
/// reflections `I - 2 v vᵀ / vᵀv` with random `v`, as f64 rows.
pub fn orthogonal_f64(n: usize, rng: &mut Rng) -> Vec<f64> {
    let mut q: Vec<f64> = (0..n * n)
        .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
        .collect();
    for _ in 0..3 {
        let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let vv: f64 = v.iter().map(|x| x * x).sum();
        // q <- q H
        for r in 0..n {
            let qv: f64 = (0..n).map(|c| q[r * n + c] * v[c]).sum();
            for c in 0..n {
                q[r * n + c] -= 2.0 * qv * v[c] / vv;
            }
        }
    }
    q
}

/// `U diag(s) Vᵀ` of shape `m x n` with orthogonal U, V from
/// [`orthogonal_f64`]; `s` has `min(m, n)` entries. Returned in f64 rows.
pub fn with_singular_values(m: usize, n: usize, s: &[f64], rng: &mut Rng) -> Vec<f64> {
    let u = orthogonal_f64(m, rng);
    let v = orthogonal_f64(n, rng);
    let mut a = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            a[i * n + j] = (0..s.len())
                .map(|k| u[i * m + k] * s[k] * v[j * n + k])
                .sum();
        }
    }
    a
}

/// `Q diag(l) Qᵀ`, symmetric with eigenvalues `l`, as f64 rows.
pub fn with_eigenvalues(l: &[f64], rng: &mut Rng) -> Vec<f64> {
    let n = l.len();
    let q = orthogonal_f64(n, rng);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..n).map(|k| q[i * n + k] * l[k] * q[j * n + k]).sum();
        }
    }
    // Exactly symmetric.
    for i in 0..n {
        for j in 0..i {
            let x = 0.5 * (a[i * n + j] + a[j * n + i]);
            a[i * n + j] = x;
            a[j * n + i] = x;
        }
    }
    a
}

pub fn tensor(data: Vec<f64>, shape: &[usize], dtype: DType) -> Tensor {
    Tensor::from_vec(data, shape).unwrap().to_dtype(dtype)
}

/// A named hard matrix with its known singular values (descending), if known.
pub struct Hard {
    pub name: &'static str,
    pub a: Tensor,
    pub singular_values: Option<Vec<f64>>,
}

/// The folder of hard matrices: 1x1, random square, tall, wide,
/// rank-deficient, repeated singular values, ill-conditioned, batched.
pub fn hard_matrices(dtype: DType) -> Vec<Hard> {
    let mut rng = Rng::new(42);
    let mut out = Vec::new();
    let known = |name, m: usize, n: usize, s: Vec<f64>, rng: &mut Rng| Hard {
        name,
        a: tensor(with_singular_values(m, n, &s, rng), &[m, n], dtype),
        singular_values: Some(s),
    };
    out.push(known("1x1", 1, 1, vec![2.5], &mut rng));
    out.push(known(
        "square_12",
        12,
        12,
        (0..12).map(|i| 12.0 - i as f64).collect(),
        &mut rng,
    ));
    out.push(known(
        "tall_30x8",
        30,
        8,
        (0..8).map(|i| 1.0 + i as f64 * 0.5).rev().collect(),
        &mut rng,
    ));
    out.push(known(
        "wide_7x25",
        7,
        25,
        (0..7).map(|i| 3.0 / (1.0 + i as f64)).collect(),
        &mut rng,
    ));
    let mut rank5 = vec![0.0; 16];
    rank5[..5].copy_from_slice(&[5.0, 4.0, 3.0, 2.0, 1.0]);
    out.push(known("rank_5_of_16", 16, 16, rank5, &mut rng));
    out.push(known(
        "repeated_3_3_3_1_1",
        10,
        10,
        vec![3.0, 3.0, 3.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.2, 0.1],
        &mut rng,
    ));
    let decades = if dtype == DType::F64 { 10.0 } else { 4.0 };
    let ill: Vec<f64> = (0..10)
        .map(|i| 10f64.powf(-decades * i as f64 / 9.0))
        .collect();
    out.push(known("ill_conditioned", 10, 10, ill, &mut rng));
    // Above 48, where SVD and eigh switch to divide and conquer: distinct
    // values, then clusters and zeros (deflation).
    out.push(known(
        "square_90",
        90,
        90,
        // From 2 down to 1/2 geometrically: |det| = 1, no f32 overflow.
        (0..90)
            .map(|i| 2f64.powf(1.0 - 2.0 * i as f64 / 89.0))
            .collect(),
        &mut rng,
    ));
    let clustered: Vec<f64> = (0..64)
        .map(|i| [4.0, 4.0, 4.0, 2.0, 1.0, 1.0, 0.5, 0.0][i % 8])
        .collect();
    let mut clustered = clustered;
    clustered.sort_by(|a, b| b.partial_cmp(a).unwrap());
    out.push(known("clustered_80x64", 80, 64, clustered, &mut rng));
    out.push(Hard {
        name: "batched_3x2x6x5",
        a: Tensor::randn(&[3, 2, 6, 5], dtype, &mut rng),
        singular_values: None,
    });
    out.push(Hard {
        name: "random_40",
        a: Tensor::randn(&[40, 40], dtype, &mut rng),
        singular_values: None,
    });
    out
}
