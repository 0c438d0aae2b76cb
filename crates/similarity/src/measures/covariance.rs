//! Covariance statistics of layers: what the CCA family (CCA, SVCCA, PWCCA, Procrustes) is a
//! function of.
//!
//! For centred activations `Xc = X - 1 mean^T` (`n x D`), every measure of the CCA family is a
//! function of `n`, the means, `Cxx = Xc^T Xc`, `Cyy` and `Cxy = Xc^T Yc`. The `n`-sized work
//! (centring and these matmuls) runs on the layers' device, in f64 where the device supports
//! it (flex does, wgpu does not); the `D x D` results are then decomposed on the host in f64
//! (faer's SVD, and a small Cholesky here).

use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::error::{Result, SimilarityError};
use crate::layer::{explain_non_finite, Layer};

/// Eigenvalues below this fraction of a layer's largest covariance eigenvalue (f64 statistics)
/// are treated as zero: those directions carry no variance and are left out of the whitening.
pub const RANK_TOLERANCE_F64: f64 = 1e-10;
/// The same tolerance for statistics computed in f32 (on devices without f64).
pub const RANK_TOLERANCE_F32: f64 = 1e-5;

/// The rank tolerance for statistics computed in `precision`.
pub(crate) fn rank_tolerance(precision: DType) -> f64 {
    if precision == DType::F64 {
        RANK_TOLERANCE_F64
    } else {
        RANK_TOLERANCE_F32
    }
}

/// How many of the descending eigenvalues `values` exceed the rank tolerance times the largest.
pub(crate) fn numerical_rank(values: &[f64], precision: DType) -> usize {
    let largest = values.first().copied().unwrap_or(0.0);
    let tolerance = rank_tolerance(precision);
    values
        .iter()
        .filter(|&&v| largest > 0.0 && v > tolerance * largest)
        .count()
}

/// The dtype the `n`-sized statistics are computed in on `device`: f64 where supported.
pub fn statistics_dtype(device: &Device) -> DType {
    if device.supports_dtype(DType::F64) {
        DType::F64
    } else {
        DType::F32
    }
}

/// The device of the small `D x D` decompositions: the flex CPU backend in f64.
pub(crate) fn host_device() -> Device {
    Device::flex()
}

/// Moves a small matrix to the host device as f64.
pub(crate) fn to_host_f64(tensor: Tensor<2>) -> Result<Tensor<2>> {
    let dims = tensor.dims();
    let values = tensor
        .try_into_vec_as::<f64>()
        .map_err(|e| SimilarityError::Readback(format!("{e:?}")))?;
    Ok(host_matrix(values, dims[0], dims[1]))
}

/// An f64 matrix on the host device from row-major values.
pub(crate) fn host_matrix(values: Vec<f64>, rows: usize, cols: usize) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values, [rows, cols]),
        (&host_device(), DType::F64),
    )
}

/// Reads a host matrix as row-major f64 values.
pub(crate) fn host_values(tensor: Tensor<2>) -> Result<Vec<f64>> {
    tensor
        .try_into_vec_as::<f64>()
        .map_err(|e| SimilarityError::Readback(format!("{e:?}")))
}

/// Singular value decomposition of a small host matrix, `(U, s, V^T)`, reduced (`k = min(m,
/// n)` singular values, descending), by faer's SVD in f64. faer's divide-and-conquer SVD does
/// not panic on repeated singular values (burn 0.22.1's `linalg::svd` does: its QR iteration
/// fails to converge on near-identity matrices, e.g. CCA of a layer with itself); a failure
/// comes back as an error naming `what`.
pub(crate) fn svd(matrix: Tensor<2>, what: &str) -> Result<(Tensor<2>, Vec<f64>, Tensor<2>)> {
    let [m, n] = matrix.dims();
    let values = host_values(matrix)?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(SimilarityError::InvalidParameter {
            name: "decomposition",
            message: format!("{what} has non-finite entries"),
        });
    }
    let a = faer::Mat::<f64>::from_fn(m, n, |i, j| values[i * n + j]);
    let decomposition = a
        .thin_svd()
        .map_err(|e| SimilarityError::InvalidParameter {
            name: "decomposition",
            message: format!("the SVD of {what} did not converge ({e:?})"),
        })?;
    let k = m.min(n);
    let (u, s, v) = (
        decomposition.U(),
        decomposition.S().column_vector(),
        decomposition.V(),
    );
    let u_values: Vec<f64> = (0..m * k).map(|x| u[(x / k, x % k)]).collect();
    let singular: Vec<f64> = (0..k).map(|r| s[r]).collect();
    let vt_values: Vec<f64> = (0..k * n).map(|x| v[(x % n, x / n)]).collect();
    Ok((
        host_matrix(u_values, m, k),
        singular,
        host_matrix(vt_values, k, n),
    ))
}

