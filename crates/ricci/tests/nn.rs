//! Layers, losses and models: gradients against finite differences (first
//! and second order, f64), the causal property of attention, dropout's
//! statistics, and clear errors for bad state dicts and configurations.

use ricci::autograd::{grad_of, gradcheck, GradcheckOptions};
use ricci::data::CharText;
use ricci::models::gpt::{Gpt, GptConfig};
use ricci::nn::{
    attention_packed, causal_attention, cross_entropy, Activation, CausalSelfAttention, Dropout,
    LayerNorm, Linear, Mlp, Module, RmsNorm, Var,
};
use ricci::{DType, Rng, Tensor};

fn second_order() -> GradcheckOptions {
    GradcheckOptions {
        second_order: true,
        ..GradcheckOptions::default()
    }
}

fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, DType::F64, rng)
}

#[test]
fn cross_entropy_gradients_to_second_order_with_ignored_targets() {
    let mut rng = Rng::new(1);
    let logits = randn(&[6, 5], &mut rng).mul_scalar(3.0);
    let targets = Tensor::from_vec(vec![0.0f64, 4.0, -1.0, 2.0, -1.0, 1.0], &[6]).unwrap();
    gradcheck(
        |x| cross_entropy(&x[0], &targets, Some(-1)),
        &[logits],
        &second_order(),
    )
    .unwrap();
}

/// The loss's gradient is a recorded op of its own; checking it to second
/// order checks the loss's third derivatives, and forward mode through it
/// (forward over reverse).
#[test]
fn cross_entropy_gradient_is_differentiable_twice_more() {
    let mut rng = Rng::new(2);
    let logits = randn(&[5, 4], &mut rng).mul_scalar(2.0);
    let targets = Tensor::from_vec(vec![3.0f64, -1.0, 0.0, 1.0, 3.0], &[5]).unwrap();
    gradcheck(
        |x| {
            let g = ricci::autograd::grad(|x| cross_entropy(&x[0], &targets, Some(-1)), x)?;
            Ok(g[0].clone())
        },
        &[logits],
        &second_order(),
    )
    .unwrap();
}

#[test]
fn cross_entropy_stays_finite_where_a_probability_underflows() {
    // softmax([0, 200])[0] is 0 in f32 and f64 alike; log_softmax is -200.
    for dtype in [DType::F32, DType::F64] {
        let logits = Tensor::from_vec(vec![0.0f64, 200.0, 1.0, 0.0], &[2, 2])
            .unwrap()
            .to_dtype(dtype);
        let targets = Tensor::from_vec(vec![0.0f64, 0.0], &[2])
            .unwrap()
            .to_dtype(dtype);
        let loss = cross_entropy(&logits, &targets, None)
            .unwrap()
            .to_f64()
            .unwrap();
        let second = (1.0f64.exp() + 1.0).ln() - 1.0;
        let expected = (200.0 + second) / 2.0;
        assert!(
            (loss - expected).abs() < 1e-4,
            "{dtype:?}: {loss} vs {expected}"
        );
    }
    // Every target ignored: 0/0, as PyTorch.
    let logits = Tensor::from_vec(vec![1.0f64, 2.0], &[1, 2]).unwrap();
    let targets = Tensor::from_vec(vec![-1.0f64], &[1]).unwrap();
    let loss = cross_entropy(&logits, &targets, Some(-1)).unwrap();
    assert!(loss.to_f64().unwrap().is_nan());
}

