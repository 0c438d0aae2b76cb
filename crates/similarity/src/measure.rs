//! [`Measure`], a measure with its parameters (defined in `repsim-results`, which names it on
//! the command line and in files), and one entry point that computes a layer x layer matrix
//! for any of them (used by the CLI, the Tracker, the experiments, the benchmarks and users who
//! pick measures at run time).

pub use repsim_results::measure::{Measure, MEASURE_NAMES};

/// Checks a minibatch size against the number of examples (defined with minibatch CKA).
pub use crate::measures::cka::minibatch::check_batch_size;

use crate::error::Result;
use crate::layer::{check_same_examples, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::cca::{cca_family_matrix, check_shape};
use crate::measures::cka::kernel_cka::rbf_cka_matrix;
use crate::measures::cka::linear_cka::linear_cka_matrix;
use crate::measures::cka::minibatch::MinibatchCka;
use crate::measures::neighbours::cknna::cknna_matrix;
use crate::measures::neighbours::mutual_knn::mutual_knn_matrix;
use crate::measures::rsa::rsa_matrix;
use crate::measures::shape_metric::shape_angular_matrix;
use crate::stream::covariance_stream::CovarianceAccumulator;

/// The `measure` matrix between every layer of A (rows) and of B (columns). Pass the same
/// slice twice to compare a model with itself (each layer's Gram is then computed once).
pub fn similarity_matrix(
    measure: &Measure,
    layers_a: &[Layer],
    layers_b: &[Layer],
) -> Result<SimilarityMatrix> {
    measure.validate()?;
    match *measure {
        Measure::LinearCka { estimator } => linear_cka_matrix(layers_a, layers_b, estimator),
        Measure::RbfCka {
            threshold,
            estimator,
        } => rbf_cka_matrix(layers_a, layers_b, threshold, estimator),
        Measure::MinibatchCka { batch_size } => {
            minibatch_cka_matrix(layers_a, layers_b, batch_size)
        }
        Measure::Cca(cca) => cca_family_matrix(cca, layers_a, layers_b),
        Measure::MutualKnn { k } => mutual_knn_matrix(layers_a, layers_b, k),
        Measure::Cknna(params) => cknna_matrix(layers_a, layers_b, &params),
        Measure::Rsa { rdm, compare } => rsa_matrix(layers_a, layers_b, rdm, compare),
        Measure::ShapeAngular { alpha, centered } => {
            shape_angular_matrix(layers_a, layers_b, alpha, centered)
        }
    }
}

/// Every measure of `measures`, in order. The CCA-family measures share one pass over the
/// data: each layer's covariance statistics and every cross scatter are computed once for all
/// of them.
pub fn similarity_matrices(
    measures: &[Measure],
    layers_a: &[Layer],
    layers_b: &[Layer],
) -> Result<Vec<SimilarityMatrix>> {
    for measure in measures {
        measure.validate()?;
    }
    let cca_measure = |measure: &Measure| measure.cca_measure();
    // Shared feature-space statistics pay when every layer has fewer features than examples;
    // otherwise SVCCA and Procrustes run in example space, each on its own.
    let narrow = layers_a
        .iter()
        .chain(layers_b)
        .all(|l| l.num_features() < l.num_examples());
    let shared = narrow && measures.iter().filter(|m| cca_measure(m).is_some()).count() > 1;
    // With `shared`, every CCA metric reads these statistics: one pass over the data, after
    // every measure's shape requirements are checked.
    // Every CCA measure's shape requirements are checked before any is computed: a PWCCA
    // that cannot run must not wait for an SVCCA before it.
    for m in measures.iter().filter_map(cca_measure) {
        for layer in layers_a.iter().chain(layers_b) {
            check_shape(&layer.name, layer.num_examples(), layer.num_features(), m)?;
        }
    }
    let statistics = if shared {
        // Exact power-of-two scaling, as `cca_family_matrix` does on its own path (see
        // `crate::conditioning`): every measure of the family is scale-invariant.
        let scale = |layers: &[Layer]| {
            layers
                .iter()
                .map(crate::conditioning::scale_to_unit)
                .collect::<Result<Vec<_>>>()
        };
        let scaled_a = scale(layers_a)?;
        let scaled_b = if std::ptr::eq(layers_a, layers_b) {
            None
        } else {
            Some(scale(layers_b)?)
        };
        let mut accumulator = CovarianceAccumulator::new();
        accumulator.update(&scaled_a, scaled_b.as_deref().unwrap_or(&scaled_a))?;
        Some(accumulator)
    } else {
        None
    };
    measures
        .iter()
        .map(|measure| match (cca_measure(measure), &statistics) {
            (Some(cca), Some(statistics)) => statistics.finish(cca),
            _ => similarity_matrix(measure, layers_a, layers_b),
        })
        .collect()
}

/// Minibatch CKA over consecutive batches of `batch_size` examples of whole-data layers.
///
/// As in Nguyen et al. (2021) and their reference code, only full batches are used: the last
/// `n % batch_size` examples are left out, with a warning in the matrix.
pub fn minibatch_cka_matrix(
    layers_a: &[Layer],
    layers_b: &[Layer],
    batch_size: usize,
) -> Result<SimilarityMatrix> {
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    check_batch_size(batch_size, n)?;
    let symmetric = std::ptr::eq(layers_a, layers_b);
    let mut cka = MinibatchCka::new();
    for start in (0..=n - batch_size).step_by(batch_size) {
        let batch_a: Vec<Layer> = layers_a.iter().map(|l| l.rows(start, batch_size)).collect();
        if symmetric {
            cka.update(&batch_a, &batch_a)?;
        } else {
            let batch_b: Vec<Layer> = layers_b.iter().map(|l| l.rows(start, batch_size)).collect();
            cka.update(&batch_a, &batch_b)?;
        }
    }
    let mut matrix = cka.finish()?;
    let left_out = n % batch_size;
    if left_out > 0 {
        matrix.warnings.push(format!(
            "the last {left_out} of {n} examples do not fill a batch of {batch_size} and were left out"
        ));
    }
    Ok(matrix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_are_checked() {
        assert!(check_batch_size(256, 1000).is_ok());
        assert!(check_batch_size(2048, 1000)
            .unwrap_err()
            .to_string()
            .contains("larger"));
        assert!(check_batch_size(3, 1000).is_err());
    }
}
