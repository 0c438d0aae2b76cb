//! [`Comparison`], the one comparison driver of repsim: batches of two sides' layers go in,
//! one matrix per measure comes out.
//!
//! Each measure is fed the way it is defined:
//! - **minibatch CKA** (Nguyen et al. 2021) folds every batch into its HSIC sums as it comes
//!   (`CKA = sum_b HSIC_1(K_b, L_b) / sqrt(sum_b HSIC_1(K_b, K_b) sum_b HSIC_1(L_b, L_b))`);
//!   batches must hold its batch size, and a shorter last batch is left out with a warning, as
//!   in the paper's code;
//! - with [`WholeData::Stream`], linear CKA (biased HSIC) and the CCA family are computed from
//!   feature-space sums ([`CovarianceAccumulator`]) added batch by batch: memory bounded by the
//!   layers' widths, never by the number of examples; other measures are refused;
//! - with [`WholeData::Gather`], every other measure needs all examples at once (Grams,
//!   neighbours, RDMs, SVDs): their layers are gathered on the device, batch after batch, and
//!   computed at the end; nothing is gathered when no measure needs it.
//!
//! Whole-data layers go through the same driver ([`similarity_matrices`] cuts them into
//! minibatch CKA's batches), the probing pass of `repsim-train` feeds it one probe batch at a
//! time, and the shards ([`crate::shard::stream_statistics`]) keep its sums as their state.

use burn::tensor::Tensor;

use repsim_results::measure::Measure;

use crate::error::{Result, SimilarityError};
use crate::layer::{check_same_examples, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::cca::{cca_family_matrix, check_shape};
use crate::measures::cka::hsic::HsicEstimator;
use crate::measures::cka::kernel_cka::rbf_cka_matrix;
use crate::measures::cka::linear_cka::linear_cka_matrix;
use crate::measures::cka::minibatch::{check_batch_size, MinibatchCka};
use crate::measures::neighbours::cknna::cknna_matrix;
use crate::measures::neighbours::mutual_knn::mutual_knn_matrix;
use crate::measures::rsa::rsa_matrix;
use crate::measures::shape_metric::shape_angular_matrix;
use crate::stream::covariance_stream::CovarianceAccumulator;

/// How a [`Comparison`] treats the measures other than minibatch CKA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WholeData {
    /// Gather their layers on the device and compute them on all examples at the end: any
    /// measure, memory growing with the number of examples.
    Gather,
    /// Add each batch to feature-space sums: linear CKA (biased HSIC) and the CCA family only,
    /// memory bounded by the layers' widths.
    Stream,
}

/// Whether `measure` can be computed from feature-space sums (linear CKA with the biased HSIC,
/// CCA, SVCCA, PWCCA, Procrustes).
pub fn uses_covariance(measure: &Measure) -> bool {
    matches!(
        measure,
        Measure::LinearCka {
            estimator: HsicEstimator::Biased
        } | Measure::Cca(_)
    )
}

/// Why `measure` cannot be computed batch by batch (`None`: it can).
pub fn why_not_streamable(measure: &Measure) -> Option<&'static str> {
    match measure {
        Measure::MinibatchCka { .. } => None,
        m if uses_covariance(m) => None,
        Measure::LinearCka { .. } | Measure::RbfCka { .. } => {
            Some("needs the Gram of every pair of examples at once")
        }
        Measure::MutualKnn { .. } | Measure::Cknna(_) => {
            Some("needs every example's nearest neighbours among all examples")
        }
        Measure::Rsa { .. } => Some("needs the dissimilarity of every pair of examples at once"),
        Measure::ShapeAngular { .. } => {
            Some("aligns every example at once (its whitened SVD is not computed from sums)")
        }
        Measure::Cca(_) => None,
    }
}

/// What minibatch CKA does with a last batch shorter than its batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShortLastBatch {
    /// Leave it out, with a warning in the matrix, as Nguyen et al.'s code does (the default,
    /// and what every whole-data and file comparison of repsim does).
    #[default]
    LeaveOut,
    /// Count it as a minibatch of its own if it holds at least 4 examples (the unbiased HSIC
    /// needs 4); the matrix records the nominal batch size. `repsim_train::compare()` does
    /// this, so that 500 probe images in batches of 256 are all compared.
    Count,
}

