//! Clipping outlying activations before a comparison, as platonic-rep prepares features
//! (Huh et al. 2024, `measure_alignment.prepare_features` / `metrics.remove_outliers`, with
//! `q = 0.95` there): the threshold is the `q`-quantile of each example's absolute values
//! (linear interpolation, as `torch.quantile`), averaged over the examples; every value is then
//! clamped to `[-threshold, threshold]`:
//!
//! ```text
//! t = (1/n) sum_i quantile_q( |x_i1|, ..., |x_iD| ),    x'_ij = clamp(x_ij, -t, t)
//! ```
//!
//! A few huge activations (massive activations of transformers, say) otherwise dominate every
//! Gram and every neighbourhood. `q = 1` leaves the layer as it is. The threshold depends on
//! every example, so clipped comparisons are not streamed or sharded.

use crate::error::{Result, SimilarityError};
use crate::layer::{read_back, Layer};

/// The threshold of [`clip_outliers`]: the mean over examples of the `q`-quantile of the
/// absolute values of each example's features.
pub fn outlier_threshold(layer: &Layer, q: f64) -> Result<f64> {
    check_quantile(q)?;
    let (n, d) = (layer.num_examples(), layer.num_features());
    let values = read_back(layer.matrix.clone())?;
    let position = q * (d - 1) as f64;
    let (low, fraction) = (position.floor() as usize, position - position.floor());
    let mut row = vec![0.0; d];
    let mut sum = 0.0;
    for i in 0..n {
        for (r, v) in row.iter_mut().zip(&values[i * d..(i + 1) * d]) {
            *r = v.abs();
        }
        row.sort_unstable_by(f64::total_cmp);
        let high = (low + 1).min(d - 1);
        sum += row[low] + fraction * (row[high] - row[low]);
    }
    let threshold = sum / n as f64;
    if !threshold.is_finite() {
        return Err(SimilarityError::InvalidParameter {
            name: "--clip-outliers",
            message: format!(
                "layer `{}`: the clipping threshold is not finite (the layer holds a NaN or an infinity)",
                layer.name
            ),
        });
    }
    Ok(threshold)
}

/// The layer with every value clamped to the outlier threshold of quantile `q` in (0, 1]
/// ([`outlier_threshold`]); `q = 1` returns it unchanged, as platonic-rep does.
pub fn clip_outliers(layer: &Layer, q: f64) -> Result<Layer> {
    check_quantile(q)?;
    if q == 1.0 {
        return Ok(layer.clone());
    }
    let threshold = outlier_threshold(layer, q)? as f32;
    Ok(Layer {
        name: layer.name.clone(),
        matrix: layer.matrix.clone().clamp(-threshold, threshold),
    })
}

fn check_quantile(q: f64) -> Result<()> {
    if !(q > 0.0 && q <= 1.0) {
        return Err(SimilarityError::InvalidParameter {
            name: "--clip-outliers",
            message: format!("the quantile must be in (0, 1], got {q}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor, TensorData};

    fn layer(values: Vec<f32>, n: usize, d: usize) -> Layer {
        let device = Device::flex();
        Layer::new(
            "l",
            Tensor::<2>::from_data(TensorData::new(values, [n, d]), &device),
        )
        .unwrap()
    }

    #[test]
    fn the_threshold_is_the_mean_of_the_rows_linear_quantiles() {
        // Row 0: |values| 1..=5, the 0.5-quantile 3; row 1: 2, 4, 6, 8, 100 -> 6.
        let l = layer(
            vec![1.0, -2.0, 3.0, -4.0, 5.0, 8.0, -6.0, 4.0, 2.0, -100.0],
            2,
            5,
        );
        assert_eq!(outlier_threshold(&l, 0.5).unwrap(), 4.5);
        // 0.95 of 5 values: position 3.8, between the 4th and 5th: 4.8 and 8 + 0.8 * 92.
        let want = (4.0 + 0.8 * 1.0 + 8.0 + 0.8 * 92.0) / 2.0;
        assert!((outlier_threshold(&l, 0.95).unwrap() - want).abs() < 1e-12);
        let clipped = read_back(clip_outliers(&l, 0.5).unwrap().matrix).unwrap();
        assert_eq!(
            clipped,
            vec![1.0, -2.0, 3.0, -4.0, 4.5, 4.5, -4.5, 4.0, 2.0, -4.5]
        );
        let same = read_back(clip_outliers(&l, 1.0).unwrap().matrix).unwrap();
        assert_eq!(same, read_back(l.matrix.clone()).unwrap());
    }

    #[test]
    fn bad_quantiles_are_refused() {
        let l = layer(vec![1.0; 8], 2, 4);
        for q in [0.0, -0.5, 1.5, f64::NAN] {
            let err = clip_outliers(&l, q).unwrap_err().to_string();
            assert!(err.contains("(0, 1]"), "{err}");
        }
    }
}
