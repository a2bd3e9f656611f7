//! Structured linear layers: low-rank truncation against the singular
//! values it must keep, block-diagonal layers against their dense
//! equivalent, and LoRA adapters (frozen base, merge, a fine-tune with
//! under 2% of the parameters trainable that lowers the loss on new text).

use ricci::autograd::{gradcheck, GradcheckOptions};
use ricci::data::{CharText, Split};
use ricci::linalg;
use ricci::models::gpt::{Gpt, GptConfig};
use ricci::nn::{lora_parameters, BlockDiagonalLinear, Linear, LowRankLinear, Module, RankChoice};
use ricci::optim::{AdamConfig, AdamW, Optimizer};
use ricci::{DType, Rng, Tensor};

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max_all().unwrap().to_f64().unwrap()
}

#[test]
fn low_rank_truncation_keeps_the_leading_singular_values() {
    let mut rng = Rng::new(0);
    let layer = Linear::new(40, 24, true, DType::F64, &mut rng);
    let s = linalg::svdvals(layer.weight.tensor())
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let total: f64 = s.iter().map(|x| x * x).sum();
    for r in [1, 5, 24] {
        let (low, t) = LowRankLinear::from_linear(&layer, RankChoice::Rank(r)).unwrap();
        assert_eq!((low.rank(), t.rank), (r, r));
        // Eckart-Young: the error is exactly the discarded singular values.
        let tail: f64 = s[r..].iter().map(|x| x * x).sum();
        let err = layer.weight.tensor().sub(&low.weight().unwrap()).unwrap();
        let fro = err.square().sum_all().to_f64().unwrap().sqrt();
        assert!(
            (fro - tail.sqrt()).abs() < 1e-10,
            "rank {r}: {fro} vs {}",
            tail.sqrt()
        );
        assert!((t.relative_error - (tail / total).sqrt()).abs() < 1e-12);
        // The kept part has exactly the leading singular values.
        let kept = linalg::svdvals(&low.weight().unwrap())
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        for i in 0..r {
            assert!((kept[i] - s[i]).abs() < 1e-10);
        }
        // The layer computes x (U V)ᵀ + b, with the bias kept.
        let x = Tensor::randn(&[3, 40], DType::F64, &mut rng);
        let want = ricci::linear(
            &x,
            &low.weight().unwrap(),
            Some(layer.bias.as_ref().unwrap().tensor()),
        )
        .unwrap();
        assert!(max_abs(&low.forward(&x).unwrap().sub(&want).unwrap()) < 1e-12);
        assert_eq!(low.num_parameters(), r * (40 + 24) + 24);
    }
    // An energy fraction picks the smallest rank that holds it.
    let (_, t) = LowRankLinear::from_linear(&layer, RankChoice::Energy(0.9)).unwrap();
    let energy = |r: usize| s[..r].iter().map(|x| x * x).sum::<f64>() / total;
    assert!(
        energy(t.rank) >= 0.9 && energy(t.rank - 1) < 0.9,
        "rank {}",
        t.rank
    );
    assert!((t.energy - energy(t.rank)).abs() < 1e-12);
}

#[test]
fn low_rank_recovers_a_planted_rank_exactly() {
    let mut rng = Rng::new(1);
    let w = Tensor::randn(&[30, 3], DType::F64, &mut rng)
        .matmul(&Tensor::randn(&[3, 20], DType::F64, &mut rng))
        .unwrap();
    let layer = Linear::from_weights(&w, None).unwrap();
    let (low, t) = LowRankLinear::from_linear(&layer, RankChoice::Energy(1.0)).unwrap();
    assert_eq!(t.rank, 3);
    assert!(max_abs(&low.weight().unwrap().sub(&w).unwrap()) < 1e-10 * max_abs(&w));
}

