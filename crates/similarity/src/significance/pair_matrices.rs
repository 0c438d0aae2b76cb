//! Measures that are an inner product of two per-layer `m x m` matrices, and that inner
//! product under a permutation of B's examples, for every permutation and every pair of layers
//! at once.
//!
//! Linear and RBF CKA (biased and debiased) and RSA all have the form
//!
//! ```text
//! s(A, B) = <M_A, M_B>_F,   M = a centred (or U-centred) Gram, or a standardised RDM,
//!                               scaled to unit Frobenius norm,
//! ```
//!
//! and permuting B's examples by `P` turns `M_B` into `P M_B P^T` (centring, U-centring and
//! ranking all commute with a permutation, and the norm does not change). So the permutation
//! null needs each layer's matrix once and then, per permutation, one gather of B's stack and
//! one matrix product with A's: `P` passes over the Grams, not `P` recomputations of them.

use burn::tensor::{Int, Tensor, TensorData};

use crate::conditioning::centred_and_scaled;
use crate::error::Result;
use crate::layer::{read_back, Layer};
use crate::measures::cka::gram::gram;
use crate::measures::cka::hsic::HsicEstimator;
use crate::measures::cka::kernel_cka::{centred_rbf_row, self_inner_products};
use crate::measures::rsa::{prepared, RdmComparison, RdmKind};

/// Device memory one gather of permuted matrices may take (values and indices).
const GATHER_BUDGET_BYTES: usize = 16 << 20;

/// Largest `m` whose `m^2` flat indices are built per permutation; above it each B matrix is
/// permuted by two row gathers (an index of `m` values).
const FLAT_INDEX_MAX_M: usize = 2048;

/// Every layer's unit-norm matrix, flattened to a row of a `L x m^2` stack; undefined layers
/// (zero variance, constant RDM) have a zero row and `defined = false`.
pub struct PairMatrices {
    /// `L x m^2`.
    pub stack: Tensor<2>,
    /// Examples (`m`).
    pub m: usize,
    /// Whether each layer's matrix is defined.
    pub defined: Vec<bool>,
}

impl PairMatrices {
    /// Centred linear Grams of `layers` (`H K H` or U-centred for `estimator`).
    pub fn linear(layers: &[Layer], estimator: HsicEstimator) -> Result<Self> {
        Self::from_grams(layers, |layer| {
            Ok(Some(crate::measures::cka::hsic::center_for(
                estimator,
                gram(centred_and_scaled(layer).matrix),
            )))
        })
    }

    /// Centred RBF Grams with the median bandwidth times `threshold` (RBF CKA's own
    /// `crate::measures::cka::kernel_cka::centred_rbf_row`).
    pub fn rbf(layers: &[Layer], threshold: f64, estimator: HsicEstimator) -> Result<Self> {
        Self::from_grams(layers, |layer| centred_rbf_row(layer, threshold, estimator))
    }

    /// RDMs as symmetric `m x m` matrices (zero diagonal) of RSA's own standardised upper
    /// triangles (`crate::measures::rsa::prepared`: ranked for Spearman and rho-a, unit norm or rho-a's
    /// scale), each entry over
    /// `sqrt 2` (it appears twice), so that their inner product is RSA's correlation.
    /// Every comparison but tau-a (whose null is recomputed draw by draw).
    pub fn rsa(layers: &[Layer], kind: RdmKind, compare: RdmComparison) -> Result<Self> {
        let m = layers[0].num_examples();
        let device = layers[0].matrix.device();
        let mut rows = Vec::with_capacity(layers.len());
        let mut defined = Vec::with_capacity(layers.len());
        for layer in layers {
            let standardised = prepared(layer, kind, compare)?;
            let mut full = vec![0f32; m * m];
            if let Some(values) = &standardised {
                let mut upper = values.iter();
                for i in 0..m {
                    for j in i + 1..m {
                        let v = (upper.next().copied().unwrap_or(0.0) / std::f64::consts::SQRT_2)
                            as f32;
                        full[i * m + j] = v;
                        full[j * m + i] = v;
                    }
                }
            }
            defined.push(standardised.is_some());
            rows.push(Tensor::<2>::from_data(
                TensorData::new(full, [1, m * m]),
                &device,
            ));
        }
        Ok(PairMatrices {
            stack: Tensor::cat(rows, 0),
            m,
            defined,
        })
    }

