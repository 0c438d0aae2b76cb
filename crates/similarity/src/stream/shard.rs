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
//! metric and its parameters, each input's layers, shapes and header hash, its size and content
//! fingerprint ([`RowSource::fingerprint`]) and an xxh3 hash of the rows of every minibatch the
//! shard read, the example count, the shard and its batch range, the repsim version, and a
//! checksum over all of it. [`read_state`] refuses a truncated, foreign or damaged file (the
//! checksum), and one whose numbers contradict each other (counts against the range, sums not
//! finite); [`merge_states`] refuses mixed metrics, parameters or inputs (by content: shards
//! that read different files, or one file changed between shards, are named), overlapping or
//! missing ranges (naming them). The merged result carries the inputs' identity
//! ([`InputIdentity`]): the same for every split into shards and for the unsharded pass.
//!
//! Each shard reads only its own rows of the input files ([`RowSource`]), one batch at a
//! time, so the memory of a shard (and of an unsharded streaming comparison,
//! [`stream_statistics`]) is one batch of every layer, whatever the files' size.

use std::ops::Range;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SimilarityError};
use crate::io::conv::ConvMode;
use crate::io::row_source::RowSource;
use crate::layer::Layer;
use crate::matrix::SimilarityMatrix;
use crate::measures::cca::{CcaMeasure, PwccaConvention, SvdReduction};
use crate::measures::cka::hsic::HsicEstimator;
use crate::measures::cka::minibatch::check_batch_size;
use crate::measures::cka::minibatch::{MinibatchCka, MinibatchCkaState};
use crate::stream::comparison::{refuse_unstreamable, uses_covariance, Comparison, WholeData};
use crate::stream::covariance_stream::{CovarianceAccumulator, CovarianceState};
use repsim_results::Measure;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// The `format` of a state file.
pub const STATE_FORMAT: &str = "repsim-compare-state";
/// The version of the state format this build writes (3: the measures typed, each with its
/// parameters). Version 2 (the measures by name, SVCCA's and PWCCA's parameters beside them)
/// is read too; version 1 had no content hashes or checksum and is refused, naming the version.
pub const STATE_VERSION: u32 = 3;
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

    /// This shard's minibatches of `total` (contiguous; sizes differ by at most one). Computed
    /// in 128 bits: no index, count or total overflows.
    pub fn batches(self, total: usize) -> Range<usize> {
        let at = |i: usize| (i as u128 * total as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
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
    /// [`RowSource::bytes`]: the size of its files.
    pub bytes: u64,
    /// [`RowSource::fingerprint`]: the whole content, cheaply.
    pub fingerprint: String,
    /// xxh3 of the rows of each minibatch this shard read, in order (as 16 hex digits).
    pub batch_hashes: Vec<String>,
}

impl InputDescription {
    /// The description of `source`, whose minibatches hashed to `batch_hashes`.
    pub fn of(source: &RowSource, batch_hashes: &[u64]) -> Self {
        InputDescription {
            path: source.path().to_path_buf(),
            header_hash: source.header_hash().to_string(),
            layers: source.names(),
            shapes: source.shapes(),
            bytes: source.bytes(),
            fingerprint: source.fingerprint().to_string(),
            batch_hashes: batch_hashes.iter().map(|h| batch_hash_text(*h)).collect(),
        }
    }
}

/// What a comparison's result says of one input: where it was, its size and fingerprint, and
/// `rows_hash`, an xxh3 over the hashes of every minibatch's rows in order. The same for the
/// unsharded pass and for any split into shards, so two results of the same data and batch size
/// carry the same identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputIdentity {
    /// The file or directory, as given (to the first shard, when merged).
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// [`RowSource::fingerprint`].
    pub fingerprint: String,
    /// xxh3 of the per-minibatch row hashes, in order.
    pub rows_hash: String,
}

impl InputIdentity {
    /// The identity of an input from its per-minibatch hashes (in order, all of them).
    pub fn new(path: &Path, bytes: u64, fingerprint: &str, batch_hashes: &[String]) -> Self {
        InputIdentity {
            path: path.to_path_buf(),
            bytes,
            fingerprint: fingerprint.to_string(),
            rows_hash: format!("{:016x}", xxh3_64(batch_hashes.join(",").as_bytes())),
        }
    }
}

