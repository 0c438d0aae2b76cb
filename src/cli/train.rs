//! `repsim train`: trains a model of the zoo on a dataset into a run directory (config,
//! metrics, checkpoints, final weights, and with `--track` the Tracker's observations).

use std::path::PathBuf;

use repsim_similarity::{ConvMode, Measure};
use repsim_train::{
    fit_model_to_data, train, DataConfig, OptimizerConfig, ProgressMode, RunOptions,
    ScheduleConfig, TrackEpochs, TrackOptions, TrackerConfig, TrainConfig,
};

use super::describe::ModelArgs;
use super::flags::parse_device;
use crate::device::{select_device, DeviceChoice};
use crate::error::Error as CliError;

/// What to train on, shared by `train` and the experiments.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainDataArgs {
    /// Dataset: shapes (built in), cifar10=PATH, cifar100=PATH, cifar100-coarse=PATH,
    /// folder=PATH, or text / text=PATH (language models).
    #[arg(long, default_value = "shapes")]
    pub data: String,
    /// Image side of shapes and image folders.
    #[arg(long, default_value_t = 16)]
    pub side: usize,
    /// Training examples (the first N of the split; shapes and text generate N).
    #[arg(long)]
    pub train_count: Option<usize>,
    /// Test examples (likewise).
    #[arg(long)]
    pub test_count: Option<usize>,
    /// Fraction of training labels replaced by random ones (1.0: memorisation).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub random_labels: f64,
    /// No random crops and flips.
    #[arg(long)]
    pub no_augment: bool,
    /// Seed of the generated data and of the random labels.
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Characters per window (language models).
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Each training image K times per epoch (each copy augmented on its own): a small
    /// training set trained in epochs of the usual length.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub train_repeats: usize,
}

impl TrainDataArgs {
    /// The data config; shapes default to 10,000 / 2,000 images, text to 2,000 / 200 windows.
    pub fn config(&self) -> DataConfig {
        let default = |count: Option<usize>, shapes: usize| match count {
            Some(c) => Some(c),
            None if self.data == "shapes" => Some(shapes),
            None => None,
        };
        DataConfig {
            dataset: self.data.clone(),
            side: self.side,
            train_count: default(self.train_count, 10_000),
            test_count: default(self.test_count, 2_000),
            random_labels: self.random_labels,
            augment: !self.no_augment,
            data_seed: self.data_seed,
            window: self.window,
            train_repeats: self.train_repeats,
        }
    }
}

/// Arguments of `repsim train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: TrainDataArgs,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Seed of the initialisation, the order and the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The run directory.
    #[arg(long)]
    pub out: PathBuf,
    /// sgd (momentum 0.9, dampening 0), adam or adamw (PyTorch's defaults).
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// SGD: Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay (SGD and Adam: L2; AdamW: decoupled).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// The learning-rate schedule (the help text spells its forms, whose brackets are not links).
    #[arg(
        long,
        default_value = "cosine",
        help = "constant, cosine, step=EVERY[:GAMMA] or multistep=E1,E2[:GAMMA]."
    )]
    pub schedule: String,
    /// Epochs of linear warm-up before the schedule.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Record layers with the Tracker: every-epoch, epochs like 0,1,2,4,8, or steps=K.
    #[arg(long)]
    pub track: Option<String>,
    /// Record layers with the Tracker at initialisation and every K optimisation steps (and
    /// after the last): the same as --track steps=K.
    #[arg(long, value_name = "K", conflicts_with = "track")]
    pub track_every_steps: Option<usize>,
    /// Which layers the Tracker records: blocks, all, or names=a,b.
    #[arg(long, default_value = "blocks")]
    pub probe: repsim_model::Probe,
    /// Test examples the Tracker probes.
    #[arg(long, default_value_t = 500)]
    pub probe_count: usize,
    /// How the Tracker turns conv maps into matrices: flatten or pool=K.
    #[arg(long, default_value = "flatten")]
    pub conv: ConvMode,
    /// The Tracker's measures (comma-separated), each NAME or NAME:KEY=VALUE..., e.g.
    /// svcca:dims=20.
    #[arg(long, value_delimiter = ',', default_value = "svcca,pwcca,linear_cka")]
    pub metric: Vec<Measure>,
    /// Continue from the newest complete checkpoint of --out.
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing run in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Checkpoints kept (the newest ones).
    #[arg(long, default_value_t = 2)]
    pub keep_last: usize,
    /// Epochs whose checkpoints are kept as well, e.g. 1,5,10.
    #[arg(long, value_delimiter = ',')]
    pub keep_epochs: Vec<usize>,
    /// One line per epoch, no progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Device: auto, flex, wgpu or vulkan.
    #[arg(long, env = "REPSIM_DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
}

