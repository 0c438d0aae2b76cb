#![recursion_limit = "256"]
//! `cargo run --example wide_vs_deep -- [--smoke | --full] [--out DIR] [--device D] [--seed S] [--data D] [--quiet]`:
//! see `repsim::experiments::wide_vs_deep` and the README.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use repsim::experiments::{main_with, wide_vs_deep, ExperimentArgs};

#[derive(Parser)]
#[command(name = "wide_vs_deep", about = "repsim experiment: wide_vs_deep")]
struct Args {
    #[command(flatten)]
    args: ExperimentArgs,
}

fn main() -> std::process::ExitCode {
    main_with(wide_vs_deep::run, &Args::parse().args)
}
