//! The experiments of the papers repsim is built on, each a short program over the library:
//!
//! | module | paper | question |
//! | --- | --- | --- |
//! | [`wide_vs_deep`] | Nguyen, Raghu & Kornblith 2021 | block structure in wide and deep ResNets |
//! | [`bottom_up`] | Raghu et al. 2017 (Fig. 4); Morcos et al. 2018 | do layers converge bottom-up? |
//! | [`memorize_vs_generalize`] | Morcos et al. 2018 (Fig. 2-3) | are generalising networks more alike than memorising ones? |
//! | [`resnet_depths`] | the blog post this project started from | ResNet-50 vs ResNet-101 and ResNet-152, every block |
//!
//! Each has a serde config with three scales (`--smoke` for CI, the default for a 2-core CPU,
//! `--full` for a GPU), is run by `cargo run --example NAME` and by `repsim experiment NAME`
//! with the same flags ([`ExperimentArgs`]), keeps its trained weights in its output directory
//! (reused when the config is unchanged, so a rerun only redoes the analysis), and writes
//! `results.json` (with provenance) and `summary.md` with the figures.

pub mod bottom_up;
pub mod memorize_vs_generalize;
pub mod resnet_depths;
pub mod wide_vs_deep;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use repsim_model::{load_weights, AnyModel, ModelSpec};
use repsim_train::{
    completed_run, train, EpochMetrics, ProgressMode, RunOptions, TrainConfig, TrainError,
};
use serde::Serialize;

use crate::device::{select_device, DeviceChoice};

/// Flags every experiment takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ExperimentArgs {
    /// Output directory (default runs/NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Device: auto (a hardware GPU if there is one, else flex), flex, wgpu or vulkan.
    #[arg(long, env = "REPSIM_DEVICE", default_value = "auto", value_parser = crate::cli::parse_device_choice)]
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

/// The three sizes of every experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Seconds, for CI.
    Smoke,
    /// Minutes on a 2-core CPU.
    Default,
    /// Paper scale, for a GPU.
    Full,
}

impl ExperimentArgs {
    /// The scale asked for.
    pub fn scale(&self) -> Scale {
        if self.smoke {
            Scale::Smoke
        } else if self.full {
            Scale::Full
        } else {
            Scale::Default
        }
    }

    /// The configuration: `--config FILE` when given, else `scale_default`.
    pub fn config_or<T: serde::de::DeserializeOwned>(&self, scale_default: T) -> Result<T> {
        match &self.config {
            None => Ok(scale_default),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ExperimentError::Input(format!("{}: cannot read: {e}", path.display()))
                })?;
                serde_json::from_str(&text).map_err(|e| {
                    ExperimentError::Input(format!(
                        "{}: not a configuration of this experiment: {e}",
                        path.display()
                    ))
                })
            }
        }
    }

    /// The output directory.
    pub fn out_dir(&self, name: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(name))
    }
}

/// An experiment's failure: bad input (exit 2) or a failure while computing (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// Fixable by the user.
    #[error("{0}")]
    Input(String),
    /// A failure while computing.
    #[error("{0}")]
    Failure(String),
}

impl ExperimentError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            ExperimentError::Input(_) => 2,
            ExperimentError::Failure(_) => 1,
        }
    }
}

impl From<TrainError> for ExperimentError {
    fn from(e: TrainError) -> Self {
        if e.is_bad_input() {
            ExperimentError::Input(e.to_string())
        } else {
            ExperimentError::Failure(e.to_string())
        }
    }
}

impl From<repsim_model::ModelError> for ExperimentError {
    fn from(e: repsim_model::ModelError) -> Self {
        ExperimentError::Input(e.to_string())
    }
}

impl From<repsim_similarity::SimilarityError> for ExperimentError {
    fn from(e: repsim_similarity::SimilarityError) -> Self {
        ExperimentError::Failure(e.to_string())
    }
}

impl From<repsim_viz::VizError> for ExperimentError {
    fn from(e: repsim_viz::VizError) -> Self {
        ExperimentError::Failure(e.to_string())
    }
}

impl From<repsim_data::DataError> for ExperimentError {
    fn from(e: repsim_data::DataError) -> Self {
        ExperimentError::Input(e.to_string())
    }
}

/// Results of this module.
pub type Result<T> = std::result::Result<T, ExperimentError>;

/// What every results file records about how it was made.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// repsim's version.
    pub repsim_version: String,
    /// The git commit of the working directory, when it is a git checkout.
    pub git_commit: Option<String>,
    /// The device, as printed.
    pub device: String,
    /// Arithmetic: activations and Grams in float32; the CCA family's statistics in float64.
    pub precision: String,
    /// The scale run.
    pub scale: Scale,
    /// The base seed.
    pub seed: u64,
    /// The data.
    pub data: String,
    /// Wall time of training in this run (near 0 when every model was reused), seconds.
    pub train_seconds: f64,
    /// The models' own training time, summed from their per-epoch metrics (what a run from
    /// scratch spends training, whether or not this run reused them), seconds.
    pub models_training_seconds: f64,
    /// Wall time of the analysis, seconds.
    pub analysis_seconds: f64,
}

/// The experiment's context: device, output directory, options.
pub struct Context {
    /// The device the models train and are probed on.
    pub device: Device,
    /// How it was printed.
    pub device_name: String,
    /// The output directory.
    pub out: PathBuf,
    /// The flags.
    pub args: ExperimentArgs,
    started: Instant,
}

