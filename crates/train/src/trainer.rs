//! The training loop: a [`TrainConfig`] into a run directory, resumable.
//!
//! Determinism on one machine and device: burn's RNG is seeded before the model is built and
//! every parameter is initialised at once ([`force_initialisation`]); each epoch re-seeds the
//! device from (seed, epoch), draws its order from (seed, epoch) and its augmentation from
//! (seed, epoch, index); batches are prepared in order on one thread. So epoch `e` starts from
//! the same state whether the process ran epochs 1..e-1 itself or resumed from a checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use repsim_model::kernels::cross_entropy;
use repsim_model::{load_weights, save_weights, ModelSpec};

use crate::checkpoint::{
    checkpoint_dir, prune, save_checkpoint, CheckpointState, MODEL, OPTIMIZER,
};
use crate::config::TrainConfig;
use crate::datasets::{Batch, RunData};
use crate::durable::{write_json, write_via};
use crate::error::{Result, TrainError};
use crate::metrics::EpochMetrics;
use crate::network::{force_initialisation, visit_network, Network, NetworkVisitor};
use crate::optimizer::{build_optimizer, load_optimizer, save_optimizer};
use crate::progress::{EpochProgress, ProgressMode};
use crate::run_dir::{
    prepare_run_dir, write_metrics, Plan, RunLock, RunRecord, TrackRecord, FINAL_WEIGHTS,
};
use crate::run_options::RunOptions;
use crate::track_hook::{StartingPoint, TrackHook};

/// What a run did.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Every epoch's metrics (those before a resume included).
    pub metrics: Vec<EpochMetrics>,
    /// The epoch resumed after, if any.
    pub resumed_from: Option<usize>,
    /// The final weights (`RUN/model.bpk`), once the last epoch is done.
    pub final_weights: Option<PathBuf>,
    /// Trainable parameters.
    pub parameters: usize,
    /// Warnings (skipped corrupt checkpoints, ...).
    pub warnings: Vec<String>,
}

/// Trains `config` into `out`. Fails before training when `out` is not empty (unless
/// `resume` or `overwrite`), not writable, or the config is invalid.
pub fn train(config: &TrainConfig, out: &Path, options: &RunOptions) -> Result<TrainSummary> {
    config.validate()?;
    let _lock = RunLock::acquire(out)?;
    let plan = prepare_run_dir(config, out, options)?;
    let data = RunData::open(&config.data, config.seed)?;
    check_model_fits_data(&config.model, &data)?;
    if let Some(track) = &options.track {
        if track.probe_count > data.test_len() {
            return Err(TrainError::BadConfig(format!(
                "--probe-count {} is larger than the test split ({} examples)",
                track.probe_count,
                data.test_len()
            )));
        }
    }
    let train_device = options.device.clone().autodiff();
    // burn's RNG is process-global: two trainings in one process (threads, parallel tests)
    // must not interleave between the seed and the initialisation.
    let init_guard = INITIALISATION.lock().unwrap_or_else(|e| e.into_inner());
    train_device.seed(config.seed);
    let model = config.model.init(&train_device)?;
    visit_network(
        model,
        Loop {
            config,
            out,
            options,
            data: &data,
            plan,
            init_guard: Some(init_guard),
        },
    )
}

/// Sizes `model`'s data-dependent parts to `data`: the class count (images), a recurrent
/// classifier's features per step (3 x image width), a language model's vocabulary. Returns
/// what it changed, for the caller to report.
pub fn fit_model_to_data(model: &mut ModelSpec, data: &RunData) -> Vec<String> {
    let mut changes = Vec::new();
    let classes = data.num_classes();
    let mut set = |what: &str, slot: &mut usize, value: usize| {
        if *slot != value {
            changes.push(format!("{what} {} -> {value}", *slot));
            *slot = value;
        }
    };
    match (model, data) {
        (ModelSpec::Resnet(c), RunData::Images(_)) => set("classes", &mut c.classes, classes),
        (ModelSpec::Cnn(c), RunData::Images(_)) => set("classes", &mut c.classes, classes),
        (ModelSpec::SvccaCnn(c), RunData::Images(d)) => {
            set("classes", &mut c.classes, classes);
            set("image side", &mut c.side, d.image_size.0);
        }
        (ModelSpec::RnnClassifier(c), RunData::Images(d)) => {
            set("classes", &mut c.classes, classes);
            set(
                "features per step",
                &mut c.recurrent.input_size,
                3 * d.image_size.1,
            );
        }
        (ModelSpec::RnnLanguageModel(c), RunData::Text(_)) => {
            set("vocabulary", &mut c.vocab, classes)
        }
        _ => {}
    }
    changes
}

