#![recursion_limit = "256"]
//! Where a training step's time goes on a device: data (generating and batching shapes images),
//! forward (logits and cross-entropy), backward, and the optimiser step, for a CIFAR ResNet.
//! Each phase ends with a read-back of one value, so its work is done before the clock stops.
//!
//! ```text
//! cargo run --example train_step_profile -- [--device flex] [--depth 20] [--width 1] [--side 32] [--batch 128] [--steps 10]
//! ```

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::optim::GradientsParams;
use clap::Parser;
use repsim::data::{ChannelStats, ImageBatcher, ShapesConfig, Split};
use repsim::device::{select_device, DeviceChoice};
use repsim::model::kernels::cross_entropy;
use repsim::model::ResNetConfig;
use repsim::train::network::force_initialisation;
use repsim::train::optimizer::build_optimizer;
use repsim::train::OptimizerConfig;

#[derive(Parser)]
struct Args {
    /// Device: flex, wgpu or vulkan.
    #[arg(long, default_value = "flex")]
    device: DeviceChoice,
    /// CIFAR ResNet depth (6n+2).
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Width multiplier k (channels 16k, 32k, 64k).
    #[arg(long, default_value_t = 1)]
    width: usize,
    /// Image side.
    #[arg(long, default_value_t = 32)]
    side: usize,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Timed steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> std::process::ExitCode {
    repsim::allocator::keep_freed_memory();
    let args = Args::parse();
    let selected = match select_device(args.device) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", e.0);
            return std::process::ExitCode::from(2);
        }
    };
    let device = selected.device.clone();
    let train_device = device.clone().autodiff();
    println!(
        "device: {selected}; ResNet-{} x{} at {}x{}, batch {}",
        args.depth, args.width, args.side, args.side, args.batch
    );
    let shapes = ShapesConfig::new()
        .with_side(args.side)
        .with_train_len(args.batch * (args.steps + 2));
    let data = match shapes.init(Split::Train) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let batcher = ImageBatcher::new(ChannelStats::CIFAR10);
    train_device.seed(0);
    let mut model = match ResNetConfig::cifar(args.depth, args.width, 10).init(&train_device) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    force_initialisation(&model);
    let mut optimizer = build_optimizer(&OptimizerConfig::sgd());
    let (mut data_t, mut forward_t, mut backward_t, mut step_t) = (vec![], vec![], vec![], vec![]);
    for step in 0..args.steps + 2 {
        let t = Instant::now();
        let items = data
            .get_many((step * args.batch..(step + 1) * args.batch).collect())
            .expect("generated items");
        let batch = batcher.batch(items, &train_device);
        let t_data = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let loss = cross_entropy(model.forward(batch.images), batch.targets);
        let _ = loss.clone().into_scalar::<f32>();
        let t_forward = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t_backward = t.elapsed().as_secs_f64();

        let t = Instant::now();
        model = optimizer.step(0.05, model, grads);
        let _ = model
            .fc
            .bias
            .as_ref()
            .map(|b| b.val().sum().into_scalar::<f32>());
        let t_step = t.elapsed().as_secs_f64();
        if step >= 2 {
            data_t.push(t_data);
            forward_t.push(t_forward);
            backward_t.push(t_backward);
            step_t.push(t_step);
        }
    }
    let phases = [
        ("data (generate + batch)", median(data_t)),
        ("forward + loss", median(forward_t)),
        ("backward", median(backward_t)),
        ("optimizer step", median(step_t)),
    ];
    let total: f64 = phases.iter().map(|p| p.1).sum();
    for (name, t) in phases {
        println!(
            "{name:<24} {:>8.1} ms  {:>5.1}%",
            1e3 * t,
            100.0 * t / total
        );
    }
    println!(
        "{:<24} {:>8.1} ms  = {:.0} images/s",
        "step",
        1e3 * total,
        args.batch as f64 / total
    );
    std::process::ExitCode::SUCCESS
}
