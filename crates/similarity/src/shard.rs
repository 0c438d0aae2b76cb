//! Sharded comparisons with exact merges: shard `I` of `N` computes the sufficient statistics
//! of a contiguous range of minibatches (chunks of `batch_size` consecutive examples):
//!
//! - minibatch CKA: the per-batch HSIC sums of every layer pair ([`MinibatchCkaState`]; only
//!   full batches count, as unsharded);
//! - linear CKA, CCA, SVCCA, PWCCA and Procrustes: the feature-space sums `n`, `sum x`,
//!   `sum x^T x`, `sum x^T y` ([`CovarianceState`], every example counts), from which linear
//!   CKA has a feature-space form and the CCA family is computed as unsharded. Layers whose
//!   statistics would be too large to save are refused, naming minibatch CKA.
//!
//! The states of all shards add up to the statistics of the whole pass, so the merged matrix
//! is the single-process one (to rounding of the sums' order, far below 1e-6). Debiased and
//! RBF CKA need every pair of examples at once and are not sharded.
//!
//! A state file ([`CompareState`]) is JSON and describes itself: format and version, the
//! metric and its parameters, each input's layers, shapes and header hash, the example count,
//! the shard and its batch range, the repsim version. [`merge_states`] refuses mixed metrics,
//! parameters or inputs, overlapping or missing ranges (naming them); [`read_state`] refuses a
//! truncated or foreign file.
//!
//! Each shard reads only its own rows of the input files ([`RowSource`]), one batch at a
//! time, so the memory of a shard (and of an unsharded streaming comparison,
//! [`stream_minibatch_cka`]) is one batch of every layer, whatever the files' size.

use std::ops::Range;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::cca::{CcaMeasure, PwccaConvention, SvdReduction};
use crate::conv::ConvMode;
use crate::covariance_stream::{CovarianceAccumulator, CovarianceState};
use crate::error::{Result, SimilarityError};
use crate::layer::Layer;
use crate::matrix::SimilarityMatrix;
use crate::metric::{check_batch_size, Metric};
use crate::minibatch::{MinibatchCka, MinibatchCkaState};
use crate::row_source::RowSource;

/// The `format` of a state file.
pub const STATE_FORMAT: &str = "repsim-compare-state";
/// The version of the state format this build writes and reads.
pub const STATE_VERSION: u32 = 1;
/// The most numbers the feature-space statistics of one state may hold (128 MB as f64):
/// beyond, the comparison is refused with minibatch CKA named instead.
pub const MAX_STATE_NUMBERS: usize = 16 << 20;

/// Shard `index` of `count` (0-based: `0/4` .. `3/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = SimilarityError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| SimilarityError::InvalidParameter {
            name: "--shard",
            message: format!("{s:?}: {why} (I/N with 0 <= I < N, e.g. 0/4)"),
        };
        let (index, count) = s.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let index: usize = index.trim().parse().map_err(|_| bad("I is not a number"))?;
        let count: usize = count.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 || index >= count {
            return Err(bad("out of range"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The whole comparison as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// This shard's minibatches of `total` (contiguous; sizes differ by at most one).
    pub fn batches(self, total: usize) -> Range<usize> {
        (self.index * total / self.count)..((self.index + 1) * total / self.count)
    }
}

/// What a state file says of one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDescription {
    /// The file or directory, as given.
    pub path: PathBuf,
    /// [`RowSource::header_hash`]: layers, shapes (the example count included), dtypes.
    pub header_hash: String,
    /// Layer names.
    pub layers: Vec<String>,
    /// Layer shapes as stored.
    pub shapes: Vec<Vec<usize>>,
}

impl InputDescription {
    /// The description of `source`.
    pub fn of(source: &RowSource) -> Self {
        InputDescription {
            path: source.path().to_path_buf(),
            header_hash: source.header_hash().to_string(),
            layers: source.names(),
            shapes: source.shapes(),
        }
    }
}

/// The parameters a merge must agree on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateParameters {
    /// Minibatch size (and the chunk size every statistic is read in).
    pub batch_size: usize,
    /// How conv layers were shaped (`flatten`, `pool=K`).
    pub conv: String,
    /// SVCCA's reduction.
    pub svd_reduction: SvdReduction,
    /// PWCCA's weighting (`google` or `textbook`).
    pub pwcca_convention: String,
}

