//! The settings of mimalloc, the global allocator of the `repsim` binary and the examples.
//!
//! mimalloc returns ("purges") freed memory to the operating system a second after it is freed,
//! by default (`purge_delay = 1000` ms in the mimalloc v3 that `libmimalloc-sys` 0.1.49 builds).
//! A training step frees and reallocates the same large tensors (im2col buffers, activations,
//! gradients) every few hundred milliseconds, and some of that memory was purged and faulted in
//! again, as fresh pages the kernel zeroes: 172,000 minor page faults in 2 epochs of ResNet-20 at
//! 32 x 32 (2,560 images); a `perf` profile of training had 16% of its samples in page zeroing.
//! [`keep_freed_memory`] turns purging off (`purge_delay = -1`), as the environment variable
//! `MIMALLOC_PURGE_DELAY=-1` would: 1,400 page faults in the same run, which trains faster
//! (README, *Benchmarks*). The price is that the process keeps its peak memory until it exits
//! (the peak itself barely grew: 447 against 438 MB there), which suits a command running one
//! job.

use std::os::raw::{c_int, c_long};

// Links the mimalloc library (and its symbols below) into every binary using this module.
use mimalloc as _;

// Declared here rather than through `libmimalloc-sys`'s `extended` feature, which needs a crate
// (`cty`) that this workspace does not vendor; the symbols are in the mimalloc library that the
// `mimalloc` crate links.
extern "C" {
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// `mi_option_purge_delay` in mimalloc v3's `enum mi_option_e` (`include/mimalloc.h`), the
/// version `libmimalloc-sys` builds without its `v2` feature.
const PURGE_DELAY: c_int = 15;

/// Keeps freed memory in the process for reuse instead of returning it to the OS, unless the
/// user set `MIMALLOC_PURGE_DELAY` themselves. Call it first thing in `main`; it has an effect
/// only where mimalloc is the global allocator.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store in mimalloc's option table; the index is
        // checked against mimalloc's documented default in the test below.
        unsafe { mi_option_set(PURGE_DELAY, -1) };
    }
}

/// mimalloc's current purge delay in milliseconds (-1: never).
pub fn purge_delay() -> i64 {
    // SAFETY: reading an option (initialising it from the environment on first use).
    unsafe { mi_option_get(PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // purge_delay defaults to 1000 ms in mimalloc v3 (`src/options.c`); a wrong index would
        // read another option (its neighbours default to 1 and 0).
        assert_eq!(purge_delay(), 1000);
        keep_freed_memory();
        assert_eq!(purge_delay(), -1);
    }
}
