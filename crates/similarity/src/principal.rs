//! A layer's first principal component: the share of variance it explains, and the layer's
//! Gram with it removed.
//!
//! Nguyen, Raghu & Kornblith 2021 ("Do Wide and Deep Networks Learn the Same Things?", ICLR,
//! Section 4) link the block structure of wide or deep networks to a dominant first principal
//! component: inside the block, the first PC explains a large fraction of each layer's variance,
//! and CKA with that component removed no longer shows the block. For a centred layer `Xc`
//! (`n x D`) with Gram `Kc = Xc Xc^T` and top eigenpair `(lambda_1, u)`:
//!
//! ```text
//! explained = lambda_1 / trace(Kc)
//! Kc' = (I - u u^T) Kc (I - u u^T)      (the Gram of Xc with its first PC projected out)
//! ```
//!
//! `u` comes from power iteration on the device (in f64 where the device has it).

use burn::tensor::Tensor;

use crate::error::{Result, SimilarityError};
use crate::layer::{explain_non_finite, read_back, Layer};
use crate::measures::covariance::statistics_dtype;

/// The first principal component of a layer, in example space.
#[derive(Debug, Clone)]
pub struct FirstComponent {
    /// Fraction of the layer's variance along its first principal component, in [0, 1].
    pub explained: f64,
    /// The centred Gram `Kc` (`n x n`).
    pub gram: Tensor<2>,
    /// The centred Gram with the first component removed.
    pub gram_without_first: Tensor<2>,
    /// `u`, the first component in example space (unit length; its sign is arbitrary):
    /// `u_i^2` is example `i`'s share of the component, what the "dominant datapoints" of a
    /// block are ranked by.
    pub direction: Vec<f64>,
}

/// The first principal component of `layer` (see the module docs), by `iterations` steps of
/// power iteration (200 is plenty for the fraction; the removal needs the direction, which
/// converges at the rate `lambda_2 / lambda_1`). `Err(ZeroVariance)` for a constant layer.
pub fn first_component(layer: &Layer, iterations: usize) -> Result<FirstComponent> {
    let n = layer.num_examples();
    let device = layer.matrix.device();
    let precision = statistics_dtype(&device);
    let x = layer.matrix.clone().cast(precision);
    let centred = x.clone().sub(x.mean_dim(0));
    let trace = read_back(centred.clone().square().sum())?[0];
    let gram = centred.clone().matmul(centred.transpose());
    if !trace.is_finite() {
        return Err(explain_non_finite(layer, 0));
    }
    if trace <= 0.0 {
        return Err(SimilarityError::ZeroVariance {
            layer: layer.name.clone(),
        });
    }
    // Power iteration from a fixed start (deterministic), normalised at every step.
    let ramp: Vec<f64> = (0..n)
        .map(|i| 1.0 + (i as f64 * 0.618_034).fract())
        .collect();
    let mut v = Tensor::<2>::from_data(
        burn::tensor::TensorData::new(ramp, [n, 1]),
        (&device, precision),
    );
    for _ in 0..iterations.max(1) {
        let w = gram.clone().matmul(v);
        let norm = w.clone().square().sum().sqrt().add_scalar(1e-300);
        v = w.div(norm.reshape([1, 1]));
    }
    let lambda = read_back(
        v.clone()
            .transpose()
            .matmul(gram.clone().matmul(v.clone()))
            .reshape([1]),
    )?[0];
    let direction = read_back(v.clone().reshape([n]))?;
    let projector = Tensor::<2>::eye(n, &device)
        .cast(precision)
        .sub(v.clone().matmul(v.transpose()));
    let without = projector.clone().matmul(gram.clone()).matmul(projector);
    Ok(FirstComponent {
        explained: (lambda / trace).clamp(0.0, 1.0),
        gram,
        gram_without_first: without,
        direction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measures::cka::hsic::HsicEstimator;
    use crate::measures::cka::kernel_cka::cka_from_grams;
    use crate::testing::random_matrix;
    use burn::tensor::Device;

    /// The layer's values, row-major.
    fn base_rows(layer: &Layer) -> Tensor<1> {
        let [n, d] = layer.matrix.dims();
        layer.matrix.clone().reshape([n * d])
    }

    #[test]
    fn a_dominant_direction_is_found_and_removed() {
        let device = Device::flex();
        // 60 examples of 10 features, the first scaled by 10: it carries ~91% of the variance.
        let base = random_matrix(60, 10, 3, &device);
        let scale: Vec<f32> = (0..10).map(|j| if j == 0 { 10.0 } else { 1.0 }).collect();
        let x = base.mul(Tensor::<1>::from_floats(scale.as_slice(), &device).reshape([1, 10]));
        let layer = Layer::new("x", x.clone()).unwrap();
        let first = first_component(&layer, 300).unwrap();
        // The exact value, from the variances of the columns (nearly uncorrelated).
        let centred = x.clone().sub(x.clone().mean_dim(0));
        let variances = read_back(centred.square().sum_dim(0).reshape([10])).unwrap();
        let share = variances[0] / variances.iter().sum::<f64>();
        assert!(
            (first.explained - share).abs() < 0.03,
            "{} vs {share}",
            first.explained
        );
        // With the first component removed, what remains is the other 9 columns' structure.
        let rest = Layer::new("rest", x.narrow(1, 1, 9)).unwrap();
        let rest_gram = first_component(&rest, 50).unwrap().gram;
        let cka = cka_from_grams(
            first.gram_without_first.clone(),
            rest_gram,
            HsicEstimator::Biased,
        )
        .unwrap();
        assert!(
            cka > 0.95,
            "CKA of the PC-removed layer with the other columns: {cka}"
        );
        // The direction is unit length, and one example scaled far out carries most of it.
        let norm: f64 = first.direction.iter().map(|u| u * u).sum();
        assert!((norm - 1.0).abs() < 1e-9, "{norm}");
        let mut rows = read_back(base_rows(&layer)).unwrap();
        rows[7 * 10 + 3] = 400.0; // example 7, feature 3
        let outlier = Layer::new(
            "outlier",
            Tensor::<2>::from_data(
                burn::tensor::TensorData::new(rows.iter().map(|v| *v as f32).collect(), [60, 10]),
                &device,
            ),
        )
        .unwrap();
        let u = first_component(&outlier, 300).unwrap().direction;
        assert!(u[7] * u[7] > 0.9, "example 7's share: {}", u[7] * u[7]);
        let constant = Layer::new("c", Tensor::<2>::ones([8, 3], &device)).unwrap();
        assert!(matches!(
            first_component(&constant, 10),
            Err(SimilarityError::ZeroVariance { .. })
        ));
    }
}
