//! Is a similarity real? Permutation p-values and bootstrap intervals for every cell of a
//! matrix, for every measure.
//!
//! | module | what |
//! | --- | --- |
//! | [`permutation`] | the permutation null of a whole matrix, the same draws for every cell |
//! | [`bootstrap`] | bootstrap intervals: batches for minibatch CKA, half-samples otherwise |
//! | [`pair_matrices`] | the Gram measures and RSA as inner products of `n x n` matrices, permuted |
//! | [`batches`] | minibatch CKA's per-batch HSIC terms |
//! | [`summary`] | quantiles and the permutation p-value |
//!
//! For a similarity (every measure but the two distances) the p-value is
//! `(1 + #{k : null_k >= observed}) / (1 + P)` (Phipson and Smyth 2010: never 0, exact under
//! the null); for a distance (`procrustes`, `shape_angular`, where 0 is "the same") the count is
//! of `null_k <= observed`. The calibrated score (Cui et al. 2022 and the 2026 calibration
//! studies) is the value minus the null's mean: for a distance, negative is closer than chance.

pub mod batches;
pub mod bootstrap;
pub mod pair_matrices;
pub mod permutation;
pub mod summary;

use crate::error::{Result, SimilarityError};
use crate::layer::Layer;
use crate::matrix::SimilarityMatrix;
use crate::measure::Measure;

pub use bootstrap::Intervals;
pub use permutation::{permutation_null, NullDistribution};
pub use summary::{p_value, quantile};

/// What to compute on top of a matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct SignificanceOptions {
    /// Permutation draws (`P`); 0 for none.
    pub permutations: usize,
    /// Bootstrap replicates (`B`); 0 for none.
    pub bootstrap: usize,
    /// Coverage of the bootstrap interval, in (0, 1).
    pub confidence: f64,
    /// Seed of the permutations and the resampling.
    pub seed: u64,
    /// Also report the value minus the null's mean.
    pub calibrated: bool,
}

impl Default for SignificanceOptions {
    fn default() -> Self {
        SignificanceOptions {
            permutations: 0,
            bootstrap: 0,
            confidence: 0.95,
            seed: 0,
            calibrated: false,
        }
    }
}

impl SignificanceOptions {
    /// Whether anything is asked for.
    pub fn any(&self) -> bool {
        self.permutations > 0 || self.bootstrap > 0
    }

    /// Checks the values (the confidence in (0, 1), `--calibrated` only with permutations).
    pub fn check(&self) -> Result<()> {
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(SimilarityError::InvalidParameter {
                name: "--ci",
                message: format!("must be in (0, 1), got {}", self.confidence),
            });
        }
        if self.calibrated && self.permutations == 0 {
            return Err(SimilarityError::InvalidParameter {
                name: "--calibrated",
                message: "subtracts the permutation null's mean: give --permutations P".into(),
            });
        }
        Ok(())
    }
}

/// Adds p-values, null summaries and intervals, as `options` asks, to `matrix`, which is its
/// measure of `layers_a` against `layers_b`.
pub fn assess(
    matrix: &mut SimilarityMatrix,
    layers_a: &[Layer],
    layers_b: &[Layer],
    options: &SignificanceOptions,
) -> Result<()> {
    options.check()?;
    let measure = matrix.measure;
    let (rows, cols) = matrix.shape();
    let shape = |flat: Vec<Option<f64>>| -> Vec<Vec<Option<f64>>> {
        flat.chunks(cols.max(1))
            .take(rows)
            .map(|r| r.to_vec())
            .collect()
    };
    let values: Vec<Option<f64>> = matrix.values.iter().flatten().copied().collect();
    // Minibatch CKA's batch Grams serve its null and its bootstrap: computed once.
    let terms = if let Measure::MinibatchCka { batch_size } = measure {
        Some(batches::batch_terms(
            layers_a,
            layers_b,
            batch_size,
            options.permutations,
            options.seed,
        )?)
    } else {
        None
    };
    if options.permutations > 0 {
        let null = match &terms {
            Some(terms) => NullDistribution::of_batches(terms),
            None => permutation_null(
                &measure,
                layers_a,
                layers_b,
                options.permutations,
                options.seed,
            )?,
        };
        let distance = measure.is_distance();
        let (mut p, mut mean, mut p95, mut calibrated) = (vec![], vec![], vec![], vec![]);
        for (c, value) in values.iter().enumerate() {
            let mut draws = null.cell(c);
            match (value, null.observed[c]) {
                (Some(value), Some(same_path)) if !draws.is_empty() => {
                    draws.sort_by(f64::total_cmp);
                    let average = draws.iter().sum::<f64>() / draws.len() as f64;
                    p.push(Some(p_value(same_path, &draws, distance)));
                    mean.push(Some(average));
                    p95.push(Some(quantile(&draws, 0.95)));
                    calibrated.push(Some(value - average));
                }
                _ => {
                    for v in [&mut p, &mut mean, &mut p95, &mut calibrated] {
                        v.push(None);
                    }
                }
            }
        }
        let s = &mut matrix.significance;
        s.p_value = Some(shape(p));
        s.null_mean = Some(shape(mean));
        s.null_p95 = Some(shape(p95));
        if options.calibrated {
            s.calibrated = Some(shape(calibrated));
        }
        matrix.set_parameter("permutations", options.permutations);
        matrix.set_parameter("permuted", null.scheme);
        matrix.set_parameter("seed", options.seed);
    }
    if options.bootstrap > 0 {
        let intervals = if let Some(terms) = &terms {
            bootstrap::batch_intervals(terms, options.bootstrap, options.confidence, options.seed)?
        } else {
            bootstrap::half_sample_intervals(
                &measure,
                layers_a,
                layers_b,
                &values,
                options.bootstrap,
                options.confidence,
                options.seed,
            )?
        };
        matrix.significance.ci_low = Some(shape(intervals.low));
        matrix.significance.ci_high = Some(shape(intervals.high));
        matrix.warnings.extend(intervals.warnings);
        matrix.set_parameter("bootstrap", options.bootstrap);
        matrix.set_parameter("resampled", intervals.scheme);
        matrix.set_parameter("ci", options.confidence);
        matrix.set_parameter("seed", options.seed);
    }
    Ok(())
}
