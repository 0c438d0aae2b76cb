//! The [`Tracker`] inside burn-train's `SupervisedTraining` (cargo feature `burn-train`).
//!
//! In burn 0.22.1 no metric, logger or strategy hook of burn-train sees the model; its
//! checkpointer does: `Checkpointer<ModuleRecord>::save(epoch, record)`, called with the
//! training model's record each epoch the checkpointing strategy saves (every epoch with the
//! default strategies). [`TrackingCheckpointer`] wraps the user's model checkpointer: it
//! forwards every call, and after each save loads the record into a model of its own on the
//! probing device and lets the tracker observe that model in validation mode. The training
//! model is never probed, nor cloned (burn shares batch-norm running state between clones).
//!
//! Your own model (it implements `TrainStep` itself; its parameters keep their names):
//!
//! ```ignore
//! let tracker = SharedTracker::new(Tracker::new(TrackerConfig::new(dir.join("track")), probe)?);
//! let model_checkpointer = TrackingCheckpointer::with_layers(
//!     FileCheckpointer::new(dir.join("checkpoint"), "model"),
//!     tracker.clone(),
//!     MyModelConfig::new().init(&Device::flex()),   // same architecture, never trained
//!     |model: &MyModel, x| model.forward_with_layers(x), // named tensors, any simple form
//! );
//! SupervisedTraining::new(&dir, train_loader, valid_loader)
//!     .with_custom_checkpointers(model_checkpointer, optim_checkpointer, scheduler_checkpointer)
//!     .launch(learner);                         // the checkpointer thread ends with `launch`
//! let report = tracker.finish()?;
//! ```
//!
//! A repsim model needs no closure: [`TrackingCheckpointer::new`] takes any [`Network`].
//! [`Supervised`] gives burn-train's `TrainStep` and `InferenceStep` to any repsim image
//! classifier (cross-entropy on [`ImageBatch`]es). Being a wrapper, it prefixes the saved
//! parameter names with `model.`: a model checkpointer behind it records `model.conv1.weight`
//! where repsim's own runs record `conv1.weight`; [`Supervised::into_inner`] gives the bare
//! model back, to save in repsim's layout.

use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::{Module, ModuleDisplay};
use burn::store::ModuleRecord;
use burn_train::checkpoint::{Checkpointer, CheckpointerError};
use burn_train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn_train::metric::MetricDefinition;
use burn_train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn_train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use repsim_data::ImageBatch;
use repsim_model::kernels::cross_entropy;
use repsim_model::{Activations, ModelError, Probe};

use crate::error::{Result, TrainError};
use crate::network::{Inputs, Network};
use crate::observe::{IntoActivations, ProbeInput};
use crate::tracker::{TrackReport, Tracker};

/// A [`Tracker`] shared between the training thread and burn-train's checkpointer thread.
#[derive(Clone)]
pub struct SharedTracker {
    tracker: Arc<Mutex<Tracker>>,
}

impl SharedTracker {
    /// Shares `tracker`.
    pub fn new(tracker: Tracker) -> Self {
        SharedTracker {
            tracker: Arc::new(Mutex::new(tracker)),
        }
    }

