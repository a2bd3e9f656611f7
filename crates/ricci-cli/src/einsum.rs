//! `ricci einsum`: evaluates an einsum equation on `.npy` files, or plans
//! it for given shapes, and shows the contraction path.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use ricci::{einsum_path_with, einsum_with, io, DType, EinsumPath, PathOptions, Strategy, Tensor};

use crate::CliError;

#[derive(Args, Debug)]
pub struct EinsumArgs {
    /// The equation, in numpy's grammar (e.g. 'bhqd,bhkd->bhqk', 'ii', '...ij,...jk'); with --shapes it may also come last
    #[arg(value_name = "EQUATION", allow_hyphen_values = true)]
    equation: Option<String>,
    /// Input .npy files, one per operand (computed in f64 if any is f64, else f32)
    #[arg(value_name = "IN.npy")]
    inputs: Vec<PathBuf>,
    /// Write the result here (.npy, written atomically); without it the result is printed
    #[arg(short, long, value_name = "OUT.npy")]
    output: Option<PathBuf>,
    /// Print the contraction path: each step's operands, equation, result shape and cost
    #[arg(long)]
    explain: bool,
    /// Print the path as JSON: {"path", "flops", "naive_flops", "largest_intermediate", "strategy"}
    #[arg(long)]
    json: bool,
    /// Plan for these operand shapes instead of files, one comma-separated list per operand (e.g. --shapes 5,3,5 3,7,5; '' is a scalar)
    #[arg(long, value_name = "DIMS", num_args = 1.., allow_hyphen_values = false)]
    shapes: Option<Vec<String>>,
    /// Path planner
    #[arg(long, value_enum, default_value_t = Planner::Auto)]
    planner: Planner,
    /// The most elements an intermediate may hold
    #[arg(long, value_name = "ELEMENTS")]
    memory_limit: Option<u128>,
}

/// `--planner` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Planner {
    /// Optimal up to 12 operands, greedy beyond
    Auto,
    /// Dynamic programming over subsets (exact in opt_einsum's cost model)
    Optimal,
    /// Greedy (any number of operands)
    Greedy,
}

pub fn run(args: &EinsumArgs) -> Result<ExitCode, CliError> {
    let options = PathOptions {
        strategy: match args.planner {
            Planner::Auto => Strategy::Auto,
            Planner::Optimal => Strategy::Optimal,
            Planner::Greedy => Strategy::Greedy,
        },
        memory_limit: args.memory_limit,
    };
    let mut out = std::io::stdout().lock();
    // `--shapes 5,3,5 3,7,5 'ijk,jlk->il'`: the list of shapes takes every
    // value up to the next option, so an equation written after it lands
    // there; its last value is the equation when it is not a shape.
    let mut shapes = args.shapes.clone();
    let equation = match (&args.equation, shapes.as_mut()) {
        (Some(e), _) => e.clone(),
        (None, Some(list)) if list.last().is_some_and(|s| parse_shape(s).is_err()) => {
            list.pop().unwrap_or_default()
        }
        _ => {
            return Err(CliError(
                "einsum: no EQUATION given (e.g. ricci einsum 'ij,jk->ik' A.npy B.npy, or ricci einsum 'ij,jk->ik' --shapes 2,3 3,4)"
                    .into(),
            ))
        }
    };
    let equation = equation.as_str();
    if let Some(shapes) = &shapes {
        if !args.inputs.is_empty() || args.output.is_some() {
            return Err(CliError(
                "einsum: --shapes plans without data; give either --shapes or input files, not both"
                    .into(),
            ));
        }
        let shapes = shapes
            .iter()
            .map(|s| parse_shape(s))
            .collect::<Result<Vec<_>, _>>()?;
        let plan = einsum_path_with(equation, &shapes, &options)?;
        if args.json {
            writeln!(out, "{}", path_json(&plan))?;
        } else {
            write!(out, "{plan}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.inputs.is_empty() {
        return Err(CliError(
            "einsum: no inputs; give one .npy file per operand, or --shapes to plan without data"
                .into(),
        ));
    }
    let mut tensors = args
        .inputs
        .iter()
        .map(io::read_npy)
        .collect::<ricci::Result<Vec<Tensor>>>()?;
    let dtype = if tensors.iter().any(|t| t.dtype() == DType::F64) {
        DType::F64
    } else {
        DType::F32
    };
    tensors = tensors.iter().map(|t| t.to_dtype(dtype)).collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    if args.explain || args.json {
        let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
        let plan = einsum_path_with(equation, &shapes, &options)?;
        if args.json {
            writeln!(out, "{}", path_json(&plan))?;
        } else {
            write!(out, "{plan}")?;
        }
    }
    let result = einsum_with(equation, &refs, &options)?;
    match &args.output {
        Some(path) => io::write_npy(path, &result)?,
        None if !(args.explain || args.json) => writeln!(out, "{result}")?,
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `5,3,5` -> `[5, 3, 5]`; `''` or `()` -> a scalar.
fn parse_shape(text: &str) -> Result<Vec<usize>, CliError> {
    let trimmed = text.trim().trim_start_matches('(').trim_end_matches(')');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    trimmed
        .split(',')
        .map(|d| {
            d.trim().parse::<usize>().map_err(|_| {
                CliError(format!(
                    "einsum: bad shape '{text}': expected comma-separated sizes such as 5,3,5"
                ))
            })
        })
        .collect()
}

/// The JSON of `--json` (written by hand: costs can exceed 64 bits).
fn path_json(plan: &EinsumPath) -> String {
    let path: Vec<String> = plan
        .path
        .iter()
        .map(|step| {
            let items: Vec<String> = step.iter().map(|p| p.to_string()).collect();
            format!("[{}]", items.join(", "))
        })
        .collect();
    let strategy = match plan.strategy {
        Strategy::Greedy => "greedy",
        _ => "optimal",
    };
    format!(
        "{{\"path\": [{}], \"flops\": {}, \"naive_flops\": {}, \"largest_intermediate\": {}, \"strategy\": \"{strategy}\"}}",
        path.join(", "),
        plan.flops,
        plan.naive_flops,
        plan.largest_intermediate
    )
}
