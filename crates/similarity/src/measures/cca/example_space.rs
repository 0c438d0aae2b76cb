//! SVCCA and the Procrustes distance in example space, for layers at least as wide as the
//! number of examples (a flattened conv layer, say 16 384 features over 2 000 images).
//!
//! Both measures need only the column space of each centred layer and its spectrum: with the
//! thin SVD `Xc = U_r diag(sqrt(lambda_r)) V_r^T` (rank `r`),
//!
//! - SVCCA's reduced, whitened side is `U_k` (the top `k` columns), so its canonical
//!   correlations are the singular values of `U_kx^T U_ky`;
//! - `||Xc^T Yc||_* = ||diag(sqrt(lambda_x)) U_x^T U_y diag(sqrt(lambda_y))||_*` (the `V`s have
//!   orthonormal columns), and `||Xc||_F^2 = sum(lambda)`.
//!
//! `U_r` comes from the `n x n` Gram `Xc Xc^T` when `D >= n`, and as `Xc V_r diag(lambda_r)^{-1/2}`
//! from the `D x D` scatter otherwise, so the host decomposition is `min(n, D)`-sized. The
//! feature-space path of [`crate::measures::cca`] needs `D x D`; [`crate::measures::cca::cca_family_matrix`] takes
//! this one when some layer has `D >= n`.

use burn::tensor::{DType, Tensor};

use super::params::SvdReduction;
use crate::error::{Result, SimilarityError};
use crate::layer::{explain_non_finite, Layer};
use crate::measures::covariance::{
    host_matrix, host_values, numerical_rank, statistics_dtype, svd, to_host_f64,
};

/// A layer as an orthonormal basis of its centred column space, in example space.
pub(crate) struct ExampleSpaceLayer {
    pub(crate) name: String,
    /// `U_r`, `n x r`, host f64.
    basis: Tensor<2>,
    /// `lambda_r`: squared singular values of the centred layer, descending.
    pub(crate) eigenvalues: Vec<f64>,
    /// The dtype of the `n`-sized products.
    pub(crate) precision: DType,
}

impl ExampleSpaceLayer {
    pub(crate) fn new(layer: &Layer) -> Result<Self> {
        let (n, d) = (layer.num_examples(), layer.num_features());
        let precision = statistics_dtype(&layer.matrix.device());
        let x = layer.matrix.clone().cast(precision);
        let centred = x.clone().sub(x.mean_dim(0));
        let gram_side = d >= n;
        let product = if gram_side {
            crate::measures::cka::gram::gram(centred.clone())
        } else {
            centred.clone().transpose().matmul(centred.clone())
        };
        let product = to_host_f64(product)?;
        if host_values(product.clone())?.iter().any(|v| !v.is_finite()) {
            return Err(explain_non_finite(layer, 0));
        }
        let (vectors, values, _) = svd(product, &format!("the Gram of layer `{}`", layer.name))?;
        let rank = numerical_rank(&values, precision);
        let eigenvalues = values[..rank].to_vec();
        let basis = if rank == 0 {
            host_matrix(vec![0.0; n], n, 1)
        } else if gram_side {
            vectors.narrow(1, 0, rank)
        } else {
            let scale: Vec<f64> = eigenvalues.iter().map(|v| 1.0 / v.sqrt()).collect();
            to_host_f64(centred)?
                .matmul(vectors.narrow(1, 0, rank))
                .mul(host_matrix(scale, 1, rank))
        };
        Ok(ExampleSpaceLayer {
            name: layer.name.clone(),
            basis,
            eigenvalues,
            precision,
        })
    }

    /// Rank of the centred layer.
    pub(crate) fn rank(&self) -> usize {
        self.eigenvalues.len()
    }

    /// The SVCCA-kept number of directions.
    pub(crate) fn kept(&self, reduction: SvdReduction) -> usize {
        reduction.kept(&self.eigenvalues, self.rank())
    }
}

/// The centred Gram `Xc Xc^T` (`n x n`) of a layer, computed in `precision`: what
/// [`coordinates_from_centred_gram`] turns back into example-space coordinates. Storing it
/// instead of a wide layer keeps every measure that [`example_space_coordinates`] keeps, and
/// costs one matmul, no decomposition. (The Tracker uses float32: on flex a float64 matmul of a
/// 4,096-feature layer over 500 examples takes about ten times as long.)
pub fn centred_gram(layer: &Layer, precision: DType) -> Tensor<2> {
    let x = layer.matrix.clone().cast(precision);
    let centred = x.clone().sub(x.mean_dim(0));
    crate::measures::cka::gram::gram(centred)
}

