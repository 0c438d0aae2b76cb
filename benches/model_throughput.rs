#![recursion_limit = "256"]
//! Benchmark: forward throughput of the model zoo, and what named activation capture costs.
//!
//! For ResNet-20 (k = 1) and ResNet-50 (cifar stem), 32 x 32 inputs, times `forward` and
//! `forward_probed(Probe::All)` (every conv, BN, ReLU, add, pool and linear output kept) on
//! fresh random images each repetition, reading the logits back so the work is really done,
//! and reports images/s and the probed/plain time ratio (target: at most 1.10).
//!
//! ```text
//! cargo run --example model_throughput -- [--device flex] [--batch 256] [--reps 3]
//! ```

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::tensor::{Distribution, Tensor};
use clap::Parser;
use repsim::device::{select_device, DeviceChoice};
use repsim::model::{AnyModel, ModelSpec, Probe, ResNetConfig, Stem};

#[derive(Parser)]
struct Args {
    /// Device: flex, wgpu or vulkan.
    #[arg(long, default_value = "flex")]
    device: DeviceChoice,
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Batch for ResNet-50's probed pass (all its activations of 256 images take ~11 GB).
    #[arg(long, default_value_t = 64)]
    resnet50_probe_batch: usize,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Only the models whose names contain this.
    #[arg(long)]
    only: Option<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `reps` timed passes (after a warm-up) with fresh inputs each time.
fn time_pass(
    model: &AnyModel,
    batch: usize,
    probe: &Probe,
    reps: usize,
    device: &burn::tensor::Device,
) -> Result<f64, String> {
    let mut times = Vec::new();
    for rep in 0..=reps {
        let x = Tensor::<4>::random([batch, 3, 32, 32], Distribution::Normal(0.0, 1.0), device);
        let start = Instant::now();
        let (logits, activations) = model.forward_images(x, probe).map_err(|e| e.to_string())?;
        let values: Vec<f32> = logits
            .into_data()
            .try_to_vec()
            .map_err(|e| format!("{e:?}"))?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err("non-finite logits".into());
        }
        let elapsed = start.elapsed().as_secs_f64();
        drop(activations);
        if rep > 0 {
            times.push(elapsed);
        }
    }
    Ok(median(times))
}

fn main() -> std::process::ExitCode {
    repsim::allocator::keep_freed_memory();
    let args = Args::parse();
    let run = || -> Result<(), String> {
        let selected = select_device(args.device).map_err(|e| e.0)?;
        println!(
            "device: {selected}; batch {}; median of {} reps",
            args.batch, args.reps
        );
        let models = [
            (
                "resnet20",
                ModelSpec::Resnet(ResNetConfig::cifar(20, 1, 10)),
                args.batch,
            ),
            (
                "resnet50-cifarstem",
                ModelSpec::Resnet(ResNetConfig::imagenet(50, 10).with_stem(Some(Stem::Cifar))),
                args.resnet50_probe_batch,
            ),
        ];
        println!(
            "{:<20} {:>7} {:>14} {:>7} {:>16} {:>16} {:>8}",
            "model", "batch", "forward img/s", "batch", "plain img/s", "probed(All) img/s", "ratio"
        );
        for (name, spec, probe_batch) in models {
            if args.only.as_deref().is_some_and(|o| !name.contains(o)) {
                continue;
            }
            let model = spec.init(&selected.device).map_err(|e| e.to_string())?;
            let plain = time_pass(
                &model,
                args.batch,
                &Probe::None,
                args.reps,
                &selected.device,
            )?;
            // The overhead is measured at the probe batch, plain and probed alike.
            let plain_small = if probe_batch == args.batch {
                plain
            } else {
                time_pass(
                    &model,
                    probe_batch,
                    &Probe::None,
                    args.reps,
                    &selected.device,
                )?
            };
            let probed = time_pass(
                &model,
                probe_batch,
                &Probe::All,
                args.reps,
                &selected.device,
            )?;
            println!(
                "{name:<20} {:>7} {:>14.1} {:>7} {:>16.1} {:>16.1} {:>8.3}",
                args.batch,
                args.batch as f64 / plain,
                probe_batch,
                probe_batch as f64 / plain_small,
                probe_batch as f64 / probed,
                probed / plain_small
            );
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
