//! Linear CKA over the whole data: one pair, or every layer of A against every layer of B.
//!
//! Linear CKA (Kornblith et al. 2019, "Similarity of Neural Network Representations
//! Revisited", ICML) of centred activations `X` (`n x Dx`) and `Y` (`n x Dy`):
//!
//! ```text
//! CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),   K = X X^T, L = Y Y^T
//!           = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)          (biased HSIC_0)
//! ```
//!
//! The debiased form uses the unbiased HSIC_1 of Song et al. (2012). With centred features
//! (`K 1 = 0`), writing `d = diag(K)` (the squared norms of the centred examples):
//!
//! ```text
//! n (n-3) HSIC_1(K, L) = <K, L> - (1 + 2/(n-2)) d_K . d_L + sum(d_K) sum(d_L) / ((n-1)(n-2))
//! ```
//!
//! Both need only `<K, L>` and `d`. Each layer is reduced once to either its centred features
//! (when it has fewer features than examples, `D < n`; then `<K, L> = ||X^T Y||_F^2` and memory
//! is `O(D^2)`, not `O(n^2)`) or its centred Gram (`D >= n`), and every pair is computed from
//! those reductions.

use burn::tensor::Tensor;

use crate::conditioning::centred_and_scaled;
use crate::error::{Result, SimilarityError};
use crate::layer::{
    check_min_examples, check_same_examples, explain_non_finite, read_back, read_sums, Layer,
};
use crate::matrix::SimilarityMatrix;
use crate::measures::cka::gram::gram;
use crate::measures::cka::hsic::HsicEstimator;

/// How a layer's Gram matrix is represented.
enum Representation {
    /// Centred activations `X` (`n x D`, used when `D < n`): `K = X X^T` is never formed.
    Features(Tensor<2>),
    /// The centred Gram `K` (`n x n`, used when `D >= n`).
    Gram(Tensor<2>),
}

/// Everything of one layer that its linear CKAs need, computed once per layer.
struct LinearSummary {
    name: String,
    representation: Representation,
    /// `diag(K)` of the centred Gram: squared norms of the centred examples, `n`.
    sq_norms: Tensor<1>,
}

impl LinearSummary {
    /// The summary of `layer`, centred and scaled first ([`crate::conditioning`]): linear CKA
    /// is invariant to both, and float32 Grams of raw activations are not.
    fn new(layer: &Layer) -> Self {
        let n = layer.num_examples();
        let centred = centred_and_scaled(layer).matrix;
        let sq_norms = centred.clone().square().sum_dim(1).reshape([n]);
        let representation = if layer.num_features() < n {
            Representation::Features(centred)
        } else {
            Representation::Gram(gram(centred))
        };
        LinearSummary {
            name: layer.name.clone(),
            representation,
            sq_norms,
        }
    }

    /// `<K_self, K_other>`, the Frobenius inner product of the two centred Grams, as partial
    /// sums (one per row) for [`read_sums`] to add up in f64.
    fn gram_inner(&self, other: &LinearSummary) -> Tensor<1> {
        use Representation::*;
        let rows = |t: Tensor<2>| {
            let r = t.dims()[0];
            t.sum_dim(1).reshape([r])
        };
        match (&self.representation, &other.representation) {
            (Features(x), Features(y)) => rows(x.clone().transpose().matmul(y.clone()).square()),
            (Gram(k), Gram(l)) => rows(k.clone().mul(l.clone())),
            (Features(x), Gram(k)) | (Gram(k), Features(x)) => {
                rows(k.clone().matmul(x.clone()).mul(x.clone()))
            }
        }
    }
}

/// Linear CKA (biased HSIC) of two activation tensors, examples on dim 0.
///
/// `Err(ZeroVariance)` when either side does not vary across examples.
pub fn linear_cka<const DX: usize, const DY: usize>(x: &Tensor<DX>, y: &Tensor<DY>) -> Result<f64> {
    linear_cka_pair(x, y, HsicEstimator::Biased)
}

/// Debiased linear CKA (unbiased HSIC_1 of Song et al. 2012) of two activation tensors.
pub fn linear_cka_debiased<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
) -> Result<f64> {
    linear_cka_pair(x, y, HsicEstimator::Unbiased)
}