impl Context {
    /// Selects the device, prints it, creates the output directory.
    pub fn new(args: &ExperimentArgs, name: &str) -> Result<Self> {
        let weights = [&args.weights50, &args.weights101, &args.weights152];
        if name != "resnet_depths" && weights.iter().any(|w| w.is_some()) {
            return Err(ExperimentError::Input(format!(
                "--weights50/101/152 belong to resnet_depths, not {name}"
            )));
        }
        let selected = select_device(args.device).map_err(|e| ExperimentError::Input(e.0))?;
        println!("device: {selected}");
        let out = args.out_dir(name);
        std::fs::create_dir_all(&out)
            .map_err(|e| ExperimentError::Input(format!("cannot create {}: {e}", out.display())))?;
        Ok(Context {
            device: selected.device.clone(),
            device_name: selected.to_string(),
            out,
            args: args.clone(),
            started: Instant::now(),
        })
    }

    /// Trains `config` into `OUT/runs/NAME`, or reuses the weights already there when that
    /// run is complete with the same config (and says so).
    pub fn train_or_reuse(&self, name: &str, config: &TrainConfig) -> Result<TrainedRun> {
        let dir = self.out.join("runs").join(name);
        if let Some(metrics) = completed_run(config, &dir) {
            println!(
                "{name}: reusing the trained weights in {} (same config)",
                dir.display()
            );
            return Ok(TrainedRun {
                name: name.to_string(),
                dir,
                config: config.clone(),
                metrics,
                reused: true,
            });
        }
        println!(
            "{name}: training {} for {} epochs",
            config.model.name(),
            config.epochs
        );
        let mut options = RunOptions::new(self.device.clone());
        options.overwrite = true;
        options.progress = if self.args.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        };
        let summary = train(config, &dir, &options)?;
        Ok(TrainedRun {
            name: name.to_string(),
            dir,
            config: config.clone(),
            metrics: summary.metrics,
            reused: false,
        })
    }

    /// The provenance of this run, with the training and analysis times.
    pub fn provenance(&self, train_seconds: f64, models_training_seconds: f64) -> Provenance {
        Provenance {
            repsim_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: git_commit(),
            device: self.device_name.clone(),
            precision: "float32 activations and Grams; CCA-family statistics in float64".into(),
            scale: self.args.scale(),
            seed: self.args.seed,
            data: self.args.data.clone(),
            train_seconds,
            models_training_seconds,
            analysis_seconds: self.started.elapsed().as_secs_f64() - train_seconds,
        }
    }

    /// Seconds since the experiment started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Writes `value` as pretty JSON to `OUT/name`, atomically.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<PathBuf> {
        let path = self.out.join(name);
        repsim_train::durable::write_json(&path, value)?;
        Ok(path)
    }

    /// Writes `text` to `OUT/name`, atomically.
    pub fn write_text(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.out.join(name);
        repsim_train::durable::write_bytes(&path, text.as_bytes())?;
        Ok(path)
    }
}

/// A trained (or reused) network of an experiment.
#[derive(Debug, Clone, Serialize)]
pub struct TrainedRun {
    /// Its name in the experiment.
    pub name: String,
    /// Its run directory.
    pub dir: PathBuf,
    /// Its config.
    pub config: TrainConfig,
    /// Its metrics per epoch.
    pub metrics: Vec<EpochMetrics>,
    /// Whether the weights were reused from an earlier run.
    pub reused: bool,
}

impl TrainedRun {
    /// Its training time, summed over its epochs' metrics.
    pub fn training_seconds(&self) -> f64 {
        self.metrics.iter().map(|m| m.seconds).sum()
    }

    /// The last epoch's metrics.
    pub fn last(&self) -> &EpochMetrics {
        self.metrics
            .last()
            .expect("a trained run has at least one epoch")
    }

    /// The trained network on `device`, in validation mode.
    pub fn load(&self, device: &Device) -> Result<AnyModel> {
        load_any(
            &self.config.model,
            &self.dir.join(repsim_train::FINAL_WEIGHTS),
            device,
        )
    }
}

/// Builds `spec` on `device` and loads `path` into it.
pub fn load_any(spec: &ModelSpec, path: &Path, device: &Device) -> Result<AnyModel> {
    Ok(match spec.init(device)? {
        AnyModel::ResNet(m) => AnyModel::ResNet(load_weights(m, path)?),
        AnyModel::Cnn(m) => AnyModel::Cnn(load_weights(m, path)?),
        AnyModel::SvccaCnn(m) => AnyModel::SvccaCnn(load_weights(m, path)?),
        AnyModel::RnnClassifier(m) => AnyModel::RnnClassifier(load_weights(m, path)?),
        AnyModel::RnnLanguageModel(m) => AnyModel::RnnLanguageModel(load_weights(m, path)?),
    })
}

/// The probed layers of an image model on `images`, as (examples x features) matrices
/// (sequences: the last step).
pub fn layers_of(
    model: &AnyModel,
    images: burn::tensor::Tensor<4>,
    probe: &repsim_model::Probe,
) -> Result<Vec<repsim_similarity::Layer>> {
    let (_, activations) = model.forward_images(images, probe)?;
    Ok(activations
        .into_matrices(repsim_model::TimeReduction::Last)
        .into_iter()
        .map(|(name, matrix)| repsim_similarity::Layer { name, matrix })
        .collect())
}

/// The commit of the current git checkout, if there is one.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A seed for network `index` of an experiment with base seed `seed`.
pub fn derived_seed(seed: u64, index: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(index)
}

/// Runs an experiment's `main`: parses `ExperimentArgs`, runs, maps errors to exit codes.
pub fn main_with(
    run: fn(&ExperimentArgs) -> Result<PathBuf>,
    args: &ExperimentArgs,
) -> std::process::ExitCode {
    crate::device::quiet_headless_vulkan();
    crate::allocator::keep_freed_memory();
    match run(args) {
        Ok(summary) => {
            println!("results: {}", summary.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

/// Markdown of a table: a header row and rows of cells.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        " --- |".repeat(header.len())
    );
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}
