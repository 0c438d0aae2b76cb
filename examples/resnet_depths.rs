#![recursion_limit = "256"]
//! `cargo run --example resnet_depths -- [--smoke | --full] [--out DIR] [--device D] [--seed S] [--data D] [--quiet]`:
//! see `repsim::experiments::resnet_depths` and the README.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use repsim::experiments::{main_with, resnet_depths, ExperimentArgs};

#[derive(Parser)]
#[command(name = "resnet_depths", about = "repsim experiment: resnet_depths")]
struct Args {
    #[command(flatten)]
    args: ExperimentArgs,
}

fn main() -> std::process::ExitCode {
    main_with(resnet_depths::run, &Args::parse().args)
}
