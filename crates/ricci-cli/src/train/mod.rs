//! `ricci train` and `ricci sample`: train a GPT on the built-in addition
//! task or a text file, with checkpoints, resumption, a loss log and plot.

pub(crate) mod checkpoint;
mod lora;
mod plot;
mod sample;

pub use sample::{run as sample, SampleArgs};

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ricci::data::{Addition, CharText, Split};
use ricci::models::gpt::{Gpt, GptConfig};
use ricci::nn::Module;
use ricci::optim::{clip_grad_norm, AdamConfig, AdamW, Optimizer, WarmupCosine};
use ricci::{DType, Rng, Tensor};
use serde::Serialize;

use crate::CliError;
use checkpoint::{Progress, RunConfig, TaskSpec, TrainSpec};

/// Model sizes by name.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Preset {
    /// 4 layers, 4 heads, 128 wide, context 64, batch 12
    Tiny,
    /// 6 layers, 6 heads, 384 wide, context 256, batch 8
    Small,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Train a character-level model on this UTF-8 text file (default: the built-in addition task)
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Model size preset (explicit --n-* flags override its fields)
    #[arg(long)]
    config: Option<Preset>,
    #[arg(long)]
    n_layer: Option<usize>,
    #[arg(long)]
    n_head: Option<usize>,
    #[arg(long)]
    n_embd: Option<usize>,
    #[arg(long)]
    block_size: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimisation steps in all
    #[arg(long)]
    steps: Option<usize>,
    /// Peak learning rate (AdamW, warm-up then cosine decay to a tenth)
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Directory for config.json, checkpoint.safetensors, optimizer.safetensors, loss.csv, loss.png
    /// [default: runs/latest; with --lora: DIR/lora]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Evaluate and checkpoint every N steps (0: only at the end)
    #[arg(long)]
    eval_every: Option<usize>,
    /// Continue the run saved in DIR (its config, weights, optimizer and data stream);
    /// with --lora, the trained model to fine-tune
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "n_layer", "n_head", "n_embd", "block_size"])]
    resume: Option<PathBuf>,
    /// Fine-tune the model of --resume DIR on --data FILE with LoRA adapters of this rank (adapters only are trained and saved)
    #[arg(long, value_name = "RANK")]
    lora: Option<usize>,
    /// LoRA scale numerator: the adapters' output is multiplied by alpha / rank [default: 2 x rank]
    #[arg(long, requires = "lora", allow_negative_numbers = true)]
    lora_alpha: Option<f64>,
    /// Stop after this step as if interrupted (checkpointed; the schedule still spans --steps)
    #[arg(long, value_name = "STEP")]
    stop_at: Option<usize>,
    /// Print a JSON summary at the end instead of text
    #[arg(long)]
    json: bool,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
}

/// The final summary (`--json`).
#[derive(Serialize, Debug)]
struct Summary {
    steps: usize,
    train_loss: f64,
    val_loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
    /// Tokens per second over this run's training steps (evaluation excluded).
    tokens_per_s: f64,
    /// Median time of one training step in this run (robust to warm-up).
    step_ms_median: f64,
    wall_s: f64,
    peak_rss_mb: f64,
    parameters: usize,
    out: PathBuf,
}

/// The data of a run, behind one interface for the loop.
pub(crate) enum Task {
    Addition(Addition),
    Text(CharText),
}

impl Task {
    pub(crate) fn open(spec: &TaskSpec, block_size: usize) -> Result<Task, CliError> {
        Ok(match spec {
            TaskSpec::Addition {
                digits,
                n_test,
                seed,
            } => Task::Addition(Addition::new(*digits, *n_test, *seed)?),
            TaskSpec::Text { path, vocab } => {
                let text = CharText::from_file(path, block_size)?;
                let found: String = text.vocab().into_iter().collect();
                if !vocab.is_empty() && &found != vocab {
                    return Err(CliError(format!(
                        "{}: the file's characters differ from the vocabulary the run was started with",
                        path.display()
                    )));
                }
                Task::Text(text)
            }
        })
    }

    pub(crate) fn batch(
        &self,
        split: Split,
        b: usize,
        t: usize,
        rng: &mut Rng,
    ) -> ricci::Result<(Tensor, Tensor)> {
        match self {
            Task::Addition(a) => a.batch(b, rng, DType::F32),
            Task::Text(text) => text.batch(split, b, t, rng, DType::F32),
        }
    }