    /// The tracker, locked (a panic while it was held does not make its stored files invalid:
    /// each observation is written atomically).
    pub fn lock(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The epochs observed so far.
    pub fn epochs(&self) -> Vec<usize> {
        self.lock().index().epochs.clone()
    }

    /// Drops observations after `epoch`: call it before resuming a training from that epoch's
    /// checkpoint, so the epochs after it are observed again.
    pub fn forget_after(&self, epoch: usize) -> Result<()> {
        self.lock().forget_after(epoch)
    }

    /// The convergence tables of everything observed ([`Tracker::finish`]).
    pub fn finish(&self) -> Result<TrackReport> {
        self.lock().finish()
    }
}

/// How a [`TrackingCheckpointer`] lets the tracker observe its probe model at an epoch.
type ObserveModel<M> = Box<dyn Fn(&M, &mut Tracker, usize) -> Result<()> + Send + Sync>;

/// A burn-train model checkpointer that forwards to `inner` and lets a [`Tracker`] observe
/// every saved model; see the module docs.
pub struct TrackingCheckpointer<C, M> {
    inner: C,
    tracker: SharedTracker,
    /// The model records are loaded into: same architecture as the trained one, on the device
    /// the tracker probes on (a non-autodiff device). `None` only while a record is loading.
    probe_model: Mutex<Option<M>>,
    observe: ObserveModel<M>,
}

impl<C, M> TrackingCheckpointer<C, M>
where
    C: Checkpointer<ModuleRecord>,
    M: Network,
{
    /// Wraps `inner` for one of repsim's models (anything implementing [`Network`]).
    /// `probe_model` must have the trained model's architecture (its weights are replaced at
    /// every observation) and must not be the training model or a clone of it.
    pub fn new(inner: C, tracker: SharedTracker, probe_model: M) -> Self {
        TrackingCheckpointer {
            inner,
            tracker,
            probe_model: Mutex::new(Some(probe_model)),
            observe: Box::new(|model: &M, tracker: &mut Tracker, epoch| {
                tracker.observe(epoch, model)
            }),
        }
    }
}

impl<C, M> TrackingCheckpointer<C, M>
where
    C: Checkpointer<ModuleRecord>,
    M: Module,
{
    /// Wraps `inner` for any burn module: `layers` gives the named activations of the probe
    /// model on a batch of probe inputs (`|model: &MyModel, x| model.forward_with_layers(x)`,
    /// returning any form of [`IntoActivations`]). `probe_model` must have the trained model's
    /// architecture and live on a device without autodiff; it is never the training model.
    pub fn with_layers<X, R, F>(inner: C, tracker: SharedTracker, probe_model: M, layers: F) -> Self
    where
        X: ProbeInput,
        R: IntoActivations,
        F: Fn(&M, X) -> R + Send + Sync + 'static,
    {
        TrackingCheckpointer {
            inner,
            tracker,
            probe_model: Mutex::new(Some(probe_model)),
            observe: Box::new(move |model: &M, tracker: &mut Tracker, epoch| {
                tracker.observe(epoch, |x: X| layers(model, x))
            }),
        }
    }

    fn observe(&self, epoch: usize, record: ModuleRecord) -> Result<()> {
        let mut slot = self.probe_model.lock().unwrap_or_else(|p| p.into_inner());
        let model = slot.take().ok_or_else(|| {
            TrainError::Failed("the tracking checkpointer lost its probe model".into())
        })?;
        // Loading consumes the model; on a mismatch the probe model is gone and every later
        // observation reports the same failure.
        let model = model.try_load_record(record).map_err(|e| {
            TrainError::BadConfig(format!(
                "the saved model of epoch {epoch} does not fit the tracker's probe model: {e}"
            ))
        })?;
        let observed = (self.observe)(&model, &mut self.tracker.lock(), epoch);
        *slot = Some(model);
        observed
    }
}

impl<C, M> Checkpointer<ModuleRecord> for TrackingCheckpointer<C, M>
where
    C: Checkpointer<ModuleRecord>,
    M: Module + Send,
{
    /// Saves through `inner` first (the user's checkpoint is safe whatever the tracker does),
    /// then observes. A failed observation is returned as an error, which stops the training
    /// with the tracker's message rather than leaving a silent gap in the tables.
    fn save(
        &self,
        epoch: usize,
        record: ModuleRecord,
    ) -> std::result::Result<(), CheckpointerError> {
        self.inner.save(epoch, record.clone())?;
        self.observe(epoch, record)
            .map_err(|e| CheckpointerError::Unknown(format!("repsim tracker, epoch {epoch}: {e}")))
    }

    /// Deletes the user's checkpoint; the tracker keeps its observation of that epoch.
    fn delete(&self, epoch: usize) -> std::result::Result<(), CheckpointerError> {
        self.inner.delete(epoch)
    }

    fn restore(&self, epoch: usize) -> std::result::Result<ModuleRecord, CheckpointerError> {
        self.inner.restore(epoch)
    }
}

/// A repsim image classifier with burn-train's `TrainStep` and `InferenceStep`: softmax
/// cross-entropy of the logits against the batch's classes.
#[derive(Module, Debug)]
pub struct Supervised<M: Module> {
    /// The wrapped network (its parameters are saved under `model.`).
    pub model: M,
}

impl<M: Network + ModuleDisplay> Supervised<M> {
    /// Wraps `model`.
    pub fn new(model: M) -> Self {
        Supervised { model }
    }

    /// The wrapped network.
    pub fn into_inner(self) -> M {
        self.model
    }

    fn classify(&self, batch: ImageBatch) -> ClassificationOutput {
        let logits = self
            .model
            .logits(Inputs::Images(batch.images))
            .unwrap_or_else(|e| panic!("repsim Supervised: {e}"));
        let loss = cross_entropy(logits.clone(), batch.targets.clone());
        ClassificationOutput {
            loss,
            output: logits,
            targets: batch.targets,
        }
    }
}

impl<M: Network + ModuleDisplay> Network for Supervised<M> {
    fn logits(&self, inputs: Inputs) -> std::result::Result<burn::tensor::Tensor<2>, ModelError> {
        self.model.logits(inputs)
    }

    fn activations(
        &self,
        inputs: Inputs,
        probe: &Probe,
    ) -> std::result::Result<Activations, ModelError> {
        self.model.activations(inputs, probe)
    }
}

impl<M: Network + ModuleDisplay> TrainStep for Supervised<M> {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let output = self.classify(batch);
        let gradients = output.loss.backward();
        TrainOutput::new(self, gradients, output)
    }
}

impl<M: Network + ModuleDisplay> InferenceStep for Supervised<M> {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.classify(batch)
    }
}

/// A burn-train renderer giving one line per epoch through `log::info!` (burn-train's own
/// renderer without its TUI prints a line per batch): for scripts, CI and logs. Metrics still go to
/// burn-train's metric loggers (`DIR/train`, `DIR/valid`).
pub struct EpochLines {
    label: String,
    total_epochs: usize,
    started: std::time::Instant,
}

impl Default for EpochLines {
    fn default() -> Self {
        EpochLines {
            label: "training".into(),
            total_epochs: 0,
            started: std::time::Instant::now(),
        }
    }
}

impl TrainingProgressLogger for EpochLines {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        label: Option<&str>,
    ) {
        self.label = label.unwrap_or("training").to_string();
        self.total_epochs = total_epochs;
        self.started = std::time::Instant::now();
        // burn-train counts epochs from 1 here, as in `update_epoch`.
        log::info!("{}: epochs {starting_epoch} to {total_epochs}", self.label);
    }

    fn update_epoch(&mut self, epoch: usize) {
        log::info!(
            "{}: epoch {}/{} done, {:.1} s",
            self.label,
            epoch,
            self.total_epochs,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn start_split(&mut self, _split: &str, _total_items: usize) {}
    fn update_split(&mut self, _items_processed: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    // burn-train logs an event per iteration: not one line per epoch.
    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for EpochLines {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRendererTraining for EpochLines {
    fn update_train(&mut self, _state: MetricState) {}
    fn update_valid(&mut self, _state: MetricState) {}
}

impl MetricsRendererEvaluation for EpochLines {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl MetricsRenderer for EpochLines {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}
