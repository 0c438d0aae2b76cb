//! Streaming the CCA family over examples: `CovarianceAccumulator`.
//!
//! CCA, SVCCA, PWCCA and the Procrustes distance depend on the data only through `n`, the
//! feature sums and the scatter matrices `X^T X`, `Y^T Y`, `X^T Y` ([`crate::cca`]). The
//! accumulator takes batches of examples and keeps only those, so 50 000 examples of 512-wide
//! layers need `O(D^2)` memory per layer and per pair instead of `O(n D)`; `finish` gives the same
//! matrix as the whole-data computation.
//!
//! Representation rule: feature space, always. The sums are kept relative to a shift (the first
//! batch's feature means), `z = x - shift`, so that large activation means do not cancel
//! catastrophically when the scatter is centred at the end:
//! `Cxx = sum z^T z - (sum z)^T (sum z) / n`. Layers wider than
//! [`crate::cca::MAX_CCA_FEATURES`] are refused at the first batch: their `D x D` statistics
//! could not be decomposed anyway. (For such layers, and whenever features outnumber the examples
//! that will ever be seen, the CKA measures, which work on Gram matrices, are the ones to stream.)

use burn::tensor::{DType, Tensor};

use crate::cca::{
    check_shape, matrix_from_prepared, prepare_statistics, CcaMeasure, MAX_CCA_FEATURES,
};
use crate::covariance::{host_values, statistics_dtype, to_host_f64, CovarianceLayer};
use crate::error::{Result, SimilarityError};
use crate::layer::{check_same_examples, explain_non_finite, read_back, Layer};
use crate::matrix::SimilarityMatrix;

/// The running sums of one side's layers, on their device.
struct SideSums {
    names: Vec<String>,
    /// `1 x D`: the first batch's means.
    shifts: Vec<Tensor<2>>,
    /// `1 x D`: `sum z`.
    sums: Vec<Tensor<2>>,
    /// `D x D`: `sum z^T z`.
    scatters: Vec<Tensor<2>>,
}

impl SideSums {
    fn start(layers: &[Layer], dtype: DType) -> Self {
        let shifts = layers
            .iter()
            .map(|l| l.matrix.clone().cast(dtype).mean_dim(0))
            .collect::<Vec<_>>();
        let zeros = |l: &Layer, rows: usize| {
            Tensor::<2>::zeros([rows, l.num_features()], (&l.matrix.device(), dtype))
        };
        SideSums {
            names: layers.iter().map(|l| l.name.clone()).collect(),
            shifts,
            sums: layers.iter().map(|l| zeros(l, 1)).collect(),
            scatters: layers.iter().map(|l| zeros(l, l.num_features())).collect(),
        }
    }

    /// Shifted batch activations `z = x - shift`, one per layer.
    fn shifted(&self, layers: &[Layer], dtype: DType) -> Vec<Tensor<2>> {
        layers
            .iter()
            .zip(&self.shifts)
            .map(|(layer, shift)| layer.matrix.clone().cast(dtype).sub(shift.clone()))
            .collect()
    }

    /// Adds a checked batch of shifted activations to the sums.
    fn accumulate(&mut self, shifted: &[Tensor<2>]) {
        for (i, z) in shifted.iter().enumerate() {
            self.sums[i] = self.sums[i].clone().add(z.clone().sum_dim(0));
            self.scatters[i] = self.scatters[i]
                .clone()
                .add(z.clone().transpose().matmul(z.clone()));
        }
    }

    /// Per-layer statistics, centred: `mean = shift + sum / n`, `C = sum z^T z - s^T s / n`.
    fn statistics(&self, n: usize, dtype: DType) -> Result<Vec<CovarianceLayer>> {
        let nf = n as f64;
        (0..self.names.len())
            .map(|i| {
                let sum = self.sums[i].clone();
                let mean = host_values(to_host_f64(
                    self.shifts[i].clone().add(sum.clone().div_scalar(nf)),
                )?)?;
                let scatter = to_host_f64(
                    self.scatters[i]
                        .clone()
                        .sub(sum.clone().transpose().matmul(sum).div_scalar(nf)),
                )?;
                CovarianceLayer::from_statistics(&self.names[i], n, mean, scatter, dtype)
            })
            .collect()
    }
}

