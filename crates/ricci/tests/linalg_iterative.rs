//! Randomized SVD, Lanczos, power iteration and orthogonal init against
//! matrices with known spectra (built from Householder reflections, see
//! `linalg_util`), so every expected number comes from the construction.

mod linalg_util;

use linalg_util::{eps, maxabs, maxdiff, tensor, with_eigenvalues, with_singular_values};
use ricci::linalg::{self, LanczosParams, RandomizedSvdParams, Which};
use ricci::{DType, Error, Rng, Tensor};

#[test]
fn randomized_svd_error_is_within_2x_of_the_optimal_rank_k_error() {
    // σ_i = 1/i: a slowly decaying spectrum, the hard case for sketching.
    let (m, n, k) = (300, 200, 10);
    let s: Vec<f64> = (1..=n).map(|i| 1.0 / i as f64).collect();
    let mut rng = Rng::new(11);
    for dtype in [DType::F64, DType::F32] {
        let a = tensor(with_singular_values(m, n, &s, &mut rng), &[m, n], dtype);
        let approx = linalg::randomized_svd(&a, k, &RandomizedSvdParams::default()).unwrap();
        assert_eq!(approx.u.shape(), &[m, k]);
        assert_eq!(approx.vt.shape(), &[k, n]);
        // Spectral error of A - A_k against the optimum σ_{k+1} (Eckart-Young).
        let resid = a.sub(&approx.reconstruct().unwrap()).unwrap();
        let err = linalg::svdvals(&resid).unwrap().to_vec_f64()[0];
        let optimal = s[k];
        assert!(
            err <= 2.0 * optimal,
            "{dtype}: error {err} vs optimal {optimal}"
        );
        // The leading values are close to the true ones.
        for (x, y) in approx.s.to_vec_f64().iter().zip(&s) {
            assert!((x - y).abs() < 0.05 * y, "{dtype}: sigma {x} vs {y}");
        }
        let utu = approx.u.t().unwrap().matmul(&approx.u).unwrap();
        assert!(maxdiff(&utu, &Tensor::eye(k, dtype)) < 1e3 * eps(dtype));
    }
    // Batched input gives one sketch per matrix.
    let b = Tensor::randn(&[2, 30, 20], DType::F64, &mut rng);
    let r = linalg::randomized_svd(&b, 5, &RandomizedSvdParams::default()).unwrap();
    assert_eq!(r.s.shape(), &[2, 5]);
}

#[test]
fn lanczos_finds_top_and_bottom_eigenpairs_in_few_matvecs() {
    // A power-law spectrum, as Hessians and weight Gram matrices have,
    // with both signs: λ = ±1/i.
    let n = 400;
    let l: Vec<f64> = (1..=n)
        .map(|i| if i % 2 == 0 { -1.0 } else { 1.0 } * 10.0 / i as f64)
        .collect();
    let mut rng = Rng::new(12);
    let a = tensor(with_eigenvalues(&l, &mut rng), &[n, n], DType::F64);
    let mut sorted = l.clone();
    sorted.sort_by(|x, y| y.partial_cmp(x).unwrap());
    let params = LanczosParams {
        k: 5,
        which: Which::Largest,
        tol: 1e-8,
        ..Default::default()
    };
    let r = linalg::lanczos(|v| a.matmul(v), n, &params).unwrap();
    assert!(r.matvecs < 100, "took {} products", r.matvecs);
    let got = r.values.to_vec_f64();
    for (x, y) in got.iter().zip(&sorted) {
        assert!((x - y).abs() < 1e-7 * sorted[0].abs(), "top: {x} vs {y}");
    }
    // Eigenvector residuals ‖A x − λ x‖.
    let ax = a.matmul(&r.vectors).unwrap();
    let lx = r.vectors.mul(&r.values.unsqueeze(0).unwrap()).unwrap();
    assert!(maxdiff(&ax, &lx) < 1e-6);
    let bottom = LanczosParams {
        k: 3,
        which: Which::Smallest,
        ..params.clone()
    };
    let r = linalg::lanczos(|v| a.matmul(v), n, &bottom).unwrap();
    let got = r.values.to_vec_f64();
    for (x, y) in got.iter().zip(sorted.iter().rev()) {
        assert!((x - y).abs() < 1e-7 * sorted[0].abs(), "bottom: {x} vs {y}");
    }
    // f32 operator: values to f32 accuracy.
    let a32 = a.to_dtype(DType::F32);
    let p32 = LanczosParams {
        k: 2,
        tol: 1e-5,
        dtype: DType::F32,
        ..params
    };
    let r = linalg::lanczos(|v| a32.matmul(v), n, &p32).unwrap();
    assert_eq!(r.values.dtype(), DType::F32);
    assert!((r.values.to_vec_f64()[0] - sorted[0]).abs() < 1e-4 * sorted[0]);
}

