//! `ricci analyze`: what a trained model's matrices and loss surface look
//! like. For a `ricci train` run directory: singular-value spectra of every
//! weight matrix, per attention head the spectra of its QK and OV circuits,
//! and the Hessian of the training loss on a fixed batch (top eigenvalues by
//! Lanczos, trace by Hutchinson, optionally the spectral density by
//! stochastic Lanczos quadrature). For any other safetensors weights (a
//! file, or a folder with `model.safetensors` such as a sentence-transformers
//! model) the spectra only. Tables on stdout (or one JSON object), PNG plots
//! and `analysis.json` in `--out`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use ricci::analysis::{
    attention_head_spectra, weight_spectra, DensityParams, HeadSpectrum, Hessian, MatrixSpectrum,
    TraceParams,
};
use ricci::data::Split;
use ricci::linalg::LanczosParams;
use ricci::nn::Module;
use ricci::{io, DType, Rng, Tensor};
use serde::Serialize;

use crate::plotting::{draw_lines, write_png, LineChart};
use crate::train::checkpoint::{self, TaskSpec};
use crate::train::Task;
use crate::CliError;

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// A `ricci train` directory, a .safetensors file, or a folder with model.safetensors
    #[arg(long, value_name = "PATH")]
    checkpoint: PathBuf,
    /// Text file for the loss batch of a character-level model (default: the run's own)
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Number of top Hessian eigenvalues (0: skip the Hessian)
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Also estimate the Hessian's eigenvalue density (stochastic Lanczos quadrature)
    #[arg(long)]
    density: bool,
    /// Rademacher probes for Hutchinson's trace estimate (0: skip the trace)
    #[arg(long, default_value_t = 30)]
    trace_probes: usize,
    /// Sequences in the fixed loss batch (default: the run's batch size)
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seed of the loss batch and of the random probes
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Attention heads per layer, for weights without a config that says
    #[arg(long)]
    n_head: Option<usize>,
    /// Directory for the plots and analysis.json (default: PATH/analysis, or next to a file)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object instead of tables
    #[arg(long)]
    json: bool,
    /// No progress messages
    #[arg(long)]
    quiet: bool,
}

#[derive(Serialize, Debug)]
struct SpectrumJson {
    spectral_norm: f64,
    frobenius_norm: f64,
    stable_rank: f64,
    effective_rank: f64,
    singular_values: Vec<f64>,
}

impl From<&MatrixSpectrum> for SpectrumJson {
    fn from(s: &MatrixSpectrum) -> Self {
        SpectrumJson {
            spectral_norm: s.spectral_norm,
            frobenius_norm: s.frobenius_norm,
            stable_rank: s.stable_rank,
            effective_rank: s.effective_rank,
            singular_values: s.singular_values.clone(),
        }
    }
}

#[derive(Serialize, Debug)]
struct WeightJson {
    name: String,
    shape: Vec<usize>,
    #[serde(flatten)]
    spectrum: SpectrumJson,
}

#[derive(Serialize, Debug)]
struct HeadJson {
    layer: String,
    head: usize,
    qk: SpectrumJson,
    ov: SpectrumJson,
}

#[derive(Serialize, Debug)]
struct DensityJson {
    probes: usize,
    steps: usize,
    sigma: f64,
    grid: Vec<f64>,
    density: Vec<f64>,
}

#[derive(Serialize, Debug)]
struct HessianJson {
    /// `[batch, seq]` of the fixed batch.
    batch: Vec<usize>,
    loss: f64,
    parameters: usize,
    top_eigenvalues: Vec<f64>,
    lanczos_matvecs: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_std_error: Option<f64>,
    trace_probes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    density: Option<DensityJson>,
    seconds: f64,
}

#[derive(Serialize, Debug)]
struct Report {
    source: PathBuf,
    weights: Vec<WeightJson>,
    heads: Vec<HeadJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hessian: Option<HessianJson>,
    plots: Vec<PathBuf>,
    seconds: f64,
}

/// Where the weights come from.
enum Source {
    /// A `ricci train` directory.
    Run(PathBuf),
    /// A safetensors file, with the folder to look for a config in.
    Weights { file: PathBuf, folder: PathBuf },
}

fn source_of(path: &Path) -> Result<Source, CliError> {
    if path.is_dir() {
        if path.join("checkpoint.safetensors").is_file() {
            return Ok(Source::Run(path.to_path_buf()));
        }
        if path.join("model.safetensors").is_file() {
            return Ok(Source::Weights {
                file: path.join("model.safetensors"),
                folder: path.to_path_buf(),
            });
        }
        return Err(CliError(format!(
            "{}: neither a ricci training directory (checkpoint.safetensors) nor a model folder (model.safetensors)",
            path.display()
        )));
    }
    if path.is_file() {
        let folder = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        return Ok(Source::Weights {
            file: path.to_path_buf(),
            folder,
        });
    }
    Err(CliError(format!(
        "{}: no such file or directory",
        path.display()
    )))
}

