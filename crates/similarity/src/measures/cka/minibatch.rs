//! Minibatch CKA (Nguyen, Raghu and Kornblith 2021, "Do Wide and Deep Networks Learn the Same
//! Things?", ICLR): linear CKA from sums of unbiased HSIC over minibatches,
//!
//! ```text
//! CKA_minibatch(X, Y) = sum_b HSIC_1(K_b, L_b) / sqrt( sum_b HSIC_1(K_b, K_b) sum_b HSIC_1(L_b, L_b) )
//! ```
//!
//! with `K_b = X_b X_b^T` the linear Gram of batch `b` and HSIC_1 the unbiased estimator of
//! Song et al. (2012). Memory is `O(batch^2)` per layer whatever the number of examples.
//!
//! # How a batch is computed
//!
//! For each layer, once per batch:
//!
//! 0. The Gram of the raw batch is checked for float32 trouble with one read-back per side
//!    (`trace(K)`, `sum(K)`; see `BatchRows::new`): a layer with a large offset, tiny or huge
//!    values, a constant batch or a non-finite value is conditioned first
//!    ([`crate::conditioning::shift_and_scale_batch`]: shifted by its first example and scaled
//!    to a largest absolute value of 1; HSIC is invariant to the shift) and its Gram computed
//!    again. Ordinary layers keep their raw Gram, multiplied by an exact power of four. The
//!    scales are undone on the host in f64, so tiny, huge or offset activations keep their
//!    digits.
//! 1. The Gram `X X^T` ([`crate::measures::cka::gram::gram`]): on flex by faer's lower-triangular product on
//!    the batch's storage ([`crate::measures::cka::host_gram`]); elsewhere in one burn matmul (split along the
//!    features for wide layers; layers of equal width stacked, [`crate::measures::cka::gram::stacked_grams`]).
//!    Optionally only its lower block triangle in burn ops: with `k` row blocks of `b = m / k`
//!    examples, panel `a` is `X[a] X[0..=a]^T` (`b x (a+1) b`), a matmul of row views,
//!    `(k+1) / (2k)` of the full Gram's FLOPs (5/8 for `k = 4`). On flex the narrow panels run
//!    at under half the rate of one square matmul, so the full Gram is faster there (see
//!    `default_triangle_blocks`).
//! 2. Row sums `r = K 1` are gathered from the panels (row sums, plus column sums of the
//!    blocks below the diagonal), and the panels are double-centred in place of the Gram:
//!    `Kc = K - r 1^T / m - 1 r^T / m + sum(r) / m^2`. The unbiased HSIC is unchanged by this
//!    centring, and it keeps f32 sums small.
//! 3. With `d = diag(Kc)`, for centred Grams (Kc 1 = 0) Song et al.'s estimator reduces to
//!
//!    ```text
//!    m (m-3) HSIC_1(K, L) = <Kc, Lc> - (1 + 2/(m-2)) d_K . d_L + sum(d_K) sum(d_L) / ((m-1)(m-2))
//!    ```
//!
//!    so each layer becomes one row `[blocks of Kc (off-diagonal ones times sqrt 2), d, sum d]`
//!    and **all** cross-layer HSIC terms of the batch come from one matmul of the stacked rows
//!    (weighted by `[1.., -(1 + 2/(m-2)).., 1/((m-1)(m-2))]`).
//!
//! Only `La x Lb + 2 (La + Lb)` scalars per batch are read back; the sums are kept in f64 on
//! the host. The state serialises (serde) and two accumulators over disjoint batches merge,
//! so the work can be sharded across processes or machines.

use burn::tensor::{Bool, Tensor};
use serde::{Deserialize, Serialize};

use crate::conditioning::shift_and_scale_batch;
use crate::error::{Result, SimilarityError};
use crate::layer::{check_same_examples, explain_non_finite, read_back, Layer};
use crate::matrix::SimilarityMatrix;
use crate::measures::cka::gram::stacked_grams;

/// The serialisable sums of a minibatch CKA accumulator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinibatchCkaState {
    /// Layer names of A (rows).
    pub rows: Vec<String>,
    /// Layer names of B (columns).
    pub cols: Vec<String>,
    /// `sum_b HSIC_1(K_b, L_b)`, row-major `rows x cols`.
    pub hsic_ab: Vec<f64>,
    /// `sum_b HSIC_1(K_b, K_b)` per layer of A.
    pub hsic_aa: Vec<f64>,
    /// `sum_b HSIC_1(L_b, L_b)` per layer of B.
    pub hsic_bb: Vec<f64>,
    /// `sum_b trace(K_b)` of A's batch Grams; batches are centred before their Grams (see
    /// [`crate::conditioning`]), so this equals `centred_trace_aa` up to rounding.
    pub trace_aa: Vec<f64>,
    /// `sum_b trace(Kc_b)` of the centred Grams of A.
    pub centred_trace_aa: Vec<f64>,
    /// `sum_b trace(L_b)` of B.
    pub trace_bb: Vec<f64>,
    /// `sum_b trace(Lc_b)` of B.
    pub centred_trace_bb: Vec<f64>,
    /// Examples seen.
    pub n_examples: usize,
    /// Batches seen.
    pub n_batches: usize,
}

