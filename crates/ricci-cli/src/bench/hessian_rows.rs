//! `ricci bench --filter hessian`: curvature of a 784-64-10 tanh MLP with
//! cross-entropy on a batch of 128 (MNIST-sized, 50,890 parameters), f32.
//! `bench/hessian_compare.py` times the same rows in PyTorch (double
//! backward) and JAX (forward-over-reverse, jitted).
//!
//! - `hessian_grad`: loss and gradient with respect to all four parameters;
//! - `hessian_hvp`: one Hessian-vector product from scratch (recorded
//!   forward, tangent pass, backward: reverse over forward), what
//!   `torch.autograd.grad` twice or `jax.jvp(jax.grad(f))` computes;
//! - `hessian_lanczos80`: the top 5 Ritz values after 80 Lanczos steps with
//!   full reorthogonalisation (one recorded forward, then 80 products
//!   through the same graph).
//!
//! Inputs are standard normal; labels are the argmax of each example's
//! first 10 features, so they are fixed by the data.

use ricci::analysis::{flatten, Hessian};
use ricci::{linalg, DType, Tensor};

use super::suite::{Input, RowSpec, Work};

/// Input features, hidden units, classes, batch.
pub const MLP: (usize, usize, usize, usize) = (784, 64, 10, 128);

/// Lanczos steps of the `hessian_lanczos80` row.
pub const LANCZOS_STEPS: usize = 80;

fn input(shape: &[usize], grad: bool) -> Input {
    Input {
        shape: shape.to_vec(),
        transposed: false,
        grad,
    }
}

/// `x, w1, b1, w2, b2`, then a direction `v` shaped like the parameters.
fn inputs() -> Vec<Input> {
    let (d, h, c, b) = MLP;
    vec![
        input(&[b, d], false),
        input(&[h, d], true),
        input(&[h], true),
        input(&[c, h], true),
        input(&[c], true),
        input(&[h, d], false),
        input(&[h], false),
        input(&[c, h], false),
        input(&[c], false),
    ]
}

fn loss(x: &[Tensor]) -> ricci::Result<Tensor> {
    // Classes from the inputs (the suite's smoke test shrinks every shape).
    let c = x[3].shape()[0].min(x[0].shape()[1]);
    let labels = x[0].narrow(1, 0, c)?.argmax(-1, false)?;
    let hidden = ricci::linear(&x[0], &x[1], Some(&x[2]))?.tanh();
    let logits = ricci::linear(&hidden, &x[3], Some(&x[4]))?;
    ricci::nn::cross_entropy(&logits, &labels, None)
}

fn hessian(x: &[Tensor]) -> ricci::Result<Hessian> {
    Hessian::new(|| loss(x), &x[1..5])
}

pub fn rows() -> Vec<RowSpec> {
    let (d, h, c, b) = MLP;
    let shape = format!("{d}-{h}-{c}+b{b}");
    vec![
        RowSpec {
            name: "hessian_grad",
            dtype: DType::F32,
            shape: shape.clone(),
            work: Work::Time,
            inputs: inputs(),
            op: |x| {
                let params: Vec<&Tensor> = x[1..5].iter().collect();
                Ok(ricci::autograd::grad_of(&loss(x)?, &params, None, false)?.remove(0))
            },
        },
        RowSpec {
            name: "hessian_hvp",
            dtype: DType::F32,
            shape: shape.clone(),
            work: Work::Time,
            inputs: inputs(),
            op: |x| Ok(hessian(x)?.hvp(&x[5..9])?.remove(0)),
        },
        RowSpec {
            name: "hessian_lanczos80",
            dtype: DType::F32,
            shape,
            work: Work::Time,
            inputs: inputs(),
            op: |x| {
                let hess = hessian(x)?;
                let q = linalg::lanczos_quadrature(
                    |v| hess.hvp_flat(v),
                    &flatten(&x[5..9])?,
                    LANCZOS_STEPS,
                )?;
                let top: Vec<f64> = q.nodes.iter().rev().take(5).copied().collect();
                Tensor::from_vec(top, &[5])
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanczos_row_makes_80_products_and_its_top_value_is_an_eigenvalue() {
        let rows = rows();
        let row = rows.iter().find(|r| r.name == "hessian_lanczos80").unwrap();
        let mut rng = ricci::Rng::new(0);
        let x = row.make_inputs(&mut rng).unwrap();
        let hess = hessian(&x).unwrap();
        let q = linalg::lanczos_quadrature(
            |v| hess.hvp_flat(v),
            &flatten(&x[5..9]).unwrap(),
            LANCZOS_STEPS,
        )
        .unwrap();
        assert_eq!(q.matvecs, LANCZOS_STEPS);
        // The top Ritz value has converged: a Lanczos run from another start
        // vector, stopped on its residual, finds the same value.
        let top = *q.nodes.last().unwrap();
        let converged = hess
            .eigenpairs(&linalg::LanczosParams {
                tol: 1e-4,
                seed: 9,
                ..Default::default()
            })
            .unwrap()
            .values
            .to_vec::<f32>()
            .unwrap()[0] as f64;
        assert!(
            (top - converged).abs() < 1e-3 * top.abs(),
            "{top} vs {converged}"
        );
    }
}
