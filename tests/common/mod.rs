//! Helpers shared by the CLI tests.

use std::process::{Command, Output};

/// Runs the `repsim` binary on flex with `args`.
pub fn repsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_repsim"))
        .args(args)
        .env("REPSIM_DEVICE", "flex")
        .output()
        .expect("repsim runs")
}
