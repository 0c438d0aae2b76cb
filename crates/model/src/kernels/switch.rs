//! Whether the models run repsim's flex kernels or burn's own ops, for the whole process.
//!
//! On by default. `REPSIM_KERNELS=burn` in the environment (read once) or
//! [`use_repsim_kernels`]`(false)` turns them off, for the side-by-side benchmarks and the tests
//! that hold the kernels against burn's ops. Either way a model's parameters, names and saved
//! files are the same: only the arithmetic's code path changes.

use std::sync::atomic::{AtomicU8, Ordering};

const UNSET: u8 = 0;
const REPSIM: u8 = 1;
const BURN: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNSET);

/// Whether the kernels are on (the environment decides on first use unless set before).
pub fn repsim_kernels() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        REPSIM => true,
        BURN => false,
        _ => {
            let on = std::env::var("REPSIM_KERNELS").map_or(true, |v| v != "burn");
            CHOICE.store(if on { REPSIM } else { BURN }, Ordering::Relaxed);
            on
        }
    }
}

/// Turns the kernels on (`true`) or off for the rest of the process.
pub fn use_repsim_kernels(on: bool) {
    CHOICE.store(if on { REPSIM } else { BURN }, Ordering::Relaxed);
}
