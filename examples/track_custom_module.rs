//! A hand-written burn module, trained by a plain burn loop, with repsim's Tracker added in two
//! lines (marked `repsim:` below):
//!
//! ```text
//! cargo run --example track_custom_module -- [--out DIR] [--epochs N] [--train-count N] [--seed S]
//! ```
//!
//! `SmallNet` is the user's own model: a burn `#[derive(Module)]` with a `forward_with_layers`
//! that returns its layers as named tensors. Nothing of it comes from repsim: repsim only
//! supplies the built-in `shapes` images (any images would do). The loop saves its weights
//! after every epoch (`DIR/weights/epoch-E.bpk`, as a user's loop would), the Tracker records
//! every layer on 500 fixed test images, and at the end the example writes the convergence
//! tables (`DIR/track/report.json`) and plots (`DIR/convergence_*.png`: each layer's similarity
//! to its final self over epochs, Raghu et al. 2017, Fig. 4).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor};
use clap::Parser;
use repsim::data::{ChannelStats, ImageBatcher, ShapesConfig, Split};
use repsim::similarity::SimilarityMatrix;
use repsim::train::{compare, CompareOptions, TrackReport, Tracker, TrackerConfig};

/// What the example's errors are: anything (burn's, repsim's, the file system's).
pub type Error = Box<dyn std::error::Error>;

/// What a run gives: the Tracker's report, and the first epoch's model compared with the last.
pub struct Outcome {
    /// The convergence tables of every layer.
    pub report: TrackReport,
    /// Minibatch CKA of the epoch-1 model's layers (rows) against the final model's.
    pub first_vs_last: SimilarityMatrix,
}

/// The user's own model: two convolutions, global pooling, a linear classifier.
#[derive(Module, Debug)]
pub struct SmallNet {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: AdaptiveAvgPool2d,
    fc: Linear,
    relu: Relu,
}

impl SmallNet {
    /// A fresh network on `device`.
    pub fn new(device: &Device) -> Self {
        let conv = |input, output| {
            Conv2dConfig::new([input, output], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        SmallNet {
            conv1: conv(3, 8),
            conv2: conv(8, 16),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(16, 10).init(device),
            relu: Relu::new(),
        }
    }

    /// The logits.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let h = self.relu.forward(self.conv1.forward(x));
        let h = self.relu.forward(self.conv2.forward(h));
        self.fc.forward(self.pool.forward(h).flatten(1, 3))
    }

    /// Every layer, named, examples on dim 0 (what repsim's Tracker records).
    pub fn forward_with_layers(&self, x: Tensor<4>) -> Vec<(&'static str, Tensor<2>)> {
        let h1 = self.relu.forward(self.conv1.forward(x));
        let h2 = self.relu.forward(self.conv2.forward(h1.clone()));
        let pooled: Tensor<2> = self.pool.forward(h2.clone()).flatten(1, 3);
        let logits = self.fc.forward(pooled.clone());
        vec![
            ("conv1", h1.flatten(1, 3)),
            ("conv2", h2.flatten(1, 3)),
            ("pooled", pooled),
            ("logits", logits),
        ]
    }
}

/// The example's options.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "track_custom_module",
    about = "repsim's Tracker on a hand-written burn module in a plain burn training loop"
)]
pub struct Args {
    /// Output directory: the weights of every epoch, `track/`, the plots.
    #[arg(long, default_value = "runs/track_custom_module")]
    pub out: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 6)]
    pub epochs: usize,
    /// Training images (16 x 16 shapes).
    #[arg(long, default_value_t = 4000)]
    pub train_count: usize,
    /// Seed of the initialisation and the shuffle.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Test images every observation probes.
pub const PROBE_COUNT: usize = 500;
/// Training batch size.
const BATCH: usize = 64;

/// The data: 16 x 16 shapes, normalised with the training split's statistics; the training
/// images and labels on `device`, and the first `PROBE_COUNT` test images on the plain CPU
/// device (the probe set).
pub fn data(
    train_count: usize,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>, Tensor<4>), Error> {
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::Dataset;
    let shapes = ShapesConfig::new()
        .with_side(16)
        .with_train_len(train_count)
        .with_test_len(PROBE_COUNT);
    let train = shapes.init(Split::Train)?;
    let test = shapes.init(Split::Test)?;
    let batcher = ImageBatcher::new(ChannelStats::compute(&train, Some(2000))?);
    let items = |d: &dyn Dataset<repsim::data::ImageItem>, n: usize| -> Result<Vec<_>, String> {
        (0..n)
            .map(|i| d.get(i).map_err(|e| format!("image {i}: {e}")))
            .collect()
    };
    let train_batch = batcher.batch(items(&train, train_count)?, device);
    let probe = batcher
        .batch(items(&test, PROBE_COUNT)?, &Device::flex())
        .images;
    Ok((train_batch.images, train_batch.targets, probe))
}

