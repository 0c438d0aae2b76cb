#![recursion_limit = "256"]
//! repsim: do these neural networks learn the same things?
//!
//! repsim measures representational similarity (CKA and relatives) between every pair of
//! layers of two networks, as burn tensor ops on the device the models run on: any GPU through
//! wgpu (Vulkan, Metal, DX12), or the CPU through burn's `flex` backend.
//!
//! This crate is the facade: it re-exports the workspace crates and owns device selection
//! ([`device`]), the experiments ([`experiments`], over one harness), reusable analysis
//! ([`analysis`]), the resampling statistics of the experiments' findings ([`statistics`]), the one error-to-exit-code rule ([`error`]) and, with the default feature
//! `cli`, the `repsim` command line (`cli`: clap, ctrlc and the mimalloc allocator settings).
//! Without it (`default-features = false`) the library pulls in none of those.
//!
//! The library prints nothing: progress and warnings go through the `log` facade (installed by
//! the binary and the examples as [`logging::StdLogger`], at the verbosity of `repsim -q`/`-v`)
//! and warnings are also returned. With `cli`, `allocator` keeps freed memory for reuse (the
//! allocator settings of the binary).

#[cfg(feature = "cli")]
pub mod allocator;
#[cfg(feature = "cli")]
pub mod cli;
pub mod logging;

/// The experiments (`repsim-experiments`): the harness, the four experiments, cells and Slurm.
pub use repsim_experiments as experiments;
/// Block structure, rank correlation and the first principal component's part (`repsim-experiments`).
pub use repsim_experiments::analysis;
/// The one error of repsim's programs and its exit codes (`repsim-experiments`).
pub use repsim_experiments::error;
/// The experiments' resampling statistics (`repsim-experiments`).
pub use repsim_experiments::statistics;
/// Drawing the Tracker's convergence tables (`repsim-experiments`).
pub use repsim_experiments::tracking;
/// Choosing the device (`repsim-train`).
pub use repsim_train::device;

/// The datasets (`repsim-data`).
pub use repsim_data as data;
/// repsim's one atomic file writer (`repsim-durable`).
pub use repsim_durable as durable;
/// The networks (`repsim-model`).
pub use repsim_model as model;
/// The similarity measures (`repsim-similarity`).
pub use repsim_similarity as similarity;
pub use repsim_similarity::{
    linear_cka, linear_cka_debiased, linear_cka_matrix, rbf_cka, rbf_cka_debiased, HsicEstimator,
    Layer, Measure, MinibatchCka, SimilarityError, SimilarityMatrix,
};
/// Training and the Tracker (`repsim-train`).
pub use repsim_train as train;
/// The drawings (`repsim-viz`).
pub use repsim_viz as viz;

pub use device::{select_device, DeviceChoice, SelectedDevice};
pub use error::Error;
/// Any burn model's layers during training ([`train::Tracker`]) and against another's
/// ([`train::compare()`]), from a closure returning named tensors.
pub use repsim_train::{compare, CompareOptions, Tracker, TrackerConfig};
