//! `ricci compress`: replaces each weight matrix of a model by its
//! truncated SVD factors (at a rank, or keeping a fraction of each matrix's
//! energy `Σσᵢ²`), reports what each layer kept and what it saved, and
//! measures the damage: the validation loss before and after for a
//! `ricci train` run, the cosine similarity of compressed to original
//! sentence embeddings for a sentence-transformers folder (all-MiniLM-L6-v2).
//!
//! The compressed model is written to `--out` with the factors stored as
//! `<layer>.down` `[r, in]` and `<layer>.up` `[out, r]` (the names of
//! `ricci::nn::LowRankLinear`'s parameters). ricci loads such a directory
//! (`sample`, `analyze`, `embed`, `compress` again) by multiplying each pair
//! back into a dense weight: the files are smaller, inference is not faster.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use ricci::models::bert::SentenceEncoder;
use ricci::nn::{compress_state_dict, LayerCompression, RankChoice};
use ricci::{io, Tensor};
use serde::Serialize;

use crate::train::checkpoint;
use crate::train::Task;
use crate::CliError;

#[derive(Args, Debug)]
pub struct CompressArgs {
    /// A `ricci train` directory, or a sentence-transformers folder (model.safetensors)
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Keep this many singular values of every matrix
    #[arg(long, conflicts_with = "energy")]
    rank: Option<usize>,
    /// Keep the fewest singular values holding this fraction of each matrix's energy (0-1]
    #[arg(long, allow_negative_numbers = true)]
    energy: Option<f64>,
    /// Directory for the compressed model (default: DIR-compressed)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Texts to compare embeddings on, one per line (sentence-transformers folders)
    #[arg(long, value_name = "FILE")]
    texts: Option<PathBuf>,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Serialize, Debug)]
struct Summary {
    source: PathBuf,
    out: PathBuf,
    layers: Vec<LayerJson>,
    /// Parameters of the compressed matrices before and after.
    matrix_params_before: usize,
    matrix_params_after: usize,
    /// All parameters of the model before and after.
    total_params_before: usize,
    total_params_after: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    val_loss_before: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    val_loss_after: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_cosine: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_cosine: Option<f64>,
}

#[derive(Serialize, Debug)]
struct LayerJson {
    name: String,
    shape: Vec<usize>,
    rank: usize,
    params_before: usize,
    params_after: usize,
    kept_dense: bool,
    energy: f64,
    relative_error: f64,
}

impl From<&LayerCompression> for LayerJson {
    fn from(l: &LayerCompression) -> Self {
        LayerJson {
            name: l.name.clone(),
            shape: l.shape.clone(),
            rank: l.rank,
            params_before: l.params_before,
            params_after: l.params_after,
            kept_dense: l.kept_dense,
            energy: l.energy,
            relative_error: l.relative_error,
        }
    }
}

/// Sentences for the embedding comparison when no `--texts` is given.
const TEXTS: [&str; 8] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A monkey is playing drums.",
    "The new movie is awesome and everyone should see it.",
];

