//! Representational similarity analysis, RSA (Kriegeskorte, Mur, Bandettini 2008,
//! "Representational similarity analysis – connecting the branches of systems neuroscience",
//! Frontiers in Systems Neuroscience): the correlation between two representational
//! dissimilarity matrices (RDMs) over the same `n` examples,
//!
//! ```text
//! RSA(X, Y) = corr( {d_X(i, j)}_{i<j}, {d_Y(i, j)}_{i<j} )
//! ```
//!
//! over the upper triangles without the diagonal. `d` is the correlation distance `1 - r(x_i,
//! x_j)` (each example vector centred by its own mean, then cosine; the default) or the plain
//! Euclidean distance `||x_i - x_j||` (from the differences, so equal rows give exactly 0).
//! `corr` is Spearman's (Pearson's of average ranks, ties sharing their mean rank; the default:
//! unchanged by any increasing map of `d`) or Pearson's. The RDM is computed in float64 (the
//! correlation RDM's Gram on the layer's device where it has f64, as flex does). Memory is
//! `O(n^2)` per layer (the `n (n-1) / 2` distances): 4 MB at `n = 1,000`, 400 MB at 10,000.

use crate::covariance::statistics_dtype;
use crate::error::{Result, SimilarityError};
use crate::layer::{check_same_examples, read_back, Layer};
use crate::matrix::SimilarityMatrix;
use crate::sides::Sides;

pub use repsim_results::{RdmComparison, RdmKind};

/// The upper triangle (without the diagonal) of a layer's RDM, row-major: `d(0,1), d(0,2), ...`.
pub fn rdm_vector(layer: &Layer, kind: RdmKind) -> Result<Vec<f64>> {
    let n = layer.num_examples();
    let device = layer.matrix.device();
    let x = layer.matrix.clone().cast(statistics_dtype(&device));
    let mut upper = Vec::with_capacity(n * (n - 1) / 2);
    match kind {
        RdmKind::Correlation => {
            let centred = x.clone().sub(x.mean_dim(1));
            let norm_column = centred.clone().powi_scalar(2).sum_dim(1).sqrt();
            let norms = read_back(norm_column.clone())?;
            if let Some(i) = norms.iter().position(|v| *v == 0.0 || !v.is_finite()) {
                return Err(SimilarityError::InvalidParameter {
                    name: "rsa",
                    message: format!(
                        "layer `{}`: example {i} is constant across features (or not finite): its correlation distance is undefined (use --rdm euclidean)",
                        layer.name
                    ),
                });
            }
            let unit = centred.div(norm_column);
            let gram = read_back(unit.clone().matmul(unit.transpose()))?;
            for i in 0..n {
                upper.extend(gram[i * n + i + 1..(i + 1) * n].iter().map(|r| 1.0 - r));
            }
        }
        RdmKind::Euclidean => {
            let values = read_back(x)?;
            let d = values.len() / n;
            for i in 0..n {
                let xi = &values[i * d..(i + 1) * d];
                for j in i + 1..n {
                    let xj = &values[j * d..(j + 1) * d];
                    let squared: f64 = xi.iter().zip(xj).map(|(a, b)| (a - b) * (a - b)).sum();
                    upper.push(squared.sqrt());
                }
            }
            if let Some(p) = upper.iter().position(|v| !v.is_finite()) {
                return Err(SimilarityError::InvalidParameter {
                    name: "rsa",
                    message: format!("layer `{}`: distance {p} is not finite", layer.name),
                });
            }
        }
    }
    Ok(upper)
}

/// Average ranks (1-based) of `values`: tied values share the mean of their ranks.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &p in &order[start..end] {
            ranks[p] = rank;
        }
        start = end;
    }
    ranks
}

/// `values` centred and scaled to unit norm (`None` when constant), so that Pearson's
/// correlation of two such vectors is their dot product.
fn standardized(mut values: Vec<f64>) -> Option<Vec<f64>> {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.iter_mut().for_each(|v| *v -= mean);
    let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    (norm > 0.0).then(|| values.into_iter().map(|v| v / norm).collect())
}

/// The correlation of two RDM vectors (Spearman's: of their average ranks); `None` when one
/// is constant.
pub fn rdm_correlation(a: &[f64], b: &[f64], compare: RdmComparison) -> Option<f64> {
    let prepare = |v: &[f64]| {
        standardized(match compare {
            RdmComparison::Spearman => average_ranks(v),
            RdmComparison::Pearson => v.to_vec(),
        })
    };
    Some(dot(&prepare(a)?, &prepare(b)?))
}

/// One layer's RDM, ready to correlate (`None` when every distance is the same).
pub(crate) fn prepared(
    layer: &Layer,
    kind: RdmKind,
    compare: RdmComparison,
) -> Result<Option<Vec<f64>>> {
    let rdm = rdm_vector(layer, kind)?;
    Ok(standardized(match compare {
        RdmComparison::Spearman => average_ranks(&rdm),
        RdmComparison::Pearson => rdm,
    }))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// RSA of two layers over the same examples (`None` when an RDM is constant).
pub fn rsa(x: &Layer, y: &Layer, kind: RdmKind, compare: RdmComparison) -> Result<Option<f64>> {
    check_examples(check_same_examples([x, y])?)?;
    Ok(
        match (prepared(x, kind, compare)?, prepared(y, kind, compare)?) {
            (Some(a), Some(b)) => Some(dot(&a, &b)),
            _ => None,
        },
    )
}

fn check_examples(n: usize) -> Result<()> {
    if n < 3 {
        return Err(SimilarityError::InvalidParameter {
            name: "examples",
            message: format!("rsa needs at least 3 examples (2 distances), got {n}"),
        });
    }
    Ok(())
}

/// RSA of every layer of A against every layer of B; each layer's RDM is computed once.
pub fn rsa_matrix(
    layers_a: &[Layer],
    layers_b: &[Layer],
    kind: RdmKind,
    compare: RdmComparison,
) -> Result<SimilarityMatrix> {
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    check_examples(n)?;
    let sides = Sides::new(layers_a, layers_b, |l| prepared(l, kind, compare))?;
    let (a, b) = (&sides.a, sides.b());
    let mut warnings = Vec::new();
    for (side, layers) in [(a.as_slice(), layers_a), (b, layers_b)] {
        for (rdm, layer) in side.iter().zip(layers) {
            if rdm.is_none() {
                warnings.push(format!(
                    "layer `{}`: every dissimilarity is the same, so its RSA is undefined",
                    layer.name
                ));
            }
        }
    }
    warnings.dedup();
    let values = a
        .iter()
        .flat_map(|ra| {
            b.iter().map(move |rb| match (ra, rb) {
                (Some(x), Some(y)) => Some(dot(x, y)),
                _ => None,
            })
        })
        .collect();
    let mut matrix = SimilarityMatrix::from_row_major(
        repsim_results::Measure::Rsa { rdm: kind, compare },
        layers_a.iter().map(|l| l.name.clone()).collect(),
        layers_b.iter().map(|l| l.name.clone()).collect(),
        values,
        n,
    );
    matrix.warnings.extend(warnings);
    Ok(matrix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_their_mean_rank() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
    }
}
