//! SGD, Adam and AdamW trajectories and `clip_grad_norm` against PyTorch.
//!
//! `tests/fixtures/optim.json` is written by `scripts/fixtures/optim.py`
//! with `torch.optim` in float64 (`foreach=False`). Two parameters start
//! from the same values in every case and receive the same six fixed
//! gradients; the fixture holds the parameters after each step. Here the
//! ricci optimizer with the same hyper-parameters must land on the same
//! values after every step: to 1e-12 in f64 and 1e-5 in f32, relative to
//! the tensor's largest expected magnitude (absolute when that is below 1).
//! Resuming from `state()` / `load_state()` halfway must continue
//! bit for bit as the optimizer that never stopped.

use std::sync::OnceLock;

use ricci::autograd::Grads;
use ricci::nn::Var;
use ricci::optim::{clip_grad_norm, Adam, AdamConfig, AdamW, Optimizer, Sgd, SgdConfig};
use ricci::{DType, Tensor};
use serde::Deserialize;

const TOL_F64: f64 = 1e-12;
const TOL_F32: f64 = 1e-5;
const STEPS: usize = 6;
const NAMES: [&str; 2] = ["weight", "bias"];

/// A tensor as the fixture stores it: its shape and row-major data.
#[derive(Deserialize)]
struct Fixture {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Fixture {
    fn tensor(&self, dtype: DType) -> Tensor {
        Tensor::from_vec(self.data.clone(), &self.shape)
            .expect("fixture data matches its shape")
            .to_dtype(dtype)
    }
}

/// Hyper-parameters of either optimizer family; the ones a family does not
/// have are absent from its cases.
#[derive(Deserialize)]
struct Config {
    lr: f64,
    weight_decay: f64,
    #[serde(default)]
    momentum: f64,
    #[serde(default)]
    dampening: f64,
    #[serde(default)]
    nesterov: bool,
    #[serde(default)]
    beta1: f64,
    #[serde(default)]
    beta2: f64,
    #[serde(default)]
    eps: f64,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    optimizer: String,
    config: Config,
    /// `steps[t][name]`: the parameter after step `t + 1`.
    steps: Vec<std::collections::HashMap<String, Fixture>>,
}

#[derive(Deserialize)]
struct ClipCase {
    max_norm: f64,
    grads: Vec<Fixture>,
    total_norm: f64,
    clipped: Vec<Fixture>,
}

#[derive(Deserialize)]
struct File {
    initial: std::collections::HashMap<String, Fixture>,
    grads: std::collections::HashMap<String, Vec<Fixture>>,
    cases: Vec<Case>,
    clip: Vec<ClipCase>,
}

fn fixture() -> &'static File {
    static FILE: OnceLock<File> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/optim.json");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run scripts/fixtures/optim.py)"));
        serde_json::from_str(&text).expect("optim.json")
    })
}

/// Fresh parameters holding the fixture's initial values, as `dtype`.
fn initial_params(dtype: DType) -> Vec<(String, Var)> {
    NAMES
        .iter()
        .map(|&n| (n.to_string(), Var::new(&fixture().initial[n].tensor(dtype))))
        .collect()
}

/// The ricci optimizer of `case` over `params`.
fn optimizer(case: &Case, params: Vec<(String, Var)>) -> Box<dyn Optimizer> {
    let c = &case.config;
    let adam = AdamConfig {
        lr: c.lr,
        beta1: c.beta1,
        beta2: c.beta2,
        eps: c.eps,
        weight_decay: c.weight_decay,
    };
    match case.optimizer.as_str() {
        "sgd" => {
            let config = SgdConfig {
                lr: c.lr,
                momentum: c.momentum,
                dampening: c.dampening,
                weight_decay: c.weight_decay,
                nesterov: c.nesterov,
            };
            Box::new(Sgd::new(params, config).expect("valid SGD config"))
        }
        "adam" => Box::new(Adam::new(params, adam)),
        "adamw" => Box::new(AdamW::new(params, adam)),
        other => panic!("case {:?}: unknown optimizer {other:?}", case.name),
    }
}

/// The fixture's gradients of step `t` for `params`, as their dtype.
fn grads_at(params: &[(String, Var)], t: usize) -> Grads {
    let mut grads = Grads::default();
    for (name, var) in params {
        let g = fixture().grads[name][t].tensor(var.tensor().dtype());
        grads.insert(var.tensor(), g);
    }
    grads
}

/// Largest error of `actual` against `expected`, over the tolerance scale
/// (the largest expected magnitude, or 1 when that is smaller); NaN if
/// any element is NaN.
fn scaled_error(actual: &Tensor, expected: &Fixture) -> f64 {
    assert_eq!(actual.shape(), &expected.shape[..], "shape");
    let scale = expected.data.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    actual
        .to_vec_f64()
        .iter()
        .zip(&expected.data)
        .map(|(a, e)| (a - e).abs() / scale)
        // Not f64::max, which would drop a NaN.
        .fold(0.0, |worst, err| {
            if err > worst || err.is_nan() {
                err
            } else {
                worst
            }
        })
}

