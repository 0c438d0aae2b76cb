//! The CCA family: CCA, SVCCA, PWCCA and the orthogonal Procrustes distance.
//!
//! All four are computed from covariance statistics ([`crate::measures::covariance`]): with centred
//! `Xc`, `Yc`, `Cxx = Xc^T Xc`, `Cyy`, `Cxy = Xc^T Yc`:
//!
//! - **CCA** (Hotelling 1936): the canonical correlations are the singular values of
//!   `M = Cxx^{-1/2} Cxy Cyy^{-1/2}`, sorted descending, clipped to [0, 1]; their number is
//!   `min(rank X, rank Y)` (directions whose eigenvalue is below the rank tolerance of
//!   [`crate::measures::covariance`] are left out of the inverse square roots). CCA needs more examples
//!   than features.
//! - **SVCCA** (Raghu et al. 2017, "SVCCA: Singular Vector Canonical Correlation Analysis for
//!   Deep Learning Dynamics and Interpretability", NeurIPS): each side is first reduced to its
//!   top singular directions `Z = Xc V_k`, keeping the fewest that explain `keep` of the
//!   variance (sum of squared singular values; default 0.99) or a fixed `k`; then CCA of the
//!   reduced sides, from `Z_x^T Z_y = V_kx^T Cxy V_ky` and `Z^T Z = diag(lambda_k)`.
//! - **PWCCA** (Morcos, Raghu, Bengio 2018, "Insights on representational similarity in neural
//!   networks with canonical correlation", NeurIPS): the mean of the canonical correlations
//!   weighted by how much of the layer each canonical direction accounts for, the weights
//!   taken on the side with fewer features (x). Two conventions:
//!   - `google` (the SVCCA authors' code, the default): with `u` the left singular vectors
//!     of `M`, directions `(x - mean) u + mean`, `P` an orthonormal (QR) basis of them, and
//!     `w_i = sum_j |P_i . x_j|` over the *uncentred* features. From the statistics:
//!     `P^T x = R^{-T} (u^T Cxx + n m m^T)` with `R^T R = u^T Cxx u + n m m^T` (Cholesky).
//!     Adding the mean makes this depend on the arbitrary sign of each singular vector (the
//!     authors' values are those of numpy's LAPACK signs); repsim fixes the signs with
//!     scikit-learn's `svd_flip` rule (largest entry of each column positive).
//!   - `textbook`: `w_i = sum_j |h_i . xc_j|` with `h = Xc Cxx^{-1/2} u` the canonical
//!     variates and `xc_j` the centred features, i.e. `|u^T Cxx^{-1/2} Cxx|` row sums.
//! - **Orthogonal Procrustes distance** (Ding, Denain, Steinhardt 2021, "Grounding
//!   Representation Similarity with Statistical Testing", NeurIPS): with both sides centred
//!   and scaled to unit Frobenius norm, `2 - 2 ||X^T Y||_*` (nuclear norm), i.e.
//!   `2 - 2 sum(svd(Cxy)) / sqrt(tr Cxx tr Cyy)`. A distance: 0 for identical
//!   representations up to rotation, at most 2.

pub mod example_space;
pub mod params;

pub use params::{CcaMeasure, CcaResult, PwccaConvention, SvdReduction, MAX_CCA_FEATURES};

use burn::tensor::Tensor;