/// The sufficient statistics of one shard of a comparison, as written to a state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// [`STATE_VERSION`] of the writer.
    pub version: u32,
    /// The repsim version that wrote it.
    pub repsim_version: String,
    /// The metrics, in the order asked.
    pub metrics: Vec<String>,
    /// Their parameters.
    pub parameters: StateParameters,
    /// Input A.
    pub a: InputDescription,
    /// Input B; `None` when B is A.
    pub b: Option<InputDescription>,
    /// Examples in each input.
    pub n_examples: usize,
    /// Minibatches (chunks of `batch_size` examples, the last one possibly partial) in the
    /// whole comparison.
    pub total_batches: usize,
    /// Which shard this is.
    pub shard: Shard,
    /// Its minibatches, `[start, end)`.
    pub batches: Range<usize>,
    /// Minibatch CKA's per-batch HSIC sums over its full batches (`None` when not asked, or
    /// for a shard with no full batch).
    pub minibatch: Option<MinibatchCkaState>,
    /// The feature-space sums of the linear CKA and CCA-family metrics over its examples.
    pub covariance: Option<CovarianceState>,
}

/// Whether `metric` is computed from the feature-space sums.
fn uses_covariance(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::LinearCka | Metric::Cca | Metric::Svcca | Metric::Pwcca | Metric::Procrustes
    )
}

/// Refuses metrics that cannot be sharded (debiased and RBF CKA need every pair of examples
/// at once), naming minibatch CKA.
pub fn check_shardable(metrics: &[Metric]) -> Result<()> {
    let refused: Vec<&str> = metrics
        .iter()
        .filter(|m| !(**m == Metric::MinibatchCka || uses_covariance(**m)))
        .map(|m| m.name())
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(SimilarityError::InvalidParameter {
        name: "--metric",
        message: format!(
            "{} need{} the Gram of every pair of examples at once and cannot be sharded: use minibatch_cka (or linear_cka, cca, svcca, pwcca, procrustes)",
            refused.join(", "),
            if refused.len() == 1 { "s" } else { "" }
        ),
    })
}

/// What a pass over some minibatches accumulated.
#[derive(Default)]
pub struct StreamedSums {
    /// Minibatch CKA's sums (when asked).
    pub minibatch: Option<MinibatchCka>,
    /// The feature-space sums (when a metric needs them).
    pub covariance: Option<CovarianceAccumulator>,
}

/// The layers of rows `start .. start + len` of `source`, on `device`, shaped by `conv`.
fn batch_layers(
    source: &RowSource,
    start: usize,
    len: usize,
    conv: ConvMode,
    device: &Device,
) -> Result<Vec<Layer>> {
    source
        .read_rows(start, len)?
        .into_iter()
        .map(|l| l.into_layer_with(device, conv))
        .collect()
}

/// Refuses what cannot stream: a conv mode that turns positions into examples.
pub fn check_streamable(conv: ConvMode) -> Result<()> {
    if let ConvMode::SpatialAsSamples { .. } = conv {
        return Err(SimilarityError::InvalidParameter {
            name: "--conv",
            message: "spatial turns every position into an example, so its rows are not the files' rows: stream or shard with --conv flatten or pool=K".into(),
        });
    }
    Ok(())
}

/// The statistics of `metrics` over the minibatches `batches` (chunks of `batch_size`
/// consecutive examples; the last chunk may be partial: minibatch CKA skips it, the
/// feature-space sums take it) of `a` against `b` (`None`: A against itself), reading one
/// chunk of rows at a time. Over every batch, minibatch CKA's sums are the same, in the same
/// order, as [`crate::metric::minibatch_cka_matrix`]'s on the whole files.
pub fn stream_statistics(
    a: &RowSource,
    b: Option<&RowSource>,
    metrics: &[Metric],
    batch_size: usize,
    batches: Range<usize>,
    conv: ConvMode,
    device: &Device,
) -> Result<StreamedSums> {
    check_streamable(conv)?;
    check_shardable(metrics)?;
    let n = a.num_examples();
    check_batch_size(batch_size, n)?;
    let mut sums = StreamedSums {
        minibatch: metrics
            .contains(&Metric::MinibatchCka)
            .then(MinibatchCka::new),
        covariance: metrics
            .iter()
            .any(|m| uses_covariance(*m))
            .then(CovarianceAccumulator::new),
    };
    for batch in batches {
        let start = batch * batch_size;
        let len = batch_size.min(n - start);
        let layers_a = batch_layers(a, start, len, conv, device)?;
        let layers_b = match b {
            None => None,
            Some(b) => Some(batch_layers(b, start, len, conv, device)?),
        };
        let side_b = layers_b.as_deref().unwrap_or(&layers_a);
        if let Some(covariance) = &mut sums.covariance {
            if covariance.n_examples() == 0 {
                let widths = |l: &[Layer]| l.iter().map(Layer::num_features).collect::<Vec<_>>();
                let size = CovarianceState::size_of(
                    &widths(&layers_a),
                    layers_b.as_deref().map(widths).as_deref(),
                );
                if size > MAX_STATE_NUMBERS {
                    return Err(SimilarityError::InvalidParameter {
                        name: "--metric",
                        message: format!(
                            "the feature-space statistics of these layers hold {size} numbers (more than {MAX_STATE_NUMBERS}): shard minibatch_cka instead, whose state is one number per layer pair"
                        ),
                    });
                }
            }
            // B is A: the same slice, so the accumulator keeps one side.
            covariance.update(&layers_a, side_b)?;
        }
        if let Some(minibatch) = &mut sums.minibatch {
            if len == batch_size {
                minibatch.update(&layers_a, side_b)?;
            }
        }
    }
    Ok(sums)
}

