//! Hessian analysis against the explicit Hessian of a model small enough
//! to form it, Hessian-vector products against finite differences of
//! gradients, and spectra of matrices whose singular values are known.

use ricci::analysis::{
    attention_head_spectra, flatten, head_spectra, DensityParams, Hessian, MatrixSpectrum,
    TraceParams,
};
use ricci::linalg::{self, LanczosParams, Which};
use ricci::models::gpt::{Gpt, GptConfig};
use ricci::nn::{cross_entropy, Module};
use ricci::{DType, Rng, Tensor};

/// A 10-24-6 tanh MLP with cross-entropy on 32 random examples: 414
/// parameters, small enough for the explicit Hessian.
struct Mlp {
    x: Tensor,
    y: Tensor,
    params: Vec<Tensor>,
}

const SHAPES: [&[usize]; 4] = [&[24, 10], &[24], &[6, 24], &[6]];

impl Mlp {
    fn new() -> Mlp {
        let mut rng = Rng::new(7);
        let x = Tensor::randn(&[32, 10], DType::F64, &mut rng);
        let labels: Vec<usize> = (0..32).map(|_| rng.below(6) as usize).collect();
        let y = Tensor::from_indices(&labels, &[32], DType::F64).unwrap();
        let params = SHAPES
            .iter()
            .map(|s| {
                Tensor::randn(s, DType::F64, &mut rng)
                    .mul_scalar(0.7)
                    .set_requires_grad(true)
            })
            .collect();
        Mlp { x, y, params }
    }

    fn loss_of(&self, p: &[Tensor]) -> ricci::Result<Tensor> {
        let h = ricci::linear(&self.x, &p[0], Some(&p[1]))?.tanh();
        cross_entropy(&ricci::linear(&h, &p[2], Some(&p[3]))?, &self.y, None)
    }

    fn hessian(&self) -> Hessian {
        Hessian::new(|| self.loss_of(&self.params), &self.params).unwrap()
    }

    /// The loss as a function of one flat vector (for `autograd::hessian`).
    fn flat_loss(&self, w: &Tensor) -> ricci::Result<Tensor> {
        let mut offset = 0;
        let parts = SHAPES
            .iter()
            .map(|s| {
                let n: usize = s.iter().product();
                let part = w.narrow(0, offset, n)?.reshape(s.to_vec());
                offset += n;
                part
            })
            .collect::<ricci::Result<Vec<_>>>()?;
        self.loss_of(&parts)
    }

    fn flat_params(&self) -> Tensor {
        let detached: Vec<Tensor> = self.params.iter().map(Tensor::detach).collect();
        flatten(&detached).unwrap()
    }

    /// The explicit `n x n` Hessian by `autograd::hessian` (one backward
    /// pass per row, a code path independent of `Hessian`'s products).
    fn explicit_hessian(&self) -> Tensor {
        ricci::autograd::hessian(|w| self.flat_loss(w), &self.flat_params()).unwrap()
    }
}

fn eigenvalues_descending(h: &Tensor) -> Vec<f64> {
    let mut l = linalg::eigvalsh(h).unwrap().to_vec::<f64>().unwrap();
    l.reverse();
    l
}

#[test]
fn hessian_vector_products_equal_finite_differences_of_gradients() {
    let mlp = Mlp::new();
    let h = mlp.hessian();
    assert_eq!(h.dim(), 414);
    let mut rng = Rng::new(3);
    let v = Tensor::randn(&[h.dim()], DType::F64, &mut rng);
    let hv = h.hvp_flat(&v).unwrap().to_vec::<f64>().unwrap();
    let eps = 1e-5;
    let grad_at = |sign: f64| {
        let w = mlp.flat_params().add(&v.mul_scalar(sign * eps)).unwrap();
        ricci::autograd::grad(|w| mlp.flat_loss(&w[0]), &[w]).unwrap()[0]
            .to_vec::<f64>()
            .unwrap()
    };
    let (plus, minus) = (grad_at(1.0), grad_at(-1.0));
    let scale = hv.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (&a, (p, m))) in hv.iter().zip(plus.iter().zip(&minus)).enumerate() {
        let fd = (p - m) / (2.0 * eps);
        assert!(
            (a - fd).abs() <= 1e-7 * scale,
            "entry {i}: hvp {a} vs finite difference {fd}"
        );
    }
    // The first product is reverse over forward; later ones go through the
    // recorded gradient (reverse over reverse), built once and reused: the
    // same values to rounding, and the third is the second bit for bit.
    let gradient_before = h.gradient().unwrap();
    let again = h.hvp_flat(&v).unwrap().to_vec::<f64>().unwrap();
    for (i, (a, b)) in hv.iter().zip(&again).enumerate() {
        assert!((a - b).abs() <= 1e-12 * scale, "entry {i}: {a} then {b}");
    }
    assert_eq!(h.hvp_flat(&v).unwrap().to_vec::<f64>().unwrap(), again);
    // The gradient from the recorded backward (reused) and from a plain one.
    for (a, b) in gradient_before.iter().zip(h.gradient().unwrap()) {
        for (x, y) in a
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(b.to_vec::<f64>().unwrap())
        {
            assert!(
                (x - y).abs() <= 1e-12 * (1.0 + x.abs()),
                "gradient {x} then {y}"
            );
        }
    }
}