    /// Validation loss on fixed batches (a generator of its own, so
    /// evaluating never moves the training stream).
    pub(crate) fn val_loss(
        &self,
        model: &Gpt,
        b: usize,
        t: usize,
        seed: u64,
    ) -> ricci::Result<f64> {
        let _guard = ricci::no_grad();
        let mut rng = Rng::new(seed ^ 0x005E_ED0F_E7A1);
        let batches = match self {
            Task::Addition(_) => 4,
            Task::Text(_) => 8,
        };
        let mut total = 0.0;
        for _ in 0..batches {
            let (x, y) = match self {
                // Validation problems are the held-out ones.
                Task::Addition(a) => held_out_batch(a, b, &mut rng)?,
                Task::Text(text) => text.batch(Split::Val, b, t, &mut rng, DType::F32)?,
            };
            total += model.loss(&x, &y)?.to_f64()?;
        }
        Ok(total / batches as f64)
    }
}

/// Teacher-forced batch of held-out addition problems.
fn held_out_batch(task: &Addition, b: usize, rng: &mut Rng) -> ricci::Result<(Tensor, Tensor)> {
    let test = task.test_set();
    let picks: Vec<(u64, u64)> = (0..b)
        .map(|_| test[rng.below(test.len() as u64) as usize])
        .collect();
    task.sequences(&picks, DType::F32)
}