#[test]
fn cross_entropy_equals_the_mean_negative_log_likelihood_of_kept_targets() {
    let logits = Tensor::from_vec(
        vec![1.0f64, 2.0, 3.0, 0.5, 0.5, 0.5, -1.0, 0.0, 1.0],
        &[3, 3],
    )
    .unwrap();
    let targets = Tensor::from_vec(vec![2.0f64, -100.0, 0.0], &[3]).unwrap();
    let loss = cross_entropy(&logits, &targets, Some(-100))
        .unwrap()
        .to_f64()
        .unwrap();
    let nll =
        |row: [f64; 3], t: usize| -> f64 { row.iter().map(|x| x.exp()).sum::<f64>().ln() - row[t] };
    let expected = (nll([1.0, 2.0, 3.0], 2) + nll([-1.0, 0.0, 1.0], 0)) / 2.0;
    assert!((loss - expected).abs() < 1e-12, "{loss} vs {expected}");
    let bad = Tensor::from_vec(vec![3.0f64, 0.0, 0.0], &[3]).unwrap();
    let err = cross_entropy(&logits, &bad, None).unwrap_err().to_string();
    assert!(
        err.contains("cross_entropy") && err.contains("target 3"),
        "{err}"
    );
}

#[test]
fn causal_attention_gradients_to_second_order() {
    let mut rng = Rng::new(2);
    let qkv: Vec<Tensor> = (0..3).map(|_| randn(&[2, 4, 3], &mut rng)).collect();
    gradcheck(
        |x| causal_attention(&x[0], &x[1], &x[2]),
        &qkv,
        &second_order(),
    )
    .unwrap();
}

