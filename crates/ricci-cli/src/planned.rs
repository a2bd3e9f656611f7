//! Subcommands that are designed (DESIGN 7) but not built yet. Each one says
//! so on one line and exits with code 2, whatever arguments it was given, so
//! scripts written against the final interface fail loudly, not silently.

use std::process::ExitCode;

use clap::Args;

/// Accepts (and ignores) any arguments, so the message below is what the
/// user sees instead of a usage error about flags that do not exist yet.
#[derive(Args, Debug)]
pub struct PlannedArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

/// The issue that will build each planned subcommand. The lead keeps this
/// table in step with the tracker; it is the one place to change.
const PLANNED: &[(&str, &str)] = &[
    ("compress", "#8, decompositions"),
    ("analyze", "#9, curvature and spectra"),
];

/// Prints `ricci <name>: not implemented yet (see issue ...)` and returns exit code 2.
pub fn not_implemented(name: &str) -> ExitCode {
    let issue = PLANNED
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("the roadmap", |(_, issue)| issue);
    eprintln!("ricci {name}: not implemented yet (see issue {issue})");
    ExitCode::from(2)
}
