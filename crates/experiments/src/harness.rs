//! The one pipeline every experiment runs through: configuration (a scale's, or `--config
//! FILE`), the plan of trainings (each a run directory, reused when complete, resumed from its
//! checkpoint when interrupted), the experiment's own analysis and figures, and the report
//! (`results.json` with provenance, `summary.md` with the reproduce line).
//!
//! An experiment implements [`Experiment`] and keeps only its science: its config and scales,
//! which networks it trains ([`Training`]), what it measures on them, its figures and the text
//! of its summary. [`run`](crate::cells::run) does the rest, in this order: every training, then the analysis, then
//! the figures and the report. The trainings share nothing but the output directory, so they
//! are the natural cells of a plan that a scheduler could run apart.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use repsim_model::AnyModel;
use repsim_train::{
    completed_run, train, DataConfig, EpochMetrics, ProgressMode, RunOptions, TrackOptions,
    TrackerConfig, TrainConfig,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use repsim_train::device::{select_device, DeviceChoice};

/// What every experiment takes: the flags of its example (`cargo run --example NAME`) and of
/// `repsim experiment NAME`, which parse straight into it (behind the `cli` feature).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ExperimentArgs {
    /// Output directory (default runs/NAME).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: Option<PathBuf>,
    /// Device: auto (a hardware GPU if there is one, else flex), flex, wgpu or vulkan.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "REPSIM_DEVICE", default_value = "auto", value_parser = repsim_train::device::parse_device_flag)
    )]
    pub device: DeviceChoice,
    /// Base seed (each trained network derives its own from it).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// How many seeds of each network to train (wide_vs_deep: the grid; bottom_up: each
    /// network; memorize_vs_generalize: networks per group); default: the scale's.
    /// Experiments without seeds refuse it.
    #[cfg_attr(feature = "cli", arg(long))]
    pub seeds: Option<usize>,
    /// Data: shapes (built in), cifar10=PATH, cifar100=PATH, folder=PATH.
    #[cfg_attr(feature = "cli", arg(long, default_value = "shapes"))]
    pub data: String,
    /// A seconds-long run for CI: tiny models, one epoch.
    #[cfg_attr(feature = "cli", arg(long, conflicts_with = "full"))]
    pub smoke: bool,
    /// Paper scale (for a GPU).
    #[cfg_attr(feature = "cli", arg(long))]
    pub full: bool,
    /// One line per epoch instead of progress bars.
    #[cfg_attr(feature = "cli", arg(long))]
    pub quiet: bool,
    /// The experiment's configuration as JSON (the `config` object of a `results.json`),
    /// instead of a scale's: any grid, data size or schedule.
    #[cfg_attr(feature = "cli", arg(long, conflicts_with_all = ["smoke", "full"]))]
    pub config: Option<PathBuf>,
    /// resnet_depths only: torchvision ResNet-50 weights (.safetensors state dict).
    #[cfg_attr(feature = "cli", arg(long))]
    pub weights50: Option<PathBuf>,
    /// resnet_depths only: torchvision ResNet-101 weights.
    #[cfg_attr(feature = "cli", arg(long))]
    pub weights101: Option<PathBuf>,
    /// resnet_depths only: torchvision ResNet-152 weights.
    #[cfg_attr(feature = "cli", arg(long))]
    pub weights152: Option<PathBuf>,
}

impl Default for ExperimentArgs {
    /// The defaults of the command line: `auto` device, seed 0, the built-in shapes, the
    /// default scale.
    fn default() -> Self {
        ExperimentArgs {
            out: None,
            device: DeviceChoice::Auto,
            seed: 0,
            seeds: None,
            data: "shapes".into(),
            smoke: false,
            full: false,
            quiet: false,
            config: None,
            weights50: None,
            weights101: None,
            weights152: None,
        }
    }
}