use crate::conditioning::{scale_to_unit, MIN_EXAMPLES};
use crate::error::{Result, SimilarityError};
use crate::layer::{check_min_examples, check_same_examples, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::covariance::{
    cholesky_upper, host_matrix, host_values, solve_upper_transposed, svd, CovarianceLayer,
};
use example_space::{svcca_correlations, ExampleSpaceLayer};

/// One layer's statistics plus what the measure derives from them once per layer.
pub(crate) struct PreparedLayer {
    stats: CovarianceLayer,
    /// `Cxx^{-1/2}` (CCA, PWCCA) or the SVD basis scaled by `1/sqrt(lambda_k)` (SVCCA), host f64.
    basis: Option<Tensor<2>>,
    /// Dimensions after reduction (rank for CCA, kept for SVCCA).
    dims: usize,
}

/// Refuses layers the measure cannot handle: too wide to decompose, or (CCA, PWCCA) with no
/// more examples than features.
pub(crate) fn check_shape(
    name: &str,
    n: usize,
    features: usize,
    measure: CcaMeasure,
) -> Result<()> {
    if measure.needs_more_examples_than_features() && n <= features {
        return Err(SimilarityError::InvalidParameter {
            name: "layer shape",
            message: format!(
                "layer `{}` has {} features but only {} examples: {} needs more examples than \
                 features. Use svcca (it reduces each layer to its top singular directions), a CKA \
                 metric, average-pooled conv maps (--conv pool=K), spatial-as-samples for a \
                 conv layer (--conv spatial), or more examples",
                name,
                features,
                n,
                measure.name()
            ),
        });
    }
    // SVCCA and Procrustes decompose min(n, D)-sized matrices (see `example_space`), the
    // others D x D ones.
    let decomposed = match measure {
        CcaMeasure::Svcca(_) | CcaMeasure::Procrustes => features.min(n),
        _ => features,
    };
    if decomposed > MAX_CCA_FEATURES {
        return Err(SimilarityError::InvalidParameter {
            name: "layer width",
            message: format!(
                "layer `{}` has {} features: {} decomposes a matrix of that size on the host, \
                 which is impractical above {MAX_CCA_FEATURES}; reduce the layer first (e.g. \
                 average-pool a conv layer's spatial dims), use fewer examples for svcca or \
                 procrustes, or use a CKA metric",
                name,
                features,
                measure.name()
            ),
        });
    }
    Ok(())
}

impl PreparedLayer {
    /// The whitening or SVD basis (prepared for every measure but Procrustes).
    fn basis(&self) -> Result<Tensor<2>> {
        self.basis
            .clone()
            .ok_or_else(|| SimilarityError::InvalidParameter {
                name: "measure",
                message: format!(
                    "layer `{}` was prepared without a basis (Procrustes)",
                    self.stats.name
                ),
            })
    }
}

fn prepare(layer: &Layer, measure: CcaMeasure) -> Result<PreparedLayer> {
    check_shape(
        &layer.name,
        layer.num_examples(),
        layer.num_features(),
        measure,
    )?;
    Ok(prepare_statistics(CovarianceLayer::new(layer)?, measure))
}

/// What `measure` derives from a layer's statistics once: the whitening (CCA, PWCCA) or the
/// scaled SVD basis (SVCCA).
pub(crate) fn prepare_statistics(stats: CovarianceLayer, measure: CcaMeasure) -> PreparedLayer {
    let (basis, dims) = match measure {
        CcaMeasure::Cca | CcaMeasure::Pwcca(_) => (Some(stats.whitening()), stats.rank),
        CcaMeasure::Svcca(reduction) => {
            let k = reduction.kept(&stats.eigenvalues, stats.rank);
            let scale: Vec<f64> = stats.eigenvalues[..k]
                .iter()
                .map(|v| 1.0 / v.sqrt())
                .collect();
            let basis = stats
                .eigenvectors
                .clone()
                .narrow(1, 0, k)
                .mul(host_matrix(scale, 1, k));
            (Some(basis), k)
        }
        CcaMeasure::Procrustes => (None, stats.rank),
    };
    PreparedLayer { stats, basis, dims }
}

/// The canonical correlations and left singular vectors of `B_x^T Cxy B_y`.
fn correlations(
    x: &PreparedLayer,
    y: &PreparedLayer,
    cross: Tensor<2>,
) -> Result<(Tensor<2>, Vec<f64>)> {
    let (bx, by) = (x.basis()?, y.basis()?);
    let m = bx.transpose().matmul(cross).matmul(by);
    let (u, s, _) = svd(
        m,
        &format!(
            "the correlations of `{}` and `{}`",
            x.stats.name, y.stats.name
        ),
    )?;
    let u = flip_signs(u)?;
    let count = x.dims.min(y.dims);
    let rhos = s
        .into_iter()
        .take(count)
        .map(|v| v.clamp(0.0, 1.0))
        .collect();
    Ok((u, rhos))
}

/// Fixes the arbitrary sign of each singular vector: its largest-magnitude entry is made
/// positive (scikit-learn's `svd_flip` rule). Only PWCCA's `google` convention depends on these
/// signs (it adds the feature means to the directions without flipping them along), so this
/// makes it deterministic across devices and SVD routines; see the README.
fn flip_signs(u: Tensor<2>) -> Result<Tensor<2>> {
    let [rows, cols] = u.dims();
    let mut values = host_values(u)?;
    for c in 0..cols {
        let largest = (0..rows)
            .map(|r| values[r * cols + c])
            .fold(
                0.0f64,
                |best, v| if v.abs() > best.abs() { v } else { best },
            );
        if largest < 0.0 {
            (0..rows).for_each(|r| values[r * cols + c] = -values[r * cols + c]);
        }
    }
    Ok(host_matrix(values, rows, cols))
}

/// Mean of a non-empty slice.
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// PWCCA of prepared layers, `x` the side with fewer features.
fn pwcca_value(
    x: &PreparedLayer,
    y: &PreparedLayer,
    cross: Tensor<2>,
    convention: PwccaConvention,
) -> Result<f64> {
    let (u, rhos) = correlations(x, y, cross)?;
    let d = x.stats.features;
    let k = u.dims()[1];
    let scatter = x.stats.scatter.clone();
    let projections = match convention {
        PwccaConvention::Textbook => {
            // h^T Xc = u^T Cxx^{-1/2} Cxx (k x D).
            let whitening = x.basis()?;
            host_values(u.transpose().matmul(whitening).matmul(scatter))?
        }
        PwccaConvention::Google => {
            // The directions (x - m) u + m of the authors' code, one per canonical pair. A
            // rank-deficient layer has r = min(rank x, rank y) canonical pairs, fewer than its
            // D features: the first r columns of u and, as numpy's broadcasting of the authors'
            // `+ mean` would have it, the first r means (r = D for full-rank layers, the
            // authors' case). The centred part is orthogonal to 1, so with m_r those r means
            // G = u_r^T Cxx u_r + n m_r m_r^T and (directions)^T x = u_r^T Cxx + n m_r m^T;
            // P^T x = R^{-T} (directions)^T x with R^T R = G.
            let n = x.stats.n as f64;
            let r = rhos.len().min(k);
            let u_r = u.clone().narrow(1, 0, r);
            let m = host_matrix(x.stats.mean.clone(), d, 1);
            let m_r = m.clone().narrow(0, 0, r);
            let u_t = u_r.clone().transpose();
            let directions_gram = u_t.clone().matmul(scatter.clone()).matmul(u_r);
            let mean_gram = m_r.clone().matmul(m_r.clone().transpose()).mul_scalar(n);
            let gram = host_values(directions_gram.add(mean_gram))?;
            let rhs = host_values(
                u_t.matmul(scatter)
                    .add(m_r.matmul(m.transpose()).mul_scalar(n)),
            )?;
            let factor = cholesky_upper(&gram, r).ok_or_else(|| {
                SimilarityError::CellUndefined(format!(
                    "the {r} canonical directions of layer `{}` are numerically dependent (PWCCA, \
                     google convention); the textbook convention has no such limit",
                    x.stats.name
                ))
            })?;
            solve_upper_transposed(&factor, &rhs, r, d)
        }
    };
    let weights: Vec<f64> = (0..rhos.len())
        .map(|i| {
            projections[i * d..(i + 1) * d]
                .iter()
                .map(|v| v.abs())
                .sum()
        })
        .collect();
    let total: f64 = weights.iter().sum();
    Ok(weights.iter().zip(&rhos).map(|(w, r)| w * r).sum::<f64>() / total)
}

/// Procrustes distance of prepared layers from their cross scatter.
fn procrustes_value(x: &PreparedLayer, y: &PreparedLayer, cross: Tensor<2>) -> Result<f64> {
    let (_, s, _) = svd(
        cross,
        &format!("X^T Y of `{}` and `{}`", x.stats.name, y.stats.name),
    )?;
    let trace_x: f64 = x.stats.eigenvalues.iter().sum();
    let trace_y: f64 = y.stats.eigenvalues.iter().sum();
    Ok((2.0 - 2.0 * s.iter().sum::<f64>() / (trace_x * trace_y).sqrt()).max(0.0))
}

/// The measure for one pair of prepared layers (`None`: a side has zero variance).
fn pair_value(
    measure: CcaMeasure,
    a: &PreparedLayer,
    b: &PreparedLayer,
    cross_ab: Tensor<2>,
) -> Result<Option<f64>> {
    if a.stats.rank == 0 || b.stats.rank == 0 {
        return Ok(None);
    }
    let value = match measure {
        CcaMeasure::Cca | CcaMeasure::Svcca(_) => {
            let (_, rhos) = correlations(a, b, cross_ab)?;
            mean(&rhos)
        }
        CcaMeasure::Pwcca(convention) => {
            // Weights come from the side with fewer features (the first on a tie).
            if b.stats.features < a.stats.features {
                pwcca_value(b, a, cross_ab.transpose(), convention)?
            } else {
                pwcca_value(a, b, cross_ab, convention)?
            }
        }
        CcaMeasure::Procrustes => procrustes_value(a, b, cross_ab)?,
    };
    Ok(Some(value))
}

/// A CCA-family measure between every layer of A and every layer of B. Each layer's statistics,
/// whitening or SVD basis are computed once and reused for every pair it is in.
pub fn cca_family_matrix(
    measure: CcaMeasure,
    layers_a: &[Layer],
    layers_b: &[Layer],
) -> Result<SimilarityMatrix> {
    if let CcaMeasure::Svcca(reduction) = measure {
        reduction.validate()?;
    }
    check_same_examples(layers_a.iter().chain(layers_b))?;
    for layer in layers_a.iter().chain(layers_b) {
        check_min_examples(layer, MIN_EXAMPLES, measure.name())?;
    }
    // Exact power-of-two scaling keeps every float32 product in range (see
    // `crate::conditioning`); the measures are scale-invariant.
    let symmetric = std::ptr::eq(layers_a, layers_b);
    let scaled_a = layers_a
        .iter()
        .map(scale_to_unit)
        .collect::<Result<Vec<_>>>()?;
    let scaled_b_owned;
    let (layers_a, layers_b): (&[Layer], &[Layer]) = if symmetric {
        (&scaled_a, &scaled_a)
    } else {
        scaled_b_owned = layers_b
            .iter()
            .map(scale_to_unit)
            .collect::<Result<Vec<_>>>()?;
        (&scaled_a, &scaled_b_owned)
    };
    if uses_example_space(measure, layers_a.iter().chain(layers_b)) {
        return example_space_matrix(measure, layers_a, layers_b);
    }
    let prepared_a = layers_a
        .iter()
        .map(|l| prepare(l, measure))
        .collect::<Result<Vec<_>>>()?;
    let prepared_b_owned;
    let prepared_b: &[PreparedLayer] = if symmetric {
        &prepared_a
    } else {
        prepared_b_owned = layers_b
            .iter()
            .map(|l| prepare(l, measure))
            .collect::<Result<Vec<_>>>()?;
        &prepared_b_owned
    };
    let names = |layers: &[Layer]| layers.iter().map(|l| l.name.clone()).collect();
    matrix_from_prepared(
        measure,
        (names(layers_a), names(layers_b)),
        &prepared_a,
        prepared_b,
        symmetric,
        &|i, j| prepared_a[i].stats.cross(&prepared_b[j].stats),
    )
}

/// The matrix from prepared layers of both sides, `cross(i, j)` giving `Xc_i^T Yc_j`.
pub(crate) fn matrix_from_prepared(
    measure: CcaMeasure,
    (rows, cols): (Vec<String>, Vec<String>),
    prepared_a: &[PreparedLayer],
    prepared_b: &[PreparedLayer],
    symmetric: bool,
    cross: &dyn Fn(usize, usize) -> Result<Tensor<2>>,
) -> Result<SimilarityMatrix> {
    let n = prepared_a[0].stats.n;
    let mut warnings = Vec::new();
    for p in prepared_a
        .iter()
        .chain(if symmetric { &[][..] } else { prepared_b })
    {
        if p.stats.rank == 0 {
            warnings.push(format!(
                "layer `{}` has zero variance across the {n} examples: its cells are undefined",
                p.stats.name
            ));
        } else if let Some(w) = p.stats.warning() {
            warnings.push(w);
        }
    }
    let (la, lb) = (prepared_a.len(), prepared_b.len());
    let mut values = vec![None; la * lb];
    for i in 0..la {
        for j in 0..lb {
            if symmetric && j < i && !matches!(measure, CcaMeasure::Pwcca(_)) {
                values[i * lb + j] = values[j * lb + i];
                continue;
            }
            // A cell that cannot be computed is left undefined with a warning naming both
            // layers; the rest of the matrix goes on. Bad input (NaN, overflow) still stops.
            let cell =
                cross(i, j).and_then(|c| pair_value(measure, &prepared_a[i], &prepared_b[j], c));
            values[i * lb + j] = match cell {
                Ok(value) => value,
                Err(e) if e.is_cell_failure() => {
                    warnings.push(format!(
                        "`{}` x `{}`: {e}; the cell is undefined",
                        prepared_a[i].stats.name, prepared_b[j].stats.name
                    ));
                    None
                }
                Err(e) => return Err(e),
            };
        }
    }
    let precision = format!("{:?}", prepared_a[0].stats.precision).to_lowercase();
    let mut matrix = SimilarityMatrix::from_row_major(
        repsim_results::Measure::Cca(measure),
        rows,
        cols,
        values,
        n,
    )
    .with_parameter("precision", precision);
    matrix = match measure {
        CcaMeasure::Svcca(_) => matrix
            .with_parameter(
                "kept_dims_rows",
                prepared_a.iter().map(|p| p.dims).collect::<Vec<_>>(),
            )
            .with_parameter(
                "kept_dims_cols",
                prepared_b.iter().map(|p| p.dims).collect::<Vec<_>>(),
            ),
        _ => matrix,
    };
    matrix.warnings = warnings;
    Ok(matrix)
}

/// Whether `measure` runs in example space for these layers: SVCCA and Procrustes do when some
/// layer has at least as many features as examples.
fn uses_example_space<'a>(
    measure: CcaMeasure,
    mut layers: impl Iterator<Item = &'a Layer>,
) -> bool {
    matches!(measure, CcaMeasure::Svcca(_) | CcaMeasure::Procrustes)
        && layers.any(|l| l.num_features() >= l.num_examples())
}