/// The number of minibatches (chunks) of `n` examples: the last may be partial.
pub fn batch_count(n: usize, batch_size: usize) -> usize {
    n.div_ceil(batch_size)
}

/// Reads a state file, refusing a truncated or foreign one and another format version.
pub fn read_state(path: &Path) -> Result<CompareState> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SimilarityError::file(path, format!("cannot read: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        SimilarityError::file(
            path,
            format!("not a complete state file (truncated, or not JSON): {e}"),
        )
    })?;
    if value.get("format").and_then(|f| f.as_str()) != Some(STATE_FORMAT) {
        return Err(SimilarityError::file(
            path,
            format!("not a {STATE_FORMAT} file (written by `repsim compare --state`)"),
        ));
    }
    let version = value.get("version").and_then(|v| v.as_u64());
    if version != Some(u64::from(STATE_VERSION)) {
        return Err(SimilarityError::file(
            path,
            format!(
                "state format version {}; this repsim reads version {STATE_VERSION}",
                version.map_or("unknown".to_string(), |v| v.to_string())
            ),
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        SimilarityError::file(path, format!("an incomplete or damaged state file: {e}"))
    })
}

/// Merges the states of every shard of one comparison into its accumulator, after checking
/// that they are of the same metric, parameters and inputs, and that their minibatch ranges
/// cover the whole pass exactly once.
pub fn merge_states(states: &[(PathBuf, CompareState)]) -> Result<MergedState> {
    let Some((first_path, first)) = states.first() else {
        return Err(SimilarityError::InvalidParameter {
            name: "state files",
            message: "none given".into(),
        });
    };
    let differ = |path: &Path, what: &str, a: String, b: String| {
        SimilarityError::file(
            path,
            format!(
                "{what} differs from {}'s ({b} there, {a} here): these shards are not of one comparison",
                first_path.display()
            ),
        )
    };
    for (path, state) in &states[1..] {
        if state.metrics != first.metrics {
            return Err(differ(
                path,
                "the metrics",
                state.metrics.join(","),
                first.metrics.join(","),
            ));
        }
        if state.parameters != first.parameters {
            return Err(differ(
                path,
                "the parameters",
                format!("{:?}", state.parameters),
                format!("{:?}", first.parameters),
            ));
        }
        for (side, mine, theirs) in [
            ("input A", Some(&state.a), Some(&first.a)),
            ("input B", state.b.as_ref(), first.b.as_ref()),
        ] {
            let hash = |d: Option<&InputDescription>| {
                d.map_or("B = A".to_string(), |d| {
                    format!("{} (header {})", d.path.display(), d.header_hash)
                })
            };
            if mine.map(|d| &d.header_hash) != theirs.map(|d| &d.header_hash)
                || mine.map(|d| (&d.layers, &d.shapes)) != theirs.map(|d| (&d.layers, &d.shapes))
            {
                return Err(differ(path, side, hash(mine), hash(theirs)));
            }
        }
        if state.total_batches != first.total_batches || state.n_examples != first.n_examples {
            return Err(differ(
                path,
                "the number of minibatches",
                state.total_batches.to_string(),
                first.total_batches.to_string(),
            ));
        }
    }
    // The ranges: sorted by start, they must tile [0, total) with no gap and no overlap.
    let mut order: Vec<&(PathBuf, CompareState)> = states.iter().collect();
    order.sort_by_key(|(_, s)| (s.batches.start, s.batches.end));
    let describe = |r: &Range<usize>, batch_size: usize| {
        format!(
            "minibatches {}..{} (examples {}..{})",
            r.start,
            r.end,
            r.start * batch_size,
            r.end * batch_size
        )
    };
    let batch_size = first.parameters.batch_size;
    let mut covered = 0;
    let mut previous: Option<&Path> = None;
    for (path, state) in &order {
        let range = &state.batches;
        if range.is_empty() {
            continue;
        }
        if range.start > covered {
            return Err(SimilarityError::InvalidParameter {
                name: "state files",
                message: format!(
                    "{} are in no state file given: a shard is missing",
                    describe(&(covered..range.start), batch_size)
                ),
            });
        }
        if range.start < covered {
            return Err(SimilarityError::file(
                path,
                format!(
                    "its {} overlap {}'s (up to minibatch {covered}): a shard given twice, or shards of two splits",
                    describe(range, batch_size),
                    previous.map_or("another file".into(), |p| p.display().to_string())
                ),
            ));
        }
        covered = range.end;
        previous = Some(path);
    }
    if covered < first.total_batches {
        return Err(SimilarityError::InvalidParameter {
            name: "state files",
            message: format!(
                "{} are in no state file given: a shard is missing",
                describe(&(covered..first.total_batches), batch_size)
            ),
        });
    }
    let mut minibatch: Option<MinibatchCka> = None;
    let mut covariance: Option<CovarianceState> = None;
    for (path, state) in order {
        let damaged = |what: &str| {
            SimilarityError::file(
                path.as_path(),
                format!("its {what} do not fit the other shards' layers: a damaged state file"),
            )
        };
        if let Some(sums) = &state.minibatch {
            let next = MinibatchCka::from_state(sums.clone());
            match &mut minibatch {
                None => minibatch = Some(next),
                Some(merged) => merged.merge(&next).map_err(|_| damaged("minibatch sums"))?,
            }
        }
        if let Some(sums) = &state.covariance {
            match &mut covariance {
                None => covariance = Some(sums.clone()),
                Some(merged) => merged
                    .merge(sums)
                    .map_err(|_| damaged("feature-space sums"))?,
            }
        }
    }
    Ok(MergedState {
        metrics: first.metrics.clone(),
        parameters: first.parameters.clone(),
        n_examples: first.n_examples,
        minibatch,
        covariance,
    })
}

