//! Values and gradients of ricci::linalg against numpy (LAPACK) and JAX.
//!
//! `tests/fixtures/linalg.json` is written by `scripts/fixtures/linalg.py`
//! in float64. Each case stores inputs, loss weights, numpy's values, and
//! JAX's gradient of a scalar loss that the test rebuilds here from the
//! same formula. Sign-ambiguous outputs enter only through sign-invariant
//! forms (`U Vᵀ`, `U ∘ U`, Q and R with R's diagonal made positive).

use std::collections::HashMap;
use std::sync::OnceLock;

use ricci::autograd::grad;
use ricci::linalg::{self, MatrixNorm};
use ricci::{DType, Result, Tensor};
use serde::Deserialize;

const TOL: f64 = 1e-10;

#[derive(Deserialize)]
struct Fixture {
    shape: Vec<usize>,
    data: Vec<f64>,
}

#[derive(Deserialize)]
struct Case {
    inputs: HashMap<String, Fixture>,
    weights: HashMap<String, Fixture>,
    values: HashMap<String, Fixture>,
    grads: HashMap<String, Fixture>,
}

#[derive(Deserialize)]
struct File {
    cases: HashMap<String, Case>,
}

fn get(map: &HashMap<String, Fixture>, name: &str) -> Tensor {
    let f = map
        .get(name)
        .unwrap_or_else(|| panic!("fixture {name:?} is missing"));
    Tensor::from_vec(f.data.clone(), &f.shape).unwrap()
}

fn case(name: &str) -> &'static Case {
    static FILE: OnceLock<File> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/linalg.json");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run scripts/fixtures/linalg.py)"));
        serde_json::from_str(&text).expect("linalg.json")
    });
    file.cases
        .get(name)
        .unwrap_or_else(|| panic!("linalg.json has no case {name:?}"))
}

/// `got` equals `want` to TOL, relative to the largest expected magnitude (absolute below 1).
fn close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.to_vec_f64(), want.to_vec_f64());
    let scale = w.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let err = g
        .iter()
        .zip(&w)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= TOL * scale,
        "{what}: max error {err:e} (scale {scale})"
    );
}