/// SVCCA or Procrustes between every layer of A and of B in example space
/// ([`crate::example_space`]); each layer's basis is computed once.
fn example_space_matrix(
    measure: CcaMeasure,
    layers_a: &[Layer],
    layers_b: &[Layer],
) -> Result<SimilarityMatrix> {
    for layer in layers_a.iter().chain(layers_b) {
        check_shape(
            &layer.name,
            layer.num_examples(),
            layer.num_features(),
            measure,
        )?;
    }
    let n = layers_a[0].num_examples();
    let symmetric = std::ptr::eq(layers_a, layers_b);
    let bases = |layers: &[Layer]| {
        layers
            .iter()
            .map(ExampleSpaceLayer::new)
            .collect::<Result<Vec<_>>>()
    };
    let bases_a = bases(layers_a)?;
    let bases_b_owned;
    let bases_b: &[ExampleSpaceLayer] = if symmetric {
        &bases_a
    } else {
        bases_b_owned = bases(layers_b)?;
        &bases_b_owned
    };
    let mut warnings = Vec::new();
    for e in bases_a
        .iter()
        .chain(if symmetric { &[][..] } else { bases_b })
    {
        if e.rank() == 0 {
            warnings.push(format!(
                "layer `{}` has zero variance across the {n} examples: its cells are undefined",
                e.name
            ));
        }
    }
    let lb = bases_b.len();
    let mut values = vec![None; bases_a.len() * lb];
    for (i, a) in bases_a.iter().enumerate() {
        for (j, b) in bases_b.iter().enumerate() {
            values[i * lb + j] = if symmetric && j < i {
                values[j * lb + i]
            } else if a.rank() == 0 || b.rank() == 0 {
                None
            } else {
                Some(match measure {
                    CcaMeasure::Svcca(reduction) => mean(&svcca_correlations(a, b, reduction)?),
                    _ => example_space::procrustes(a, b)?,
                })
            };
        }
    }
    let names = |layers: &[Layer]| layers.iter().map(|l| l.name.clone()).collect();
    let precision = format!("{:?}", bases_a[0].precision).to_lowercase();
    let mut matrix = SimilarityMatrix::from_row_major(
        repsim_results::Measure::Cca(measure),
        names(layers_a),
        names(layers_b),
        values,
        n,
    )
    .with_parameter("precision", precision)
    .with_parameter("space", "examples");
    if let CcaMeasure::Svcca(reduction) = measure {
        matrix = matrix
            .with_parameter(
                "kept_dims_rows",
                bases_a
                    .iter()
                    .map(|e| e.kept(reduction))
                    .collect::<Vec<_>>(),
            )
            .with_parameter(
                "kept_dims_cols",
                bases_b
                    .iter()
                    .map(|e| e.kept(reduction))
                    .collect::<Vec<_>>(),
            );
    }
    matrix.warnings = warnings;
    Ok(matrix)
}

