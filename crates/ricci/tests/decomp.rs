//! Tests of ricci::decomp: unfoldings and products against numpy, exact
//! recovery of planted CP / Tucker / TT tensors, errors on noisy tensors
//! against TensorLy's (fixtures from scripts/fixtures/decomp.py), error
//! cases, and gradients of `reconstruct` against finite differences.

use ricci::autograd::{gradcheck, GradcheckOptions};
use ricci::decomp::{
    self, cp_als, tensor_train, tucker_hooi, tucker_hosvd, Cp, CpInit, CpParams, TensorTrain,
    TtParams, Tucker, TuckerParams,
};
use ricci::{io, DType, Rng, Tensor};

fn fixture(name: &str) -> Tensor {
    let path = format!(
        "{}/tests/fixtures/decomp/{name}.npy",
        env!("CARGO_MANIFEST_DIR")
    );
    io::read_npy(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn reference() -> serde_json::Value {
    let path = format!(
        "{}/tests/fixtures/decomp/decomp.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.sub(b).unwrap().abs().max_all().unwrap().to_f64().unwrap()
}

/// `‖AᵀA − I‖_max` for a matrix with (supposedly) orthonormal columns.
fn orthonormality_defect(a: &Tensor) -> f64 {
    let k = a.shape()[1];
    max_diff(
        &a.t().unwrap().matmul(a).unwrap(),
        &Tensor::eye(k, a.dtype()),
    )
}

fn planted_cp(shape: &[usize], rank: usize, dtype: DType, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let factors = shape
        .iter()
        .map(|&n| Tensor::randn(&[n, rank], dtype, &mut rng))
        .collect();
    Cp {
        weights: Tensor::ones(&[rank], dtype),
        factors,
        iterations: 0,
        converged: true,
        error: 0.0,
    }
    .reconstruct()
    .unwrap()
}

fn planted_tucker(shape: &[usize], ranks: &[usize], dtype: DType, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let core = Tensor::randn(ranks, dtype, &mut rng);
    let factors = shape
        .iter()
        .zip(ranks)
        .map(|(&n, &r)| Tensor::randn(&[n, r], dtype, &mut rng))
        .collect();
    Tucker {
        core,
        factors,
        iterations: 0,
        converged: true,
    }
    .reconstruct()
    .unwrap()
}

fn planted_tt(shape: &[usize], ranks: &[usize], dtype: DType, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let cores = shape
        .iter()
        .enumerate()
        .map(|(k, &n)| Tensor::randn(&[ranks[k], n, ranks[k + 1]], dtype, &mut rng))
        .collect();
    TensorTrain { cores }.reconstruct().unwrap()
}

fn exact_cp() -> CpParams {
    CpParams {
        max_iter: 2000,
        tol: 1e-14,
        ..CpParams::default()
    }
}

// ---- unfoldings and products against numpy ----

#[test]
fn unfold_matches_numpy_for_every_mode() {
    let x = fixture("unfold_x");
    for n in 0..3 {
        let want = fixture(&format!("unfold_{n}"));
        assert_eq!(
            max_diff(&decomp::unfold(&x, n).unwrap(), &want),
            0.0,
            "mode {n}"
        );
    }
}

#[test]
fn fold_inverts_unfold_for_every_mode() {
    let x = fixture("unfold_x");
    for n in 0..3 {
        let back = decomp::fold(&decomp::unfold(&x, n).unwrap(), n, x.shape()).unwrap();
        assert_eq!(max_diff(&back, &x), 0.0, "mode {n}");
    }
}

#[test]
fn mode_product_matches_numpy() {
    let got = decomp::mode_product(&fixture("unfold_x"), &fixture("mode1_m"), 1).unwrap();
    assert!(max_diff(&got, &fixture("mode1_product")) < 1e-14);
}

#[test]
fn mode_product_on_first_and_last_modes_equals_matrix_products() {
    let mut rng = Rng::new(3);
    let x = Tensor::randn(&[3, 4, 5], DType::F64, &mut rng);
    let m0 = Tensor::randn(&[2, 3], DType::F64, &mut rng);
    let m2 = Tensor::randn(&[6, 5], DType::F64, &mut rng);
    for (m, n) in [(&m0, 0), (&m2, 2)] {
        let y = decomp::mode_product(&x, m, n).unwrap();
        let want = m.matmul(&decomp::unfold(&x, n).unwrap()).unwrap();
        assert!(max_diff(&decomp::unfold(&y, n).unwrap(), &want) < 1e-13);
    }
}

#[test]
fn khatri_rao_matches_numpy() {
    let got = decomp::khatri_rao(&[&fixture("kr_a"), &fixture("kr_b")]).unwrap();
    assert!(max_diff(&got, &fixture("kr")) < 1e-15);
}

#[test]
fn kronecker_matches_its_definition() {
    let mut rng = Rng::new(4);
    let a = Tensor::randn(&[2, 3], DType::F64, &mut rng);
    let b = Tensor::randn(&[4, 2], DType::F64, &mut rng);
    let k = decomp::kronecker(&[&a, &b]).unwrap();
    assert_eq!(k.shape(), &[8, 6]);
    let (av, bv, kv) = (
        a.to_vec::<f64>().unwrap(),
        b.to_vec::<f64>().unwrap(),
        k.to_vec::<f64>().unwrap(),
    );
    for i in 0..2 {
        for j in 0..3 {
            for p in 0..4 {
                for q in 0..2 {
                    assert_eq!(
                        kv[(i * 4 + p) * 6 + j * 2 + q],
                        av[i * 3 + j] * bv[p * 2 + q]
                    );
                }
            }
        }
    }
}

// ---- exact recovery of planted tensors ----

#[test]
fn cp_recovers_a_planted_rank_3_tensor_in_f64() {
    let x = planted_cp(&[6, 7, 8], 3, DType::F64, 0);
    let cp = cp_als(&x, 3, &exact_cp()).unwrap();
    let err = cp.relative_error(&x).unwrap();
    assert!(
        err < 1e-10,
        "relative error {err} after {} sweeps",
        cp.iterations
    );
    assert!(cp.converged);
    assert!((cp.error - err).abs() < 1e-10);
}

#[test]
fn cp_recovers_a_planted_tensor_from_random_init() {
    let x = planted_cp(&[5, 6, 7, 4], 2, DType::F64, 1);
    let params = CpParams {
        init: CpInit::Random,
        seed: 7,
        ..exact_cp()
    };
    let err = cp_als(&x, 2, &params).unwrap().relative_error(&x).unwrap();
    assert!(err < 1e-10, "relative error {err}");
}

#[test]
fn cp_recovers_a_planted_rank_3_tensor_in_f32() {
    let x = planted_cp(&[6, 7, 8], 3, DType::F32, 0);
    let params = CpParams {
        tol: 1e-7,
        max_iter: 1000,
        ..CpParams::default()
    };
    let cp = cp_als(&x, 3, &params).unwrap();
    assert_eq!(cp.weights.dtype(), DType::F32);
    let err = cp.relative_error(&x).unwrap();
    assert!(err < 1e-4, "relative error {err}");
}

#[test]
fn cp_weights_are_descending_and_factor_columns_unit_norm() {
    let x = Tensor::randn(&[5, 6, 7], DType::F64, &mut Rng::new(2));
    let cp = cp_als(&x, 4, &CpParams::default()).unwrap();
    let w = cp.weights.to_vec::<f64>().unwrap();
    assert!(w.windows(2).all(|p| p[0] >= p[1]), "{w:?}");
    for f in &cp.factors {
        let norms = f.square().sum(0, false).unwrap().sqrt();
        assert!(max_diff(&norms, &Tensor::ones(&[4], DType::F64)) < 1e-12);
    }
    assert_eq!(cp.num_parameters(), 4 + 4 * (5 + 6 + 7));
}

#[test]
fn cp_rank_above_a_mode_size_pads_the_svd_start() {
    // Rank 5 > I₀ = 3 is allowed (CP rank can exceed every mode size).
    let x = planted_cp(&[3, 6, 7], 5, DType::F64, 5);
    let cp = cp_als(&x, 5, &CpParams::default()).unwrap();
    assert_eq!(cp.factors[0].shape(), &[3, 5]);
    assert!(cp.relative_error(&x).unwrap() < 1e-2);
}

#[test]
fn tucker_hosvd_and_hooi_recover_planted_ranks_2_3_4_in_f64() {
    let x = planted_tucker(&[6, 7, 8], &[2, 3, 4], DType::F64, 0);
    let hosvd = tucker_hosvd(&x, &[2, 3, 4]).unwrap();
    let hooi = tucker_hooi(&x, &[2, 3, 4], &TuckerParams::default()).unwrap();
    for t in [&hosvd, &hooi] {
        assert_eq!(t.ranks(), vec![2, 3, 4]);
        let err = t.relative_error(&x).unwrap();
        assert!(err < 1e-10, "relative error {err}");
        for f in &t.factors {
            assert!(orthonormality_defect(f) < 1e-12);
        }
    }
    assert_eq!(hosvd.num_parameters(), 24 + 12 + 21 + 32);
}

#[test]
fn tucker_recovers_planted_ranks_in_f32() {
    let x = planted_tucker(&[6, 7, 8], &[2, 3, 4], DType::F32, 1);
    let t = tucker_hooi(&x, &[2, 3, 4], &TuckerParams::default()).unwrap();
    assert_eq!(t.core.dtype(), DType::F32);
    let err = t.relative_error(&x).unwrap();
    assert!(err < 1e-4, "relative error {err}");
}

#[test]
fn tucker_on_tall_unfoldings_uses_the_svd_and_is_exact() {
    // Mode 0 of [20, 2, 2] is taller than wide: no Gram shortcut.
    let x = planted_tucker(&[20, 2, 2], &[3, 2, 2], DType::F64, 2);
    let err = tucker_hosvd(&x, &[3, 2, 2])
        .unwrap()
        .relative_error(&x)
        .unwrap();
    assert!(err < 1e-12, "relative error {err}");
}

#[test]
fn tt_recovers_planted_tt_ranks_in_f64() {
    let ranks = [1, 2, 3, 2, 1];
    let x = planted_tt(&[5, 6, 7, 8], &ranks, DType::F64, 0);
    let params = TtParams {
        eps: Some(1e-12),
        max_rank: None,
    };
    let tt = tensor_train(&x, &params).unwrap();
    assert_eq!(tt.ranks(), ranks.to_vec());
    let err = tt.relative_error(&x).unwrap();
    assert!(err < 1e-10, "relative error {err}");
    assert_eq!(tt.num_parameters(), 10 + 36 + 42 + 16);
    // Exact up to rounding without any eps.
    let tt = tensor_train(&x, &TtParams::default()).unwrap();
    assert_eq!(tt.ranks(), ranks.to_vec());
}

#[test]
fn tt_recovers_planted_tt_ranks_in_f32() {
    let ranks = [1, 2, 3, 2, 1];
    let x = planted_tt(&[5, 6, 7, 8], &ranks, DType::F32, 1);
    let tt = tensor_train(
        &x,
        &TtParams {
            eps: None,
            max_rank: Some(3),
        },
    )
    .unwrap();
    assert_eq!(tt.ranks(), ranks.to_vec());
    let err = tt.relative_error(&x).unwrap();
    assert!(err < 1e-5, "relative error {err}");
}

#[test]
fn tt_meets_its_error_bound_on_a_random_tensor() {
    let x = Tensor::randn(&[6, 7, 8, 9], DType::F64, &mut Rng::new(3));
    for eps in [0.05, 0.2, 0.5] {
        let tt = tensor_train(
            &x,
            &TtParams {
                eps: Some(eps),
                max_rank: None,
            },
        )
        .unwrap();
        let err = tt.relative_error(&x).unwrap();
        assert!(err <= eps, "eps {eps}: error {err}, ranks {:?}", tt.ranks());
    }
}

#[test]
fn tt_gram_path_meets_the_bound_on_wide_unfoldings() {
    // [4, 1000]-wide first step with a loose eps takes the Gram route.
    let x = planted_tt(&[4, 10, 10, 10], &[1, 3, 5, 3, 1], DType::F64, 6)
        .add(&Tensor::randn(&[4, 10, 10, 10], DType::F64, &mut Rng::new(9)).mul_scalar(0.01))
        .unwrap();
    let tt = tensor_train(
        &x,
        &TtParams {
            eps: Some(0.1),
            max_rank: None,
        },
    )
    .unwrap();
    let err = tt.relative_error(&x).unwrap();
    assert!(err <= 0.1, "error {err}, ranks {:?}", tt.ranks());
    assert_eq!(tt.ranks(), vec![1, 3, 5, 3, 1]);
}

// ---- noisy tensors against TensorLy ----

fn assert_within_one_percent(name: &str, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= 0.01 * theirs,
        "{name}: ricci {ours}, TensorLy {theirs}"
    );
}

#[test]
fn cp_error_on_noisy_tensor_matches_tensorly() {
    let r = reference();
    let x = fixture("cp_noisy");
    let cp = cp_als(&x, 5, &CpParams::default()).unwrap();
    let theirs = r["cp_noisy"]["tensorly_relative_error"].as_f64().unwrap();
    assert_within_one_percent("cp", cp.relative_error(&x).unwrap(), theirs);
}

#[test]
fn tucker_error_on_noisy_tensor_matches_tensorly() {
    let r = reference();
    let x = fixture("tucker_noisy");
    let t = tucker_hooi(&x, &[4, 5, 6], &TuckerParams::default()).unwrap();
    let theirs = r["tucker_noisy"]["tensorly_relative_error"]
        .as_f64()
        .unwrap();
    assert_within_one_percent("tucker", t.relative_error(&x).unwrap(), theirs);
}

#[test]
fn tt_error_on_noisy_tensor_matches_tensorly() {
    let r = reference();
    let x = fixture("tt_noisy");
    let tt = tensor_train(
        &x,
        &TtParams {
            eps: None,
            max_rank: Some(4),
        },
    )
    .unwrap();
    assert_eq!(tt.ranks(), vec![1, 4, 4, 4, 1]);
    let theirs = r["tt_noisy"]["tensorly_relative_error"].as_f64().unwrap();
    assert_within_one_percent("tt", tt.relative_error(&x).unwrap(), theirs);
}

// ---- errors name the op and the fault ----

fn err_text<T: std::fmt::Debug>(r: ricci::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn ranks_larger_than_the_shape_allows_are_errors() {
    let x = Tensor::randn(&[3, 4, 5], DType::F64, &mut Rng::new(0));
    let e = err_text(cp_als(&x, 13, &CpParams::default()));
    assert!(e.starts_with("cp_als: rank must be in 1..=12"), "{e}");
    let e = err_text(cp_als(&x, 0, &CpParams::default()));
    assert!(e.contains("got 0"), "{e}");
    let e = err_text(tucker_hosvd(&x, &[2, 5, 2]));
    assert!(e.starts_with("tucker_hosvd: rank 5 of mode 1"), "{e}");
    assert!(e.contains("[3, 4, 5]"), "{e}");
    let e = err_text(tensor_train(
        &x,
        &TtParams {
            eps: None,
            max_rank: Some(0),
        },
    ));
    assert!(e.starts_with("tensor_train: max_rank"), "{e}");
}

#[test]
fn order_two_tensors_are_refused_where_three_ways_are_required() {
    let m = Tensor::randn(&[4, 5], DType::F64, &mut Rng::new(0));
    let e = err_text(cp_als(&m, 2, &CpParams::default()));
    assert!(e.starts_with("cp_als: needs a tensor of order 3"), "{e}");
    assert!(e.contains("[4, 5]"), "{e}");
    assert!(err_text(tucker_hooi(&m, &[2, 2], &TuckerParams::default()))
        .starts_with("tucker_hooi: needs a tensor of order 3"));
    assert!(err_text(tensor_train(&m, &TtParams::default()))
        .starts_with("tensor_train: needs a tensor of order 3"));
}

#[test]
fn empty_and_non_finite_inputs_are_errors() {
    let empty = Tensor::zeros(&[3, 0, 2], DType::F64);
    let e = err_text(tucker_hosvd(&empty, &[1, 1, 1]));
    assert!(e.contains("empty") && e.contains("[3, 0, 2]"), "{e}");
    let mut v = vec![1.0f64; 24];
    v[13] = f64::NAN;
    let x = Tensor::from_vec(v, &[2, 3, 4]).unwrap();
    let e = err_text(cp_als(&x, 1, &CpParams::default()));
    assert!(e.contains("NaN at index [1, 0, 1]"), "{e}");
}

#[test]
fn a_ranks_list_of_the_wrong_length_is_an_error() {
    let x = Tensor::randn(&[3, 4, 5], DType::F64, &mut Rng::new(0));
    let e = err_text(tucker_hosvd(&x, &[2, 2]));
    assert!(
        e.contains("ranks [2, 2] has 2 entries") && e.contains("3 modes"),
        "{e}"
    );
}

#[test]
fn bad_modes_and_shapes_of_the_tensor_ops_are_errors() {
    let x = Tensor::randn(&[3, 4, 5], DType::F64, &mut Rng::new(0));
    assert!(decomp::unfold(&x, 3).is_err());
    assert!(decomp::fold(&x, 0, &[3, 4, 5]).is_err());
    assert!(decomp::mode_product(&x, &Tensor::ones(&[2, 3], DType::F64), 1).is_err());
    let a = Tensor::ones(&[2, 2], DType::F64);
    let b = Tensor::ones(&[2, 3], DType::F64);
    assert!(decomp::khatri_rao(&[&a, &b]).is_err());
    assert!(decomp::khatri_rao(&[]).is_err());
}

#[test]
fn a_zero_tensor_gives_zero_weights_not_nan() {
    let cp = cp_als(
        &Tensor::zeros(&[3, 4, 5], DType::F64),
        2,
        &CpParams::default(),
    )
    .unwrap();
    assert_eq!(cp.weights.to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
}

// ---- gradients of reconstruct ----

#[test]
fn cp_reconstruct_gradients_match_finite_differences() {
    let mut rng = Rng::new(11);
    let mut xs = vec![Tensor::randn(&[2], DType::F64, &mut rng)];
    xs.extend([3, 4, 2].map(|n| Tensor::randn(&[n, 2], DType::F64, &mut rng)));
    let f = |xs: &[Tensor]| {
        Cp {
            weights: xs[0].clone(),
            factors: xs[1..].to_vec(),
            iterations: 0,
            converged: true,
            error: 0.0,
        }
        .reconstruct()
    };
    let opts = GradcheckOptions {
        second_order: true,
        ..GradcheckOptions::default()
    };
    gradcheck(f, &xs, &opts).unwrap();
}

#[test]
fn tucker_reconstruct_gradients_match_finite_differences() {
    let mut rng = Rng::new(12);
    let mut xs = vec![Tensor::randn(&[2, 3, 2], DType::F64, &mut rng)];
    xs.extend([(3, 2), (4, 3), (5, 2)].map(|(n, r)| Tensor::randn(&[n, r], DType::F64, &mut rng)));
    let f = |xs: &[Tensor]| {
        Tucker {
            core: xs[0].clone(),
            factors: xs[1..].to_vec(),
            iterations: 0,
            converged: true,
        }
        .reconstruct()
    };
    gradcheck(f, &xs, &GradcheckOptions::default()).unwrap();
}

#[test]
fn tt_reconstruct_gradients_match_finite_differences() {
    let mut rng = Rng::new(13);
    let xs: Vec<Tensor> = [[1, 3, 2], [2, 4, 3], [3, 2, 1]]
        .iter()
        .map(|s| Tensor::randn(s, DType::F64, &mut rng))
        .collect();
    let f = |xs: &[Tensor]| TensorTrain { cores: xs.to_vec() }.reconstruct();
    gradcheck(f, &xs, &GradcheckOptions::default()).unwrap();
}
