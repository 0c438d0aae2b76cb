//! Conditioning a layer before its float32 work.
//!
//! Activations arrive in float32 at any scale and offset: `g * 1e-12` squares to 1e-24 and its
//! Gram's Frobenius norm underflows, `g + 3000` puts the information in the last bits of large
//! numbers, where a Gram of the raw values loses it. Every measure here is invariant to such
//! maps, so each layer is brought to a safe range first, and the number does not change:
//!
//! - linear CKA (biased and debiased) and minibatch CKA: translation (the Grams are centred)
//!   and isotropic scaling (a ratio of HSICs, each quadratic in each side);
//! - RBF CKA with the bandwidth a multiple of the median distance: translation and isotropic
//!   scaling (distances scale with the median);
//! - CCA, SVCCA, Procrustes: affine maps; PWCCA: scaling, and translation in the textbook
//!   convention (the `google` convention weighs the uncentred features, so the CCA family is
//!   scaled but not centred here: [`scale_to_unit`]).
//!
//! [`centre_and_scale`] centres each feature in three passes (each pass removes the rounding
//! of the previous mean; the subtraction itself is exact for values near the mean), zeroes the
//! features that are constant in the data (their range, max - min, is exactly 0, so a constant
//! feature is recognised whatever its magnitude, and a layer has zero variance only when every
//! feature is constant), and divides by the largest absolute centred value. All of it runs as
//! tensor ops on the layer's device, with no read-back.

use burn::tensor::Tensor;

use crate::error::Result;
use crate::layer::{read_back, Layer};

/// Centring passes: each multiplies the leftover offset by about the relative rounding of a
/// float32 mean (at most `n * 2^-24`, far less with the pairwise sums of the backends).
const CENTRING_PASSES: usize = 3;

/// `layer` centred, with constant features zeroed, and scaled to a largest absolute value of 1
/// (an all-zero matrix when every feature is constant); also returns the scale applied,
/// `1 / max |centred|` (0 for a constant layer), as a one-element tensor on the device.
///
/// NaN or infinite inputs give a non-finite scale and matrix; callers explain them on the
/// original layer (`crate::layer::explain_non_finite`).
pub fn centre_and_scale(layer: &Layer) -> (Layer, Tensor<1>) {
    let x = layer.matrix.clone();
    let range = x.clone().max_dim(0).sub(x.clone().min_dim(0)); // 1 x D, exactly 0 if constant
    let varies = range.greater_elem(0.0).float(); // 1 x D
    let mut centred = x;
    for _ in 0..CENTRING_PASSES {
        centred = centred.clone().sub(centred.clone().mean_dim(0));
    }
    let centred = centred.mul(varies);
    let spread = centred.clone().max_abs(); // [1]
    let any = spread.clone().greater_elem(0.0).float();
    let scale = any.div(spread.clamp_min(f32::MIN_POSITIVE as f64));
    let scaled = centred.mul(scale.clone().reshape([1, 1]));
    (
        Layer {
            name: layer.name.clone(),
            matrix: scaled,
        },
        scale,
    )
}

/// A cheaper conditioning for one minibatch, whose Gram is centred again afterwards
/// (minibatch CKA is invariant to translating a batch): the batch's first example is
/// subtracted from every example (exact for values near it, so a large offset is gone), and the
/// result is scaled to a largest absolute value of 1. A batch is constant exactly when every
/// example equals the first, i.e. when the difference is all zero: it gets scale 0. Three
/// memory passes over the batch instead of about ten, which matters next to a batch Gram.
/// Minibatch CKA uses it only for the batches whose raw Gram fails its float32 check (see
/// `minibatch`): even three passes over every layer took a third of its benchmark's time.
pub fn shift_and_scale_batch(layer: &Layer) -> (Layer, Tensor<1>) {
    let x = layer.matrix.clone();
    let shifted = x.clone().sub(x.narrow(0, 0, 1));
    let spread = shifted.clone().max_abs(); // [1]
    let varies = spread.clone().greater_elem(0.0).float();
    let scale = varies.div(spread.clamp_min(f32::MIN_POSITIVE as f64));
    let scaled = shifted.mul(scale.clone().reshape([1, 1]));
    (
        Layer {
            name: layer.name.clone(),
            matrix: scaled,
        },
        scale,
    )
}

/// [`centre_and_scale`]'s layer only.
pub fn centred_and_scaled(layer: &Layer) -> Layer {
    centre_and_scale(layer).0
}

