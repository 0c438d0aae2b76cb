#![recursion_limit = "256"]
//! `cargo run --example wide_vs_deep -- [--smoke | --full | --config FILE] [--out DIR] [--device D] [--seed S] [--data D] [--quiet]`:
//! see `repsim::experiments::wide_vs_deep` and the README. The same as `repsim experiment wide_vs_deep`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    repsim::cli::experiment::example_main("wide_vs_deep")
}