/// The three sizes of every experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    pub fn config_or<T: DeserializeOwned>(&self, scale_default: T) -> Result<T> {
        match &self.config {
            None => Ok(scale_default),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Input(format!("{}: cannot read: {e}", path.display())))?;
                serde_json::from_str(&text).map_err(|e| {
                    Error::Input(format!(
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

    /// The flags that run a cell of this experiment from any directory: `--out`, `--config`,
    /// the weight files and a `--data` path made absolute, the device, `--quiet`.
    pub fn cell_flags(&self, name: &str) -> Result<Vec<String>> {
        self.to_flags(Some(name))
    }

    /// The flags that reproduce this run's configuration (`--seed S` and the scale or
    /// `--config FILE`).
    pub fn reproduce_flags(&self) -> Result<String> {
        Ok(self.to_flags(None)?.join(" "))
    }

    /// These arguments as the command line spells them, the one place that does: for a cell
    /// of experiment `cell` (every path absolute, with `--out`, the weight files, the device
    /// and `--quiet`), or (`None`) what reproduces the configuration (the seeds, the data when
    /// not the built-in shapes, the scale or `--config` as given).
    pub fn to_flags(&self, cell: Option<&str>) -> Result<Vec<String>> {
        let path = |path: &Path| -> Result<String> {
            match cell {
                None => Ok(path.display().to_string()),
                Some(_) => std::path::absolute(path)
                    .map(|p| p.display().to_string())
                    .map_err(|e| Error::Input(format!("{}: {e}", path.display()))),
            }
        };
        let mut flags = Vec::new();
        let mut flag = |name: &str, value: String| flags.extend([name.to_string(), value]);
        if let Some(name) = cell {
            flag("--out", path(&self.out_dir(name))?);
        }
        flag("--seed", self.seed.to_string());
        if let Some(seeds) = self.seeds {
            flag("--seeds", seeds.to_string());
        }
        if cell.is_some() || self.data != "shapes" {
            let data = match (cell, self.data.split_once('=')) {
                (Some(_), Some((kind, file))) => format!("{kind}={}", path(Path::new(file))?),
                _ => self.data.clone(),
            };
            flag("--data", data);
        }
        match (&self.config, self.scale()) {
            (Some(config), _) => flag("--config", path(config)?),
            (None, Scale::Smoke) => flags.push("--smoke".into()),
            (None, Scale::Full) => flags.push("--full".into()),
            (None, Scale::Default) => {}
        }
        if cell.is_some() {
            for (name, file) in [
                ("--weights50", &self.weights50),
                ("--weights101", &self.weights101),
                ("--weights152", &self.weights152),
            ] {
                if let Some(file) = file {
                    flags.extend([name.to_string(), path(file)?]);
                }
            }
            flags.extend([
                "--device".to_string(),
                self.device.to_string(),
                "--quiet".into(),
            ]);
        }
        Ok(flags)
    }
}

/// The commit repsim was built from (`build.rs`), or "unknown" when it was built outside a git
/// checkout.
pub fn build_commit() -> &'static str {
    match option_env!("REPSIM_GIT_COMMIT") {
        Some(commit) if !commit.is_empty() => commit,
        _ => "unknown",
    }
}

/// What every results file records about how it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    /// repsim's version.
    pub repsim_version: String,
    /// The git commit repsim was built from (`-dirty` when the checkout had changes), or
    /// "unknown".
    pub git_commit: String,
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
    /// Wall time of the training cells, summed over the invocations that last ran them (near 0
    /// when every model was reused), or, when they ran side by side as local processes
    /// (`--jobs`), the wall time of that stage; seconds.
    pub train_seconds: f64,
    /// The models' own training time, summed from their per-epoch metrics (what a run from
    /// scratch spends training, whether or not this run reused them), seconds.
    pub models_training_seconds: f64,
    /// Wall time of the analysis cells (when they were computed) and the report, summed,
    /// seconds.
    pub analysis_seconds: f64,
    /// The models whose weights were already complete in `runs/` when their training cell last
    /// ran (so not trained by it). Like the wall times, this depends on how often cells ran,
    /// not on the results; it is the one other part of `results.json` that may differ between
    /// a single process and cells.
    #[serde(default)]
    pub reused_models: Vec<String>,
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
    /// Wall time of the training stage when its cells ran as concurrent processes
    /// ([`crate::cells::run_after_training`]); `None` when each training cell's own time is
    /// what the report should add up.
    pub(crate) training_stage_seconds: Option<f64>,
}

impl Context {
    /// Selects the device, says which, creates the output directory.
    pub fn new(args: &ExperimentArgs, name: &str) -> Result<Self> {
        let weights = [&args.weights50, &args.weights101, &args.weights152];
        if name != "resnet_depths" && weights.iter().any(|w| w.is_some()) {
            return Err(Error::Input(format!(
                "--weights50/101/152 belong to resnet_depths, not {name}"
            )));
        }
        let out = args.out_dir(name);
        if out.exists() && !out.is_dir() {
            return Err(Error::Input(format!(
                "--out {}: exists and is not a directory",
                out.display()
            )));
        }
        let selected = select_device(args.device)?;
        log::info!("device: {selected}");
        std::fs::create_dir_all(&out)
            .map_err(|e| Error::Input(format!("--out {}: cannot create: {e}", out.display())))?;
        for removed in repsim_durable::remove_stale_temporaries(&out) {
            log::info!("removed {}, left by an interrupted run", removed.display());
        }
        Ok(Context {
            device: selected.device.clone(),
            device_name: selected.to_string(),
            out,
            args: args.clone(),
            started: Instant::now(),
            training_stage_seconds: None,
        })
    }

    /// The run directory of the training named `name`.
    pub fn run_dir(&self, name: &str) -> PathBuf {
        self.out.join("runs").join(name)
    }

    /// The tracker settings of `training` in its run directory.
    fn tracker_of(&self, training: &Training) -> Option<TrackerConfig> {
        training.track.as_ref().map(|t| {
            let mut tracker = t.tracker.clone();
            tracker.dir = self.run_dir(&training.name).join("track");
            tracker
        })
    }

    /// `training`'s run when it is complete in `OUT/runs/NAME` with the same config (and, when
    /// tracked, every observation is there), marked `reused`; `None` otherwise.
    pub fn completed(&self, training: &Training, reused: bool) -> Option<TrainedRun> {
        let dir = self.run_dir(&training.name);
        let metrics = completed_run(&training.config, &dir)?;
        let tracker = self.tracker_of(training);
        let tracked_completely = match &tracker {
            None => true,
            Some(t) => repsim_train::Tracker::open(t.clone()).is_ok_and(|t| {
                t.index().epochs.last().copied() == final_observation(training, &dir)
            }),
        };
        tracked_completely.then(|| TrainedRun {
            name: training.name.clone(),
            dir,
            config: training.config.clone(),
            metrics,
            reused,
            tracker,
        })
    }

    /// Trains `training` into `OUT/runs/NAME`: reuses the run there when it is complete with
    /// the same config (and, when tracked, every observation is there), resumes it from its
    /// newest checkpoint when it is the same config interrupted, and trains it from scratch
    /// otherwise. A failure names the network and its run directory.
    pub fn train_or_reuse(&self, training: &Training) -> Result<TrainedRun> {
        let Training {
            name,
            config,
            track,
        } = training;
        let dir = self.run_dir(name);
        if let Some(run) = self.completed(training, true) {
            log::info!(
                "{name}: reusing the trained weights in {} (same config)",
                dir.display()
            );
            return Ok(run);
        }
        let mut options = RunOptions::new(self.device.clone());
        options.progress = if self.args.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        };
        options.track = track.clone();
        let resumable = repsim_train::same_config_run(config, &dir);
        if resumable {
            options.resume = true;
            log::info!(
                "{name}: resuming the interrupted run in {} from its newest checkpoint",
                dir.display()
            );
        } else {
            options.overwrite = true;
            log::info!(
                "{name}: training {} for {} epochs{}",
                config.model.name(),
                config.epochs,
                if track.is_some() {
                    ", tracking every layer"
                } else {
                    ""
                }
            );
        }
        let summary = train(config, &dir, &options).map_err(|e| {
            Error::classified(
                e.is_bad_input(),
                format!("training {name} ({}): {e}", dir.display()),
            )
        })?;
        Ok(TrainedRun {
            name: name.clone(),
            dir,
            config: config.clone(),
            metrics: summary.metrics,
            reused: false,
            tracker: self.tracker_of(training),
        })
    }

    /// The provenance of the results, with the wall times of the training and the analysis
    /// (summed over the cells that made them).
    pub fn provenance(
        &self,
        train_seconds: f64,
        models_training_seconds: f64,
        analysis_seconds: f64,
        reused_models: Vec<String>,
    ) -> Provenance {
        Provenance {
            repsim_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: build_commit().to_string(),
            device: self.device_name.clone(),
            precision: "float32 activations and Grams; CCA-family statistics in float64".into(),
            scale: self.args.scale(),
            seed: self.args.seed,
            data: self.args.data.clone(),
            train_seconds,
            models_training_seconds,
            analysis_seconds,
            reused_models,
        }
    }

    /// Seconds since the experiment started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Writes `value` as pretty JSON to `OUT/name`, atomically.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<PathBuf> {
        let path = self.out.join(name);
        repsim_durable::write_json(&path, value)?;
        Ok(path)
    }

    /// Writes `text` to `OUT/name`, atomically.
    pub fn write_text(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.out.join(name);
        repsim_durable::write_bytes(&path, text.as_bytes())?;
        Ok(path)
    }
}