/// Example-space coordinates `U_r diag(sqrt(lambda_r))` (`n x r`, float32, on `device`) of a
/// layer given by its centred Gram `U diag(lambda) U^T`; see [`example_space_coordinates`].
pub fn coordinates_from_centred_gram(
    name: &str,
    gram: Tensor<2>,
    device: &burn::tensor::Device,
) -> Result<Layer> {
    let n = gram.dims()[0];
    let precision = statistics_dtype(&gram.device());
    let gram = to_host_f64(gram)?;
    if host_values(gram.clone())?.iter().any(|v| !v.is_finite()) {
        return Err(SimilarityError::NonFinite {
            layer: name.to_string(),
            value: "a non-finite value".into(),
            example: 0,
            feature: 0,
        });
    }
    let (vectors, values, _) = svd(gram, &format!("the Gram of layer `{name}`"))?;
    let rank = numerical_rank(&values, precision);
    let coordinates = if rank == 0 {
        // A constant layer: one zero column, which every measure reports as zero variance.
        host_matrix(vec![0.0; n], n, 1)
    } else {
        let roots: Vec<f64> = values[..rank].iter().map(|v| v.sqrt()).collect();
        vectors.narrow(1, 0, rank).mul(host_matrix(roots, 1, rank))
    };
    let values: Vec<f32> = host_values(coordinates)?
        .into_iter()
        .map(|v| v as f32)
        .collect();
    Ok(Layer {
        name: name.to_string(),
        matrix: Tensor::from_data(
            burn::tensor::TensorData::new(values, [n, rank.max(1)]),
            device,
        ),
    })
}

/// The layer's coordinates in example space: `Xc V_r = U_r diag(sqrt(lambda_r))`, an `n x r`
/// matrix (`r` = rank of the centred layer, at most `n - 1`), for a layer with at least as many
/// features as examples; a narrower layer is returned as it is.
///
/// Every pairwise distance and inner product of the centred examples is kept exactly (the
/// Gram `Xc Xc^T` is unchanged), so linear and RBF CKA (biased, debiased, minibatch), SVCCA and
/// the Procrustes distance of the coordinates equal those of the layer; an observation of a
/// 16,384-feature conv layer on 500 examples shrinks to at most 500 x 499 values. (PWCCA and
/// mean CCA are not kept: they need more examples than features in the first place.) The
/// values are returned in float32 on the layer's device.
pub fn example_space_coordinates(layer: &Layer) -> Result<Layer> {
    if layer.num_features() < layer.num_examples() {
        return Ok(layer.clone());
    }
    if layer
        .matrix
        .clone()
        .is_finite()
        .bool_not()
        .any()
        .into_scalar::<bool>()
    {
        return Err(explain_non_finite(layer, 0));
    }
    let precision = statistics_dtype(&layer.matrix.device());
    coordinates_from_centred_gram(
        &layer.name,
        centred_gram(layer, precision),
        &layer.matrix.device(),
    )
}

/// SVCCA's canonical correlations (descending, in [0, 1]) of two example-space layers.
pub(crate) fn svcca_correlations(
    a: &ExampleSpaceLayer,
    b: &ExampleSpaceLayer,
    reduction: SvdReduction,
) -> Result<Vec<f64>> {
    let (ka, kb) = (a.kept(reduction), b.kept(reduction));
    let m = a
        .basis
        .clone()
        .narrow(1, 0, ka)
        .transpose()
        .matmul(b.basis.clone().narrow(1, 0, kb));
    let (_, s, _) = svd(
        m,
        &format!("the correlations of `{}` and `{}`", a.name, b.name),
    )?;
    Ok(s.into_iter()
        .take(ka.min(kb))
        .map(|v| v.clamp(0.0, 1.0))
        .collect())
}

/// The orthogonal Procrustes distance of two example-space layers.
pub(crate) fn procrustes(a: &ExampleSpaceLayer, b: &ExampleSpaceLayer) -> Result<f64> {
    let scaled = |l: &ExampleSpaceLayer| {
        let roots: Vec<f64> = l.eigenvalues.iter().map(|v| v.sqrt()).collect();
        l.basis.clone().mul(host_matrix(roots, 1, l.rank()))
    };
    let product = scaled(a).transpose().matmul(scaled(b));
    let (_, s, _) = svd(product, &format!("X^T Y of `{}` and `{}`", a.name, b.name))?;
    let (trace_a, trace_b): (f64, f64) = (a.eigenvalues.iter().sum(), b.eigenvalues.iter().sum());
    if trace_a <= 0.0 || trace_b <= 0.0 {
        return Err(SimilarityError::ZeroVariance {
            layer: if trace_a <= 0.0 {
                a.name.clone()
            } else {
                b.name.clone()
            },
        });
    }
    Ok((2.0 - 2.0 * s.iter().sum::<f64>() / (trace_a * trace_b).sqrt()).max(0.0))
}
