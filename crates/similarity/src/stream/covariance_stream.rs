//! Streaming the CCA family over examples: `CovarianceAccumulator`.
//!
//! CCA, SVCCA, PWCCA and the Procrustes distance depend on the data only through `n`, the
//! feature sums and the scatter matrices `X^T X`, `Y^T Y`, `X^T Y` ([`crate::measures::cca`]). The
//! accumulator takes batches of examples and keeps only those, so 50 000 examples of 512-wide
//! layers need `O(D^2)` memory per layer and per pair instead of `O(n D)`; `finish` gives the same
//! matrix as the whole-data computation.
//!
//! Representation rule: feature space, always. The sums are kept relative to a shift (the first
//! batch's feature means), `z = x - shift`, so that large activation means do not cancel
//! catastrophically when the scatter is centred at the end:
//! `Cxx = sum z^T z - (sum z)^T (sum z) / n`. Layers wider than
//! [`crate::measures::cca::MAX_CCA_FEATURES`] are refused at the first batch: their `D x D` statistics
//! could not be decomposed anyway. (For such layers, and whenever features outnumber the examples
//! that will ever be seen, the CKA measures, which work on Gram matrices, are the ones to stream.)

use burn::tensor::{DType, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SimilarityError};
use crate::layer::{check_same_examples, explain_non_finite, read_back, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::cca::{
    check_shape, matrix_from_prepared, prepare_statistics, CcaMeasure, MAX_CCA_FEATURES,
};
use crate::measures::covariance::{host_values, statistics_dtype, to_host_f64, CovarianceLayer};
use burn::tensor::Device;

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

/// One side's sums in a [`CovarianceState`], per layer, row-major f64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideState {
    /// Layer names.
    pub names: Vec<String>,
    /// The shift of each layer (`D`): the first batch's means.
    pub shifts: Vec<Vec<f64>>,
    /// `sum z` (`D`), `z = x - shift`.
    pub sums: Vec<Vec<f64>>,
    /// `sum z^T z` (`D x D`).
    pub scatters: Vec<Vec<f64>>,
}

impl SideState {
    fn widths(&self) -> Vec<usize> {
        self.shifts.iter().map(Vec::len).collect()
    }

    /// The centred scatter `C = sum z^T z - s^T s / n` of layer `i`, row-major.
    fn centred(&self, i: usize, n: usize) -> Vec<f64> {
        let d = self.shifts[i].len();
        let sum = &self.sums[i];
        let nf = n as f64;
        let mut c = self.scatters[i].clone();
        for r in 0..d {
            for k in 0..d {
                c[r * d + k] -= sum[r] * sum[k] / nf;
            }
        }
        c
    }
}

/// The sums of a [`CovarianceAccumulator`] on the host in f64: what a shard of a comparison
/// saves, and what shards merge ([`CovarianceState::merge`]) into the whole pass's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CovarianceState {
    /// Examples seen.
    pub n: usize,
    /// The layers of A.
    pub a: SideState,
    /// The layers of B; `None` when B is A.
    pub b: Option<SideState>,
    /// `sum z_a^T z_b` per pair (row-major over A x B), each `Da x Db` row-major.
    pub cross: Vec<Vec<f64>>,
}

/// `x^T y` of two vectors, as a row-major `len(x) x len(y)` matrix, times `scale`, added to
/// `out`.
fn add_outer(out: &mut [f64], x: &[f64], y: &[f64], scale: f64) {
    for (r, xr) in x.iter().enumerate() {
        for (k, yk) in y.iter().enumerate() {
            out[r * y.len() + k] += scale * xr * yk;
        }
    }
}

impl CovarianceState {
    /// Numbers the state holds: `sum D^2` per side plus `sum Da Db` over pairs (to refuse one
    /// too large to save).
    pub fn size_of(widths_a: &[usize], widths_b: Option<&[usize]>) -> usize {
        let squares = |w: &[usize]| w.iter().map(|d| d * d + 2 * d).sum::<usize>();
        let b = widths_b.unwrap_or(widths_a);
        squares(widths_a)
            + widths_b.map_or(0, squares)
            + widths_a
                .iter()
                .map(|da| b.iter().map(|db| da * db).sum::<usize>())
                .sum::<usize>()
    }