#[test]
fn lanczos_top_eigenvalues_equal_the_explicit_hessians() {
    let mlp = Mlp::new();
    let explicit = mlp.explicit_hessian();
    let asym = explicit
        .sub(&explicit.t().unwrap())
        .unwrap()
        .abs()
        .max_all()
        .unwrap()
        .to_f64()
        .unwrap();
    assert!(asym < 1e-12, "explicit Hessian asymmetric by {asym}");
    let want = eigenvalues_descending(&explicit);
    let h = mlp.hessian();
    let params = LanczosParams {
        k: 5,
        tol: 1e-10,
        ..Default::default()
    };
    let top = h.eigenpairs(&params).unwrap();
    let got = top.values.to_vec::<f64>().unwrap();
    for i in 0..5 {
        assert!(
            (got[i] - want[i]).abs() <= 1e-8 * want[0].abs().max(1.0),
            "eigenvalue {i}: Lanczos {} vs explicit {}",
            got[i],
            want[i]
        );
    }
    assert!(
        top.matvecs < 150,
        "{} products for the top 5 of 414",
        top.matvecs
    );
    // The eigenvectors are eigenvectors of the explicit Hessian.
    let av = explicit.matmul(&top.vectors).unwrap();
    let lv = top.vectors.mul(&top.values.unsqueeze(0).unwrap()).unwrap();
    let residual = av
        .sub(&lv)
        .unwrap()
        .abs()
        .max_all()
        .unwrap()
        .to_f64()
        .unwrap();
    assert!(residual < 1e-6 * want[0].abs(), "residual {residual}");

    // The bottom end too (a loss surface has negative curvature here).
    let bottom = h
        .eigenpairs(&LanczosParams {
            which: Which::Smallest,
            ..params
        })
        .unwrap()
        .values
        .to_vec::<f64>()
        .unwrap();
    let mut ascending = want.clone();
    ascending.reverse();
    for i in 0..5 {
        assert!((bottom[i] - ascending[i]).abs() <= 1e-8 * want[0].abs().max(1.0));
    }

    // Power iteration finds the eigenvalue of largest magnitude.
    let largest = want[0].abs().max(ascending[0].abs());
    let pi = h
        .power_iteration(&LanczosParams {
            max_iter: 5000,
            tol: 1e-9,
            ..Default::default()
        })
        .unwrap();
    assert!(
        (pi.value.abs() - largest).abs() <= 1e-6 * largest,
        "power iteration {} vs {largest}",
        pi.value
    );
}

#[test]
fn hutchinson_trace_is_within_three_standard_errors() {
    let mlp = Mlp::new();
    let explicit = mlp.explicit_hessian();
    let exact = explicit
        .diagonal(0, 0, 1)
        .unwrap()
        .sum_all()
        .to_f64()
        .unwrap();
    let h = mlp.hessian();
    let t = h
        .trace(&TraceParams {
            probes: 300,
            seed: 11,
        })
        .unwrap();
    assert_eq!(t.samples.len(), 300);
    assert!(t.std_error > 0.0);
    assert!(
        (t.estimate - exact).abs() <= 3.0 * t.std_error,
        "trace {} ± {} vs exact {exact}",
        t.estimate,
        t.std_error
    );
    // The standard error is honest: Hutchinson's variance per probe is
    // 2 Σ_{i≠j} H_ij², so the reported error must be close to it.
    let n = h.dim();
    let h2 = explicit.to_vec::<f64>().unwrap();
    let off: f64 = (0..n * n)
        .filter(|k| k / n != k % n)
        .map(|k| h2[k] * h2[k])
        .sum();
    let predicted = (2.0 * off / 300.0).sqrt();
    assert!(
        (t.std_error / predicted - 1.0).abs() < 0.25,
        "std error {} vs predicted {predicted}",
        t.std_error
    );
}