fn pair_layers<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
) -> Result<[Layer; 2]> {
    Ok([Layer::new("x", x.clone())?, Layer::new("y", y.clone())?])
}

/// Both layers of a pair, prepared for `measure` and checked: same examples, not constant.
fn pair_measure(
    x: &Layer,
    y: &Layer,
    measure: CcaMeasure,
) -> Result<(PreparedLayer, PreparedLayer)> {
    check_same_examples([x, y])?;
    let (px, py) = (prepare(x, measure)?, prepare(y, measure)?);
    for p in [&px, &py] {
        if p.stats.rank == 0 {
            return Err(SimilarityError::ZeroVariance {
                layer: p.stats.name.clone(),
            });
        }
    }
    Ok((px, py))
}

/// Both layers of a pair in example space (SVCCA, Procrustes), checked like the matrix path:
/// same examples, a decomposable size, not constant.
fn example_space_pair(
    x: &Layer,
    y: &Layer,
    measure: CcaMeasure,
) -> Result<(ExampleSpaceLayer, ExampleSpaceLayer)> {
    check_same_examples([x, y])?;
    for layer in [x, y] {
        check_shape(
            &layer.name,
            layer.num_examples(),
            layer.num_features(),
            measure,
        )?;
    }
    let (ex, ey) = (ExampleSpaceLayer::new(x)?, ExampleSpaceLayer::new(y)?);
    for e in [&ex, &ey] {
        if e.rank() == 0 {
            return Err(SimilarityError::ZeroVariance {
                layer: e.name.clone(),
            });
        }
    }
    Ok((ex, ey))
}

