//! A training run's directory: `config.json` (what was trained and how),
//! `checkpoint.safetensors` (model weights, PyTorch `state_dict` names),
//! `optimizer.safetensors` (AdamW state), `loss.csv` and `loss.png`.
//! Every file is written atomically (temporary file, then rename), and the
//! two tensor files carry the step they were written at, so a resume from a
//! torn pair is refused instead of silently mixing steps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ricci::models::gpt::{Gpt, GptConfig};
use ricci::nn::Module;
use ricci::{io, DType, Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::CliError;

/// What the model learns from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TaskSpec {
    /// The built-in addition task.
    Addition {
        digits: usize,
        n_test: usize,
        seed: u64,
    },
    /// Characters of a text file; `vocab` is kept so sampling needs no file.
    Text { path: PathBuf, vocab: String },
}

/// Optimisation settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainSpec {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub clip: f64,
    pub seed: u64,
    pub eval_every: usize,
}

/// A LoRA fine-tune: the run whose weights it adapts, and the adapters' shape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LoraSpec {
    pub base: PathBuf,
    pub rank: usize,
    pub alpha: f64,
}

/// `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    pub model: GptConfig,
    pub task: TaskSpec,
    pub train: TrainSpec,
    /// Present for `ricci train --lora` runs, whose directory holds
    /// `adapters.safetensors` instead of a checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraSpec>,
}

/// Where a run stands: saved in the checkpoint's metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Progress {
    pub step: usize,
    pub rng: Rng,
    pub train_seconds: f64,
}

pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

pub fn read_config(dir: &Path) -> Result<RunConfig, CliError> {
    let path = config_path(dir);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
    let config: RunConfig = serde_json::from_str(&text).map_err(|e| {
        CliError(format!(
            "{}: not a ricci training config: {e}",
            path.display()
        ))
    })?;
    config
        .model
        .validate()
        .map_err(|e| CliError(format!("{}: {e}", path.display())))?;
    Ok(config)
}

pub fn write_config(dir: &Path, config: &RunConfig) -> Result<(), CliError> {
    let json = serde_json::to_string_pretty(config)?;
    io::write_atomic(config_path(dir), format!("{json}\n").as_bytes())?;
    Ok(())
}

/// Writes the optimizer state, then the weights, both tagged with `progress`.
pub fn save(
    dir: &Path,
    model: &Gpt,
    optimizer_state: &[(String, Tensor)],
    progress: &Progress,
) -> Result<(), CliError> {
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (
            "ricci.progress".to_string(),
            serde_json::to_string(progress)?,
        ),
    ]);
    let opt: Vec<(&str, &Tensor)> = optimizer_state
        .iter()
        .map(|(n, t)| (n.as_str(), t))
        .collect();
    io::write_safetensors(dir.join("optimizer.safetensors"), &opt, Some(&meta))?;
    let state = model.state_dict();
    let weights: Vec<(&str, &Tensor)> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
    io::write_safetensors(dir.join("checkpoint.safetensors"), &weights, Some(&meta))?;
    Ok(())
}

fn progress_of(path: &Path) -> Result<Progress, CliError> {
    let meta = io::read_safetensors_metadata(path)?;
    let raw = meta.get("ricci.progress").ok_or_else(|| {
        CliError(format!(
            "{}: not a ricci checkpoint (no training progress in its metadata)",
            path.display()
        ))
    })?;
    serde_json::from_str(raw)
        .map_err(|e| CliError(format!("{}: bad training progress: {e}", path.display())))
}

/// Builds the model of `config` and loads the weights of `dir`.
pub fn load_model(dir: &Path, config: &RunConfig) -> Result<Gpt, CliError> {
    load_model_as(dir, config, DType::F32)
}

/// As [`load_model`], with the weights converted to `dtype` (f64 for
/// curvature analysis, where f32 rounding would hide small eigenvalues).
pub fn load_model_as(dir: &Path, config: &RunConfig, dtype: DType) -> Result<Gpt, CliError> {
    if let Some(spec) = &config.lora {
        // The base run's weights with this run's adapters merged in.
        let base = read_config(&spec.base)?;
        let mut model = load_model_as(&spec.base, &base, dtype)?;
        super::lora::apply_adapters(&mut model, dir, spec)?;
        return Ok(model);
    }
    let model = Gpt::new(&config.model, dtype, &mut Rng::new(0))?;
    let path = dir.join("checkpoint.safetensors");
    // `ricci compress` stores weights as low-rank factor pairs; they are
    // multiplied back, so a compressed run loads into the dense model.
    let weights: Vec<(String, Tensor)> = ricci::nn::fold_low_rank(&io::read_safetensors(&path)?)?
        .into_iter()
        .map(|(n, t)| (n, t.to_dtype(dtype)))
        .collect();
    model.load_state_dict(&weights).map_err(|e| {
        CliError(format!(
            "{}: {e} (a checkpoint of another model?)",
            path.display()
        ))
    })?;
    Ok(model)
}

/// The optimizer state and progress of `dir`, checked to be from the same step as the weights.
pub fn load_training_state(dir: &Path) -> Result<(Vec<(String, Tensor)>, Progress), CliError> {
    let weights_path = dir.join("checkpoint.safetensors");
    let opt_path = dir.join("optimizer.safetensors");
    let progress = progress_of(&weights_path)?;
    let opt_progress = progress_of(&opt_path)?;
    if progress.step != opt_progress.step {
        return Err(CliError(format!(
            "{}: weights are from step {} but the optimizer state from step {}; the checkpoint was torn",
            dir.display(),
            progress.step,
            opt_progress.step
        )));
    }
    Ok((io::read_safetensors(&opt_path)?, progress))
}
