//! `ricci train --lora R --resume DIR --data FILE`: fine-tunes the
//! character-level model of run DIR on new text with LoRA adapters on every
//! linear map of its blocks, training (and saving) the adapters only.
//!
//! The new text must use the base model's characters (it is encoded with
//! the base vocabulary). The output directory (`--out`, default
//! `DIR/lora`) holds `config.json` (the base model's config, the new data,
//! and a `lora` entry naming the base run, rank and alpha) and
//! `adapters.safetensors`, written atomically at every evaluation, at the
//! end and on Ctrl-C. `ricci sample --checkpoint OUT` loads the base
//! weights, adds the adapters and merges them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ricci::data::{CharText, Split};
use ricci::models::gpt::Gpt;
use ricci::nn::{lora_parameters, Module};
use ricci::optim::{AdamConfig, AdamW, Optimizer, WarmupCosine};
use ricci::{io, Rng, Tensor};
use serde::Serialize;

use super::checkpoint::{self, LoraSpec, RunConfig, TaskSpec};
use super::{progress_bar, report, Task, TrainArgs};
use crate::CliError;

#[derive(Serialize, Debug)]
struct LoraSummary {
    steps: usize,
    rank: usize,
    alpha: f64,
    trainable_parameters: usize,
    total_parameters: usize,
    trainable_fraction: f64,
    val_loss_before: f64,
    val_loss_after: f64,
    train_loss: f64,
    wall_s: f64,
    out: PathBuf,
}

fn save_adapters(out: &Path, model: &Gpt) -> Result<(), CliError> {
    let adapters: Vec<(String, Tensor)> = lora_parameters(model)
        .into_iter()
        .map(|(n, v)| (n, v.tensor().clone()))
        .collect();
    let refs: Vec<(&str, &Tensor)> = adapters.iter().map(|(n, t)| (n.as_str(), t)).collect();
    io::write_safetensors(out.join("adapters.safetensors"), &refs, None)?;
    Ok(())
}

/// Adds the adapters of a LoRA run directory to `model` (built with the
/// base weights) and merges them into its weights.
pub fn apply_adapters(model: &mut Gpt, dir: &Path, spec: &LoraSpec) -> Result<(), CliError> {
    model.add_lora(spec.rank, spec.alpha, &mut Rng::new(0))?;
    let path = dir.join("adapters.safetensors");
    let saved = io::read_safetensors(&path)?;
    let slots = lora_parameters(model);
    if saved.len() != slots.len() {
        return Err(CliError(format!(
            "{}: {} adapter tensors, the model has {} (adapters of another model?)",
            path.display(),
            saved.len(),
            slots.len()
        )));
    }
    for (name, var) in &slots {
        let t = saved
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| CliError(format!("{}: missing adapter '{name}'", path.display())))?;
        var.assign(&t.to_dtype(var.tensor().dtype()))
            .map_err(|e| CliError(format!("{}: '{name}': {e}", path.display())))?;
    }
    model.merge_lora()?;
    Ok(())
}

