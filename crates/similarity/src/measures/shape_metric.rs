//! The angular shape metric (Williams, Kunz, Kornblith, Linderman 2021, "Generalized Shape
//! Metrics on Neural Representations", NeurIPS): a true metric between representations, in
//! radians, 0 for the same shape,
//!
//! ```text
//! θ_α(X, Y) = arccos( ||φ(X)ᵀ φ(Y)||_* / (||φ(X)||_F ||φ(Y)||_F) ),
//! φ(X) = Xc (α I + (1 - α) (XcᵀXc)^(-1/2))
//! ```
//!
//! with `Xc` the centred activations and the scatter not divided by `n` (as the authors'
//! package netrep; `centered = false` uses the activations as given, netrep's
//! `center_columns=False`, so a translation changes the shape). `α = 1`: no whitening, the angular form of Procrustes (`cos θ = 1 -
//! procrustes / 2`); `α = 0`: full whitening, `cos θ = sum of canonical correlations /
//! sqrt(rank X rank Y)`. For `0 < α < 1` the value depends on the scale of the data and on `n`.
//! With the thin SVD `Xc = U diag(s) Vᵀ`, `φ(X) = U diag(α s + 1 - α) Vᵀ` and `V` drops out of
//! both norms, so `θ` comes from `diag(a) UxᵀUy diag(b)`; directions with `s² <= 1e-10 max s²`
//! are dropped. Unequal widths need no padding. The SVDs run on the host in float64 (faer):
//! `min(n, D)` at most [`crate::measures::cca::MAX_CCA_FEATURES`].

use burn::tensor::Tensor;

use crate::error::{Result, SimilarityError};
use crate::layer::{check_same_examples, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::cca::MAX_CCA_FEATURES;
use crate::measures::covariance::{host_matrix, host_values, svd, to_host_f64};
use crate::sides::Sides;

/// One layer's kept left singular vectors (`n x r`, host f64) and `a = α s + 1 - α`.
struct Whitened {
    basis: Tensor<2>,
    weights: Vec<f64>,
}

fn whitened(layer: &Layer, alpha: f64, centered: bool) -> Result<Whitened> {
    let (n, d) = (layer.num_examples(), layer.num_features());
    if n.min(d) > MAX_CCA_FEATURES {
        return Err(SimilarityError::InvalidParameter {
            name: "shape_angular",
            message: format!(
                "layer `{}` is {n} x {d}: its SVD would be of size {}, above {MAX_CCA_FEATURES}; use fewer examples or --conv pool=K",
                layer.name,
                n.min(d)
            ),
        });
    }
    let x = to_host_f64(layer.matrix.clone())?;
    let centred = if centered {
        x.clone().sub(x.mean_dim(0))
    } else {
        x
    };
    let (u, s, _) = svd(centred, &format!("layer `{}`", layer.name))?;
    let largest = s.first().copied().unwrap_or(0.0);
    let kept = s
        .iter()
        .take_while(|v| largest > 0.0 && v.powi(2) > 1e-10 * largest * largest)
        .count();
    if kept == 0 {
        return Err(SimilarityError::InvalidParameter {
            name: "shape_angular",
            message: format!(
                "layer `{}` does not vary over the examples: its shape distance is undefined",
                layer.name
            ),
        });
    }
    Ok(Whitened {
        basis: u.narrow(1, 0, kept),
        weights: s[..kept].iter().map(|v| alpha * v + 1.0 - alpha).collect(),
    })
}

/// `θ` of two whitened layers.
fn angle(x: &Whitened, y: &Whitened) -> Result<f64> {
    let (rx, ry) = (x.weights.len(), y.weights.len());
    let cross = host_values(x.basis.clone().transpose().matmul(y.basis.clone()))?;
    let scaled: Vec<f64> = (0..rx * ry)
        .map(|p| x.weights[p / ry] * cross[p] * y.weights[p % ry])
        .collect();
    let (_, singular, _) = svd(host_matrix(scaled, rx, ry), "the cross product")?;
    let norm = |w: &[f64]| w.iter().map(|v| v * v).sum::<f64>().sqrt();
    let cosine = singular.iter().sum::<f64>() / (norm(&x.weights) * norm(&y.weights));
    Ok(cosine.clamp(-1.0, 1.0).acos())
}

fn check_alpha(alpha: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(SimilarityError::InvalidParameter {
            name: "--alpha",
            message: format!("alpha must be in [0, 1], got {alpha}"),
        });
    }
    Ok(())
}

/// The angular shape distance of two layers over the same examples, radians (features
/// centred).
pub fn shape_angular(x: &Layer, y: &Layer, alpha: f64) -> Result<f64> {
    shape_angular_with(x, y, alpha, true)
}

/// [`shape_angular`], the features centred first or (`centered = false`) as given.
pub fn shape_angular_with(x: &Layer, y: &Layer, alpha: f64, centered: bool) -> Result<f64> {
    check_alpha(alpha)?;
    check_same_examples([x, y])?;
    angle(
        &whitened(x, alpha, centered)?,
        &whitened(y, alpha, centered)?,
    )
}

/// The angular shape distance of every layer of A against every layer of B (a distance
/// matrix: 0 = the same shape); each layer's SVD is computed once.
pub fn shape_angular_matrix(
    layers_a: &[Layer],
    layers_b: &[Layer],
    alpha: f64,
    centered: bool,
) -> Result<SimilarityMatrix> {
    check_alpha(alpha)?;
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    let sides = Sides::new(layers_a, layers_b, |l| whitened(l, alpha, centered))?;
    let (a, b) = (&sides.a, sides.b());
    let mut values = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            values.push(Some(angle(x, y)?));
        }
    }
    Ok(SimilarityMatrix::from_row_major(
        repsim_results::Measure::ShapeAngular { alpha, centered },
        layers_a.iter().map(|l| l.name.clone()).collect(),
        layers_b.iter().map(|l| l.name.clone()).collect(),
        values,
        n,
    )
    .with_parameter("kind", "distance (radians; 0 = the same shape)"))
}
