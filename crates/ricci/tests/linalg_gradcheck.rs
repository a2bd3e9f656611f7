//! Every linalg VJP against central finite differences in f64, first order,
//! and second order (Hessian-vector products against finite differences of
//! the gradient) for solve, inv, det, slogdet, cholesky, triangular solves
//! and the spectral values. The method is that of `gradcheck.rs`: for
//! `L(x) = sum(w * f(x))` with a fixed random `w`, autodiff's `<dL/dx, v>`
//! must equal `(L(x + h v) - L(x - h v)) / 2h` along random directions `v`.
//!
//! Rows whose output has a sign ambiguity (singular vectors, eigenvectors)
//! are written as sign-invariant functions (`U ∘ U`, `U Vᵀ`), as a user's
//! loss must be.

use ricci::autograd::{grad, gradcheck, GradcheckOptions};
use ricci::linalg::{self, MatrixNorm};
use ricci::{DType, Result, Rng, Tensor};

type Op = fn(&[Tensor]) -> Result<Tensor>;

struct Row {
    name: &'static str,
    inputs: &'static [&'static [usize]],
    f: Op,
    second_order: bool,
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.mul(b).unwrap().sum_all().to_f64().unwrap()
}

/// The row's op against finite differences (first order, and second
/// order when the row asks), through `ricci::autograd::gradcheck`.
fn check_row(row: &Row, rng: &mut Rng) {
    let xs: Vec<Tensor> = row
        .inputs
        .iter()
        .map(|s| Tensor::uniform(s, -1.0, 1.0, DType::F64, rng))
        .collect();
    let opts = GradcheckOptions {
        second_order: row.second_order,
        seed: rng.next_u64(),
        ..GradcheckOptions::default()
    };
    gradcheck(row.f, &xs, &opts).unwrap_or_else(|e| panic!("{}: {e}", row.name));
}

/// `x + c I` on the last two dims: keeps random inputs well away from singular.
fn shift(x: &Tensor, c: f64) -> Result<Tensor> {
    let n = x.shape()[x.rank() - 1];
    x.add(&Tensor::eye(n, x.dtype()).mul_scalar(c))
}

/// `x xᵀ + I`: symmetric positive definite.
fn spd(x: &Tensor) -> Result<Tensor> {
    shift(&x.matmul(&x.transpose(-2, -1)?)?, 1.0)
}

fn sym(x: &Tensor) -> Result<Tensor> {
    x.add(&x.transpose(-2, -1)?)
}

const ROWS: &[Row] = &[
    Row {
        name: "solve",
        inputs: &[&[4, 4], &[4, 2]],
        f: |x| linalg::solve(&shift(&x[0], 3.0)?, &x[1]),
        second_order: true,
    },
    Row {
        name: "solve batched, vector rhs",
        inputs: &[&[2, 3, 3], &[2, 3]],
        f: |x| linalg::solve(&shift(&x[0], 3.0)?, &x[1]),
        second_order: true,
    },
    Row {
        name: "inv",
        inputs: &[&[4, 4]],
        f: |x| linalg::inv(&shift(&x[0], 3.0)?),
        second_order: true,
    },
    Row {
        name: "det",
        inputs: &[&[4, 4]],
        f: |x| linalg::det(&shift(&x[0], 2.0)?),
        second_order: true,
    },
    Row {
        name: "det batched",
        inputs: &[&[3, 3, 3]],
        f: |x| linalg::det(&shift(&x[0], 2.0)?),
        second_order: true,
    },
    Row {
        name: "slogdet",
        inputs: &[&[4, 4]],
        f: |x| Ok(linalg::slogdet(&shift(&x[0], 2.0)?)?.1),
        second_order: true,
    },
    Row {
        name: "cholesky",
        inputs: &[&[4, 4]],
        f: |x| linalg::cholesky(&spd(&x[0])?),
        second_order: true,
    },
    Row {
        name: "cholesky batched",
        inputs: &[&[2, 3, 3]],
        f: |x| linalg::cholesky(&spd(&x[0])?),
        second_order: true,
    },
    Row {
        name: "solve_triangular lower",
        inputs: &[&[4, 4], &[4, 3]],
        f: |x| linalg::solve_triangular(&shift(&x[0], 3.0)?, &x[1], false),
        second_order: true,
    },
    Row {
        name: "solve_triangular upper",
        inputs: &[&[4, 4], &[4, 3]],
        f: |x| linalg::solve_triangular(&shift(&x[0], 3.0)?, &x[1], true),
        second_order: true,
    },
    Row {
        name: "svdvals square",
        inputs: &[&[4, 4]],
        f: |x| linalg::svdvals(&x[0]),
        second_order: true,
    },
    Row {
        name: "svdvals tall",
        inputs: &[&[5, 3]],
        f: |x| linalg::svdvals(&x[0]),
        second_order: false,
    },
    Row {
        name: "svd U∘U tall",
        inputs: &[&[5, 3]],
        f: |x| {
            let u = linalg::svd_thin(&x[0])?.u;
            u.mul(&u)
        },
        second_order: false,
    },
    Row {
        name: "svd Vt∘Vt wide",
        inputs: &[&[3, 5]],
        f: |x| {
            let v = linalg::svd_thin(&x[0])?.vt;
            v.mul(&v)
        },
        second_order: false,
    },
    Row {
        name: "svd U Vt (polar factor)",
        inputs: &[&[4, 4]],
        f: |x| {
            let s = linalg::svd_thin(&x[0])?;
            s.u.matmul(&s.vt)
        },
        second_order: true,
    },
    Row {
        name: "svd U diag(S) batched wide",
        inputs: &[&[2, 3, 4]],
        f: |x| {
            let s = linalg::svd_thin(&x[0])?;
            s.u.mul(&s.u)?.mul(&s.s.unsqueeze(-2)?)
        },
        second_order: false,
    },
    Row {
        name: "qr tall (Q, R)",
        inputs: &[&[5, 3]],
        f: |x| {
            let f = linalg::qr(&x[0])?;
            Tensor::cat(&[&f.q.flatten_all(), &f.r.flatten_all()], 0)
        },
        second_order: false,
    },
    Row {
        name: "qr square R",
        inputs: &[&[4, 4]],
        f: |x| Ok(linalg::qr(&x[0])?.r),
        second_order: true,
    },
    Row {
        name: "qr wide (Q, R)",
        inputs: &[&[3, 5]],
        f: |x| {
            let f = linalg::qr(&x[0])?;
            Tensor::cat(&[&f.q.flatten_all(), &f.r.flatten_all()], 0)
        },
        second_order: false,
    },
    Row {
        name: "eigvalsh",
        inputs: &[&[5, 5]],
        f: |x| linalg::eigvalsh(&sym(&x[0])?),
        second_order: true,
    },
    Row {
        name: "eigh V∘V batched",
        inputs: &[&[2, 4, 4]],
        f: |x| {
            let v = linalg::eigh(&sym(&x[0])?)?.vectors;
            v.mul(&v)
        },
        second_order: false,
    },
    Row {
        name: "pinv tall",
        inputs: &[&[5, 3]],
        f: |x| linalg::pinv(&x[0], None),
        second_order: false,
    },
    Row {
        name: "lstsq",
        inputs: &[&[6, 3], &[6, 2]],
        f: |x| linalg::lstsq(&x[0], &x[1], None),
        second_order: false,
    },
    Row {
        name: "nuclear norm",
        inputs: &[&[4, 3]],
        f: |x| linalg::matrix_norm(&x[0], MatrixNorm::Nuclear),
        second_order: false,
    },
    Row {
        name: "spectral norm",
        inputs: &[&[3, 4]],
        f: |x| linalg::matrix_norm(&x[0], MatrixNorm::Spectral),
        second_order: false,
    },
    Row {
        name: "cond",
        inputs: &[&[4, 4]],
        f: |x| linalg::cond(&shift(&x[0], 2.0)?),
        second_order: false,
    },
    Row {
        name: "randomized svd values (full rank sketch)",
        inputs: &[&[6, 4]],
        f: |x| Ok(linalg::randomized_svd(&x[0], 3, &Default::default())?.s),
        second_order: false,
    },
];

