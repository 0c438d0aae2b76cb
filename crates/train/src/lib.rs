#![recursion_limit = "256"]
//! Training repsim's networks, and watching their layers while they train.
//!
//! | module | what |
//! | --- | --- |
//! | [`config`] | [`TrainConfig`]: model, data, optimiser, schedule, seed (the run's `config.json`) |
//! | [`schedule`] | learning-rate schedules as a pure function of the step |
//! | [`optimizer`] | SGD / Adam / AdamW from burn-optim, with PyTorch's defaults made explicit |
//! | [`network`] | [`Network`]: what training needs of a model; every repsim model has it |
//! | [`observe`] | what the Tracker and [`compare()`] observe: a closure returning named tensors, or a [`Network`] |
//! | [`compare`](mod@compare) | [`compare()`]: minibatch CKA of two models' layers on the same inputs, in memory |
//! | [`probing`] | the one probing path: [`probing::probe_batches`], [`probing::layers_of`] and [`probing::comparison_pass`], which feeds the comparison driver batch by batch (compare, the Tracker, the experiments, `repsim compare` on weights and runs) |
//! | [`device`] | choosing the device: `auto` (a hardware GPU through wgpu, else flex), `flex`, `wgpu`, `vulkan` |
//! | [`datasets`] | the data of a run and its epoch order, fixed by (seed, epoch) |
//! | [`trainer`] | [`train`]: the loop (restore, train an epoch, evaluate, checkpoint), evaluation |
//! | [`run_options`] | [`RunOptions`]: how a training runs (device, resume, checkpoints kept, what the Tracker observes and when) |
//! | [`run_dir`] | a run directory: its record (`config.json`), lock, same-run checks before resuming, cleanup, metrics file |
//! | `track_hook` | the Tracker as a step and epoch hook of the loop (which never names the Tracker) |
//! | [`checkpoint`] | checkpoints durable as a set (files, then a manifest), pruning, fallback |
//! | [`durable`] | repsim's atomic writer (re-exported) and the checkpoint manifests' hashes |
//! | [`metrics`] | one `metrics.jsonl` line per epoch |
//! | [`progress`] | indicatif progress bars |
//! | [`tracker`] | [`Tracker`]: layers during training; convergence tables (Raghu et al. 2017) |
//! | `burn_train` | (feature `burn-train`) the Tracker inside burn-train's `SupervisedTraining` |
//! | [`error`] | the crate's one error type, naming the run directory, file or value |
//!
//! A run directory holds `config.json`, `metrics.jsonl`, `checkpoints/`, the final weights
//! `model.bpk` and, with tracking, `track/`.
//!
//! ```
//! use repsim_train::TrackEpochs;
//!
//! // What `repsim train --track steps=20` observes: initialisation, every 20 steps, the end.
//! assert_eq!(TrackEpochs::parse("steps=20")?, TrackEpochs::EverySteps(20));
//! assert!(TrackEpochs::parse("steps=0").is_err());
//! # Ok::<(), repsim_train::TrainError>(())
//! ```

#[cfg(feature = "burn-train")]
pub mod burn_train;
pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod datasets;
pub mod device;
pub mod durable;
pub mod error;
pub mod metrics;
pub mod network;
pub mod observe;
pub mod optimizer;
pub mod probing;
pub mod progress;
pub mod run_dir;
pub mod run_options;
pub mod schedule;
mod track_hook;
pub mod tracker;
pub mod trainer;

pub use compare::{compare, CompareOptions};
pub use config::{DataConfig, OptimizerConfig, TrainConfig};
pub use error::{Result, TrainError};
pub use metrics::EpochMetrics;
pub use network::{visit_network, Inputs, Network, NetworkVisitor};
pub use observe::{IntoActivations, Observe, ProbeInput};
pub use progress::ProgressMode;
pub use run_dir::{
    completed_run, read_metrics, same_config_run, RunRecord, TrackRecord, FINAL_WEIGHTS,
};
pub use run_options::{RunOptions, TrackEpochs, TrackOptions};
pub use schedule::{ScheduleConfig, ScheduleKind};
pub use tracker::{ConvergenceTable, TimeUnit, TrackIndex, TrackReport, Tracker, TrackerConfig};
pub use trainer::{fit_model_to_data, train, TrainSummary};
