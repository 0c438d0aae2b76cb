//! The [`Tracker`]: similarity of every layer during training, from any burn training loop.
//!
//! ```ignore
//! let mut tracker = Tracker::new(TrackerConfig::new("run/track"), probe_images)?; // Tensor<4>
//! // at the end of an epoch (or every k steps), with your own module:
//! tracker.observe(epoch, |x| model.valid().forward_with_layers(x))?;
//! // or with one of repsim's models:
//! tracker.observe(epoch, &model)?;
//! let report = tracker.finish()?; // convergence tables: each layer at each epoch vs its final self
//! ```
//!
//! `observe` takes a closure from a batch of probe inputs to named tensors, or a repsim model
//! ([`crate::observe`]), and writes what the measures need of every layer to
//! `DIR/epoch-000e.npz`: a layer with fewer features than probe examples as it is, a wider one
//! as its centred Gram `Xc Xc^T` (`n x n`: one matmul, no decomposition while training). When
//! read back, a Gram becomes the layer's example-space coordinates
//! ([`coordinates_from_centred_gram`]: `n x rank`, which keep CKA, SVCCA and Procrustes
//! exactly). Memory does not grow with the number of observations; disk grows by at most
//! `4 n min(n, D)` bytes per layer per observation (`DIR/index.json` records the figure).
//!
//! The convergence table follows Raghu et al. 2017 (SVCCA, Fig. 4) and Morcos et al. 2018
//! (PWCCA): for each layer `l` and observed epoch `t`, `s(A_l(t), A_l(T))` with `T` the last
//! observed epoch. Bottom-up convergence means lower layers reach a high value earlier.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use repsim_model::{Probe, TimeReduction};
use repsim_similarity::files::{read_activations, write_npz};
use repsim_similarity::{
    centred_gram, coordinates_from_centred_gram, similarity_matrix, ConvMode, HostLayer, Layer,
    Measure, SimilarityMatrix,
};
use serde::{Deserialize, Serialize};

use crate::durable::{read_json, write_json};
use crate::error::{Result, TrainError};
use crate::network::Inputs;
use crate::observe::Observe;
use crate::probing::{layers_of, probe_batches};

/// The Tracker's settings.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Where observations are stored (`RUN/track` in a training run).
    pub dir: PathBuf,
    /// The measures of the convergence table, each with its parameters (default SVCCA,
    /// PWCCA, linear CKA).
    pub measures: Vec<Measure>,
    /// Which layers (default: blocks).
    pub probe: Probe,
    /// How sequence activations become one row per example.
    pub time: TimeReduction,
    /// How conv feature maps become matrices (flatten, or average-pool to K x K; spatial
    /// modes are refused: they change the number of rows).
    pub conv: ConvMode,
    /// Probe examples per forward pass.
    pub batch_size: usize,
    /// The device the measures run on (default: flex).
    pub device: Device,
    /// What the observations' labels count: epochs (the default) or optimisation steps.
    pub unit: TimeUnit,
}

/// What the labels of the Tracker's observations count. It names the observation files
/// (`epoch-0003.npz`, `step-0300.npz`) and the convergence tables' columns (`epoch 3`,
/// `step 300`), and is recorded in `index.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Epochs: 0 is the initialisation, `e` the end of epoch `e`.
    #[default]
    Epoch,
    /// Optimisation steps: 0 is the initialisation, `s` the model after `s` steps.
    Step,
}

impl TimeUnit {
    /// `epoch` or `step`.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Epoch => "epoch",
            TimeUnit::Step => "step",
        }
    }
}

impl TrackerConfig {
    /// Defaults, storing under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TrackerConfig {
            dir: dir.into(),
            measures: vec![Measure::svcca(), Measure::PWCCA, Measure::LINEAR_CKA],
            probe: Probe::Blocks,
            time: TimeReduction::Last,
            conv: ConvMode::Flatten,
            batch_size: 250,
            device: Device::flex(),
            unit: TimeUnit::Epoch,
        }
    }

    /// What the observation labels count (epochs by default).
    pub fn with_unit(mut self, unit: TimeUnit) -> Self {
        self.unit = unit;
        self
    }

    /// The measures of the convergence table.
    pub fn with_measures(mut self, measures: Vec<Measure>) -> Self {
        self.measures = measures;
        self
    }

    /// Which layers to observe.
    pub fn with_probe(mut self, probe: Probe) -> Self {
        self.probe = probe;
        self
    }

    /// How conv maps become matrices.
    pub fn with_conv(mut self, conv: ConvMode) -> Self {
        self.conv = conv;
        self
    }
}