/// The value of a pair of non-constant layers (`pair_value` gives `None` only for a constant
/// side, which `pair_measure` has already refused).
fn defined_pair_value(measure: CcaMeasure, x: &Layer, y: &Layer) -> Result<f64> {
    let (px, py) = pair_measure(x, y, measure)?;
    let cross = px.stats.cross(&py.stats)?;
    pair_value(measure, &px, &py, cross)?.ok_or_else(|| SimilarityError::ZeroVariance {
        layer: format!("{} x {}", x.name, y.name),
    })
}

/// The canonical correlations of a pair under `measure` (CCA or SVCCA).
fn pair_correlations<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
    measure: CcaMeasure,
) -> Result<CcaResult> {
    let [lx, ly] = pair_layers(x, y)?;
    if let CcaMeasure::Svcca(reduction) = measure {
        if uses_example_space(measure, [&lx, &ly].into_iter()) {
            let (ex, ey) = example_space_pair(&lx, &ly, measure)?;
            let rhos = svcca_correlations(&ex, &ey, reduction)?;
            return Ok(CcaResult {
                mean: mean(&rhos),
                rhos,
                dims: (ex.kept(reduction), ey.kept(reduction)),
            });
        }
    }
    let (px, py) = pair_measure(&lx, &ly, measure)?;
    let (_, rhos) = correlations(&px, &py, px.stats.cross(&py.stats)?)?;
    Ok(CcaResult {
        mean: mean(&rhos),
        rhos,
        dims: (px.dims, py.dims),
    })
}