/// One layer's covariance statistics, computed once and shared by every pair it is in.
#[derive(Clone, Debug)]
pub struct CovarianceLayer {
    /// Layer name.
    pub name: String,
    /// Number of examples.
    pub n: usize,
    /// Number of features.
    pub features: usize,
    /// Centred activations on the layer's device (whole-data statistics only; streamed
    /// statistics get their cross products from the accumulator).
    pub(crate) centred: Option<Tensor<2>>,
    /// The dtype the `n`-sized products were computed in (f64 or f32).
    pub precision: DType,
    /// Feature means.
    pub mean: Vec<f64>,
    /// `Xc^T Xc` on the host, f64, `D x D`.
    pub(crate) scatter: Tensor<2>,
    /// Eigenvalues of `Xc^T Xc`, descending.
    pub eigenvalues: Vec<f64>,
    /// Eigenvectors (columns), host f64, `D x D`.
    pub(crate) eigenvectors: Tensor<2>,
    /// Number of eigenvalues above the rank tolerance.
    pub rank: usize,
    /// Features that do not vary at all over the examples.
    pub zero_variance_features: usize,
}

impl CovarianceLayer {
    /// Centres the layer and computes its scatter matrix and its eigen-decomposition.
    pub fn new(layer: &Layer) -> Result<Self> {
        let dtype = statistics_dtype(&layer.matrix.device());
        let x = layer.matrix.clone().cast(dtype);
        // Two centring passes: the second removes the rounding of the first mean, which
        // matters in f32 for layers whose offset dwarfs their spread.
        let first_mean = x.clone().mean_dim(0);
        let centred = x.sub(first_mean.clone());
        let correction = centred.clone().mean_dim(0);
        let centred = centred.sub(correction.clone());
        let mean_row = first_mean.add(correction);
        let scatter = to_host_f64(centred.clone().transpose().matmul(centred.clone()))?;
        let mean = host_values(to_host_f64(mean_row)?)?;
        let mut stats =
            Self::from_statistics(&layer.name, layer.num_examples(), mean, scatter, dtype)
                .map_err(|e| match e {
                    SimilarityError::NonFinite { .. } => explain_non_finite(layer, 0),
                    other => other,
                })?;
        stats.centred = Some(centred);
        Ok(stats)
    }

    /// Statistics from `n`, the feature means and the scatter `Xc^T Xc` (host f64), computed
    /// in `precision`: eigen-decomposition, rank and degenerate features.
    pub fn from_statistics(
        name: &str,
        n: usize,
        mean: Vec<f64>,
        scatter: Tensor<2>,
        precision: DType,
    ) -> Result<Self> {
        let features = mean.len();
        let diagonal: Vec<f64> = {
            let values = host_values(scatter.clone())?;
            (0..features).map(|i| values[i * features + i]).collect()
        };
        if diagonal.iter().chain(&mean).any(|v| !v.is_finite()) {
            return Err(SimilarityError::NonFinite {
                layer: name.to_string(),
                value: "a non-finite value".into(),
                example: 0,
                feature: 0,
            });
        }
        // Scatter matrices are symmetric positive semi-definite: their SVD is their
        // eigen-decomposition.
        let (u, s, _) = svd(
            scatter.clone(),
            &format!("the covariance of layer `{name}`"),
        )?;
        let tolerance = rank_tolerance(precision);
        let rank = numerical_rank(&s, precision);
        let max_diagonal = diagonal.iter().cloned().fold(0.0, f64::max);
        let zero_variance_features = diagonal
            .iter()
            .filter(|&&v| v <= tolerance * max_diagonal || max_diagonal == 0.0)
            .count();
        Ok(CovarianceLayer {
            name: name.to_string(),
            n,
            features,
            centred: None,
            precision,
            mean,
            scatter,
            eigenvalues: s,
            eigenvectors: u,
            rank,
            zero_variance_features,
        })
    }

