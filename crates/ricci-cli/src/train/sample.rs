//! `ricci sample`: continue a prompt with a trained model.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ricci::data::Addition;
use ricci::{Rng, Tensor};

use super::checkpoint::{self, TaskSpec};
use crate::CliError;

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Training directory (config.json + checkpoint.safetensors)
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Text to continue (for the addition task, e.g. "482+139=")
    #[arg(long, default_value = "")]
    prompt: String,
    /// Number of tokens to generate
    #[arg(long, default_value_t = 200)]
    tokens: usize,
    /// Softmax temperature (0: always the most likely token)
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    temperature: f64,
    /// Sample among the K most likely tokens only
    #[arg(long, value_name = "K")]
    top_k: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: &SampleArgs) -> Result<ExitCode, CliError> {
    let config = checkpoint::read_config(&args.checkpoint)?;
    let model = checkpoint::load_model(&args.checkpoint, &config)?;
    let vocab: Vec<char> = match &config.task {
        TaskSpec::Text { vocab, .. } => vocab.chars().collect(),
        TaskSpec::Addition {
            digits,
            n_test,
            seed,
        } => Addition::new(*digits, *n_test, *seed)?
            .vocab()
            .chars()
            .collect(),
    };
    if let TaskSpec::Addition { digits, .. } = &config.task {
        return sample_addition(args, &model, *digits);
    }
    let mut ids = ricci::data::encode_with(&vocab, &args.prompt)?;
    if ids.is_empty() {
        // An empty prompt starts from the first character of the vocabulary
        // (a newline in most texts).
        ids.push(vocab.iter().position(|&c| c == '\n').unwrap_or(0));
    }
    let n = ids.len();
    let prompt = Tensor::from_indices(&ids, &[1, n], model.dtype())?;
    let out = model.generate(
        &prompt,
        args.tokens,
        args.temperature,
        args.top_k,
        &mut Rng::new(args.seed),
    )?;
    let text: String = out
        .to_vec_f64()
        .iter()
        .map(|&i| vocab[i as usize])
        .collect();
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// For the addition task the prompt is `a+b=` in normal notation; the
/// model's reversed answer is turned back before printing.
fn sample_addition(
    args: &SampleArgs,
    model: &ricci::models::gpt::Gpt,
    digits: usize,
) -> Result<ExitCode, CliError> {
    let bad = || {
        CliError(format!("the addition model expects a prompt like 482+139= with operands of at most {digits} digits, got {:?}", args.prompt))
    };
    let body = args.prompt.trim().trim_end_matches('=');
    let (a, b) = body.split_once('+').ok_or_else(bad)?;
    let parse = |s: &str| -> Result<u64, CliError> {
        if s.is_empty() || s.len() > digits || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (a, b) = (parse(a)?, parse(b)?);
    let task = Addition::new(digits, 0, 0)?;
    let answer = task.solve(model, &[(a, b)])?[0];
    let shown = if answer == u64::MAX {
        "?".to_string()
    } else {
        answer.to_string()
    };
    println!("{a}+{b}={shown}");
    Ok(ExitCode::SUCCESS)
}
