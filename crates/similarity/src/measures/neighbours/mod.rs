//! The k nearest neighbours of every example of a layer under its linear kernel, the shared
//! step of [`crate::measures::neighbours::mutual_knn`] and [`crate::measures::neighbours::cknna`].
//!
//! Neighbours are the `k` examples `j` with the largest inner products `<x_i, x_j>` (after
//! dividing rows by `max(||x_i||, 1e-12)` when asked: cosine similarity), example `i` itself
//! excluded when asked. Ties at the k-th place go to the lower example index, so the sets are
//! a deterministic function of the values (as in the float64 reference, `simref._top_k_rows`).
//!
//! The kernel is computed in row blocks on the layer's device, in float64 where the device has
//! it (flex does), and each block is read back for the selection: memory is `O(n k)` for the
//! result and `O(n b)` for a block of `b` rows (`b n <= 2^22` values), so `n = 50,000` needs
//! about 32 MB per block.

pub mod cknna;
pub mod mutual_knn;

use burn::tensor::Tensor;

use crate::error::{Result, SimilarityError};
use crate::layer::{read_back, Layer};
use crate::measures::covariance::statistics_dtype;

/// Values per kernel block (rows x examples).
const BLOCK_VALUES: usize = 1 << 22;

/// The k nearest neighbours of every example, with their kernel values.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbours {
    /// Examples.
    pub n: usize,
    /// Neighbours per example.
    pub k: usize,
    /// `n x k`: the neighbours of example `i` at `i k .. (i + 1) k`, ascending.
    pub indices: Vec<u32>,
    /// The kernel values `<x_i, x_j>` of those neighbours, aligned with `indices`.
    pub values: Vec<f64>,
}

impl Neighbours {
    /// The neighbours of example `i` and their kernel values.
    pub fn of(&self, i: usize) -> (&[u32], &[f64]) {
        (
            &self.indices[i * self.k..(i + 1) * self.k],
            &self.values[i * self.k..(i + 1) * self.k],
        )
    }

    /// The kernel value `<x_i, x_j>` when `j` is a neighbour of `i`.
    pub fn value(&self, i: usize, j: u32) -> Option<f64> {
        let (indices, values) = self.of(i);
        indices.binary_search(&j).ok().map(|p| values[p])
    }
}

/// Checks `k` against `n` examples: `min_k <= k <= n - 1`.
pub fn check_k(k: usize, n: usize, min_k: usize, measure: &'static str) -> Result<()> {
    if k < min_k || k + 1 > n {
        return Err(SimilarityError::InvalidParameter {
            name: "--knn-k",
            message: format!(
                "{measure} needs {min_k} <= k <= n - 1 = {}, got k = {k}",
                n.saturating_sub(1)
            ),
        });
    }
    Ok(())
}

/// The `k` nearest neighbours of every example of `layer` (see the module docs).
pub fn nearest_neighbours(
    layer: &Layer,
    k: usize,
    normalize: bool,
    exclude_self: bool,
) -> Result<Neighbours> {
    let n = layer.num_examples();
    check_k(k, n, 1, "the nearest neighbours")?;
    let device = layer.matrix.device();
    let dtype = statistics_dtype(&device);
    let mut x = layer.matrix.clone().cast(dtype);
    if normalize {
        let norms = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
        x = x.div(norms);
    }
    let block = (BLOCK_VALUES / n).clamp(1, n);
    let transposed = x.clone().transpose();
    let mut indices = Vec::with_capacity(n * k);
    let mut values = Vec::with_capacity(n * k);
    let mut order: Vec<u32> = Vec::with_capacity(n);
    for start in (0..n).step_by(block) {
        let rows = block.min(n - start);
        let gram: Tensor<2> = x.clone().narrow(0, start, rows).matmul(transposed.clone());
        let gram = read_back(gram)?;
        for r in 0..rows {
            let i = start + r;
            let row = &gram[r * n..(r + 1) * n];
            if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                return Err(SimilarityError::InvalidParameter {
                    name: "activations",
                    message: format!(
                        "layer `{}`: the inner product of examples {i} and {j} is not finite",
                        layer.name
                    ),
                });
            }
            order.clear();
            order.extend((0..n as u32).filter(|&j| !(exclude_self && j as usize == i)));
            // Larger values first; among equal values, the lower index.
            let by_rank =
                |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
            order.select_nth_unstable_by(k - 1, by_rank);
            let chosen = &mut order[..k];
            chosen.sort_unstable();
            indices.extend_from_slice(chosen);
            values.extend(chosen.iter().map(|&j| row[j as usize]));
        }
    }
    Ok(Neighbours {
        n,
        k,
        indices,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn ties_go_to_the_lower_index_and_self_is_excluded() {
        let device = Device::flex();
        // Examples 1, 2, 3 are equally close to example 0.
        let values = vec![1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0];
        let layer = Layer::new(
            "l",
            Tensor::<2>::from_data(TensorData::new(values, [5, 2]), &device),
        )
        .unwrap();
        let neighbours = nearest_neighbours(&layer, 2, false, true).unwrap();
        assert_eq!(neighbours.of(0).0, &[1, 2]);
        assert_eq!(neighbours.of(3).0, &[0, 1]);
        let with_self = nearest_neighbours(&layer, 2, false, false).unwrap();
        assert_eq!(with_self.of(3).0, &[0, 1]);
        assert_eq!(neighbours.value(0, 2), Some(1.0));
        assert_eq!(neighbours.value(0, 4), None);
        assert!(nearest_neighbours(&layer, 5, false, true).is_err());
    }
}