/// Minibatch CKA accumulator: `update` per batch, `finish` for the matrix.
///
/// ```no_run
/// # use repsim_similarity::{Layer, MinibatchCka};
/// # fn batches() -> Vec<(Vec<Layer>, Vec<Layer>)> { vec![] }
/// let mut cka = MinibatchCka::new();
/// for (layers_a, layers_b) in batches() {
///     cka.update(&layers_a, &layers_b)?;
/// }
/// let matrix = cka.finish()?;
/// # Ok::<(), repsim_similarity::SimilarityError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MinibatchCka {
    state: Option<MinibatchCkaState>,
    triangle_blocks: Option<usize>,
    /// Device tensors that depend only on the batch shape, built at the first batch.
    batch_constants: Option<BatchConstants>,
}

/// The HSIC weight row and the diagonal mask of one batch shape, built once and reused by
/// every batch of that shape.
#[derive(Clone, Debug)]
struct BatchConstants {
    m: usize,
    blocks: usize,
    device: burn::tensor::Device,
    /// `[1.., -(1 + 2/(m-2)).., 1/((m-1)(m-2))]`, `1 x F`.
    weights: Tensor<2>,
    /// `true` off the diagonal of a `b x b` block.
    off_diagonal: Tensor<2, Bool>,
}

impl BatchConstants {
    fn new(m: usize, blocks: usize, device: &burn::tensor::Device) -> Self {
        let b = m / blocks;
        let gram_len = b * b * blocks * (blocks + 1) / 2;
        BatchConstants {
            m,
            blocks,
            device: device.clone(),
            weights: hsic_weights(gram_len, m, device),
            off_diagonal: Tensor::<2, Bool>::diag_mask([b, b], 0, device),
        }
    }
}

impl MinibatchCka {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fixes the number of row blocks `k` of the Gram's lower block triangle (1, the default,
    /// computes the full Gram in one matmul; `k` must divide the batch size, else 1 is used).
    pub fn with_triangle_blocks(mut self, blocks: usize) -> Self {
        self.triangle_blocks = Some(blocks.max(1));
        self
    }

    /// An accumulator continuing from a saved state.
    pub fn from_state(state: MinibatchCkaState) -> Self {
        MinibatchCka {
            state: Some(state),
            triangle_blocks: None,
            batch_constants: None,
        }
    }

    /// The sums so far (`None` before the first batch).
    pub fn state(&self) -> Option<&MinibatchCkaState> {
        self.state.as_ref()
    }

    /// Adds one batch: the same `m` examples through every layer of A and of B. Pass the same
    /// slice twice to compare a model with itself: each Gram is then computed once.
    pub fn update(&mut self, layers_a: &[Layer], layers_b: &[Layer]) -> Result<()> {
        let m = check_same_examples(layers_a.iter().chain(layers_b))?;
        if m < 4 {
            return Err(SimilarityError::TooFewExamples {
                estimator: "minibatch CKA (unbiased HSIC per batch)",
                needed: 4,
                layer: layers_a[0].name.clone(),
                n: m,
            });
        }
        let names = |layers: &[Layer]| layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        let (rows, cols) = (names(layers_a), names(layers_b));
        let offset = self.state.as_ref().map_or(0, |s| s.n_examples);
        if let Some(state) = &self.state {
            if state.rows != rows || state.cols != cols {
                return Err(SimilarityError::MergeMismatch(format!(
                    "this batch has layers {rows:?} x {cols:?}, earlier batches had {:?} x {:?}",
                    state.rows, state.cols
                )));
            }
        }

        let blocks = self
            .triangle_blocks
            .unwrap_or_else(|| default_triangle_blocks(m));
        let blocks = if m % blocks == 0 { blocks } else { 1 };
        let symmetric = std::ptr::eq(layers_a, layers_b);
        let (la, lb) = (layers_a.len(), layers_b.len());

        let device = layers_a[0].matrix.device();
        // The batch constants are kept across batches of the same shape and device.
        let constants = match self.batch_constants.take() {
            Some(c) if c.m == m && c.blocks == blocks && c.device == device => c,
            _ => BatchConstants::new(m, blocks, &device),
        };
        let constants = &*self.batch_constants.insert(constants);
        let rows_a = BatchRows::new(layers_a, constants)?;
        let rows_b = if symmetric {
            None
        } else {
            Some(BatchRows::new(layers_b, constants)?)
        };
        let rows_b_ref = rows_b.as_ref().unwrap_or(&rows_a);

        let weights = constants.weights.clone();
        let weighted_a = rows_a.features.clone().mul(weights.clone());
        let cross = weighted_a
            .clone()
            .matmul(rows_b_ref.features.clone().transpose());
        let self_a = weighted_a
            .mul(rows_a.features.clone())
            .sum_dim(1)
            .reshape([la]);
        let self_b = if symmetric {
            self_a.clone()
        } else {
            rows_b_ref
                .features
                .clone()
                .mul(weights)
                .mul(rows_b_ref.features.clone())
                .sum_dim(1)
                .reshape([lb])
        };
        let values = read_back(Tensor::cat(
            vec![
                cross.reshape([la * lb]),
                self_a,
                self_b,
                rows_a.traces.clone(),
                rows_b_ref.traces.clone(),
                rows_a.scales.clone(),
                rows_b_ref.scales.clone(),
            ],
            0,
        ))?;
        let (cross, rest) = values.split_at(la * lb);
        let (self_a, rest) = rest.split_at(la);
        let (self_b, rest) = rest.split_at(lb);
        let (traces_a, rest) = rest.split_at(2 * la);
        let (traces_b, scales) = rest.split_at(2 * lb);
        let (scales_a, scales_b) = scales.split_at(la);

        // A NaN or infinity anywhere in a layer's batch makes its self term non-finite.
        for (i, v) in self_a.iter().enumerate() {
            if !v.is_finite() {
                return Err(explain_non_finite(&layers_a[i].rows(0, m), offset));
            }
        }
        for (j, v) in self_b.iter().enumerate() {
            if !v.is_finite() {
                return Err(explain_non_finite(&layers_b[j].rows(0, m), offset));
            }
        }
        if let Some(k) = cross.iter().position(|v| !v.is_finite()) {
            return Err(explain_non_finite(&layers_a[k / lb], offset));
        }
        let cross: Vec<f64> = (0..la * lb)
            .map(|k| unscale(cross[k], scales_a[k / lb], scales_b[k % lb]))
            .collect();
        let self_a: Vec<f64> = (0..la)
            .map(|i| unscale(self_a[i], scales_a[i], scales_a[i]))
            .collect();
        let self_b: Vec<f64> = (0..lb)
            .map(|j| unscale(self_b[j], scales_b[j], scales_b[j]))
            .collect();
        // Traces scale with s^2: unscale them as an HSIC term with a unit partner.
        let unscale_trace = |t: f64, s: f64| unscale(t, s, 1.0);

        let state = self.state.get_or_insert_with(|| MinibatchCkaState {
            hsic_ab: vec![0.0; la * lb],
            hsic_aa: vec![0.0; la],
            hsic_bb: vec![0.0; lb],
            trace_aa: vec![0.0; la],
            centred_trace_aa: vec![0.0; la],
            trace_bb: vec![0.0; lb],
            centred_trace_bb: vec![0.0; lb],
            rows: rows.clone(),
            cols: cols.clone(),
            n_examples: 0,
            n_batches: 0,
        });
        let norm = (m * (m - 3)) as f64;
        add_scaled(&mut state.hsic_ab, &cross, norm);
        add_scaled(&mut state.hsic_aa, &self_a, norm);
        add_scaled(&mut state.hsic_bb, &self_b, norm);
        for i in 0..la {
            state.trace_aa[i] += unscale_trace(traces_a[2 * i], scales_a[i]);
            state.centred_trace_aa[i] += unscale_trace(traces_a[2 * i + 1], scales_a[i]);
        }
        for j in 0..lb {
            state.trace_bb[j] += unscale_trace(traces_b[2 * j], scales_b[j]);
            state.centred_trace_bb[j] += unscale_trace(traces_b[2 * j + 1], scales_b[j]);
        }
        state.n_examples += m;
        state.n_batches += 1;
        Ok(())
    }

