#![recursion_limit = "256"]
//! repsim's Tracker inside burn-train's `SupervisedTraining`:
//!
//! ```text
//! cargo run --features burn-train --example track_burn_train -- [--out DIR] [--epochs N]
//!     [--train-count N] [--depth D] [--seed S] [--overwrite]
//! ```
//!
//! Trains a CIFAR-style ResNet on the built-in `shapes` data with burn-train (its own loop,
//! metrics and checkpoints), lets a `TrackingCheckpointer` observe every saved epoch on 500
//! fixed test images, and writes the convergence tables (`DIR/track/report.json`) and plots
//! (`DIR/convergence_*.png`: each layer's similarity to its final self over epochs, Raghu et
//! al. 2017, Fig. 4).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use burn_train::checkpoint::{FileCheckpointer, KeepLastNCheckpoints};
use burn_train::metric::{AccuracyMetric, LossMetric};
use burn_train::{Learner, SupervisedTraining};
use clap::Parser;
use repsim::data::{data_loader, ChannelStats, ImageBatcher, LoaderConfig, ShapesConfig, Split};
use repsim::model::ResNetConfig;
use repsim::similarity::ConvMode;
use repsim::train::burn_train::{EpochLines, SharedTracker, Supervised, TrackingCheckpointer};
use repsim::train::network::force_initialisation;
use repsim::train::optimizer::build_optimizer;
use repsim::train::{Inputs, OptimizerConfig, Tracker, TrackerConfig};

#[derive(Parser)]
#[command(
    name = "track_burn_train",
    about = "repsim's Tracker inside burn-train's SupervisedTraining (convergence of each layer)"
)]
struct Args {
    /// Output directory (burn-train's logs and checkpoints, the tracker's `track/`, the plots).
    #[arg(long, default_value = "runs/track_burn_train")]
    out: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    /// Training images (16x16 shapes).
    #[arg(long, default_value_t = 5000)]
    train_count: usize,
    /// ResNet depth (6n+2).
    #[arg(long, default_value_t = 8)]
    depth: usize,
    /// Seed of the initialisation and the shuffle.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Replace an existing output directory's contents.
    #[arg(long)]
    overwrite: bool,
}

/// Test images every observation probes.
const PROBE_COUNT: usize = 500;

fn main() -> ExitCode {
    repsim::allocator::keep_freed_memory();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.epochs == 0 || args.train_count == 0 {
        return Err("--epochs and --train-count must be at least 1".into());
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
    let config = ResNetConfig::cifar(args.depth, 1, 10);
    let model = Supervised::new(config.init(&device).map_err(|e| e.to_string())?);
    force_initialisation(&model);
    let probe_model = Supervised::new(config.init(&Device::flex()).map_err(|e| e.to_string())?);

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
    let probe = Inputs::Images(batcher.batch(probe_items, &Device::flex()).images);
    // Conv maps average-pooled to 2 x 2, so that PWCCA and CCA (which need more examples than
    // features) are defined for every layer.
    let tracker_config =
        TrackerConfig::new(args.out.join("track")).with_conv(ConvMode::Pool { size: 2 });
    let tracker =
        SharedTracker::new(Tracker::new(tracker_config, probe).map_err(|e| e.to_string())?);

    let checkpoints = args.out.join("checkpoint");
    let model_checkpointer = TrackingCheckpointer::new(
        FileCheckpointer::new(&checkpoints, "model"),
        tracker.clone(),
        probe_model,
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
    let report_path = args.out.join("track").join("report.json");
    repsim::train::durable::write_json(&report_path, &report).map_err(|e| e.to_string())?;
    let title = format!("ResNet-{} on shapes, burn-train", args.depth);
    let written = repsim::tracking::draw_convergence(
        &report.convergence,
        &args.out.join("convergence"),
        &title,
    )
    .map_err(|e| e.to_string())?;

    println!("observed epochs {:?}", report.index.epochs);
    for table in &report.convergence {
        let reached: Vec<String> = table
            .first_epoch_reaching(0.9)
            .into_iter()
            .map(|(layer, epoch)| match epoch {
                Some(e) => format!("{layer} {e}"),
                None => format!("{layer} -"),
            })
            .collect();
        println!(
            "{}: first epoch >= 0.9 of the final: {}",
            table.metric,
            reached.join(", ")
        );
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    println!("wrote {}", report_path.display());
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
