//! Kernel CKA from Gram matrices, and RBF CKA.
//!
//! CKA of any two kernels (Kornblith et al. 2019; Cortes et al. 2012 for centred kernel
//! alignment):
//!
//! ```text
//! CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))
//! ```
//!
//! with the biased HSIC_0 (`H K H` centring) or the unbiased HSIC_1 (U-centring, Song et al.
//! 2012). RBF CKA uses the Gaussian kernel of [`crate::measures::cka::gram::rbf_gram`], whose bandwidth is
//! `sigma = t * sqrt(median squared distance)`. RBF Grams are `n x n`: memory is `O(n^2)` per
//! layer, so use the minibatch or linear measures for tens of thousands of examples.

use burn::tensor::Tensor;

use crate::conditioning::centred_and_scaled;
use crate::error::{Result, SimilarityError};
use crate::layer::{check_min_examples, check_same_examples, read_back, read_sums, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::cka::gram::rbf_gram;
use crate::measures::cka::hsic::HsicEstimator;
use crate::measures::cka::linear_cka::{estimator_name, single_value, DefinedLayers};

/// CKA of two Gram matrices with the given HSIC estimator; `Err(ZeroVariance)` (naming `k` or
/// `l`) when a centred Gram is zero.
pub fn cka_from_grams(k: Tensor<2>, l: Tensor<2>, estimator: HsicEstimator) -> Result<f64> {
    let n = k.dims()[0];
    if n < estimator.min_examples() {
        return Err(SimilarityError::TooFewExamples {
            estimator: estimator_name(estimator),
            needed: estimator.min_examples(),
            layer: "k".into(),
            n,
        });
    }
    let kc = crate::measures::cka::hsic::center_for(estimator, k);
    let lc = crate::measures::cka::hsic::center_for(estimator, l);
    let rows = |t: Tensor<2>| t.sum_dim(1).reshape([n]);
    let v = read_sums(vec![
        rows(kc.clone().mul(lc.clone())),
        rows(kc.clone().square()),
        rows(lc.square()),
    ])?;
    for (value, name) in [(v[1], "k"), (v[2], "l")] {
        if !value.is_finite() {
            return Err(SimilarityError::NonFinite {
                layer: name.into(),
                value: "a non-finite value".into(),
                example: 0,
                feature: 0,
            });
        }
        if value <= 0.0 {
            return Err(SimilarityError::ZeroVariance { layer: name.into() });
        }
    }
    Ok(v[0] / (v[1] * v[2]).sqrt())
}

/// RBF CKA (biased HSIC) of two activation tensors, `sigma = threshold * sqrt(median d^2)`.
pub fn rbf_cka<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
    threshold: f64,
) -> Result<f64> {
    rbf_cka_pair(x, y, threshold, HsicEstimator::Biased)
}

/// RBF CKA with the unbiased HSIC_1 (Song et al. 2012).
pub fn rbf_cka_debiased<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
    threshold: f64,
) -> Result<f64> {
    rbf_cka_pair(x, y, threshold, HsicEstimator::Unbiased)
}

fn rbf_cka_pair<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
    threshold: f64,
    estimator: HsicEstimator,
) -> Result<f64> {
    let x = Layer::new("x", x.clone())?;
    let y = Layer::new("y", y.clone())?;
    let (m, defined) = rbf_cka_matrix_and_defined(
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
        threshold,
        estimator,
    )?;
    single_value(&m, &defined, &x, &y)
}

/// One layer's centred RBF Gram, flattened to a row; `None` for a layer with zero variance.
pub(crate) fn centred_rbf_row(
    layer: &Layer,
    threshold: f64,
    estimator: HsicEstimator,
) -> Result<Option<Tensor<2>>> {
    let n = layer.num_examples();
    // Centred and scaled: RBF CKA with a median bandwidth is invariant to both, and the f32
    // distances keep their digits. The n^2-long sums are split by rows below
    // (`cross_inner_products`), the other place float32 loses digits at large n.
    let conditioned = centred_and_scaled(layer);
    match rbf_gram(&conditioned, threshold) {
        Ok(gram) => Ok(Some(
            crate::measures::cka::hsic::center_for(estimator, gram).reshape([1, n * n]),
        )),
        Err(SimilarityError::ZeroVariance { .. }) => Ok(None),
        // Conditioning spreads a NaN over the layer: find it in the original.
        Err(SimilarityError::NonFinite { .. } | SimilarityError::Overflow { .. }) => {
            Err(crate::layer::explain_non_finite(layer, 0))
        }
        Err(e) => Err(e),
    }
}