/// One network an experiment trains: a cell of its plan.
#[derive(Debug, Clone)]
pub struct Training {
    /// Its name in the experiment, and its run directory's (`OUT/runs/NAME`).
    pub name: String,
    /// What to train.
    pub config: TrainConfig,
    /// The Tracker during training (its directory becomes `OUT/runs/NAME/track`).
    pub track: Option<TrackOptions>,
}

impl Training {
    /// `config` trained as `name`, untracked.
    pub fn new(name: impl Into<String>, config: TrainConfig) -> Self {
        Training {
            name: name.into(),
            config,
            track: None,
        }
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
    /// Its Tracker's settings (directory `RUN/track`), when it was tracked.
    #[serde(skip)]
    pub tracker: Option<TrackerConfig>,
}

impl TrainedRun {
    /// Its training time, summed over its epochs' metrics.
    pub fn training_seconds(&self) -> f64 {
        self.metrics.iter().map(|m| m.seconds).sum()
    }

    /// The last epoch's metrics.
    pub fn last(&self) -> Result<&EpochMetrics> {
        self.metrics.last().ok_or_else(|| {
            Error::Failure(format!(
                "{}: the run has no epoch's metrics",
                self.dir.display()
            ))
        })
    }

    /// The trained network on `device`.
    pub fn load(&self, device: &Device) -> Result<AnyModel> {
        Ok(self
            .config
            .model
            .init_with_weights(&self.dir.join(repsim_train::FINAL_WEIGHTS), device)?)
    }
}

/// A figure of an experiment: its file in the output directory and its caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// The file name (in the output directory).
    pub file: String,
    /// What it shows.
    pub caption: String,
}