    /// Adds `other` (the sums of other examples of the same layers) to these sums. `other`'s
    /// sums are taken to this state's shifts first: with `delta = shift_o - shift`,
    /// `sum z = sum z_o + n_o delta` and `sum z^T z = sum z_o^T z_o + delta^T sum z_o +
    /// (sum z_o)^T delta + n_o delta^T delta` (and likewise across A and B), so the result is
    /// exactly the statistics of both sets of examples.
    pub fn merge(&mut self, other: &CovarianceState) -> Result<()> {
        let same_side =
            |a: &SideState, b: &SideState| a.names == b.names && a.widths() == b.widths();
        let layers_match = same_side(&self.a, &other.a)
            && match (&self.b, &other.b) {
                (None, None) => true,
                (Some(x), Some(y)) => same_side(x, y),
                _ => false,
            };
        if !layers_match {
            return Err(SimilarityError::MergeMismatch(
                "the CCA-family statistics are of other layers".into(),
            ));
        }
        let n_o = other.n as f64;
        let rebase = |mine: &mut SideState, theirs: &SideState| -> Vec<Vec<f64>> {
            let mut deltas = Vec::new();
            for i in 0..mine.names.len() {
                let delta: Vec<f64> = theirs.shifts[i]
                    .iter()
                    .zip(&mine.shifts[i])
                    .map(|(o, m)| o - m)
                    .collect();
                let sum_o = &theirs.sums[i];
                let scatter = &mut mine.scatters[i];
                for (s, o) in scatter.iter_mut().zip(&theirs.scatters[i]) {
                    *s += o;
                }
                add_outer(scatter, &delta, sum_o, 1.0);
                add_outer(scatter, sum_o, &delta, 1.0);
                add_outer(scatter, &delta, &delta, n_o);
                for ((s, o), d) in mine.sums[i].iter_mut().zip(sum_o).zip(&delta) {
                    *s += o + n_o * d;
                }
                deltas.push(delta);
            }
            deltas
        };
        // The other's sums before they were rebased (the cross terms need them).
        let (sums_a_o, sums_b_o) = (
            other.a.sums.clone(),
            other.b.as_ref().unwrap_or(&other.a).sums.clone(),
        );
        let delta_a = rebase(&mut self.a, &other.a);
        let delta_b = match (&mut self.b, &other.b) {
            (Some(mine), Some(theirs)) => rebase(mine, theirs),
            _ => delta_a.clone(),
        };
        let lb = delta_b.len();
        for i in 0..delta_a.len() {
            for j in 0..lb {
                let k = i * lb + j;
                let cross = &mut self.cross[k];
                for (c, o) in cross.iter_mut().zip(&other.cross[k]) {
                    *c += o;
                }
                add_outer(cross, &delta_a[i], &sums_b_o[j], 1.0);
                add_outer(cross, &sums_a_o[i], &delta_b[j], 1.0);
                add_outer(cross, &delta_a[i], &delta_b[j], n_o);
            }
        }
        self.n += other.n;
        Ok(())
    }

    /// Linear CKA of every pair from the feature-space statistics (Kornblith et al. 2019,
    /// "Similarity of Neural Network Representations Revisited", ICML, Eq. 6 in feature
    /// space):
    ///
    /// ```text
    /// CKA(X, Y) = ||Xc^T Yc||_F^2 / ( ||Xc^T Xc||_F ||Yc^T Yc||_F )
    /// ```
    ///
    /// with `Xc^T Yc = sum z_x^T z_y - (sum z_x)^T (sum z_y) / n` (f64). The same value as
    /// the whole-data linear CKA, with `O(D^2)` memory instead of the examples.
    pub fn linear_cka(&self) -> SimilarityMatrix {
        let n = self.n;
        let b = self.b.as_ref().unwrap_or(&self.a);
        let frobenius_sq = |m: &[f64]| m.iter().map(|v| v * v).sum::<f64>();
        let self_a: Vec<f64> = (0..self.a.names.len())
            .map(|i| frobenius_sq(&self.a.centred(i, n)).sqrt())
            .collect();
        let self_b: Vec<f64> = match &self.b {
            None => self_a.clone(),
            Some(side) => (0..side.names.len())
                .map(|j| frobenius_sq(&side.centred(j, n)).sqrt())
                .collect(),
        };
        let lb = b.names.len();
        let nf = n as f64;
        let mut values = Vec::with_capacity(self.a.names.len() * lb);
        for i in 0..self.a.names.len() {
            for j in 0..lb {
                let mut cross = self.cross[i * lb + j].clone();
                add_outer(&mut cross, &self.a.sums[i], &b.sums[j], -1.0 / nf);
                let denominator = self_a[i] * self_b[j];
                let value = frobenius_sq(&cross) / denominator;
                values.push((denominator > 0.0 && value.is_finite()).then_some(value));
            }
        }
        SimilarityMatrix::from_row_major(
            repsim_results::Measure::LINEAR_CKA,
            self.a.names.clone(),
            b.names.clone(),
            values,
            n,
        )
    }
}

