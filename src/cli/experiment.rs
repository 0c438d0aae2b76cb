//! `repsim experiment NAME`: the experiments of `cargo run --example NAME`, with the same flags
//! ([`ExperimentFlags`], the command-line face of the library's
//! [`crate::experiments::ExperimentArgs`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::device::DeviceChoice;
use crate::error::Error as CliError;
use crate::experiments::{run_named, ExperimentArgs, NAMES};

/// Flags every experiment takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ExperimentFlags {
    /// Output directory (default runs/NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Device: auto (a hardware GPU if there is one, else flex), flex, wgpu or vulkan.
    #[arg(long, env = "REPSIM_DEVICE", default_value = "auto", value_parser = super::flags::parse_device)]
    pub device: DeviceChoice,
    /// Base seed (each trained network derives its own from it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Data: shapes (built in), cifar10=PATH, cifar100=PATH, folder=PATH.
    #[arg(long, default_value = "shapes")]
    pub data: String,
    /// A seconds-long run for CI: tiny models, one epoch.
    #[arg(long, conflicts_with = "full")]
    pub smoke: bool,
    /// Paper scale (for a GPU).
    #[arg(long)]
    pub full: bool,
    /// One line per epoch instead of progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// The experiment's configuration as JSON (the `config` object of a `results.json`),
    /// instead of a scale's: any grid, data size or schedule.
    #[arg(long, conflicts_with_all = ["smoke", "full"])]
    pub config: Option<PathBuf>,
    /// resnet_depths only: torchvision ResNet-50 weights (.safetensors state dict).
    #[arg(long)]
    pub weights50: Option<PathBuf>,
    /// resnet_depths only: torchvision ResNet-101 weights.
    #[arg(long)]
    pub weights101: Option<PathBuf>,
    /// resnet_depths only: torchvision ResNet-152 weights.
    #[arg(long)]
    pub weights152: Option<PathBuf>,
}

impl From<ExperimentFlags> for ExperimentArgs {
    fn from(f: ExperimentFlags) -> Self {
        ExperimentArgs {
            out: f.out,
            device: f.device,
            seed: f.seed,
            data: f.data,
            smoke: f.smoke,
            full: f.full,
            quiet: f.quiet,
            config: f.config,
            weights50: f.weights50,
            weights101: f.weights101,
            weights152: f.weights152,
        }
    }
}

/// Arguments of `repsim experiment`.
#[derive(Debug, clap::Args)]
pub struct ExperimentCommandArgs {
    /// wide_vs_deep, bottom_up, memorize_vs_generalize or resnet_depths.
    pub name: String,
    #[command(flatten)]
    pub flags: ExperimentFlags,
}

/// Runs `repsim experiment`.
pub fn run(command: ExperimentCommandArgs) -> Result<(), CliError> {
    let summary = run_named(&command.name, &command.flags.into())?;
    log::info!("results: {}", summary.display());
    Ok(())
}

/// An experiment's example program (`cargo run --example NAME -- FLAGS`): the flags of
/// `repsim experiment NAME`, the same output and the same exit codes.
pub fn example_main(name: &str) -> ExitCode {
    #[derive(Parser)]
    struct ExampleArgs {
        #[command(flatten)]
        flags: ExperimentFlags,
    }
    debug_assert!(NAMES.contains(&name));
    crate::device::quiet_headless_vulkan();
    crate::allocator::keep_freed_memory();
    crate::logging::init();
    let args = ExampleArgs::parse_from(
        std::iter::once(std::ffi::OsString::from(name)).chain(std::env::args_os().skip(1)),
    );
    super::flags::exit(run(ExperimentCommandArgs {
        name: name.to_string(),
        flags: args.flags,
    }))
}