fn check_model_fits_data(model: &ModelSpec, data: &RunData) -> Result<()> {
    let text = matches!(data, RunData::Text(_));
    let lm = matches!(model, ModelSpec::RnnLanguageModel(_));
    if text != lm {
        return Err(TrainError::BadConfig(if lm {
            "a language model trains on text: use --data text or text=PATH".into()
        } else {
            "text data needs a language model (--model lstm-lm, gru-lm or rnn-lm)".into()
        }));
    }
    if let (RunData::Images(d), ModelSpec::RnnClassifier(c)) = (data, model) {
        let features = 3 * d.image_size.1;
        if c.recurrent.input_size != features {
            return Err(TrainError::BadConfig(format!(
                "the recurrent classifier reads rows of {features} values (3 x {} pixels) but was built for {}",
                d.image_size.1, c.recurrent.input_size
            )));
        }
    }
    Ok(())
}

/// Held from seeding burn's RNG until every parameter is initialised.
static INITIALISATION: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Loop<'a> {
    init_guard: Option<std::sync::MutexGuard<'static, ()>>,
    config: &'a TrainConfig,
    out: &'a Path,
    options: &'a RunOptions,
    data: &'a RunData,
    plan: Plan,
}

impl NetworkVisitor for Loop<'_> {
    type Output = Result<TrainSummary>;
    fn visit<M: Network>(self, model: M) -> Result<TrainSummary> {
        self.run(model)
    }
}

/// Device-side sums of a stretch of steps, read back together (one host sync per stretch).
struct Pending {
    losses: Vec<Tensor<1>>,
    correct: Vec<Tensor<1>>,
}

/// Steps between read-backs of the running loss.
const SYNC_EVERY: usize = 8;

/// Where training stands: the model, its optimiser, every epoch's metrics so far, and the
/// optimisation steps done over the run.
struct State<M> {
    model: M,
    optimizer: ModuleOptimizer,
    metrics: Vec<EpochMetrics>,
    step: usize,
}

/// One epoch's training: its sums and counts, the last learning rate, and when it started.
struct EpochTotals {
    loss_sum: f64,
    correct_sum: f64,
    seen: usize,
    targets_seen: usize,
    steps: usize,
    lr: f64,
    started: Instant,
    train_seconds: f64,
}