    /// Adds the sums of another accumulator over disjoint batches of the same layers.
    pub fn merge(&mut self, other: &MinibatchCka) -> Result<()> {
        let Some(theirs) = &other.state else {
            return Ok(());
        };
        let Some(ours) = &mut self.state else {
            self.state = Some(theirs.clone());
            return Ok(());
        };
        if ours.rows != theirs.rows || ours.cols != theirs.cols {
            return Err(SimilarityError::MergeMismatch(format!(
                "layers {:?} x {:?} against {:?} x {:?}",
                ours.rows, ours.cols, theirs.rows, theirs.cols
            )));
        }
        let add = |a: &mut Vec<f64>, b: &Vec<f64>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add(&mut ours.hsic_ab, &theirs.hsic_ab);
        add(&mut ours.hsic_aa, &theirs.hsic_aa);
        add(&mut ours.hsic_bb, &theirs.hsic_bb);
        add(&mut ours.trace_aa, &theirs.trace_aa);
        add(&mut ours.centred_trace_aa, &theirs.centred_trace_aa);
        add(&mut ours.trace_bb, &theirs.trace_bb);
        add(&mut ours.centred_trace_bb, &theirs.centred_trace_bb);
        ours.n_examples += theirs.n_examples;
        ours.n_batches += theirs.n_batches;
        Ok(())
    }

    /// The CKA matrix `sum HSIC_ab / sqrt(sum HSIC_aa sum HSIC_bb)`; cells of layers with zero
    /// variance are `None`, with a warning naming the layer.
    pub fn finish(&self) -> Result<SimilarityMatrix> {
        self.finish_with(None)
    }

    /// [`MinibatchCka::finish`] for callers whose batches were `batch_size` examples with a
    /// smaller last one: the matrix records `batch_size` as the measure's.
    pub fn finish_with_batch_size(&self, batch_size: usize) -> Result<SimilarityMatrix> {
        self.finish_with(Some(batch_size))
    }

