#![recursion_limit = "256"]
//! Benchmark: images/s on one core for the data pipeline, so data never bounds training
//! (target: at least 20,000 images/s).
//!
//! - CIFAR-10: decoding a 10,000-record `test_batch.bin` written in the exact binary layout
//!   (read whole, parsed), then every item fetched and augmented (4-pixel-padded random crop
//!   and flip);
//! - shapes: generating items at 32 x 32 and 16 x 16;
//! - batching: items into a normalised (N, 3, 32, 32) tensor on flex.
//!
//! All on the calling thread. `cargo run --example data_throughput -- [--images 20000]`

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use clap::Parser;
use rand::SeedableRng;
use repsim::data::{Augmentation, ChannelStats, CifarDataset, ImageBatcher, ShapesConfig, Split};

#[derive(Parser)]
struct Args {
    /// Images per measurement.
    #[arg(long, default_value_t = 20_000)]
    images: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let run = || -> Result<(), String> {
        let n = args.images.max(1000);
        // A CIFAR-10 test batch in the published layout: label byte + 3072 pixel bytes.
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let folder = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
        let records = 10_000;
        let mut state = 0x1234_5678u32;
        let bytes: Vec<u8> = (0..records * 3073)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if i % 3073 == 0 {
                    (state % 10) as u8
                } else {
                    state as u8
                }
            })
            .collect();
        std::fs::write(folder.join("test_batch.bin"), &bytes).map_err(|e| e.to_string())?;

        let start = Instant::now();
        let cifar = CifarDataset::cifar10(dir.path(), Split::Test).map_err(|e| e.to_string())?;
        let decode = start.elapsed().as_secs_f64();
        println!(
            "cifar10 decode (read + parse {records} records): {:>10.0} images/s",
            records as f64 / decode
        );

        let augmentation = Augmentation::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let start = Instant::now();
        let mut checksum = 0u64;
        for i in 0..n {
            let item = cifar.get(i % records).map_err(|e| e.to_string())?;
            let out = augmentation.apply(&item, &mut rng);
            checksum += out.pixels[1000] as u64;
        }
        let augment = start.elapsed().as_secs_f64();
        println!(
            "cifar10 get + crop/flip ({n} items):        {:>10.0} images/s",
            n as f64 / augment
        );
        println!(
            "cifar10 decode + augmentation, per image:  {:>10.0} images/s",
            1.0 / (decode / records as f64 + augment / n as f64)
        );

        for side in [32, 16] {
            let shapes = ShapesConfig::new()
                .with_side(side)
                .with_train_len(n)
                .init(Split::Train)
                .map_err(|e| e.to_string())?;
            let start = Instant::now();
            for i in 0..n {
                checksum += shapes.generate(i).pixels[side] as u64;
            }
            let t = start.elapsed().as_secs_f64();
            println!(
                "shapes generation {side}x{side} ({n} items):      {:>10.0} images/s",
                n as f64 / t
            );
        }

        let device = Device::flex();
        let items: Vec<_> = (0..256)
            .map(|i| cifar.get(i).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let batcher = ImageBatcher::new(ChannelStats::CIFAR10);
        let reps = (n / 256).max(1);
        let start = Instant::now();
        for _ in 0..reps {
            let batch = batcher.batch(items.clone(), &device);
            checksum += batch.images.dims()[0] as u64;
        }
        let t = start.elapsed().as_secs_f64();
        println!(
            "batching to a flex tensor ({} batches of 256): {:>8.0} images/s",
            reps,
            (reps * 256) as f64 / t
        );
        println!("(checksum {checksum})");
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
