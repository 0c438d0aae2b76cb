#![recursion_limit = "256"]
//! `cargo run --example bottom_up -- [--smoke | --full] [--out DIR] [--device D] [--seed S] [--data D] [--quiet]`:
//! see `repsim::experiments::bottom_up` and the README.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use repsim::experiments::{bottom_up, main_with, ExperimentArgs};

#[derive(Parser)]
#[command(name = "bottom_up", about = "repsim experiment: bottom_up")]
struct Args {
    #[command(flatten)]
    args: ExperimentArgs,
}

fn main() -> std::process::ExitCode {
    main_with(bottom_up::run, &Args::parse().args)
}