impl Loop<'_> {
    /// Restores or starts the model, records the run, trains every epoch left (each trained,
    /// evaluated, observed and checkpointed), and copies the final weights.
    fn run<M: Network>(mut self, model: M) -> Result<TrainSummary> {
        force_initialisation(&model);
        drop(self.init_guard.take());
        let parameters = repsim_model::count_parameters(&model);
        let (mut state, resumed_from) = self.restore(model)?;
        let mut warnings = self.plan.warnings.clone();
        for w in &warnings {
            log::warn!("{w}");
        }
        self.write_record(parameters)?;
        write_metrics(self.out, &state.metrics)?;
        let first_epoch = resumed_from.map_or(1, |epoch| epoch + 1);
        let mut hook = match &self.options.track {
            Some(track) => Some(TrackHook::start(
                track,
                self.out,
                self.data,
                &self.options.device,
                &StartingPoint {
                    first_epoch,
                    step: state.step,
                    epochs: self.config.epochs,
                },
                &state.model,
            )?),
            None => None,
        };
        let train_device = self.options.device.clone().autodiff();
        let last_epoch = self
            .options
            .stop_after
            .unwrap_or(self.config.epochs)
            .min(self.config.epochs);
        for epoch in first_epoch..=last_epoch {
            state = self.epoch(state, epoch, &train_device, hook.as_mut())?;
        }
        let final_weights = self.final_weights(last_epoch)?;
        warnings.extend(hook.iter().flat_map(TrackHook::warnings));
        Ok(TrainSummary {
            run_dir: self.out.to_path_buf(),
            metrics: state.metrics,
            resumed_from,
            final_weights,
            parameters,
            warnings,
        })
    }

    /// The model and optimiser of the checkpoint resumed from (with its metrics, steps and
    /// epoch), or fresh ones.
    fn restore<M: Network>(&self, model: M) -> Result<(State<M>, Option<usize>)> {
        let optimizer = build_optimizer(&self.config.optimizer);
        Ok(match &self.plan.resume_from {
            Some(checkpoint) => {
                let model = load_weights(model, &checkpoint.model_path())?;
                let optimizer = load_optimizer(
                    optimizer,
                    &checkpoint.optimizer_path(),
                    &self.options.device,
                )?;
                let s = &checkpoint.state;
                let state = State {
                    model,
                    optimizer,
                    metrics: s.metrics.clone(),
                    step: s.step,
                };
                (state, Some(s.epoch))
            }
            None => {
                let state = State {
                    model,
                    optimizer,
                    metrics: Vec::new(),
                    step: 0,
                };
                (state, None)
            }
        })
    }

    /// Writes the run's `config.json`.
    fn write_record(&self, parameters: usize) -> Result<()> {
        let record = RunRecord {
            repsim_version: env!("CARGO_PKG_VERSION").to_string(),
            config: self.config.clone(),
            device: format!("{:?}", self.options.device),
            parameters,
            train_examples: self.data.train_len(),
            test_examples: self.data.test_len(),
            track: self.options.track.as_ref().map(TrackRecord::of),
            normalization: self.data.normalization(),
        };
        write_json(&self.out.join("config.json"), &record)?;
        Ok(())
    }

    /// One epoch: trained, evaluated, observed, checkpointed. The observation is part of the
    /// epoch's commit: it is written before the checkpoint's manifest, so a process killed in
    /// between resumes from the previous checkpoint, trains this epoch again and observes it
    /// again.
    fn epoch<M: Network>(
        &self,
        state: State<M>,
        epoch: usize,
        train_device: &Device,
        mut hook: Option<&mut TrackHook>,
    ) -> Result<State<M>> {
        let steps = steps_per_epoch(self.data.train_len(), self.config.batch_size);
        let progress = EpochProgress::new(self.options.progress, epoch, self.config.epochs, steps);
        let (mut state, totals) =
            self.train_epoch(state, epoch, train_device, &progress, hook.as_deref_mut())?;
        progress.phase("evaluating");
        let eval = state.model.valid();
        let (test_loss, test_accuracy) = evaluate(&eval, self.data, &self.options.device)?;
        // A divergence in the epoch's last steps shows only here: never save it.
        check_finite(&eval, epoch, test_loss)?;
        state.metrics.push(EpochMetrics {
            epoch,
            train_loss: totals.loss_sum / totals.steps.max(1) as f64,
            train_accuracy: totals.correct_sum / totals.targets_seen.max(1) as f64,
            test_loss,
            test_accuracy,
            test_perplexity: matches!(self.data, RunData::Text(_)).then(|| test_loss.exp()),
            lr: totals.lr,
            examples_per_second: totals.seen as f64 / totals.train_seconds.max(1e-9),
            seconds: 0.0,
        });
        if let Some(hook) = hook {
            hook.after_epoch(epoch, state.step, &state.model, &progress)?;
        }
        if let Some(last) = state.metrics.last_mut() {
            last.seconds = totals.started.elapsed().as_secs_f64();
        }
        progress.phase("checkpoint");
        self.checkpoint(&state, &eval, epoch)?;
        progress.finish();
        if let (true, Some(last)) = (
            self.options.progress != ProgressMode::Silent,
            state.metrics.last(),
        ) {
            log_epoch_line(last, self.config.epochs);
        }
        Ok(state)
    }

    /// The optimisation steps of one epoch, in the order of [`RunData::epoch_order`], the
    /// device re-seeded from (seed, epoch) first; the running loss is read back every
    /// [`SYNC_EVERY`] steps.
    fn train_epoch<M: Network>(
        &self,
        mut state: State<M>,
        epoch: usize,
        device: &Device,
        progress: &EpochProgress,
        mut hook: Option<&mut TrackHook>,
    ) -> Result<(State<M>, EpochTotals)> {
        let config = self.config;
        let started = Instant::now();
        let steps_per_epoch = steps_per_epoch(self.data.train_len(), config.batch_size);
        device.seed(crate::datasets::epoch_seed(config.seed, epoch, 0x4445_5649));
        let batches = self
            .data
            .train_batches(config.seed, epoch, config.batch_size, device);
        let mut pending = Pending {
            losses: Vec::new(),
            correct: Vec::new(),
        };
        let mut totals = EpochTotals {
            loss_sum: 0.0,
            correct_sum: 0.0,
            seen: 0,
            targets_seen: 0,
            steps: 0,
            lr: config.lr,
            started,
            train_seconds: 0.0,
        };
        for batch in batches {
            let Batch { inputs, targets } = batch?;
            let (n, m) = (inputs.len(), targets.dims()[0]);
            totals.lr =
                config
                    .schedule
                    .lr_at(state.step, steps_per_epoch, config.epochs, config.lr);
            let logits = state.model.logits(inputs)?;
            let loss = cross_entropy(logits.clone(), targets.clone());
            let correct = logits
                .detach()
                .argmax(1)
                .reshape([m])
                .equal(targets)
                .float()
                .sum();
            pending.losses.push(loss.clone().detach());
            pending.correct.push(correct);
            let grads = GradientsParams::from_grads(loss.backward(), &state.model);
            state.model = state.optimizer.step(totals.lr, state.model, grads);
            state.step += 1;
            totals.steps += 1;
            // Mid-epoch observations (`steps=K`): written before the epoch's checkpoint, so
            // a process killed before it resumes from the previous checkpoint, forgets them
            // and observes them again.
            if let Some(hook) = hook.as_deref_mut() {
                hook.after_step(state.step, &state.model)?;
            }
            totals.seen += n;
            totals.targets_seen += m;
            if pending.losses.len() == SYNC_EVERY {
                let (l, c) = read_pending(&mut pending, epoch, totals.steps, SYNC_EVERY)?;
                totals.loss_sum += l;
                totals.correct_sum += c;
                let rate = totals.seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
                progress.update(
                    totals.steps,
                    totals.loss_sum / totals.steps as f64,
                    totals.correct_sum / totals.targets_seen as f64,
                    rate,
                );
            }
        }
        let left = pending.losses.len();
        let (l, c) = read_pending(&mut pending, epoch, totals.steps, left)?;
        totals.loss_sum += l;
        totals.correct_sum += c;
        totals.train_seconds = started.elapsed().as_secs_f64();
        Ok((state, totals))
    }

    /// Saves the epoch's checkpoint (the evaluation-mode weights and the optimiser, then the
    /// manifest), prunes the older ones, and rewrites `metrics.jsonl`.
    fn checkpoint<M: Network>(&self, state: &State<M>, eval: &M, epoch: usize) -> Result<()> {
        let checkpoint = CheckpointState {
            epoch,
            step: state.step,
            metrics: state.metrics.clone(),
        };
        let checkpoints = self.out.join("checkpoints");
        save_checkpoint(&checkpoints, &checkpoint, |dir| {
            save_weights(eval, &dir.join(MODEL))?;
            save_optimizer(&state.optimizer, &dir.join(OPTIMIZER))
        })?;
        prune(
            &checkpoints,
            self.options.keep_last,
            &self.options.keep_epochs,
        )?;
        write_metrics(self.out, &state.metrics)
    }

    /// The final weights, once the last epoch is done: a copy of the last checkpoint's (byte
    /// for byte: that is how `completed_run` tells them from a truncated file).
    fn final_weights(&self, last_epoch: usize) -> Result<Option<PathBuf>> {
        if last_epoch != self.config.epochs {
            return Ok(None);
        }
        let path = self.out.join(FINAL_WEIGHTS);
        let last = checkpoint_dir(&self.out.join("checkpoints"), last_epoch).join(MODEL);
        write_via(&path, |temporary| {
            std::fs::copy(&last, temporary)
                .map(|_| ())
                .map_err(|e| TrainError::file(&last, format!("cannot copy: {e}")))
        })?;
        Ok(Some(path))
    }
}