/// What `DIR/index.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackIndex {
    /// Layer names, in forward order.
    pub layers: Vec<String>,
    /// Observed epochs (or steps: see `unit`), ascending.
    pub epochs: Vec<usize>,
    /// What the labels in `epochs` count (`epoch` in indexes written before steps existed).
    #[serde(default)]
    pub unit: TimeUnit,
    /// Probe examples (rows per layer).
    pub n_examples: usize,
    /// Each layer's features before storage (a layer with at least `n_examples` is stored as
    /// its centred Gram).
    pub features: BTreeMap<String, usize>,
    /// Bytes one observation takes on disk (the latest).
    pub bytes_per_observation: u64,
    /// The conv mode used, as on the command line.
    pub conv: String,
}

/// Each layer at each observed epoch compared with the same layer at the last epoch, for one
/// measure: rows are layers (forward order), columns epochs (`epoch 3`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceTable {
    /// The measure's name (`matrix.measure` holds it with its parameters).
    pub metric: String,
    /// The epochs (columns).
    pub epochs: Vec<usize>,
    /// The final epoch everything is compared with.
    pub final_epoch: usize,
    /// What `epochs` and `final_epoch` count.
    #[serde(default)]
    pub unit: TimeUnit,
    /// The table as a matrix (rows: layers, columns: epochs), `None` where undefined.
    pub matrix: SimilarityMatrix,
}

impl ConvergenceTable {
    /// For each layer, the first observed epoch whose similarity to the final representation
    /// reaches `fraction` of the final epoch's own value (which is 1 for a similarity).
    pub fn first_epoch_reaching(&self, fraction: f64) -> Vec<(String, Option<usize>)> {
        self.matrix
            .rows
            .iter()
            .zip(&self.matrix.values)
            .map(|(layer, row)| {
                let last = row.last().copied().flatten();
                let epoch = last.and_then(|top| {
                    row.iter()
                        .zip(&self.epochs)
                        .find(|(v, _)| v.is_some_and(|v| v >= fraction * top))
                        .map(|(_, e)| *e)
                });
                (layer.clone(), epoch)
            })
            .collect()
    }
}

impl ConvergenceTable {
    /// [`ConvergenceTable::first_epoch_reaching`] as one line of text: `layer: epoch` for each
    /// layer, `never` where it is not reached, `undefined` where the measure has no final value
    /// for the layer (e.g. PWCCA of a layer wider than the probe set).
    pub fn first_epochs_text(&self, fraction: f64) -> String {
        self.first_epoch_reaching(fraction)
            .into_iter()
            .zip(&self.matrix.values)
            .map(|((l, e), row)| {
                let defined = row.last().copied().flatten().is_some();
                let when = match (e, defined) {
                    (Some(e), _) => e.to_string(),
                    (None, true) => "never".into(),
                    (None, false) => "undefined".into(),
                };
                format!("{l}: {when}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What [`Tracker::finish`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackReport {
    /// The index of the observations.
    pub index: TrackIndex,
    /// One table per measure.
    pub convergence: Vec<ConvergenceTable>,
    /// Cells that could not be computed, with the layer and the reason.
    pub warnings: Vec<String>,
}

/// The file of the observation labelled `label` under `dir`.
fn observation_path(dir: &Path, unit: TimeUnit, label: usize) -> PathBuf {
    dir.join(format!("{}-{label:04}.npz", unit.name()))
}

/// The observation files (`epoch-000e.npz`, `step-000s.npz`) under `dir`, in name order.
fn observation_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                (n.starts_with("epoch-") || n.starts_with("step-")) && n.ends_with(".npz")
            })
        })
        .collect();
    files.sort();
    files
}

/// Records layers during training; see the module docs.
pub struct Tracker {
    config: TrackerConfig,
    inputs: Option<Inputs>,
    index: TrackIndex,
    warnings: Vec<String>,
}