impl Figure {
    /// `file`, captioned.
    pub fn new(file: impl Into<String>, caption: impl Into<String>) -> Self {
        Figure {
            file: file.into(),
            caption: caption.into(),
        }
    }
}

/// One experiment: only its science; [`run`](crate::cells::run) does the pipeline. The experiment is its
/// configuration (a scale's, or `--config FILE`: the `config` of a `results.json`), so every
/// step is a method of it.
pub trait Experiment: Clone + Serialize + DeserializeOwned {
    /// Its name: the example's, `repsim experiment NAME`'s, and the default `runs/NAME`.
    const NAME: &'static str;
    /// What it measured: written into `results.json` between `training` and `provenance`.
    type Analysis: Serialize + DeserializeOwned;

    /// The configuration of a scale.
    fn for_scale(scale: Scale) -> Self;

    /// Sets how many seeds of each network it trains (`--seeds N`). Default: refused, for an
    /// experiment whose networks have no seeds to repeat.
    fn set_seeds(&mut self, seeds: usize) -> Result<()> {
        Err(Error::Input(format!(
            "{} does not take --seeds (asked for {seeds})",
            Self::NAME
        )))
    }

    /// Refuses a configuration (or flags) it cannot run, before anything is trained.
    fn check(&self, _args: &ExperimentArgs) -> Result<()> {
        Ok(())
    }

