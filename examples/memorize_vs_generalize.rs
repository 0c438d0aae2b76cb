#![recursion_limit = "256"]
//! `cargo run --example memorize_vs_generalize -- [--smoke | --full | --config FILE] [--out DIR] [--device D] [--seed S] [--data D] [--quiet]`:
//! see `repsim::experiments::memorize_vs_generalize` and the README. The same as `repsim experiment memorize_vs_generalize`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    repsim::cli::experiment::example_main("memorize_vs_generalize")
}