    fn finish_with(&self, nominal_batch_size: Option<usize>) -> Result<SimilarityMatrix> {
        let state = self
            .state
            .as_ref()
            .ok_or(SimilarityError::InvalidParameter {
                name: "minibatch CKA",
                message: "no batch was added".into(),
            })?;
        let mut warnings = Vec::new();
        let mut defined = |names: &[String], hsic: &[f64], trace: &[f64], centred: &[f64]| {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    // Batches are centred with constant features zeroed before their Grams,
                    // so a layer without variance has centred traces of exactly 0.
                    let ok = hsic[i] > 0.0 && centred[i] > 0.0 && trace[i] >= 0.0;
                    if !ok
                        && !warnings
                            .iter()
                            .any(|w: &String| w.contains(&format!("`{name}`")))
                    {
                        warnings.push(format!(
                            "layer `{name}` has zero variance across the examples: its cells are \
                             undefined"
                        ));
                    }
                    ok
                })
                .collect::<Vec<bool>>()
        };
        let ok_a = defined(
            &state.rows,
            &state.hsic_aa,
            &state.trace_aa,
            &state.centred_trace_aa,
        );
        let ok_b = defined(
            &state.cols,
            &state.hsic_bb,
            &state.trace_bb,
            &state.centred_trace_bb,
        );
        let lb = state.cols.len();
        let values = (0..state.rows.len() * lb)
            .map(|k| {
                let (i, j) = (k / lb, k % lb);
                (ok_a[i] && ok_b[j])
                    .then(|| state.hsic_ab[k] / (state.hsic_aa[i] * state.hsic_bb[j]).sqrt())
            })
            .collect();
        // Without a nominal size: every batch counted has the same size where the callers pass
        // full batches of one size; otherwise the measure records the mean, and says so.
        let batch_size = nominal_batch_size.unwrap_or(state.n_examples / state.n_batches.max(1));
        let mut matrix = SimilarityMatrix::from_row_major(
            repsim_results::Measure::MinibatchCka { batch_size },
            state.rows.clone(),
            state.cols.clone(),
            values,
            state.n_examples,
        )
        .with_parameter("estimator", crate::HsicEstimator::Unbiased)
        .with_parameter("batches", state.n_batches);
        if nominal_batch_size.is_none() && state.n_examples % state.n_batches.max(1) != 0 {
            matrix.set_parameter("batch_sizes", "unequal: batch_size is their mean");
        }
        matrix.warnings = warnings;
        Ok(matrix)
    }
}

fn add_scaled(sums: &mut [f64], values: &[f64], divisor: f64) {
    sums.iter_mut()
        .zip(values)
        .for_each(|(s, v)| *s += v / divisor);
}

/// Multiply-add FLOPs (2 per multiply-add) of the Gram phase of a batch of `m` examples of `d`
/// features with `blocks` row blocks: `(blocks + 1) / (2 blocks)` of the full Gram's `2 m^2 d`.
pub fn gram_phase_flops(m: usize, d: usize, blocks: usize) -> f64 {
    let b = (m / blocks) as f64;
    2.0 * b * b * d as f64 * (blocks * (blocks + 1) / 2) as f64
}

/// The default number of row blocks of the Gram's lower triangle for a batch of `m`: 1, the
/// full Gram in one matmul. The triangle does 5/8 of the FLOPs with 4 blocks, but on burn's flex
/// backend the narrow panel matmuls run at under half the rate of one square one, so it was
/// slower at every width measured (`benches/gram_throughput.rs`); it stays available through
/// [`MinibatchCka::with_triangle_blocks`] for devices where small matmuls are efficient.
pub fn default_triangle_blocks(_m: usize) -> usize {
    1
}

/// Weights turning `row_K . row_L` into `m (m-3) HSIC_1(K, L)` (see the module docs), for rows
/// holding `gram_len` Gram entries.
fn hsic_weights(gram_len: usize, m: usize, device: &burn::tensor::Device) -> Tensor<2> {
    let mf = m as f64;
    let gram = Tensor::<2>::ones([1, gram_len], device);
    let diag = Tensor::<2>::ones([1, m], device).mul_scalar(-(1.0 + 2.0 / (mf - 2.0)));
    let total = Tensor::<2>::ones([1, 1], device).mul_scalar(1.0 / ((mf - 1.0) * (mf - 2.0)));
    Tensor::cat(vec![gram, diag, total], 1)
}

/// Every layer of one side of a batch as one stacked row each.
struct BatchRows {
    /// `L x F`: `[weighted centred Gram blocks, d, sum d]` per layer.
    features: Tensor<2>,
    /// `2 L`: `trace(K), trace(Kc)` per layer.
    traces: Tensor<1>,
    /// `L`: the factor each layer's centred batch was scaled by (0 when constant); the HSIC
    /// terms are unscaled on the host in f64.
    scales: Tensor<1>,
}

/// The largest `trace(K) / trace(Kc)` of a raw batch Gram that minibatch CKA centres as it is
/// (see the module docs, step 0). The ratio is `sum ||x_i||^2 / sum ||x_i - mean||^2`: about 1.5 for
/// ReLU features, and the factor by which float32 rounding of `K` is magnified in `Kc`.
pub const RAW_GRAM_MAX_OFFSET_RATIO: f64 = 64.0;

/// The range of mean squared activations `trace(K) / (m d)` whose products float32 holds with
/// all their digits, as powers of two: outside it, a batch is conditioned first.
const RAW_GRAM_MAGNITUDE_EXPONENTS: std::ops::RangeInclusive<i32> = -80..=80;

