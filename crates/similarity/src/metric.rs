//! The measures by name, and one entry point that computes a layer x layer matrix for any of
//! them (used by the CLI, the benchmarks and users who pick measures at run time).

use std::fmt;
use std::str::FromStr;

use crate::cca::{cca_family_matrix, check_shape, CcaMeasure, PwccaConvention, SvdReduction};
use crate::cknna::{cknna_matrix, CknnaOptions};
use crate::covariance_stream::CovarianceAccumulator;
use crate::error::{Result, SimilarityError};
use crate::hsic::HsicEstimator;
use crate::kernel_cka::rbf_cka_matrix;
use crate::layer::{check_same_examples, Layer};
use crate::linear_cka::linear_cka_matrix;
use crate::matrix::SimilarityMatrix;
use crate::minibatch::MinibatchCka;
use crate::mutual_knn::mutual_knn_matrix;
use crate::rsa::{rsa_matrix, RdmComparison, RdmKind};
use crate::shape_metric::shape_angular_matrix;

/// A similarity measure, named as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Linear CKA, biased HSIC (Kornblith et al. 2019).
    LinearCka,
    /// Linear CKA, unbiased HSIC (Song et al. 2012).
    LinearCkaDebiased,
    /// RBF CKA, biased HSIC.
    RbfCka,
    /// RBF CKA, unbiased HSIC.
    RbfCkaDebiased,
    /// Minibatch linear CKA with unbiased HSIC per batch (Nguyen et al. 2021).
    MinibatchCka,
    /// Mean canonical correlation.
    Cca,
    /// SVCCA (Raghu et al. 2017).
    Svcca,
    /// PWCCA (Morcos et al. 2018).
    Pwcca,
    /// Orthogonal Procrustes distance (Ding et al. 2021).
    Procrustes,
    /// Mutual k-nearest-neighbour alignment (Huh et al. 2024).
    MutualKnn,
    /// CKA on the pairs that are nearest neighbours in both layers (Huh et al. 2024).
    Cknna,
    /// Rank correlation of representational dissimilarity matrices (Kriegeskorte et al. 2008).
    Rsa,
    /// The angular shape distance (Williams et al. 2021); a distance, 0 = the same shape.
    ShapeAngular,
}

impl Metric {
    /// Every metric, in the order the CLI lists them.
    pub const ALL: [Metric; 13] = [
        Metric::LinearCka,
        Metric::LinearCkaDebiased,
        Metric::RbfCka,
        Metric::RbfCkaDebiased,
        Metric::MinibatchCka,
        Metric::Cca,
        Metric::Svcca,
        Metric::Pwcca,
        Metric::Procrustes,
        Metric::MutualKnn,
        Metric::Cknna,
        Metric::Rsa,
        Metric::ShapeAngular,
    ];

    /// The metric's name (`linear_cka`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Metric::LinearCka => "linear_cka",
            Metric::LinearCkaDebiased => "linear_cka_debiased",
            Metric::RbfCka => "rbf_cka",
            Metric::RbfCkaDebiased => "rbf_cka_debiased",
            Metric::MinibatchCka => "minibatch_cka",
            Metric::Cca => "cca",
            Metric::Svcca => "svcca",
            Metric::Pwcca => "pwcca",
            Metric::Procrustes => "procrustes",
            Metric::MutualKnn => "mutual_knn",
            Metric::Cknna => "cknna",
            Metric::Rsa => "rsa",
            Metric::ShapeAngular => "shape_angular",
        }
    }

    /// Whether the measure is a distance (0 = the same), so that smaller is more similar.
    pub fn is_distance(self) -> bool {
        matches!(self, Metric::Procrustes | Metric::ShapeAngular)
    }

    /// The fewest examples repsim computes the metric for: 4 for every metric (with 2 or 3
    /// examples any two layers look alike: two points always lie on a line).
    pub fn min_examples(self) -> usize {
        crate::conditioning::MIN_EXAMPLES
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = SimilarityError;

    fn from_str(s: &str) -> Result<Self> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| SimilarityError::InvalidParameter {
                name: "metric",
                message: format!(
                    "unknown metric `{s}`; known metrics: {}",
                    Metric::ALL.map(Metric::name).join(", ")
                ),
            })
    }
}

/// Parameters of the measures.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricOptions {
    /// Batch size of minibatch CKA (Nguyen et al. use 256).
    pub batch_size: usize,
    /// RBF bandwidth threshold `t`: `sigma = t * sqrt(median squared distance)`.
    pub rbf_threshold: f64,
    /// SVCCA's reduction of each side.
    pub svd_reduction: SvdReduction,
    /// PWCCA's weighting convention.
    pub pwcca_convention: PwccaConvention,
    /// Neighbours per example of `mutual_knn` and `cknna` (the paper's 10).
    pub knn_k: usize,
    /// `cknna`: divide rows by their L2 norm first (the authors' pipeline; off: the features
    /// as given).
    pub cknna_normalize: bool,
    /// `cknna`'s HSIC estimator (unbiased: self excluded from the neighbours).
    pub cknna_estimator: HsicEstimator,
    /// `rsa`'s dissimilarity.
    pub rdm: RdmKind,
    /// How `rsa` compares two RDMs.
    pub rsa_compare: RdmComparison,
    /// `shape_angular`'s alpha in [0, 1]: 1 no whitening (Procrustes), 0 full (CCA).
    pub shape_alpha: f64,
}

