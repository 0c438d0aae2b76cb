//! Shared helpers of the similarity crate's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Device, Tensor};
use repsim_similarity::read_activations;

/// The repository's `tests/fixtures` (or `REPSIM_FIXTURES`). The crate's directory is read at
/// run time (cargo sets `CARGO_MANIFEST_DIR` for the tests it runs), not baked in at compile
/// time: a test binary reused by another checkout must read that checkout's fixtures. Missing
/// fixtures fail the test loudly rather than skipping it.
pub fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("REPSIM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
            crate_dir.join("../../tests/fixtures")
        });
    assert!(
        dir.join("kornblith_demo_x.npy").is_file(),
        "test fixtures not found in {} (the repository's tests/fixtures, or REPSIM_FIXTURES)",
        dir.display()
    );
    dir
}

/// A fixture as an `N x D` tensor on `device`.
pub fn fixture(name: &str, device: &Device) -> Tensor<2> {
    let mut layers = read_activations(&fixtures_dir().join(name)).expect("fixture reads");
    layers.remove(0).into_layer(device).matrix
}

/// Asserts `got` is within `tolerance` of `want`.
pub fn assert_close(what: &str, got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: got {got:.6}, reference {want:.6} (apart by {:.1e})",
        (got - want).abs()
    );
}