/// `attention_packed` spelled out: split the heads, `softmax(q kᵀ / sqrt(d)) v`
/// (masked with -inf above the diagonal when causal), join the heads.
fn attention_by_heads(qkv: &Tensor, h: usize, causal: bool) -> Tensor {
    let (b, t, c) = (qkv.shape()[0], qkv.shape()[1], qkv.shape()[2] / 3);
    let heads = qkv
        .reshape([b, t, 3, h, c / h])
        .unwrap()
        .permute([2, 0, 3, 1, 4])
        .unwrap();
    let part = |i| heads.narrow(0, i, 1).unwrap().squeeze(0).unwrap();
    let (q, k, v) = (part(0), part(1), part(2));
    let y = if causal {
        causal_attention(&q, &k, &v).unwrap()
    } else {
        let scale = 1.0 / ((c / h) as f64).sqrt();
        let s = q.matmul(&k.transpose(-2, -1).unwrap()).unwrap();
        s.mul_scalar(scale).softmax(-1).unwrap().matmul(&v).unwrap()
    };
    y.permute([0, 2, 1, 3]).unwrap().reshape([b, t, c]).unwrap()
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_vec_f64(), b.to_vec_f64());
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-30);
    a.iter()
        .zip(&b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn packed_attention_equals_attention_by_heads_with_its_gradient() {
    let mut rng = Rng::new(11);
    // Lengths below, at and across the causal kernel's blocks of 32 rows.
    for (b, t, h, d) in [(2, 37, 3, 4), (1, 1, 2, 3), (3, 32, 1, 8), (2, 70, 2, 5)] {
        for dtype in [DType::F64, DType::F32] {
            for causal in [true, false] {
                let qkv = Tensor::randn(&[b, t, 3 * h * d], dtype, &mut rng)
                    .mul_scalar(2.0)
                    .set_requires_grad(true);
                let seed = Tensor::randn(&[b, t, h * d], dtype, &mut rng);
                let got = attention_packed(&qkv, h, causal).unwrap();
                let want = attention_by_heads(&qkv, h, causal);
                let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
                let what = format!("b {b} t {t} h {h} d {d} {dtype:?} causal {causal}");
                assert_eq!(got.shape(), want.shape());
                let fwd = max_rel_diff(&got, &want);
                assert!(fwd < tol, "forward {what}: {fwd}");
                let g_got = got.backward_with_seed(&seed).unwrap();
                let g_want = want.backward_with_seed(&seed).unwrap();
                let (g_got, g_want) = (g_got.get(&qkv).unwrap(), g_want.get(&qkv).unwrap());
                let bwd = max_rel_diff(g_got, g_want);
                assert!(bwd < 10.0 * tol, "gradient {what}: {bwd}");
            }
        }
    }
}

#[test]
fn packed_attention_gradients_to_second_order() {
    let mut rng = Rng::new(12);
    for causal in [true, false] {
        // 35 positions: two causal blocks, the second partly filled.
        let qkv = randn(&[2, 35, 3 * 2 * 3], &mut rng);
        gradcheck(
            |x| attention_packed(&x[0], 2, causal),
            &[qkv],
            &second_order(),
        )
        .unwrap();
    }
}

/// Gradients of `f` at `xs` along `seed` by a training backward (the fused
/// kernels) and by a recorded one (the differentiable formulas).
fn fused_and_recorded(
    f: impl Fn(&[Tensor]) -> Tensor,
    xs: &[Tensor],
    seed: &Tensor,
) -> (Vec<Tensor>, Vec<Tensor>) {
    let refs: Vec<&Tensor> = xs.iter().collect();
    let fused = grad_of(&f(xs), &refs, Some(seed), false).unwrap();
    let recorded = grad_of(&f(xs), &refs, Some(seed), true).unwrap();
    (fused, recorded)
}

#[test]
fn fused_training_backwards_equal_the_recorded_formulas() {
    let mut rng = Rng::new(13);
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-11 } else { 2e-5 };
        let leaf = |shape: &[usize], rng: &mut Rng| {
            Tensor::randn(shape, dtype, rng).set_requires_grad(true)
        };
        // 300 rows of 128: above the kernels' parallel threshold, so the
        // weight and bias gradients are sums of per-task partials.
        for rows in [3, 300] {
            let x = Tensor::randn(&[rows, 128], dtype, &mut rng)
                .affine(3.0, 1.0)
                .set_requires_grad(true);
            let (w, b) = (leaf(&[128], &mut rng), leaf(&[128], &mut rng));
            let seed = Tensor::randn(&[rows, 128], dtype, &mut rng);
            type Norm = fn(&[Tensor]) -> Tensor;
            let cases: [(&str, Vec<Tensor>, Norm); 4] = [
                (
                    "weight and bias",
                    vec![x.clone(), w.clone(), b.clone()],
                    |v| v[0].layer_norm(Some(&v[1]), Some(&v[2]), 1e-5).unwrap(),
                ),
                ("weight", vec![x.clone(), w.clone()], |v| {
                    v[0].layer_norm(Some(&v[1]), None, 1e-5).unwrap()
                }),
                ("bias", vec![x.clone(), b.clone()], |v| {
                    v[0].layer_norm(None, Some(&v[1]), 1e-5).unwrap()
                }),
                ("plain", vec![x.clone()], |v| {
                    v[0].layer_norm(None, None, 1e-5).unwrap()
                }),
            ];
            for (name, xs, f) in cases {
                let (fused, recorded) = fused_and_recorded(f, &xs, &seed);
                for (i, (a, b)) in fused.iter().zip(&recorded).enumerate() {
                    let d = max_rel_diff(a, b);
                    assert!(
                        d < tol,
                        "layer_norm ({name}) input {i}, {rows} rows {dtype:?}: {d}"
                    );
                }
            }
        }
        let x = Tensor::randn(&[7, 50], dtype, &mut rng)
            .mul_scalar(3.0)
            .set_requires_grad(true);
        let seed = Tensor::randn(&[7, 50], dtype, &mut rng);
        type Act = fn(&[Tensor]) -> Tensor;
        // The training backwards of tanh, softmax and log-softmax reuse
        // the saved output; the recorded ones recompute it from x.
        let acts: [(&str, Act); 5] = [
            ("gelu", |v| v[0].gelu()),
            ("gelu_tanh", |v| v[0].gelu_tanh()),
            ("tanh", |v| v[0].tanh()),
            ("softmax", |v| v[0].softmax(-1).unwrap()),
            ("log_softmax", |v| v[0].log_softmax(0).unwrap()),
        ];
        for (name, f) in acts {
            let (fused, recorded) = fused_and_recorded(f, std::slice::from_ref(&x), &seed);
            let d = max_rel_diff(&fused[0], &recorded[0]);
            assert!(d < tol, "{name} {dtype:?}: {d}");
        }
    }
}

