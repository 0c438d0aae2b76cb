#![recursion_limit = "256"]
//! Benchmark: the minibatch-CKA Gram phase against a raw matmul of the same shape.
//!
//! For a batch of `m = 256` examples and widths 1k to 16k, times
//!
//! - `raw`: `X Y^T` (`m x D` by `D x m`), the backend's plain matmul;
//! - `K host` / `K burn ops`: the Gram `X X^T` alone, by `gram::gram` (on flex: faer's
//!   lower-triangular product on the tensor's storage, `host_gram`) and by `gram::device_gram`
//!   (burn ops, split-K for wide layers: what every other device runs);
//! - `phase host` / `phase burn ops`: repsim's whole Gram phase of one layer (the Gram,
//!   centring, and the layer's HSIC row) on each Gram path;
//! - `phase k=K`: the Gram phase from the lower block triangle with `K` row blocks (burn ops);
//! - four layers of one width, their Grams one by one (`gram::gram`) against one stacked call.
//!
//! GFLOP/s count the full Gram's `2 m^2 D` (the issue's convention, so the host path's half
//! triangle counts as a full Gram) for the `K` and `phase` lines, and the FLOPs done for the
//! triangle lines; `speed-up` is against the burn-op line (for `4 stacked`, against `4 Grams`).
//! On x86 the example first measures the FMA peak of all threads with a
//! register-only loop, and prints each rate as a share of it. Every repetition gets fresh
//! inputs and reads its result back, so nothing is cached.
//!
//! ```text
//! cargo run --example gram_throughput -- [--device flex|wgpu|vulkan] [--reps 5]
//! ```

use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use repsim::device::{select_device, DeviceChoice};
use repsim::similarity::gram::{device_gram, gram, stacked_grams};
use repsim::similarity::minibatch::{gram_phase_flops, gram_row, gram_row_from_gram};
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
    let peak = fma_peak::gflops();
    match peak {
        Some(p) => println!(
            "FMA peak ({} threads, register-only f32 loop): {p:.1} GFLOP/s",
            rayon_threads()
        ),
        None => println!("FMA peak: not measured (needs x86-64 with FMA)"),
    }
    let of_peak = |rate: f64| peak.map_or(String::new(), |p| format!("{:.0}%", 100.0 * rate / p));
    let m = 256;
    println!(
        "{:>6} {:>16} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "D", "variant", "ms (med)", "GFLOP/s", "% of raw", "of peak", "speed-up"
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
        let full_flops = raw_flops;
        let line = |name: &str, t: f64, flops: f64, versus: Option<f64>| {
            let rate = flops / t / 1e9;
            println!(
                "{d:>6} {name:>16} {:>10.2} {:>9.1} {:>8.0}% {:>9} {:>9}",
                t * 1e3,
                rate,
                100.0 * rate / raw_rate,
                of_peak(rate),
                versus.map_or(String::new(), |b| format!("{:.2}x", b / t)),
            );
        };
        line("raw X Y^T", raw, raw_flops, None);
        let gram_host = time(&|r| gram(inputs[r].clone()).sum().into_scalar::<f32>());
        let gram_burn = time(&|r| device_gram(inputs[r].clone()).sum().into_scalar::<f32>());
        line("K host", gram_host, full_flops, Some(gram_burn));
        line("K burn ops", gram_burn, full_flops, None);
        let phase = |t: (Tensor<2>, Tensor<1>)| {
            t.0.sum().into_scalar::<f32>() + t.1.sum().into_scalar::<f32>()
        };
        let phase_burn = time(&|r| phase(gram_row_from_gram(device_gram(inputs[r].clone()))));
        let phase_host = time(&|r| phase(gram_row(&inputs[r], 1)));
        line("phase host", phase_host, full_flops, Some(phase_burn));
        line("phase burn ops", phase_burn, full_flops, None);
        for blocks in [2usize, 4, 8] {
            let t = time(&|r| phase(gram_row(&inputs[r], blocks)));
            line(
                &format!("phase k={blocks}"),
                t,
                gram_phase_flops(m, d, blocks),
                Some(phase_burn),
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
        line("4 Grams", one_by_one, flops, None);
        line("4 stacked", stacked, flops, Some(one_by_one));
    }
    std::process::ExitCode::SUCCESS
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
}

/// The f32 FMA peak of this machine's threads, measured with independent fused multiply-adds
/// on registers only (no memory traffic): the ceiling any matmul kernel works against.
mod fma_peak {
    /// GFLOP/s over all threads (2 FLOPs per lane per FMA), or `None` without FMA.
    pub fn gflops() -> Option<f64> {
        #[cfg(target_arch = "x86_64")]
        {
            if !std::arch::is_x86_feature_detected!("fma") {
                return None;
            }
            let threads = super::rayon_threads();
            let wide = std::arch::is_x86_feature_detected!("avx512f");
            let iterations = 20_000_000u64;
            let run = move || {
                // SAFETY: the features were detected above.
                unsafe {
                    if wide {
                        x86::fma512(iterations)
                    } else {
                        x86::fma256(iterations)
                    }
                }
            };
            let _ = run(); // warm-up: clocks up, threads started
            let start = std::time::Instant::now();
            let handles: Vec<_> = (0..threads).map(|_| std::thread::spawn(run)).collect();
            let flops: f64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
            Some(flops / start.elapsed().as_secs_f64() / 1e9)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::arch::x86_64::*;

        /// 12 independent accumulator chains (enough to cover the FMA latency on two ports).
        #[target_feature(enable = "avx512f")]
        pub unsafe fn fma512(iterations: u64) -> f64 {
            let a = _mm512_set1_ps(0.999_999);
            let b = _mm512_set1_ps(1e-7);
            let mut acc = [_mm512_set1_ps(1.0); 12];
            for _ in 0..iterations {
                for v in acc.iter_mut() {
                    *v = _mm512_fmadd_ps(*v, a, b);
                }
            }
            let sum: f32 = acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum();
            std::hint::black_box(sum);
            (iterations * 12 * 16 * 2) as f64
        }

        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn fma256(iterations: u64) -> f64 {
            let a = _mm256_set1_ps(0.999_999);
            let b = _mm256_set1_ps(1e-7);
            let mut acc = [_mm256_set1_ps(1.0); 12];
            for _ in 0..iterations {
                for v in acc.iter_mut() {
                    *v = _mm256_fmadd_ps(*v, a, b);
                }
            }
            let mut lanes = [0.0f32; 8];
            for v in acc {
                _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                std::hint::black_box(lanes);
            }
            (iterations * 12 * 8 * 2) as f64
        }
    }
}
