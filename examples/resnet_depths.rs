#![recursion_limit = "256"]
//! `cargo run --example resnet_depths -- [--smoke | --full | --config FILE] [--out DIR] [--device D] [--seed S] [--data D] [--quiet]`:
//! see `repsim::experiments::resnet_depths` and the README. The same as `repsim experiment resnet_depths`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    repsim::cli::experiment::example_main("resnet_depths")
}