/// Refuses the measures that need every example at once, each with its reason: they cannot
/// `be_done` ("be computed batch by batch", "be sharded"); minibatch CKA and the feature-space
/// measures can.
pub fn refuse_unstreamable(measures: &[Measure], be_done: &str) -> Result<()> {
    let refused: Vec<String> = measures
        .iter()
        .filter_map(|m| why_not_streamable(m).map(|why| format!("{} {why}", m.name())))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(SimilarityError::InvalidParameter {
        name: "--metric",
        message: format!(
            "{}, so cannot {be_done}: use minibatch_cka (or linear_cka, cca, svcca, pwcca, procrustes)",
            refused.join("; ")
        ),
    })
}

/// Minibatch CKA's running sums.
struct MinibatchSums {
    cka: MinibatchCka,
    batch_size: usize,
    short_last: ShortLastBatch,
    /// Examples of a last batch shorter than `batch_size` (left out or counted).
    short: usize,
    /// Examples left out.
    left_out: usize,
}

/// One side's layers, batch after batch, for the whole-data measures.
struct Gathered {
    names: Vec<String>,
    batches: Vec<Vec<Tensor<2>>>,
}

impl Gathered {
    fn new(layers: &[Layer]) -> Self {
        Gathered {
            names: layers.iter().map(|l| l.name.clone()).collect(),
            batches: layers.iter().map(|_| Vec::new()).collect(),
        }
    }

    fn push(&mut self, layers: &[Layer]) {
        for (parts, layer) in self.batches.iter_mut().zip(layers) {
            parts.push(layer.matrix.clone());
        }
    }

    fn into_layers(self) -> Vec<Layer> {
        self.names
            .into_iter()
            .zip(self.batches)
            .map(|(name, mut parts)| Layer {
                name,
                // One batch (whole-data layers): the tensor itself, not a copy.
                matrix: if parts.len() == 1 {
                    parts.swap_remove(0)
                } else {
                    Tensor::cat(parts, 0)
                },
            })
            .collect()
    }
}

/// The layers of the first batch: every later batch must give the same ones.
struct Sides {
    a: Vec<String>,
    /// `None`: B is A.
    b: Option<Vec<String>>,
}

/// A comparison of every layer of A (rows) with every layer of B (columns) under several
/// measures, fed one batch of examples at a time; see the module docs.
pub struct Comparison {
    measures: Vec<Measure>,
    mode: WholeData,
    minibatch: Option<MinibatchSums>,
    covariance: Option<CovarianceAccumulator>,
    /// Per side, for the measures computed on all examples (`None` until the first batch, and
    /// when no measure needs them).
    gathered: Option<(Gathered, Option<Gathered>)>,
    sides: Option<Sides>,
    n_examples: usize,
}

impl Comparison {
    /// A comparison under `measures` (each validated; with [`WholeData::Stream`], measures
    /// that need every example at once are refused, naming them).
    pub fn new(measures: &[Measure], mode: WholeData) -> Result<Self> {
        if measures.is_empty() {
            return Err(SimilarityError::InvalidParameter {
                name: "--metric",
                message: "no measure to compute".into(),
            });
        }
        for measure in measures {
            measure.validate()?;
        }
        let minibatch_count = measures
            .iter()
            .filter(|m| matches!(m, Measure::MinibatchCka { .. }))
            .count();
        if minibatch_count > 1 {
            return Err(SimilarityError::InvalidParameter {
                name: "--metric",
                message: format!(
                    "minibatch_cka is listed {minibatch_count} times: one comparison reads its batches once, so list it once"
                ),
            });
        }
        if mode == WholeData::Stream {
            refuse_unstreamable(measures, "be computed batch by batch")?;
        }
        let minibatch = measures.iter().find_map(|m| match m {
            Measure::MinibatchCka { batch_size } => Some(MinibatchSums {
                cka: MinibatchCka::new(),
                batch_size: *batch_size,
                short_last: ShortLastBatch::LeaveOut,
                short: 0,
                left_out: 0,
            }),
            _ => None,
        });
        let covariance = (mode == WholeData::Stream && measures.iter().any(uses_covariance))
            .then(CovarianceAccumulator::new);
        Ok(Comparison {
            measures: measures.to_vec(),
            mode,
            minibatch,
            covariance,
            gathered: None,
            sides: None,
            n_examples: 0,
        })
    }