/// All canonical correlations of two activation tensors (examples on dim 0) and their mean.
pub fn cca<const DX: usize, const DY: usize>(x: &Tensor<DX>, y: &Tensor<DY>) -> Result<CcaResult> {
    pair_correlations(x, y, CcaMeasure::Cca)
}

/// SVCCA (Raghu et al. 2017): CCA after reducing each side to its top singular directions.
pub fn svcca<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
    reduction: SvdReduction,
) -> Result<CcaResult> {
    reduction.validate()?;
    pair_correlations(x, y, CcaMeasure::Svcca(reduction))
}

/// PWCCA (Morcos et al. 2018) with the given convention; weights from the side with fewer
/// features, whichever argument it is.
pub fn pwcca<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
    convention: PwccaConvention,
) -> Result<f64> {
    let [lx, ly] = pair_layers(x, y)?;
    defined_pair_value(CcaMeasure::Pwcca(convention), &lx, &ly)
}

/// Orthogonal Procrustes distance (Ding et al. 2021), in [0, 2].
pub fn procrustes_distance<const DX: usize, const DY: usize>(
    x: &Tensor<DX>,
    y: &Tensor<DY>,
) -> Result<f64> {
    let measure = CcaMeasure::Procrustes;
    let [lx, ly] = pair_layers(x, y)?;
    if uses_example_space(measure, [&lx, &ly].into_iter()) {
        let (ex, ey) = example_space_pair(&lx, &ly, measure)?;
        return example_space::procrustes(&ex, &ey);
    }
    defined_pair_value(measure, &lx, &ly)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{orthogonal, random_matrix};
    use burn::tensor::Device;

    #[test]
    fn svd_keep_counts_like_numpy_searchsorted() {
        let eig = [5.0, 3.0, 1.5, 0.5];
        assert_eq!(SvdReduction::Keep(0.5).kept(&eig, 4), 1);
        assert_eq!(SvdReduction::Keep(0.8).kept(&eig, 4), 2);
        assert_eq!(SvdReduction::Keep(0.99).kept(&eig, 4), 4);
        assert_eq!(SvdReduction::Dims(9).kept(&eig, 3), 3);
    }

    #[test]
    fn cca_of_a_layer_with_itself_is_one_and_invariant_to_invertible_maps() {
        let device = Device::flex();
        let x = random_matrix(80, 6, 1, &device);
        let y = random_matrix(80, 5, 2, &device).add(x.clone().narrow(1, 0, 5));
        let itself = cca(&x, &x).unwrap();
        assert!(
            itself.rhos.iter().all(|r| (r - 1.0).abs() < 1e-6),
            "{:?}",
            itself.rhos
        );
        let before = cca(&x, &y).unwrap().mean;
        let map = random_matrix(6, 6, 3, &device).add(Tensor::<2>::eye(6, &device).mul_scalar(3.0));
        let after = cca(&x.clone().matmul(map), &y).unwrap().mean;
        assert!((before - after).abs() < 1e-6, "{before} vs {after}");
    }

    #[test]
    fn procrustes_is_zero_for_rotations_and_invariant_to_orthogonal_maps() {
        let device = Device::flex();
        let x = random_matrix(50, 7, 4, &device);
        let rotated = x.clone().matmul(orthogonal(7, 5, &device)).mul_scalar(2.5);
        assert!(procrustes_distance(&x, &rotated).unwrap() < 1e-6);
        let y = random_matrix(50, 4, 6, &device);
        let d = procrustes_distance(&x, &y).unwrap();
        let d_rot = procrustes_distance(&rotated, &y).unwrap();
        assert!(
            (d - d_rot).abs() < 1e-6 && d > 0.1 && d <= 2.0,
            "{d} {d_rot}"
        );
    }

    #[test]
    fn pwcca_takes_the_narrower_side_whichever_argument_it_is() {
        let device = Device::flex();
        let x = random_matrix(60, 4, 7, &device);
        let y = x
            .clone()
            .matmul(random_matrix(4, 9, 8, &device))
            .add(random_matrix(60, 9, 9, &device));
        for convention in [PwccaConvention::Google, PwccaConvention::Textbook] {
            let (xy, yx) = (
                pwcca(&x, &y, convention).unwrap(),
                pwcca(&y, &x, convention).unwrap(),
            );
            assert!(
                (xy - yx).abs() < 1e-9 && xy > 0.0 && xy <= 1.0,
                "{convention}: {xy} {yx}"
            );
        }
    }

    #[test]
    fn pwcca_google_uses_the_canonical_directions_of_a_rank_deficient_layer() {
        // 40 features of rank 24 (as ReLU networks often give): min(rank) = 24 directions.
        let device = Device::flex();
        let x = random_matrix(300, 24, 21, &device).matmul(random_matrix(24, 40, 22, &device));
        let y = x
            .clone()
            .matmul(random_matrix(40, 50, 23, &device))
            .add(random_matrix(300, 50, 24, &device).mul_scalar(4.0));
        let (a, b) = (
            [Layer::new("x", x.clone()).unwrap()],
            [
                Layer::new("y", y.clone()).unwrap(),
                Layer::new("x_again", x.clone()).unwrap(),
            ],
        );
        for convention in [PwccaConvention::Google, PwccaConvention::Textbook] {
            let m = cca_family_matrix(CcaMeasure::Pwcca(convention), &a, &b).unwrap();
            let value = m.values[0][0].expect("defined");
            assert!(value > 0.0 && value <= 1.0, "{convention}: {value}");
            let itself = m.values[0][1].expect("defined");
            assert!((itself - 1.0).abs() < 1e-6, "{convention}: {itself}");
        }
    }

    #[test]
    fn layers_too_wide_to_decompose_are_refused_at_once() {
        let device = Device::flex();
        let many = random_matrix(MAX_CCA_FEATURES + 8, MAX_CCA_FEATURES + 1, 1, &device);
        let err = cca(&many, &many).unwrap_err().to_string();
        assert!(err.contains("impractical") && err.contains("2049"), "{err}");
        // With fewer examples than features, that is what is said first.
        let x = random_matrix(4, MAX_CCA_FEATURES + 1, 1, &device);
        let err = cca(&x, &x).unwrap_err().to_string();
        assert!(err.contains("more examples than features"), "{err}");
        // SVCCA decomposes min(n, D): 4 examples of a wide layer are fine, in example space.
        let itself = svcca(&x, &x, SvdReduction::Keep(0.99)).unwrap();
        assert!((itself.mean - 1.0).abs() < 1e-9, "{itself:?}");
    }

    #[test]
    fn too_few_examples_suggests_svcca() {
        let device = Device::flex();
        let x = random_matrix(10, 20, 1, &device);
        let err = cca(&x, &x).unwrap_err().to_string();
        assert!(err.contains("svcca"), "{err}");
        assert!(svcca(&x, &x, SvdReduction::Keep(0.99)).is_ok());
    }
}

