//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The checkout under test, read at run time: a test binary that cargo reuses for another
/// checkout of the same target directory reads that checkout's files, not the ones it was built
/// from.
pub fn checkout() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Runs the `repsim` binary on flex with `args`.
pub fn repsim(args: &[&str]) -> Output {
    repsim_with_env(args, &[])
}

/// [`repsim`] with environment variables `vars` set for the run.
pub fn repsim_with_env(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_repsim"))
        .args(args)
        .env("REPSIM_DEVICE", "flex")
        .envs(vars.iter().copied())
        .output()
        .expect("repsim runs")
}

/// What a run printed, stdout then stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `output`, after asserting the run succeeded (showing what it printed if not).
pub fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}", text(&output));
    output
}