#[test]
fn low_rank_refuses_bad_ranks() {
    let mut rng = Rng::new(2);
    let layer = Linear::new(8, 4, false, DType::F32, &mut rng);
    for (choice, needle) in [
        (RankChoice::Rank(0), "rank 0"),
        (
            RankChoice::Rank(5),
            "rank 5 is out of range for a matrix of shape [4, 8]",
        ),
        (RankChoice::Energy(0.0), "energy fraction"),
        (RankChoice::Energy(1.5), "energy fraction"),
    ] {
        let e = LowRankLinear::from_linear(&layer, choice).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
    assert!(LowRankLinear::new(8, 4, 5, true, DType::F32, &mut rng).is_err());
}

#[test]
fn block_diagonal_equals_its_dense_matrix_and_has_exact_gradients() {
    let mut rng = Rng::new(3);
    let layer = BlockDiagonalLinear::new(12, 9, 3, true, DType::F64, &mut rng).unwrap();
    let dense = Linear::from_weights(
        &layer.to_dense().unwrap(),
        Some(layer.bias.as_ref().unwrap().tensor()),
    )
    .unwrap();
    // Off-block entries of the dense matrix are zero.
    let d = layer.to_dense().unwrap().to_vec::<f64>().unwrap();
    for (k, v) in d.iter().enumerate() {
        let (row, col) = (k / 12, k % 12);
        if row / 3 != col / 4 {
            assert_eq!(*v, 0.0);
        }
    }
    let x = Tensor::randn(&[2, 5, 12], DType::F64, &mut rng);
    let diff = layer
        .forward(&x)
        .unwrap()
        .sub(&dense.forward(&x).unwrap())
        .unwrap();
    assert!(max_abs(&diff) < 1e-12);
    // Its gradients are the dense layer's, restricted to the blocks.
    let g_block = layer
        .forward(&x)
        .unwrap()
        .tanh()
        .sum_all()
        .backward()
        .unwrap();
    let g_dense = dense
        .forward(&x)
        .unwrap()
        .tanh()
        .sum_all()
        .backward()
        .unwrap();
    let gb = g_block.get(layer.weight.tensor()).unwrap();
    let gd = g_dense.get(dense.weight.tensor()).unwrap();
    for k in 0..3 {
        let want = gd.narrow(0, 3 * k, 3).unwrap().narrow(1, 4 * k, 4).unwrap();
        let got = gb.narrow(0, k, 1).unwrap().squeeze(0).unwrap();
        assert!(max_abs(&got.sub(&want).unwrap()) < 1e-12);
    }
    let db = g_block.get(layer.bias.as_ref().unwrap().tensor()).unwrap();
    let dd = g_dense.get(dense.bias.as_ref().unwrap().tensor()).unwrap();
    assert!(max_abs(&db.sub(dd).unwrap()) < 1e-12);
    // And second order, through the functional form of its forward.
    gradcheck(
        |t| {
            let y = t[0]
                .reshape([10, 3, 4])?
                .permute([1, 0, 2])?
                .matmul(&t[1].transpose(1, 2)?)?
                .permute([1, 0, 2])?
                .reshape([2, 5, 9])?;
            Ok(y.tanh().sum_all())
        },
        &[x.clone(), layer.weight.tensor().detach()],
        &GradcheckOptions {
            second_order: true,
            ..Default::default()
        },
    )
    .unwrap();
    let e = BlockDiagonalLinear::new(10, 9, 3, true, DType::F64, &mut rng).unwrap_err();
    assert!(e.to_string().contains("3 equal blocks"), "{e}");
    let e = layer
        .forward(&Tensor::zeros(&[2, 11], DType::F64))
        .unwrap_err();
    assert!(e.to_string().contains("[2, 11]"), "{e}");
}

#[test]
fn lora_merged_and_unmerged_layers_agree_and_only_adapters_get_gradients() {
    let mut rng = Rng::new(4);
    let mut layer = Linear::new(16, 12, true, DType::F64, &mut rng);
    layer.add_lora(3, 6.0, &mut rng).unwrap();
    let lora = layer.lora.clone().unwrap();
    // Train-like state: B no longer zero.
    lora.b
        .assign(&Tensor::randn(&[12, 3], DType::F64, &mut rng))
        .unwrap();
    let x = Tensor::randn(&[7, 16], DType::F64, &mut rng);
    let adapted = layer.forward(&x).unwrap();
    // By hand: x Wᵀ + b + (α/r) x Aᵀ Bᵀ.
    let want = ricci::linear(
        &x,
        layer.weight.tensor(),
        Some(layer.bias.as_ref().unwrap().tensor()),
    )
    .unwrap()
    .add(
        &x.matmul(&lora.a.tensor().t().unwrap())
            .unwrap()
            .matmul(&lora.b.tensor().t().unwrap())
            .unwrap()
            .mul_scalar(2.0),
    )
    .unwrap();
    assert!(max_abs(&adapted.sub(&want).unwrap()) < 1e-12);

    let grads = adapted.square().sum_all().backward().unwrap();
    assert!(grads.get(layer.weight.tensor()).is_none());
    assert!(grads.get(layer.bias.as_ref().unwrap().tensor()).is_none());
    assert!(grads.get(lora.a.tensor()).is_some() && grads.get(lora.b.tensor()).is_some());

    let names: Vec<String> = layer
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["weight", "bias", "lora_a", "lora_b"]);
    layer.merge_lora().unwrap();
    assert!(layer.lora.is_none());
    let merged = layer.forward(&x).unwrap();
    assert!(max_abs(&merged.sub(&adapted).unwrap()) < 1e-12);

    let e = Linear::new(4, 3, false, DType::F32, &mut rng)
        .add_lora(4, 1.0, &mut rng)
        .unwrap_err();
    assert!(e.to_string().contains("rank 4"), "{e}");
}

