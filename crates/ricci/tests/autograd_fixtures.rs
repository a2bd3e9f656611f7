//! Values, gradients and full Hessians of three small models against JAX.
//!
//! `tests/fixtures/autograd.json` is written by `scripts/fixtures/autograd.py`
//! with JAX in float64. Each case is a scalar function of one flat
//! parameter vector `theta` plus fixed data; the functions below slice
//! `theta` exactly as the script does and rebuild the same formula from
//! ricci ops. `grad` and `hessian` must then agree with `jax.grad` and
//! `jax.hessian` to 1e-10, relative to the largest expected magnitude (or
//! absolute when that is below 1). The Hessian is the real test: it
//! differentiates every op's backward rule a second time.

use std::collections::HashMap;
use std::sync::OnceLock;

use ricci::autograd::{grad, hessian};
use ricci::{linear, DType, Result, Tensor};
use serde::Deserialize;

const TOL: f64 = 1e-10;

/// A tensor as the fixture stores it: its shape and row-major data.
#[derive(Deserialize)]
struct Fixture {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Fixture {
    fn tensor(&self) -> Tensor {
        Tensor::from_vec(self.data.clone(), &self.shape).expect("fixture data matches its shape")
    }

    /// Integer ids stored as floats, for `gather`.
    fn indices(&self) -> Tensor {
        let ids: Vec<usize> = self.data.iter().map(|&v| v as usize).collect();
        Tensor::from_indices(&ids, &self.shape, DType::F64).expect("fixture ids match their shape")
    }
}

#[derive(Deserialize)]
struct Case {
    theta: Fixture,
    data: HashMap<String, Fixture>,
    value: f64,
    grad: Fixture,
    hessian: Fixture,
}

impl Case {
    fn data(&self, name: &str) -> &Fixture {
        self.data
            .get(name)
            .unwrap_or_else(|| panic!("fixture data {name:?} is missing"))
    }
}

#[derive(Deserialize)]
struct File {
    cases: HashMap<String, Case>,
}

fn case(name: &str) -> &'static Case {
    static FILE: OnceLock<File> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/autograd.json");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run scripts/fixtures/autograd.py)"));
        serde_json::from_str(&text).expect("autograd.json")
    });
    file.cases
        .get(name)
        .unwrap_or_else(|| panic!("autograd.json has no case {name:?}"))
}

/// Slices the flat `theta` into row-major blocks of `shapes`, in order.
fn unpack(theta: &Tensor, shapes: &[&[usize]]) -> Result<Vec<Tensor>> {
    let mut at = 0;
    let mut blocks = Vec::with_capacity(shapes.len());
    for &shape in shapes {
        let n: usize = shape.iter().product();
        blocks.push(theta.narrow(0, at, n)?.reshape(shape)?);
        at += n;
    }
    assert_eq!(at, theta.numel(), "the blocks must cover theta");
    Ok(blocks)
}

/// The largest deviation of `got` from `want`, divided by the tolerance
/// scale `max(1, max |want|)`.
fn scaled_error(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Checks the value, gradient and full Hessian of `f` at the case's theta.
fn check_against_jax(name: &str, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<()> {
    let case = case(name);
    let theta = case.theta.tensor();

    let value = f(&theta)?.to_f64()?;
    let dtheta = grad(|xs| f(&xs[0]), std::slice::from_ref(&theta))?.remove(0);
    let hess = hessian(&f, &theta)?;
    assert_eq!(
        dtheta.shape(),
        case.grad.shape.as_slice(),
        "{name}: gradient shape"
    );
    assert_eq!(
        hess.shape(),
        case.hessian.shape.as_slice(),
        "{name}: Hessian shape"
    );

    let errors = [
        ("value", scaled_error(&[value], &[case.value])),
        (
            "gradient",
            scaled_error(&dtheta.to_vec::<f64>()?, &case.grad.data),
        ),
        (
            "Hessian",
            scaled_error(&hess.to_vec::<f64>()?, &case.hessian.data),
        ),
    ];
    eprintln!("{name}: scaled errors {errors:?}");
    for (what, err) in errors {
        assert!(
            err <= TOL,
            "{name}: {what} differs from JAX by {err:e} (scaled), over {TOL:e}"
        );
    }
    Ok(())
}

#[test]
fn mlp_cross_entropy_gradient_and_hessian_match_jax() -> Result<()> {
    let case = case("mlp_cross_entropy");
    let x = case.data("x").tensor();
    let labels = case.data("labels").indices().unsqueeze(1)?;
    check_against_jax("mlp_cross_entropy", |theta| {
        let [w1, b1, w2, b2]: [Tensor; 4] = unpack(theta, &[&[5, 3], &[5], &[3, 5], &[3]])?
            .try_into()
            .expect("four blocks");
        let h = linear(&x, &w1, Some(&b1))?.tanh();
        let logits = linear(&h, &w2, Some(&b2))?;
        let picked = logits.gather(1, &labels)?.squeeze(1)?;
        Ok(logits.logsumexp(-1, false)?.sub(&picked)?.mean_all())
    })
}

#[test]
fn causal_attention_with_layer_norm_gradient_and_hessian_match_jax() -> Result<()> {
    let case = case("attention_layer_norm");
    let x = case.data("x").tensor();
    let c = case.data("c").tensor();
    // Strictly above the diagonal: position i may not look at j > i.
    let above = Tensor::ones(&[4, 4], DType::F64).triu(1)?;
    check_against_jax("attention_layer_norm", |theta| {
        let [wq, wk, wv, gamma, beta]: [Tensor; 5] =
            unpack(theta, &[&[6, 3], &[6, 3], &[6, 3], &[3], &[3]])?
                .try_into()
                .expect("five blocks");
        let (q, k, v) = (x.matmul(&wq)?, x.matmul(&wk)?, x.matmul(&wv)?);
        let scores = q.matmul(&k.t()?)?.div_scalar(3f64.sqrt());
        let a = scores.masked_fill(&above, -1e9)?.softmax(-1)?.matmul(&v)?;
        let mean = a.mean(-1, true)?;
        let var = a.var_correction(-1, 0, true)?;
        let out = a
            .sub(&mean)?
            .mul(&var.add_scalar(1e-5).rsqrt())?
            .mul(&gamma)?
            .add(&beta)?;
        Ok(out.mul(&c)?.sum_all())
    })
}

#[test]
fn broadcast_permute_and_reductions_gradient_and_hessian_match_jax() -> Result<()> {
    let case = case("broadcast_permute_reduce");
    let u = case.data("u").tensor().reshape([4, 1, 1])?;
    let w = case.data("w").tensor();
    check_against_jax("broadcast_permute_reduce", |theta| {
        let t = theta.reshape([2, 3, 4])?;
        // [4, 2, 3] + [4, 1, 1], then the mean over the middle axis: [4, 3].
        let m = t.permute([2, 0, 1])?.add(&u)?.tanh().mean(1, false)?;
        // [2, 3, 4] * [1, 3, 1], summed over the outer axes: [3].
        let s = t.square().mul(&w.unsqueeze(0)?)?.sum([0, 2], false)?;
        let fit = m.mul(&w.t()?)?.sum_all();
        let penalty = s.add_scalar(1.0).log().sum_all().mul_scalar(0.5);
        fit.add(&penalty)
    })
}
