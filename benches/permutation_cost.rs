#![recursion_limit = "256"]
//! Benchmark: what a permutation test costs against the matrix it tests.
//!
//! Twelve layers against twelve (A and B independent random layers of width `D`), `n = 1000`
//! examples, minibatch CKA with batches of `--batch-size` (default 250: four batches). Times,
//! in one process, the best of `--reps` runs of
//! - `matrix`: the 12 x 12 minibatch CKA matrix (`similarity_matrix`);
//! - `null`: `--permutations` (default 1000) within-batch permutation draws of the whole
//!   matrix (`significance::permutation_null`), which reuses every batch Gram;
//! and prints their ratio for widths 512, 2048, 4096 and 16384. The null's work does not
//! depend on `D` (per draw, one gather and one product of the packed batch Grams); the matrix's
//! grows with `D` (its Grams), so the ratio falls as layers widen.
//!
//! ```text
//! cargo run --release --example permutation_cost -- [--permutations 1000] [--reps 3]
//! ```

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use repsim::similarity::significance::permutation_null;
use repsim::similarity::testing::random_values;
use repsim::similarity::{similarity_matrix, Layer, Measure};

fn parse_args() -> Result<(usize, usize, usize), String> {
    let (mut permutations, mut reps, mut batch_size) = (1000usize, 3usize, 250usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value: usize = args
            .next()
            .and_then(|v| v.parse().ok())
            .filter(|&v| v > 0)
            .ok_or(format!("{arg} needs a positive integer"))?;
        match arg.as_str() {
            "--permutations" => permutations = value,
            "--reps" => reps = value,
            "--batch-size" => batch_size = value,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((permutations, reps, batch_size))
}

fn layers(n: usize, d: usize, seed: u64, device: &Device) -> Result<Vec<Layer>, String> {
    (0..12)
        .map(|l| {
            let values = random_values(n, d, seed * 100 + l);
            let tensor = Tensor::<2>::from_data(TensorData::new(values, [n, d]), device);
            Layer::new(format!("l{l}"), tensor).map_err(|e| e.to_string())
        })
        .collect()
}

/// The fastest of `reps` runs, in seconds.
fn best_of(reps: usize, mut run: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        run()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn run() -> Result<(), String> {
    let (permutations, reps, batch_size) = parse_args()?;
    let device = Device::flex();
    let n = 1000;
    let measure = Measure::minibatch_cka(batch_size);
    println!(
        "12 x 12 minibatch CKA, n = {n}, batches of {batch_size}, {permutations} permutations, best of {reps}"
    );
    println!(
        "{:>7} {:>11} {:>11} {:>7}",
        "width", "matrix s", "null s", "ratio"
    );
    for d in [512, 2048, 4096, 16384] {
        let (a, b) = (layers(n, d, 1, &device)?, layers(n, d, 2, &device)?);
        let matrix = best_of(reps, || {
            similarity_matrix(&measure, &a, &b)
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        let null = best_of(reps, || {
            permutation_null(&measure, &a, &b, permutations, 0)
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        println!("{d:>7} {matrix:>11.3} {null:>11.3} {:>7.1}", null / matrix);
    }
    Ok(())
}

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
}