/// Text of words drawn from `words`, seeded.
fn text(words: &[&str], n: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| words[rng.below(words.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

fn val_loss(model: &Gpt, data: &CharText, block: usize) -> f64 {
    let _off = ricci::no_grad();
    let mut rng = Rng::new(99);
    let mut total = 0.0;
    for _ in 0..8 {
        let (x, y) = data
            .batch(Split::Val, 16, block, &mut rng, DType::F32)
            .unwrap();
        total += model.loss(&x, &y).unwrap().to_f64().unwrap();
    }
    total / 8.0
}

fn train(
    model: &Gpt,
    params: Vec<(String, ricci::nn::Var)>,
    data: &CharText,
    steps: usize,
    lr: f64,
) {
    let vars: Vec<_> = params.iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(
        params,
        AdamConfig {
            lr,
            weight_decay: 0.0,
            ..AdamConfig::default()
        },
    );
    let mut rng = Rng::new(7);
    for _ in 0..steps {
        let (x, y) = data
            .batch(Split::Train, 16, 32, &mut rng, DType::F32)
            .unwrap();
        let grads = model.loss(&x, &y).unwrap().backward().unwrap();
        let _ = &vars;
        opt.step(&grads).unwrap();
    }
}

#[test]
fn lora_fine_tune_with_under_2_percent_trainable_lowers_loss_on_new_text() {
    // Base text and new text share one alphabet but not their words.
    let base_words = [
        "the", "cat", "sat", "on", "mat", "a", "hat", "and", "dog", "ran",
    ];
    let new_words = ["to", "road", "tan", "goat", "cod", "note", "hen", "den"];
    let alphabet_check = |w: &[&str]| w.concat().chars().all(|c| "thecatsonmaandgr".contains(c));
    assert!(alphabet_check(&base_words) && alphabet_check(&new_words));
    // The base corpus holds every character of the new one (so one vocabulary serves).
    let base_text = format!("{} rode goat", text(&base_words, 4000, 1));
    let base = CharText::from_text(&base_text, 32, "base").unwrap();
    let new = CharText::from_text_with_vocab(&text(&new_words, 3000, 2), 32, "new", &base.vocab())
        .unwrap();

    let config = GptConfig {
        vocab_size: base.vocab_size(),
        n_layer: 2,
        n_head: 4,
        n_embd: 128,
        block_size: 32,
        ..GptConfig::default()
    };
    let mut model = Gpt::new(&config, DType::F32, &mut Rng::new(0)).unwrap();
    train(&model, model.named_parameters(), &base, 150, 3e-3);
    let before = val_loss(&model, &new, 32);
    let frozen: Vec<(String, Vec<f32>)> = model
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, t.to_vec::<f32>().unwrap()))
        .collect();

    model.add_lora(1, 2.0, &mut Rng::new(5)).unwrap();
    let adapters = lora_parameters(&model);
    let trainable: usize = adapters.iter().map(|(_, v)| v.numel()).sum();
    let fraction = trainable as f64 / frozen.iter().map(|(_, v)| v.len()).sum::<usize>() as f64;
    assert!(fraction < 0.02, "{:.2}% trainable", 100.0 * fraction);
    train(&model, adapters, &new, 150, 1e-2);
    let after = val_loss(&model, &new, 32);
    assert!(
        after < before - 0.1,
        "validation loss on the new text {before} -> {after}"
    );
    // The base model is untouched.
    for (name, values) in &frozen {
        let now = model
            .state_dict()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1;
        assert_eq!(&now.to_vec::<f32>().unwrap(), values, "{name} changed");
    }
    // Merged, the model computes the same loss with no adapters left.
    model.merge_lora().unwrap();
    assert!(lora_parameters(&model).is_empty());
    assert!((val_loss(&model, &new, 32) - after).abs() < 1e-4);
}