#[test]
fn density_integrates_to_one_and_sits_on_the_eigenvalues() {
    let mlp = Mlp::new();
    let want = eigenvalues_descending(&mlp.explicit_hessian());
    let (lo, hi) = (want[want.len() - 1], want[0]);
    let d = mlp
        .hessian()
        .density(&DensityParams {
            probes: 16,
            steps: 50,
            seed: 5,
        })
        .unwrap();
    assert_eq!(d.matvecs, 16 * 50);
    for w in &d.weights {
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-10);
    }
    // Ritz values lie inside the spectrum.
    let (nlo, nhi) = d.range();
    let tol = 1e-8 * hi.abs().max(lo.abs());
    assert!(
        nlo >= lo - tol && nhi <= hi + tol,
        "{nlo}..{nhi} vs {lo}..{hi}"
    );
    // The extreme Ritz values of 50 steps have converged to the extremes.
    assert!((nhi - hi).abs() < 1e-6 * hi.abs());

    let sigma = 0.01 * (hi - lo);
    let (grid, phi) = d.curve(4001, sigma);
    let dt = grid[1] - grid[0];
    let mass: f64 = phi.iter().sum::<f64>() * dt;
    assert!((mass - 1.0).abs() < 1e-3, "density integrates to {mass}");

    // Its distribution function follows the eigenvalues' (Kolmogorov
    // distance): the smoothed mass below t against the fraction of
    // eigenvalues below t, at every decile of the spectrum.
    let n = want.len() as f64;
    let mut worst = 0.0f64;
    let mut ascending = want.clone();
    ascending.reverse();
    for decile in 1..10 {
        let i = decile * ascending.len() / 10;
        let t = 0.5 * (ascending[i - 1] + ascending[i]);
        let below_exact = i as f64 / n;
        let below_slq: f64 = grid
            .iter()
            .zip(&phi)
            .filter(|(g, _)| **g <= t)
            .map(|(_, p)| p * dt)
            .sum();
        worst = worst.max((below_slq - below_exact).abs());
    }
    assert!(worst < 0.08, "distribution functions differ by {worst}");
}

#[test]
fn gpt_hessian_vector_products_equal_finite_differences() {
    // Second derivatives through every op of the GPT: embeddings, fused
    // layer norm, attention with its mask and softmax, GELU, cross-entropy.
    let config = GptConfig {
        vocab_size: 7,
        n_layer: 2,
        n_head: 2,
        n_embd: 8,
        block_size: 6,
        dropout: 0.0,
        ..Default::default()
    };
    let mut rng = Rng::new(1);
    let model = Gpt::new(&config, DType::F64, &mut rng).unwrap();
    let ids: Vec<usize> = (0..12).map(|_| rng.below(7) as usize).collect();
    let x = Tensor::from_indices(&ids[..10], &[2, 5], DType::F64).unwrap();
    let y = Tensor::from_indices(&ids[2..], &[2, 5], DType::F64).unwrap();
    let params: Vec<Tensor> = model
        .parameters()
        .iter()
        .map(|p| p.tensor().clone())
        .collect();
    let h = Hessian::new(|| model.loss(&x, &y), &params).unwrap();
    assert_eq!(h.dim(), model.num_parameters());
    let v = Tensor::randn(&[h.dim()], DType::F64, &mut rng);
    let hv = h.hvp_flat(&v).unwrap().to_vec::<f64>().unwrap();
    let directions = h.unflatten(&v).unwrap();
    let grad_at = |sign: f64, eps: f64| -> Vec<f64> {
        let original: Vec<Tensor> = params
            .iter()
            .map(|p| p.detach().contiguous().mul_scalar(1.0))
            .collect();
        for (p, (o, d)) in model
            .parameters()
            .iter()
            .zip(original.iter().zip(&directions))
        {
            p.assign(&o.add(&d.mul_scalar(sign * eps)).unwrap())
                .unwrap();
        }
        let g = ricci::autograd::grad_of(
            &model.loss(&x, &y).unwrap(),
            &params.iter().collect::<Vec<_>>(),
            None,
            false,
        )
        .unwrap();
        for (p, o) in model.parameters().iter().zip(&original) {
            p.assign(o).unwrap();
        }
        g.iter().flat_map(|t| t.to_vec::<f64>().unwrap()).collect()
    };
    // A random direction of norm ~45 makes the third-order term of the
    // central difference large: its error falls as eps² (7e-5 at 1e-5,
    // 1e-6 at 1e-6, measured), so the step is small.
    let eps = 1e-6;
    let (plus, minus) = (grad_at(1.0, eps), grad_at(-1.0, eps));
    let scale = hv.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (&a, (p, m))) in hv.iter().zip(plus.iter().zip(&minus)).enumerate() {
        let fd = (p - m) / (2.0 * eps);
        assert!(
            (a - fd).abs() <= 1e-7 * scale,
            "entry {i}: hvp {a} vs finite difference {fd}"
        );
    }
}