#[test]
fn packed_attention_refuses_bad_shapes_naming_them() {
    let bad = [
        (Tensor::zeros(&[4, 12], DType::F32), 2),
        (Tensor::zeros(&[1, 4, 12], DType::F32), 0),
        (Tensor::zeros(&[1, 4, 12], DType::F32), 3),
        (Tensor::zeros(&[1, 4, 10], DType::F32), 1),
    ];
    for (x, h) in bad {
        let msg = attention_packed(&x, h, true).unwrap_err().to_string();
        assert!(
            msg.contains("attention_packed") && msg.contains(&format!("{:?}", x.shape())),
            "{msg}"
        );
    }
}

#[test]
fn attention_output_never_depends_on_later_tokens() {
    let mut rng = Rng::new(3);
    let attn = CausalSelfAttention::new(8, 2, DType::F64, &mut rng).unwrap();
    let x = randn(&[1, 5, 8], &mut rng);
    let y = attn.forward(&x).unwrap();
    // Change only the last token: the first four outputs stay exactly the same.
    let bump = Tensor::zeros(&[1, 4, 8], DType::F64);
    let last = randn(&[1, 1, 8], &mut rng);
    let x2 = x.add(&Tensor::cat(&[&bump, &last], 1).unwrap()).unwrap();
    let y2 = attn.forward(&x2).unwrap();
    let head = |t: &Tensor| t.narrow(1, 0, 4).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(head(&y), head(&y2));
    assert_ne!(
        y.narrow(1, 4, 1).unwrap().to_vec_f64(),
        y2.narrow(1, 4, 1).unwrap().to_vec_f64()
    );
}

#[test]
fn layer_norm_and_rms_norm_gradients_to_second_order() {
    let mut rng = Rng::new(4);
    let x = randn(&[3, 6], &mut rng);
    let w = randn(&[6], &mut rng);
    let b = randn(&[6], &mut rng);
    let layer_norm = |xs: &[Tensor]| {
        // The module's normalisation (weight 1, bias 0), then a graph-input affine map.
        let ln = LayerNorm::new(6, 1e-5, true, DType::F64);
        ln.forward(&xs[0])?.mul(&xs[1])?.add(&xs[2])
    };
    gradcheck(layer_norm, &[x.clone(), w.clone(), b], &second_order()).unwrap();
    let rms = |xs: &[Tensor]| {
        RmsNorm::new(6, 1e-6, DType::F64)
            .forward(&xs[0])?
            .mul(&xs[1])
    };
    gradcheck(rms, &[x, w], &second_order()).unwrap();
}

#[test]
fn layer_norm_normalises_rows() {
    let mut rng = Rng::new(5);
    let x = randn(&[4, 16], &mut rng).mul_scalar(7.0).add_scalar(3.0);
    let y = LayerNorm::new(16, 1e-5, true, DType::F64)
        .forward(&x)
        .unwrap();
    let mean = y.mean(-1, false).unwrap().to_vec_f64();
    let var = y.var_correction(-1, 0, false).unwrap().to_vec_f64();
    assert!(mean.iter().all(|m| m.abs() < 1e-12), "{mean:?}");
    assert!(var.iter().all(|v| (v - 1.0).abs() < 1e-5), "{var:?}");
}

