//! `repsim experiment NAME`: the experiments of `cargo run --example NAME`, with the same flags.

use crate::experiments::{
    bottom_up, memorize_vs_generalize, resnet_depths, wide_vs_deep, ExperimentArgs, ExperimentError,
};

use super::CliError;

/// Arguments of `repsim experiment`.
#[derive(Debug, clap::Args)]
pub struct ExperimentCommandArgs {
    /// wide_vs_deep, bottom_up, memorize_vs_generalize or resnet_depths.
    pub name: String,
    #[command(flatten)]
    pub args: ExperimentArgs,
}

/// Runs `repsim experiment`.
pub fn run(command: ExperimentCommandArgs) -> Result<(), CliError> {
    let result = match command.name.as_str() {
        "wide_vs_deep" => wide_vs_deep::run(&command.args),
        "bottom_up" => bottom_up::run(&command.args),
        "memorize_vs_generalize" => memorize_vs_generalize::run(&command.args),
        "resnet_depths" => resnet_depths::run(&command.args),
        other => {
            return Err(CliError::Input(format!(
            "unknown experiment {other:?}; use wide_vs_deep, bottom_up, memorize_vs_generalize or resnet_depths"
        )))
        }
    };
    match result {
        Ok(summary) => {
            println!("results: {}", summary.display());
            Ok(())
        }
        Err(ExperimentError::Input(m)) => Err(CliError::Input(m)),
        Err(ExperimentError::Failure(m)) => Err(CliError::Failure(m)),
    }
}
