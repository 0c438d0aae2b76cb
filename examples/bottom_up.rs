#![recursion_limit = "256"]
//! `cargo run --example bottom_up -- [--smoke | --full | --config FILE] [--out DIR] [--device D] [--seed S] [--data D] [--quiet]`:
//! see `repsim::experiments::bottom_up` and the README. The same as `repsim experiment bottom_up`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    repsim::cli::experiment::example_main("bottom_up")
}
