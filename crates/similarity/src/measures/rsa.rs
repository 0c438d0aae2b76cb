//! Representational similarity analysis, RSA (Kriegeskorte, Mur, Bandettini 2008,
//! "Representational similarity analysis – connecting the branches of systems neuroscience",
//! Frontiers in Systems Neuroscience): the correlation between two representational
//! dissimilarity matrices (RDMs) over the same `n` examples,
//!
//! ```text
//! RSA(X, Y) = corr( {d_X(i, j)}_{i<j}, {d_Y(i, j)}_{i<j} )
//! ```
//!
//! over the upper triangles without the diagonal (`m = n (n-1) / 2` entries). `d` is the
//! correlation distance `1 - r(x_i, x_j)` (each example vector centred by its own mean, then
//! cosine; the default), the plain Euclidean distance `||x_i - x_j||` (from the differences, so
//! equal rows give exactly 0), or the mean squared difference `||x_i - x_j||^2 / D` that
//! rsatoolbox calls "euclidean" (named apart here: the same ranks, another Pearson value).
//! `corr` is Spearman's (Pearson's of average ranks, ties sharing their mean rank; the default:
//! unchanged by any increasing map of `d`), Pearson's, the cosine of the uncentred vectors
//! (rsatoolbox's default), or, after Nili et al. (2014, "A toolbox for representational
//! similarity analysis", PLoS Comput Biol), Spearman's rho-a `12 sum (r_a - mean)(r_b - mean)
//! / (m^3 - m)` or Kendall's tau-a `(concordant - discordant) / (m (m-1) / 2)`, which differ
//! from Spearman's only where there are ties (categorical model RDMs). The RDM is computed in
//! float64 (the correlation RDM's Gram on the layer's device where it has f64, as flex does).
//! Memory is `O(n^2)` per layer (the `n (n-1) / 2` distances): 4 MB at `n = 1,000`, 400 MB at
//! 10,000.

