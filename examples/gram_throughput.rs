#![recursion_limit = "256"]
//! Benchmark: the minibatch-CKA Gram phase against a raw matmul of the same shape.
//!
//! For a batch of `m = 256` examples and widths 1k to 16k, times
//!
//! - `raw`: `X Y^T` (`m x D` by `D x m`), the backend's plain matmul;
//! - `gram k=K`: repsim's Gram phase of one layer (`minibatch::gram_row`): the lower block
//!   triangle of `X X^T` with `K` row blocks, centring, and the layer's HSIC row.
//!
//! and reports GFLOP/s counting the FLOPs actually done (2 per multiply-add of the matmuls),
//! the Gram phase's rate as a fraction of the raw matmul's, and the time against a full Gram.
//! Every repetition gets fresh inputs and reads its result back, so nothing is cached.
//!
//! ```text
//! cargo run --example gram_throughput -- [--device flex|wgpu|vulkan] [--reps 5]
//! ```

use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use repsim::device::{select_device, DeviceChoice};
use repsim::similarity::gram::{gram, stacked_grams};
use repsim::similarity::minibatch::{gram_phase_flops, gram_row};
use repsim::similarity::testing::random_values;

/// `--device` and `--reps` from the command line.
fn parse_args() -> Result<(DeviceChoice, usize), String> {
    let (mut device, mut reps) = (DeviceChoice::Flex, 5usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--device" => {
                device = value
                    .parse()
                    .map_err(|e: repsim::device::DeviceError| e.0)?
            }
            "--reps" => {
                reps = value
                    .parse()
                    .ok()
                    .filter(|&r| r > 0)
                    .ok_or(format!("--reps needs a positive integer, got `{value}`"))?
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; use --device D --reps N"
                ))
            }
        }
    }
    Ok((device, reps))
}

fn main() -> std::process::ExitCode {
    let (reps, selected) = match parse_args()
        .and_then(|(device, reps)| select_device(device).map(|s| (reps, s)).map_err(|e| e.0))
    {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    println!("device: {selected}");
    let device = selected.device;
    let m = 256;
    println!(
        "{:>6} {:>14} {:>11} {:>16} {:>11} {:>11}",
        "D", "variant", "ms (med)", "GFLOP/s (done)", "% of raw", "vs full"
    );
    for d in [1024usize, 2048, 4096, 8192, 16384] {
        // Fresh inputs for every repetition (plus one warm-up).
        let inputs: Vec<Tensor<2>> = (0..=reps)
            .map(|r| {
                Tensor::from_data(
                    TensorData::new(random_values(m, d, (d + r) as u64), [m, d]),
                    &device,
                )
            })
            .collect();
        let others: Vec<Tensor<2>> = (0..=reps)
            .map(|r| {
                Tensor::from_data(
                    TensorData::new(random_values(m, d, (7 * d + r) as u64), [m, d]),
                    &device,
                )
            })
            .collect();
        let time = |f: &dyn Fn(usize) -> f32| -> f64 {
            let _ = f(0);
            let mut times: Vec<f64> = (1..=reps)
                .map(|r| {
                    let t = Instant::now();
                    let check = f(r);
                    assert!(check.is_finite());
                    t.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        };
        let raw = time(&|r| {
            let product = inputs[r].clone().matmul(others[r].clone().transpose());
            product.sum().into_scalar::<f32>()
        });
        let raw_flops = 2.0 * (m * m * d) as f64;
        let raw_rate = raw_flops / raw / 1e9;
        println!(
            "{d:>6} {:>14} {:>11.2} {:>16.1} {:>11} {:>11}",
            "raw X Y^T",
            raw * 1e3,
            raw_rate,
            "100%",
            ""
        );
        let mut full_time = None;
        for blocks in [1usize, 2, 4, 8] {
            let t = time(&|r| {
                let (row, traces) = gram_row(&inputs[r], blocks);
                row.sum().into_scalar::<f32>() + traces.sum().into_scalar::<f32>()
            });
            let rate = gram_phase_flops(m, d, blocks) / t / 1e9;
            let full = *full_time.get_or_insert(t);
            println!(
                "{d:>6} {:>14} {:>11.2} {:>16.1} {:>10.0}% {:>10.2}x",
                format!("gram k={blocks}"),
                t * 1e3,
                rate,
                100.0 * rate / raw_rate,
                full / t
            );
        }
        // Four layers of this width: their Grams one by one (`gram::gram`, split-K where it
        // applies) against one stacked call (`gram::stacked_grams`, the stack's copy included).
        let layers = 4;
        let one_by_one = time(&|r| {
            let mut check = 0.0;
            for l in 0..layers {
                let x = inputs[(r + l) % inputs.len()].clone();
                check += gram(x).sum().into_scalar::<f32>();
            }
            check
        });
        let stacked = time(&|r| {
            let xs = (0..layers)
                .map(|l| inputs[(r + l) % inputs.len()].clone())
                .collect();
            stacked_grams(Tensor::stack(xs, 0))
                .sum()
                .into_scalar::<f32>()
        });
        let flops = layers as f64 * raw_flops;
        for (name, t) in [("4 Grams", one_by_one), ("4 stacked", stacked)] {
            println!(
                "{d:>6} {name:>14} {:>11.2} {:>16.1} {:>10.0}% {:>10.2}x",
                t * 1e3,
                flops / t / 1e9,
                100.0 * flops / t / 1e9 / raw_rate,
                one_by_one / t
            );
        }
    }
    std::process::ExitCode::SUCCESS
}