/// The parameters of the pass a merge must agree on (the measures' own are in
/// [`CompareState::measures`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateParameters {
    /// The chunk size every statistic is read in (minibatch CKA's batch size).
    pub batch_size: usize,
    /// How conv layers were shaped (`flatten`, `pool=K`).
    pub conv: String,
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
    /// The measures with their parameters, in the order asked.
    pub measures: Vec<Measure>,
    /// The pass's parameters.
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
    /// xxh3 (16 hex digits) of this state as compact JSON with the checksum empty
    /// ([`CompareState::seal`]); a changed digit anywhere is refused by [`read_state`].
    #[serde(default)]
    pub checksum: String,
}

impl CompareState {
    fn payload_hash(&self) -> Result<String> {
        let mut unsealed = self.clone();
        unsealed.checksum = String::new();
        hash_of(&unsealed)
    }

    /// Sets the checksum over everything else (call last, before writing).
    pub fn seal(&mut self) -> Result<()> {
        self.checksum = self.payload_hash()?;
        Ok(())
    }

    /// The minibatches of this state's range that are full (minibatch CKA counts only those).
    fn full_batches(&self) -> usize {
        let (n, size) = (self.n_examples, self.parameters.batch_size);
        self.batches
            .clone()
            .filter(|b| (b + 1).saturating_mul(size) <= n)
            .count()
    }

    /// The examples in this state's range.
    fn examples(&self) -> usize {
        let (n, size) = (self.n_examples, self.parameters.batch_size);
        let end = self.batches.end.saturating_mul(size).min(n);
        end.saturating_sub(self.batches.start.saturating_mul(size))
    }

    /// Refuses a state whose numbers contradict each other: the shard and its range, the
    /// example and batch counts of its sums against the range, the hashes against the range,
    /// sums that are not finite.
    fn check_consistent(&self, path: &Path) -> Result<()> {
        let bad = |what: String| {
            SimilarityError::file(path, format!("{what}: a damaged or hand-edited state file"))
        };
        let size = self.parameters.batch_size;
        if size == 0 {
            return Err(bad("batch size 0".into()));
        }
        check_shardable(&self.measures).map_err(|e| bad(e.to_string()))?;
        for measure in &self.measures {
            measure.validate().map_err(|e| bad(e.to_string()))?;
            if let Measure::MinibatchCka { batch_size } = measure {
                if *batch_size != size {
                    return Err(bad(format!(
                        "minibatch_cka with batch size {batch_size} read in chunks of {size}"
                    )));
                }
            }
        }
        if self.shard.count == 0 || self.shard.index >= self.shard.count {
            return Err(bad(format!("shard {}", self.shard)));
        }
        if self.total_batches != batch_count(self.n_examples, size) {
            return Err(bad(format!(
                "{} minibatches of {size} for {} examples",
                self.total_batches, self.n_examples
            )));
        }
        if self.batches != self.shard.batches(self.total_batches) {
            return Err(bad(format!(
                "minibatches {}..{} are not shard {}'s of {} ({:?})",
                self.batches.start,
                self.batches.end,
                self.shard,
                self.total_batches,
                self.shard.batches(self.total_batches)
            )));
        }
        for (side, input) in [("A", Some(&self.a)), ("B", self.b.as_ref())] {
            if let Some(input) = input {
                if input.batch_hashes.len() != self.batches.len() {
                    return Err(bad(format!(
                        "{} row hashes of input {side} for {} minibatches",
                        input.batch_hashes.len(),
                        self.batches.len()
                    )));
                }
            }
        }
        if let Some(m) = &self.minibatch {
            let full = self.full_batches();
            if m.n_batches != full || m.n_examples != full * size {
                return Err(bad(format!(
                    "minibatch sums over {} batches ({} examples), but its range holds {full} full batches of {size}",
                    m.n_batches, m.n_examples
                )));
            }
            let (rows, cols) = (m.rows.len(), m.cols.len());
            if m.hsic_ab.len() != rows * cols
                || [&m.hsic_aa, &m.trace_aa, &m.centred_trace_aa]
                    .iter()
                    .any(|v| v.len() != rows)
                || [&m.hsic_bb, &m.trace_bb, &m.centred_trace_bb]
                    .iter()
                    .any(|v| v.len() != cols)
            {
                return Err(bad("minibatch sums of the wrong lengths".into()));
            }
            let all_finite = m
                .hsic_ab
                .iter()
                .chain(&m.hsic_aa)
                .chain(&m.hsic_bb)
                .chain(&m.trace_aa)
                .chain(&m.trace_bb)
                .chain(&m.centred_trace_aa)
                .chain(&m.centred_trace_bb)
                .all(|v| v.is_finite());
            if !all_finite {
                return Err(bad("a minibatch sum is not finite".into()));
            }
        } else if self
            .measures
            .iter()
            .any(|m| matches!(m, Measure::MinibatchCka { .. }))
            && self.full_batches() > 0
        {
            return Err(bad("minibatch sums missing".into()));
        }
        if let Some(c) = &self.covariance {
            if c.n != self.examples() {
                return Err(bad(format!(
                    "feature-space sums over {} examples, but its range holds {}",
                    c.n,
                    self.examples()
                )));
            }
            let side_values = |side: &crate::stream::covariance_stream::SideState| {
                side.shifts
                    .iter()
                    .chain(&side.sums)
                    .chain(&side.scatters)
                    .all(|v| v.iter().all(|x| x.is_finite()))
            };
            if !side_values(&c.a)
                || !c.b.as_ref().is_none_or(side_values)
                || !c.cross.iter().all(|v| v.iter().all(|x| x.is_finite()))
            {
                return Err(bad("a feature-space sum is not finite".into()));
            }
        } else if self.measures.iter().any(uses_covariance) && self.examples() > 0 {
            return Err(bad("feature-space sums missing".into()));
        }
        Ok(())
    }
}