/// Streaming CCA-family statistics of layers of A against layers of B.
///
/// ```no_run
/// # use repsim_similarity::{CcaMeasure, CovarianceAccumulator, Layer};
/// # fn batches() -> Vec<(Vec<Layer>, Vec<Layer>)> { vec![] }
/// let mut stats = CovarianceAccumulator::new();
/// for (layers_a, layers_b) in batches() {
///     stats.update(&layers_a, &layers_b)?;
/// }
/// let cca = stats.finish(CcaMeasure::Cca)?;
/// let procrustes = stats.finish(CcaMeasure::Procrustes)?; // same statistics, another measure
/// # Ok::<(), repsim_similarity::SimilarityError>(())
/// ```
#[derive(Default)]
pub struct CovarianceAccumulator {
    state: Option<StreamState>,
    /// Per-layer statistics (eigen-decompositions) of both sides, computed at the first
    /// `finish` and reused by the next measures until another batch arrives.
    statistics: std::cell::OnceCell<SideStatistics>,
}

/// The per-layer statistics of A and (unless B is A) of B.
type SideStatistics = (Vec<CovarianceLayer>, Option<Vec<CovarianceLayer>>);

struct StreamState {
    n: usize,
    dtype: DType,
    a: SideSums,
    /// `None` when B is A (a model against itself).
    b: Option<SideSums>,
    /// `La x Lb` matrices `sum z_a^T z_b`, row-major.
    cross: Vec<Tensor<2>>,
}

impl StreamState {
    /// Zero sums shaped after the first batch; refuses layers too wide to decompose.
    fn start(layers_a: &[Layer], layers_b: &[Layer], symmetric: bool) -> Result<Self> {
        for layer in layers_a.iter().chain(layers_b) {
            if layer.num_features() > MAX_CCA_FEATURES {
                return Err(SimilarityError::InvalidParameter {
                    name: "layer width",
                    message: format!(
                        "layer `{}` has {} features: the CCA family decomposes features x \
                         features matrices, impractical above {MAX_CCA_FEATURES}",
                        layer.name,
                        layer.num_features()
                    ),
                });
            }
        }
        let dtype = statistics_dtype(&layers_a[0].matrix.device());
        let cross = layers_a
            .iter()
            .flat_map(|a| {
                layers_b.iter().map(move |b| {
                    Tensor::<2>::zeros(
                        [a.num_features(), b.num_features()],
                        (&a.matrix.device(), dtype),
                    )
                })
            })
            .collect();
        Ok(StreamState {
            n: 0,
            dtype,
            a: SideSums::start(layers_a, dtype),
            b: (!symmetric).then(|| SideSums::start(layers_b, dtype)),
            cross,
        })
    }

    /// Checks a batch of `m` examples (same layers as before, every value finite) and only then
    /// adds it to the sums.
    fn add_batch(
        &mut self,
        layers_a: &[Layer],
        layers_b: &[Layer],
        symmetric: bool,
        m: usize,
    ) -> Result<()> {
        let names = |layers: &[Layer]| layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        let expected_b = self.b.as_ref().map_or(&self.a.names, |b| &b.names);
        if names(layers_a) != self.a.names
            || &names(layers_b) != expected_b
            || symmetric != self.b.is_none()
        {
            return Err(SimilarityError::MergeMismatch(format!(
                "this batch has layers {:?} x {:?}, earlier batches had {:?} x {:?}",
                names(layers_a),
                names(layers_b),
                self.a.names,
                expected_b
            )));
        }
        let za = self.a.shifted(layers_a, self.dtype);
        let zb = match &self.b {
            Some(b) => b.shifted(layers_b, self.dtype),
            None => za.clone(),
        };
        // One read per batch: a NaN or infinity anywhere makes its layer's batch sum non-finite.
        let checks = read_back(Tensor::cat(
            za.iter().chain(&zb).map(|z| z.clone().sum()).collect(),
            0,
        ))?;
        if let Some(k) = checks.iter().position(|v| !v.is_finite()) {
            let layer = if k < za.len() {
                &layers_a[k]
            } else {
                &layers_b[k - za.len()]
            };
            return Err(explain_non_finite(layer, self.n));
        }
        self.a.accumulate(&za);
        if let Some(b) = &mut self.b {
            b.accumulate(&zb);
        }
        let lb = zb.len();
        for (i, a) in za.iter().enumerate() {
            for (j, b) in zb.iter().enumerate() {
                let k = i * lb + j;
                self.cross[k] = self.cross[k]
                    .clone()
                    .add(a.clone().transpose().matmul(b.clone()));
            }
        }
        self.n += m;
        Ok(())
    }
}