pub fn run(args: &TrainArgs, rank: usize) -> Result<ExitCode, CliError> {
    let wall = Instant::now();
    let Some(base_dir) = &args.resume else {
        return Err(CliError(
            "--lora fine-tunes a trained model: give its directory with --resume DIR".into(),
        ));
    };
    let Some(data) = &args.data else {
        return Err(CliError(
            "--lora needs the new text to fine-tune on: --data FILE".into(),
        ));
    };
    let base = checkpoint::read_config(base_dir)?;
    if base.lora.is_some() {
        return Err(CliError(format!(
            "{} is itself a LoRA run; fine-tune its base model instead",
            base_dir.display()
        )));
    }
    let TaskSpec::Text { vocab, .. } = &base.task else {
        return Err(CliError(format!(
            "{} was trained on the addition task; LoRA fine-tuning needs a character-level model (ricci train --data FILE)",
            base_dir.display()
        )));
    };
    let vocab_chars: Vec<char> = vocab.chars().collect();
    let block = base.model.block_size;
    // The new text as a task, so that its validation loss is the one
    // `ricci train` reports (the same fixed batches).
    let task = Task::Text(CharText::from_file_with_vocab(data, block, &vocab_chars)?);
    let mut model = checkpoint::load_model(base_dir, &base)?;
    let out = args.out.clone().unwrap_or_else(|| base_dir.join("lora"));
    if out == *base_dir {
        return Err(CliError(
            "--out must differ from the base run's directory (its checkpoint is kept)".into(),
        ));
    }
    let alpha = args.lora_alpha.unwrap_or(2.0 * rank as f64);
    let steps = args.steps.unwrap_or(500);
    let b = args.batch_size.unwrap_or(base.train.batch_size);
    let lr = args.lr.unwrap_or(3e-3);
    if steps == 0 || b == 0 {
        return Err(CliError("--batch-size and --steps must be positive".into()));
    }
    let seed = args.seed;
    model.set_training(false);
    let before = task.val_loss(&model, b, block, seed)?;
    model.add_lora(rank, alpha, &mut Rng::new(seed))?;
    model.set_training(true);
    let adapters = lora_parameters(&model);
    let trainable: usize = adapters.iter().map(|(_, v)| v.numel()).sum();
    let total: usize = model
        .named_parameters()
        .iter()
        .filter(|(n, _)| !ricci::nn::is_lora_parameter(n))
        .map(|(_, v)| v.numel())
        .sum();
    let mut opt = AdamW::new(
        adapters,
        AdamConfig {
            lr,
            weight_decay: 0.0,
            ..AdamConfig::default()
        },
    );
    let schedule = WarmupCosine {
        base_lr: lr,
        min_lr: lr / 10.0,
        warmup_steps: (steps / 20).max(1),
        total_steps: steps,
    };
    std::fs::create_dir_all(&out)
        .map_err(|e| CliError(format!("cannot create {}: {e}", out.display())))?;
    let config = RunConfig {
        model: base.model.clone(),
        task: TaskSpec::Text {
            path: super::absolute(data),
            vocab: vocab.clone(),
        },
        train: checkpoint::TrainSpec {
            steps,
            batch_size: b,
            lr,
            min_lr: lr / 10.0,
            warmup_steps: schedule.warmup_steps,
            weight_decay: 0.0,
            seed,
            eval_every: args.eval_every.unwrap_or(0),
            ..base.train.clone()
        },
        lora: Some(LoraSpec {
            base: super::absolute(base_dir),
            rank,
            alpha,
        }),
    };
    checkpoint::write_config(&out, &config)?;

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let bar = progress_bar(args.quiet || args.json, steps, 0);
    let mut rng = Rng::new(seed.wrapping_add(1));
    let mut train_loss = f64::NAN;
    let pieces = ricci::kernels::par::threads();
    for step in 0..steps {
        opt.set_lr(schedule.lr(step));
        let (x, y) = task.batch(Split::Train, b, block, &mut rng)?;
        // One slice of the batch per thread, side by side, as `ricci train`.
        let (loss, grads) = model.loss_and_grads(&x, &y, pieces)?;
        train_loss = loss;
        if !train_loss.is_finite() {
            return Err(CliError(format!(
                "the loss became {train_loss} at step {}; try a lower --lr",
                step + 1
            )));
        }
        opt.step(&grads)?;
        bar.set_position(step as u64 + 1);
        bar.set_message(format!("loss {train_loss:.4}"));
        let done = step + 1;
        let at_eval = config.train.eval_every > 0 && done.is_multiple_of(config.train.eval_every);
        if at_eval {
            model.set_training(false);
            let v = task.val_loss(&model, b, block, seed)?;
            model.set_training(true);
            save_adapters(&out, &model)?;
            report(
                &bar,
                args.quiet,
                format!("step {done:>6} | train loss {train_loss:.4} | val loss {v:.4}"),
            );
        }
        if interrupted.load(Ordering::SeqCst) {
            save_adapters(&out, &model)?;
            bar.abandon();
            eprintln!(
                "interrupted: adapters saved in {} at step {done}",
                out.display()
            );
            return Ok(ExitCode::from(130));
        }
    }
    bar.finish_and_clear();
    model.set_training(false);
    let after = task.val_loss(&model, b, block, seed)?;
    save_adapters(&out, &model)?;
    let summary = LoraSummary {
        steps,
        rank,
        alpha,
        trainable_parameters: trainable,
        total_parameters: total,
        trainable_fraction: trainable as f64 / total.max(1) as f64,
        val_loss_before: before,
        val_loss_after: after,
        train_loss,
        wall_s: wall.elapsed().as_secs_f64(),
        out: out.clone(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "LoRA rank {rank} (alpha {alpha}): trained {} of {} parameters ({:.2}%) for {steps} steps in {:.1} s",
            summary.trainable_parameters,
            summary.total_parameters,
            100.0 * summary.trainable_fraction,
            summary.wall_s
        );
        println!("validation loss on the new text: {before:.4} -> {after:.4}");
        println!("adapters: {}", out.join("adapters.safetensors").display());
    }
    Ok(ExitCode::SUCCESS)
}
