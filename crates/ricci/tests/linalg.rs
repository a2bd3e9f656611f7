//! Invariants of the decompositions over a folder of hard matrices (see
//! `linalg_util`), f32 and f64, with tolerances scaled by size, dtype and,
//! where the result depends on it, the condition number: reconstruction,
//! orthogonality, triangularity, ordering, known spectra, backward errors
//! of solves. Then bad input: each error names the op and what is wrong.

mod linalg_util;

use linalg_util::{eps, hard_matrices, maxabs, maxdiff, tensor, with_eigenvalues};
use ricci::linalg::{self, MatrixNorm};
use ricci::{DType, Error, Rng, Tensor};

/// Runs a test body for f32 and f64.
macro_rules! both_dtypes {
    ($($name:ident => $body:expr;)*) => {$(
        #[test]
        fn $name() {
            let f: fn(DType) = $body;
            f(DType::F32);
            f(DType::F64);
        }
    )*};
}

fn dims(a: &Tensor) -> (usize, usize) {
    (a.shape()[a.rank() - 2], a.shape()[a.rank() - 1])
}

fn eye_like(k: usize, batch: &[usize], dtype: DType) -> Tensor {
    let mut s = batch.to_vec();
    s.extend([k, k]);
    Tensor::eye(k, dtype).broadcast_to(&s).unwrap()
}

fn batch_of(a: &Tensor) -> Vec<usize> {
    a.shape()[..a.rank() - 2].to_vec()
}

fn check_svd(dtype: DType) {
    for h in hard_matrices(dtype) {
        let (m, n) = dims(&h.a);
        let k = m.min(n);
        let scale = maxabs(&h.a).max(1e-300);
        let tol = 30.0 * (m.max(n) as f64) * eps(dtype);
        let svd = linalg::svd_thin(&h.a).unwrap();
        assert_eq!(svd.u.shape().last(), Some(&k), "{}", h.name);
        let rec = maxdiff(&svd.reconstruct().unwrap(), &h.a) / scale;
        assert!(rec < tol, "{} {dtype}: |USVt - A| = {rec:e}", h.name);
        let b = batch_of(&h.a);
        let utu = svd.u.transpose(-2, -1).unwrap().matmul(&svd.u).unwrap();
        let vvt = svd.vt.matmul(&svd.vt.transpose(-2, -1).unwrap()).unwrap();
        assert!(
            maxdiff(&utu, &eye_like(k, &b, dtype)) < tol,
            "{} UtU",
            h.name
        );
        assert!(
            maxdiff(&vvt, &eye_like(k, &b, dtype)) < tol,
            "{} VVt",
            h.name
        );
        let s = svd.s.to_vec_f64();
        for row in s.chunks(k) {
            assert!(
                row.windows(2).all(|w| w[0] >= w[1]),
                "{}: not descending {row:?}",
                h.name
            );
            assert!(
                row.iter().all(|&x| x >= 0.0),
                "{}: negative {row:?}",
                h.name
            );
        }
        if let Some(known) = &h.singular_values {
            for (x, y) in s.iter().zip(known) {
                assert!(
                    (x - y).abs() < tol * known[0],
                    "{}: sigma {x} vs {y}",
                    h.name
                );
            }
        }
        // svdvals agrees with the full decomposition, and the full SVD is square-orthogonal.
        assert!(
            maxdiff(&linalg::svdvals(&h.a).unwrap(), &svd.s) < tol * scale,
            "{}",
            h.name
        );
        let full = linalg::svd(&h.a).unwrap();
        assert_eq!(full.u.shape()[full.u.rank() - 1], m);
        assert_eq!(full.vt.shape()[full.vt.rank() - 2], n);
        let uut = full.u.matmul(&full.u.transpose(-2, -1).unwrap()).unwrap();
        assert!(
            maxdiff(&uut, &eye_like(m, &b, dtype)) < tol,
            "{} full UUt",
            h.name
        );
        assert!(
            maxdiff(&full.reconstruct().unwrap(), &h.a) / scale < tol,
            "{} full",
            h.name
        );
    }
}