fn linear_cka_pair<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
    estimator: HsicEstimator,
) -> Result<f64> {
    let x = Layer::new("x", x.clone())?;
    let y = Layer::new("y", y.clone())?;
    let (matrix, defined) = linear_cka_matrix_and_defined(
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
        estimator,
    )?;
    single_value(&matrix, &defined, &x, &y)
}

/// Which layers of each side have a defined similarity (not zero variance).
pub(crate) struct DefinedLayers {
    pub(crate) rows: Vec<bool>,
    pub(crate) cols: Vec<bool>,
}

/// The value of a 1 x 1 matrix of `x` against `y`, or the zero-variance error of the layer that
/// made it undefined.
pub(crate) fn single_value(
    matrix: &SimilarityMatrix,
    defined: &DefinedLayers,
    x: &Layer,
    y: &Layer,
) -> Result<f64> {
    match matrix.values[0][0] {
        Some(v) => Ok(v),
        None => {
            let layer = match (defined.rows[0], defined.cols[0]) {
                (false, _) => x.name.clone(),
                (true, false) => y.name.clone(),
                (true, true) => format!("{} x {}", x.name, y.name),
            };
            Err(SimilarityError::ZeroVariance { layer })
        }
    }
}

/// Linear CKA between every layer of A (rows) and every layer of B (columns).
///
/// Each layer's centred features or Gram is computed once; when `layers_b` is the same slice
/// as `layers_a` (a model against itself) each layer is reduced once and only the lower
/// triangle is computed.
pub fn linear_cka_matrix(
    layers_a: &[Layer],
    layers_b: &[Layer],
    estimator: HsicEstimator,
) -> Result<SimilarityMatrix> {
    linear_cka_matrix_and_defined(layers_a, layers_b, estimator).map(|(matrix, _)| matrix)
}