/// The example-space path against the feature-space measures of this module (here, so that
/// `example_space` never imports its parent).
#[cfg(test)]
mod example_space_tests {
    use super::example_space::*;
    use super::{cca_family_matrix, procrustes_distance, svcca, CcaMeasure, SvdReduction};
    use crate::layer::Layer;
    use crate::testing::{orthogonal, random_matrix};
    use burn::tensor::Device;

    #[test]
    fn example_space_agrees_with_feature_space() {
        // Narrow layers (D < n), where both paths apply.
        let device = Device::flex();
        let x = Layer::new("x", random_matrix(50, 8, 1, &device)).unwrap();
        let y = Layer::new(
            "y",
            random_matrix(50, 6, 2, &device).add(x.matrix.clone().narrow(1, 0, 6)),
        )
        .unwrap();
        let (ex, ey) = (
            ExampleSpaceLayer::new(&x).unwrap(),
            ExampleSpaceLayer::new(&y).unwrap(),
        );
        let reduction = SvdReduction::Keep(0.9);
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let example = mean(svcca_correlations(&ex, &ey, reduction).unwrap());
        let feature = svcca(&x.matrix, &y.matrix, reduction).unwrap().mean;
        assert!((example - feature).abs() < 1e-9, "{example} vs {feature}");
        let (p_example, p_feature) = (
            procrustes(&ex, &ey).unwrap(),
            procrustes_distance(&x.matrix, &y.matrix).unwrap(),
        );
        assert!(
            (p_example - p_feature).abs() < 1e-9,
            "{p_example} vs {p_feature}"
        );
    }

