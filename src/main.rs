#![recursion_limit = "256"]
//! The `repsim` command line; see `repsim --help` and the README.

use std::process::ExitCode;

fn main() -> ExitCode {
    repsim::cli::main()
}