/// Refuses measures that cannot be sharded, each with its reason, naming minibatch CKA and the
/// feature-space measures that can.
pub fn check_shardable(measures: &[Measure]) -> Result<()> {
    refuse_unstreamable(measures, "be sharded")
}

/// What a pass over some minibatches accumulated.
#[derive(Default)]
pub struct StreamedSums {
    /// Minibatch CKA's sums (when asked).
    pub minibatch: Option<MinibatchCka>,
    /// The feature-space sums (when a metric needs them).
    pub covariance: Option<CovarianceAccumulator>,
    /// xxh3 of each minibatch's rows of A, in order.
    pub batch_hashes_a: Vec<u64>,
    /// The same of B (empty when B is A).
    pub batch_hashes_b: Vec<u64>,
}

/// A minibatch's row hash as a state file records it (16 hex digits).
fn batch_hash_text(hash: u64) -> String {
    format!("{hash:016x}")
}

/// The layers of rows `start .. start + len` of `source`, on `device`, shaped by `conv`, and
/// the xxh3 of their bytes.
fn batch_layers(
    source: &RowSource,
    start: usize,
    len: usize,
    conv: ConvMode,
    device: &Device,
) -> Result<(Vec<Layer>, u64)> {
    let mut hash = Xxh3::new();
    let layers = source
        .read_rows_hashed(start, len, &mut hash)?
        .into_iter()
        .map(|l| l.into_layer_with(device, conv))
        .collect::<Result<Vec<_>>>()?;
    Ok((layers, hash.digest()))
}