    /// Any per-layer `m x m` matrices, each scaled to unit Frobenius norm.
    fn from_grams(
        layers: &[Layer],
        matrix_of: impl Fn(&Layer) -> Result<Option<Tensor<2>>>,
    ) -> Result<Self> {
        let m = layers[0].num_examples();
        let device = layers[0].matrix.device();
        let rows = layers
            .iter()
            .map(|layer| {
                Ok(match matrix_of(layer)? {
                    Some(matrix) => matrix.reshape([1, m * m]),
                    None => Tensor::<2>::zeros([1, m * m], &device),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let stack = Tensor::cat(rows, 0);
        let norms: Vec<f64> = self_inner_products(stack.clone(), m)?
            .into_iter()
            .map(f64::sqrt)
            .collect();
        let mut defined = Vec::with_capacity(layers.len());
        for (layer, norm) in layers.iter().zip(&norms) {
            if !norm.is_finite() {
                return Err(crate::layer::explain_non_finite(layer, 0));
            }
            defined.push(*norm > 0.0);
        }
        let scales: Vec<f32> = norms
            .iter()
            .map(|&n| if n > 0.0 { (1.0 / n) as f32 } else { 0.0 })
            .collect();
        let scales = Tensor::<2>::from_data(TensorData::new(scales, [layers.len(), 1]), &device);
        Ok(PairMatrices {
            stack: stack.mul(scales),
            m,
            defined,
        })
    }
}

/// `<A_p, P_k B_q P_k^T>` for every permutation `k` of `permutations` (each a permutation of
/// `0..m`: row `i` of the permuted B is row `permutation[i]` of B), every row `p` of `a`
/// (`La x m^2`) and every row `q` of `b` (`Lb x m^2`), all symmetric matrices: `K x La x Lb`
/// values, row-major. One call of [`PermutedProducts`]; prepare that once to score many
/// rounds of permutations against the same stacks.
pub fn permuted_inner_products(
    a: &Tensor<2>,
    b: &Tensor<2>,
    m: usize,
    permutations: &[Vec<u32>],
) -> Result<Vec<f64>> {
    PermutedProducts::new(a, b, m).products(permutations)
}

/// Two stacks of symmetric `m x m` matrices, ready to be scored under permutations of B.
///
/// Every path scores the upper triangles only (the off-diagonal entries weighted twice, so the
/// packed inner product is the full one, at half the work), except the device path above
/// `m = 2048`:
/// - on flex, the stacks already live in host memory: B's matrices are permuted there row by
///   row (row `pi(i)` of B is read once, from cache, for every `j >= i`), many permutations at
///   once on rayon's threads, and scored by one faer product per chunk of permutations;
/// - on any other device, for `m <= 2048`, a chunk of permutations is one gather of B by packed
///   indices and one matrix product; above, each B matrix is permuted by two row gathers.
///
/// Float32 products: the null distribution needs no more digits.
pub struct PermutedProducts {
    stacks: Stacks,
    m: usize,
}

/// Where and how the stacks are kept.
enum Stacks {
    /// Flex: A packed (`La x m(m+1)/2`, off-diagonal entries doubled) and B whole (`Lb x m^2`),
    /// both as host vectors.
    Host {
        a_packed: Vec<f32>,
        b: Vec<f32>,
        la: usize,
        lb: usize,
    },
    /// Device tensors: A's stack transposed (`entries x La`) and B's (`Lb x entries`), packed
    /// to upper triangles (each side's off-diagonal entries times `sqrt 2`) when `packed`.
    Device {
        a_t: Tensor<2>,
        b: Tensor<2>,
        packed: bool,
    },
}

/// Host memory one chunk of permuted B matrices may take on the flex path.
const HOST_CHUNK_BYTES: usize = 32 << 20;

/// Whether `x` is an `f32` tensor on flex (host memory).
fn on_flex(x: &Tensor<2>) -> bool {
    x.dtype() == burn::tensor::DType::F32
        && x.clone().try_into_primitive::<burn_flex::Flex>().is_ok()
}

impl PermutedProducts {
    /// Packs (or keeps) both stacks.
    pub fn new(a: &Tensor<2>, b: &Tensor<2>, m: usize) -> Self {
        if on_flex(a) && on_flex(b) {
            let (la, lb) = (a.dims()[0], b.dims()[0]);
            // On flex `into_data` is a copy in host memory; a failed read falls to the device path.
            let host = |x: &Tensor<2>| -> Vec<f32> {
                x.clone()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap_or_default()
            };
            let (full_a, b) = (host(a), host(b));
            if full_a.len() == la * m * m && b.len() == lb * m * m {
                let mut a_packed = Vec::with_capacity(la * m * (m + 1) / 2);
                for p in 0..la {
                    let matrix = &full_a[p * m * m..(p + 1) * m * m];
                    for i in 0..m {
                        a_packed.push(matrix[i * m + i]);
                        a_packed.extend(matrix[i * m + i + 1..(i + 1) * m].iter().map(|v| 2.0 * v));
                    }
                }
                return PermutedProducts {
                    stacks: Stacks::Host {
                        a_packed,
                        b,
                        la,
                        lb,
                    },
                    m,
                };
            }
        }
        Self::on_device(a, b, m)
    }

    /// The device path, whatever the device (flex included: the tests compare the two).
    fn on_device(a: &Tensor<2>, b: &Tensor<2>, m: usize) -> Self {
        if m > FLAT_INDEX_MAX_M {
            return PermutedProducts {
                stacks: Stacks::Device {
                    a_t: a.clone().transpose(),
                    b: b.clone(),
                    packed: false,
                },
                m,
            };
        }
        let device = a.device();
        let packed = m * (m + 1) / 2;
        let mut upper = Vec::with_capacity(packed);
        let mut weights = Vec::with_capacity(packed);
        for i in 0..m {
            for j in i..m {
                upper.push((i * m + j) as i64);
                weights.push(if i == j {
                    1.0f32
                } else {
                    std::f32::consts::SQRT_2
                });
            }
        }
        let upper = Tensor::<1, Int>::from_data(TensorData::new(upper, [packed]), &device);
        let weights = Tensor::<2>::from_data(TensorData::new(weights, [1, packed]), &device);
        let pack = |x: &Tensor<2>| x.clone().select(1, upper.clone()).mul(weights.clone());
        PermutedProducts {
            stacks: Stacks::Device {
                a_t: pack(a).transpose(),
                b: pack(b),
                packed: true,
            },
            m,
        }
    }

    /// The inner products under each of `permutations` (see [`permuted_inner_products`]).
    pub fn products(&self, permutations: &[Vec<u32>]) -> Result<Vec<f64>> {
        match &self.stacks {
            Stacks::Host {
                a_packed,
                b,
                la,
                lb,
            } => Ok(host_products(a_packed, b, *la, *lb, self.m, permutations)),
            Stacks::Device { a_t, b, packed } => {
                device_products(a_t, b, *packed, self.m, permutations)
            }
        }
    }
}

/// The flex path of [`PermutedProducts::products`]: B's matrices permuted and packed on the
/// host, a chunk of permutations at a time, each chunk scored against A by one faer product.
fn host_products(
    a_packed: &[f32],
    b: &[f32],
    la: usize,
    lb: usize,
    m: usize,
    permutations: &[Vec<u32>],
) -> Vec<f64> {
    use faer::{Accum, MatMut, MatRef, Par};
    use rayon::prelude::*;
    let packed = m * (m + 1) / 2;
    let mut out = vec![0f64; permutations.len() * la * lb];
    let chunk = (HOST_CHUNK_BYTES / (4 * lb * packed).max(1)).clamp(1, permutations.len().max(1));
    let mut gathered = vec![0f32; chunk * lb * packed];
    let mut products = vec![0f32; chunk * lb * la];
    for (c, group) in permutations.chunks(chunk).enumerate() {
        let rows = group.len() * lb;
        // Row (k, q): B_q permuted by permutation k, its upper triangle row by row.
        gathered[..rows * packed]
            .par_chunks_mut(packed)
            .enumerate()
            .for_each(|(row, dst)| {
                let (permutation, q) = (&group[row / lb], row % lb);
                let matrix = &b[q * m * m..(q + 1) * m * m];
                let mut at = 0;
                for i in 0..m {
                    let source = &matrix[permutation[i] as usize * m..][..m];
                    for &pj in &permutation[i..] {
                        dst[at] = source[pj as usize];
                        at += 1;
                    }
                }
            });
        faer::linalg::matmul::matmul(
            MatMut::from_row_major_slice_mut(&mut products[..rows * la], rows, la),
            Accum::Replace,
            MatRef::from_row_major_slice(&gathered[..rows * packed], rows, packed),
            MatRef::from_row_major_slice(a_packed, la, packed).transpose(),
            1.0f32,
            Par::rayon(0),
        );
        for (row, values) in products[..rows * la].chunks(la).enumerate() {
            let (k, q) = (c * chunk + row / lb, row % lb);
            for (p, &v) in values.iter().enumerate() {
                out[(k * la + p) * lb + q] = f64::from(v);
            }
        }
    }
    out
}

/// The device path of [`PermutedProducts::products`].
fn device_products(
    a_t: &Tensor<2>,
    b: &Tensor<2>,
    packed: bool,
    m: usize,
    permutations: &[Vec<u32>],
) -> Result<Vec<f64>> {
    let (la, lb) = (a_t.dims()[1], b.dims()[0]);
    let device = b.device();
    let mut out = vec![0f64; permutations.len() * la * lb];
    if packed {
        let packed = m * (m + 1) / 2;
        // Row-major upper triangle: (i, j), i <= j, at offset(i) + j.
        let offset = |i: usize| i * m - i * (i + 1) / 2;
        let per_permutation = packed * (4 * lb + 8);
        let chunk = (GATHER_BUDGET_BYTES / per_permutation).clamp(1, permutations.len().max(1));
        for (c, group) in permutations.chunks(chunk).enumerate() {
            let mut flat = Vec::with_capacity(group.len() * packed);
            for permutation in group {
                for i in 0..m {
                    let pi = permutation[i] as usize;
                    for &pj in &permutation[i..] {
                        let (lo, hi) = (pi.min(pj as usize), pi.max(pj as usize));
                        flat.push((offset(lo) + hi) as i64);
                    }
                }
            }
            let k = group.len();
            let indices = Tensor::<1, Int>::from_data(TensorData::new(flat, [k * packed]), &device);
            let gathered = b.clone().select(1, indices).reshape([lb * k, packed]);
            let products = read_back(gathered.matmul(a_t.clone()))?; // (q, k) x p
            for q in 0..lb {
                for kk in 0..k {
                    for p in 0..la {
                        let value = products[(q * k + kk) * la + p];
                        out[((c * chunk + kk) * la + p) * lb + q] = value;
                    }
                }
            }
        }
    } else {
        for (kk, permutation) in permutations.iter().enumerate() {
            let data: Vec<i64> = permutation.iter().map(|&v| v as i64).collect();
            let indices = Tensor::<1, Int>::from_data(TensorData::new(data, [m]), &device);
            for q in 0..lb {
                let permuted = b
                    .clone()
                    .narrow(0, q, 1)
                    .reshape([m, m])
                    .select(0, indices.clone())
                    .select(1, indices.clone())
                    .reshape([1, m * m]);
                let products = read_back(permuted.matmul(a_t.clone()))?;
                for p in 0..la {
                    out[(kk * la + p) * lb + q] = products[p];
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_matrix;
    use burn::tensor::Device;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// `layers` random symmetric `m x m` matrices, flattened: `layers x m^2`.
    fn symmetric_stack(layers: usize, m: usize, seed: u64) -> Tensor<2> {
        let device = Device::flex();
        let rows = (0..layers)
            .map(|l| {
                let x = random_matrix(m, m, seed + l as u64, &device);
                (x.clone() + x.transpose()).reshape([1, m * m])
            })
            .collect();
        Tensor::cat(rows, 0)
    }

    #[test]
    fn the_host_path_equals_the_device_paths() {
        for (m, la, lb, count) in [(1, 1, 1, 2), (7, 3, 2, 5), (64, 4, 3, 9), (2049, 1, 2, 2)] {
            let (a, b) = (symmetric_stack(la, m, 1), symmetric_stack(lb, m, 100));
            let mut permutations = vec![(0..m as u32).collect::<Vec<_>>()];
            let mut rng = ChaCha8Rng::seed_from_u64(m as u64);
            permutations.extend((1..count).map(|_| {
                let mut p: Vec<u32> = (0..m as u32).collect();
                p.shuffle(&mut rng);
                p
            }));
            let host = PermutedProducts::new(&a, &b, m);
            assert!(matches!(host.stacks, Stacks::Host { .. }));
            let device = PermutedProducts::on_device(&a, &b, m);
            assert!(matches!(device.stacks, Stacks::Device { .. }));
            let (x, y) = (
                host.products(&permutations).unwrap(),
                device.products(&permutations).unwrap(),
            );
            assert_eq!(x.len(), count * la * lb);
            for (k, (u, v)) in x.iter().zip(&y).enumerate() {
                assert!(
                    (u - v).abs() <= 1e-4 * v.abs().max(1.0),
                    "m = {m}, value {k}: host {u}, device {v}"
                );
            }
        }
    }
}
