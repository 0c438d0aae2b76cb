#![recursion_limit = "256"]
//! `cargo run --example memorize_vs_generalize -- [--smoke | --full] [--out DIR] [--device D] [--seed S] [--data D] [--quiet]`:
//! see `repsim::experiments::memorize_vs_generalize` and the README.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use repsim::experiments::{main_with, memorize_vs_generalize, ExperimentArgs};

#[derive(Parser)]
#[command(
    name = "memorize_vs_generalize",
    about = "repsim experiment: memorize_vs_generalize"
)]
struct Args {
    #[command(flatten)]
    args: ExperimentArgs,
}

fn main() -> std::process::ExitCode {
    main_with(memorize_vs_generalize::run, &Args::parse().args)
}