/// The statistics of every shard of one comparison, added up.
pub struct MergedState {
    /// The metrics, in the order asked.
    pub metrics: Vec<String>,
    /// Their parameters.
    pub parameters: StateParameters,
    /// Examples in each input.
    pub n_examples: usize,
    /// Minibatch CKA's sums.
    pub minibatch: Option<MinibatchCka>,
    /// The feature-space sums.
    pub covariance: Option<CovarianceState>,
}

impl MergedState {
    /// The matrix of each metric, in order (the CCA family's decompositions on `device`).
    pub fn matrices(&self, device: &Device) -> Result<Vec<SimilarityMatrix>> {
        let missing = |what: &str| SimilarityError::InvalidParameter {
            name: "state files",
            message: format!("they hold no {what} (no example was read)"),
        };
        let pwcca: PwccaConvention = self.parameters.pwcca_convention.parse()?;
        let mut accumulator = None;
        let mut matrices = Vec::new();
        for name in &self.metrics {
            let metric: Metric = name.parse()?;
            let matrix = match metric {
                Metric::MinibatchCka => {
                    let batch_size = self.parameters.batch_size;
                    let mut matrix = self
                        .minibatch
                        .as_ref()
                        .ok_or_else(|| missing("full minibatch"))?
                        .finish()?
                        .with_parameter("batch_size", batch_size);
                    let (n, left_out) = (self.n_examples, self.n_examples % batch_size);
                    if left_out > 0 {
                        matrix.warnings.push(format!(
                            "the last {left_out} of {n} examples do not fill a batch of {batch_size} and were left out"
                        ));
                    }
                    matrix
                }
                Metric::LinearCka => self
                    .covariance
                    .as_ref()
                    .ok_or_else(|| missing("feature-space sums"))?
                    .linear_cka(),
                Metric::Cca | Metric::Svcca | Metric::Pwcca | Metric::Procrustes => {
                    let state = self
                        .covariance
                        .as_ref()
                        .ok_or_else(|| missing("feature-space sums"))?;
                    let accumulator: &CovarianceAccumulator = accumulator
                        .get_or_insert_with(|| CovarianceAccumulator::from_state(state, device));
                    let measure = match metric {
                        Metric::Cca => CcaMeasure::Cca,
                        Metric::Svcca => CcaMeasure::Svcca(self.parameters.svd_reduction),
                        Metric::Pwcca => CcaMeasure::Pwcca(pwcca),
                        _ => CcaMeasure::Procrustes,
                    };
                    accumulator.finish(measure)?
                }
                other => {
                    return Err(SimilarityError::InvalidParameter {
                        name: "state files",
                        message: format!("{other} is not computed from shards' statistics"),
                    })
                }
            };
            matrices.push(matrix);
        }
        Ok(matrices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_tile_the_batches() {
        for total in [1usize, 2, 7, 10, 31] {
            for count in [1usize, 2, 3, 7] {
                let mut next = 0;
                for index in 0..count {
                    let range = Shard { index, count }.batches(total);
                    assert_eq!(range.start, next);
                    next = range.end;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn shard_specs_parse() {
        assert_eq!(
            "2/7".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 7 }
        );
        for bad in ["7/7", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