/// Runs every case in `dtype` and collects each step whose parameters are
/// off by more than `tol`, so one run reports every failing case.
fn trajectories_within(dtype: DType, tol: f64) {
    let mut failures = Vec::new();
    for case in &fixture().cases {
        let params = initial_params(dtype);
        let mut opt = optimizer(case, params.clone());
        for (t, expected) in case.steps.iter().enumerate() {
            opt.step(&grads_at(&params, t)).expect("step");
            for (name, var) in &params {
                let err = scaled_error(var.tensor(), &expected[name]);
                if err.is_nan() || err > tol {
                    failures.push(format!(
                        "{} step {} {name}: error {err:.3e} > {tol:.0e}",
                        case.name,
                        t + 1
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{dtype:?}:\n{}", failures.join("\n"));
}

#[test]
fn sgd_adam_adamw_match_torch_every_step_f64() {
    assert_eq!(fixture().cases.len(), 8);
    assert!(fixture().cases.iter().all(|c| c.steps.len() == STEPS));
    trajectories_within(DType::F64, TOL_F64);
}

#[test]
fn sgd_adam_adamw_match_torch_every_step_f32() {
    trajectories_within(DType::F32, TOL_F32);
}

fn bits(params: &[(String, Var)]) -> Vec<u64> {
    params
        .iter()
        .flat_map(|(_, v)| v.tensor().to_vec_f64())
        .map(f64::to_bits)
        .collect()
}

/// Three steps, `state()`, a fresh optimizer on copies of the parameters
/// that `load_state()`s it, then three more steps on both.
fn resume_is_bit_identical(dtype: DType) {
    for case in &fixture().cases {
        let params = initial_params(dtype);
        let mut opt = optimizer(case, params.clone());
        for t in 0..3 {
            opt.step(&grads_at(&params, t)).expect("step");
        }
        let copies: Vec<(String, Var)> = params
            .iter()
            .map(|(n, v)| (n.clone(), Var::new(v.tensor())))
            .collect();
        let mut resumed = optimizer(case, copies.clone());
        resumed.load_state(&opt.state()).expect("load_state");
        // Control: without the state, the stateful optimizers go elsewhere,
        // so equality below is owed to the loaded state.
        let fresh_copies: Vec<(String, Var)> = params
            .iter()
            .map(|(n, v)| (n.clone(), Var::new(v.tensor())))
            .collect();
        let mut fresh = optimizer(case, fresh_copies.clone());
        for t in 3..STEPS {
            opt.step(&grads_at(&params, t)).expect("step");
            resumed.step(&grads_at(&copies, t)).expect("resumed step");
            fresh.step(&grads_at(&fresh_copies, t)).expect("fresh step");
        }
        assert_eq!(
            bits(&params),
            bits(&copies),
            "{} {dtype:?}: resumed run differs",
            case.name
        );
        let stateless = case.optimizer == "sgd" && case.config.momentum == 0.0;
        if !stateless {
            assert_ne!(
                bits(&params),
                bits(&fresh_copies),
                "{} {dtype:?}: state made no difference",
                case.name
            );
        }
        for (name, var) in &params {
            let err = scaled_error(var.tensor(), &case.steps[STEPS - 1][name]);
            let tol = if dtype == DType::F64 {
                TOL_F64
            } else {
                TOL_F32
            };
            assert!(
                err <= tol,
                "{} {dtype:?} {name}: error {err:.3e}",
                case.name
            );
        }
    }
}

#[test]
fn load_state_resumes_bit_identically_f64() {
    resume_is_bit_identical(DType::F64);
}

#[test]
fn load_state_resumes_bit_identically_f32() {
    resume_is_bit_identical(DType::F32);
}

fn clip_matches_torch(dtype: DType, tol: f64) {
    for case in &fixture().clip {
        let params: Vec<Var> = case
            .grads
            .iter()
            .map(|g| Var::new(&Tensor::zeros(&g.shape, dtype)))
            .collect();
        let mut grads = Grads::default();
        for (p, g) in params.iter().zip(&case.grads) {
            grads.insert(p.tensor(), g.tensor(dtype));
        }
        let total = clip_grad_norm(&mut grads, &params, case.max_norm).expect("clip_grad_norm");
        let err = (total - case.total_norm).abs() / case.total_norm.max(1.0);
        assert!(
            err <= tol,
            "max_norm {} {dtype:?}: norm {total} vs torch {}",
            case.max_norm,
            case.total_norm
        );
        for (i, (p, expected)) in params.iter().zip(&case.clipped).enumerate() {
            let g = grads.get(p.tensor()).expect("gradient kept");
            assert_eq!(g.dtype(), dtype);
            let err = scaled_error(g, expected);
            assert!(
                err <= tol,
                "max_norm {} {dtype:?} gradient {i}: error {err:.3e}",
                case.max_norm
            );
        }
    }
}

#[test]
fn clip_grad_norm_matches_torch_f64() {
    let clip = &fixture().clip;
    assert!(clip.iter().any(|c| c.total_norm > c.max_norm));
    assert!(clip.iter().any(|c| c.total_norm < c.max_norm));
    clip_matches_torch(DType::F64, TOL_F64);
}

#[test]
fn clip_grad_norm_matches_torch_f32() {
    clip_matches_torch(DType::F32, TOL_F32);
}