impl Default for MetricOptions {
    fn default() -> Self {
        MetricOptions {
            batch_size: 256,
            rbf_threshold: 1.0,
            svd_reduction: SvdReduction::default(),
            pwcca_convention: PwccaConvention::default(),
            knn_k: crate::mutual_knn::DEFAULT_K,
            cknna_normalize: false,
            cknna_estimator: HsicEstimator::Unbiased,
            rdm: RdmKind::default(),
            rsa_compare: RdmComparison::default(),
            shape_alpha: 1.0,
        }
    }
}

/// The `metric` matrix between every layer of A (rows) and of B (columns). Pass the same
/// slice twice to compare a model with itself (each layer's Gram is then computed once).
pub fn similarity_matrix(
    metric: Metric,
    layers_a: &[Layer],
    layers_b: &[Layer],
    options: &MetricOptions,
) -> Result<SimilarityMatrix> {
    match metric {
        Metric::LinearCka => linear_cka_matrix(layers_a, layers_b, HsicEstimator::Biased),
        Metric::LinearCkaDebiased => linear_cka_matrix(layers_a, layers_b, HsicEstimator::Unbiased),
        Metric::RbfCka => rbf_cka_matrix(
            layers_a,
            layers_b,
            options.rbf_threshold,
            HsicEstimator::Biased,
        ),
        Metric::RbfCkaDebiased => rbf_cka_matrix(
            layers_a,
            layers_b,
            options.rbf_threshold,
            HsicEstimator::Unbiased,
        ),
        Metric::MinibatchCka => minibatch_cka_matrix(layers_a, layers_b, options.batch_size),
        Metric::Cca => cca_family_matrix(CcaMeasure::Cca, layers_a, layers_b),
        Metric::Svcca => {
            cca_family_matrix(CcaMeasure::Svcca(options.svd_reduction), layers_a, layers_b)
        }
        Metric::Pwcca => cca_family_matrix(
            CcaMeasure::Pwcca(options.pwcca_convention),
            layers_a,
            layers_b,
        ),
        Metric::Procrustes => cca_family_matrix(CcaMeasure::Procrustes, layers_a, layers_b),
        Metric::MutualKnn => mutual_knn_matrix(layers_a, layers_b, options.knn_k),
        Metric::Cknna => cknna_matrix(
            layers_a,
            layers_b,
            &CknnaOptions {
                k: options.knn_k,
                estimator: options.cknna_estimator,
                normalize: options.cknna_normalize,
            },
        ),
        Metric::Rsa => rsa_matrix(layers_a, layers_b, options.rdm, options.rsa_compare),
        Metric::ShapeAngular => shape_angular_matrix(layers_a, layers_b, options.shape_alpha),
    }
}

/// Every metric of `metrics`, in order. The CCA-family metrics share one pass over the data:
/// each layer's covariance statistics and every cross scatter are computed once for all of them.
pub fn similarity_matrices(
    metrics: &[Metric],
    layers_a: &[Layer],
    layers_b: &[Layer],
    options: &MetricOptions,
) -> Result<Vec<SimilarityMatrix>> {
    let cca_measure = |metric: Metric| match metric {
        Metric::Cca => Some(CcaMeasure::Cca),
        Metric::Svcca => Some(CcaMeasure::Svcca(options.svd_reduction)),
        Metric::Pwcca => Some(CcaMeasure::Pwcca(options.pwcca_convention)),
        Metric::Procrustes => Some(CcaMeasure::Procrustes),
        _ => None,
    };
    // Shared feature-space statistics pay when every layer has fewer features than examples;
    // otherwise SVCCA and Procrustes run in example space, each on its own.
    let narrow = layers_a
        .iter()
        .chain(layers_b)
        .all(|l| l.num_features() < l.num_examples());
    let shared = narrow
        && metrics
            .iter()
            .filter(|m| cca_measure(**m).is_some())
            .count()
            > 1;
    // With `shared`, every CCA metric reads these statistics: one pass over the data, after
    // every measure's shape requirements are checked.
    // Every CCA measure's shape requirements are checked before any is computed: a PWCCA
    // that cannot run must not wait for an SVCCA before it.
    for m in metrics.iter().filter_map(|m| cca_measure(*m)) {
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
    metrics
        .iter()
        .map(|&metric| match (cca_measure(metric), &statistics) {
            (Some(measure), Some(statistics)) => statistics.finish(measure),
            _ => similarity_matrix(metric, layers_a, layers_b, options),
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
    let mut matrix = cka.finish()?.with_parameter("batch_size", batch_size);
    let left_out = n % batch_size;
    if left_out > 0 {
        matrix.warnings.push(format!(
            "the last {left_out} of {n} examples do not fill a batch of {batch_size} and were left out"
        ));
    }
    Ok(matrix)
}

/// Checks a minibatch size against the number of examples.
pub fn check_batch_size(batch_size: usize, n: usize) -> Result<()> {
    let reason = if batch_size < 4 {
        "the unbiased HSIC of each batch needs at least 4 examples"
    } else if batch_size > n {
        "the batch size is larger than the number of examples"
    } else {
        return Ok(());
    };
    Err(SimilarityError::BadBatchSize {
        batch_size,
        n,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>().unwrap(), m);
        }
        let err = "cka".parse::<Metric>().unwrap_err().to_string();
        assert!(
            err.contains("`cka`") && err.contains("minibatch_cka"),
            "{err}"
        );
    }

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