pub fn run(args: &TrainArgs) -> Result<ExitCode, CliError> {
    if let Some(rank) = args.lora {
        return lora::run(args, rank);
    }
    let wall = Instant::now();
    let (config, resume_from) = match &args.resume {
        Some(_) if args.data.is_some() || args.lr.is_some() || args.batch_size.is_some() => {
            return Err(CliError(
                "--data, --lr and --batch-size cannot change when resuming (use --lora to fine-tune on new text)".into(),
            ));
        }
        Some(dir) => {
            let mut config = checkpoint::read_config(dir)?;
            if config.lora.is_some() {
                return Err(CliError(format!(
                    "{} is a LoRA fine-tune; it cannot be resumed (start another from its base run)",
                    dir.display()
                )));
            }
            if let Some(steps) = args.steps {
                config.train.steps = steps;
            }
            if let Some(e) = args.eval_every {
                config.train.eval_every = e;
            }
            (config, Some(dir.clone()))
        }
        None => (new_config(args)?, None),
    };
    let out = args.resume.clone().unwrap_or_else(|| {
        args.out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs/latest"))
    });
    let task = Task::open(&config.task, config.model.block_size)?;
    let tc = config.train.clone();
    if tc.batch_size == 0 || tc.steps == 0 {
        return Err(CliError("--batch-size and --steps must be positive".into()));
    }

    let mut model = match &resume_from {
        Some(dir) => checkpoint::load_model(dir, &config)?,
        None => Gpt::new(&config.model, DType::F32, &mut Rng::new(tc.seed))?,
    };
    let mut opt = AdamW::new(
        model.named_parameters(),
        AdamConfig {
            lr: tc.lr,
            beta1: tc.beta1,
            beta2: tc.beta2,
            eps: 1e-8,
            weight_decay: tc.weight_decay,
        },
    );
    let schedule = WarmupCosine {
        base_lr: tc.lr,
        min_lr: tc.min_lr,
        warmup_steps: tc.warmup_steps,
        total_steps: tc.steps,
    };
    let (mut progress, mut log) = match &resume_from {
        Some(dir) => {
            let (state, progress) = checkpoint::load_training_state(dir)?;
            opt.load_state(&state)
                .map_err(|e| CliError(format!("{}: {e}", dir.display())))?;
            let log = plot::LossLog::read(&dir.join("loss.csv"), progress.step)?;
            (progress, log)
        }
        None => {
            std::fs::create_dir_all(&out)
                .map_err(|e| CliError(format!("cannot create {}: {e}", out.display())))?;
            checkpoint::write_config(&out, &config)?;
            let progress = Progress {
                step: 0,
                rng: Rng::new(tc.seed.wrapping_add(1)),
                train_seconds: 0.0,
            };
            (progress, plot::LossLog::default())
        }
    };
    let params: Vec<_> = model.parameters();
    model.set_training(true);

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        // A second handler cannot be installed (tests call run twice in one
        // process only through the binary, so this is per process).
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }

    let (b, t) = (tc.batch_size, config.model.block_size);
    let bar = progress_bar(args.quiet || args.json, tc.steps, progress.step);
    let last_step = args.stop_at.unwrap_or(tc.steps).min(tc.steps);
    let mut train_loss = f64::NAN;
    let mut tokens_this_run = 0usize;
    let mut seconds_this_run = 0.0f64;
    let mut step_seconds: Vec<f64> = Vec::new();
    let mut last = (f64::NAN, None);
    let pieces = ricci::kernels::par::threads();
    while progress.step < last_step {
        let started = Instant::now();
        let lr = schedule.lr(progress.step);
        opt.set_lr(lr);
        let (x, y) = task.batch(Split::Train, b, t, &mut progress.rng)?;
        // The batch is cut into one slice of rows per thread, each run on
        // its own core (`Gpt::loss_and_grads`).
        let (loss, mut grads) = model.loss_and_grads(&x, &y, pieces)?;
        train_loss = loss;
        if !train_loss.is_finite() {
            return Err(CliError(format!(
                "the loss became {train_loss} at step {}; try a lower --lr",
                progress.step + 1
            )));
        }
        clip_grad_norm(&mut grads, &params, tc.clip)?;
        opt.step(&grads)?;
        drop(grads);
        progress.step += 1;
        let dt = started.elapsed().as_secs_f64();
        progress.train_seconds += dt;
        seconds_this_run += dt;
        step_seconds.push(dt);
        tokens_this_run += x.numel();
        log.push(progress.step, lr, train_loss);
        bar.set_position(progress.step as u64);
        bar.set_message(format!(
            "loss {train_loss:.4} | {:.0} tok/s",
            tokens_this_run as f64 / seconds_this_run
        ));

        let stop = interrupted.load(Ordering::SeqCst);
        let at_eval = tc.eval_every > 0 && progress.step.is_multiple_of(tc.eval_every);
        if at_eval || progress.step == last_step || stop {
            model.set_training(false);
            let val = task.val_loss(&model, b, t, tc.seed)?;
            let acc = match &task {
                Task::Addition(a) if progress.step == tc.steps || at_eval => {
                    Some(a.accuracy(&model)?)
                }
                _ => None,
            };
            model.set_training(true);
            log.set_eval(progress.step, val, acc);
            last = (val, acc);
            checkpoint::save(&out, &model, &opt.state(), &progress)?;
            log.write(&out)?;
            report(
                &bar,
                args.quiet,
                format!(
                    "step {:>6} | train loss {train_loss:.4} | val loss {val:.4}{}",
                    progress.step,
                    acc.map_or(String::new(), |a| format!(" | accuracy {:.2}%", 100.0 * a))
                ),
            );
        }
        if stop {
            bar.abandon();
            eprintln!(
                "interrupted: checkpoint saved in {} at step {}",
                out.display(),
                progress.step
            );
            return Ok(ExitCode::from(130));
        }
    }
    bar.finish_and_clear();

    model.set_training(false);
    let (val_loss, mut accuracy) = last;
    if let (Task::Addition(a), None) = (&task, accuracy) {
        if progress.step == tc.steps {
            accuracy = Some(a.accuracy(&model)?);
        }
    }
    let summary = Summary {
        steps: progress.step,
        train_loss,
        val_loss,
        accuracy,
        tokens_per_s: if seconds_this_run > 0.0 {
            tokens_this_run as f64 / seconds_this_run
        } else {
            0.0
        },
        step_ms_median: 1e3 * median(&mut step_seconds),
        wall_s: wall.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
        parameters: model.num_parameters(),
        out: out.clone(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary, &task, &model)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(s: &Summary, task: &Task, model: &Gpt) -> Result<(), CliError> {
    println!(
        "trained {} parameters for {} steps in {:.1} s ({:.0} tokens/s, peak memory {:.0} MB)",
        s.parameters, s.steps, s.wall_s, s.tokens_per_s, s.peak_rss_mb
    );
    println!(
        "train loss {:.4}, validation loss {:.4}",
        s.train_loss, s.val_loss
    );
    match task {
        Task::Addition(a) => {
            if let Some(acc) = s.accuracy {
                println!(
                    "held-out accuracy: {:.2}% of {} problems never seen in training",
                    100.0 * acc,
                    a.test_set().len()
                );
            }
            let examples: Vec<(u64, u64)> = a.test_set().iter().take(6).copied().collect();
            let answers = a.solve(model, &examples)?;
            for (&(x, y), &ans) in examples.iter().zip(&answers) {
                let shown = if ans == u64::MAX {
                    "?".to_string()
                } else {
                    ans.to_string()
                };
                let mark = if x + y == ans { "ok" } else { "wrong" };
                println!("  {x}+{y}={shown}  ({mark})");
            }
        }
        Task::Text(text) => {
            let vocab = text.vocab();
            let prompt = Tensor::from_vec(vec![0.0f32], &[1, 1])?;
            let out = model.generate(
                &prompt,
                200.min(model.config.block_size * 3),
                0.8,
                Some(20),
                &mut Rng::new(0),
            )?;
            let sample: String = out
                .to_vec_f64()
                .iter()
                .map(|&i| vocab[i as usize])
                .collect();
            println!("sample:\n{sample}");
        }
    }
    println!("checkpoint: {}", s.out.display());
    Ok(())
}

/// A line above the progress bar, or on stderr when there is no bar.
fn report(bar: &ProgressBar, quiet: bool, line: String) {
    if !bar.is_hidden() {
        bar.println(line);
    } else if !quiet {
        eprintln!("{line}");
    }
}

fn progress_bar(hidden: bool, steps: usize, at: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    if hidden || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps | {msg} | {elapsed} < {eta}")
    {
        bar.set_style(style);
    }
    bar.set_position(at as u64);
    bar
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The process's peak resident memory (Linux `VmHWM`), in MB; 0 where unknown.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The configuration of a new run from the command line.
fn new_config(args: &TrainArgs) -> Result<RunConfig, CliError> {
    // Defaults: for addition a small model that learns it within minutes;
    // for text the tiny preset.
    let (mut model, mut batch, mut steps, mut lr, eval_every) = match (&args.data, args.config) {
        (_, Some(Preset::Tiny)) | (Some(_), None) => (GptConfig::default(), 12, 2000, 1e-3, 250),
        (_, Some(Preset::Small)) => (
            GptConfig {
                n_layer: 6,
                n_head: 6,
                n_embd: 384,
                block_size: 256,
                ..GptConfig::default()
            },
            8,
            2000,
            6e-4,
            250,
        ),
        (None, None) => (
            GptConfig {
                n_layer: 2,
                n_head: 4,
                n_embd: 64,
                block_size: 11,
                ..GptConfig::default()
            },
            64,
            2000,
            3e-3,
            250,
        ),
    };
    let task = match &args.data {
        Some(path) => {
            let block = args.block_size.unwrap_or(model.block_size);
            let text = CharText::from_file(path, block)?;
            model.vocab_size = text.vocab_size();
            TaskSpec::Text {
                path: absolute(path),
                vocab: text.vocab().into_iter().collect(),
            }
        }
        None => {
            let a = Addition::new(3, 1000, 0)?;
            model.vocab_size = a.vocab_size();
            model.block_size = a.block_size();
            if args.block_size.is_some_and(|bs| bs != a.block_size()) {
                return Err(CliError(format!(
                    "the addition task has a fixed block size of {}; --block-size applies to --data",
                    a.block_size()
                )));
            }
            TaskSpec::Addition {
                digits: 3,
                n_test: 1000,
                seed: 0,
            }
        }
    };
    if let Some(v) = args.n_layer {
        model.n_layer = v;
    }
    if let Some(v) = args.n_head {
        model.n_head = v;
    }
    if let Some(v) = args.n_embd {
        model.n_embd = v;
    }
    if let Some(v) = args.block_size {
        model.block_size = v;
    }
    batch = args.batch_size.unwrap_or(batch);
    steps = args.steps.unwrap_or(steps);
    lr = args.lr.unwrap_or(lr);
    model.validate()?;
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(CliError(format!(
            "--lr must be a positive number, got {lr}"
        )));
    }
    Ok(RunConfig {
        model,
        task,
        train: TrainSpec {
            steps,
            batch_size: batch,
            lr,
            min_lr: lr / 10.0,
            warmup_steps: (steps / 20).clamp(1, 200),
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            clip: 1.0,
            seed: args.seed,
            eval_every: args.eval_every.unwrap_or(eval_every),
        },
        lora: None,
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