#[test]
fn lanczos_and_power_iteration_report_failures() {
    let d = Tensor::arange(1.0, 51.0, 1.0, DType::F64).unwrap();
    let few = LanczosParams {
        k: 3,
        max_iter: 4,
        tol: 1e-14,
        ..Default::default()
    };
    match linalg::lanczos(|v| v.mul(&d), 50, &few).unwrap_err() {
        e @ Error::NotConverged {
            iterations: Some(4),
            ..
        } => assert!(e.to_string().contains("after 4 iterations")),
        e => panic!("expected NotConverged after 4, got {e}"),
    }
    let bad_k = LanczosParams {
        k: 51,
        ..Default::default()
    };
    assert!(linalg::lanczos(|v| v.mul(&d), 50, &bad_k).is_err());
    let e = linalg::lanczos(|v| v.narrow(0, 0, 3), 50, &LanczosParams::default()).unwrap_err();
    assert!(e.to_string().contains("same length"), "{e}");
    // Power iteration: λ = 50 with gap 49/50, converges; with a tiny budget it reports it.
    let r = linalg::power_iteration(
        |v| v.mul(&d),
        50,
        &LanczosParams {
            max_iter: 5000,
            ..Default::default()
        },
    )
    .unwrap();
    assert!((r.value - 50.0).abs() < 1e-6);
    assert!((maxabs(&r.vector) - 1.0).abs() < 1e-6);
    let e = linalg::power_iteration(
        |v| v.mul(&d),
        50,
        &LanczosParams {
            max_iter: 3,
            ..Default::default()
        },
    );
    assert!(matches!(
        e,
        Err(Error::NotConverged {
            iterations: Some(3),
            ..
        })
    ));
    // An invariant start (the Krylov space closes early) still returns exact pairs.
    let small = Tensor::from_vec(vec![2.0, 0.0, 0.0, 2.0], &[2, 2]).unwrap();
    let r = linalg::lanczos(
        |v| small.matmul(v),
        2,
        &LanczosParams {
            k: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert!((r.values.to_f64().unwrap() - 2.0).abs() < 1e-12);
    // ... also when it closes before k pairs are found (a restart continues it).
    let r = linalg::lanczos(
        |v| small.matmul(v),
        2,
        &LanczosParams {
            k: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r
        .values
        .to_vec_f64()
        .iter()
        .all(|x| (x - 2.0).abs() < 1e-12));
}

#[test]
fn orthogonal_init_has_orthonormal_rows_or_columns_and_gain() {
    let mut rng = Rng::new(13);
    for dtype in [DType::F32, DType::F64] {
        let tall = linalg::orthogonal(&[50, 20], 2.0, &mut rng, dtype).unwrap();
        let gram = tall.t().unwrap().matmul(&tall).unwrap();
        assert!(maxdiff(&gram, &Tensor::eye(20, dtype).mul_scalar(4.0)) < 1e3 * eps(dtype));
        let wide = linalg::orthogonal(&[8, 4, 5], 1.0, &mut rng, dtype).unwrap();
        assert_eq!(wide.shape(), &[8, 4, 5]);
        let w = wide.reshape([8, 20]).unwrap();
        let gram = w.matmul(&w.t().unwrap()).unwrap();
        assert!(maxdiff(&gram, &Tensor::eye(8, dtype)) < 1e3 * eps(dtype));
    }
    // Different seeds differ; the same seed repeats.
    let a = linalg::orthogonal(&[4, 4], 1.0, &mut Rng::new(1), DType::F64).unwrap();
    let b = linalg::orthogonal(&[4, 4], 1.0, &mut Rng::new(1), DType::F64).unwrap();
    let c = linalg::orthogonal(&[4, 4], 1.0, &mut Rng::new(2), DType::F64).unwrap();
    assert_eq!(maxdiff(&a, &b), 0.0);
    assert!(maxdiff(&a, &c) > 0.1);
    assert!(linalg::orthogonal(&[5], 1.0, &mut rng, DType::F32).is_err());
}