    /// This comparison with minibatch CKA treating a shorter last batch as `short_last` says.
    pub fn with_short_last_batch(mut self, short_last: ShortLastBatch) -> Self {
        if let Some(minibatch) = &mut self.minibatch {
            minibatch.short_last = short_last;
        }
        self
    }

    /// The measures, in the order their matrices come out.
    pub fn measures(&self) -> &[Measure] {
        &self.measures
    }

    /// Examples fed so far.
    pub fn n_examples(&self) -> usize {
        self.n_examples
    }

    /// Whether some measure gathers every example on the device.
    fn gathers(&self) -> bool {
        self.mode == WholeData::Gather
            && self
                .measures
                .iter()
                .any(|m| !matches!(m, Measure::MinibatchCka { .. }))
    }

    /// Adds one batch: the same examples through A's layers and B's (`None`: B is A). Every
    /// batch must give the layers of the first, each with the batch's number of rows.
    pub fn update(&mut self, layers_a: &[Layer], layers_b: Option<&[Layer]>) -> Result<()> {
        let len = check_same_examples(layers_a.iter().chain(layers_b.into_iter().flatten()))?;
        self.check_sides(layers_a, layers_b)?;
        let side_b = layers_b.unwrap_or(layers_a);
        if let Some(minibatch) = &mut self.minibatch {
            if minibatch.short > 0 {
                return Err(SimilarityError::InvalidParameter {
                    name: "batches",
                    message: format!(
                        "a batch of {len} examples came after a shorter one of {}: minibatch CKA takes batches of {} and only the last may be shorter",
                        minibatch.short, minibatch.batch_size
                    ),
                });
            }
            if len == minibatch.batch_size {
                minibatch.cka.update(layers_a, side_b)?;
            } else if len < minibatch.batch_size {
                minibatch.short = len;
                if minibatch.short_last == ShortLastBatch::Count && len >= 4 {
                    minibatch.cka.update(layers_a, side_b)?;
                } else {
                    minibatch.left_out = len;
                }
            } else {
                return Err(SimilarityError::InvalidParameter {
                    name: "batches",
                    message: format!(
                        "a batch of {len} examples for minibatch CKA's batches of {}",
                        minibatch.batch_size
                    ),
                });
            }
        }
        if let Some(covariance) = &mut self.covariance {
            covariance.update(layers_a, side_b)?;
        }
        if self.gathers() {
            let (a, b) = self
                .gathered
                .get_or_insert_with(|| (Gathered::new(layers_a), layers_b.map(Gathered::new)));
            a.push(layers_a);
            if let (Some(b), Some(layers_b)) = (b, layers_b) {
                b.push(layers_b);
            }
        }
        self.n_examples += len;
        Ok(())
    }

    /// Refuses a batch whose layers are not the first batch's.
    fn check_sides(&mut self, layers_a: &[Layer], layers_b: Option<&[Layer]>) -> Result<()> {
        let names = |layers: &[Layer]| layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        if layers_a.is_empty() || layers_b.is_some_and(<[Layer]>::is_empty) {
            return Err(SimilarityError::InvalidParameter {
                name: "layers",
                message: "a side gave no layers to compare".into(),
            });
        }
        let Some(sides) = &self.sides else {
            self.sides = Some(Sides {
                a: names(layers_a),
                b: layers_b.map(names),
            });
            return Ok(());
        };
        let mismatch = |side: &str, first: &[String], now: Vec<String>| {
            (first != now.as_slice()).then(|| SimilarityError::InvalidParameter {
                name: "layers",
                message: format!(
                    "side {side} gave layers {now:?} for the batch at example {}, {first:?} for the first",
                    self.n_examples
                ),
            })
        };
        if let Some(e) = mismatch("A", &sides.a, names(layers_a)) {
            return Err(e);
        }
        match (&sides.b, layers_b) {
            (Some(first), Some(now)) => mismatch("B", first, names(now)).map_or(Ok(()), Err),
            (None, None) => Ok(()),
            _ => Err(SimilarityError::InvalidParameter {
                name: "layers",
                message: "B was A for the first batch but not for a later one (or the reverse)"
                    .into(),
            }),
        }
    }