fn check_qr(dtype: DType) {
    for h in hard_matrices(dtype) {
        let (m, n) = dims(&h.a);
        let k = m.min(n);
        let scale = maxabs(&h.a).max(1e-300);
        let tol = 30.0 * (m.max(n) as f64) * eps(dtype);
        let f = linalg::qr(&h.a).unwrap();
        assert_eq!((dims(&f.q), dims(&f.r)), ((m, k), (k, n)), "{}", h.name);
        let qtq = f.q.transpose(-2, -1).unwrap().matmul(&f.q).unwrap();
        assert!(
            maxdiff(&qtq, &eye_like(k, &batch_of(&h.a), dtype)) < tol,
            "{} QtQ",
            h.name
        );
        assert!(
            maxdiff(&f.reconstruct().unwrap(), &h.a) / scale < tol,
            "{} QR",
            h.name
        );
        assert_eq!(
            maxabs(&f.r.tril(-1).unwrap()),
            0.0,
            "{}: R not upper",
            h.name
        );
    }
    // Larger than the Householder block size (32), with a partial last
    // block, tall, wide, and a batch large enough to run over the threads.
    let mut rng = Rng::new(11);
    for shape in [&[100, 100][..], &[150, 70], &[70, 150], &[3, 100, 90]] {
        let a = Tensor::randn(shape, dtype, &mut rng);
        let (m, n) = dims(&a);
        let k = m.min(n);
        let tol = 30.0 * (m.max(n) as f64) * eps(dtype);
        let f = linalg::qr(&a).unwrap();
        let qtq = f.q.transpose(-2, -1).unwrap().matmul(&f.q).unwrap();
        assert!(
            maxdiff(&qtq, &eye_like(k, &batch_of(&a), dtype)) < tol,
            "{shape:?} QtQ"
        );
        assert!(
            maxdiff(&f.reconstruct().unwrap(), &a) / maxabs(&a) < tol,
            "{shape:?} QR"
        );
        assert_eq!(
            maxabs(&f.r.tril(-1).unwrap()),
            0.0,
            "{shape:?}: R not upper"
        );
    }
}