impl CovarianceAccumulator {
    /// The sums on the host in f64 (`None` before the first batch).
    pub fn state(&self) -> Result<Option<CovarianceState>> {
        let Some(state) = &self.state else {
            return Ok(None);
        };
        let read = |t: &Tensor<2>| host_values(to_host_f64(t.clone())?);
        let side = |s: &SideSums| -> Result<SideState> {
            Ok(SideState {
                names: s.names.clone(),
                shifts: s.shifts.iter().map(read).collect::<Result<_>>()?,
                sums: s.sums.iter().map(read).collect::<Result<_>>()?,
                scatters: s.scatters.iter().map(read).collect::<Result<_>>()?,
            })
        };
        Ok(Some(CovarianceState {
            n: state.n,
            a: side(&state.a)?,
            b: state.b.as_ref().map(side).transpose()?,
            cross: state.cross.iter().map(read).collect::<Result<_>>()?,
        }))
    }

    /// An accumulator holding `state`'s sums on `device` (to finish a merged state with any
    /// measure of the family, or go on adding batches).
    pub fn from_state(state: &CovarianceState, device: &Device) -> Self {
        let dtype = statistics_dtype(device);
        let matrix = |values: &[f64], rows: usize, cols: usize| {
            Tensor::<2>::from_data(
                TensorData::new(values.to_vec(), [rows, cols]),
                (device, dtype),
            )
        };
        let side = |s: &SideState| SideSums {
            names: s.names.clone(),
            shifts: s.shifts.iter().map(|v| matrix(v, 1, v.len())).collect(),
            sums: s.sums.iter().map(|v| matrix(v, 1, v.len())).collect(),
            scatters: s
                .shifts
                .iter()
                .zip(&s.scatters)
                .map(|(shift, v)| matrix(v, shift.len(), shift.len()))
                .collect(),
        };
        let widths_b = state.b.as_ref().unwrap_or(&state.a).widths();
        let lb = widths_b.len();
        let cross = state
            .cross
            .iter()
            .enumerate()
            .map(|(k, v)| matrix(v, state.a.shifts[k / lb].len(), widths_b[k % lb]))
            .collect();
        CovarianceAccumulator {
            state: Some(StreamState {
                n: state.n,
                dtype,
                a: side(&state.a),
                b: state.b.as_ref().map(side),
                cross,
            }),
            statistics: std::cell::OnceCell::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measures::cca::{cca_family_matrix, PwccaConvention, SvdReduction};
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
    fn merged_states_equal_one_stream_and_give_linear_cka() {
        let device = Device::flex();
        let (a, b) = (layers(&device, 11), layers(&device, 15));
        let stream_of = |ranges: &[(usize, usize)], symmetric: bool| {
            let mut acc = CovarianceAccumulator::new();
            for &(start, len) in ranges {
                let ba: Vec<Layer> = a.iter().map(|l| l.rows(start, len)).collect();
                if symmetric {
                    acc.update(&ba, &ba).unwrap();
                } else {
                    let bb: Vec<Layer> = b.iter().map(|l| l.rows(start, len)).collect();
                    acc.update(&ba, &bb).unwrap();
                }
            }
            acc
        };
        for symmetric in [false, true] {
            let whole = stream_of(&[(0, 30), (30, 30), (60, 30)], symmetric);
            let mut merged = stream_of(&[(0, 30)], symmetric).state().unwrap().unwrap();
            // A later shard's shift (its first batch's means) differs: merging rebases it.
            merged
                .merge(
                    &stream_of(&[(30, 30), (60, 30)], symmetric)
                        .state()
                        .unwrap()
                        .unwrap(),
                )
                .unwrap();
            let expected = whole.state().unwrap().unwrap();
            assert_eq!(merged.n, 90);
            for (m, w) in merged
                .cross
                .iter()
                .flatten()
                .zip(expected.cross.iter().flatten())
            {
                assert!((m - w).abs() <= 1e-9 * w.abs().max(1.0), "{m} vs {w}");
            }
            let restored = CovarianceAccumulator::from_state(&merged, &device);
            for measure in [CcaMeasure::Cca, CcaMeasure::Procrustes] {
                let (r, w) = (
                    restored.finish(measure).unwrap(),
                    whole.finish(measure).unwrap(),
                );
                for (x, y) in r.values.iter().flatten().zip(w.values.iter().flatten()) {
                    assert!((x.unwrap() - y.unwrap()).abs() < 1e-9);
                }
            }
            // Linear CKA from the statistics equals the whole-data linear CKA.
            let other = if symmetric { &a } else { &b };
            let direct = crate::measures::cka::linear_cka::linear_cka_matrix(
                &a,
                other,
                crate::HsicEstimator::Biased,
            )
            .unwrap();
            let from_stats = merged.linear_cka();
            for (x, y) in from_stats
                .values
                .iter()
                .flatten()
                .zip(direct.values.iter().flatten())
            {
                assert!((x.unwrap() - y.unwrap()).abs() < 1e-5, "{x:?} vs {y:?}");
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