/// RBF CKA between every layer of A and every layer of B: each layer's centred RBF Gram is
/// computed once, and all cross terms come from one matmul of the stacked, flattened Grams.
pub fn rbf_cka_matrix(
    layers_a: &[Layer],
    layers_b: &[Layer],
    threshold: f64,
    estimator: HsicEstimator,
) -> Result<SimilarityMatrix> {
    rbf_cka_matrix_and_defined(layers_a, layers_b, threshold, estimator).map(|(matrix, _)| matrix)
}

fn rbf_cka_matrix_and_defined(
    layers_a: &[Layer],
    layers_b: &[Layer],
    threshold: f64,
    estimator: HsicEstimator,
) -> Result<(SimilarityMatrix, DefinedLayers)> {
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    for layer in layers_a.iter().chain(layers_b) {
        check_min_examples(layer, estimator.min_examples(), estimator_name(estimator))?;
    }
    let symmetric = std::ptr::eq(layers_a, layers_b);
    let mut warnings = Vec::new();
    let mut rows_of = |layers: &[Layer]| -> Result<Vec<Option<Tensor<2>>>> {
        let rows = layers
            .iter()
            .map(|l| centred_rbf_row(l, threshold, estimator))
            .collect::<Result<Vec<_>>>()?;
        for (layer, row) in layers.iter().zip(&rows) {
            if row.is_none() {
                warnings.push(format!(
                    "layer `{}` has zero variance (median squared distance 0 over {n} examples): \
                     its cells are undefined",
                    layer.name
                ));
            }
        }
        Ok(rows)
    };
    let rows_a = rows_of(layers_a)?;
    let rows_b = if symmetric {
        rows_a.clone()
    } else {
        rows_of(layers_b)?
    };

    let defined = |rows: &[Option<Tensor<2>>]| -> Vec<usize> {
        rows.iter()
            .enumerate()
            .filter(|(_, r)| r.is_some())
            .map(|(i, _)| i)
            .collect()
    };
    let (ia, ib) = (defined(&rows_a), defined(&rows_b));
    let mut values = vec![None; layers_a.len() * layers_b.len()];
    if !ia.is_empty() && !ib.is_empty() {
        let stack = |rows: &[Option<Tensor<2>>], idx: &[usize]| {
            Tensor::cat(idx.iter().filter_map(|&i| rows[i].clone()).collect(), 0)
        };
        let a = stack(&rows_a, &ia);
        let b = if symmetric {
            a.clone()
        } else {
            stack(&rows_b, &ib)
        };
        let self_a = self_inner_products(a.clone(), n)?;
        let self_b = self_inner_products(b.clone(), n)?;
        let cross = cross_inner_products(a, b, n)?;
        for (p, &i) in ia.iter().enumerate() {
            for (q, &j) in ib.iter().enumerate() {
                let value = cross[p * ib.len() + q] / (self_a[p] * self_b[q]).sqrt();
                values[i * layers_b.len() + j] = if value.is_finite() { Some(value) } else { None };
                if !value.is_finite() {
                    warnings.push(format!(
                        "`{}` x `{}`: centred RBF Gram is zero, cell undefined",
                        layers_a[i].name, layers_b[j].name
                    ));
                }
            }
        }
    }
    let names = |layers: &[Layer]| layers.iter().map(|l| l.name.clone()).collect();
    let measure = repsim_results::Measure::RbfCka {
        threshold,
        estimator,
    };
    let mut matrix =
        SimilarityMatrix::from_row_major(measure, names(layers_a), names(layers_b), values, n);
    matrix.warnings = warnings;
    let defined = DefinedLayers {
        rows: rows_a.iter().map(Option::is_some).collect(),
        cols: rows_b.iter().map(Option::is_some).collect(),
    };
    Ok((matrix, defined))
}

