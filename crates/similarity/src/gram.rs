//! Gram (kernel) matrices of a layer's activations: linear and RBF.
//!
//! For activations `X` (`n x D`, examples on rows) the Gram matrix `K` is `n x n`, with
//! `K_ij = k(x_i, x_j)`. CKA compares two layers through their Gram matrices, so it needs no
//! alignment of features (Kornblith et al. 2019, "Similarity of Neural Network
//! Representations Revisited", ICML).

use burn::tensor::Tensor;

use crate::error::{Result, SimilarityError};
use crate::layer::{read_back, Layer};

/// Linear kernel Gram matrix `K = X X^T`.
pub fn linear_gram(x: Tensor<2>) -> Tensor<2> {
    x.clone().matmul(x.transpose())
}

/// Squared Euclidean distances `d2_ij = ||x_i - x_j||^2 = K_ii + K_jj - 2 K_ij`, from the
/// linear Gram; clamped at 0 against rounding.
pub fn squared_distances(x: Tensor<2>) -> Tensor<2> {
    let norms = x.clone().square().sum_dim(1); // n x 1
    let gram = linear_gram(x);
    gram.mul_scalar(-2.0)
        .add(norms.clone())
        .add(norms.transpose())
        .clamp_min(0.0)
}

/// Median of all entries of a matrix, as numpy's `np.median` computes it: the mean of the two
/// middle values when the count is even. Stays on the device.
pub fn median_of_entries(values: Tensor<2>) -> Tensor<1> {
    let count = values.dims()[0] * values.dims()[1];
    let sorted = values.reshape([count]).sort(0);
    if count % 2 == 1 {
        sorted.narrow(0, count / 2, 1)
    } else {
        sorted.narrow(0, count / 2 - 1, 2).mean()
    }
}

/// RBF (Gaussian) kernel Gram matrix, the bandwidth set from the data as in Kornblith et al.
/// (2019):
///
/// `K_ij = exp(-d2_ij / (2 t^2 median(d2)))`, i.e. `sigma = t * sqrt(median(d2))`,
///
/// with the median over the full `n x n` matrix of squared distances, diagonal zeros included,
/// and `t` the `threshold`. The median is read back (one scalar) to catch a zero bandwidth: if
/// more than half of all pairs coincide the kernel is undefined and the layer is reported as
/// having zero variance.
pub fn rbf_gram(layer: &Layer, threshold: f64) -> Result<Tensor<2>> {
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(SimilarityError::InvalidParameter {
            name: "RBF threshold",
            message: format!("must be a positive number, got {threshold}"),
        });
    }
    let d2 = squared_distances(layer.matrix.clone());
    let median = median_of_entries(d2.clone());
    let median_value = read_back(median.clone())?[0];
    if !median_value.is_finite() {
        return Err(crate::layer::explain_non_finite(layer, 0));
    }
    if median_value <= 0.0 {
        return Err(SimilarityError::ZeroVariance {
            layer: layer.name.clone(),
        });
    }
    let scale = -1.0 / (2.0 * threshold * threshold);
    let bandwidth = median.reshape([1, 1]);
    Ok(d2.div(bandwidth).mul_scalar(scale).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn matrix(values: Vec<f32>, rows: usize, cols: usize) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, [rows, cols]), &Device::flex())
    }

    #[test]
    fn median_averages_the_middle_pair_like_numpy() {
        let m = matrix(vec![4.0, 1.0, 3.0, 2.0], 2, 2);
        assert_eq!(read_back(median_of_entries(m)).unwrap(), vec![2.5]);
        let m = matrix(vec![5.0, 1.0, 3.0], 1, 3);
        assert_eq!(read_back(median_of_entries(m)).unwrap(), vec![3.0]);
    }

    #[test]
    fn squared_distances_of_points_on_a_line() {
        let d2 = squared_distances(matrix(vec![0.0, 1.0, 3.0], 3, 1));
        let got = read_back(d2).unwrap();
        let want = [0.0, 1.0, 9.0, 1.0, 0.0, 4.0, 9.0, 4.0, 0.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?}");
        }
    }

    #[test]
    fn rbf_gram_has_unit_diagonal_and_rejects_coincident_points() {
        let layer = Layer::new("x", matrix(vec![0.0, 1.0, 3.0, 7.0], 4, 1)).unwrap();
        let k = read_back(rbf_gram(&layer, 1.0).unwrap()).unwrap();
        for i in 0..4 {
            assert!((k[i * 5] - 1.0).abs() < 1e-6);
        }
        let flat = Layer::new("flat", matrix(vec![2.0; 4], 4, 1)).unwrap();
        assert!(matches!(
            rbf_gram(&flat, 1.0),
            Err(SimilarityError::ZeroVariance { .. })
        ));
        assert!(rbf_gram(&layer, 0.0).is_err());
    }
}