/// Checks a minibatch (read chunk) size for `measures` on `n` examples: minibatch CKA needs
/// [`check_batch_size`]'s rules and its own batch size; the feature-space sums only read in
/// chunks, so any positive size does (a chunk larger than the data is the whole data).
pub fn check_chunk_size(measures: &[Measure], batch_size: usize, n: usize) -> Result<()> {
    for measure in measures {
        if let Measure::MinibatchCka { batch_size: own } = measure {
            if *own != batch_size {
                return Err(SimilarityError::InvalidParameter {
                    name: "--batch-size",
                    message: format!(
                        "minibatch_cka's batch size {own} and the chunk size {batch_size} differ: a streamed comparison reads the files in minibatch CKA's batches"
                    ),
                });
            }
            return check_batch_size(batch_size, n);
        }
    }
    if batch_size == 0 {
        return Err(SimilarityError::InvalidParameter {
            name: "--batch-size",
            message: "0: the examples are read in chunks of this many rows".into(),
        });
    }
    Ok(())
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

/// The statistics of `measures` over the minibatches `batches` (chunks of `batch_size`
/// consecutive examples; the last chunk may be partial: minibatch CKA skips it, the
/// feature-space sums take it) of `a` against `b` (`None`: A against itself), reading one
/// chunk of rows at a time. Over every batch, minibatch CKA's sums are the same, in the same
/// order, as [`crate::stream::comparison::minibatch_cka_matrix`]'s on the whole files.
pub fn stream_statistics(
    a: &RowSource,
    b: Option<&RowSource>,
    measures: &[Measure],
    batch_size: usize,
    batches: Range<usize>,
    conv: ConvMode,
    device: &Device,
) -> Result<StreamedSums> {
    check_streamable(conv)?;
    check_shardable(measures)?;
    let n = a.num_examples();
    check_chunk_size(measures, batch_size, n)?;
    let mut comparison = Comparison::new(measures, WholeData::Stream)?;
    let mut sums = StreamedSums::default();
    for batch in batches {
        let start = batch * batch_size;
        let len = batch_size.min(n - start);
        let (layers_a, hash_a) = batch_layers(a, start, len, conv, device)?;
        sums.batch_hashes_a.push(hash_a);
        let layers_b = match b {
            None => None,
            Some(b) => {
                let (layers, hash) = batch_layers(b, start, len, conv, device)?;
                sums.batch_hashes_b.push(hash);
                Some(layers)
            }
        };
        if comparison.n_examples() == 0 && measures.iter().any(uses_covariance) {
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
        comparison.update(&layers_a, layers_b.as_deref())?;
    }
    (sums.minibatch, sums.covariance) = comparison.into_sums();
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
    if version == Some(2) {
        return read_state_v2(path, value);
    }
    if version != Some(u64::from(STATE_VERSION)) {
        return Err(SimilarityError::file(
            path,
            format!(
                "state format version {}; this repsim reads versions 2 and {STATE_VERSION}{}",
                version.map_or("unknown".to_string(), |v| v.to_string()),
                if version == Some(1) {
                    " (version 1 has no content hashes or checksum): compute the shards again with this repsim"
                } else {
                    ""
                }
            ),
        ));
    }
    let state: CompareState = serde_json::from_value(value).map_err(|e| {
        SimilarityError::file(path, format!("an incomplete or damaged state file: {e}"))
    })?;
    check_checksum(path, &state.checksum, &state.payload_hash()?)?;
    state.check_consistent(path)?;
    Ok(state)
}

/// xxh3 (16 hex digits) of `value` as compact JSON: a state's checksum, taken with its
/// `checksum` field empty.
fn hash_of(value: &impl Serialize) -> Result<String> {
    let bytes = serde_json::to_vec(value).map_err(|e| SimilarityError::InvalidParameter {
        name: "state",
        message: format!("cannot serialise: {e}"),
    })?;
    Ok(format!("{:016x}", xxh3_64(&bytes)))
}

/// Refuses a state whose stored checksum is not the one computed from its contents.
fn check_checksum(path: &Path, stored: &str, computed: &str) -> Result<()> {
    if stored == computed {
        return Ok(());
    }
    Err(SimilarityError::file(
        path,
        format!(
            "its checksum does not match its contents (stored {stored:?}, computed {computed}): a damaged or edited state file"
        ),
    ))
}

/// A version-2 state as that version wrote it: the measures by name, SVCCA's reduction and
/// PWCCA's convention beside them. Read to check its checksum (over this layout), then
/// converted.
#[derive(Clone, Serialize, Deserialize)]
struct StateV2 {
    format: String,
    version: u32,
    repsim_version: String,
    metrics: Vec<String>,
    parameters: ParametersV2,
    a: InputDescription,
    b: Option<InputDescription>,
    n_examples: usize,
    total_batches: usize,
    shard: Shard,
    batches: Range<usize>,
    minibatch: Option<MinibatchCkaState>,
    covariance: Option<CovarianceState>,
    #[serde(default)]
    checksum: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct ParametersV2 {
    batch_size: usize,
    conv: String,
    svd_reduction: SvdReduction,
    pwcca_convention: String,
}

fn read_state_v2(path: &Path, value: serde_json::Value) -> Result<CompareState> {
    let old: StateV2 = serde_json::from_value(value).map_err(|e| {
        SimilarityError::file(path, format!("an incomplete or damaged state file: {e}"))
    })?;
    let mut unsealed = old.clone();
    unsealed.checksum = String::new();
    check_checksum(path, &old.checksum, &hash_of(&unsealed)?)?;
    let p = &old.parameters;
    let convention: PwccaConvention = p
        .pwcca_convention
        .parse()
        .map_err(|e| SimilarityError::file(path, format!("{e}")))?;
    let measures = old
        .metrics
        .iter()
        .map(|name| {
            Ok(match Measure::from_name(name)? {
                Measure::MinibatchCka { .. } => Measure::MinibatchCka {
                    batch_size: p.batch_size,
                },
                Measure::Cca(CcaMeasure::Svcca(_)) => {
                    Measure::Cca(CcaMeasure::Svcca(p.svd_reduction))
                }
                Measure::Cca(CcaMeasure::Pwcca(_)) => Measure::Cca(CcaMeasure::Pwcca(convention)),
                other => other,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| SimilarityError::file(path, e.to_string()))?;
    let state = CompareState {
        format: old.format,
        version: old.version,
        repsim_version: old.repsim_version,
        measures,
        parameters: StateParameters {
            batch_size: p.batch_size,
            conv: p.conv.clone(),
        },
        a: old.a,
        b: old.b,
        n_examples: old.n_examples,
        total_batches: old.total_batches,
        shard: old.shard,
        batches: old.batches,
        minibatch: old.minibatch,
        covariance: old.covariance,
        checksum: old.checksum,
    };
    state.check_consistent(path)?;
    Ok(state)
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
        if state.measures != first.measures {
            let specs = |s: &CompareState| {
                s.measures
                    .iter()
                    .map(Measure::spec)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return Err(differ(path, "the measures", specs(state), specs(first)));
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
            // Same layers and shapes; the same data? Size and content fingerprint.
            if let (Some(mine), Some(theirs)) = (mine, theirs) {
                if (mine.bytes, &mine.fingerprint) != (theirs.bytes, &theirs.fingerprint) {
                    return Err(SimilarityError::file(
                        path,
                        format!(
                            "its {side} ({}, {} bytes, content {}) is not the data {} read as {side} ({}, {} bytes, content {}): these shards read different files, or the file changed between shards",
                            mine.path.display(),
                            mine.bytes,
                            mine.fingerprint,
                            first_path.display(),
                            theirs.path.display(),
                            theirs.bytes,
                            theirs.fingerprint
                        ),
                    ));
                }
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
    let n = first.n_examples;
    let describe = |r: &Range<usize>, batch_size: usize| {
        format!(
            "minibatches {}..{} (examples {}..{})",
            r.start,
            r.end,
            r.start.saturating_mul(batch_size).min(n),
            r.end.saturating_mul(batch_size).min(n)
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
    let states_in_order: Vec<&CompareState> = order.iter().map(|(_, s)| s).collect();
    let mut minibatch: Option<MinibatchCka> = None;
    let mut covariance: Option<CovarianceState> = None;
    for (path, state) in order.iter().copied() {
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
    let identity = |described: &InputDescription,
                    side: fn(&CompareState) -> Option<&InputDescription>| {
        let hashes: Vec<String> = states_in_order
            .iter()
            .flat_map(|s| side(s).map(|d| d.batch_hashes.clone()).unwrap_or_default())
            .collect();
        InputIdentity::new(
            &described.path,
            described.bytes,
            &described.fingerprint,
            &hashes,
        )
    };
    let a = identity(&first.a, |s| Some(&s.a));
    let b = first.b.as_ref().map(|b| identity(b, |s| s.b.as_ref()));
    Ok(MergedState {
        measures: first.measures.clone(),
        parameters: first.parameters.clone(),
        n_examples: first.n_examples,
        minibatch,
        covariance,
        identity: (a, b),
    })
}

/// Reads the inputs again where the state files say they are and checks every minibatch's
/// rows against the hashes each shard recorded: a file changed anywhere since a shard read it,
/// even between the fingerprint's samples, is refused, naming the shard file, the input and the
/// minibatches. Costs one pass over the inputs' rows (no arithmetic); inputs that cannot be
/// opened here (another machine's paths) are an error too, naming them, since nothing would be
/// verified.
pub fn verify_inputs(states: &[(PathBuf, CompareState)]) -> Result<()> {
    for (path, state) in states {
        let size = state.parameters.batch_size;
        for (side, input) in [("input A", Some(&state.a)), ("input B", state.b.as_ref())] {
            let Some(input) = input else { continue };
            let source = RowSource::open(&input.path).map_err(|e| {
                SimilarityError::file(
                    path,
                    format!("cannot verify its {side}, {}: {e}", input.path.display()),
                )
            })?;
            for (batch, recorded) in state.batches.clone().zip(&input.batch_hashes) {
                let start = batch * size;
                let len = size.min(state.n_examples.saturating_sub(start));
                let mut hash = Xxh3::new();
                source.read_rows_hashed(start, len, &mut hash)?;
                if batch_hash_text(hash.digest()) != *recorded {
                    return Err(SimilarityError::file(
                        path,
                        format!(
                            "its {side}, {}, changed since this shard read it: minibatch {batch} (examples {start}..{}) hashes otherwise now",
                            input.path.display(),
                            start + len
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The statistics of every shard of one comparison, added up.
pub struct MergedState {
    /// The measures, in the order asked.
    pub measures: Vec<Measure>,
    /// The pass's parameters.
    pub parameters: StateParameters,
    /// Examples in each input.
    pub n_examples: usize,
    /// Minibatch CKA's sums.
    pub minibatch: Option<MinibatchCka>,
    /// The feature-space sums.
    pub covariance: Option<CovarianceState>,
    /// What was read: input A's identity and B's (`None` when B is A).
    pub identity: (InputIdentity, Option<InputIdentity>),
}

impl MergedState {
    /// The matrix of each metric, in order (the CCA family's decompositions on `device`).
    pub fn matrices(&self, device: &Device) -> Result<Vec<SimilarityMatrix>> {
        let missing = |what: &str| SimilarityError::InvalidParameter {
            name: "state files",
            message: format!("they hold no {what} (no example was read)"),
        };
        let mut accumulator = None;
        let mut matrices = Vec::new();
        for measure in &self.measures {
            let matrix = match *measure {
                Measure::MinibatchCka { batch_size } => {
                    let mut matrix = self
                        .minibatch
                        .as_ref()
                        .ok_or_else(|| missing("full minibatch"))?
                        .finish()?;
                    let (n, left_out) = (self.n_examples, self.n_examples % batch_size);
                    if left_out > 0 {
                        matrix.warnings.push(format!(
                            "the last {left_out} of {n} examples do not fill a batch of {batch_size} and were left out"
                        ));
                    }
                    matrix
                }
                Measure::LinearCka {
                    estimator: HsicEstimator::Biased,
                } => self
                    .covariance
                    .as_ref()
                    .ok_or_else(|| missing("feature-space sums"))?
                    .linear_cka(),
                Measure::Cca(cca) => {
                    let state = self
                        .covariance
                        .as_ref()
                        .ok_or_else(|| missing("feature-space sums"))?;
                    let accumulator: &CovarianceAccumulator = accumulator
                        .get_or_insert_with(|| CovarianceAccumulator::from_state(state, device));
                    accumulator.finish(cca)?
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
    fn huge_shard_counts_do_not_overflow() {
        let shard: Shard = "18446744073709551614/18446744073709551615".parse().unwrap();
        assert_eq!(shard.batches(4), 3..4);
        assert_eq!(
            Shard {
                index: 0,
                count: usize::MAX
            }
            .batches(4),
            0..0
        );
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
