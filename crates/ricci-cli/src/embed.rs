//! `ricci embed` and `ricci similarity`: sentence embeddings with a
//! sentence-transformers BERT folder (all-MiniLM-L6-v2 by default).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use ricci::models::bert::{SentenceEncoder, DEFAULT_BATCH_SIZE};
use ricci::Tensor;
use serde::Serialize;

use crate::CliError;

/// Where `scripts/fetch-minilm.sh` puts the model.
const DEFAULT_MODEL: &str = "models/all-MiniLM-L6-v2";

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Texts to embed (an empty string is a valid text)
    #[arg(value_name = "TEXT")]
    texts: Vec<String>,
    /// Model folder (config.json, model.safetensors, tokenizer.json, modules.json, ...)
    #[arg(long, value_name = "DIR", default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// Read more texts from FILE, one per line (after the TEXT arguments)
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the embeddings to OUT.npy ([texts, dim], float32) instead of printing them
    #[arg(long, value_name = "OUT.npy")]
    output: Option<PathBuf>,
    /// Print one JSON object: dim, embeddings (unless --output), token counts and timings
    #[arg(long)]
    json: bool,
    /// Texts per forward pass
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    batch_size: usize,
    /// Embed the texts N times and report the fastest and median times (for benchmarks)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    repeat: usize,
}

#[derive(Args, Debug)]
pub struct SimilarityArgs {
    /// The first text
    text_a: String,
    /// The second text
    text_b: String,
    /// Model folder
    #[arg(long, value_name = "DIR", default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// Print {"similarity": ...} instead of the bare number
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct EmbedReport<'a> {
    model: String,
    texts: usize,
    dim: usize,
    /// Tokens per text, special tokens included, after truncation.
    tokens: Vec<usize>,
    batch_size: usize,
    threads: usize,
    load_s: f64,
    /// Fastest and median wall time of one embedding of all texts.
    best_s: f64,
    median_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embeddings: Option<Vec<&'a [f32]>>,
}

fn load(dir: &Path) -> Result<SentenceEncoder, CliError> {
    SentenceEncoder::from_dir(dir).map_err(|e| CliError(format!("loading model: {e}")))
}

/// The TEXT arguments, then the lines of `--input`.
fn gather_texts(args: &EmbedArgs) -> Result<Vec<String>, CliError> {
    let mut texts = args.texts.clone();
    if let Some(path) = &args.input {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError(format!("--input {}: {e}", path.display())))?;
        texts.extend(text.lines().map(str::to_string));
    }
    if texts.is_empty() {
        return Err(CliError(
            "embed: no texts given (pass TEXT arguments or --input FILE)".into(),
        ));
    }
    Ok(texts)
}

pub fn run_embed(args: &EmbedArgs) -> Result<ExitCode, CliError> {
    let texts = gather_texts(args)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = Instant::now();
    let model = load(&args.model)?;
    let load_s = started.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(args.repeat);
    let mut embeddings: Option<Tensor> = None;
    for _ in 0..args.repeat {
        let t0 = Instant::now();
        embeddings = Some(model.embed_batched(&refs, args.batch_size)?);
        times.push(t0.elapsed().as_secs_f64());
    }
    let embeddings = embeddings.ok_or_else(|| CliError("embed: nothing was run".into()))?;
    times.sort_by(f64::total_cmp);
    if let Some(out) = &args.output {
        ricci::io::write_npy(out, &embeddings)?;
    }
    let dim = model.dim();
    let data = embeddings.to_vec::<f32>()?;
    if args.json {
        let tokens = refs
            .iter()
            .map(|t| model.tokenize(t).map(|ids| ids.len()))
            .collect::<ricci::Result<Vec<_>>>()?;
        let report = EmbedReport {
            model: args.model.display().to_string(),
            texts: refs.len(),
            dim,
            tokens,
            batch_size: args.batch_size,
            threads: rayon::current_num_threads(),
            load_s,
            best_s: times[0],
            median_s: times[times.len() / 2],
            output: args.output.as_ref().map(|p| p.display().to_string()),
            embeddings: args
                .output
                .is_none()
                .then(|| data.chunks_exact(dim).collect()),
        };
        println!("{}", serde_json::to_string(&report)?);
    } else if let Some(out) = &args.output {
        println!(
            "wrote {} embeddings of dimension {dim} to {}",
            refs.len(),
            out.display()
        );
    } else {
        // One line per text: the vector's components, space-separated.
        for row in data.chunks_exact(dim) {
            let line: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
            println!("{}", line.join(" "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_similarity(args: &SimilarityArgs) -> Result<ExitCode, CliError> {
    let model = load(&args.model)?;
    let s = model.similarity(&args.text_a, &args.text_b)?;
    if args.json {
        println!("{}", serde_json::json!({ "similarity": s }));
    } else {
        println!("{s:.6}");
    }
    Ok(ExitCode::SUCCESS)
}