#[test]
fn mlp_and_linear_gradients_match_finite_differences() {
    let mut rng = Rng::new(6);
    let mlp = Mlp::new(4, 8, Activation::Gelu, DType::F64, &mut rng);
    let x = randn(&[3, 4], &mut rng);
    gradcheck(
        |xs| mlp.forward(&xs[0]),
        std::slice::from_ref(&x),
        &second_order(),
    )
    .unwrap();
    let relu = Mlp::new(4, 8, Activation::Relu, DType::F64, &mut rng);
    gradcheck(
        |xs| relu.forward(&xs[0]),
        &[x],
        &GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn gpt_gradient_reaches_every_parameter_and_matches_finite_differences() {
    let config = GptConfig {
        vocab_size: 7,
        n_layer: 2,
        n_head: 2,
        n_embd: 8,
        block_size: 5,
        ..GptConfig::default()
    };
    let model = Gpt::new(&config, DType::F64, &mut Rng::new(7)).unwrap();
    let ids = Tensor::from_indices(&[1, 2, 3, 4, 0, 6, 5, 4], &[2, 4], DType::F64).unwrap();
    let targets =
        Tensor::from_vec(vec![2.0f64, 3.0, 4.0, -1.0, 6.0, 5.0, 4.0, 3.0], &[2, 4]).unwrap();
    let loss = model.loss(&ids, &targets).unwrap();
    let grads = loss.backward().unwrap();
    let params = model.named_parameters();
    assert_eq!(params.len(), 2 + 2 * 12 + 2 + 1);
    for (name, var) in &params {
        let g = grads
            .get(var.tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        // Directional derivative against a finite difference of the loss.
        let v = Tensor::randn(var.shape(), DType::F64, &mut Rng::new(name.len() as u64));
        let ad = g.mul(&v).unwrap().sum_all().to_f64().unwrap();
        let original = var.tensor().detach().copy();
        let at = |s: f64| {
            var.assign(&original.add(&v.mul_scalar(s)).unwrap())
                .unwrap();
            model.loss(&ids, &targets).unwrap().to_f64().unwrap()
        };
        let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
        var.assign(&original).unwrap();
        assert!(
            (ad - fd).abs() < 1e-6 * (1.0 + fd.abs()),
            "{name}: autodiff {ad}, finite differences {fd}"
        );
    }
}

#[test]
fn gpt_loss_and_grads_in_slices_equal_the_whole_batch() {
    // Tied weights, 5 rows in 3 slices of 1, 2 and 2 rows; the second slice
    // has one counted target of 8 and the third none at all, so a slice
    // weighted by rows instead of counted targets, or a NaN from an empty
    // slice, shows up in the loss and in every gradient.
    let config = GptConfig {
        vocab_size: 7,
        n_layer: 2,
        n_head: 2,
        n_embd: 8,
        block_size: 4,
        tie_weights: true,
        ..GptConfig::default()
    };
    let model = Gpt::new(&config, DType::F64, &mut Rng::new(3)).unwrap();
    let ids: Vec<usize> = (0..20).map(|i| (i * 5 + 1) % 7).collect();
    let ids = Tensor::from_indices(&ids, &[5, 4], DType::F64).unwrap();
    let mut y: Vec<f64> = (0..20).map(|i| ((i * 3 + 2) % 7) as f64).collect();
    for (i, v) in y.iter_mut().enumerate() {
        if i >= 4 && i != 9 {
            *v = -1.0;
        }
    }
    let y = Tensor::from_vec(y, &[5, 4]).unwrap();
    let loss = model.loss(&ids, &y).unwrap();
    let whole = loss.to_f64().unwrap();
    let grads = loss.backward().unwrap();
    for pieces in [1, 2, 3, 9] {
        let (sliced, g) = model.loss_and_grads(&ids, &y, pieces).unwrap();
        assert!(
            (sliced - whole).abs() < 1e-13,
            "{pieces} pieces: loss {sliced} vs {whole}"
        );
        for (name, var) in model.named_parameters() {
            let (a, b) = (
                g.get(var.tensor()).unwrap(),
                grads.get(var.tensor()).unwrap(),
            );
            let d = max_rel_diff(a, b);
            assert!(
                d < 1e-12,
                "{pieces} pieces, {name}: max relative difference {d}"
            );
        }
    }
    // Mismatched targets are refused with both shapes.
    let e = model
        .loss_and_grads(&ids, &ids.narrow(0, 0, 2).unwrap(), 2)
        .unwrap_err();
    assert!(
        e.to_string().contains("[5, 4]") && e.to_string().contains("[2, 4]"),
        "{e}"
    );
}

#[test]
fn state_dict_round_trip_and_refusals() {
    let config = GptConfig {
        vocab_size: 5,
        n_layer: 1,
        n_head: 1,
        n_embd: 4,
        block_size: 3,
        ..GptConfig::default()
    };
    let a = Gpt::new(&config, DType::F32, &mut Rng::new(1)).unwrap();
    let b = Gpt::new(&config, DType::F32, &mut Rng::new(2)).unwrap();
    let ids = Tensor::from_indices(&[1, 2, 3], &[1, 3], DType::F32).unwrap();
    assert_ne!(
        a.forward(&ids).unwrap().to_vec::<f32>().unwrap(),
        b.forward(&ids).unwrap().to_vec::<f32>().unwrap()
    );
    b.load_state_dict(&a.state_dict()).unwrap();
    assert_eq!(
        a.forward(&ids).unwrap().to_vec::<f32>().unwrap(),
        b.forward(&ids).unwrap().to_vec::<f32>().unwrap()
    );

    let mut missing = a.state_dict();
    missing.retain(|(n, _)| n != "ln_f.bias");
    let err = b.load_state_dict(&missing).unwrap_err().to_string();
    assert!(err.contains("missing tensor 'ln_f.bias'"), "{err}");

    let mut extra = a.state_dict();
    extra.push((
        "blocks.7.mlp.fc.weight".into(),
        Tensor::zeros(&[1], DType::F32),
    ));
    let err = b.load_state_dict(&extra).unwrap_err().to_string();
    assert!(
        err.contains("unexpected tensor 'blocks.7.mlp.fc.weight'"),
        "{err}"
    );

    let wider = GptConfig {
        n_embd: 8,
        n_head: 2,
        ..config
    };
    let c = Gpt::new(&wider, DType::F32, &mut Rng::new(3)).unwrap();
    let err = c.load_state_dict(&a.state_dict()).unwrap_err().to_string();
    assert!(
        err.contains("'wte.weight' is [5, 4]") && err.contains("expects [5, 8]"),
        "{err}"
    );
}

#[test]
fn tied_weights_share_one_parameter() {
    let config = GptConfig {
        vocab_size: 5,
        n_layer: 1,
        n_head: 1,
        n_embd: 4,
        block_size: 3,
        tie_weights: true,
        ..GptConfig::default()
    };
    let model = Gpt::new(&config, DType::F64, &mut Rng::new(1)).unwrap();
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&"wte.weight".to_string())
            && !names.iter().any(|n| n.starts_with("lm_head"))
    );
    let ids = Tensor::from_indices(&[1, 2], &[1, 2], DType::F64).unwrap();
    let targets = Tensor::from_vec(vec![2.0f64, 3.0], &[1, 2]).unwrap();
    let grads = model.loss(&ids, &targets).unwrap().backward().unwrap();
    // The tied embedding receives gradient from the head too: rows of tokens
    // never used as input still get one.
    let g = grads
        .get(model.wte.weight.tensor())
        .unwrap()
        .narrow(0, 4, 1)
        .unwrap()
        .to_vec_f64();
    assert!(g.iter().any(|x| *x != 0.0), "{g:?}");
}

#[test]
fn bad_configurations_are_refused_with_the_reason() {
    let config = GptConfig {
        n_embd: 10,
        n_head: 3,
        ..GptConfig::default()
    };
    let err = Gpt::new(&config, DType::F32, &mut Rng::new(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("n_embd (10) must be divisible by n_head (3)"),
        "{err}"
    );
    let small = GptConfig {
        vocab_size: 5,
        n_layer: 1,
        n_head: 1,
        n_embd: 4,
        block_size: 3,
        ..GptConfig::default()
    };
    let model = Gpt::new(&small, DType::F32, &mut Rng::new(0)).unwrap();
    let long = Tensor::zeros(&[1, 4], DType::F32);
    let err = model.forward(&long).unwrap_err().to_string();
    assert!(
        err.contains("sequence length 4 exceeds block_size 3"),
        "{err}"
    );
    let err = model
        .forward(&Tensor::full(&[1, 2], 9.0, DType::F32))
        .unwrap_err()
        .to_string();
    assert!(err.contains("embedding"), "{err}");
}

#[test]
fn greedy_generation_is_deterministic_and_sampling_follows_the_seed() {
    let config = GptConfig {
        vocab_size: 9,
        n_layer: 1,
        n_head: 2,
        n_embd: 8,
        block_size: 4,
        ..GptConfig::default()
    };
    let model = Gpt::new(&config, DType::F32, &mut Rng::new(0)).unwrap();
    let prompt = Tensor::from_indices(&[1, 2], &[1, 2], DType::F32).unwrap();
    let greedy = |seed| {
        model
            .generate(&prompt, 6, 0.0, None, &mut Rng::new(seed))
            .unwrap()
            .to_vec_f64()
    };
    assert_eq!(greedy(1), greedy(2));
    assert_eq!(
        greedy(1).len(),
        8,
        "context is cropped to block_size, the output is not"
    );
    let sample = |seed| {
        model
            .generate(&prompt, 30, 5.0, Some(3), &mut Rng::new(seed))
            .unwrap()
            .to_vec_f64()
    };
    assert_eq!(sample(4), sample(4));
    assert_ne!(sample(4), sample(5));
}

#[test]
fn dropout_zeroes_a_fraction_p_and_keeps_the_mean_in_training_only() {
    let mut d = Dropout::new(0.25, 9).unwrap();
    let x = Tensor::ones(&[100_000], DType::F64);
    let y = d.forward(&x).unwrap().to_vec_f64();
    let zeros = y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.25).abs() < 0.01, "{zeros}");
    assert!(y
        .iter()
        .all(|v| *v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-12));
    d.set_training(false);
    assert_eq!(d.forward(&x).unwrap().to_vec_f64(), x.to_vec_f64());
    assert!(Dropout::new(1.0, 0).is_err());
}