impl Tracker {
    /// A tracker storing under `config.dir`, probing `probe_inputs`: images (`Tensor<4>`),
    /// token ids (`Tensor<2, Int>`) or [`Inputs`]. A closure gets them on the device they were
    /// given on (without autodiff); a repsim model gets them moved to its device. Observations
    /// already in the directory (a resumed run) are kept; a directory holding observations but
    /// no `index.json` is refused (the index names the layers and how each was stored).
    pub fn new(config: TrackerConfig, probe_inputs: impl Into<Inputs>) -> Result<Self> {
        let probe_inputs = probe_inputs.into();
        if matches!(config.conv, ConvMode::SpatialAsSamples { .. }) {
            return Err(TrainError::BadConfig(
                "the Tracker takes --conv flatten or pool=K (spatial modes change the rows)".into(),
            ));
        }
        if probe_inputs.len() < 4 {
            return Err(TrainError::BadConfig(format!(
                "the Tracker needs at least 4 probe examples, got {}",
                probe_inputs.len()
            )));
        }
        std::fs::create_dir_all(&config.dir).map_err(|e| TrainError::file(&config.dir, e))?;
        let index_path = config.dir.join("index.json");
        let index = if index_path.exists() {
            read_json(&index_path)?
        } else if let Some(orphan) = observation_files(&config.dir).first() {
            return Err(TrainError::RunDir {
                path: config.dir.clone(),
                message: format!(
                    "holds observations ({}) but no index.json: restore the index, or remove the directory to observe again from scratch",
                    orphan.display()
                ),
            });
        } else {
            TrackIndex {
                layers: Vec::new(),
                epochs: Vec::new(),
                unit: config.unit,
                n_examples: probe_inputs.len(),
                features: BTreeMap::new(),
                bytes_per_observation: 0,
                conv: config.conv.to_string(),
            }
        };
        if index.unit != config.unit && !index.epochs.is_empty() {
            return Err(TrainError::BadConfig(format!(
                "{} holds observations labelled by {}, not by {}: observe on in the same unit, or use another directory",
                config.dir.display(),
                index.unit.name(),
                config.unit.name()
            )));
        }
        let mut index = index;
        index.unit = config.unit;
        if index.n_examples != probe_inputs.len() {
            return Err(TrainError::BadConfig(format!(
                "{} holds observations of {} probe examples, not {}",
                config.dir.display(),
                index.n_examples,
                probe_inputs.len()
            )));
        }
        Ok(Tracker {
            config,
            inputs: Some(probe_inputs),
            index,
            warnings: Vec::new(),
        })
    }

    /// Opens the observations stored under `config.dir` (for reading: `observe` is refused).
    pub fn open(config: TrackerConfig) -> Result<Self> {
        let index_path = config.dir.join("index.json");
        if !index_path.exists() {
            return Err(TrainError::RunDir {
                path: config.dir.clone(),
                message: "holds no tracker observations (train with --track to record some)".into(),
            });
        }
        let index: TrackIndex = read_json(&index_path)?;
        let mut config = config;
        config.unit = index.unit;
        Ok(Tracker {
            config,
            inputs: None,
            index,
            warnings: Vec::new(),
        })
    }

    /// The index of what is stored.
    pub fn index(&self) -> &TrackIndex {
        &self.index
    }

    /// Warnings gathered so far.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Drops observations after `epoch` (a resumed run observes them again).
    pub fn forget_after(&mut self, epoch: usize) -> Result<()> {
        let later: Vec<usize> = self
            .index
            .epochs
            .iter()
            .copied()
            .filter(|e| *e > epoch)
            .collect();
        if later.is_empty() {
            return Ok(());
        }
        self.index.epochs.retain(|e| *e <= epoch);
        write_json(&self.config.dir.join("index.json"), &self.index)?;
        for e in later {
            let _ = std::fs::remove_file(self.epoch_path(e));
        }
        Ok(())
    }

    fn epoch_path(&self, epoch: usize) -> PathBuf {
        observation_path(&self.config.dir, self.index.unit, epoch)
    }