/// Checks values, then the gradient of `loss(inputs, weights)` against JAX's.
fn check(
    name: &str,
    inputs: &[&str],
    values: impl Fn(&[Tensor]) -> Result<Vec<(&'static str, Tensor)>>,
    loss: impl Fn(&[Tensor], &Case) -> Result<Tensor>,
) {
    let c = case(name);
    let xs: Vec<Tensor> = inputs.iter().map(|k| get(&c.inputs, k)).collect();
    for (k, got) in values(&xs).unwrap() {
        close(&format!("{name}.{k}"), &got, &get(&c.values, k));
    }
    let g = grad(|x| loss(x, c), &xs).unwrap();
    for (k, gi) in inputs.iter().zip(&g) {
        close(&format!("{name} d{k}"), gi, &get(&c.grads, k));
    }
}

fn w(c: &Case, name: &str) -> Tensor {
    get(&c.weights, name)
}

fn wsum(x: &Tensor, c: &Case, name: &str) -> Result<Tensor> {
    Ok(x.mul(&w(c, name))?.sum_all())
}

#[test]
fn svd_values_and_gradients_match_numpy_and_jax() {
    check(
        "svd",
        &["a"],
        |x| {
            let s = linalg::svd_thin(&x[0])?;
            Ok(vec![("s", s.s.clone()), ("polar", s.u.matmul(&s.vt)?)])
        },
        |x, c| {
            let s = linalg::svd_thin(&x[0])?;
            wsum(&s.s, c, "ws")?.add(&wsum(&s.u.matmul(&s.vt)?, c, "wp")?)
        },
    );
    check(
        "svd_wide",
        &["a"],
        |x| {
            let s = linalg::svd_thin(&x[0])?;
            Ok(vec![
                ("s", s.s.clone()),
                ("u_sq", s.u.square()),
                ("vt_sq", s.vt.square()),
            ])
        },
        |x, c| {
            let s = linalg::svd_thin(&x[0])?;
            wsum(&s.s, c, "ws")?
                .add(&wsum(&s.u.square(), c, "wu")?)?
                .add(&wsum(&s.vt.square(), c, "wv")?)
        },
    );
}

/// Q and R with R's diagonal made positive (the signs held constant).
fn qr_pos(a: &Tensor) -> Result<(Tensor, Tensor)> {
    let f = linalg::qr(a)?;
    let d = f.r.diagonal(0, 0, 1)?.sign().detach();
    Ok((f.q.mul(&d.unsqueeze(0)?)?, f.r.mul(&d.unsqueeze(1)?)?))
}

#[test]
fn qr_eigh_cholesky_match_numpy_and_jax() {
    check(
        "qr",
        &["a"],
        |x| {
            let (q, r) = qr_pos(&x[0])?;
            Ok(vec![("q_pos", q), ("r_pos", r)])
        },
        |x, c| {
            let (q, r) = qr_pos(&x[0])?;
            wsum(&q, c, "wq")?.add(&wsum(&r, c, "wr")?)
        },
    );
    let sym = |x: &Tensor| x.add(&x.t()?);
    check(
        "eigh",
        &["x"],
        |x| {
            let e = linalg::eigh(&sym(&x[0])?)?;
            Ok(vec![
                ("values", e.values.clone()),
                ("v_sq", e.vectors.square()),
            ])
        },
        |x, c| {
            let e = linalg::eigh(&sym(&x[0])?)?;
            wsum(&e.values, c, "wl")?.add(&wsum(&e.vectors.square(), c, "wv")?)
        },
    );
    let spd = |x: &Tensor| x.matmul(&x.t()?)?.add(&Tensor::eye(4, DType::F64));
    check(
        "cholesky",
        &["x"],
        |x| Ok(vec![("l", linalg::cholesky(&spd(&x[0])?)?)]),
        |x, c| wsum(&linalg::cholesky(&spd(&x[0])?)?, c, "w"),
    );
}

#[test]
fn solve_inv_det_triangular_match_numpy_and_jax() {
    check(
        "solve",
        &["a", "b"],
        |x| Ok(vec![("x", linalg::solve(&x[0], &x[1])?)]),
        |x, c| wsum(&linalg::solve(&x[0], &x[1])?, c, "w"),
    );
    check(
        "inv_det",
        &["a"],
        |x| {
            let (sign, logabs) = linalg::slogdet(&x[0])?;
            Ok(vec![
                ("inv", linalg::inv(&x[0])?),
                ("det", linalg::det(&x[0])?),
                ("sign", sign),
                ("logabsdet", logabs),
            ])
        },
        |x, c| {
            let inv = wsum(&linalg::inv(&x[0])?, c, "wi")?;
            let det = wsum(&linalg::det(&x[0])?, c, "wd")?;
            let logabs = wsum(&linalg::slogdet(&x[0])?.1, c, "wl")?;
            inv.add(&det)?.add(&logabs)
        },
    );
    check(
        "solve_triangular",
        &["t", "b"],
        |x| Ok(vec![("x", linalg::solve_triangular(&x[0], &x[1], false)?)]),
        |x, c| wsum(&linalg::solve_triangular(&x[0], &x[1], false)?, c, "w"),
    );
}

#[test]
fn pinv_lstsq_norms_match_numpy_and_jax() {
    let c = case("pinv_rank_deficient");
    let a = get(&c.inputs, "a");
    close(
        "pinv rank-deficient",
        &linalg::pinv(&a, None).unwrap(),
        &get(&c.values, "pinv"),
    );
    let x = linalg::lstsq(&a, &get(&c.values, "b"), None).unwrap();
    close("lstsq rank-deficient", &x, &get(&c.values, "lstsq"));
    let rank = linalg::matrix_rank(&a, None).unwrap();
    assert_eq!(
        rank.to_f64().unwrap(),
        get(&c.values, "rank").to_f64().unwrap()
    );
    check(
        "pinv",
        &["a"],
        |x| Ok(vec![("pinv", linalg::pinv(&x[0], None)?)]),
        |x, c| wsum(&linalg::pinv(&x[0], None)?, c, "w"),
    );
    check(
        "norms",
        &["a"],
        |x| {
            Ok(vec![
                ("fro", linalg::matrix_norm(&x[0], MatrixNorm::Frobenius)?),
                ("nuc", linalg::matrix_norm(&x[0], MatrixNorm::Nuclear)?),
                (
                    "spectral",
                    linalg::matrix_norm(&x[0], MatrixNorm::Spectral)?,
                ),
                ("cond", linalg::cond(&x[0])?),
            ])
        },
        |x, c| {
            wsum(&linalg::matrix_norm(&x[0], MatrixNorm::Nuclear)?, c, "wn")?.add(&wsum(
                &linalg::matrix_norm(&x[0], MatrixNorm::Spectral)?,
                c,
                "ws",
            )?)
        },
    );
}