#[test]
fn var_assign_is_seen_through_every_handle_and_checks_shapes() {
    let lin = Linear::new(2, 3, true, DType::F32, &mut Rng::new(0));
    let handle: Var = lin.weight.clone();
    lin.weight
        .assign(&Tensor::ones(&[3, 2], DType::F32))
        .unwrap();
    assert_eq!(handle.tensor().to_vec::<f32>().unwrap(), vec![1.0; 6]);
    let err = handle
        .assign(&Tensor::ones(&[2, 3], DType::F32))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[3, 2]") && err.contains("[2, 3]"), "{err}");
}

#[test]
fn char_text_refuses_empty_short_and_binary_input() {
    let err = CharText::from_text("", 8, "empty.txt")
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty.txt") && err.contains("empty"), "{err}");
    let err = CharText::from_text("abcdefghij", 8, "short.txt")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("short.txt") && err.contains("too short"),
        "{err}"
    );
    let dir = std::env::temp_dir().join(format!("ricci-nn-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("data.bin");
    std::fs::write(&bin, [0u8, 159, 146, 150, 1, 2, 3]).unwrap();
    let err = CharText::from_file(&bin, 2).unwrap_err().to_string();
    assert!(err.contains("data.bin") && err.contains("binary"), "{err}");
    std::fs::write(&bin, [b'a', 0xFF, b'b']).unwrap();
    let err = CharText::from_file(&bin, 2).unwrap_err().to_string();
    assert!(
        err.contains("not UTF-8") && err.contains("offset 1"),
        "{err}"
    );
    let err = CharText::from_file(dir.join("missing.txt"), 2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.txt"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