    /// The sums a shard keeps: minibatch CKA's and the feature-space ones (when asked).
    pub fn into_sums(self) -> (Option<MinibatchCka>, Option<CovarianceAccumulator>) {
        (self.minibatch.map(|m| m.cka), self.covariance)
    }

    /// Every measure's matrix, in the order of [`Comparison::measures`].
    pub fn finish(self) -> Result<Vec<SimilarityMatrix>> {
        let n = self.n_examples;
        let minibatch = match self.minibatch {
            Some(sums) => {
                if sums.left_out == n || sums.short_last == ShortLastBatch::LeaveOut {
                    check_batch_size(sums.batch_size, n)?;
                }
                let mut matrix = sums.cka.finish_with_batch_size(sums.batch_size)?;
                if sums.left_out > 0 {
                    matrix.warnings.push(format!(
                        "the last {} of {n} examples do not fill a batch of {} and were left out",
                        sums.left_out, sums.batch_size
                    ));
                }
                Some(matrix)
            }
            None => None,
        };
        let whole: Vec<Measure> = self
            .measures
            .iter()
            .filter(|m| !matches!(m, Measure::MinibatchCka { .. }))
            .copied()
            .collect();
        let mut whole_matrices = match (self.mode, self.gathered) {
            (WholeData::Gather, Some((a, b))) => {
                let a = a.into_layers();
                let b = b.map(Gathered::into_layers);
                whole_data_matrices(&whole, &a, b.as_deref().unwrap_or(&a))?
            }
            (WholeData::Stream, _) => {
                let covariance = self.covariance.as_ref();
                whole
                    .iter()
                    .map(|m| streamed_matrix(m, covariance))
                    .collect::<Result<Vec<_>>>()?
            }
            (WholeData::Gather, None) if whole.is_empty() => Vec::new(),
            (WholeData::Gather, None) => {
                return Err(SimilarityError::InvalidParameter {
                    name: "batches",
                    message: "no batch was added".into(),
                })
            }
        }
        .into_iter();
        let mut minibatch = minibatch;
        self.measures
            .iter()
            .map(|m| match m {
                Measure::MinibatchCka { .. } => minibatch.take(),
                _ => whole_matrices.next(),
            })
            .map(|m| {
                m.ok_or(SimilarityError::InvalidParameter {
                    name: "--metric",
                    message: "minibatch_cka is listed more than once".into(),
                })
            })
            .collect()
    }
}

/// A measure's matrix from the feature-space sums.
fn streamed_matrix(
    measure: &Measure,
    covariance: Option<&CovarianceAccumulator>,
) -> Result<SimilarityMatrix> {
    let covariance = covariance.ok_or(SimilarityError::InvalidParameter {
        name: "batches",
        message: "no batch was added".into(),
    })?;
    match measure {
        Measure::Cca(cca) => covariance.finish(*cca),
        _ => Ok(covariance
            .state()?
            .ok_or(SimilarityError::InvalidParameter {
                name: "batches",
                message: "no batch was added".into(),
            })?
            .linear_cka()),
    }
}

/// The `measure` matrix between every layer of A (rows) and of B (columns), every example at
/// once. Pass the same slice twice to compare a model with itself (each layer's Gram is then
/// computed once).
pub fn similarity_matrix(
    measure: &Measure,
    layers_a: &[Layer],
    layers_b: &[Layer],
) -> Result<SimilarityMatrix> {
    let mut matrices = similarity_matrices(std::slice::from_ref(measure), layers_a, layers_b)?;
    Ok(matrices.remove(0))
}