    /// Records every layer `observed` gives at `epoch`: `observed` is a closure from a batch
    /// of probe inputs to named tensors (`|x| model.valid().forward_with_layers(x)`) or a
    /// repsim model (`&model`, probed in validation mode); see [`crate::observe`]. An epoch
    /// observed again replaces its earlier observation.
    pub fn observe<Marker>(&mut self, epoch: usize, observed: impl Observe<Marker>) -> Result<()> {
        let inputs = self.inputs.as_ref().ok_or_else(|| {
            TrainError::BadConfig("this tracker was opened for reading; it cannot observe".into())
        })?;
        let n = inputs.len();
        let (conv, time) = (self.config.conv, self.config.time);
        let mut layers_of_batch = layers_of(observed, &self.config.probe, conv, time);
        let mut parts: Vec<(String, Vec<Tensor<2>>)> = Vec::new();
        let batch_size = self.config.batch_size.max(1);
        for (k, batch) in probe_batches(inputs, batch_size).enumerate() {
            let (start, len) = (k * batch_size, batch_size.min(n - k * batch_size));
            let layers = layers_of_batch(batch?)?;
            if start > 0 && layers.len() != parts.len() {
                return Err(TrainError::Failed(format!(
                    "the observed model gave {} layers for the probe batch at example {start}, {} for the first",
                    layers.len(),
                    parts.len()
                )));
            }
            for (i, layer) in layers.into_iter().enumerate() {
                if start == 0 {
                    parts.push((layer.name.clone(), Vec::new()));
                }
                let rows = layer.matrix.dims()[0];
                if rows != len {
                    return Err(TrainError::BadConfig(format!(
                        "layer `{}` has {rows} rows for a batch of {len} probe examples: the examples must be on dim 0 (for sequences, use a time reduction other than steps)",
                        layer.name
                    )));
                }
                parts[i].1.push(layer.matrix);
            }
        }
        let names: Vec<String> = parts.iter().map(|(n, _)| n.clone()).collect();
        if names.is_empty() {
            return Err(TrainError::BadConfig("the probe captured no layers".into()));
        }
        if !self.index.layers.is_empty() && self.index.layers != names {
            return Err(TrainError::BadConfig(format!(
                "{} holds observations of layers {:?}, but the model gives {:?}",
                self.config.dir.display(),
                self.index.layers,
                names
            )));
        }
        let mut stored = Vec::new();
        for (name, matrices) in parts {
            let layer = Layer {
                name: name.clone(),
                matrix: Tensor::cat(matrices, 0),
            };
            self.index
                .features
                .insert(name.clone(), layer.num_features());
            let stored_matrix = if layer.num_features() >= layer.num_examples() {
                centred_gram(&layer, burn::tensor::DType::F32)
            } else {
                layer.matrix
            };
            let [rows, cols] = stored_matrix.dims();
            let values = stored_matrix
                .try_into_vec_as::<f32>()
                .map_err(|e| TrainError::Failed(format!("reading layer `{name}` back: {e:?}")))?;
            if values.iter().any(|v| !v.is_finite()) {
                return Err(TrainError::Failed(format!(
                    "layer `{name}` has non-finite activations at epoch {epoch}"
                )));
            }
            stored.push(HostLayer {
                name,
                shape: vec![rows, cols],
                values,
                stored_dtype: "f32",
            });
        }
        let path = self.epoch_path(epoch);
        write_npz(&path, &stored)?;
        self.index.layers = names;
        self.index.n_examples = stored[0].shape[0];
        self.index.bytes_per_observation = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if !self.index.epochs.contains(&epoch) {
            self.index.epochs.push(epoch);
            self.index.epochs.sort_unstable();
        }
        write_json(&self.config.dir.join("index.json"), &self.index)?;
        Ok(())
    }

    /// Every stored layer of `epoch`, on the measures' device, in forward order.
    pub fn load_epoch(&self, epoch: usize) -> Result<Vec<Layer>> {
        let path = self.epoch_path(epoch);
        let mut by_name: BTreeMap<String, HostLayer> = read_activations(&path)?
            .into_iter()
            .map(|l| (l.name.clone(), l))
            .collect();
        self.index
            .layers
            .iter()
            .map(|name| {
                let host = by_name
                    .remove(name)
                    .ok_or_else(|| TrainError::file(&path, format!("has no layer `{name}`")))?;
                let shape = [host.num_examples(), host.num_features()];
                let matrix =
                    Tensor::from_data(TensorData::new(host.values, shape), &self.config.device);
                if self.is_gram(name) {
                    Ok(coordinates_from_centred_gram(
                        name,
                        matrix,
                        &self.config.device,
                    )?)
                } else {
                    Ok(Layer {
                        name: name.clone(),
                        matrix,
                    })
                }
            })
            .collect()
    }

    /// Whether `layer` is stored as its centred Gram (it has at least as many features as
    /// probe examples).
    fn is_gram(&self, layer: &str) -> bool {
        self.index
            .features
            .get(layer)
            .is_some_and(|f| *f >= self.index.n_examples)
    }