impl CovarianceAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Examples seen so far.
    pub fn n_examples(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.n)
    }

    /// Adds a batch: the same examples through every layer of A and of B (pass the same slice
    /// twice for a model against itself).
    pub fn update(&mut self, layers_a: &[Layer], layers_b: &[Layer]) -> Result<()> {
        let m = check_same_examples(layers_a.iter().chain(layers_b))?;
        let symmetric = std::ptr::eq(layers_a, layers_b);
        let mut state = match self.state.take() {
            Some(state) => state,
            None => StreamState::start(layers_a, layers_b, symmetric)?,
        };
        // A rejected batch changes nothing; a first batch that is rejected leaves no state.
        let result = state.add_batch(layers_a, layers_b, symmetric, m);
        if state.n > 0 {
            self.state = Some(state);
        }
        if result.is_ok() {
            self.statistics = std::cell::OnceCell::new();
        }
        result
    }

    /// The `measure` matrix over every example seen; the same as the whole-data computation.
    pub fn finish(&self, measure: CcaMeasure) -> Result<SimilarityMatrix> {
        let state = self
            .state
            .as_ref()
            .ok_or(SimilarityError::InvalidParameter {
                name: "CCA statistics",
                message: "no batch was added".into(),
            })?;
        let n = state.n;
        let a = &state.a;
        let b = state.b.as_ref().unwrap_or(a);
        for side in [a, b] {
            for (name, scatter) in side.names.iter().zip(&side.scatters) {
                check_shape(name, n, scatter.dims()[0], measure)?;
            }
        }
        let statistics = match self.statistics.get() {
            Some(cached) => cached,
            None => {
                let stats_a = a.statistics(n, state.dtype)?;
                let stats_b = match &state.b {
                    Some(b) => Some(b.statistics(n, state.dtype)?),
                    None => None,
                };
                self.statistics.get_or_init(|| (stats_a, stats_b))
            }
        };
        let prepare = |stats: &[CovarianceLayer]| -> Vec<_> {
            stats
                .iter()
                .map(|s| prepare_statistics(s.clone(), measure))
                .collect()
        };
        let prepared_a = prepare(&statistics.0);
        let prepared_b_owned;
        let prepared_b = match &statistics.1 {
            None => &prepared_a,
            Some(stats_b) => {
                prepared_b_owned = prepare(stats_b);
                &prepared_b_owned
            }
        };
        let lb = b.names.len();
        let nf = n as f64;
        let cross = |i: usize, j: usize| {
            let correction = a.sums[i]
                .clone()
                .transpose()
                .matmul(b.sums[j].clone())
                .div_scalar(nf);
            to_host_f64(state.cross[i * lb + j].clone().sub(correction))
        };
        matrix_from_prepared(
            measure,
            (a.names.clone(), b.names.clone()),
            &prepared_a,
            prepared_b,
            state.b.is_none(),
            &cross,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cca::{cca_family_matrix, PwccaConvention, SvdReduction};
    use crate::testing::random_matrix;
    use burn::tensor::Device;

    fn layers(device: &Device, seed: u64) -> Vec<Layer> {
        let base = random_matrix(90, 5, seed, device).add_scalar(40.0);
        vec![
            Layer::new("narrow", base.clone()).unwrap(),
            Layer::new(
                "wide",
                base.matmul(random_matrix(5, 12, seed + 1, device))
                    .add(random_matrix(90, 12, seed + 2, device)),
            )
            .unwrap(),
        ]
    }

    #[test]
    fn streaming_equals_whole_data_for_every_measure() {
        let device = Device::flex();
        let (a, b) = (layers(&device, 1), layers(&device, 5));
        let mut stream = CovarianceAccumulator::new();
        let mut itself = CovarianceAccumulator::new();
        for (start, len) in [(0, 40), (40, 30), (70, 20)] {
            let (ba, bb): (Vec<Layer>, Vec<Layer>) = (
                a.iter().map(|l| l.rows(start, len)).collect(),
                b.iter().map(|l| l.rows(start, len)).collect(),
            );
            stream.update(&ba, &bb).unwrap();
            itself.update(&ba, &ba).unwrap();
        }
        assert_eq!(stream.n_examples(), 90);
        for measure in [
            CcaMeasure::Cca,
            CcaMeasure::Svcca(SvdReduction::Keep(0.9)),
            CcaMeasure::Pwcca(PwccaConvention::Google),
            CcaMeasure::Pwcca(PwccaConvention::Textbook),
            CcaMeasure::Procrustes,
        ] {
            for (streamed, whole) in [
                (
                    stream.finish(measure).unwrap(),
                    cca_family_matrix(measure, &a, &b).unwrap(),
                ),
                (
                    itself.finish(measure).unwrap(),
                    cca_family_matrix(measure, &a, &a).unwrap(),
                ),
            ] {
                for (rs, rw) in streamed.values.iter().zip(&whole.values) {
                    for (s, w) in rs.iter().zip(rw) {
                        let (s, w) = (s.unwrap(), w.unwrap());
                        assert!(
                            (s - w).abs() < 1e-8,
                            "{measure:?}: streamed {s} vs whole {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_nan_in_a_later_batch_names_its_example() {
        let device = Device::flex();
        let a = layers(&device, 2);
        let mut stream = CovarianceAccumulator::new();
        stream.update(&a, &a).unwrap();
        let mut values = crate::testing::random_values(10, 5, 3);
        values[4 * 5 + 1] = f32::NAN;
        let bad = Tensor::<2>::from_data(burn::tensor::TensorData::new(values, [10, 5]), &device);
        let batch = vec![Layer::new("narrow", bad).unwrap(), a[1].rows(0, 10)];
        let err = stream.update(&batch, &batch).unwrap_err();
        assert!(
            matches!(
                err,
                SimilarityError::NonFinite {
                    example: 94,
                    feature: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_rejected_batch_leaves_the_sums_untouched() {
        let device = Device::flex();
        let a = layers(&device, 4);
        let mut clean = CovarianceAccumulator::new();
        clean.update(&a, &a).unwrap();
        let mut rejected = CovarianceAccumulator::new();
        rejected.update(&a, &a).unwrap();
        let mut values = crate::testing::random_values(10, 5, 3);
        values[7] = f32::INFINITY;
        let bad = Tensor::<2>::from_data(burn::tensor::TensorData::new(values, [10, 5]), &device);
        let batch = vec![Layer::new("narrow", bad).unwrap(), a[1].rows(0, 10)];
        assert!(rejected.update(&batch, &batch).is_err());
        assert_eq!(rejected.n_examples(), 90);
        let (x, y) = (
            clean.finish(CcaMeasure::Cca).unwrap(),
            rejected.finish(CcaMeasure::Cca).unwrap(),
        );
        assert_eq!(x.values, y.values);

        let mut fresh = CovarianceAccumulator::new();
        assert!(fresh.update(&batch, &batch).is_err());
        assert_eq!(fresh.n_examples(), 0);
        assert!(fresh.finish(CcaMeasure::Cca).is_err());
    }
}