#[test]
fn hessian_reports_bad_input() {
    let mlp = Mlp::new();
    let frozen = mlp.params[0].detach();
    let e = Hessian::new(|| mlp.loss_of(&mlp.params), &[frozen]).unwrap_err();
    assert!(e.to_string().contains("does not require grad"), "{e}");
    let e = Hessian::new(|| mlp.x.sum(0, false), &mlp.params[..1]).unwrap_err();
    assert!(e.to_string().contains("scalar"), "{e}");
    let e = Hessian::new(|| mlp.loss_of(&mlp.params), &[]).unwrap_err();
    assert!(e.to_string().contains("no parameters"), "{e}");
    let h = mlp.hessian();
    let e = h.hvp_flat(&Tensor::zeros(&[5], DType::F64)).unwrap_err();
    assert!(e.to_string().contains("[414]"), "{e}");
    let e = h.trace(&TraceParams { probes: 1, seed: 0 }).unwrap_err();
    assert!(e.to_string().contains("2 probes"), "{e}");
    // A parameter the loss ignores has zero rows: its products are zero.
    let unused = Tensor::ones(&[3], DType::F64).set_requires_grad(true);
    let mut with_unused = mlp.params.clone();
    with_unused.push(unused);
    let h = Hessian::new(|| mlp.loss_of(&mlp.params), &with_unused).unwrap();
    let hv = h
        .hvp_flat(&Tensor::ones(&[417], DType::F64))
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert_eq!(&hv[414..], &[0.0; 3]);
    assert!(hv[..414].iter().any(|x| *x != 0.0));
}

/// `U diag(s) Vᵀ` with orthonormal `U [m, r]`, `V [n, r]` from QR.
fn planted(m: usize, n: usize, s: &[f64], rng: &mut Rng) -> Tensor {
    let r = s.len();
    let u = linalg::qr(&Tensor::randn(&[m, r], DType::F64, rng))
        .unwrap()
        .q;
    let v = linalg::qr(&Tensor::randn(&[n, r], DType::F64, rng))
        .unwrap()
        .q;
    let s = Tensor::from_vec(s.to_vec(), &[1, r]).unwrap();
    u.mul(&s).unwrap().matmul(&v.t().unwrap()).unwrap()
}