    /// One line saying what is about to run.
    fn headline(&self, args: &ExperimentArgs) -> String;

    /// The networks to train, in order.
    fn trainings(&self, args: &ExperimentArgs) -> Result<Vec<Training>>;

    /// The measurements on the trained networks (`runs`, in the order of
    /// [`Experiment::trainings`]).
    fn analyse(&self, ctx: &Context, runs: &[TrainedRun]) -> Result<Self::Analysis>;

    /// Draws the figures into the output directory.
    fn figures(&self, ctx: &Context, analysis: &Self::Analysis) -> Result<Vec<Figure>>;

    /// `summary.md` up to the reproduce line, which [`run`](crate::cells::run) adds.
    fn summary(
        &self,
        analysis: &Self::Analysis,
        provenance: &Provenance,
        figures: &[Figure],
    ) -> String;

    /// A note after the reproduce command (e.g. how many models were reused).
    fn reproduce_note(_analysis: &Self::Analysis) -> String {
        String::new()
    }

    /// The analysis as cells of the plan ([`crate::cells`]): the parts that can
    /// run apart, each with the trainings it needs (by name). Default: one part, `all`,
    /// needing every training.
    fn analysis_parts(&self, trainings: &[Training]) -> Vec<AnalysisPart> {
        vec![AnalysisPart {
            name: "all".into(),
            needs: trainings.iter().map(|t| t.name.clone()).collect(),
        }]
    }

    /// Measures one part on its trained networks (`runs`, in the order of the part's
    /// `needs`); the value is kept as the cell's result. Default: the whole analysis.
    fn analyse_part(
        &self,
        ctx: &Context,
        _part: &str,
        runs: &[TrainedRun],
    ) -> Result<serde_json::Value> {
        serde_json::to_value(self.analyse(ctx, runs)?)
            .map_err(|e| Error::Failure(format!("{}: the analysis as JSON: {e}", Self::NAME)))
    }

    /// Combines the parts' results (in the order of [`Experiment::analysis_parts`]) into the
    /// analysis; `runs` are every training's. Default: the one part.
    fn combine(
        &self,
        _runs: &[TrainedRun],
        parts: Vec<serde_json::Value>,
    ) -> Result<Self::Analysis> {
        let part = parts
            .into_iter()
            .next()
            .ok_or_else(|| Error::Failure("the analysis has no part".into()))?;
        serde_json::from_value(part).map_err(|e| {
            Error::Failure(format!(
                "{}: not this experiment's analysis: {e}",
                Self::NAME
            ))
        })
    }
}

/// One part of an experiment's analysis: an analysis cell of its plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisPart {
    /// Its name (the cell is `analysis-NAME`).
    pub name: String,
    /// The trainings it measures, by name.
    pub needs: Vec<String>,
}