/// Every measure of `measures`, in order, on whole-data layers (the same slice twice: A
/// against itself): minibatch CKA over consecutive batches of its size (the last `n %
/// batch_size` examples left out, with a warning in the matrix, as in Nguyen et al.'s code),
/// the others on every example, the CCA-family measures sharing one pass over the data.
pub fn similarity_matrices(
    measures: &[Measure],
    layers_a: &[Layer],
    layers_b: &[Layer],
) -> Result<Vec<SimilarityMatrix>> {
    let mut comparison = Comparison::new(measures, WholeData::Gather)?;
    let n = check_same_examples(layers_a.iter().chain(layers_b))?;
    let symmetric = std::ptr::eq(layers_a, layers_b);
    let side_b = (!symmetric).then_some(layers_b);
    comparison.check_sides(layers_a, side_b)?;
    if let Some(minibatch) = &mut comparison.minibatch {
        let batch_size = minibatch.batch_size;
        check_batch_size(batch_size, n)?;
        let mut start = 0;
        while start + batch_size <= n {
            let rows = |layers: &[Layer]| -> Vec<Layer> {
                layers.iter().map(|l| l.rows(start, batch_size)).collect()
            };
            let batch_a = rows(layers_a);
            let batch_b = side_b.map(rows);
            minibatch
                .cka
                .update(&batch_a, batch_b.as_deref().unwrap_or(&batch_a))?;
            start += batch_size;
        }
        minibatch.left_out = n - start;
        minibatch.short = n - start;
    }
    if comparison.gathers() {
        let mut a = Gathered::new(layers_a);
        a.push(layers_a);
        let b = side_b.map(|layers| {
            let mut b = Gathered::new(layers);
            b.push(layers);
            b
        });
        comparison.gathered = Some((a, b));
    }
    comparison.n_examples = n;
    comparison.finish()
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
    similarity_matrix(&Measure::MinibatchCka { batch_size }, layers_a, layers_b)
}

/// The measures other than minibatch CKA on all examples. The CCA-family measures share one
/// pass over the data: each layer's covariance statistics and every cross scatter are computed
/// once for all of them.
fn whole_data_matrices(
    measures: &[Measure],
    layers_a: &[Layer],
    layers_b: &[Layer],
) -> Result<Vec<SimilarityMatrix>> {
    let cca_measure = |measure: &Measure| measure.cca_measure();
    // Shared feature-space statistics pay when every layer has fewer features than examples;
    // otherwise SVCCA and Procrustes run in example space, each on its own.
    let narrow = layers_a
        .iter()
        .chain(layers_b)
        .all(|l| l.num_features() < l.num_examples());
    let shared = narrow && measures.iter().filter(|m| cca_measure(m).is_some()).count() > 1;
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
            _ => whole_data_matrix(measure, layers_a, layers_b),
        })
        .collect()
}

