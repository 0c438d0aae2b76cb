//! Bootstrap intervals: how much a cell's value would move with other examples from the same
//! distribution.
//!
//! - **Minibatch CKA**: batches are resampled with replacement (Efron's percentile interval),
//!   each replicate a reweighting of the per-batch HSIC terms ([`super::batches`]): no Gram is
//!   computed again.
//! - **Every other measure**: half-samples. Resampling examples *with* replacement puts copies
//!   of an example into the data, and a copy is a pair `i != j` with `x_i = x_j` in both
//!   layers: the debiased (U-statistic) HSIC counts it as a genuine pair, which is exactly the
//!   self-similarity its diagonal removal is there to exclude, so debiased CKA is pulled up;
//!   copies are also each other's nearest neighbours in both layers (mutual kNN, CKNNA) and a
//!   shared zero in both RDMs (RSA). So repsim draws `m = floor(n / 2)` examples *without*
//!   replacement (no copies), recomputes the matrix on them (jointly for A and B), and turns
//!   the replicates into an interval for `n` examples: with `theta` the full-data value and
//!   `theta*_r` the replicates,
//!
//!   ```text
//!   [lo, hi] = theta + sqrt(m / (n - m)) * (q_{a/2}(theta*) - mean(theta*), q_{1-a/2}(theta*) - mean(theta*))
//!   ```
//!
//!   The factor is the half-sample's variance correction (for a mean, a subsample of `m`
//!   without replacement has `(n - m) / m` times the variance of the full sample's mean: 1 at
//!   `m = n / 2`; McCarthy 1969, Politis and Romano 1994), and the shift by the replicates'
//!   mean removes the difference between the estimator's bias at `m` and at `n` (biased CKA
//!   is higher on fewer examples).

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, SimilarityError};
use crate::layer::Layer;
use crate::measure::{similarity_matrix, Measure};

use super::batches::BatchTerms;
use super::permutation::select_rows;
use super::summary::quantile;

/// The RNG stream of the bootstrap.
const BOOTSTRAP_STREAM: u64 = 2;

/// Fewest batches repsim resamples (a bootstrap of 1 batch has no spread).
pub const MIN_BATCHES: usize = 2;

/// Below this many batches the interval is coarse, and the matrix says so.
const FEW_BATCHES: usize = 10;

/// A bootstrap interval for every cell.
#[derive(Clone, Debug)]
pub struct Intervals {
    /// Lower ends, row-major (`None` where undefined).
    pub low: Vec<Option<f64>>,
    /// Upper ends.
    pub high: Vec<Option<f64>>,
    /// `batches` or `half-samples`.
    pub scheme: &'static str,
    /// Notes for the matrix (few batches, undefined replicates).
    pub warnings: Vec<String>,
}

/// Percentile intervals of minibatch CKA from `replicates` resamplings of its batches.
pub fn batch_intervals(
    terms: &BatchTerms,
    replicates: usize,
    confidence: f64,
    seed: u64,
) -> Result<Intervals> {
    let batches = terms.cross.len();
    if batches < MIN_BATCHES {
        return Err(SimilarityError::InvalidParameter {
            name: "--bootstrap",
            message: format!(
                "minibatch_cka's bootstrap resamples batches and the data fill {batches}; use a smaller --batch-size"
            ),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(BOOTSTRAP_STREAM);
    let cells = terms.la * terms.lb;
    let mut draws = vec![Vec::with_capacity(replicates); cells];
    for _ in 0..replicates {
        let mut weights = vec![0.0; batches];
        for _ in 0..batches {
            weights[rng.random_range(0..batches)] += 1.0;
        }
        for (c, value) in terms.weighted(&weights).into_iter().enumerate() {
            if let Some(v) = value {
                draws[c].push(v);
            }
        }
    }
    let mut warnings = Vec::new();
    if batches < FEW_BATCHES {
        warnings.push(format!(
            "the bootstrap resamples only {batches} batches: its interval is coarse (a smaller --batch-size gives more)"
        ));
    }
    let alpha = 1.0 - confidence;
    let (mut low, mut high) = (Vec::with_capacity(cells), Vec::with_capacity(cells));
    for mut values in draws {
        if values.len() * 2 < replicates || values.is_empty() {
            low.push(None);
            high.push(None);
            continue;
        }
        values.sort_by(f64::total_cmp);
        low.push(Some(quantile(&values, alpha / 2.0)));
        high.push(Some(quantile(&values, 1.0 - alpha / 2.0)));
    }
    Ok(Intervals {
        low,
        high,
        scheme: "batches",
        warnings,
    })
}

/// Half-sample intervals of any measure around `observed` (the full-data matrix, row-major).
#[allow(clippy::too_many_arguments)]
pub fn half_sample_intervals(
    measure: &Measure,
    layers_a: &[Layer],
    layers_b: &[Layer],
    observed: &[Option<f64>],
    replicates: usize,
    confidence: f64,
    seed: u64,
) -> Result<Intervals> {
    let n = layers_a[0].num_examples();
    let m = n / 2;
    if m < measure.min_examples() {
        return Err(SimilarityError::InvalidParameter {
            name: "--bootstrap",
            message: format!(
                "the bootstrap recomputes {measure} on half the examples ({m} of {n}), and it needs at least {}",
                measure.min_examples()
            ),
        });
    }
    let symmetric = std::ptr::eq(layers_a, layers_b);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(BOOTSTRAP_STREAM);
    let cells = observed.len();
    let mut draws = vec![Vec::with_capacity(replicates); cells];
    let mut undefined = 0usize;
    for _ in 0..replicates {
        let mut rows: Vec<u32> = sample(&mut rng, n, m)
            .into_iter()
            .map(|i| i as u32)
            .collect();
        rows.sort_unstable();
        let a = select_rows(layers_a, &rows);
        let matrix = if symmetric {
            similarity_matrix(measure, &a, &a)?
        } else {
            similarity_matrix(measure, &a, &select_rows(layers_b, &rows))?
        };
        for (c, value) in matrix.values.into_iter().flatten().enumerate() {
            match value {
                Some(v) => draws[c].push(v),
                None => undefined += 1,
            }
        }
    }
    let factor = (m as f64 / (n - m) as f64).sqrt();
    let alpha = 1.0 - confidence;
    let mut warnings = Vec::new();
    if undefined > 0 {
        warnings.push(format!(
            "{undefined} cell values of the half-samples were undefined (a layer without variance in the subsample) and left out of the intervals"
        ));
    }
    let (mut low, mut high) = (Vec::with_capacity(cells), Vec::with_capacity(cells));
    for (mut values, theta) in draws.into_iter().zip(observed) {
        match theta {
            Some(theta) if values.len() * 2 >= replicates && !values.is_empty() => {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                values.sort_by(f64::total_cmp);
                low.push(Some(
                    theta + factor * (quantile(&values, alpha / 2.0) - mean),
                ));
                high.push(Some(
                    theta + factor * (quantile(&values, 1.0 - alpha / 2.0) - mean),
                ));
            }
            _ => {
                low.push(None);
                high.push(None);
            }
        }
    }
    Ok(Intervals {
        low,
        high,
        scheme: "half-samples",
        warnings,
    })
}
