//! The experiments of the papers repsim is built on, each only its science over one harness:
//!
//! | module | paper | question |
//! | --- | --- | --- |
//! | [`wide_vs_deep`] | Nguyen, Raghu & Kornblith 2021 | block structure in wide and deep ResNets |
//! | [`bottom_up`] | Raghu et al. 2017 (Fig. 4); Morcos et al. 2018 | do layers converge bottom-up? |
//! | [`memorize_vs_generalize`] | Morcos et al. 2018 (Fig. 2-3) | are generalising networks more alike than memorising ones? |
//! | [`resnet_depths`] | the blog post this project started from | ResNet-50 vs ResNet-101 and ResNet-152, every block |
//!
//! [`harness`] holds the pipeline they share: each implements [`Experiment`] (a serde config
//! with three scales, `--smoke` for CI, the default for a 2-core CPU, `--full` for a GPU; the
//! networks it trains; its analysis, figures and summary), and [`run`] trains (reusing complete
//! runs and resuming interrupted ones in the output directory), analyses, and writes
//! `results.json` (with provenance) and `summary.md`, as a plan of cells ([`cells`]: each
//! training and analysis part a cell that can run apart; [`slurm`]: the batch scripts that run
//! them on a cluster). Each is run by `cargo run --example NAME`
//! and by `repsim experiment NAME` with the same flags ([`ExperimentArgs`]); [`run_named`]
//! picks one by name. Block structure and rank correlation live in [`analysis`], the
//! resampling statistics of the findings in [`statistics`], drawing the Tracker's tables in
//! [`tracking`], and the one error type with its rule from error to exit code, which the
//! command line shares, in [`error`]. The `repsim` crate re-exports this one as
//! `repsim::experiments` (and `repsim::{analysis, statistics, tracking, error}`).
//!
//! ```
//! use repsim_experiments::ExperimentArgs;
//!
//! let args = ExperimentArgs { seed: 3, smoke: true, ..ExperimentArgs::default() };
//! assert_eq!(args.reproduce_flags()?, "--seed 3 --smoke"); // the summary's reproduce line
//! # Ok::<(), repsim_experiments::ExperimentError>(())
//! ```

pub mod analysis;
pub mod bottom_up;
pub mod cells;
pub mod error;
pub mod harness;
pub mod memorize_vs_generalize;
pub mod resnet_depths;
pub mod slurm;
pub mod statistics;
pub mod tracking;
pub mod wide_vs_deep;

use std::path::PathBuf;

pub use cells::{run, run_with, Cell, CellKind, CellOutcome, CellRecord, Plan, TrainingStage};
pub use harness::{
    build_commit, derived_seed, layers_of, markdown_table, AnalysisPart, Context, Experiment,
    ExperimentArgs, ExperimentResults, Figure, Provenance, Scale, TrainedRun, Training,
};

pub use crate::error::{Error as ExperimentError, Result};

/// The experiments' names, as `repsim experiment NAME` and the examples take them.
pub const NAMES: [&str; 4] = [
    wide_vs_deep::WideVsDeep::NAME,
    bottom_up::BottomUp::NAME,
    memorize_vs_generalize::MemorizeVsGeneralize::NAME,
    resnet_depths::ResnetDepths::NAME,
];

/// Calls `$call::<E>($args...)` for the experiment `E` called `$name`.
macro_rules! by_name {
    ($name:expr, $call:ident ( $($arg:expr),* )) => {
        match $name {
            wide_vs_deep::WideVsDeep::NAME => cells::$call::<wide_vs_deep::WideVsDeep>($($arg),*),
            bottom_up::BottomUp::NAME => cells::$call::<bottom_up::BottomUp>($($arg),*),
            memorize_vs_generalize::MemorizeVsGeneralize::NAME => {
                cells::$call::<memorize_vs_generalize::MemorizeVsGeneralize>($($arg),*)
            }
            resnet_depths::ResnetDepths::NAME => {
                cells::$call::<resnet_depths::ResnetDepths>($($arg),*)
            }
            other => Err(ExperimentError::Input(format!(
                "unknown experiment {other:?}; use {}",
                NAMES.join(", ")
            ))),
        }
    };
}

/// Runs the experiment called `name` (every cell of its plan, in order); returns the path of
/// its `summary.md`.
pub fn run_named(name: &str, args: &ExperimentArgs) -> Result<PathBuf> {
    by_name!(name, run(args))
}

/// Runs the experiment called `name` with its training cells run by `train_elsewhere`
/// ([`cells::run_after_training`]).
pub fn run_after_training_named(
    name: &str,
    args: &ExperimentArgs,
    train_elsewhere: &mut dyn FnMut(&Plan) -> Result<cells::TrainingStage>,
) -> Result<PathBuf> {
    by_name!(name, run_after_training(args, train_elsewhere))
}

/// The plan of cells of the experiment called `name`; writes nothing.
pub fn plan_named(name: &str, args: &ExperimentArgs) -> Result<Plan> {
    by_name!(name, plan(args))
}

/// Runs one cell of the experiment called `name`.
pub fn run_cell_named(name: &str, args: &ExperimentArgs, cell: &str) -> Result<CellOutcome> {
    by_name!(name, run_cell(args, cell))
}
