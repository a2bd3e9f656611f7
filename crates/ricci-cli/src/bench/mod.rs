//! `ricci bench`: micro-benchmarks of ricci's kernels. Each row of the suite
//! ([`suite::suite`]) is built once, then timed on a rayon pool of each
//! requested size (ricci's kernels run on the current pool, so
//! `pool.install` decides their thread count), and reported as the median
//! time with GFLOP/s or GB/s. `bench/compare.py` runs the same rows in numpy.

mod einsum_rows;
mod harness;
mod hessian_rows;
mod linalg_rows;
mod suite;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;
use ricci::Rng;
use serde::Serialize;

use crate::CliError;
use harness::{Plan, Timing};
use suite::{RowSpec, Work};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Run only rows whose name or shape contains WORD (e.g. matmul, gelu, 4096x768)
    #[arg(long, value_name = "WORD")]
    filter: Option<String>,
    /// Print one JSON array (one object per row) instead of a table
    #[arg(long)]
    json: bool,
    /// Thread counts to run every row with, comma-separated
    #[arg(
        long,
        value_name = "N,M",
        value_delimiter = ',',
        default_value = "1,2",
        value_parser = clap::value_parser!(u32).range(1..=1024)
    )]
    threads: Vec<u32>,
    /// Fewer repetitions (1 warm-up, at most 3 timed runs) for tests and smoke runs
    #[arg(long)]
    quick: bool,
}

/// One measured row; the JSON keys are the contract with `bench/compare.py`.
#[derive(Serialize, Debug)]
struct RowResult {
    name: String,
    dtype: String,
    shape: String,
    threads: usize,
    median_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    gflops: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gbps: Option<f64>,
    /// Timed runs behind the median (table only).
    #[serde(skip)]
    reps: usize,
}

pub fn run(args: &BenchArgs) -> Result<ExitCode, CliError> {
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let rows: Vec<RowSpec> = suite::suite()
        .into_iter()
        .filter(|r| args.filter.as_deref().is_none_or(|w| r.matches(w)))
        .collect();
    if rows.is_empty() {
        return Err(CliError(format!(
            "bench: no rows match --filter '{}' (try a name such as matmul, gelu, softmax, or a shape such as 4096x768)",
            args.filter.as_deref().unwrap_or("")
        )));
    }
    let pools = args
        .threads
        .iter()
        .map(|&n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n as usize)
                .build()
                .map(|pool| (n as usize, pool))
                .map_err(|e| CliError(format!("bench: cannot start {n} threads: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut out = std::io::stdout().lock();
    let progress = args.json && std::io::stderr().is_terminal();
    if !args.json {
        writeln!(
            out,
            "# ricci bench: {} rows x threads {:?}; median of {}-{} runs (about {} ms each row) after {} warm-up",
            rows.len(),
            args.threads,
            plan.min_reps,
            plan.max_reps,
            plan.budget.as_millis(),
            plan.warmup
        )?;
        writeln!(out, "{}", table_line(&TABLE_HEADER))?;
        out.flush()?;
    }

    let mut rng = Rng::new(0);
    let mut results = Vec::new();
    for row in &rows {
        let inputs = row
            .make_inputs(&mut rng)
            .map_err(|e| CliError(format!("bench {} {}: {e}", row.name, row.shape)))?;
        for (threads, pool) in &pools {
            let timing = pool
                .install(|| harness::measure(&plan, || (row.op)(&inputs)))
                .map_err(|e| CliError(format!("bench {} {}: {e}", row.name, row.shape)))?;
            let result = row_result(row, *threads, timing);
            if args.json {
                if progress {
                    eprintln!("{}", table_line(&table_cells(&result)));
                }
            } else {
                writeln!(out, "{}", table_line(&table_cells(&result)))?;
                out.flush()?;
            }
            results.push(result);
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&results)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn row_result(row: &RowSpec, threads: usize, timing: Timing) -> RowResult {
    let median_s = timing.median_s;
    let (gflops, gbps) = match row.work {
        Work::Flops(f) => (Some(f / median_s / 1e9), None),
        Work::Bytes(b) => (None, Some(b / median_s / 1e9)),
        Work::Time => (None, None),
    };
    RowResult {
        name: row.name.to_string(),
        dtype: row.dtype.to_string(),
        shape: row.shape.clone(),
        threads,
        median_s,
        gflops,
        gbps,
        reps: timing.reps,
    }
}

const TABLE_HEADER: [&str; 7] = [
    "name",
    "dtype",
    "shape",
    "threads",
    "median",
    "throughput",
    "runs",
];

/// Column widths; rows print as they finish, so widths are fixed up front.
const TABLE_WIDTHS: [usize; 7] = [15, 5, 16, 7, 11, 15, 5];

fn table_cells(r: &RowResult) -> [String; 7] {
    let throughput = match (r.gflops, r.gbps) {
        (Some(g), _) => format!("{g:.1} GFLOP/s"),
        (_, Some(g)) => format!("{g:.1} GB/s"),
        _ => String::new(),
    };
    [
        r.name.clone(),
        r.dtype.clone(),
        r.shape.clone(),
        r.threads.to_string(),
        human_time(r.median_s),
        throughput,
        r.reps.to_string(),
    ]
}

/// Left-aligns text columns and right-aligns numbers.
fn table_line<S: AsRef<str>>(cells: &[S; 7]) -> String {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(TABLE_WIDTHS).enumerate() {
        let cell = cell.as_ref();
        if i > 0 {
            line.push_str("  ");
        }
        if i < 3 {
            line.push_str(&format!("{cell:<width$}"));
        } else {
            line.push_str(&format!("{cell:>width$}"));
        }
    }
    line.trim_end().to_string()
}

fn human_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} us", s * 1e6)
    } else if s < 1.0 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_time_picks_a_readable_unit() {
        assert_eq!(human_time(2.5e-6), "2.5 us");
        assert_eq!(human_time(0.0125), "12.500 ms");
        assert_eq!(human_time(1.5), "1.500 s");
    }

    #[test]
    fn json_row_has_exactly_the_contract_keys() {
        let r = RowResult {
            name: "gelu".into(),
            dtype: "f32".into(),
            shape: "4096x4096".into(),
            threads: 2,
            median_s: 0.01,
            gflops: None,
            gbps: Some(13.4),
            reps: 7,
        };
        let v = serde_json::to_value(&r).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["dtype", "gbps", "median_s", "name", "shape", "threads"]
        );
    }
}