/// `layer` multiplied by a power of two that brings its largest absolute value into
/// `[0.5, 1)`: exact (no rounding), so means, covariances and every measure of the CCA family
/// keep their values; only under- and overflow of the float32 products are avoided. Reads
/// one scalar back. An all-zero layer is returned as it is.
pub fn scale_to_unit(layer: &Layer) -> Result<Layer> {
    let largest = read_back(layer.matrix.clone().abs().max())?[0];
    if !largest.is_finite() {
        return Err(crate::layer::explain_non_finite(layer, 0));
    }
    if largest == 0.0 {
        return Ok(layer.clone());
    }
    let exponent = largest.log2().floor() as i32 + 1;
    if exponent == 0 {
        return Ok(layer.clone());
    }
    // 2^-exponent is a normal f32 for any finite f32 largest value (|exponent| <= 150 is
    // split in two steps so that each factor stays representable).
    let mut matrix = layer.matrix.clone();
    let mut left = -exponent;
    while left != 0 {
        let step = left.clamp(-120, 120);
        matrix = matrix.mul_scalar(2f64.powi(step));
        left -= step;
    }
    Ok(Layer {
        name: layer.name.clone(),
        matrix,
    })
}

/// The fewest examples any measure accepts: with 2 or 3 examples every pair of layers looks
/// alike (two points always lie on a line: CKA 1.0), and the unbiased HSIC divides by `n - 3`.
pub use repsim_results::MIN_EXAMPLES;

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn layer(values: Vec<f32>, rows: usize) -> Layer {
        let cols = values.len() / rows;
        Layer::new(
            "l",
            Tensor::<2>::from_data(TensorData::new(values, [rows, cols]), &Device::flex()),
        )
        .unwrap()
    }

    #[test]
    fn a_constant_feature_becomes_exactly_zero_whatever_its_magnitude() {
        // Column 0 constant at 1e6 + 0.1 (not representable: its mean rounds), column 1 varies.
        let mut values = Vec::new();
        for i in 0..1000 {
            values.push(1e6 + 0.1);
            values.push(i as f32 * 1e-3);
        }
        let (c, scale) = centre_and_scale(&layer(values, 1000));
        let c = read_back(c.matrix).unwrap();
        assert!(c.iter().step_by(2).all(|v| *v == 0.0));
        let largest = c.iter().fold(0f64, |m, v| m.max(v.abs()));
        assert!((largest - 1.0).abs() < 1e-6, "{largest}");
        assert!(read_back(scale).unwrap()[0] > 0.0);
    }

    #[test]
    fn a_constant_layer_is_all_zero_with_scale_zero() {
        let (c, scale) = centre_and_scale(&layer(vec![3.25e-30; 40], 10));
        assert!(read_back(c.matrix).unwrap().iter().all(|v| *v == 0.0));
        assert_eq!(read_back(scale).unwrap()[0], 0.0);
    }

    #[test]
    fn tiny_and_offset_layers_keep_their_variation() {
        let rows: Vec<f32> = (0..64).map(|i| ((i * 37) % 11) as f32).collect();
        for (scale, offset) in [(1e-30f64, 0.0f64), (1e30, 0.0), (1.0, 1e6)] {
            let values: Vec<f32> = rows
                .iter()
                .map(|v| (*v as f64 * scale + offset) as f32)
                .collect();
            let (c, _) = centre_and_scale(&layer(values, 64));
            let c = read_back(c.matrix).unwrap();
            let mean: f64 = c.iter().sum::<f64>() / 64.0;
            assert!(mean.abs() < 1e-6, "mean {mean} at {scale:e} + {offset:e}");
            let largest = c.iter().fold(0f64, |m, v| m.max(v.abs()));
            assert!(
                (largest - 1.0).abs() < 1e-6,
                "{largest} at {scale:e} + {offset:e}"
            );
        }
    }

    #[test]
    fn batch_conditioning_zeroes_a_constant_batch_and_keeps_a_tiny_one() {
        let (c, scale) = shift_and_scale_batch(&layer(vec![1e6 + 0.1; 256 * 4], 256));
        assert_eq!(read_back(scale).unwrap()[0], 0.0);
        assert!(read_back(c.matrix).unwrap().iter().all(|v| *v == 0.0));
        let tiny: Vec<f32> = (0..256 * 4)
            .map(|i| ((i * 37) % 11) as f32 * 1e-30)
            .collect();
        let (c, scale) = shift_and_scale_batch(&layer(tiny, 256));
        assert!(read_back(scale).unwrap()[0] > 0.0);
        let largest = read_back(c.matrix)
            .unwrap()
            .iter()
            .fold(0f64, |m, v| m.max(v.abs()));
        assert!((largest - 1.0).abs() < 1e-6);
    }

    #[test]
    fn scale_to_unit_is_a_power_of_two() {
        let l = layer(vec![3e-30, -1e-30, 0.5e-30, 2e-30], 4);
        let scaled = read_back(scale_to_unit(&l).unwrap().matrix).unwrap();
        let ratio = scaled[0] / 3e-30f32 as f64;
        assert_eq!(ratio.log2().fract(), 0.0, "{ratio}");
        assert!((0.5..1.0).contains(&scaled[0]));
    }
}
