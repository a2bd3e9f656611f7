//! `ricci`: the command-line tool. One file per subcommand, each a thin layer
//! over the library; this file only parses arguments and turns errors into
//! one line on stderr and a non-zero exit code.

mod analyze;
mod bench;
mod compress;
mod decompose;
mod einsum;
mod embed;
mod plotting;
mod train;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Tensors, linear algebra and differentiable tensor calculus for large AI models.
#[derive(Parser, Debug)]
#[command(name = "ricci", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a GPT on the built-in addition task or a text file
    Train(train::TrainArgs),
    /// Generate text from a trained model
    Sample(train::SampleArgs),
    /// Embed sentences with a MiniLM-compatible encoder
    Embed(embed::EmbedArgs),
    /// Cosine similarity between two embedded sentences
    Similarity(embed::SimilarityArgs),
    /// Evaluate an einsum equation on .npy inputs, or plan its contraction path
    Einsum(einsum::EinsumArgs),
    /// CP / Tucker / tensor-train decomposition of a .npy tensor
    Decompose(decompose::DecomposeArgs),
    /// Low-rank compression of a model's weights (a ricci run or a sentence-transformers folder)
    Compress(compress::CompressArgs),
    /// Hessian eigenvalues, trace and density; weight and attention-head spectra
    Analyze(analyze::AnalyzeArgs),
    /// Micro-benchmarks of ricci's kernels (matmul, elementwise, reductions)
    Bench(bench::BenchArgs),
}

/// An error for the user: printed as one `error: ...` line.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

/// Large buffers start on a cache line (see `ricci::alloc`).
#[global_allocator]
static ALLOC: ricci::alloc::CacheLineAlloc = ricci::alloc::CacheLineAlloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    ricci::kernels::par::init_from_env();
    // On a pool thread, so each parallel op is a fork-join on the pool
    // rather than a hand-off to it (see `on_pool`). `bench` installs a pool
    // of its own for each thread count, so it stays on the main thread.
    let command = cli.command;
    let result = if matches!(command, Command::Bench(_)) {
        run(command)
    } else {
        ricci::kernels::par::on_pool(move || run(command))
    };
    match result {
        Ok(code) => code,
        Err(CliError(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Train(args) => train::run(&args),
        Command::Sample(args) => train::sample(&args),
        Command::Embed(args) => embed::run_embed(&args),
        Command::Similarity(args) => embed::run_similarity(&args),
        Command::Einsum(args) => einsum::run(&args),
        Command::Decompose(args) => decompose::run(&args),
        Command::Compress(args) => compress::run(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}

/// `--help` and `--version` print as clap renders them; a real usage error
/// becomes one line (clap's own first line) and exit code 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Printing help can only fail on a closed stdout; nothing to report then.
        let _ = e.print();
        return if e.exit_code() == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
    }
    eprintln!(
        "error: {} (see '{}')",
        first_paragraph(&e.render().to_string()),
        help_hint()
    );
    ExitCode::from(2)
}

/// clap's message up to its first blank line, on one line: "the following
/// required arguments were not provided: <EQUATION>" keeps the names that
/// clap puts on the lines after the first.
fn first_paragraph(rendered: &str) -> String {
    let words: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let text = words.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    if text.is_empty() {
        "invalid arguments".to_string()
    } else {
        text.to_string()
    }
}

/// `ricci <sub> --help` when the command line names a subcommand, else `ricci --help`.
fn help_hint() -> String {
    let sub = std::env::args().nth(1).filter(|arg| {
        Cli::command()
            .get_subcommands()
            .any(|c| c.get_name() == arg.as_str())
    });
    match sub {
        Some(sub) => format!("ricci {sub} --help"),
        None => "ricci --help".to_string(),
    }
}