/// `<A_p, B_q>` for every pair of the stacked, flattened `n x n` matrices (rows of `a`,
/// `La x n^2`, and of `b`, `Lb x n^2`), row-major `La x Lb`. The `n^2`-long sums are split by
/// matrix row: one batched matmul gives `n` partial products per pair on the device, and they
/// are added up in f64 on the host, so no float32 register accumulates more than `n` terms.
fn cross_inner_products(a: Tensor<2>, b: Tensor<2>, n: usize) -> Result<Vec<f64>> {
    let (la, lb) = (a.dims()[0], b.dims()[0]);
    let a_rows = a.reshape([la, n, n]).swap_dims(0, 1); // n x La x n
    let b_rows = b.reshape([lb, n, n]).swap_dims(0, 1).swap_dims(1, 2); // n x n x Lb
    let partial = read_back(a_rows.matmul(b_rows))?; // n x La x Lb
    let mut sums = vec![0f64; la * lb];
    for chunk in partial.chunks_exact(la * lb) {
        sums.iter_mut().zip(chunk).for_each(|(s, v)| *s += v);
    }
    Ok(sums)
}

/// `<A_p, A_p>` for every stacked, flattened `n x n` matrix: row sums of squares on the
/// device, added up in f64 on the host.
pub(crate) fn self_inner_products(a: Tensor<2>, n: usize) -> Result<Vec<f64>> {
    let la = a.dims()[0];
    let rows = a.square().reshape([la, n, n]).sum_dim(2).reshape([la * n]);
    let values = read_back(rows)?;
    Ok(values.chunks_exact(n).map(|c| c.iter().sum()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measures::cka::gram::linear_gram;
    use crate::testing::random_matrix;
    use burn::tensor::Device;

    #[test]
    fn rbf_cka_of_a_layer_with_itself_is_one() {
        let device = Device::flex();
        let x = random_matrix(20, 5, 11, &device);
        for value in [
            rbf_cka(&x, &x, 0.5).unwrap(),
            rbf_cka_debiased(&x, &x, 1.0).unwrap(),
        ] {
            assert!((value - 1.0).abs() < 1e-5, "{value}");
        }
    }

    #[test]
    fn matrix_entries_equal_pairwise_calls() {
        let device = Device::flex();
        let xs: Vec<Tensor<2>> = (0..3)
            .map(|s| random_matrix(16, 4 + s, s as u64, &device))
            .collect();
        let layers: Vec<Layer> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| Layer::new(format!("l{i}"), x.clone()).unwrap())
            .collect();
        let m = rbf_cka_matrix(&layers[..2], &layers, 0.8, HsicEstimator::Unbiased).unwrap();
        for i in 0..2 {
            for j in 0..3 {
                let pair = rbf_cka_debiased(&xs[i], &xs[j], 0.8).unwrap();
                assert!((m.values[i][j].unwrap() - pair).abs() < 1e-5);
            }
        }
    }
    /// Linear CKA's feature-space path (fewer features than examples) against CKA of its
    /// Grams (here, so that `linear_cka` never imports this module).
    #[test]
    fn feature_space_and_gram_space_agree() {
        // 20 features < 30 examples takes the feature-space path; 40 features the Gram path.
        let device = Device::flex();
        let x = random_matrix(30, 20, 1, &device);
        let wide = random_matrix(30, 40, 2, &device);
        let y = x
            .clone()
            .matmul(random_matrix(20, 40, 3, &device))
            .add(wide.mul_scalar(0.5));
        let layers = [Layer::new("x", x).unwrap(), Layer::new("y", y).unwrap()];
        for estimator in [HsicEstimator::Biased, HsicEstimator::Unbiased] {
            let m =
                crate::measures::cka::linear_cka::linear_cka_matrix(&layers, &layers, estimator)
                    .unwrap();
            let via_gram = cka_from_grams(
                linear_gram(layers[0].matrix.clone()),
                linear_gram(layers[1].matrix.clone()),
                estimator,
            )
            .unwrap();
            let got = m.values[0][1].unwrap();
            assert!(
                (got - via_gram).abs() < 1e-4,
                "{estimator:?}: {got} vs {via_gram}"
            );
            assert_eq!(m.values[0][1], m.values[1][0]);
        }
    }
}
