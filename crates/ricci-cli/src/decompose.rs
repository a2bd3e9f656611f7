//! `ricci decompose`: CP, Tucker or tensor-train decomposition of a `.npy`
//! tensor; prints the relative error, sweeps, time and compression ratio,
//! and writes the factors as `.npy` files (atomically) into `--out DIR`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use ricci::decomp::{self, CpInit, CpParams, TtParams, TuckerParams};
use ricci::{io, Tensor};

use crate::CliError;

#[derive(Args, Debug)]
pub struct DecomposeArgs {
    /// The tensor to decompose (.npy, f32 or f64, order 3 or more)
    #[arg(value_name = "IN.npy")]
    input: PathBuf,
    /// CP decomposition of rank R, by alternating least squares
    #[arg(long, value_name = "R")]
    cp: Option<usize>,
    /// Tucker decomposition with one rank per mode, by HOOI from the HOSVD
    #[arg(long, value_name = "R1,R2,...", value_delimiter = ',')]
    tucker: Option<Vec<usize>>,
    /// Tensor train (TT-SVD) with relative Frobenius error at most EPS
    #[arg(long, value_name = "EPS", allow_negative_numbers = true)]
    tt: Option<f64>,
    /// With --tt: cap every TT rank at R
    #[arg(long, value_name = "R", requires = "tt")]
    max_rank: Option<usize>,
    /// With --tucker: stop at the HOSVD (no HOOI sweeps)
    #[arg(long, requires = "tucker")]
    hosvd: bool,
    /// Write the factors into DIR as .npy files (created if missing)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
    /// CP / HOOI: the most sweeps
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_iter: usize,
    /// CP / HOOI: stop when the relative error changes by less than this between sweeps
    #[arg(long, value_name = "F", default_value_t = 1e-8)]
    tol: f64,
    /// CP: initialisation
    #[arg(long, value_enum, default_value_t = Init::Svd)]
    init: Init,
    /// CP: seed of the random initialisation
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
}

/// `--init` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Init {
    /// Leading singular vectors of each unfolding
    Svd,
    /// Seeded Gaussian factors
    Random,
}

/// What one decomposition produced, ready to print and write.
struct Outcome {
    method: &'static str,
    ranks: Vec<usize>,
    iterations: Option<usize>,
    converged: Option<bool>,
    seconds: f64,
    relative_error: f64,
    parameters: usize,
    files: Vec<(String, Tensor)>,
}

pub fn run(args: &DecomposeArgs) -> Result<ExitCode, CliError> {
    let given = [args.cp.is_some(), args.tucker.is_some(), args.tt.is_some()];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(CliError(
            "decompose: give exactly one of --cp R, --tucker R1,R2,... or --tt EPS".into(),
        ));
    }
    let x = io::read_npy(&args.input)?;
    let outcome = if let Some(rank) = args.cp {
        cp(&x, rank, args)?
    } else if let Some(ranks) = &args.tucker {
        tucker(&x, ranks, args)?
    } else {
        tt(&x, args)?
    };
    let mut names = Vec::new();
    if let Some(dir) = &args.out {
        names = write_files(dir, &outcome.files)?;
    }
    let numel = x.numel();
    let ratio = numel as f64 / outcome.parameters.max(1) as f64;
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "method": outcome.method,
            "shape": x.shape(),
            "dtype": x.dtype().name(),
            "ranks": outcome.ranks,
            "relative_error": outcome.relative_error,
            "iterations": outcome.iterations,
            "converged": outcome.converged,
            "time_s": outcome.seconds,
            "parameters": outcome.parameters,
            "numel": numel,
            "compression_ratio": ratio,
            "out_dir": args.out.as_ref().map(|d| d.display().to_string()),
            "files": names,
        });
        writeln!(out, "{json}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let sweeps = match (outcome.iterations, outcome.converged) {
        (Some(n), Some(true)) => format!(", {n} iterations (converged)"),
        (Some(n), _) => format!(", {n} iterations (not converged: raise --max-iter or --tol)"),
        _ => String::new(),
    };
    writeln!(
        out,
        "{} ranks {:?} of {:?} {}: relative error {:.4e}{sweeps}, {:.1} ms",
        outcome.method,
        outcome.ranks,
        x.shape(),
        x.dtype().name(),
        outcome.relative_error,
        outcome.seconds * 1e3
    )?;
    writeln!(
        out,
        "{} parameters for {numel} numbers: compression {ratio:.2}x",
        outcome.parameters
    )?;
    if let Some(dir) = &args.out {
        writeln!(out, "wrote {} to {}", names.join(" "), dir.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cp(x: &Tensor, rank: usize, args: &DecomposeArgs) -> Result<Outcome, CliError> {
    let params = CpParams {
        max_iter: args.max_iter,
        tol: args.tol,
        init: match args.init {
            Init::Svd => CpInit::Svd,
            Init::Random => CpInit::Random,
        },
        seed: args.seed,
    };
    let start = Instant::now();
    let cp = decomp::cp_als(x, rank, &params)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut files = vec![("weights.npy".to_string(), cp.weights.clone())];
    files.extend(factor_files(&cp.factors, "factor"));
    Ok(Outcome {
        method: "cp",
        ranks: vec![rank],
        iterations: Some(cp.iterations),
        converged: Some(cp.converged),
        seconds,
        relative_error: cp.relative_error(x)?,
        parameters: cp.num_parameters(),
        files,
    })
}

fn tucker(x: &Tensor, ranks: &[usize], args: &DecomposeArgs) -> Result<Outcome, CliError> {
    let start = Instant::now();
    let t = if args.hosvd {
        decomp::tucker_hosvd(x, ranks)?
    } else {
        let params = TuckerParams {
            max_iter: args.max_iter,
            tol: args.tol,
        };
        decomp::tucker_hooi(x, ranks, &params)?
    };
    let seconds = start.elapsed().as_secs_f64();
    let mut files = vec![("core.npy".to_string(), t.core.clone())];
    files.extend(factor_files(&t.factors, "factor"));
    Ok(Outcome {
        method: if args.hosvd { "tucker-hosvd" } else { "tucker" },
        ranks: t.ranks(),
        iterations: Some(t.iterations),
        converged: Some(t.converged),
        seconds,
        relative_error: t.relative_error(x)?,
        parameters: t.num_parameters(),
        files,
    })
}

fn tt(x: &Tensor, args: &DecomposeArgs) -> Result<Outcome, CliError> {
    let params = TtParams {
        eps: args.tt,
        max_rank: args.max_rank,
    };
    let start = Instant::now();
    let tt = decomp::tensor_train(x, &params)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(Outcome {
        method: "tt",
        ranks: tt.ranks(),
        iterations: None,
        converged: None,
        seconds,
        relative_error: tt.relative_error(x)?,
        parameters: tt.num_parameters(),
        files: factor_files(&tt.cores, "core"),
    })
}

fn factor_files(tensors: &[Tensor], stem: &str) -> Vec<(String, Tensor)> {
    tensors
        .iter()
        .enumerate()
        .map(|(n, t)| (format!("{stem}_{n}.npy"), t.clone()))
        .collect()
}

/// Writes each tensor into `dir` (each file atomically); returns the names.
fn write_files(dir: &Path, files: &[(String, Tensor)]) -> Result<Vec<String>, CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError(format!("decompose: cannot create {}: {e}", dir.display())))?;
    files
        .iter()
        .map(|(name, t)| {
            io::write_npy(dir.join(name), &t.contiguous())?;
            Ok(name.clone())
        })
        .collect()
}