use crate::error::{Result, SimilarityError};
use crate::layer::{check_same_examples, read_back, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::covariance::statistics_dtype;
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
        RdmKind::Euclidean | RdmKind::MeanSquaredDifference => {
            let values = read_back(x)?;
            let d = values.len() / n;
            for i in 0..n {
                let xi = &values[i * d..(i + 1) * d];
                for j in i + 1..n {
                    let xj = &values[j * d..(j + 1) * d];
                    let squared: f64 = xi.iter().zip(xj).map(|(a, b)| (a - b) * (a - b)).sum();
                    upper.push(match kind {
                        RdmKind::Euclidean => squared.sqrt(),
                        _ => squared / d as f64,
                    });
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

/// `values` centred (when `centre`) and scaled to unit norm (`None` when that leaves nothing),
/// so that Pearson's correlation (or the cosine) of two such vectors is their dot product.
fn unit(mut values: Vec<f64>, centre: bool) -> Option<Vec<f64>> {
    if centre {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        values.iter_mut().for_each(|v| *v -= mean);
    }
    let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    (norm > 0.0).then(|| values.into_iter().map(|v| v / norm).collect())
}

/// Centred average ranks times `sqrt(12 / (m^3 - m))`, so that the dot product of two is
/// Spearman's rho-a (`None` when every rank is the same).
fn rho_a_scaled(values: &[f64]) -> Option<Vec<f64>> {
    let m = values.len() as f64;
    let mean = (m + 1.0) / 2.0;
    let scale = (12.0 / (m * m * m - m)).sqrt();
    let ranks = average_ranks(values);
    ranks
        .iter()
        .any(|r| *r != ranks[0])
        .then(|| ranks.iter().map(|r| (r - mean) * scale).collect())
}

/// Kendall's tau-a of two equally long vectors: (concordant - discordant pairs) over all
/// `m (m - 1) / 2` pairs, a pair tied in either vector counting as neither (as rsatoolbox's
/// `tau-a`). `O(m log m)`: sorted by `a` (then `b`), the discordant pairs are the strict
/// inversions of `b`, counted by merge sort.
pub fn kendall_tau_a(a: &[f64], b: &[f64]) -> f64 {
    let m = a.len();
    let pairs = |count: u64| count * count.saturating_sub(1) / 2;
    let total = pairs(m as u64);
    if total == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_unstable_by(|&i, &j| a[i].total_cmp(&a[j]).then(b[i].total_cmp(&b[j])));
    // Pairs tied in a, and tied in both (runs of equal a, and of equal (a, b) within them).
    let (mut tied_a, mut tied_both) = (0u64, 0u64);
    let mut start = 0;
    while start < m {
        let mut end = start + 1;
        while end < m && a[order[end]] == a[order[start]] {
            end += 1;
        }
        tied_a += pairs((end - start) as u64);
        let mut run = start;
        while run < end {
            let mut stop = run + 1;
            while stop < end && b[order[stop]] == b[order[run]] {
                stop += 1;
            }
            tied_both += pairs((stop - run) as u64);
            run = stop;
        }
        start = end;
    }
    let mut sorted_b: Vec<f64> = b.to_vec();
    sorted_b.sort_unstable_by(f64::total_cmp);
    let mut tied_b = 0u64;
    let mut start = 0;
    while start < m {
        let mut end = start + 1;
        while end < m && sorted_b[end] == sorted_b[start] {
            end += 1;
        }
        tied_b += pairs((end - start) as u64);
        start = end;
    }
    let mut sequence: Vec<f64> = order.iter().map(|&i| b[i]).collect();
    let mut scratch = vec![0.0; m];
    let discordant = strict_inversions(&mut sequence, &mut scratch);
    let concordant = total - tied_a - tied_b + tied_both - discordant;
    (concordant as f64 - discordant as f64) / total as f64
}

/// Sorts `values` ascending and returns the number of pairs `i < j` with `values[i] >
/// values[j]` (equal values are no inversion).
fn strict_inversions(values: &mut [f64], scratch: &mut [f64]) -> u64 {
    let m = values.len();
    if m < 2 {
        return 0;
    }
    let middle = m / 2;
    let mut count = {
        let (left, right) = values.split_at_mut(middle);
        let (scratch_left, scratch_right) = scratch.split_at_mut(middle);
        strict_inversions(left, scratch_left) + strict_inversions(right, scratch_right)
    };
    let (mut i, mut j, mut k) = (0, middle, 0);
    while i < middle && j < m {
        if values[j] < values[i] {
            // values[j] is smaller than every value left in the left half.
            count += (middle - i) as u64;
            scratch[k] = values[j];
            j += 1;
        } else {
            scratch[k] = values[i];
            i += 1;
        }
        k += 1;
    }
    scratch[k..k + middle - i].copy_from_slice(&values[i..middle]);
    let k = k + middle - i;
    scratch[k..k + m - j].copy_from_slice(&values[j..m]);
    values.copy_from_slice(&scratch[..m]);
    count
}

/// The comparison of two RDM vectors; `None` when one is constant (every comparison but
/// tau-a divides by its spread).
pub fn rdm_correlation(a: &[f64], b: &[f64], compare: RdmComparison) -> Option<f64> {
    Some(compare_prepared(
        &prepare(a.to_vec(), compare)?,
        &prepare(b.to_vec(), compare)?,
        compare,
    ))
}

/// An RDM vector ready for [`compare_prepared`]: unit-norm ranks (Spearman), unit-norm centred
/// values (Pearson), unit-norm values (cosine), scaled centred ranks (rho-a), or the values
/// themselves (tau-a); `None` when constant.
fn prepare(rdm: Vec<f64>, compare: RdmComparison) -> Option<Vec<f64>> {
    match compare {
        RdmComparison::Spearman => unit(average_ranks(&rdm), true),
        RdmComparison::Pearson => unit(rdm, true),
        RdmComparison::Cosine => unit(rdm, false),
        RdmComparison::RhoA => rho_a_scaled(&rdm),
        RdmComparison::TauA => rdm.iter().any(|v| *v != rdm[0]).then_some(rdm),
    }
}

/// Two prepared RDMs compared: their dot product, or Kendall's tau-a.
fn compare_prepared(a: &[f64], b: &[f64], compare: RdmComparison) -> f64 {
    match compare {
        RdmComparison::TauA => kendall_tau_a(a, b),
        _ => dot(a, b),
    }
}

/// One layer's RDM, ready to compare (`None` when every distance is the same). Every
/// comparison but tau-a is then a dot product ([`crate::significance`] uses that).
pub(crate) fn prepared(
    layer: &Layer,
    kind: RdmKind,
    compare: RdmComparison,
) -> Result<Option<Vec<f64>>> {
    Ok(prepare(rdm_vector(layer, kind)?, compare))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// RSA of two layers over the same examples (`None` when an RDM is constant).
pub fn rsa(x: &Layer, y: &Layer, kind: RdmKind, compare: RdmComparison) -> Result<Option<f64>> {
    check_examples(check_same_examples([x, y])?)?;
    Ok(
        match (prepared(x, kind, compare)?, prepared(y, kind, compare)?) {
            (Some(a), Some(b)) => Some(compare_prepared(&a, &b, compare)),
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
                (Some(x), Some(y)) => Some(compare_prepared(x, y, compare)),
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

    /// Kendall's tau-a by its definition, over every pair.
    fn tau_a_by_pairs(a: &[f64], b: &[f64]) -> f64 {
        let m = a.len();
        let mut sum = 0.0;
        for i in 0..m {
            for j in i + 1..m {
                let s = (a[i] - a[j]).signum() * (b[i] - b[j]).signum();
                if a[i] != a[j] && b[i] != b[j] {
                    sum += s;
                }
            }
        }
        sum / (m * (m - 1) / 2) as f64
    }

    #[test]
    fn tau_a_counts_pairs_as_its_definition_with_and_without_ties() {
        let mut state = 12345u64;
        let mut next = |levels: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % levels) as f64
        };
        for (m, levels) in [(2, 2), (7, 3), (50, 4), (200, 1000), (301, 5)] {
            let a: Vec<f64> = (0..m).map(|_| next(levels)).collect();
            let b: Vec<f64> = (0..m).map(|_| next(levels)).collect();
            let fast = kendall_tau_a(&a, &b);
            let slow = tau_a_by_pairs(&a, &b);
            assert!((fast - slow).abs() < 1e-12, "m {m}: {fast} vs {slow}");
        }
        assert_eq!(kendall_tau_a(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert_eq!(kendall_tau_a(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
    }

    #[test]
    fn rho_a_is_spearman_without_ties_and_smaller_with_them() {
        let a = [0.3, 1.2, 0.1, 2.5, 0.7, 1.9];
        let b = [0.2, 0.9, 0.5, 2.0, 0.4, 2.2];
        let spearman = rdm_correlation(&a, &b, RdmComparison::Spearman).unwrap();
        let rho_a = rdm_correlation(&a, &b, RdmComparison::RhoA).unwrap();
        assert!((spearman - rho_a).abs() < 1e-12, "{spearman} {rho_a}");
        // A categorical model RDM: ties shrink rho-a below Spearman's (which rescales them).
        let model = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let spearman = rdm_correlation(&model, &b, RdmComparison::Spearman).unwrap();
        let rho_a = rdm_correlation(&model, &b, RdmComparison::RhoA).unwrap();
        assert!(rho_a < spearman && rho_a > 0.0, "{rho_a} {spearman}");
        // The cosine is uncentred: a constant added to one RDM changes it.
        let cosine = rdm_correlation(&a, &b, RdmComparison::Cosine).unwrap();
        let shifted: Vec<f64> = a.iter().map(|v| v + 5.0).collect();
        let moved = rdm_correlation(&shifted, &b, RdmComparison::Cosine).unwrap();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let direct = dot(&a, &b) / (norm(&a) * norm(&b));
        assert!((cosine - direct).abs() < 1e-12);
        assert!((cosine - moved).abs() > 1e-3);
    }
}