pub fn run(args: &CompressArgs) -> Result<ExitCode, CliError> {
    let choice = match (args.rank, args.energy) {
        (Some(r), _) => RankChoice::Rank(r),
        (None, Some(f)) => RankChoice::Energy(f),
        (None, None) => return Err(CliError("give --rank R or --energy F".into())),
    };
    let dir = &args.checkpoint;
    let out = args.out.clone().unwrap_or_else(|| {
        let name = dir
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
        dir.with_file_name(format!("{name}-compressed"))
    });
    if out == *dir {
        return Err(CliError(
            "--out must differ from --checkpoint (the original is kept)".into(),
        ));
    }
    let summary = if dir.join("checkpoint.safetensors").is_file() {
        compress_run(dir, &out, choice)?
    } else if dir.join("model.safetensors").is_file() {
        compress_sentence_model(dir, &out, choice, args.texts.as_deref())?
    } else {
        return Err(CliError(format!(
            "{}: neither a ricci training directory (checkpoint.safetensors) nor a sentence-transformers folder (model.safetensors)",
            dir.display()
        )));
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_table(&summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn numel(state: &[(String, Tensor)]) -> usize {
    state.iter().map(|(_, t)| t.numel()).sum()
}

impl Summary {
    /// The parameter counts of a compression; the quality figures are
    /// filled in by the caller.
    fn new(
        source: &Path,
        out: &Path,
        report: &[LayerCompression],
        state: &[(String, Tensor)],
        small: &[(String, Tensor)],
    ) -> Summary {
        Summary {
            source: source.to_path_buf(),
            out: out.to_path_buf(),
            layers: report.iter().map(LayerJson::from).collect(),
            matrix_params_before: report.iter().map(|l| l.params_before).sum(),
            matrix_params_after: report.iter().map(|l| l.params_after).sum(),
            total_params_before: numel(state),
            total_params_after: numel(small),
            val_loss_before: None,
            val_loss_after: None,
            mean_cosine: None,
            min_cosine: None,
        }
    }
}

/// Writes a state dict as safetensors (atomically).
fn write_state(
    path: &Path,
    state: &[(String, Tensor)],
    meta: Option<&std::collections::HashMap<String, String>>,
) -> Result<(), CliError> {
    let refs: Vec<(&str, &Tensor)> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
    io::write_safetensors(path, &refs, meta)?;
    Ok(())
}

fn compress_run(dir: &Path, out: &Path, choice: RankChoice) -> Result<Summary, CliError> {
    let config = checkpoint::read_config(dir)?;
    let task = Task::open(&config.task, config.model.block_size)?;
    let model = checkpoint::load_model(dir, &config)?;
    let (b, t) = (config.train.batch_size, config.model.block_size);
    let before = task.val_loss(&model, b, t, config.train.seed)?;
    let state =
        ricci::nn::fold_low_rank(&io::read_safetensors(dir.join("checkpoint.safetensors"))?)?;
    // Every linear map's weight; the embedding tables stay as they are.
    let (small, report) = compress_state_dict(&state, choice, |name| {
        !name.starts_with("wte.") && !name.starts_with("wpe.")
    })?;
    std::fs::create_dir_all(out)
        .map_err(|e| CliError(format!("cannot create {}: {e}", out.display())))?;
    checkpoint::write_config(out, &config)?;
    let meta = io::read_safetensors_metadata(dir.join("checkpoint.safetensors"))?;
    write_state(&out.join("checkpoint.safetensors"), &small, Some(&meta))?;
    // Loaded back the way `sample` and `analyze` load it.
    let compressed = checkpoint::load_model(out, &config)?;
    let after = task.val_loss(&compressed, b, t, config.train.seed)?;
    Ok(Summary {
        val_loss_before: Some(before),
        val_loss_after: Some(after),
        ..Summary::new(dir, out, &report, &state, &small)
    })
}

fn compress_sentence_model(
    dir: &Path,
    out: &Path,
    choice: RankChoice,
    texts: Option<&Path>,
) -> Result<Summary, CliError> {
    let owned: Vec<String> = match texts {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
            let lines: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            if lines.is_empty() {
                return Err(CliError(format!(
                    "{}: no texts in the file",
                    path.display()
                )));
            }
            lines
        }
        None => TEXTS.iter().map(|s| s.to_string()).collect(),
    };
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let original = SentenceEncoder::from_dir(dir)?.embed(&texts)?;
    let file = dir.join("model.safetensors");
    let state = ricci::nn::fold_low_rank(&io::read_safetensors_floats(&file)?)?;
    // The encoder's linear maps (attention q, k, v, output; the MLP); the
    // embedding tables and the unused pooler stay.
    let (small, report) = compress_state_dict(&state, choice, |name| {
        name.contains("encoder.layer.") && name.ends_with(".weight")
    })?;
    copy_folder(dir, out)?;
    write_state(&out.join("model.safetensors"), &small, None)?;
    let compressed = SentenceEncoder::from_dir(out)?.embed(&texts)?;
    // Rows are unit vectors when the model normalises; divide anyway.
    let dot = original.mul(&compressed)?.sum(-1, false)?;
    let norms = original
        .square()
        .sum(-1, false)?
        .mul(&compressed.square().sum(-1, false)?)?
        .sqrt();
    let cos = dot.div(&norms)?.to_vec_f64();
    Ok(Summary {
        mean_cosine: Some(cos.iter().sum::<f64>() / cos.len() as f64),
        min_cosine: Some(cos.iter().copied().fold(f64::INFINITY, f64::min)),
        ..Summary::new(dir, out, &report, &state, &small)
    })
}

/// Copies the files of a model folder (tokenizer, configs, pooling
/// settings; not the weights, which are rewritten), one level of
/// sub-folders deep as sentence-transformers lays them out.
fn copy_folder(from: &Path, to: &Path) -> Result<(), CliError> {
    let err = |p: &Path, e: std::io::Error| CliError(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(to).map_err(|e| err(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| err(from, e))? {
        let entry = entry.map_err(|e| err(from, e))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_folder(&path, &target)?;
        } else if entry.file_name() != "model.safetensors" {
            let bytes = std::fs::read(&path).map_err(|e| err(&path, e))?;
            io::write_atomic(&target, &bytes)?;
        }
    }
    Ok(())
}

fn print_table(s: &Summary) {
    let width = s
        .layers
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<width$}  {:>10}  {:>5}  {:>8}  {:>10}  {:>10}  {:>9}",
        "layer", "shape", "rank", "energy", "params", "after", "rel.error"
    );
    for l in &s.layers {
        println!(
            "{:<width$}  {:>10}  {:>5}  {:>7.2}%  {:>10}  {:>10}  {:>9.4}{}",
            l.name,
            format!("{}x{}", l.shape[0], l.shape[1]),
            l.rank,
            100.0 * l.energy,
            l.params_before,
            l.params_after,
            l.relative_error,
            if l.kept_dense { "  (kept dense)" } else { "" }
        );
    }
    let pct = |a: usize, b: usize| 100.0 * (1.0 - a as f64 / b.max(1) as f64);
    println!(
        "matrices: {} -> {} parameters ({:.1}% fewer); whole model: {} -> {} ({:.1}% fewer)",
        s.matrix_params_before,
        s.matrix_params_after,
        pct(s.matrix_params_after, s.matrix_params_before),
        s.total_params_before,
        s.total_params_after,
        pct(s.total_params_after, s.total_params_before)
    );
    if let (Some(b), Some(a)) = (s.val_loss_before, s.val_loss_after) {
        println!("validation loss: {b:.4} -> {a:.4}");
    }
    if let (Some(m), Some(lo)) = (s.mean_cosine, s.min_cosine) {
        println!(
            "cosine similarity of compressed to original embeddings: mean {m:.4}, min {lo:.4}"
        );
    }
    println!("written to {}", s.out.display());
}
