#![recursion_limit = "256"]
//! The `repsim` command line; see `repsim --help` and the README.

use std::process::ExitCode;

/// mimalloc keeps freed memory for reuse. With the system allocator on Linux, each large
/// tensor is a fresh mmap, and touching its pages again costs 30-65% extra time when a forward
/// pass keeps every activation (`--probe all`); see the README's benchmarks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    repsim::cli::main()
}
