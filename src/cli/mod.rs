//! The `repsim` command line (clap derive API).
//!
//! Exit codes: 0 success; 2 bad input (usage, files, data, parameters, an unavailable device);
//! 1 a failure while computing (a device that stopped answering).

/// A status line on stderr (the device, what was read or written, how long it took), left out
/// with `repsim -q`. Warnings and errors are printed whatever the verbosity.
macro_rules! status {
    ($($arg:tt)*) => {
        if $crate::logging::verbosity() > $crate::logging::Verbosity::Quiet {
            eprintln!($($arg)*);
        }
    };
}

pub mod activations;
pub mod compare;
pub mod data;
pub mod describe;
pub mod experiment;
mod flags;
mod local_jobs;
mod memory;
pub mod merge;
mod output;
pub mod plot;
mod progress;
mod table;
pub mod track;
pub mod train;

use std::process::ExitCode;

use std::sync::LazyLock;

use clap::{CommandFactory, Parser, Subcommand};

use crate::device::{list_adapters, DeviceChoice};

/// `repsim --version`: the package version and the git commit the binary was built from
/// (`-dirty` when the checkout had changes, `unknown` outside a checkout).
static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (commit {})",
        env!("CARGO_PKG_VERSION"),
        crate::experiments::build_commit()
    )
});

/// Do these neural networks learn the same things? Layer x layer representational similarity.
#[derive(Debug, Parser)]
#[command(name = "repsim", version = VERSION.as_str(), about, long_about = None)]
pub struct Cli {
    /// Say less: warnings and errors only, no progress bars or status lines (results still go
    /// to stdout and to the files asked for). Before the command: `repsim -q compare ...`.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Say more: `-v` adds repsim's debug messages, `-vv` every message of burn and wgpu too.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The verbosity `-q` and `-v` ask for.
    fn verbosity(&self) -> crate::logging::Verbosity {
        use crate::logging::Verbosity;
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::Everything,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare the layers of two activation files (.npy, .npz or a directory of .npy).
    Compare(compare::CompareArgs),
    /// Merge the state files of a sharded comparison (compare --shard I/N --state F).
    Merge(merge::MergeArgs),
    /// Show a model's parameter count and every probed layer's name and shape.
    Describe(describe::DescribeArgs),
    /// Run a model over a dataset and save every probed layer's activations (.npz).
    Activations(activations::ActivationsArgs),
    /// Show what a dataset holds, and optionally a preview grid of its images.
    Data(data::DataCommandArgs),
    /// Draw the matrices of a results file as heatmaps (PNG or SVG).
    Plot(plot::PlotArgs),
    /// Train a model on a dataset into a run directory (checkpoints, resume, --track).
    Train(train::TrainArgs),
    /// The convergence tables and plots of a run trained with --track.
    Track(track::TrackArgs),
    /// Run an experiment: wide_vs_deep, bottom_up, memorize_vs_generalize or resnet_depths.
    Experiment(experiment::ExperimentCommandArgs),
    /// List the wgpu adapters and the device `auto` picks.
    Devices,
    /// Print a shell completion script to stdout (`repsim completions bash > ~/.local/share/bash-completion/completions/repsim`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout (`repsim man > repsim.1; man ./repsim.1`).
    Man,
}

/// A failed command: the crate's one error, bad input (exit 2) or a failure (exit 1); see
/// [`crate::error`].
pub type CliError = crate::error::Error;

/// Parses the arguments, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    crate::device::quiet_headless_vulkan();
    crate::allocator::keep_freed_memory();
    crate::logging::init();
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    crate::logging::set_verbosity(cli.verbosity());
    let result = match cli.command {
        Command::Compare(args) => compare::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Describe(args) => describe::run(args),
        Command::Data(args) => data::run(args),
        Command::Activations(args) => activations::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Train(args) => train::run(args),
        Command::Track(args) => track::run(args),
        Command::Experiment(args) => experiment::run(args),
        Command::Devices => devices(),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "repsim", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => man_page(),
    };
    flags::exit(result)
}

/// A reader that stops early (`repsim ... | head -1`) closes the pipe: the next line printed
/// fails with EPIPE, which `println!` turns into a panic. Such a panic ends the process quietly
/// (exit code 0, as ripgrep and fd do), after removing the temporaries of files being written
/// (no file is half-written: they are renamed into place only when complete). Every other
/// panic goes to the default hook.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            repsim_durable::remove_in_flight();
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The man page of `repsim` and its commands, from the clap definitions. A reader that closes
/// the pipe early ends it quietly, as everywhere.
fn man_page() -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match clap_mangen::Man::new(Cli::command()).render(&mut out) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Failure(format!(
            "writing the man page to stdout: {e}"
        ))),
        _ => Ok(()),
    }
}

fn devices() -> Result<(), CliError> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        println!("no wgpu adapters (Vulkan, Metal, DX12) found");
    }
    for a in &adapters {
        let note = if a.is_hardware_gpu {
            ""
        } else {
            "  [software: only used when named]"
        };
        println!(
            "{:<8} {:<16} {} (driver {}){note}",
            a.api, a.kind, a.name, a.driver
        );
    }
    let auto = crate::device::select_device(DeviceChoice::Auto)?;
    println!("auto -> {auto}");
    Ok(())
}
