#![recursion_limit = "256"]
//! repsim's Tracker inside burn-train's `SupervisedTraining`, on a model the user wrote:
//!
//! ```text
//! cargo run --features burn-train --example track_burn_train -- [--out DIR] [--epochs N]
//!     [--train-count N] [--width W] [--seed S] [--overwrite]
//! ```
//!
//! `ConvNet` is the user's own burn module with burn-train's `TrainStep` and `InferenceStep`
//! (nothing from repsim-model). burn-train trains it on the built-in `shapes` data (its own
//! loop, metrics and checkpoints, whose parameter names stay the model's own: `conv1.weight`),
//! a `TrackingCheckpointer` lets repsim observe every saved epoch on 500 fixed test images
//! through a closure naming the model's layers, and the example writes the convergence tables
//! (`DIR/track/report.json`) and plots (`DIR/convergence_*.png`: each layer's similarity to its
//! final self over epochs, Raghu et al. 2017, Fig. 4).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};
use burn_train::checkpoint::{FileCheckpointer, KeepLastNCheckpoints};
use burn_train::metric::{AccuracyMetric, LossMetric};
use burn_train::{
    ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep,
};
use clap::Parser;
use repsim::data::{
    data_loader, ChannelStats, ImageBatch, ImageBatcher, LoaderConfig, ShapesConfig, Split,
};
use repsim::model::Activations;
use repsim::similarity::ConvMode;
use repsim::train::burn_train::{EpochLines, SharedTracker, TrackingCheckpointer};
use repsim::train::network::force_initialisation;
use repsim::train::optimizer::build_optimizer;
use repsim::train::{OptimizerConfig, Tracker, TrackerConfig};

/// The user's model: three conv blocks (conv, batch norm, ReLU; stride 2 after the first),
/// global pooling and a linear classifier.
#[derive(Module, Debug)]
pub struct ConvNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Conv2d,
    bn3: BatchNorm,
    pool: AdaptiveAvgPool2d,
    fc: Linear,
    relu: Relu,
}

impl ConvNet {
    /// A fresh network of `width` channels in its first block on `device`.
    pub fn new(width: usize, device: &Device) -> Self {
        let conv = |input, output, stride| {
            Conv2dConfig::new([input, output], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        ConvNet {
            conv1: conv(3, width, 1),
            bn1: BatchNormConfig::new(width).init(device),
            conv2: conv(width, 2 * width, 2),
            bn2: BatchNormConfig::new(2 * width).init(device),
            conv3: conv(2 * width, 4 * width, 2),
            bn3: BatchNormConfig::new(4 * width).init(device),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(4 * width, 10).init(device),
            relu: Relu::new(),
        }
    }

    /// Every block's output, the pooled features and the logits, named.
    pub fn forward_with_layers(&self, x: Tensor<4>) -> Activations {
        let b1 = self.relu.forward(self.bn1.forward(self.conv1.forward(x)));
        let b2 = self
            .relu
            .forward(self.bn2.forward(self.conv2.forward(b1.clone())));
        let b3 = self
            .relu
            .forward(self.bn3.forward(self.conv3.forward(b2.clone())));
        let pooled: Tensor<2> = self.pool.forward(b3.clone()).flatten(1, 3);
        let logits = self.fc.forward(pooled.clone());
        Activations::new()
            .with("block1", b1)
            .with("block2", b2)
            .with("block3", b3)
            .with("pooled", pooled)
            .with("logits", logits)
    }

    /// The logits.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let b1 = self.relu.forward(self.bn1.forward(self.conv1.forward(x)));
        let b2 = self.relu.forward(self.bn2.forward(self.conv2.forward(b1)));
        let b3 = self.relu.forward(self.bn3.forward(self.conv3.forward(b2)));
        self.fc.forward(self.pool.forward(b3).flatten(1, 3))
    }

    fn classify(&self, batch: ImageBatch) -> ClassificationOutput {
        let logits = self.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput {
            loss,
            output: logits,
            targets: batch.targets,
        }
    }
}

impl TrainStep for ConvNet {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let output = self.classify(batch);
        let gradients = output.loss.backward();
        TrainOutput::new(self, gradients, output)
    }
}

impl InferenceStep for ConvNet {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.classify(batch)
    }
}

#[derive(Parser)]
#[command(
    name = "track_burn_train",
    about = "repsim's Tracker inside burn-train's SupervisedTraining (convergence of each layer)"
)]
pub struct Args {
    /// Output directory (burn-train's logs and checkpoints, the tracker's `track/`, the plots).
    #[arg(long, default_value = "runs/track_burn_train")]
    pub out: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// Training images (16x16 shapes).
    #[arg(long, default_value_t = 5000)]
    pub train_count: usize,
    /// Channels of the first block (the others have 2x and 4x).
    #[arg(long, default_value_t = 16)]
    pub width: usize,
    /// Seed of the initialisation and the shuffle.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace an existing output directory's contents.
    #[arg(long)]
    pub overwrite: bool,
}