/// What `results.json` holds: the configuration, the training configs, the experiment's
/// measurements (flattened in) and the provenance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentResults<C, A> {
    /// The experiment's configuration.
    pub config: C,
    /// The configs of the trained networks, in plan order.
    pub training: Vec<TrainConfig>,
    /// What the experiment measured.
    #[serde(flatten)]
    pub analysis: A,
    /// How the results were made.
    pub provenance: Provenance,
}

/// The images every experiment trains on: `--data` at `side` px (CIFAR is always 32), the
/// first `train_count` training and `test_count` test images, augmented, with their true
/// labels, generated (shapes) from data seed 0.
pub fn image_data(
    args: &ExperimentArgs,
    side: usize,
    train_count: usize,
    test_count: usize,
) -> DataConfig {
    DataConfig {
        dataset: args.data.clone(),
        side,
        train_count: Some(train_count),
        test_count: Some(test_count),
        random_labels: 0.0,
        augment: true,
        data_seed: 0,
        window: 64,
        train_repeats: 1,
    }
}

/// The probed layers of an image model on `images`, as (examples x features) matrices
/// (sequences: the last step).
pub fn layers_of(
    model: &AnyModel,
    images: burn::tensor::Tensor<4>,
    probe: &repsim_model::Probe,
) -> Result<Vec<repsim_similarity::Layer>> {
    Ok(layers_fn(model, probe)(repsim_train::Inputs::Images(
        images,
    ))?)
}

/// `model`'s layers of a batch of images (`probe`'s, each flattened to examples x features),
/// as the probing pass ([`repsim_train::probing::comparison_pass`]) takes a model.
pub fn layers_fn<'a>(
    model: &'a AnyModel,
    probe: &'a repsim_model::Probe,
) -> impl FnMut(repsim_train::Inputs) -> repsim_train::Result<Vec<repsim_similarity::Layer>> + 'a {
    move |inputs| {
        let repsim_train::Inputs::Images(images) = inputs else {
            return Err(repsim_train::TrainError::BadConfig(
                "the experiments' networks take images".into(),
            ));
        };
        let (_, activations) = model.forward_images(images, probe)?;
        Ok(activations
            .into_matrices(repsim_model::TimeReduction::Last)
            .into_iter()
            .map(|(name, matrix)| repsim_similarity::Layer { name, matrix })
            .collect())
    }
}

/// The batches of `probe_set` over `test` as the probing pass takes them.
pub fn probe_batches<'a>(
    probe_set: &'a repsim_data::ProbeSet,
    test: &'a (impl burn::data::dataset::Dataset<repsim_data::ImageItem> + 'a),
    batcher: &'a repsim_data::ImageBatcher,
    device: &'a burn::tensor::Device,
) -> impl Iterator<Item = repsim_train::Result<repsim_train::Inputs>> + 'a {
    probe_set.iter(test, batcher, device).map(|batch| {
        batch
            .map(|b| repsim_train::Inputs::Images(b.images))
            .map_err(repsim_train::TrainError::from)
    })
}

/// A seed for network `index` of an experiment with base seed `seed`.
pub fn derived_seed(seed: u64, index: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(index)
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

/// `items` joined by commas for a summary's sentence, or "none".
pub fn listed<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The file name of `path` (for captions and summaries).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The label of a tracked training's last observation: its last epoch, or, observed every K
/// steps, its last optimisation step (epochs times the steps per epoch of the training examples
/// its run record names). `None` when the run record cannot be read.
fn final_observation(training: &Training, dir: &std::path::Path) -> Option<usize> {
    let config = &training.config;
    match training.track.as_ref().map(|t| &t.epochs) {
        Some(repsim_train::TrackEpochs::EverySteps(_)) => {
            let record: repsim_train::RunRecord =
                repsim_train::durable::read_json(&dir.join("config.json")).ok()?;
            Some(
                config.epochs
                    * repsim_train::trainer::steps_per_epoch(
                        record.train_examples,
                        config.batch_size,
                    ),
            )
        }
        _ => Some(config.epochs),
    }
}