/// Where the weights of `epoch` are saved.
pub fn weights_path(out: &Path, epoch: usize) -> PathBuf {
    out.join("weights").join(format!("epoch-{epoch}.bpk"))
}

/// Trains `SmallNet` with plain burn (autodiff, SGD with momentum, cross-entropy), saving its
/// weights and letting the Tracker observe it after every epoch; then compares the first
/// epoch's model with the last.
pub fn run(args: &Args) -> Result<Outcome, Error> {
    if args.epochs == 0 || args.train_count < BATCH {
        return Err(
            format!("--epochs must be at least 1 and --train-count at least {BATCH}").into(),
        );
    }
    let out = &args.out;
    std::fs::create_dir_all(out.join("weights"))
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    let device = Device::flex().autodiff();
    device.seed(args.seed);
    let (images, labels, probe_images) = data(args.train_count, &device)?;
    let mut model = SmallNet::new(&device);
    let mut optimizer = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);

    // repsim: a tracker over the probe images (one line)
    let mut tracker = Tracker::new(TrackerConfig::new(out.join("track")), probe_images.clone())?;

    let steps = args.train_count / BATCH;
    for epoch in 1..=args.epochs {
        let order = Tensor::<1, Int>::from_data(
            shuffled(args.train_count, args.seed + epoch as u64).as_slice(),
            &device,
        );
        let (mut loss_sum, mut correct) = (0.0, 0);
        for step in 0..steps {
            let index = order.clone().narrow(0, step * BATCH, BATCH);
            let x = images.clone().select(0, index.clone());
            let y = labels.clone().select(0, index);
            let logits = model.forward(x);
            let loss = loss_fn.forward(logits.clone(), y.clone());
            loss_sum += loss.clone().into_scalar::<f64>();
            correct += logits
                .argmax(1)
                .flatten::<1>(0, 1)
                .equal(y)
                .int()
                .sum()
                .into_scalar::<i64>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(0.05, model, grads);
        }
        model.valid().save_file(weights_path(&args.out, epoch))?;

        // repsim: record every layer at this epoch (one line)
        tracker.observe(epoch, |x| model.valid().forward_with_layers(x))?;

        println!(
            "epoch {epoch}/{}: train loss {:.4}, train accuracy {:.1}%",
            args.epochs,
            loss_sum / steps as f64,
            100.0 * correct as f64 / (steps * BATCH) as f64
        );
    }
    let report = tracker.finish()?; // convergence tables: each layer vs its final self

    // Two models on the same inputs, in memory: the first epoch's weights against the last.
    let first = SmallNet::new(&Device::flex()).try_load_file(weights_path(&args.out, 1))?;
    let first_vs_last = compare(
        probe_images,
        |x| first.forward_with_layers(x),
        |x| model.valid().forward_with_layers(x),
        &CompareOptions::default(),
    )?;
    Ok(Outcome {
        report,
        first_vs_last,
    })
}

/// A permutation of `0..n` from `seed` (xorshift; any shuffle would do).
fn shuffled(n: usize, seed: u64) -> Vec<i64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut order: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = run(&args).and_then(
        |Outcome {
             report,
             first_vs_last,
         }| {
            let written = repsim::tracking::write_report(
                &report,
                &args.out,
                "SmallNet (a hand-written burn module) on shapes",
            )?;
            let diagonal: Vec<String> = first_vs_last
                .rows
                .iter()
                .enumerate()
                .map(|(i, layer)| match first_vs_last.values[i][i] {
                    Some(v) => format!("{layer} {v:.3}"),
                    None => format!("{layer} -"),
                })
                .collect();
            println!(
                "minibatch CKA, epoch 1 vs epoch {}: {}",
                args.epochs,
                diagonal.join(", ")
            );
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
        },
    );
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(1)
        }
    }
}