/// Steps in an epoch of `len` examples (a last batch of one example is dropped).
pub fn steps_per_epoch(len: usize, batch_size: usize) -> usize {
    let full = len / batch_size.max(1);
    let rest = len % batch_size.max(1);
    full + usize::from(rest > 1 || len == 1)
}

/// Reads back the pending sums; a non-finite loss names its step.
fn read_pending(
    pending: &mut Pending,
    epoch: usize,
    step_in_epoch: usize,
    count: usize,
) -> Result<(f64, f64)> {
    if pending.losses.is_empty() {
        return Ok((0.0, 0.0));
    }
    let losses = Tensor::cat(std::mem::take(&mut pending.losses), 0)
        .try_into_vec_as::<f64>()
        .map_err(|e| TrainError::Failed(format!("reading the loss back: {e:?}")))?;
    let correct = Tensor::cat(std::mem::take(&mut pending.correct), 0)
        .try_into_vec_as::<f64>()
        .map_err(|e| TrainError::Failed(format!("reading the accuracy back: {e:?}")))?;
    if let Some((i, value)) = losses.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(TrainError::NonFiniteLoss {
            epoch,
            step: step_in_epoch - count + i + 1,
            value: *value,
        });
    }
    Ok((losses.iter().sum(), correct.iter().sum()))
}

