//! Gradients checked against finite differences (JAX's `check_grads`,
//! PyTorch's `gradcheck`/`gradgradcheck`), for users' own functions and
//! for ricci's tests.
//!
//! For `L(x) = sum(w * f(x))` with a fixed random `w`, autodiff's
//! directional derivative along a random `v` must equal the central
//! difference `(L(x + h v) - L(x - h v)) / 2h`, computed both ways: reverse
//! mode `<dL/dx_i, v>` and forward mode `<w, J v>` (every op's JVP). At
//! second order, the Hessian-vector product `H v` projected on a random `u`
//! must equal the central difference of gradients, computed both ways too:
//! reverse over reverse (every op's VJP differentiated) and reverse over
//! forward (every op's JVP differentiated). Inputs must be f64.

use super::{grad, hvp, jvp};
use crate::error::{Error, Result};
use crate::tensor::{DType, Rng, Tensor};

/// Settings of [`gradcheck`].
#[derive(Clone, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub step: f64,
    /// Allowed `|autodiff - fd| / (1 + |fd|)` at first order.
    pub tolerance: f64,
    /// Also check Hessian-vector products (the function's gradient must itself be differentiable).
    pub second_order: bool,
    /// Allowed relative error at second order.
    pub second_order_tolerance: f64,
    /// Seed of the random weights and directions.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            step: 1e-6,
            tolerance: 1e-6,
            second_order: false,
            second_order_tolerance: 1e-5,
            seed: 0,
        }
    }
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    a.mul(b)?.sum_all().to_f64()
}

/// Checks the gradients of `f` at `xs` (every input, f64) against finite
/// differences; an `InvalidArgument` error describes the first mismatch.
///
/// ```
/// use ricci::autograd::{gradcheck, GradcheckOptions};
/// use ricci::{DType, Rng, Tensor};
/// let x = Tensor::randn(&[3, 4], DType::F64, &mut Rng::new(0));
/// let opts = GradcheckOptions { second_order: true, ..GradcheckOptions::default() };
/// gradcheck(|xs| Ok(xs[0].tanh().softmax(-1)?), &[x], &opts)?;
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    xs: &[Tensor],
    opts: &GradcheckOptions,
) -> Result<()> {
    const OP: &str = "gradcheck";
    if let Some(x) = xs.iter().find(|x| x.dtype() != DType::F64) {
        return Err(Error::invalid(
            OP,
            format!(
                "inputs must be f64, got {:?} of shape {:?}",
                x.dtype(),
                x.shape()
            ),
        ));
    }
    let mut rng = Rng::new(opts.seed);
    let out = f(xs)?;
    let w = Tensor::randn(out.shape(), DType::F64, &mut rng);
    let loss = |ys: &[Tensor]| -> Result<Tensor> { Ok(f(ys)?.mul(&w)?.sum_all()) };
    let g = grad(loss, xs)?;
    let h = opts.step;
    for (i, x) in xs.iter().enumerate() {
        let v = Tensor::randn(x.shape(), DType::F64, &mut rng);
        let shifted = |sign: f64| -> Result<f64> {
            let mut ys = xs.to_vec();
            ys[i] = x.add(&v.mul_scalar(sign * h))?;
            loss(&ys)?.to_f64()
        };
        let fd = (shifted(1.0)? - shifted(-1.0)?) / (2.0 * h);
        let tangents: Vec<Tensor> = xs
            .iter()
            .enumerate()
            .map(|(j, xj)| if j == i { v.clone() } else { xj.zeros_like() })
            .collect();
        let forward = jvp(loss, xs, &tangents)?.1.to_f64()?;
        for (mode, ad) in [("reverse", dot(&g[i], &v)?), ("forward", forward)] {
            if (fd - ad).abs() > opts.tolerance * (1.0 + fd.abs()) {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "input {i} {:?}: {mode}-mode autodiff gives {ad}, finite differences {fd}",
                        x.shape()
                    ),
                ));
            }
        }
        if opts.second_order {
            let fi = |xi: &Tensor| {
                let mut ys = xs.to_vec();
                ys[i] = xi.clone();
                loss(&ys)
            };
            let over_forward = hvp(fi, x, &v)?;
            let over_reverse = grad(
                |y| {
                    grad(|z| fi(&z[0]), y)?
                        .remove(0)
                        .mul(&v)
                        .map(|t| t.sum_all())
                },
                std::slice::from_ref(x),
            )?
            .remove(0);
            let hh = 10.0 * h;
            let grad_at = |sign: f64| -> Result<Tensor> {
                let xi = x.add(&v.mul_scalar(sign * hh))?;
                Ok(grad(|y| fi(&y[0]), &[xi])?.remove(0))
            };
            let fd_hv = grad_at(1.0)?.sub(&grad_at(-1.0)?)?.div_scalar(2.0 * hh);
            let u = Tensor::randn(x.shape(), DType::F64, &mut rng);
            let b = dot(&fd_hv, &u)?;
            for (mode, hv) in [("forward", &over_forward), ("reverse", &over_reverse)] {
                let a = dot(hv, &u)?;
                if (a - b).abs() > opts.second_order_tolerance * (1.0 + b.abs()) {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "input {i} {:?}: Hessian-vector product (reverse over {mode}) gives {a}, finite differences {b}",
                            x.shape()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