/// Heads per layer from a folder's `config.json` (Hugging Face's
/// `num_attention_heads` or ricci's `model.n_head`).
fn heads_from_config(folder: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(folder.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("num_attention_heads")
        .or_else(|| json.get("model").and_then(|m| m.get("n_head")))
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as usize)
}

fn progress(args: &AnalyzeArgs, msg: &str) {
    if !args.quiet && !args.json {
        eprintln!("{msg}");
    }
}

pub fn run(args: &AnalyzeArgs) -> Result<ExitCode, CliError> {
    let wall = Instant::now();
    let source = source_of(&args.checkpoint)?;
    let (weights, n_head, run_dir, default_out) = match &source {
        Source::Run(dir) => {
            let config = checkpoint::read_config(dir)?;
            let weights = ricci::nn::fold_low_rank(&io::read_safetensors(
                dir.join("checkpoint.safetensors"),
            )?)?;
            (
                weights,
                Some(args.n_head.unwrap_or(config.model.n_head)),
                Some((dir.clone(), config)),
                dir.join("analysis"),
            )
        }
        Source::Weights { file, folder } => {
            if args.data.is_some() {
                return Err(CliError(
                    "--data needs a ricci training directory (the model must be runnable to take a loss)".into(),
                ));
            }
            let stem = file
                .file_stem()
                .map_or_else(|| "weights".into(), |s| s.to_string_lossy().into_owned());
            (
                io::read_safetensors_floats(file)?,
                args.n_head.or_else(|| heads_from_config(folder)),
                None,
                folder.join(format!("{stem}_analysis")),
            )
        }
    };
    let out = args.out.clone().unwrap_or(default_out);
    std::fs::create_dir_all(&out)
        .map_err(|e| CliError(format!("cannot create {}: {e}", out.display())))?;

    progress(args, "singular values of the weight matrices...");
    let spectra = weight_spectra(&weights)?;
    if spectra.is_empty() {
        return Err(CliError(format!(
            "{}: no 2-D weight matrices in the file",
            args.checkpoint.display()
        )));
    }
    let heads = match n_head {
        Some(h) => attention_head_spectra(&weights, h)?,
        None => Vec::new(),
    };
    let hessian = match &run_dir {
        Some((dir, config)) if args.top_k > 0 || args.trace_probes > 0 || args.density => {
            Some(hessian_report(args, dir, config)?)
        }
        _ => None,
    };

    let mut plots = vec![out.join("spectra.png")];
    plot_spectra(&plots[0], &spectra)?;
    if !heads.is_empty() {
        plots.push(out.join("heads.png"));
        plot_heads(&out.join("heads.png"), &heads)?;
    }
    if let Some(d) = hessian.as_ref().and_then(|h| h.density.as_ref()) {
        plots.push(out.join("density.png"));
        plot_density(&out.join("density.png"), d)?;
    }

    let shapes = |name: &str| {
        weights
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(Vec::new, |(_, t)| t.shape().to_vec())
    };
    let report = Report {
        source: args.checkpoint.clone(),
        weights: spectra
            .iter()
            .map(|(n, s)| WeightJson {
                name: n.clone(),
                shape: shapes(n),
                spectrum: s.into(),
            })
            .collect(),
        heads: heads
            .iter()
            .flat_map(|(layer, hs)| {
                hs.iter().map(move |h| HeadJson {
                    layer: layer.clone(),
                    head: h.head,
                    qk: (&h.qk).into(),
                    ov: (&h.ov).into(),
                })
            })
            .collect(),
        hessian,
        plots,
        seconds: wall.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_string_pretty(&report)?;
    io::write_atomic(out.join("analysis.json"), format!("{json}\n").as_bytes())?;
    if args.json {
        println!("{json}");
    } else {
        print_tables(&report, n_head.is_none());
    }
    Ok(ExitCode::SUCCESS)
}

/// The Hessian of the run's training loss on one fixed batch, in f64.
fn hessian_report(
    args: &AnalyzeArgs,
    dir: &Path,
    config: &checkpoint::RunConfig,
) -> Result<HessianJson, CliError> {
    let started = Instant::now();
    let spec = match (&config.task, &args.data) {
        (TaskSpec::Text { vocab, .. }, Some(path)) => TaskSpec::Text {
            path: path.clone(),
            vocab: vocab.clone(),
        },
        (TaskSpec::Addition { .. }, Some(_)) => {
            return Err(CliError(
                "this model was trained on the built-in addition task; --data applies to character-level models".into(),
            ))
        }
        (spec, None) => spec.clone(),
    };
    let task = Task::open(&spec, config.model.block_size)?;
    let mut model = checkpoint::load_model_as(dir, config, DType::F64)?;
    model.set_training(false);
    let b = args.batch_size.unwrap_or(config.train.batch_size);
    if b == 0 {
        return Err(CliError("--batch-size must be positive".into()));
    }
    let (x, y) = task.batch(
        Split::Train,
        b,
        config.model.block_size,
        &mut Rng::new(args.seed),
    )?;
    let (x, y) = (x.to_dtype(DType::F64), y.to_dtype(DType::F64));
    let params: Vec<Tensor> = model
        .parameters()
        .iter()
        .map(|p| p.tensor().clone())
        .collect();
    let hess = Hessian::new(|| model.loss(&x, &y), &params)?;
    progress(
        args,
        &format!(
            "Hessian of the loss ({:.4}) over {} parameters on a batch of {:?} tokens...",
            hess.loss(),
            hess.dim(),
            x.shape()
        ),
    );
    let (top, matvecs) = if args.top_k > 0 {
        let r = hess.eigenpairs(&LanczosParams {
            k: args.top_k.min(hess.dim()),
            tol: 1e-6,
            max_iter: 300,
            seed: args.seed,
            ..Default::default()
        })?;
        (r.values.to_vec::<f64>()?, r.matvecs)
    } else {
        (Vec::new(), 0)
    };
    let trace = if args.trace_probes > 0 {
        progress(
            args,
            &format!("trace from {} probes...", args.trace_probes.max(2)),
        );
        Some(hess.trace(&TraceParams {
            probes: args.trace_probes.max(2),
            seed: args.seed.wrapping_add(1),
        })?)
    } else {
        None
    };
    let density = if args.density {
        let params = DensityParams {
            seed: args.seed.wrapping_add(2),
            ..Default::default()
        };
        progress(
            args,
            &format!(
                "spectral density from {} probes of {} Lanczos steps...",
                params.probes, params.steps
            ),
        );
        let d = hess.density(&params)?;
        let (lo, hi) = d.range();
        // A kernel of 1% of the spectrum's width, as PyHessian's plots use.
        let sigma = (0.01 * (hi - lo)).max(1e-6 * hi.abs().max(1.0));
        let (grid, density) = d.curve(1000, sigma);
        Some(DensityJson {
            probes: params.probes,
            steps: params.steps,
            sigma,
            grid,
            density,
        })
    } else {
        None
    };
    Ok(HessianJson {
        batch: x.shape().to_vec(),
        loss: hess.loss(),
        parameters: hess.dim(),
        top_eigenvalues: top,
        lanczos_matvecs: matvecs,
        trace: trace.as_ref().map(|t| t.estimate),
        trace_std_error: trace.as_ref().map(|t| t.std_error),
        trace_probes: trace.as_ref().map_or(0, |t| t.samples.len()),
        density,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn shape_text(shape: &[usize]) -> String {
    shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

fn print_tables(report: &Report, heads_unknown: bool) {
    let width = report
        .weights
        .iter()
        .map(|w| w.name.len())
        .max()
        .unwrap_or(4)
        .max(6);
    println!("weight matrices (singular values)");
    println!(
        "{:<width$}  {:>11}  {:>10}  {:>10}  {:>11}  {:>14}",
        "matrix", "shape", "σ_max", "‖W‖_F", "stable rank", "effective rank"
    );
    for w in &report.weights {
        let s = &w.spectrum;
        println!(
            "{:<width$}  {:>11}  {:>10.4}  {:>10.4}  {:>11.2}  {:>14.2}",
            w.name,
            shape_text(&w.shape),
            s.spectral_norm,
            s.frobenius_norm,
            s.stable_rank,
            s.effective_rank
        );
    }
    if !report.heads.is_empty() {
        let lw = report
            .heads
            .iter()
            .map(|h| h.layer.len())
            .max()
            .unwrap_or(5);
        println!();
        println!(
            "attention heads (QK = W_Qᵀ W_K: what a head matches; OV = W_Vᵀ W_Oᵀ: what it writes)"
        );
        println!(
            "{:<lw$}  {:>4}  {:>9}  {:>11}  {:>9}  {:>11}",
            "layer", "head", "QK σ_max", "QK eff.rank", "OV σ_max", "OV eff.rank"
        );
        for h in &report.heads {
            println!(
                "{:<lw$}  {:>4}  {:>9.4}  {:>11.2}  {:>9.4}  {:>11.2}",
                h.layer,
                h.head,
                h.qk.spectral_norm,
                h.qk.effective_rank,
                h.ov.spectral_norm,
                h.ov.effective_rank
            );
        }
    } else if heads_unknown {
        println!("\n(attention heads skipped: give --n-head, no config says how many)");
    }
    if let Some(h) = &report.hessian {
        println!();
        println!(
            "Hessian of the training loss on a fixed batch of {} tokens (loss {:.4}, {} parameters)",
            shape_text(&h.batch),
            h.loss,
            h.parameters
        );
        if !h.top_eigenvalues.is_empty() {
            let vals: Vec<String> = h
                .top_eigenvalues
                .iter()
                .map(|v| format!("{v:.6}"))
                .collect();
            println!(
                "top eigenvalues: {}  (Lanczos, {} Hessian-vector products)",
                vals.join(", "),
                h.lanczos_matvecs
            );
        }
        if let (Some(t), Some(se)) = (h.trace, h.trace_std_error) {
            println!(
                "trace: {t:.6} ± {se:.6}  (Hutchinson, {} probes, ± one standard error)",
                h.trace_probes
            );
        }
        if let Some(d) = &h.density {
            println!(
                "spectral density: stochastic Lanczos quadrature, {} probes x {} steps, σ = {:.3e}",
                d.probes, d.steps, d.sigma
            );
        }
        println!("({:.1} s)", h.seconds);
    }
    let plots: Vec<String> = report
        .plots
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    println!("\nplots: {}", plots.join(" "));
}

/// Singular values of each matrix, normalised by its largest, against the
/// index normalised by the count (so matrices of any size share the axes).
fn plot_spectra(path: &Path, spectra: &[(String, MatrixSpectrum)]) -> Result<(), CliError> {
    let series = spectra
        .iter()
        .map(|(name, s)| (name.clone(), normalised(&s.singular_values)))
        .collect();
    let chart = LineChart {
        title: "singular values of the weight matrices",
        x_desc: "i / rank",
        y_desc: "σ_i / σ_max",
        log_y: true,
        series,
    };
    write_png(path, (1000, 600), |root, font| {
        draw_lines(root, &chart, font)
    })
}

fn normalised(s: &[f64]) -> Vec<(f64, f64)> {
    let top = s.first().copied().unwrap_or(0.0);
    let n = s.len().max(1) as f64;
    s.iter()
        .enumerate()
        .map(|(i, v)| ((i + 1) as f64 / n, if top > 0.0 { v / top } else { 0.0 }))
        .collect()
}

/// Two panels, QK and OV: the singular values of every head, one line each.
fn plot_heads(path: &Path, layers: &[(String, Vec<HeadSpectrum>)]) -> Result<(), CliError> {
    let series = |pick: fn(&HeadSpectrum) -> &MatrixSpectrum| {
        layers
            .iter()
            .flat_map(|(layer, heads)| {
                heads.iter().map(move |h| {
                    let pts = pick(h)
                        .singular_values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| ((i + 1) as f64, *v))
                        .collect();
                    (format!("{layer}.{}", h.head), pts)
                })
            })
            .collect::<Vec<_>>()
    };
    let chart = |title, pick| LineChart {
        title,
        x_desc: "index",
        y_desc: "singular value",
        log_y: true,
        series: series(pick),
    };
    let qk = chart("QK circuits (W_Qᵀ W_K) per head", |h| &h.qk);
    let ov = chart("OV circuits (W_Vᵀ W_Oᵀ) per head", |h| &h.ov);
    write_png(path, (1400, 560), |root, font| {
        let panels = root.split_evenly((1, 2));
        draw_lines(&panels[0], &qk, font)?;
        draw_lines(&panels[1], &ov, font)
    })
}

fn plot_density(path: &Path, d: &DensityJson) -> Result<(), CliError> {
    // A log scale shows both the bulk near zero and the outliers; values
    // below 1e-10 of the peak are numerical dust, drawn at that floor.
    let peak = d.density.iter().copied().fold(0.0, f64::max);
    let pts: Vec<(f64, f64)> = d
        .grid
        .iter()
        .zip(&d.density)
        .map(|(g, v)| (*g, v.max(1e-10 * peak)))
        .collect();
    let chart = LineChart {
        title: "Hessian eigenvalue density (stochastic Lanczos quadrature)",
        x_desc: "eigenvalue",
        y_desc: "density",
        log_y: true,
        series: vec![("density".into(), pts)],
    };
    write_png(path, (1000, 600), |root, font| {
        draw_lines(root, &chart, font)
    })
}