impl BatchRows {
    /// With full Grams (one row block), each layer's Gram is computed from its raw batch first,
    /// layers of the same width stacked into one batched matmul
    /// ([`crate::measures::cka::gram::stacked_grams`]), so that every core has products of its own. One
    /// read-back of `trace(K)` and `sum(K)` per layer then checks that float32 kept the Gram's
    /// digits: finite, mean squared activation within `2^-80..2^80`, and an offset small
    /// enough that centring loses little (`trace(K) <= 64 trace(Kc)`, with
    /// `trace(Kc) = trace(K) - sum(K) / m`). Such a Gram is multiplied by an exact power of four
    /// to a mean diagonal near 1. A layer failing the check (a large offset, tiny or huge
    /// values, a constant batch) is computed again from its conditioned batch
    /// ([`crate::conditioning::shift_and_scale_batch`]: shifted by its first example and
    /// scaled), as every layer was before; conditioning every batch took a third of the
    /// benchmark's time, three memory passes over every layer. With several row blocks every
    /// layer is conditioned first.
    fn new(layers: &[Layer], constants: &BatchConstants) -> Result<Self> {
        if constants.blocks != 1 {
            return Ok(Self::from_rows(
                layers
                    .iter()
                    .map(|layer| Self::conditioned_row(layer, constants))
                    .collect(),
            ));
        }
        let m = constants.m;
        let mut grams: Vec<Option<Tensor<2>>> = vec![None; layers.len()];
        for group in equal_width_groups(layers, crate::measures::cka::gram::stacks_well) {
            if let [i] = group[..] {
                grams[i] = Some(crate::measures::cka::gram::gram(layers[i].matrix.clone()));
                continue;
            }
            let stack = Tensor::stack(group.iter().map(|&i| layers[i].matrix.clone()).collect(), 0);
            let stacked = stacked_grams(stack);
            for (k, &i) in group.iter().enumerate() {
                grams[i] = Some(stacked.clone().narrow(0, k, 1).reshape([m, m]));
            }
        }
        let grams: Vec<Tensor<2>> = grams.into_iter().flatten().collect();
        let sums = grams
            .iter()
            .flat_map(|gram| {
                [
                    gram.clone()
                        .mask_fill(constants.off_diagonal.clone(), 0.0)
                        .sum(),
                    gram.clone().sum(),
                ]
            })
            .collect();
        let sums = read_back(Tensor::cat(sums, 0))?;
        let rows = grams
            .into_iter()
            .zip(layers)
            .enumerate()
            .map(|(i, (gram, layer))| {
                let width = layer.matrix.dims()[1];
                match raw_gram_scale_exponent(sums[2 * i], sums[2 * i + 1], m, width) {
                    Some(j) => {
                        // K 4^j: exact, and the HSIC terms are unscaled by (2^j)^2 per side.
                        let gram = gram.mul_scalar(2f64.powi(2 * j));
                        let (row, trace) = row_from_panels(vec![gram], 1, &constants.off_diagonal);
                        let scale = Tensor::<1>::from_floats([2f32.powi(j)], &constants.device);
                        (row, trace, scale)
                    }
                    None => Self::conditioned_row(layer, constants),
                }
            })
            .collect();
        Ok(Self::from_rows(rows))
    }

    /// A layer's row from its conditioned batch (shifted by its first example, scaled).
    fn conditioned_row(
        layer: &Layer,
        constants: &BatchConstants,
    ) -> (Tensor<2>, Tensor<1>, Tensor<1>) {
        let (conditioned, scale) = shift_and_scale_batch(layer);
        let panels = gram_panels(&conditioned.matrix, constants.blocks);
        let (row, trace) = row_from_panels(panels, constants.blocks, &constants.off_diagonal);
        (row, trace, scale)
    }

    fn from_rows(rows: Vec<(Tensor<2>, Tensor<1>, Tensor<1>)>) -> Self {
        let mut features = Vec::with_capacity(rows.len());
        let mut traces = Vec::with_capacity(rows.len());
        let mut scales = Vec::with_capacity(rows.len());
        for (row, trace, scale) in rows {
            features.push(row);
            traces.push(trace);
            scales.push(scale);
        }
        BatchRows {
            features: Tensor::cat(features, 0),
            traces: Tensor::cat(traces, 0),
            scales: Tensor::cat(scales, 0),
        }
    }
}

/// For a raw batch Gram of `m` examples and `width` features with `trace(K) = trace` and
/// `sum(K) = total`: the exponent `j` such that `4^j K` has a mean diagonal near 1, or `None`
/// when float32 may have lost its digits and the batch has to be conditioned first (see
/// [`BatchRows::new`]).
fn raw_gram_scale_exponent(trace: f64, total: f64, m: usize, width: usize) -> Option<i32> {
    if !(trace.is_finite() && total.is_finite() && trace > 0.0) {
        return None;
    }
    let centred_trace = trace - total / m as f64;
    if !(centred_trace > 0.0 && trace <= RAW_GRAM_MAX_OFFSET_RATIO * centred_trace) {
        return None;
    }
    let mean_square = trace / (m * width) as f64;
    if !RAW_GRAM_MAGNITUDE_EXPONENTS.contains(&(mean_square.log2().floor() as i32)) {
        return None;
    }
    let mean_diagonal = trace / m as f64;
    Some((-mean_diagonal.log2() / 2.0).round() as i32)
}