fn linear_cka_matrix_and_defined(
    layers_a: &[Layer],
    layers_b: &[Layer],
    estimator: HsicEstimator,
) -> Result<(SimilarityMatrix, DefinedLayers)> {
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    for layer in layers_a.iter().chain(layers_b) {
        check_min_examples(layer, estimator.min_examples(), estimator_name(estimator))?;
    }
    let symmetric = std::ptr::eq(layers_a, layers_b);

    let summaries_a: Vec<LinearSummary> = layers_a.iter().map(LinearSummary::new).collect();
    let summaries_b_owned: Vec<LinearSummary>;
    let summaries_b: &[LinearSummary] = if symmetric {
        &summaries_a
    } else {
        summaries_b_owned = layers_b.iter().map(LinearSummary::new).collect();
        &summaries_b_owned
    };
    let (la, lb) = (summaries_a.len(), summaries_b.len());

    // Per-layer scalars: <K, K>, sum(d) and ||d||^2, in one read.
    let per_layer = |layers: &[Layer], summaries: &[LinearSummary]| -> Result<Vec<[f64; 3]>> {
        let mut parts = Vec::with_capacity(3 * layers.len());
        for s in summaries {
            parts.push(s.gram_inner(s));
            parts.push(s.sq_norms.clone());
            parts.push(s.sq_norms.clone().square());
        }
        let values = read_sums(parts)?;
        let rows: Vec<[f64; 3]> = values.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        for (layer, row) in layers.iter().zip(&rows) {
            if row.iter().any(|v| !v.is_finite()) {
                return Err(explain_non_finite(layer, 0));
            }
        }
        Ok(rows)
    };
    let scalars_a = per_layer(layers_a, &summaries_a)?;
    let scalars_b = if symmetric {
        scalars_a.clone()
    } else {
        per_layer(layers_b, summaries_b)?
    };

    // Cross terms: <K_i, L_j> for every pair (lower triangle only for a model against itself),
    // and d_i . d_j for every pair from one matmul of the stacked squared norms.
    let mut inner_parts = Vec::with_capacity(la * lb);
    let mut inner_index = vec![usize::MAX; la * lb];
    for i in 0..la {
        for j in 0..lb {
            if symmetric && j > i {
                continue;
            }
            inner_index[i * lb + j] = inner_parts.len();
            inner_parts.push(summaries_a[i].gram_inner(&summaries_b[j]));
        }
    }
    let inner = read_sums(inner_parts)?;
    let stack =
        |s: &[LinearSummary]| Tensor::stack::<2>(s.iter().map(|s| s.sq_norms.clone()).collect(), 0);
    let norms_dot = read_back(stack(&summaries_a).matmul(stack(summaries_b).transpose()))?;

    let nf = n as f64;
    let debias = |gram_inner: f64, norms_dot: f64, sum_a: f64, sum_b: f64| match estimator {
        HsicEstimator::Biased => gram_inner,
        HsicEstimator::Unbiased => {
            gram_inner - (1.0 + 2.0 / (nf - 2.0)) * norms_dot
                + sum_a * sum_b / ((nf - 1.0) * (nf - 2.0))
        }
    };
    let self_hsic = |s: &[f64; 3]| debias(s[0], s[2], s[1], s[1]);
    let mut warnings = Vec::new();
    // Conditioning zeroes every feature that is constant in the data, so a layer without
    // variance has exactly zero squared norms.
    let defined = |name: &str, s: &[f64; 3], warnings: &mut Vec<String>| {
        let zero_variance = s[1] <= 0.0 || self_hsic(s) <= 0.0;
        if zero_variance {
            warnings.push(format!(
                "layer `{name}` has zero variance across the {n} examples: its cells are undefined"
            ));
        }
        !zero_variance
    };
    let defined_a: Vec<bool> = summaries_a
        .iter()
        .zip(&scalars_a)
        .map(|(s, v)| defined(&s.name, v, &mut warnings))
        .collect();
    let defined_b: Vec<bool> = if symmetric {
        defined_a.clone()
    } else {
        summaries_b
            .iter()
            .zip(&scalars_b)
            .map(|(s, v)| defined(&s.name, v, &mut warnings))
            .collect()
    };

    let mut values = Vec::with_capacity(la * lb);
    for i in 0..la {
        for j in 0..lb {
            if !(defined_a[i] && defined_b[j]) {
                values.push(None);
                continue;
            }
            let (ii, jj) = if symmetric && j > i { (j, i) } else { (i, j) };
            let cross = inner[inner_index[ii * lb + jj]];
            let hsic_ab = debias(
                cross,
                norms_dot[i * lb + j],
                scalars_a[i][1],
                scalars_b[j][1],
            );
            let value = hsic_ab / (self_hsic(&scalars_a[i]) * self_hsic(&scalars_b[j])).sqrt();
            if !value.is_finite() {
                return Err(explain_non_finite(&layers_a[i], 0));
            }
            values.push(Some(value));
        }
    }
    let names = |layers: &[Layer]| layers.iter().map(|l| l.name.clone()).collect();
    let measure = repsim_results::Measure::LinearCka { estimator };
    let mut matrix =
        SimilarityMatrix::from_row_major(measure, names(layers_a), names(layers_b), values, n);
    matrix.warnings = warnings;
    let defined = DefinedLayers {
        rows: defined_a,
        cols: defined_b,
    };
    Ok((matrix, defined))
}

pub(crate) fn estimator_name(estimator: HsicEstimator) -> &'static str {
    match estimator {
        HsicEstimator::Biased => "CKA (biased HSIC)",
        HsicEstimator::Unbiased => "debiased CKA (unbiased HSIC)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{orthogonal, random_matrix};
    use burn::tensor::Device;

    #[test]
    fn invariant_to_orthogonal_maps_of_features() {
        let device = Device::flex();
        let x = random_matrix(25, 8, 4, &device);
        let y = random_matrix(25, 6, 5, &device).add(x.clone().narrow(1, 0, 6));
        let before = linear_cka(&x, &y).unwrap();
        let after = linear_cka(&x.matmul(orthogonal(8, 9, &device)), &y).unwrap();
        assert!((before - after).abs() < 1e-4, "{before} vs {after}");
    }

    #[test]
    fn constant_layer_is_undefined_not_nan() {
        let device = Device::flex();
        let x = random_matrix(12, 3, 7, &device);
        let flat = Tensor::<2>::ones([12, 3], &device).mul_scalar(3.0);
        let err = linear_cka(&x, &flat).unwrap_err();
        assert!(
            matches!(err, SimilarityError::ZeroVariance { ref layer } if layer == "y"),
            "{err}"
        );
        let layers = [
            Layer::new("x", x).unwrap(),
            Layer::new("flat", flat).unwrap(),
        ];
        let m = linear_cka_matrix(&layers, &layers, HsicEstimator::Unbiased).unwrap();
        assert!(m.values[0][0].is_some());
        assert_eq!(m.values[1][0], None);
        assert!(m.warnings[0].contains("`flat`"));
    }
}