/// One measure other than minibatch CKA on all examples.
fn whole_data_matrix(
    measure: &Measure,
    layers_a: &[Layer],
    layers_b: &[Layer],
) -> Result<SimilarityMatrix> {
    match *measure {
        Measure::LinearCka { estimator } => linear_cka_matrix(layers_a, layers_b, estimator),
        Measure::RbfCka {
            threshold,
            estimator,
        } => rbf_cka_matrix(layers_a, layers_b, threshold, estimator),
        Measure::Cca(cca) => cca_family_matrix(cca, layers_a, layers_b),
        Measure::MutualKnn { k } => mutual_knn_matrix(layers_a, layers_b, k),
        Measure::Cknna(params) => cknna_matrix(layers_a, layers_b, &params),
        Measure::Rsa { rdm, compare } => rsa_matrix(layers_a, layers_b, rdm, compare),
        Measure::ShapeAngular { alpha, centered } => {
            shape_angular_matrix(layers_a, layers_b, alpha, centered)
        }
        Measure::MinibatchCka { .. } => Err(SimilarityError::InvalidParameter {
            name: "--metric",
            message: "minibatch_cka is computed batch by batch, not on all examples at once".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_matrix;
    use burn::tensor::Device;

    /// Three layers of `n` examples: a base, a nonlinear view of it and an unrelated one.
    fn layers(n: usize, seed: u64, device: &Device) -> Vec<Layer> {
        let base = random_matrix(n, 6, seed, device);
        vec![
            Layer::new("l0", base.clone()).unwrap(),
            Layer::new(
                "l1",
                base.matmul(random_matrix(6, 9, seed + 1, device)).tanh(),
            )
            .unwrap(),
            Layer::new("l2", random_matrix(n, 5, seed + 2, device)).unwrap(),
        ]
    }

    fn batches(layers: &[Layer], size: usize) -> Vec<Vec<Layer>> {
        let n = layers[0].num_examples();
        (0..n)
            .step_by(size)
            .map(|start| {
                layers
                    .iter()
                    .map(|l| l.rows(start, size.min(n - start)))
                    .collect()
            })
            .collect()
    }

    fn measures() -> Vec<Measure> {
        [
            "linear_cka",
            "minibatch_cka:batch_size=16",
            "svcca:dims=4",
            "rsa",
            "cca",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
    }

    #[test]
    fn batches_gathered_give_the_whole_data_matrices_exactly() {
        let device = Device::flex();
        let (a, b) = (layers(70, 1, &device), layers(70, 11, &device));
        let whole = similarity_matrices(&measures(), &a, &b).unwrap();
        let mut comparison = Comparison::new(&measures(), WholeData::Gather).unwrap();
        for (batch_a, batch_b) in batches(&a, 16).iter().zip(batches(&b, 16)) {
            comparison.update(batch_a, Some(&batch_b)).unwrap();
        }
        assert_eq!(comparison.n_examples(), 70);
        let fed = comparison.finish().unwrap();
        assert_eq!(fed.len(), whole.len());
        for (fed, whole) in fed.iter().zip(&whole) {
            assert_eq!(fed.measure, whole.measure);
            assert_eq!(fed.values, whole.values, "{}", fed.measure);
            assert_eq!(fed.warnings, whole.warnings, "{}", fed.measure);
        }
        // 70 = 4 x 16 + 6: the last 6 examples are left out of minibatch CKA, and said so.
        assert!(
            fed[1].warnings[0].contains("the last 6 of 70"),
            "{:?}",
            fed[1].warnings
        );
    }

    #[test]
    fn a_model_against_itself_in_batches_equals_the_symmetric_whole_data_pass() {
        let device = Device::flex();
        let a = layers(64, 3, &device);
        let whole = similarity_matrices(&measures(), &a, &a).unwrap();
        let mut comparison = Comparison::new(&measures(), WholeData::Gather).unwrap();
        for batch in batches(&a, 16) {
            comparison.update(&batch, None).unwrap();
        }
        for (fed, whole) in comparison.finish().unwrap().iter().zip(&whole) {
            assert_eq!(fed.values, whole.values, "{}", fed.measure);
        }
    }

    #[test]
    fn streamed_sums_agree_with_the_whole_data_measures_and_refuse_the_others() {
        let device = Device::flex();
        let (a, b) = (layers(96, 5, &device), layers(96, 15, &device));
        let streamable: Vec<Measure> = ["linear_cka", "cca", "minibatch_cka:batch_size=32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let whole = similarity_matrices(&streamable, &a, &b).unwrap();
        let mut comparison = Comparison::new(&streamable, WholeData::Stream).unwrap();
        for (batch_a, batch_b) in batches(&a, 32).iter().zip(batches(&b, 32)) {
            comparison.update(batch_a, Some(&batch_b)).unwrap();
        }
        let streamed = comparison.finish().unwrap();
        for (s, w) in streamed.iter().zip(&whole) {
            for (x, y) in s.values.iter().flatten().zip(w.values.iter().flatten()) {
                let (x, y) = (x.unwrap(), y.unwrap());
                assert!((x - y).abs() < 1e-5, "{}: {x} vs {y}", s.measure);
            }
        }
        let err = Comparison::new(&measures(), WholeData::Stream)
            .err()
            .unwrap()
            .to_string();
        // Only RSA is refused (SVCCA and CCA stream): the list of refusals names it alone.
        assert!(
            err.starts_with("invalid --metric: rsa needs the dissimilarity of every pair of examples at once, so"),
            "{err}"
        );
    }

    #[test]
    fn only_measures_that_need_every_example_gather_them() {
        let device = Device::flex();
        let a = layers(32, 7, &device);
        let mut comparison =
            Comparison::new(&[Measure::minibatch_cka(16)], WholeData::Gather).unwrap();
        for batch in batches(&a, 16) {
            comparison.update(&batch, None).unwrap();
        }
        assert!(comparison.gathered.is_none());
        let mut comparison = Comparison::new(&measures(), WholeData::Gather).unwrap();
        comparison.update(&batches(&a, 16)[0], None).unwrap();
        assert!(comparison.gathered.is_some());
    }

    #[test]
    fn batches_out_of_order_or_of_other_layers_are_refused_by_name() {
        let device = Device::flex();
        let a = layers(48, 9, &device);
        let mb = [Measure::minibatch_cka(16)];
        let mut comparison = Comparison::new(&mb, WholeData::Gather).unwrap();
        comparison.update(&batches(&a, 10)[0], None).unwrap();
        let err = comparison.update(&batches(&a, 16)[0], None).unwrap_err();
        assert!(
            err.to_string().contains("after a shorter one of 10"),
            "{err}"
        );

        let mut comparison = Comparison::new(&mb, WholeData::Gather).unwrap();
        let err = comparison.update(&batches(&a, 20)[0], None).unwrap_err();
        assert!(err.to_string().contains("a batch of 20 examples"), "{err}");

        let mut comparison = Comparison::new(&mb, WholeData::Gather).unwrap();
        comparison.update(&batches(&a, 16)[0], None).unwrap();
        let fewer = &batches(&a, 16)[1][..2];
        let err = comparison.update(fewer, None).unwrap_err().to_string();
        assert!(err.contains("side A gave layers [\"l0\", \"l1\"]"), "{err}");
        let err = comparison
            .update(&batches(&a, 16)[1], Some(&batches(&a, 16)[1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("B was A"), "{err}");

        let twice = [Measure::minibatch_cka(16), Measure::minibatch_cka(8)];
        let err = Comparison::new(&twice, WholeData::Gather).err().unwrap();
        assert!(err.to_string().contains("listed 2 times"), "{err}");
        let err = Comparison::new(&[], WholeData::Gather).err().unwrap();
        assert!(err.to_string().contains("no measure"), "{err}");
    }

    #[test]
    fn a_short_last_batch_is_left_out_or_counted_as_asked() {
        let device = Device::flex();
        let a = layers(40, 8, &device);
        let mb = [Measure::minibatch_cka(16)];
        let run = |short_last, size| {
            let mut comparison = Comparison::new(&mb, WholeData::Gather)
                .unwrap()
                .with_short_last_batch(short_last);
            for batch in batches(&a, size) {
                comparison.update(&batch, None).unwrap();
            }
            comparison.finish().unwrap().remove(0)
        };
        let left_out = run(ShortLastBatch::LeaveOut, 16);
        assert_eq!(left_out.n_examples, Some(32));
        assert!(left_out.warnings[0].contains("the last 8 of 40"));
        let counted = run(ShortLastBatch::Count, 16);
        assert_eq!(counted.n_examples, Some(40));
        assert!(counted.warnings.is_empty(), "{:?}", counted.warnings);
        assert_eq!(counted.measure, Measure::minibatch_cka(16));
        let mut by_hand = MinibatchCka::new();
        for batch in batches(&a, 16) {
            by_hand.update(&batch, &batch).unwrap();
        }
        assert_eq!(counted.values, by_hand.finish().unwrap().values);
        // Fewer than 4 examples cannot make a minibatch: left out even when counting.
        let mut comparison = Comparison::new(&mb, WholeData::Gather)
            .unwrap()
            .with_short_last_batch(ShortLastBatch::Count);
        comparison.update(&batches(&a, 16)[0], None).unwrap();
        comparison
            .update(&a.iter().map(|l| l.rows(16, 3)).collect::<Vec<_>>(), None)
            .unwrap();
        let m = comparison.finish().unwrap().remove(0);
        assert!(
            m.warnings[0].contains("the last 3 of 19"),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn too_few_examples_for_one_minibatch_are_refused() {
        let device = Device::flex();
        let a = layers(12, 4, &device);
        let mut comparison =
            Comparison::new(&[Measure::minibatch_cka(16)], WholeData::Gather).unwrap();
        comparison.update(&a, None).unwrap();
        let err = comparison.finish().unwrap_err().to_string();
        assert!(err.contains("larger than the number of examples"), "{err}");
    }
}
