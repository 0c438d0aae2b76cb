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

/// `X X^T`, by the fastest path for the device: on flex (an `f32` tensor in host memory),
/// faer's lower-triangular product read in place ([`crate::measures::cka::host_gram::flex_gram`]); on every
/// other device (and for flex views it cannot read in place) the burn-op path
/// [`device_gram`]. Both are exact up to float32 summation order, and tested to agree.
pub fn gram(x: Tensor<2>) -> Tensor<2> {
    match crate::measures::cka::host_gram::flex_gram(&x) {
        Some(k) => k,
        None => device_gram(x),
    }
}

/// `X X^T` as burn tensor ops, as a split-K product when the shape calls for it: with few rows
/// and many features (a minibatch of a wide layer), the feature axis is cut into `c` chunks put
/// on the batch axis, one batched matmul gives the `c` partial Grams `X_c X_c^T`, and they are
/// summed. A plain matmul of a `256 x 16384` layer keeps the cores on one narrow output; the
/// chunks give every core its own product. Measured on flex, 2 cores, `m = 256`, the minibatch
/// Gram phase (`minibatch::gram_row`) with and without it in one run: 5.3 against 8.6 ms at
/// 8,192 features, 7.1-8.4 against 16.3 ms at 16,384; no gain at 4,096 and below, where it is
/// not used. Exact up to float32 summation order. This is what [`gram`] runs on wgpu.
pub fn device_gram(x: Tensor<2>) -> Tensor<2> {
    let [m, d] = x.dims();
    let chunks = split_k_chunks(m, d);
    if chunks <= 1 {
        return linear_gram(x);
    }
    let parts = x.reshape([m, chunks, d / chunks]).swap_dims(0, 1); // c x m x d/c
    parts
        .clone()
        .matmul(parts.transpose())
        .sum_dim(0)
        .reshape([m, m])
}

/// How many feature chunks [`gram`] uses for an `m x d` layer: two per thread, each of at least
/// 2048 features, only for at most 512 rows; 1 (a plain matmul) when that leaves fewer than 4.
pub fn split_k_chunks(m: usize, d: usize) -> usize {
    if m > 512 {
        return 1;
    }
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let mut chunks = (2 * threads).clamp(1, 16);
    while chunks >= 4 && (d % chunks != 0 || d / chunks < 2048) {
        chunks -= 1;
    }
    if chunks >= 4 {
        chunks
    } else {
        1
    }
}

/// The Grams `X_l X_l^T` of `g` layers of the same shape at once: `x` is `g x m x d`, the
/// result `g x m x m`, from one batched matmul. burn-flex runs one matrix of a batched matmul
/// per thread, so a stack of layers too narrow for [`gram`]'s split (below 4 chunks of 2,048
/// features) keeps every core on a product of its own. Measured on flex, 2 cores, 4 layers of
/// `256 x D` (`benches/gram_throughput.rs`): 1.5-2x faster than 4 [`gram`] calls at 1,024 to
/// 4,096 features. Wider layers are faster through [`gram`]: its chunks of a layer are a
/// strided view, while chunking a stack needs a copy, and a product with 8,192 features or more
/// per matrix runs at about half the rate of one with 2,048 (4 stacked `256 x 8192` Grams: 32
/// against 16 ms). See [`stacks_well`].
pub fn stacked_grams(x: Tensor<3>) -> Tensor<3> {
    x.clone().matmul(x.swap_dims(1, 2))
}

/// Whether layers of `m x d` like `x` are better stacked ([`stacked_grams`]) than multiplied
/// one by one ([`gram`]): never where [`gram`] takes the host path (faer's product is parallel
/// within one Gram and does half the FLOPs), else when [`device_gram`] would not split them.
pub fn stacks_well(x: &Tensor<2>) -> bool {
    let [m, d] = x.dims();
    !crate::measures::cka::host_gram::takes(x) && split_k_chunks(m, d) <= 1
}

/// Squared Euclidean distances `d2_ij = ||x_i - x_j||^2 = K_ii + K_jj - 2 K_ij`, from the
/// linear Gram; clamped at 0 against rounding.
pub fn squared_distances(x: Tensor<2>) -> Tensor<2> {
    let norms = x.clone().square().sum_dim(1); // n x 1
    let gram = gram(x);
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

    #[test]
    fn split_k_gram_equals_the_plain_gram() {
        let (m, d) = (12, 16384);
        assert!(
            split_k_chunks(m, d) >= 4
                || std::thread::available_parallelism().map_or(1, |t| t.get()) < 2
        );
        let x = crate::testing::random_matrix(m, d, 3, &Device::flex());
        let split = read_back(device_gram(x.clone())).unwrap();
        let plain = read_back(linear_gram(x)).unwrap();
        for (a, b) in split.iter().zip(&plain) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert_eq!(split_k_chunks(1024, 16384), 1, "many rows: plain matmul");
        assert_eq!(
            split_k_chunks(256, 4096 + 3),
            1,
            "indivisible: plain matmul"
        );
    }

    #[test]
    fn stacked_grams_equal_each_layers_gram() {
        let device = Device::flex();
        for (g, m, d) in [(3, 10, 64), (2, 12, 8192), (5, 6, 4096)] {
            let layers: Vec<Tensor<2>> = (0..g)
                .map(|l| crate::testing::random_matrix(m, d, 10 + l as u64, &device))
                .collect();
            let stacked = stacked_grams(Tensor::stack(layers.clone(), 0));
            assert_eq!(stacked.dims(), [g, m, m]);
            for (l, layer) in layers.into_iter().enumerate() {
                let one = read_back(stacked.clone().narrow(0, l, 1).reshape([m, m])).unwrap();
                let plain = read_back(linear_gram(layer)).unwrap();
                for (a, b) in one.iter().zip(&plain) {
                    assert!(
                        (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                        "{g} x {d}: {a} vs {b}"
                    );
                }
            }
        }
        // flex reads a layer in place (faer), so nothing is stacked there.
        let flex = |d| crate::testing::random_matrix(256, d, 1, &device);
        assert!(!stacks_well(&flex(1024)), "flex: host Gram per layer");
        // A view the host path cannot read (a transposed copy's view) goes by the shape.
        let strided = |d| crate::testing::random_matrix(d, 256, 2, &device).transpose();
        if std::thread::available_parallelism().map_or(1, |t| t.get()) == 2 {
            assert!(stacks_well(&strided(4096)) && stacks_well(&strided(1024)));
            assert!(!stacks_well(&strided(8192)), "split-K per layer");
        }
    }

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