#[test]
fn every_linalg_vjp_matches_finite_differences() {
    let mut rng = Rng::new(5);
    for row in ROWS {
        check_row(row, &mut rng);
    }
}

#[test]
fn repeated_values_give_finite_gradients_exact_for_subspace_losses() {
    // A = 2 I: all singular values equal. The nuclear norm sum(S) has
    // gradient U Vᵀ = I there; the per-vector terms are cut, not inf/NaN.
    let a = Tensor::eye(3, DType::F64)
        .mul_scalar(2.0)
        .set_requires_grad(true);
    let g = grad(
        |x| Ok(linalg::svd_thin(&x[0])?.s.sum_all()),
        std::slice::from_ref(&a),
    )
    .unwrap();
    let want = Tensor::eye(3, DType::F64);
    assert!(
        g[0].sub(&want)
            .unwrap()
            .abs()
            .max_all()
            .unwrap()
            .to_f64()
            .unwrap()
            < 1e-12
    );
    let g = grad(|x| Ok(linalg::svd_thin(&x[0])?.u.square().sum_all()), &[a]).unwrap();
    assert!(g[0].to_vec_f64().iter().all(|x| x.is_finite()));
    // A = I + 2 u uᵀ has eigenvalues (1, 1, 3). The projector onto the λ = 3
    // eigenvector is smooth in A, so finite differences give its exact
    // gradient, which must survive the cut of the (1, 1) pair's terms.
    let u = [1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0];
    let a0: Vec<f64> = (0..9)
        .map(|k| (k / 3 == k % 3) as u8 as f64 + 2.0 * u[k / 3] * u[k % 3])
        .collect();
    let a0 = Tensor::from_vec(a0, &[3, 3]).unwrap();
    let mut rng = Rng::new(3);
    let w = Tensor::randn(&[3, 3], DType::F64, &mut rng);
    let loss = |a: &Tensor| -> Result<Tensor> {
        let v = linalg::eigh(a)?.vectors.narrow(1, 2, 1)?;
        Ok(v.matmul(&v.t()?)?.mul(&w)?.sum_all())
    };
    let g = grad(|x| loss(&x[0]), std::slice::from_ref(&a0))
        .unwrap()
        .remove(0);
    let e = Tensor::randn(&[3, 3], DType::F64, &mut rng);
    let d = e.add(&e.t().unwrap()).unwrap();
    let at = |h: f64| {
        loss(&a0.add(&d.mul_scalar(h)).unwrap())
            .unwrap()
            .to_f64()
            .unwrap()
    };
    let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
    let ad = dot(&g, &d);
    assert!(
        (fd - ad).abs() < 1e-6 * (1.0 + fd.abs()),
        "autodiff {ad}, finite differences {fd}"
    );
}