/// Test loss and accuracy of `eval` (validation mode: batch-norm running statistics), inputs on
/// the plain device.
fn evaluate<M: Network>(eval: &M, data: &RunData, device: &Device) -> Result<(f64, f64)> {
    let mut losses = Vec::new();
    let mut corrects = Vec::new();
    let mut total = 0usize;
    for batch in data.test_batches(500, device) {
        let Batch { inputs, targets } = batch?;
        let m = targets.dims()[0];
        let logits = eval.logits(inputs)?;
        losses.push(cross_entropy(logits.clone(), targets.clone()).mul_scalar(m as f64));
        corrects.push(logits.argmax(1).reshape([m]).equal(targets).float().sum());
        total += m;
    }
    if total == 0 {
        return Err(TrainError::BadConfig("the test split is empty".into()));
    }
    let read = |parts: Vec<Tensor<1>>| -> Result<f64> {
        Ok(Tensor::cat(parts, 0)
            .try_into_vec_as::<f64>()
            .map_err(|e| TrainError::Failed(format!("reading the test metrics back: {e:?}")))?
            .iter()
            .sum())
    };
    Ok((read(losses)? / total as f64, read(corrects)? / total as f64))
}

/// Checks the weights (and batch-norm statistics) and the test loss of an epoch before they are
/// saved: a non-finite value stops the run with the divergence named. Each tensor's non-finite
/// values are counted on its device and the counts are read back once.
fn check_finite<M: Module>(model: &M, epoch: usize, test_loss: f64) -> Result<()> {
    /// Each float parameter's count of non-finite values, as a one-element device tensor.
    #[derive(Default)]
    struct NonFiniteCounts(Vec<Tensor<1, burn::tensor::Int>>);
    impl ModuleVisitor for NonFiniteCounts {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().is_finite().bool_not().int().sum());
        }
    }
    if !test_loss.is_finite() {
        return Err(TrainError::Diverged {
            epoch,
            what: format!("the test loss is {test_loss}"),
        });
    }
    let mut counts = NonFiniteCounts::default();
    model.visit(&mut counts);
    if counts.0.is_empty() {
        return Ok(());
    }
    let non_finite: i64 = Tensor::cat(counts.0, 0)
        .try_into_vec_as::<i64>()
        .map_err(|e| TrainError::Failed(format!("reading the weights' check back: {e:?}")))?
        .iter()
        .sum();
    if non_finite == 0 {
        return Ok(());
    }
    Err(TrainError::Diverged {
        epoch,
        what: format!("{non_finite} weights are non-finite"),
    })
}

/// One line per epoch through `log::info!` (the binary prints it to stdout).
fn log_epoch_line(m: &EpochMetrics, epochs: usize) {
    let test = match m.test_perplexity {
        Some(p) => format!("test perplexity {p:.3}"),
        None => format!("test acc {:.1}%", 100.0 * m.test_accuracy),
    };
    log::info!(
        "epoch {}/{epochs}: train loss {:.4}, train acc {:.1}%, test loss {:.4}, {test}, lr {:.4}, {:.0} examples/s, {:.1} s",
        m.epoch,
        m.train_loss,
        100.0 * m.train_accuracy,
        m.test_loss,
        m.lr,
        m.examples_per_second,
        m.seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_the_partial_batch_unless_it_holds_one_example() {
        assert_eq!(steps_per_epoch(100, 10), 10);
        assert_eq!(steps_per_epoch(101, 10), 10);
        assert_eq!(steps_per_epoch(102, 10), 11);
        assert_eq!(steps_per_epoch(5, 10), 1);
    }
}
