#![recursion_limit = "256"]
//! How hard is the built-in `shapes` dataset? Trains a small CIFAR ResNet on it from scratch
//! and reports test accuracy after every epoch. The dataset is meant to be learnable well above
//! chance (10%) in one epoch and to keep improving for several, not to be solved at once.
//!
//! SGD with momentum 0.9, weight decay 5e-4, random crops and flips, on the training device's
//! autodiff backend; the test split is evaluated with the batch-norm running statistics.
//!
//! ```text
//! cargo run --example shapes_difficulty -- [--side 16] [--depth 8] [--train 10000] [--epochs 4]
//!     [--seed 0] [--save weights.bpk]
//! ```

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use clap::Parser;
use repsim::data::{
    data_loader, Augmentation, Augmented, ChannelStats, ImageBatcher, LoaderConfig, ShapesConfig,
    Split,
};
use repsim::device::{select_device, DeviceChoice};
use repsim::model::ResNetConfig;

#[derive(Parser)]
struct Args {
    /// Device: flex, wgpu or vulkan.
    #[arg(long, default_value = "flex")]
    device: DeviceChoice,
    /// Image side.
    #[arg(long, default_value_t = 16)]
    side: usize,
    /// CIFAR ResNet depth (6n+2).
    #[arg(long, default_value_t = 8)]
    depth: usize,
    /// Training images per epoch.
    #[arg(long, default_value_t = 10_000)]
    train: usize,
    /// Test images.
    #[arg(long, default_value_t = 2_000)]
    test: usize,
    /// Epochs.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Seed of the initialisation and the shuffles.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save the trained weights here (burnpack), for `repsim activations --weights`.
    #[arg(long)]
    save: Option<std::path::PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let run = || -> Result<(), String> {
        let selected = select_device(args.device).map_err(|e| e.0)?;
        let device = selected.device.clone();
        let train_device = device.clone().autodiff();
        println!(
            "device: {selected}; ResNet-{} on shapes {}x{}, {} train / {} test images, batch {}, lr {}",
            args.depth, args.side, args.side, args.train, args.test, args.batch, args.lr
        );
        let shapes = ShapesConfig::new()
            .with_side(args.side)
            .with_train_len(args.train)
            .with_test_len(args.test);
        let train = shapes.init(Split::Train).map_err(|e| e.to_string())?;
        let test = shapes.init(Split::Test).map_err(|e| e.to_string())?;
        let stats = ChannelStats::compute(&train, Some(2000)).map_err(|e| e.to_string())?;
        let augmentation = Augmentation {
            padding: (args.side / 8).max(1),
            flip: true,
        };
        let batcher = ImageBatcher::new(stats);
        let loader = data_loader(
            Augmented::new(train, augmentation, args.seed),
            batcher,
            &LoaderConfig::new()
                .with_batch_size(args.batch)
                .with_shuffle_seed(Some(args.seed))
                .with_workers(1),
            &train_device,
        );

        train_device.seed(args.seed);
        let mut model = ResNetConfig::cifar(args.depth, 1, 10)
            .init(&train_device)
            .map_err(|e| e.to_string())?;
        let mut optimizer = SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
            .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
            .init();
        let loss_fn = CrossEntropyLossConfig::new().init(&train_device);

        println!(
            "{:>5} {:>11} {:>10} {:>9}",
            "epoch", "train loss", "test acc", "seconds"
        );
        for epoch in 1..=args.epochs {
            let start = Instant::now();
            let (mut loss_sum, mut batches) = (0.0f64, 0usize);
            for batch in loader.iter() {
                let batch = batch.map_err(|e| e.to_string())?;
                let logits = model.forward(batch.images);
                let loss = loss_fn.forward(logits, batch.targets);
                loss_sum += loss.clone().into_scalar::<f32>() as f64;
                batches += 1;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(args.lr, model, grads);
            }
            // Test accuracy with the running statistics, off the autodiff graph.
            let eval = model.valid();
            let mut correct = 0i64;
            let mut seen = 0usize;
            while seen < test.len() {
                let end = (seen + 500).min(test.len());
                let items = test
                    .get_many((seen..end).collect())
                    .map_err(|e| e.to_string())?;
                let batch = batcher.batch(items, &device);
                let n = end - seen;
                let predicted = eval.forward(batch.images).argmax(1).reshape([n]);
                correct += predicted
                    .equal(batch.targets)
                    .int()
                    .sum()
                    .into_scalar::<i64>();
                seen = end;
            }
            println!(
                "{epoch:>5} {:>11.4} {:>9.1}% {:>9.1}",
                loss_sum / batches.max(1) as f64,
                100.0 * correct as f64 / test.len() as f64,
                start.elapsed().as_secs_f64()
            );
        }
        if let Some(path) = &args.save {
            repsim::model::save_weights(&model.valid(), path).map_err(|e| e.to_string())?;
            println!("saved the weights to {}", path.display());
        }
        Ok(())
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
