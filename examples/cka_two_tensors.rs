//! The library on two tensors: linear CKA of two layers' activations, then every measure of a
//! list between two models' layers at once.
//!
//! `cargo run --example cka_two_tensors`

use burn::tensor::{Device, Distribution, Tensor};
use repsim::similarity::{linear_cka, similarity_matrices, Layer, Measure};

type Error = Box<dyn std::error::Error>;

pub fn main() -> Result<(), Error> {
    let device = Device::flex();
    // 500 examples: a conv layer's maps (N x C x H x W) and a nonlinear read-out of them (N x 10)
    let x = Tensor::<4>::random([500, 8, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<2>::random([128, 10], Distribution::Normal(0.0, 1.0), &device);
    let y = x.clone().flatten::<2>(1, 3).matmul(w).tanh();
    let cka = linear_cka(&x, &y)?; // f64 in [0, 1]
    println!("linear CKA of the maps and their read-out: {cka:.4}");

    // Two "models" of two layers each; any measures, each with its parameters.
    let noise = Tensor::<2>::random([500, 10], Distribution::Normal(0.0, 1.0), &device);
    let model_a = vec![
        Layer::new("maps", x.clone())?,
        Layer::new("out", y.clone())?,
    ];
    let model_b = vec![Layer::new("out", y)?, Layer::new("noise", noise)?];
    let measures: Vec<Measure> = ["linear_cka", "minibatch_cka:batch_size=100", "svcca:dims=5"]
        .iter()
        .map(|spec| spec.parse())
        .collect::<Result<_, _>>()?;
    let matrices = similarity_matrices(&measures, &model_a, &model_b)?; // one per measure
    for matrix in matrices {
        println!(
            "{} ({} x {} layers):",
            matrix.measure,
            matrix.rows.len(),
            matrix.cols.len()
        );
        for (row, values) in matrix.rows.iter().zip(&matrix.values) {
            let cells: Vec<String> = values
                .iter()
                .map(|v| v.map_or("undefined".into(), |v| format!("{v:.4}")))
                .collect();
            println!("  {row:>5}: {}", cells.join("  "));
        }
    }
    Ok(())
}