fn check_eigh(dtype: DType) {
    let mut rng = Rng::new(7);
    let spectra: Vec<(&str, Vec<f64>)> = vec![
        ("1x1", vec![-2.0]),
        ("distinct", (0..15).map(|i| i as f64 - 7.5).collect()),
        ("repeated", vec![-1.0, -1.0, 2.0, 2.0, 2.0, 5.0]),
        ("singular", vec![0.0, 0.0, 1.0, 3.0]),
        ("wide_range", (0..8).map(|i| 10f64.powi(i - 4)).collect()),
        // ricci's divide and conquer from n = 33: distinct, then clustered values.
        (
            "distinct_90",
            (0..90).map(|i| i as f64 * 0.25 - 11.0).collect(),
        ),
        (
            "clustered_70",
            (0..70)
                .map(|i| [-3.0, 1.0, 1.0, 2.0, 2.0, 2.0, 0.0][i % 7])
                .collect(),
        ),
        // From 128 the halves, roots and products of each merge run on
        // two threads.
        (
            "distinct_160",
            (0..160).map(|i| (i as f64 * 0.37).sin() * 4.0).collect(),
        ),
        (
            "clustered_150",
            (0..150)
                .map(|i| [5.0, -1.0, -1.0, 0.5, 0.5, 0.5, 1e-9][i % 7])
                .collect(),
        ),
    ];
    for (name, l) in spectra {
        let n = l.len();
        let a = tensor(with_eigenvalues(&l, &mut rng), &[n, n], dtype);
        let scale = l.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let tol = 30.0 * n as f64 * eps(dtype);
        let e = linalg::eigh(&a).unwrap();
        let av = a.matmul(&e.vectors).unwrap();
        let vl = e.vectors.mul(&e.values.unsqueeze(0).unwrap()).unwrap();
        assert!(maxdiff(&av, &vl) / scale < tol, "{name}: AV != V diag(l)");
        let vtv = e.vectors.t().unwrap().matmul(&e.vectors).unwrap();
        assert!(maxdiff(&vtv, &Tensor::eye(n, dtype)) < tol, "{name}: VtV");
        let got = e.values.to_vec_f64();
        let mut want = l.clone();
        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for (x, y) in got.iter().zip(&want) {
            assert!((x - y).abs() / scale < tol, "{name}: {x} vs {y}");
        }
        assert!(maxdiff(&linalg::eigvalsh(&a).unwrap(), &e.values) / scale < tol);
    }
    // Batched, and only the lower triangle is read.
    let x = Tensor::randn(&[4, 5, 5], dtype, &mut rng);
    let sym = x.add(&x.transpose(-2, -1).unwrap()).unwrap();
    let lower_only = sym.tril(0).unwrap();
    let a = linalg::eigvalsh(&sym).unwrap();
    let b = linalg::eigvalsh(&lower_only).unwrap();
    assert!(maxdiff(&a, &b) < 100.0 * eps(dtype));
    let e = linalg::eigh(&sym).unwrap();
    assert!(maxdiff(&e.reconstruct().unwrap(), &sym) < 300.0 * eps(dtype));
    // A batch above 33 (items in parallel, each through ricci's divide and
    // conquer): each item's values equal its own call's, and A V = V Λ.
    let x = Tensor::randn(&[3, 40, 40], dtype, &mut rng);
    let sym = x.add(&x.transpose(-2, -1).unwrap()).unwrap();
    let e = linalg::eigh(&sym).unwrap();
    let av = sym.matmul(&e.vectors).unwrap();
    let vl = e.vectors.mul(&e.values.unsqueeze(-2).unwrap()).unwrap();
    assert!(maxdiff(&av, &vl) < 2000.0 * eps(dtype), "batch of 40 x 40");
    for i in 0..3 {
        let one = linalg::eigh(&sym.narrow(0, i, 1).unwrap().reshape([40, 40]).unwrap()).unwrap();
        let values = e.values.narrow(0, i, 1).unwrap().reshape([40]).unwrap();
        assert!(
            maxdiff(&values, &one.values) < 100.0 * eps(dtype),
            "item {i}"
        );
    }
    // Two batch dims: each item equals its own call (values and vectors are
    // strided views of one buffer; this checks their batch strides).
    let x = Tensor::randn(&[2, 3, 4, 4], dtype, &mut rng);
    let e = linalg::eigh(&x).unwrap();
    assert_eq!(e.values.shape(), &[2, 3, 4]);
    assert_eq!(e.vectors.shape(), &[2, 3, 4, 4]);
    for (i, j) in [(0, 0), (0, 2), (1, 1)] {
        let item = |t: &Tensor| t.narrow(0, i, 1).unwrap().narrow(1, j, 1).unwrap();
        let one = linalg::eigh(&item(&x).reshape([4, 4]).unwrap()).unwrap();
        let values = item(&e.values).reshape([4]).unwrap();
        let vectors = item(&e.vectors).reshape([4, 4]).unwrap();
        assert!(
            maxdiff(&values, &one.values) < 10.0 * eps(dtype),
            "item {i},{j}"
        );
        assert!(
            maxdiff(&vectors, &one.vectors) < 10.0 * eps(dtype),
            "item {i},{j}"
        );
    }
}

