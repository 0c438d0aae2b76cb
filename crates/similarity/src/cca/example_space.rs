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
//! feature-space path of [`crate::cca`] needs `D x D`; [`crate::cca::cca_family_matrix`] takes
//! this one when some layer has `D >= n`.

use burn::tensor::{DType, Tensor};

use crate::cca::SvdReduction;
use crate::covariance::{
    host_matrix, host_values, numerical_rank, statistics_dtype, svd, to_host_f64,
};
use crate::error::{Result, SimilarityError};
use crate::layer::{explain_non_finite, Layer};

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
            crate::gram::gram(centred.clone())
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
    crate::gram::gram(centred)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cca::{cca_family_matrix, procrustes_distance, svcca, CcaMeasure};
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