    /// Why `metric` is undefined for `layer` as stored, if it is.
    fn undefined_reason(&self, measure: &Measure, layer: &str) -> Option<String> {
        let features = *self.index.features.get(layer)?;
        let n = self.index.n_examples;
        (measure.cca_measure().is_some_and(|m| m.needs_more_examples_than_features()) && features >= n).then(|| {
            format!(
                "{measure} of layer `{layer}` needs more probe examples than its {features} features (has {n}); use --conv pool=K or a CKA measure"
            )
        })
    }

    /// One layer over the observed epochs vs itself at each: an epochs x epochs matrix.
    pub fn epoch_matrix(&self, layer: &str, measure: &Measure) -> Result<SimilarityMatrix> {
        let index = self
            .index
            .layers
            .iter()
            .position(|l| l == layer)
            .ok_or_else(|| {
                TrainError::BadConfig(format!(
                    "no tracked layer `{layer}`; tracked: {}",
                    self.index.layers.join(", ")
                ))
            })?;
        let mut over_epochs = Vec::new();
        for &epoch in &self.index.epochs {
            let mut layers = self.load_epoch(epoch)?;
            let mut l = layers.swap_remove(index);
            l.name = format!("{} {epoch}", self.index.unit.name());
            over_epochs.push(l);
        }
        if let Some(reason) = self.undefined_reason(measure, layer) {
            return Err(TrainError::BadConfig(reason));
        }
        Ok(similarity_matrix(measure, &over_epochs, &over_epochs)?.with_parameter("layer", layer))
    }

    /// Every layer vs every layer at one observed epoch.
    pub fn layer_matrix(&self, epoch: usize, measure: &Measure) -> Result<SimilarityMatrix> {
        if !self.index.epochs.contains(&epoch) {
            return Err(TrainError::BadConfig(format!(
                "{} {epoch} was not observed; observed: {:?}",
                self.index.unit.name(),
                self.index.epochs
            )));
        }
        let layers = self.load_epoch(epoch)?;
        Ok(similarity_matrix(measure, &layers, &layers)?
            .with_parameter(self.index.unit.name(), epoch))
    }

    /// The convergence tables of every configured measure. A cell that cannot be computed is
    /// `None`, with a warning naming the layer and the reason; it never aborts the table.
    pub fn finish(&mut self) -> Result<TrackReport> {
        let epochs = self.index.epochs.clone();
        let Some(&final_epoch) = epochs.last() else {
            return Err(TrainError::BadConfig(format!(
                "{} holds no observations yet",
                self.config.dir.display()
            )));
        };
        let per_epoch: Vec<Vec<Layer>> = epochs
            .iter()
            .map(|e| self.load_epoch(*e))
            .collect::<Result<_>>()?;
        let mut warnings = Vec::new();
        let mut convergence = Vec::new();
        for measure in &self.config.measures {
            let mut values = Vec::new();
            for (l, layer) in self.index.layers.iter().enumerate() {
                if let Some(reason) = self.undefined_reason(measure, layer) {
                    warnings.push(reason);
                    values.extend(std::iter::repeat_n(None, epochs.len()));
                    continue;
                }
                let over_epochs: Vec<Layer> = per_epoch
                    .iter()
                    .zip(&epochs)
                    .map(|(layers, e)| Layer {
                        name: format!("{layer} @ {e}"),
                        matrix: layers[l].matrix.clone(),
                    })
                    .collect();
                let last = [over_epochs[over_epochs.len() - 1].clone()];
                match similarity_matrix(measure, &over_epochs, &last) {
                    Ok(m) => {
                        warnings.extend(m.warnings.iter().cloned());
                        values.extend(m.values.into_iter().map(|row| row[0]));
                    }
                    Err(e) => {
                        warnings.push(format!("{measure} of layer `{layer}` is undefined: {e}"));
                        values.extend(std::iter::repeat_n(None, epochs.len()));
                    }
                }
            }
            let matrix = SimilarityMatrix::from_row_major(
                *measure,
                self.index.layers.clone(),
                epochs
                    .iter()
                    .map(|e| format!("{} {e}", self.index.unit.name()))
                    .collect(),
                values,
                self.index.n_examples,
            )
            .with_parameter("compared_with_epoch", final_epoch)
            .with_parameter("table", "convergence");
            convergence.push(ConvergenceTable {
                metric: measure.name().to_string(),
                epochs: epochs.clone(),
                final_epoch,
                unit: self.index.unit,
                matrix,
            });
        }
        warnings.dedup();
        self.warnings.extend(warnings.iter().cloned());
        Ok(TrackReport {
            index: self.index.clone(),
            convergence,
            warnings,
        })
    }

    /// The directory observations are stored in.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }
}