    /// `(Xc^T Xc)^{-1/2}` restricted to the layer's non-degenerate directions (a pseudo-inverse
    /// square root): `V_r diag(1 / sqrt(lambda_r)) V_r^T`, host f64.
    pub(crate) fn whitening(&self) -> Tensor<2> {
        let d = self.features;
        let scale: Vec<f64> = (0..d)
            .map(|i| {
                if i < self.rank {
                    1.0 / self.eigenvalues[i].sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        let scale = host_matrix(scale, 1, d);
        let v = self.eigenvectors.clone();
        v.clone().mul(scale).matmul(v.transpose())
    }

    /// `Xc^T Yc` of two whole-data layers over the same examples, host f64 (`Dx x Dy`).
    pub(crate) fn cross(&self, other: &CovarianceLayer) -> Result<Tensor<2>> {
        match (&self.centred, &other.centred) {
            (Some(x), Some(y)) => to_host_f64(x.clone().transpose().matmul(y.clone().cast(x.dtype()))),
            _ => Err(SimilarityError::InvalidParameter {
                name: "statistics",
                message: "streamed statistics carry no activations: take cross products from the accumulator".into(),
            }),
        }
    }

    /// A warning about degenerate features, if any.
    pub fn warning(&self) -> Option<String> {
        (self.zero_variance_features > 0).then(|| {
            format!(
                "layer `{}`: {} of {} features have zero variance and carry no weight",
                self.name, self.zero_variance_features, self.features
            )
        })
    }
}

/// Cholesky factor `R` (upper triangular, `G = R^T R`) of a symmetric positive definite
/// matrix (row-major, `d x d`); `None` if `G` is not positive definite.
pub(crate) fn cholesky_upper(g: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut r = vec![0.0; d * d];
    for j in 0..d {
        let mut diagonal = g[j * d + j];
        for k in 0..j {
            diagonal -= r[k * d + j] * r[k * d + j];
        }
        if diagonal <= 0.0 || !diagonal.is_finite() {
            return None;
        }
        let rjj = diagonal.sqrt();
        r[j * d + j] = rjj;
        for i in j + 1..d {
            let mut value = g[j * d + i];
            for k in 0..j {
                value -= r[k * d + j] * r[k * d + i];
            }
            r[j * d + i] = value / rjj;
        }
    }
    Some(r)
}

/// Solves `R^T Z = B` for `Z` (forward substitution), `R` upper triangular `d x d`, `B`
/// `d x m`, all row-major.
pub(crate) fn solve_upper_transposed(r: &[f64], b: &[f64], d: usize, m: usize) -> Vec<f64> {
    let mut z = vec![0.0; d * m];
    for i in 0..d {
        for col in 0..m {
            let mut value = b[i * m + col];
            for k in 0..i {
                value -= r[k * d + i] * z[k * m + col];
            }
            z[i * m + col] = value / r[i * d + i];
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_reproduce_the_matrix() {
        // G = A^T A for a well-conditioned A.
        let a = [2.0, 1.0, 0.0, 0.5, 3.0, 1.0, 1.0, 0.0, 4.0];
        let d = 3;
        let mut g = vec![0.0; 9];
        for i in 0..d {
            for j in 0..d {
                g[i * d + j] = (0..d).map(|k| a[k * d + i] * a[k * d + j]).sum();
            }
        }
        let r = cholesky_upper(&g, d).unwrap();
        // R^T Z = G gives Z = R (since G = R^T R).
        let z = solve_upper_transposed(&r, &g, d, d);
        for (zi, ri) in z.iter().zip(&r) {
            assert!((zi - ri).abs() < 1e-9);
        }
        assert!(cholesky_upper(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn svd_reconstructs_tall_and_wide_matrices() {
        for (m, n) in [(5, 3), (3, 5), (4, 4)] {
            let a: Vec<f64> = (0..m * n)
                .map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0)
                .collect();
            let (u, s, vt) = svd(host_matrix(a.clone(), m, n), "a test matrix").unwrap();
            let k = m.min(n);
            assert_eq!((u.dims(), vt.dims(), s.len()), ([m, k], [k, n], k));
            assert!(s.windows(2).all(|w| w[0] >= w[1]));
            let (u, vt) = (host_values(u).unwrap(), host_values(vt).unwrap());
            for i in 0..m {
                for j in 0..n {
                    let value: f64 = (0..k).map(|r| u[i * k + r] * s[r] * vt[r * n + j]).sum();
                    assert!((value - a[i * n + j]).abs() < 1e-9, "({m}x{n}) [{i}][{j}]");
                }
            }
        }
    }

    #[test]
    fn svd_refuses_non_finite_entries_naming_the_matrix() {
        let e = svd(
            host_matrix(vec![1.0, f64::NAN, 0.0, 1.0], 2, 2),
            "X^T Y of `a`",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("X^T Y of `a`"), "{e}");
    }

    #[test]
    fn svd_of_a_near_identity_with_repeated_values_does_not_fail() {
        let d = 9;
        let values: Vec<f64> = (0..d * d)
            .map(|i| {
                if i % (d + 1) == 0 {
                    1.0 - 1e-13 * (i % 3) as f64
                } else {
                    0.0
                }
            })
            .collect();
        let (_, s, _) = svd(host_matrix(values, d, d), "a near identity").unwrap();
        assert!(s.iter().all(|v| (v - 1.0).abs() < 1e-9), "{s:?}");
    }
}