#[test]
fn spectra_of_known_matrices_come_out_exactly() {
    let mut rng = Rng::new(2);
    // Orthogonal: all ones, stable and effective rank n.
    let q = ricci::nn::init::orthogonal(&[12, 12], 1.0, DType::F64, &mut rng).unwrap();
    let s = MatrixSpectrum::of(&q).unwrap();
    assert!(s.singular_values.iter().all(|x| (x - 1.0).abs() < 1e-12));
    assert!((s.stable_rank - 12.0).abs() < 1e-10);
    assert!((s.effective_rank - 12.0).abs() < 1e-10);
    assert!((s.frobenius_norm - 12f64.sqrt()).abs() < 1e-12);

    // Low rank: exactly the planted values, then zeros.
    let a = planted(20, 15, &[5.0, 2.0, 1.0], &mut rng);
    let s = MatrixSpectrum::of(&a).unwrap();
    for (got, want) in s.singular_values.iter().zip([5.0, 2.0, 1.0]) {
        assert!((got - want).abs() < 1e-12);
    }
    assert!(s.singular_values[3..].iter().all(|x| *x < 1e-12));
    assert!((s.stable_rank - 30.0 / 25.0).abs() < 1e-10);
    let p = [5.0 / 8.0, 2.0 / 8.0, 1.0 / 8.0];
    let want_erank = (-p.iter().map(|x| x * f64::ln(*x)).sum::<f64>()).exp();
    assert!((s.effective_rank - want_erank).abs() < 1e-10);

    // Diagonal: the absolute values, sorted; rank one has effective rank 1.
    let d = Tensor::eye(3, DType::F64)
        .mul(&Tensor::from_vec(vec![0.5, -3.0, 2.0], &[1, 3]).unwrap())
        .unwrap();
    assert_eq!(
        MatrixSpectrum::of(&d).unwrap().singular_values,
        vec![3.0, 2.0, 0.5]
    );
    let one = planted(6, 4, &[2.0], &mut rng);
    assert!((MatrixSpectrum::of(&one).unwrap().effective_rank - 1.0).abs() < 1e-6);

    let zero = MatrixSpectrum::of(&Tensor::zeros(&[3, 3], DType::F64)).unwrap();
    assert_eq!((zero.stable_rank, zero.effective_rank), (0.0, 0.0));
    assert!(MatrixSpectrum::of(&Tensor::zeros(&[3], DType::F64)).is_err());
}

#[test]
fn head_spectra_equal_those_of_the_explicit_circuits() {
    let mut rng = Rng::new(4);
    let (c, heads, d) = (10, 3, 4);
    let w = |s: &[usize], rng: &mut Rng| Tensor::randn(s, DType::F64, rng);
    let (wq, wk, wv, wo) = (
        w(&[heads * d, c], &mut rng),
        w(&[heads * d, c], &mut rng),
        w(&[heads * d, c], &mut rng),
        w(&[c, heads * d], &mut rng),
    );
    let got = head_spectra(&wq, &wk, &wv, &wo, heads).unwrap();
    for (h, spec) in got.iter().enumerate() {
        let rows = |t: &Tensor| t.narrow(0, h * d, d).unwrap();
        let qk = rows(&wq).t().unwrap().matmul(&rows(&wk)).unwrap();
        let ov = rows(&wv)
            .t()
            .unwrap()
            .matmul(&wo.narrow(1, h * d, d).unwrap().t().unwrap())
            .unwrap();
        for (circuit, explicit) in [(&spec.qk, qk), (&spec.ov, ov)] {
            let want = linalg::svdvals(&explicit).unwrap().to_vec::<f64>().unwrap();
            assert_eq!(circuit.singular_values.len(), d);
            for i in 0..d {
                assert!((circuit.singular_values[i] - want[i]).abs() < 1e-10 * want[0]);
            }
            assert!(want[d..].iter().all(|x| *x < 1e-10 * want[0]));
        }
    }
    // Shapes that do not fit are named.
    let e = head_spectra(&wq, &wk, &wv, &wq, heads).unwrap_err();
    assert!(e.to_string().contains("W_O"), "{e}");
    let e = head_spectra(&wq, &wk, &wv, &wo, 5).unwrap_err();
    assert!(e.to_string().contains("5 heads"), "{e}");
}

#[test]
fn attention_layers_are_found_in_a_gpt_state_dict() {
    let config = GptConfig {
        vocab_size: 11,
        n_layer: 3,
        n_head: 4,
        n_embd: 16,
        block_size: 8,
        ..Default::default()
    };
    let model = Gpt::new(&config, DType::F32, &mut Rng::new(0)).unwrap();
    let state = model.state_dict();
    let layers = attention_head_spectra(&state, 4).unwrap();
    let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["blocks.0.attn", "blocks.1.attn", "blocks.2.attn"]);
    // Layer 1's first head computed from the stacked qkv weight by hand.
    let qkv = &state
        .iter()
        .find(|(n, _)| n == "blocks.1.attn.qkv.weight")
        .unwrap()
        .1;
    let proj = &state
        .iter()
        .find(|(n, _)| n == "blocks.1.attn.proj.weight")
        .unwrap()
        .1;
    let want = head_spectra(
        &qkv.narrow(0, 0, 16).unwrap(),
        &qkv.narrow(0, 16, 16).unwrap(),
        &qkv.narrow(0, 32, 16).unwrap(),
        proj,
        4,
    )
    .unwrap();
    assert_eq!(layers[1].1, want);
}