fn check_cholesky(dtype: DType) {
    let mut rng = Rng::new(8);
    for (n, l) in [
        (1, vec![3.0]),
        (6, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        (9, (0..9).map(|i| 10f64.powi(-i / 2)).collect()),
    ] {
        let a = tensor(with_eigenvalues(&l, &mut rng), &[n, n], dtype);
        let c = linalg::cholesky(&a).unwrap();
        assert_eq!(maxabs(&c.triu(1).unwrap()), 0.0, "L not lower");
        let llt = c.matmul(&c.t().unwrap()).unwrap();
        let scale = l.iter().fold(0.0f64, |m, &x| m.max(x));
        assert!(
            maxdiff(&llt, &a) / scale < 30.0 * n as f64 * eps(dtype),
            "LLt != A (n={n})"
        );
    }
    // Batched.
    let x = Tensor::randn(&[3, 4, 4], dtype, &mut rng);
    let spd = x
        .matmul(&x.transpose(-2, -1).unwrap())
        .unwrap()
        .add(&Tensor::eye(4, dtype))
        .unwrap();
    let c = linalg::cholesky(&spd).unwrap();
    let llt = c.matmul(&c.transpose(-2, -1).unwrap()).unwrap();
    assert!(maxdiff(&llt, &spd) < 1e3 * eps(dtype) * maxabs(&spd));
    // A batch large enough to be factored in parallel (one sequential
    // factorisation per matrix) gives each matrix's own factor, bit for bit.
    let n = 160;
    let x = Tensor::randn(&[3, n, n], dtype, &mut rng);
    let spd = x
        .matmul(&x.transpose(-2, -1).unwrap())
        .unwrap()
        .add(&Tensor::eye(n, dtype).mul_scalar(n as f64))
        .unwrap();
    let c = linalg::cholesky(&spd).unwrap();
    for i in 0..3 {
        let one = linalg::cholesky(&spd.narrow(0, i, 1).unwrap().squeeze(0).unwrap()).unwrap();
        assert_eq!(
            maxdiff(&c.narrow(0, i, 1).unwrap().squeeze(0).unwrap(), &one),
            0.0
        );
    }
    // Only the lower triangle is read (numpy's UPLO='L'): NaN above the
    // diagonal changes nothing, whether the matrix is copied to faer's
    // column-major layout (n = 70) or factored in its row-major one
    // (n = 300); the repeat reuses pooled buffers that hold the previous factor.
    for n in [70, 300] {
        let x = Tensor::randn(&[n, n], dtype, &mut rng);
        let spd = x
            .matmul(&x.t().unwrap())
            .unwrap()
            .add(&Tensor::eye(n, dtype).mul_scalar(n as f64))
            .unwrap();
        let mut values = spd.to_vec_f64();
        for i in 0..n {
            values[i * n + i + 1..(i + 1) * n].fill(f64::NAN);
        }
        let poisoned = tensor(values, &[n, n], dtype);
        for _ in 0..2 {
            let c = linalg::cholesky(&poisoned).unwrap();
            assert_eq!(maxabs(&c.triu(1).unwrap()), 0.0, "L not lower (n={n})");
            let llt = c.matmul(&c.t().unwrap()).unwrap();
            assert!(maxdiff(&llt, &spd) < 30.0 * n as f64 * eps(dtype) * maxabs(&spd));
        }
    }
}

fn check_solve_inv_det(dtype: DType) {
    let mut rng = Rng::new(9);
    for h in hard_matrices(dtype) {
        let (m, n) = dims(&h.a);
        let Some(s) = &h.singular_values else {
            continue;
        };
        if m != n || s.contains(&0.0) {
            continue;
        }
        let tol = 50.0 * n as f64 * eps(dtype);
        let norm_a = s[0];
        let b = Tensor::randn(&[n, 3], dtype, &mut rng);
        let x = linalg::solve(&h.a, &b).unwrap();
        // Backward error: independent of the condition number.
        let resid = maxdiff(&h.a.matmul(&x).unwrap(), &b) / (norm_a * maxabs(&x) + maxabs(&b));
        assert!(
            resid < tol,
            "{} {dtype}: solve backward error {resid:e}",
            h.name
        );
        let inv = linalg::inv(&h.a).unwrap();
        let ai =
            maxdiff(&h.a.matmul(&inv).unwrap(), &Tensor::eye(n, dtype)) / (norm_a * maxabs(&inv));
        assert!(ai < tol, "{}: inv backward error {ai:e}", h.name);
        // |det| is the product of the singular values; its log is slogdet's.
        // Both are computed to a relative error of about n · cond · eps.
        let cond = s[0] / s[n - 1];
        let logabs: f64 = s.iter().map(|x| x.ln()).sum();
        let (sign, la) = linalg::slogdet(&h.a).unwrap();
        let la = la.to_f64().unwrap();
        assert!(
            (la - logabs).abs() < tol * cond,
            "{}: log|det| {la} vs {logabs}",
            h.name
        );
        assert_eq!(sign.to_f64().unwrap().abs(), 1.0);
        let det = linalg::det(&h.a).unwrap().to_f64().unwrap();
        assert!(
            (det.abs() - logabs.exp()).abs() < tol * cond * logabs.exp(),
            "{}: det {det}",
            h.name
        );
        assert_eq!(det.signum(), sign.to_f64().unwrap());
    }
    // Batch broadcasting, vector right-hand sides, and LU's own invariant.
    let a = Tensor::randn(&[2, 1, 4, 4], dtype, &mut rng)
        .add(&Tensor::eye(4, dtype).mul_scalar(4.0))
        .unwrap();
    let b = Tensor::randn(&[3, 4], dtype, &mut rng);
    let x = linalg::solve(&a, &b.unsqueeze(-1).unwrap()).unwrap();
    assert_eq!(x.shape(), &[2, 3, 4, 1]);
    assert!(
        maxdiff(
            &a.matmul(&x).unwrap(),
            &b.unsqueeze(-1)
                .unwrap()
                .broadcast_to(&[2, 3, 4, 1])
                .unwrap()
        ) < 1e3 * eps(dtype)
    );
    let v = linalg::solve(
        &a.narrow(0, 0, 1)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .squeeze(0)
            .unwrap(),
        &b.narrow(0, 0, 1).unwrap().squeeze(0).unwrap(),
    )
    .unwrap();
    assert_eq!(v.shape(), &[4]);
    let lu = linalg::lu(&a).unwrap();
    assert!(maxdiff(&lu.reconstruct().unwrap(), &a) < 1e3 * eps(dtype));
    assert_eq!(maxabs(&lu.l.triu(1).unwrap()), 0.0);
    assert_eq!(maxabs(&lu.u.tril(-1).unwrap()), 0.0);
    // Triangular solves read only their triangle.
    let l = a
        .narrow(0, 0, 1)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let rhs = Tensor::randn(&[4, 2], dtype, &mut rng);
    let xl = linalg::solve_triangular(&l, &rhs, false).unwrap();
    assert!(maxdiff(&l.tril(0).unwrap().matmul(&xl).unwrap(), &rhs) < 1e3 * eps(dtype));
    let xu = linalg::solve_triangular(&l, &rhs, true).unwrap();
    assert!(maxdiff(&l.triu(0).unwrap().matmul(&xu).unwrap(), &rhs) < 1e3 * eps(dtype));
}

fn check_lstsq_pinv_norms(dtype: DType) {
    for h in hard_matrices(dtype) {
        let Some(s) = &h.singular_values else {
            continue;
        };
        let (m, n) = dims(&h.a);
        let tol = 100.0 * (m.max(n) as f64) * eps(dtype);
        let smin_kept = s
            .iter()
            .cloned()
            .filter(|&x| x > 1e-3 * s[0])
            .fold(f64::MAX, f64::min);
        // Penrose conditions (loose for ill-conditioned ones: pinv's error grows with cond).
        // Values at or below 1e-3 σ_max are cut: A A⁺ A is then A without
        // them, off by at most the largest cut value.
        let p = linalg::pinv(&h.a, Some(1e-3)).unwrap();
        let cond = s[0] / smin_kept;
        let cut = s
            .iter()
            .cloned()
            .filter(|&x| x <= 1e-3 * s[0])
            .fold(0.0, f64::max);
        let apa = h.a.matmul(&p).unwrap().matmul(&h.a).unwrap();
        assert!(
            maxdiff(&apa, &h.a) <= tol * cond * s[0] + 1.01 * cut,
            "{}: A A+ A",
            h.name
        );
        let pap = p.matmul(&h.a).unwrap().matmul(&p).unwrap();
        assert!(
            maxdiff(&pap, &p) / maxabs(&p) < tol * cond,
            "{}: A+ A A+",
            h.name
        );
        // Norms from the known singular values.
        let fro = s.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nuc: f64 = s.iter().sum();
        let got = |ord| linalg::matrix_norm(&h.a, ord).unwrap().to_f64().unwrap();
        assert!(
            (got(MatrixNorm::Frobenius) - fro).abs() < tol * fro,
            "{} fro",
            h.name
        );
        assert!(
            (got(MatrixNorm::Nuclear) - nuc).abs() < tol * nuc,
            "{} nuc",
            h.name
        );
        assert!(
            (got(MatrixNorm::Spectral) - s[0]).abs() < tol * s[0],
            "{} spectral",
            h.name
        );
        let rank = s.iter().filter(|&&x| x > 1e-3 * s[0]).count() as f64;
        assert_eq!(
            linalg::matrix_rank(&h.a, Some(1e-3))
                .unwrap()
                .to_f64()
                .unwrap(),
            rank,
            "{}",
            h.name
        );
    }
    // Least squares: the residual is orthogonal to the columns of A.
    let mut rng = Rng::new(10);
    let a = Tensor::randn(&[20, 4], dtype, &mut rng);
    let b = Tensor::randn(&[20, 2], dtype, &mut rng);
    let x = linalg::lstsq(&a, &b, None).unwrap();
    let normal = a
        .t()
        .unwrap()
        .matmul(&a.matmul(&x).unwrap().sub(&b).unwrap())
        .unwrap();
    assert!(maxabs(&normal) < 1e3 * eps(dtype) * maxabs(&a) * maxabs(&b) * 20.0);
    // Default rank cutoff, condition number, vector norms.
    let ill = hard_matrices(dtype)
        .into_iter()
        .find(|h| h.name == "ill_conditioned")
        .unwrap();
    let s = ill.singular_values.unwrap();
    let c = linalg::cond(&ill.a).unwrap().to_f64().unwrap();
    let want = s[0] / s[s.len() - 1];
    let rel = if dtype == DType::F64 { 1e-4 } else { 1e-1 };
    assert!((c - want).abs() < rel * want, "cond {c} vs {want}");
    let v = tensor(vec![3.0, -4.0, 0.0, 1.0], &[4], dtype);
    let nrm = |ord| {
        linalg::vector_norm(&v, ord, 0, false)
            .unwrap()
            .to_f64()
            .unwrap()
    };
    assert!((nrm(2.0) - 26f64.sqrt()).abs() < 1e-6);
    assert_eq!(nrm(1.0), 8.0);
    assert_eq!(nrm(f64::INFINITY), 4.0);
    assert_eq!(nrm(f64::NEG_INFINITY), 0.0);
    assert_eq!(nrm(0.0), 3.0);
    assert!((nrm(3.0) - 92f64.powf(1.0 / 3.0)).abs() < 1e-5);
}

both_dtypes! {
    svd_reconstructs_is_orthogonal_descending_and_matches_known_spectra => check_svd;
    qr_reconstructs_with_orthonormal_q_and_upper_r => check_qr;
    eigh_satisfies_av_eq_v_lambda_with_ascending_known_eigenvalues => check_eigh;
    cholesky_factor_is_lower_and_reconstructs => check_cholesky;
    solve_inv_det_have_small_backward_error_and_known_determinants => check_solve_inv_det;
    pinv_meets_penrose_conditions_and_norms_match_singular_values => check_lstsq_pinv_norms;
}

#[test]
fn bad_input_gives_errors_naming_op_and_shape() {
    let d = DType::F64;
    let rect = Tensor::zeros(&[2, 3], d);
    let msg = linalg::solve(&rect, &Tensor::zeros(&[2], d))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("solve") && msg.contains("[2, 3]"), "{msg}");
    for e in [
        linalg::inv(&rect).unwrap_err(),
        linalg::det(&rect).unwrap_err(),
        linalg::cholesky(&rect).unwrap_err(),
        linalg::eigh(&rect).unwrap_err(),
    ] {
        assert!(
            matches!(e, Error::Linalg { .. }) && e.to_string().contains("[2, 3]"),
            "{e}"
        );
    }
    let vec = Tensor::zeros(&[3], d);
    assert!(linalg::svd(&vec).unwrap_err().to_string().contains("[3]"));
    assert!(linalg::qr(&vec).is_err());
    // Singular: the zero pivot and the batch item are named.
    let mut data = vec![0.0; 2 * 9];
    for i in 0..3 {
        data[i * 4] = 1.0;
    }
    data[9] = 1.0; // second matrix: only (0, 0) set -> pivot 1 is zero
    let batch = Tensor::from_vec(data, &[2, 3, 3]).unwrap();
    match linalg::inv(&batch).unwrap_err() {
        Error::Singular {
            batch_index: 1,
            pivot: 1,
            ..
        } => {}
        e => panic!("expected Singular at matrix 1, pivot 1, got {e}"),
    }
    let e = linalg::solve(&batch, &Tensor::ones(&[2, 3, 1], d)).unwrap_err();
    assert!(e.to_string().contains("singular"), "{e}");
    assert_eq!(linalg::det(&batch).unwrap().to_vec_f64(), vec![1.0, 0.0]);
    let (sign, la) = linalg::slogdet(&batch).unwrap();
    assert_eq!(sign.to_vec_f64(), vec![1.0, 0.0]);
    assert_eq!(la.to_vec_f64()[1], f64::NEG_INFINITY);
    // Not positive definite: the pivot is named.
    let indefinite =
        Tensor::from_vec(vec![4.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0], &[3, 3]).unwrap();
    match linalg::cholesky(&indefinite).unwrap_err() {
        e @ Error::NotPositiveDefinite { pivot: 2, .. } => {
            assert!(e.to_string().contains("pivot 2"))
        }
        e => panic!("expected NotPositiveDefinite at pivot 2, got {e}"),
    }
    // Shapes and dtypes of right-hand sides.
    let a = Tensor::eye(3, d);
    assert!(matches!(
        linalg::solve(&a, &Tensor::ones(&[4], d)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        linalg::solve(&a, &Tensor::ones(&[3], DType::F32)),
        Err(Error::DTypeMismatch { .. })
    ));
    assert!(linalg::solve_triangular(&a, &Tensor::ones(&[2, 1], d), false).is_err());
    assert!(linalg::lstsq(&rect, &Tensor::ones(&[3], d), None).is_err());
    assert!(linalg::vector_norm(&vec, -1.0, 0, false).is_err());
    assert!(linalg::randomized_svd(&rect, 3, &Default::default()).is_err());
}

#[test]
fn empty_and_one_by_one_matrices_work() {
    let a = Tensor::from_vec(vec![-3.0f64], &[1, 1]).unwrap();
    assert_eq!(linalg::svdvals(&a).unwrap().to_vec_f64(), vec![3.0]);
    assert_eq!(linalg::inv(&a).unwrap().to_vec_f64(), vec![-1.0 / 3.0]);
    assert_eq!(linalg::det(&a).unwrap().to_f64().unwrap(), -3.0);
    assert_eq!(linalg::eigvalsh(&a).unwrap().to_vec_f64(), vec![-3.0]);
    let empty_batch = Tensor::zeros(&[0, 3, 3], DType::F64);
    assert_eq!(linalg::svdvals(&empty_batch).unwrap().shape(), &[0, 3]);
    assert_eq!(linalg::inv(&empty_batch).unwrap().shape(), &[0, 3, 3]);
}

/// A NaN or inf in the input is named as such, with its batch item, by
/// every routine that would otherwise fail obscurely or, worse, succeed:
/// before, `eigh` of a 5 x 5 matrix with a NaN returned finite
/// eigenvalues, and `solve` called it singular. Sizes on both sides of
/// eigh's divide-and-conquer threshold (33), f32 and f64.
#[test]
fn nan_or_inf_input_is_named_with_its_batch_item() {
    for dtype in [DType::F64, DType::F32] {
        for n in [5usize, 40] {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                // Three SPD matrices; item 1 gets a bad entry below the
                // diagonal (and its mirror, so it stays symmetric).
                let mut data = Vec::with_capacity(3 * n * n);
                for _ in 0..3 {
                    for r in 0..n {
                        for c in 0..n {
                            data.push(if r == c { n as f64 } else { 0.5 });
                        }
                    }
                }
                let (r, c) = (n - 1, 1);
                data[n * n + r * n + c] = bad;
                data[n * n + c * n + r] = bad;
                let a = Tensor::from_vec(data, &[3, n, n]).unwrap().to_dtype(dtype);
                let rhs = Tensor::ones(&[3, n, 1], dtype);
                let errors = [
                    ("eigh", linalg::eigh(&a).map(|_| ())),
                    ("eigh", linalg::eigvalsh(&a).map(|_| ())),
                    ("svd", linalg::svd(&a).map(|_| ())),
                    ("svd", linalg::svdvals(&a).map(|_| ())),
                    ("solve", linalg::solve(&a, &rhs).map(|_| ())),
                    ("cholesky", linalg::cholesky(&a).map(|_| ())),
                ];
                // qr, det, lu and slogdet propagate it into their results, as numpy does.
                let item1 = |t: &Tensor| t.narrow(0, 1, 1).unwrap().to_vec_f64();
                let qr = linalg::qr(&a).unwrap();
                assert!(item1(&qr.r).iter().any(|x| !x.is_finite()));
                let det = item1(&linalg::det(&a).unwrap())[0];
                assert!(!det.is_finite(), "{dtype:?} n={n} {bad}: det {det}");
                assert!(item1(&linalg::lu(&a).unwrap().u)
                    .iter()
                    .any(|x| !x.is_finite()));
                let (_, logabs) = linalg::slogdet(&a).unwrap();
                assert!(!item1(&logabs)[0].is_finite());
                for (op, result) in errors {
                    let e = result.expect_err(op).to_string();
                    assert!(
                        e.starts_with(op)
                            && e.contains("matrix 1 of the batch contains NaN or inf"),
                        "{dtype:?} n={n} {bad}: {e}"
                    );
                }
            }
        }
    }
}