/// The layers' indices grouped by feature width, in order of first appearance; a layer whose
/// width does not `stack` is a group of its own.
fn equal_width_groups(layers: &[Layer], stack: impl Fn(&Tensor<2>) -> bool) -> Vec<Vec<usize>> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let width = layer.matrix.dims()[1];
        match groups
            .iter_mut()
            .find(|(w, _)| *w == width && stack(&layer.matrix))
        {
            Some((_, members)) => members.push(i),
            None => groups.push((width, vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// `value / (s_a^2 s_b^2)`: an HSIC term of layers scaled by `s_a` and `s_b`, unscaled; 0 when
/// either layer was constant in the batch (scale 0).
fn unscale(value: f64, scale_a: f64, scale_b: f64) -> f64 {
    if scale_a == 0.0 || scale_b == 0.0 {
        0.0
    } else {
        value / (scale_a * scale_a) / (scale_b * scale_b)
    }
}

/// The Gram phase of one layer in one batch: its row `[weighted centred Gram blocks, d, sum d]`
/// (`1 x F`) and `[trace(K), trace(Kc)]`, from the lower block triangle of the Gram with
/// `blocks` row blocks (see the module docs). `blocks` must divide the batch size.
pub fn gram_row(x: &Tensor<2>, blocks: usize) -> (Tensor<2>, Tensor<1>) {
    let b = x.dims()[0] / blocks;
    let off_diagonal = Tensor::<2, Bool>::diag_mask([b, b], 0, &x.device());
    gram_row_masked(x, blocks, &off_diagonal)
}

/// The Gram phase's row (as [`gram_row`] with one block) from a layer's full Gram `K`
/// (`m x m`), however it was computed: benchmarks time the Gram paths through it.
pub fn gram_row_from_gram(gram: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
    let m = gram.dims()[0];
    let off_diagonal = Tensor::<2, Bool>::diag_mask([m, m], 0, &gram.device());
    row_from_panels(vec![gram], 1, &off_diagonal)
}

/// [`gram_row`] with the `b x b` off-diagonal mask given.
fn gram_row_masked(
    x: &Tensor<2>,
    blocks: usize,
    off_diagonal: &Tensor<2, Bool>,
) -> (Tensor<2>, Tensor<1>) {
    row_from_panels(gram_panels(x, blocks), blocks, off_diagonal)
}

/// The panels of the Gram's lower block triangle with `blocks` row blocks of `b` examples:
/// panel `a` is `X[a] X[0..=a]^T` (`b x (a+1) b`); one panel, the full Gram, for one block.
fn gram_panels(x: &Tensor<2>, blocks: usize) -> Vec<Tensor<2>> {
    let b = x.dims()[0] / blocks;
    (0..blocks)
        .map(|a| {
            let rows = x.clone().narrow(0, a * b, b);
            let upto = x.clone().narrow(0, 0, (a + 1) * b);
            if blocks == 1 {
                // The full Gram: split-K where the shape calls for it (see `gram::gram`).
                crate::measures::cka::gram::gram(rows)
            } else {
                rows.matmul(upto.transpose())
            }
        })
        .collect()
}

/// A layer's row `[weighted centred Gram blocks, d, sum d]` and `[trace(K), trace(Kc)]` from
/// its Gram panels ([`gram_panels`]).
fn row_from_panels(
    panels: Vec<Tensor<2>>,
    blocks: usize,
    off_diagonal: &Tensor<2, Bool>,
) -> (Tensor<2>, Tensor<1>) {
    let b = panels[0].dims()[0];
    let m = b * blocks;
    let device = panels[0].device();

    // Row sums of the full Gram: each panel's row sums, plus the column sums of the blocks
    // below the diagonal (the transposed upper triangle).
    let lower = Tensor::cat(panels.iter().map(|p| p.clone().sum_dim(1)).collect(), 0); // m x 1
    let mut row_sums = lower.reshape([1, m]);
    for (a, panel) in panels.iter().enumerate().skip(1) {
        let below = panel.clone().narrow(1, 0, a * b).sum_dim(0); // 1 x a b
        let padded = Tensor::cat(vec![below, Tensor::zeros([1, m - a * b], &device)], 1);
        row_sums = row_sums.add(padded);
    }
    let total = row_sums.clone().sum_dim(1); // 1 x 1
    let mf = m as f64;
    let grand = total.clone().div_scalar(mf * mf); // 1 x 1
    let row_means = row_sums.div_scalar(mf); // 1 x m

    let sqrt2 = std::f64::consts::SQRT_2;
    let mut pieces = Vec::with_capacity(blocks + 2);
    let mut diag_raw = Vec::with_capacity(blocks);
    for (a, panel) in panels.into_iter().enumerate() {
        let width = (a + 1) * b;
        let own_means = row_means.clone().narrow(1, a * b, b).transpose(); // b x 1
        let col_means = row_means.clone().narrow(1, 0, width); // 1 x width
        let centred = panel
            .clone()
            .sub(own_means)
            .sub(col_means)
            .add(grand.clone());
        let diagonal_block = panel.narrow(1, a * b, b);
        diag_raw.push(
            diagonal_block
                .mask_fill(off_diagonal.clone(), 0.0)
                .sum_dim(1)
                .reshape([1, b]),
        );
        let weighted = if a == 0 {
            centred
        } else {
            let weights = Tensor::cat(
                vec![
                    Tensor::<2>::ones([1, a * b], &device).mul_scalar(sqrt2),
                    Tensor::<2>::ones([1, b], &device),
                ],
                1,
            );
            centred.mul(weights)
        };
        pieces.push(weighted.reshape([1, b * width]));
    }
    // d = diag(Kc) = diag(K) - 2 r / m + sum(r) / m^2.
    let diag_raw = Tensor::cat(diag_raw, 1); // 1 x m
    let trace_raw = diag_raw.clone().sum_dim(1);
    let d = diag_raw.sub(row_means.mul_scalar(2.0)).add(grand);
    let trace_centred = d.clone().sum_dim(1);
    pieces.push(d);
    pieces.push(trace_centred.clone());
    let traces = Tensor::cat(vec![trace_raw, trace_centred], 1).reshape([2]);
    (Tensor::cat(pieces, 1), traces)
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
    use crate::measures::cka::hsic::HsicEstimator;
    use crate::measures::cka::linear_cka::linear_cka_matrix;
    use crate::testing::random_matrix;
    use burn::tensor::Device;

    fn layers(n: usize, seed: u64, device: &Device) -> Vec<Layer> {
        let base = random_matrix(n, 6, seed, device);
        vec![
            Layer::new("l0", base.clone()).unwrap(),
            Layer::new(
                "l1",
                base.clone()
                    .matmul(random_matrix(6, 9, seed + 1, device))
                    .abs(),
            )
            .unwrap(),
            Layer::new(
                "l2",
                random_matrix(n, 140, seed + 2, device).add_scalar(2.0),
            )
            .unwrap(),
        ]
    }

    /// The same values as `layer`, as a transposed view: flex's host Gram cannot read it in
    /// place, so its Grams take the burn-op path (`gram::device_gram`).
    fn strided_copy(layer: &Layer) -> Layer {
        let transposed_storage = layer.matrix.clone().transpose().into_data();
        let [d, n] = [layer.num_features(), layer.num_examples()];
        let stored = Tensor::<2>::from_data(transposed_storage, &layer.matrix.device());
        assert_eq!(stored.dims(), [d, n]);
        // Not `Layer::new`: its reshape would make the view contiguous again.
        Layer {
            name: layer.name.clone(),
            matrix: stored.transpose(),
        }
    }

    #[test]
    fn host_and_burn_op_gram_paths_give_the_same_matrix() {
        let device = Device::flex();
        let (a, b) = (layers(96, 21, &device), layers(96, 22, &device));
        assert!(crate::measures::cka::host_gram::takes(
            &a[2].rows(0, 32).matrix
        ));
        assert!(!crate::measures::cka::host_gram::takes(
            &strided_copy(&a[2]).rows(0, 32).matrix
        ));
        let run = |a: &[Layer], b: &[Layer]| {
            let mut cka = MinibatchCka::new();
            for s in 0..3 {
                let batch = |side: &[Layer]| side.iter().map(|l| l.rows(s * 32, 32)).collect();
                let (ba, bb): (Vec<Layer>, Vec<Layer>) = (batch(a), batch(b));
                cka.update(&ba, &bb).unwrap();
            }
            cka.finish().unwrap()
        };
        let host = run(&a, &b);
        let strided = |side: &[Layer]| side.iter().map(strided_copy).collect::<Vec<_>>();
        let burn_ops = run(&strided(&a), &strided(&b));
        for (row_h, row_b) in host.values.iter().zip(&burn_ops.values) {
            for (h, o) in row_h.iter().zip(row_b) {
                let (h, o) = (h.unwrap(), o.unwrap());
                assert!((h - o).abs() < 1e-6, "host {h} vs burn ops {o}");
            }
        }
    }

    #[test]
    fn one_batch_equals_debiased_cka_for_every_block_count() {
        let device = Device::flex();
        let a = layers(128, 1, &device);
        let b = layers(128, 10, &device);
        let reference = linear_cka_matrix(&a, &b, HsicEstimator::Unbiased).unwrap();
        for blocks in [1, 2, 4, 8] {
            let mut cka = MinibatchCka::new().with_triangle_blocks(blocks);
            cka.update(&a, &b).unwrap();
            let m = cka.finish().unwrap();
            for i in 0..3 {
                for j in 0..3 {
                    let (got, want) = (m.values[i][j].unwrap(), reference.values[i][j].unwrap());
                    assert!(
                        (got - want).abs() < 1e-4,
                        "k={blocks} [{i}][{j}] {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn raw_grams_are_taken_only_where_float32_kept_their_digits() {
        // m = 4, 10 features: trace 40, sum 40 -> trace(Kc) = 30, ratio 1.33, mean diagonal 10.
        assert_eq!(raw_gram_scale_exponent(40.0, 40.0, 4, 10), Some(-2));
        // An offset: trace(Kc) = 100 - 396 / 4 = 1, ratio 100 > 64.
        assert_eq!(raw_gram_scale_exponent(100.0, 396.0, 4, 10), None);
        // Constant (trace(Kc) = 0), zero, non-finite.
        assert_eq!(raw_gram_scale_exponent(40.0, 160.0, 4, 10), None);
        assert_eq!(raw_gram_scale_exponent(0.0, 0.0, 4, 10), None);
        assert_eq!(raw_gram_scale_exponent(f64::INFINITY, 1.0, 4, 10), None);
        assert_eq!(raw_gram_scale_exponent(40.0, f64::NAN, 4, 10), None);
        // Mean squares of 2^-105 and 2^96: conditioned first.
        assert_eq!(raw_gram_scale_exponent(1e-30, 0.0, 4, 10), None);
        assert_eq!(raw_gram_scale_exponent(1e30, 0.0, 4, 10), None);
    }

    /// Song et al.'s unbiased HSIC of two batches of `m` examples, in f64 on the host.
    fn unbiased_hsic64(x: &[f64], y: &[f64], m: usize) -> f64 {
        let gram = |v: &[f64]| -> Vec<f64> {
            let d = v.len() / m;
            (0..m * m)
                .map(|e| (0..d).map(|f| v[e / m * d + f] * v[e % m * d + f]).sum())
                .collect()
        };
        crate::testing::song_unbiased_hsic(&gram(x), &gram(y), m)
    }

    #[test]
    fn batches_of_different_scales_and_paths_sum_like_float64() {
        // Layer l2 (offset 2, trace(K)/trace(Kc) about 5) takes the raw-Gram path; batch 1 is
        // scaled by 100 (another power-of-four exponent) and batch 2 shifted by 1e4 (which
        // sends every layer through the conditioned path). The sums must weigh the batches
        // as float64 does.
        let device = Device::flex();
        let a = layers(96, 5, &device);
        let b = layers(96, 6, &device);
        let m = 32;
        let mut cka = MinibatchCka::new();
        let mut hsic = vec![0.0; 3 * 3 + 3 + 3];
        for s in 0..3 {
            let batch_a: Vec<Layer> = a
                .iter()
                .map(|l| {
                    let rows = l.rows(s * m, m);
                    let matrix = match s {
                        1 => rows.matrix.mul_scalar(100.0),
                        2 => rows.matrix.add_scalar(1e4),
                        _ => rows.matrix,
                    };
                    Layer::new(&l.name, matrix).unwrap()
                })
                .collect();
            let batch_b: Vec<Layer> = b.iter().map(|l| l.rows(s * m, m)).collect();
            cka.update(&batch_a, &batch_b).unwrap();
            let host = |l: &Layer| read_back(l.matrix.clone()).unwrap();
            let (xs, ys): (Vec<_>, Vec<_>) = (
                batch_a.iter().map(host).collect(),
                batch_b.iter().map(host).collect(),
            );
            for i in 0..3 {
                for j in 0..3 {
                    hsic[i * 3 + j] += unbiased_hsic64(&xs[i], &ys[j], m);
                }
                hsic[9 + i] += unbiased_hsic64(&xs[i], &xs[i], m);
                hsic[12 + i] += unbiased_hsic64(&ys[i], &ys[i], m);
            }
        }
        let got = cka.finish().unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let want = hsic[i * 3 + j] / (hsic[9 + i] * hsic[12 + j]).sqrt();
                let value = got.values[i][j].unwrap();
                assert!((value - want).abs() < 1e-5, "[{i}][{j}] {value} vs {want}");
            }
        }
    }

    #[test]
    fn merged_accumulators_equal_one_accumulator() {
        let device = Device::flex();
        let a = layers(96, 3, &device);
        let b = layers(96, 4, &device);
        let mut one = MinibatchCka::new();
        let (mut first, mut second) = (MinibatchCka::new(), MinibatchCka::new());
        for s in 0..3 {
            let (ba, bb): (Vec<_>, Vec<_>) = (
                a.iter().map(|l| l.rows(s * 32, 32)).collect(),
                b.iter().map(|l| l.rows(s * 32, 32)).collect(),
            );
            one.update(&ba, &bb).unwrap();
            if s < 2 {
                first.update(&ba, &bb).unwrap()
            } else {
                second.update(&ba, &bb).unwrap()
            }
        }
        let json = serde_json::to_string(second.state().unwrap()).unwrap();
        let restored = MinibatchCka::from_state(serde_json::from_str(&json).unwrap());
        first.merge(&restored).unwrap();
        let (x, y) = (one.finish().unwrap(), first.finish().unwrap());
        assert_eq!(y.n_examples, Some(96));
        for (rx, ry) in x.values.iter().zip(&y.values) {
            for (vx, vy) in rx.iter().zip(ry) {
                assert!((vx.unwrap() - vy.unwrap()).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn a_model_against_itself_is_symmetric_with_unit_diagonal() {
        let device = Device::flex();
        let a = layers(64, 5, &device);
        let mut cka = MinibatchCka::new();
        cka.update(&a, &a).unwrap();
        let m = cka.finish().unwrap();
        for i in 0..3 {
            assert!((m.values[i][i].unwrap() - 1.0).abs() < 1e-5);
            for j in 0..3 {
                assert!((m.values[i][j].unwrap() - m.values[j][i].unwrap()).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn nan_is_reported_with_its_global_example_index() {
        let device = Device::flex();
        let a = layers(8, 6, &device);
        let mut cka = MinibatchCka::new();
        cka.update(&a, &a).unwrap();
        let mut values = crate::testing::random_values(8, 3, 9);
        values[3 * 5 + 2] = f32::INFINITY;
        let bad = Tensor::<2>::from_data(burn::tensor::TensorData::new(values, [8, 3]), &device);
        let b = vec![Layer::new("l0", bad).unwrap(), a[1].clone(), a[2].clone()];
        let err = cka.update(&b, &b).unwrap_err();
        assert!(
            matches!(err, SimilarityError::NonFinite { ref layer, example: 13, feature: 2, .. } if layer == "l0"),
            "{err}"
        );
    }

    #[test]
    fn constant_layer_gives_undefined_cells() {
        let device = Device::flex();
        let mut a = layers(16, 7, &device);
        a.push(Layer::new("dead", Tensor::<2>::ones([16, 5], &device)).unwrap());
        let mut cka = MinibatchCka::new();
        cka.update(&a, &a).unwrap();
        let m = cka.finish().unwrap();
        assert!(m.values[3].iter().all(Option::is_none));
        assert!(m.values[0][0].is_some());
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    }
}
