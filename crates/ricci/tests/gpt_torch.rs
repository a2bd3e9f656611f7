//! ricci's GPT against PyTorch, the llm.c way: `scripts/fixtures/gpt.py`
//! built the same model in PyTorch (config tiny: 4 layers, 4 heads, 128
//! wide, context 64, batch 12), saved its initial weights, 11 batches, the
//! logits, the loss, every gradient and the losses of 10 AdamW steps with
//! gradient clipping. Here the weights are loaded into ricci's model and
//! every one of those numbers is recomputed.

use ricci::io::read_safetensors;
use ricci::models::gpt::{Gpt, GptConfig};
use ricci::nn::Module;
use ricci::optim::{clip_grad_norm, AdamConfig, AdamW, Optimizer};
use ricci::{DType, Rng, Tensor};

struct Fixture {
    tensors: Vec<(String, Tensor)>,
}

impl Fixture {
    fn load() -> Fixture {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gpt/gpt_tiny.safetensors"
        );
        Fixture {
            tensors: read_safetensors(path).expect("fixture made by scripts/fixtures/gpt.py"),
        }
    }

    fn get(&self, name: &str) -> &Tensor {
        &self
            .tensors
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("fixture has no {name}"))
            .1
    }

    fn with_prefix(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(prefix).map(|n| (n.to_string(), t.clone())))
            .collect()
    }

    /// Batch `i` as `(inputs, targets)`, `[12, 64]` each.
    fn batch(&self, i: usize) -> (Tensor, Tensor) {
        let pick = |name: &str| self.get(name).narrow(0, i, 1).unwrap().squeeze(0).unwrap();
        (pick("batch.x"), pick("batch.y"))
    }
}

fn model(fx: &Fixture) -> Gpt {
    let config = GptConfig {
        vocab_size: 46,
        n_layer: 4,
        n_head: 4,
        n_embd: 128,
        block_size: 64,
        ..GptConfig::default()
    };
    let model = Gpt::new(&config, DType::F32, &mut Rng::new(0)).unwrap();
    model.load_state_dict(&fx.with_prefix("param.")).unwrap();
    model
}

/// `‖a - b‖ / ‖b‖` over all elements, in f64.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_vec_f64(), b.to_vec_f64());
    let diff: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm
}

#[test]
fn logits_loss_and_every_gradient_match_pytorch() {
    let fx = Fixture::load();
    let model = model(&fx);
    let (x, y) = fx.batch(0);
    let logits = model.forward(&x).unwrap();
    let e = rel_err(&logits, fx.get("ref.logits"));
    assert!(e < 1e-4, "logits differ from PyTorch's by {e:e}");
    let loss = ricci::nn::cross_entropy(&logits, &y, Some(-1)).unwrap();
    let (ours, theirs) = (loss.to_f64().unwrap(), fx.get("ref.loss").to_vec_f64()[0]);
    assert!(
        (ours - theirs).abs() / theirs < 1e-5,
        "loss {ours} vs PyTorch {theirs}"
    );

    let grads = loss.backward().unwrap();
    let params = model.named_parameters();
    assert_eq!(
        params.len(),
        fx.with_prefix("grad.").len(),
        "one gradient per parameter"
    );
    for (name, var) in &params {
        let g = grads
            .get(var.tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let e = rel_err(g, fx.get(&format!("grad.{name}")));
        assert!(
            e < 1e-4,
            "gradient of {name} differs from PyTorch's by {e:e}"
        );
    }
}

#[test]
fn ten_adamw_steps_with_clipping_follow_pytorch() {
    let fx = Fixture::load();
    let model = model(&fx);
    let params = model.named_parameters();
    let vars = model.parameters();
    let mut opt = AdamW::new(
        params,
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        },
    );
    let reference = fx.get("ref.losses").to_vec_f64();
    let norms = fx.get("ref.grad_norms").to_vec_f64();
    for step in 0..10 {
        let (x, y) = fx.batch(step);
        let loss = model.loss(&x, &y).unwrap();
        let value = loss.to_f64().unwrap();
        assert!(
            (value - reference[step]).abs() / reference[step] < 1e-4,
            "step {step}: loss {value} vs PyTorch {}",
            reference[step]
        );
        let mut grads = loss.backward().unwrap();
        let norm = clip_grad_norm(&mut grads, &vars, 1.0).unwrap();
        assert!(
            (norm - norms[step]).abs() / norms[step] < 1e-3,
            "step {step}: grad norm {norm} vs {}",
            norms[step]
        );
        opt.step(&grads).unwrap();
    }
    let (x, y) = fx.batch(10);
    let after = model.loss(&x, &y).unwrap().to_f64().unwrap();
    let theirs = fx.get("ref.losses_after").to_vec_f64()[0];
    assert!(
        (after - theirs).abs() / theirs < 1e-4,
        "loss after 10 steps {after} vs PyTorch {theirs}"
    );
}