    #[test]
    fn wide_layers_take_the_example_space_path_and_agree_with_the_scatter() {
        // 40 examples of 120 and 90 features: the matrix takes the Gram path; the scatter
        // (feature-space) path is still exact at these widths, so both must agree.
        let device = Device::flex();
        let x = random_matrix(40, 120, 3, &device);
        let y = x
            .clone()
            .narrow(1, 0, 90)
            .add(random_matrix(40, 90, 4, &device).mul_scalar(0.7));
        let layers = [
            Layer::new("x", x.clone()).unwrap(),
            Layer::new("y", y.clone()).unwrap(),
        ];
        let (ex, ey) = (
            ExampleSpaceLayer::new(&layers[0]).unwrap(),
            ExampleSpaceLayer::new(&layers[1]).unwrap(),
        );
        let feature = svcca(&x, &y, SvdReduction::Dims(10)).unwrap();
        let example = svcca_correlations(&ex, &ey, SvdReduction::Dims(10)).unwrap();
        for (f, e) in feature.rhos.iter().zip(&example) {
            assert!((f - e).abs() < 1e-8, "{f} vs {e}");
        }
        let m = cca_family_matrix(CcaMeasure::Procrustes, &layers, &layers).unwrap();
        let rotated = Layer::new("xq", x.matmul(orthogonal(120, 5, &device))).unwrap();
        let rq = ExampleSpaceLayer::new(&rotated).unwrap();
        assert!(procrustes(&ex, &rq).unwrap() < 1e-6);
        assert!((m.values[0][1].unwrap() - procrustes(&ex, &ey).unwrap()).abs() < 1e-12);
        assert_eq!(m.values[0][0], Some(0.0));
    }

    #[test]
    fn example_space_coordinates_keep_cka_svcca_and_procrustes() {
        // 30 examples of 200 and 80 features: both layers are compacted to at most 29 columns.
        let device = Device::flex();
        let x = random_matrix(30, 200, 6, &device).add_scalar(3.0);
        let y = x
            .clone()
            .narrow(1, 0, 80)
            .add(random_matrix(30, 80, 7, &device).mul_scalar(0.5));
        let (cx, cy) = (
            example_space_coordinates(&Layer::new("x", x.clone()).unwrap()).unwrap(),
            example_space_coordinates(&Layer::new("y", y.clone()).unwrap()).unwrap(),
        );
        assert_eq!(cx.matrix.dims(), [30, 29]);
        let close =
            |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-5, "{what}: {a} vs {b}");
        close(
            crate::linear_cka(&cx.matrix, &cy.matrix).unwrap(),
            crate::linear_cka(&x, &y).unwrap(),
            "linear CKA",
        );
        close(
            crate::linear_cka_debiased(&cx.matrix, &cy.matrix).unwrap(),
            crate::linear_cka_debiased(&x, &y).unwrap(),
            "debiased CKA",
        );
        close(
            crate::rbf_cka(&cx.matrix, &cy.matrix, 0.5).unwrap(),
            crate::rbf_cka(&x, &y, 0.5).unwrap(),
            "RBF CKA",
        );
        let reduction = SvdReduction::Keep(0.99);
        close(
            svcca(&cx.matrix, &cy.matrix, reduction).unwrap().mean,
            svcca(&x, &y, reduction).unwrap().mean,
            "SVCCA",
        );
        close(
            procrustes_distance(&cx.matrix, &cy.matrix).unwrap(),
            procrustes_distance(&x, &y).unwrap(),
            "Procrustes",
        );
        // A narrow layer is kept as it is.
        let narrow = Layer::new("n", random_matrix(30, 5, 8, &device)).unwrap();
        assert_eq!(
            example_space_coordinates(&narrow).unwrap().matrix.dims(),
            [30, 5]
        );
    }
}