/// Test images every observation probes.
pub const PROBE_COUNT: usize = 500;

fn main() -> ExitCode {
    repsim::allocator::keep_freed_memory();
    repsim::logging::init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// Trains, tracks, and writes the report and the plots.
pub fn run(args: &Args) -> Result<(), String> {
    if args.epochs == 0 || args.train_count == 0 || args.width == 0 {
        return Err("--epochs, --train-count and --width must be at least 1".into());
    }
    prepare_output(&args.out, args.overwrite)?;

    // Data: shapes at 16x16, normalised with the training split's statistics.
    let shapes = ShapesConfig::new()
        .with_side(16)
        .with_train_len(args.train_count)
        .with_test_len(1000);
    let train = shapes.init(Split::Train).map_err(|e| e.to_string())?;
    let test = shapes.init(Split::Test).map_err(|e| e.to_string())?;
    let stats = ChannelStats::compute(&train, Some(2000)).map_err(|e| e.to_string())?;
    let batcher = ImageBatcher::new(stats);

    // The training model on the autodiff device; a second model of the same shape on the
    // inner device is what the tracker loads each checkpoint into.
    let device = Device::flex().autodiff();
    device.seed(args.seed);
    let model = ConvNet::new(args.width, &device);
    force_initialisation(&model);
    let probe_model = ConvNet::new(args.width, &Device::flex());

    let loader = |shuffle: Option<u64>| LoaderConfig {
        batch_size: 128,
        shuffle_seed: shuffle,
        workers: 1,
    };
    let train_loader = data_loader(train, batcher, &loader(Some(args.seed)), &device);
    let test_loader = data_loader(test.clone(), batcher, &loader(None), &Device::flex());

    // The tracker: 500 fixed test images, stored under OUT/track.
    let probe_items = (0..PROBE_COUNT)
        .map(|i| test.get(i).map_err(|e| format!("test image {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let probe = batcher.batch(probe_items, &Device::flex()).images;
    // Conv maps average-pooled to 2 x 2, so that PWCCA and CCA (which need more examples than
    // features) are defined for every layer.
    let tracker_config =
        TrackerConfig::new(args.out.join("track")).with_conv(ConvMode::Pool { size: 2 });
    let tracker =
        SharedTracker::new(Tracker::new(tracker_config, probe).map_err(|e| e.to_string())?);

    let checkpoints = args.out.join("checkpoint");
    let model_checkpointer = TrackingCheckpointer::with_layers(
        FileCheckpointer::new(&checkpoints, "model"),
        tracker.clone(),
        probe_model,
        |model: &ConvNet, x| model.forward_with_layers(x),
    );
    let learner = Learner::new(
        model,
        build_optimizer(&OptimizerConfig::sgd()),
        burn::optim::lr_scheduler::constant::ConstantLr::new(0.05),
    );
    let result = SupervisedTraining::new(&args.out, train_loader, test_loader)
        .num_epochs(args.epochs)
        .with_custom_checkpointers(
            model_checkpointer,
            FileCheckpointer::new(&checkpoints, "optim"),
            FileCheckpointer::new(&checkpoints, "scheduler"),
        )
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(2))
        .metric_train_numeric(AccuracyMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        // No global logger or panic hook in the user's process; one line per epoch.
        .with_application_logger(None)
        .renderer(Box::new(EpochLines::default()))
        .launch(learner);
    if let Some(error) = &result.error {
        return Err(format!("training stopped: {error}"));
    }

    let report = tracker.finish().map_err(|e| e.to_string())?;
    let title = format!("ConvNet (width {}) on shapes, burn-train", args.width);
    let written =
        repsim::tracking::write_report(&report, &args.out, &title).map_err(|e| e.to_string())?;

    println!("observed epochs {:?}", report.index.epochs);
    for line in repsim::tracking::summary_lines(&report, 0.9) {
        println!("{line}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Refuses a non-empty output directory unless `overwrite`, which clears it first.
fn prepare_output(out: &Path, overwrite: bool) -> Result<(), String> {
    let occupied = std::fs::read_dir(out)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if occupied {
        if !overwrite {
            return Err(format!(
                "{} is not empty: pass --overwrite, or another --out",
                out.display()
            ));
        }
        std::fs::remove_dir_all(out).map_err(|e| format!("clearing {}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))
}