/// The optimiser of the flags: a named default with the overrides given.
pub fn optimizer_config(
    name: &str,
    momentum: Option<f64>,
    nesterov: bool,
    weight_decay: Option<f64>,
) -> Result<OptimizerConfig, CliError> {
    let mut optimizer = OptimizerConfig::by_name(name)?;
    match &mut optimizer {
        OptimizerConfig::Sgd {
            momentum: m,
            nesterov: n,
            weight_decay: w,
        } => {
            *m = momentum.unwrap_or(*m);
            *n = nesterov;
            *w = weight_decay.unwrap_or(*w);
        }
        OptimizerConfig::Adam {
            weight_decay: w, ..
        }
        | OptimizerConfig::AdamW {
            weight_decay: w, ..
        } => {
            if momentum.is_some() || nesterov {
                return Err(CliError::Input(format!(
                    "--momentum and --nesterov apply to sgd, not {name}"
                )));
            }
            *w = weight_decay.unwrap_or(*w);
        }
    }
    Ok(optimizer)
}

/// Runs `repsim train`.
pub fn run(args: TrainArgs) -> Result<(), CliError> {
    let mut spec = args.model.spec()?;
    let data = args.data.config();
    let track_text = args
        .track
        .clone()
        .or_else(|| args.track_every_steps.map(|k| format!("steps={k}")));
    let track_epochs = track_text.as_deref().map(TrackEpochs::parse).transpose()?;
    let config_for = |spec| -> Result<TrainConfig, CliError> {
        let config = TrainConfig {
            model: spec,
            data: data.clone(),
            optimizer: optimizer_config(
                &args.optimizer,
                args.momentum,
                args.nesterov,
                args.weight_decay,
            )?,
            schedule: ScheduleConfig::parse(&args.schedule, args.warmup)?,
            lr: args.lr,
            epochs: args.epochs,
            batch_size: args.batch_size,
            seed: args.seed,
        };
        config.validate()?;
        Ok(config)
    };
    config_for(spec.clone())?;
    let selected = select_device(args.device)?;
    status!("device: {selected}");
    let opened = repsim_train::datasets::RunData::open(&data, args.seed)?;
    for change in fit_model_to_data(&mut spec, &opened) {
        status!("fitted to the data: {change}");
    }
    drop(opened);
    let config = config_for(spec)?;
    // Images: the data's side; sequences: rows of a side x side image, text: 64 steps.
    let input = match &config.model {
        repsim_model::ModelSpec::RnnLanguageModel(_) => 64,
        _ => args.data.side,
    };
    super::memory::check_model_fits(&config.model, input, args.batch_size, true)?;
    let options = run_options(&args, selected.device.clone(), track_epochs);
    status!(
        "training {} on {} for {} epochs into {}",
        config.model.name(),
        config.data.dataset,
        config.epochs,
        args.out.display()
    );
    let summary = train(&config, &args.out, &options)?;
    if let Some(epoch) = summary.resumed_from {
        status!("resumed after epoch {epoch}");
    }
    // summary.warnings were logged as they arose (`warning: ...` on stderr).
    if let Some(last) = summary.metrics.last() {
        println!(
            "done: {} parameters; epoch {}: test accuracy {:.1}%, train accuracy {:.1}%",
            summary.parameters,
            last.epoch,
            100.0 * last.test_accuracy,
            100.0 * last.train_accuracy
        );
    }
    if let Some(weights) = &summary.final_weights {
        println!("final weights: {}", weights.display());
    }
    Ok(())
}

/// How to run: the device, resume or overwrite, progress, checkpoints kept, and the Tracker
/// (`track`: when it observes; `None`, no tracking) with the flags' measures, layers and conv
/// mode.
fn run_options(
    args: &TrainArgs,
    device: burn::tensor::Device,
    track: Option<TrackEpochs>,
) -> RunOptions {
    let mut options = RunOptions::new(device);
    options.resume = args.resume;
    options.overwrite = args.overwrite;
    let quiet = crate::logging::verbosity() == crate::logging::Verbosity::Quiet;
    options.progress = if args.quiet || quiet {
        ProgressMode::Quiet
    } else {
        ProgressMode::Auto
    };
    options.keep_last = args.keep_last;
    options.keep_epochs = args.keep_epochs.clone();
    options.track = track.map(|epochs| TrackOptions {
        tracker: TrackerConfig::new(args.out.join("track"))
            .with_measures(args.metric.clone())
            .with_probe(args.probe.clone())
            .with_conv(args.conv),
        epochs,
        probe_count: args.probe_count,
    });
    options
}
