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
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use repsim_model::{load_weights, save_weights, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    checkpoint_dir, newest_complete, prune, save_checkpoint, CheckpointState, MODEL, OPTIMIZER,
};
use crate::config::{first_difference, TrainConfig};
use crate::datasets::{Batch, RunData};
use crate::durable::{read_json, remove_stale_temporaries, write_bytes, write_json, write_via};
use crate::error::{Result, TrainError};
use crate::metrics::EpochMetrics;
use crate::network::{force_initialisation, visit_network, Network, NetworkVisitor};
use crate::optimizer::{build_optimizer, load_optimizer, save_optimizer};
use crate::progress::{EpochProgress, ProgressMode};
use crate::tracker::{TimeUnit, Tracker, TrackerConfig};

/// The run's `config.json`: the config and where it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// repsim's version.
    pub repsim_version: String,
    /// The configuration (compared on `--resume`).
    pub config: TrainConfig,
    /// The device, as printed.
    pub device: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Training and test examples.
    pub train_examples: usize,
    /// Test examples.
    pub test_examples: usize,
    /// What the Tracker records during the run (`None`: not tracked); compared on `--resume`
    /// like the config, so one run's observations are all of one kind.
    #[serde(default)]
    pub track: Option<TrackRecord>,
    /// The per-channel statistics the images were normalised by: those of the run's own
    /// training images. Every probe of the run's weights uses them (`repsim activations
    /// --weights`, `repsim compare`). `None` for text runs, and for runs written before the
    /// record held them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<repsim_data::ChannelStats>,
}

impl RunRecord {
    /// The run a weights file belongs to: the `config.json` of its folder or the folder above
    /// (`RUN/model.bpk`, `RUN/epochs/epoch-3.bpk`), with that folder; `None` when neither
    /// holds a run record.
    pub fn of_weights(weights: &Path) -> Option<(PathBuf, RunRecord)> {
        let folder = weights.parent()?;
        [Some(folder), folder.parent()]
            .into_iter()
            .flatten()
            .find_map(|dir| {
                let record = read_json::<RunRecord>(&dir.join("config.json")).ok()?;
                Some((dir.to_path_buf(), record))
            })
    }
}

/// The Tracker's options of a run, as its `config.json` records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackRecord {
    /// When it observes (`every-epoch` or a list).
    pub epochs: String,
    /// Test examples probed.
    pub probe_count: usize,
    /// Which layers (`blocks`, `all`, `names=...`).
    pub probe: String,
    /// How conv maps become matrices (`flatten`, `pool=K`).
    pub conv: String,
    /// How sequences become one row per example.
    pub time: String,
    /// The measures of its convergence tables.
    pub measures: Vec<String>,
}

impl TrackRecord {
    /// The record of `track`.
    pub fn of(track: &TrackOptions) -> Self {
        TrackRecord {
            epochs: match &track.epochs {
                TrackEpochs::Every => "every-epoch".into(),
                TrackEpochs::These(list) => list
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                TrackEpochs::EverySteps(k) => format!("steps={k}"),
            },
            probe_count: track.probe_count,
            probe: match &track.tracker.probe {
                repsim_model::Probe::None => "none".into(),
                repsim_model::Probe::Blocks => "blocks".into(),
                repsim_model::Probe::All => "all".into(),
                repsim_model::Probe::Names(names) => format!("names={}", names.join(",")),
            },
            conv: track.tracker.conv.to_string(),
            time: format!("{:?}", track.tracker.time).to_lowercase(),
            measures: track
                .tracker
                .measures
                .iter()
                .map(|m| m.name().to_string())
                .collect(),
        }
    }
}

/// When the Tracker observes the model during training.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackEpochs {
    /// At initialisation (epoch 0) and after every epoch.
    Every,
    /// After these epochs (0: at initialisation); the last epoch is always added.
    These(Vec<usize>),
    /// At initialisation (step 0), after every `k` optimisation steps, and after the last
    /// step: the resolution at which early layers converge (Raghu et al. 2017). Observations are
    /// labelled by the optimisation step ([`crate::TimeUnit::Step`]).
    EverySteps(usize),
}

impl TrackEpochs {
    /// `every-epoch`, a list like `0,1,2,4,8`, or `steps=K` (every K optimisation steps).
    pub fn parse(text: &str) -> Result<Self> {
        if text == "every-epoch" {
            return Ok(TrackEpochs::Every);
        }
        if let Some(k) = text.strip_prefix("steps=") {
            return match k.trim().parse::<usize>() {
                Ok(k) if k >= 1 => Ok(TrackEpochs::EverySteps(k)),
                _ => Err(TrainError::BadConfig(format!(
                    "--track {text:?}: steps=K takes a whole number of optimisation steps of at least 1"
                ))),
            };
        }
        text.split(',')
            .map(|e| e.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(TrackEpochs::These)
            .map_err(|_| {
                TrainError::BadConfig(format!(
                    "--track {text:?}: use every-epoch, a list of epochs like 0,1,2,4,8, or steps=K"
                ))
            })
    }

    /// Whether the model is observed at the end of `epoch` (0: at initialisation).
    fn contains(&self, epoch: usize, last: usize) -> bool {
        match self {
            TrackEpochs::Every => true,
            TrackEpochs::These(list) => epoch == last || list.contains(&epoch),
            TrackEpochs::EverySteps(_) => epoch == 0,
        }
    }

    /// Whether the model is observed after optimisation step `step` (counted from 1 over the
    /// whole run) in the middle of an epoch.
    fn at_step(&self, step: usize) -> bool {
        matches!(self, TrackEpochs::EverySteps(k) if step % k == 0)
    }

    /// What the observation labels count.
    fn unit(&self) -> TimeUnit {
        match self {
            TrackEpochs::EverySteps(_) => TimeUnit::Step,
            _ => TimeUnit::Epoch,
        }
    }
}

/// Tracking during training: what to observe, and when.
#[derive(Debug, Clone)]
pub struct TrackOptions {
    /// The Tracker's settings (its directory is replaced by `RUN/track`).
    pub tracker: TrackerConfig,
    /// When to observe.
    pub epochs: TrackEpochs,
    /// Test examples probed (the first N of the test split).
    pub probe_count: usize,
}

/// How to run (nothing here changes the result).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The device (plain; training uses its autodiff form).
    pub device: Device,
    /// Continue from the newest complete checkpoint.
    pub resume: bool,
    /// Replace an existing run.
    pub overwrite: bool,
    /// Progress display.
    pub progress: ProgressMode,
    /// Checkpoints kept besides `keep_epochs`.
    pub keep_last: usize,
    /// Epochs whose checkpoints are never removed.
    pub keep_epochs: Vec<usize>,
    /// Tracking during training.
    pub track: Option<TrackOptions>,
    /// Stop after this epoch as if interrupted (tests of resume); `None` runs to the end.
    pub stop_after: Option<usize>,
}

impl RunOptions {
    /// Defaults on `device`: no resume, a bar per epoch, the last 2 checkpoints kept.
    pub fn new(device: Device) -> Self {
        RunOptions {
            device,
            resume: false,
            overwrite: false,
            progress: ProgressMode::Auto,
            keep_last: 2,
            keep_epochs: Vec::new(),
            track: None,
            stop_after: None,
        }
    }
}

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

/// The final weights' file name in a run directory.
pub const FINAL_WEIGHTS: &str = "model.bpk";

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

/// `.RUN.lock` beside the run directory ([`repsim_durable::DirLock`]: an advisory lock, or a
/// lease where the file system has none), naming the process training into it: a second
/// process is refused while the first lives, on this machine, in another PID namespace or on
/// another machine sharing the directory; a lock left by a killed process is taken over.
/// Removed when the guard drops.
struct RunLock {
    _lock: repsim_durable::DirLock,
}

impl RunLock {
    /// Takes the lock of `out`'s canonical directory: a run reached through a symbolic link
    /// (or `..`) and the same run by its own path share one lock.
    fn acquire(out: &Path) -> Result<Self> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| TrainError::RunDir {
            path: out.to_path_buf(),
            message: format!("cannot create its parent directory: {e}"),
        })?;
        let canonical = match out.canonicalize() {
            Ok(dir) => dir,
            Err(_) => parent
                .canonicalize()
                .map_err(|e| TrainError::RunDir {
                    path: out.to_path_buf(),
                    message: format!("cannot resolve its parent directory: {e}"),
                })?
                .join(
                    out.file_name()
                        .unwrap_or_else(|| std::ffi::OsStr::new("run")),
                ),
        };
        let name = canonical
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let parent = canonical
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let path = parent.join(format!(".{name}.lock"));
        match repsim_durable::DirLock::acquire(&path) {
            Ok(lock) => Ok(RunLock { _lock: lock }),
            Err(repsim_durable::LockError::Held { path, holder }) => Err(TrainError::RunDir {
                path: out.to_path_buf(),
                message: format!(
                    "another process ({}) is training into it ({})",
                    holder.map_or("whose lock file does not say who".into(), |h| h.to_string()),
                    path.display()
                ),
            }),
            Err(e) => Err(TrainError::RunDir {
                path: out.to_path_buf(),
                message: format!("cannot take the lock: {e}"),
            }),
        }
    }
}

/// Whether `out` is an existing run to resume.
struct Plan {
    resume_from: Option<crate::checkpoint::Checkpoint>,
    warnings: Vec<String>,
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map_or(false, |mut d| d.next().is_none())
}

fn prepare_run_dir(config: &TrainConfig, out: &Path, options: &RunOptions) -> Result<Plan> {
    let run_dir_error = |message: String| TrainError::RunDir {
        path: out.to_path_buf(),
        message,
    };
    if out.exists() && !out.is_dir() {
        return Err(run_dir_error("exists and is not a directory".into()));
    }
    let mut plan = Plan {
        resume_from: None,
        warnings: Vec::new(),
    };
    let config_path = out.join("config.json");
    if out.is_dir() && !is_empty_dir(out) {
        if options.resume && config_path.exists() {
            let record: RunRecord = read_json(&config_path)?;
            check_same_run(out, &record, config, options.track.as_ref())?;
            let (checkpoint, warnings) = newest_complete(&out.join("checkpoints"));
            plan.resume_from = checkpoint;
            plan.warnings = warnings;
        } else if options.overwrite {
            for name in [
                "checkpoints",
                "track",
                "metrics.jsonl",
                "config.json",
                FINAL_WEIGHTS,
            ] {
                let path = out.join(name);
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else if path.exists() {
                    std::fs::remove_file(&path)
                } else {
                    Ok(())
                };
                removed
                    .map_err(|e| run_dir_error(format!("cannot clear {}: {e}", path.display())))?;
            }
        } else if options.resume && holds_run_output(out) {
            // Without its config, nothing says what the checkpoints here were trained with:
            // resuming could mix two runs.
            return Err(run_dir_error(format!(
                "has no config.json, so it cannot be resumed (its checkpoints could belong to another configuration); restore {} or pass --overwrite to start over",
                config_path.display()
            )));
        } else if !options.resume {
            return Err(run_dir_error(
                "is not empty; pass --resume to continue it or --overwrite to replace it".into(),
            ));
        }
        // Else: resuming a run killed before it wrote its config.json (nothing of it but
        // empty folders and temporaries): it starts from scratch.
    }
    std::fs::create_dir_all(out.join("checkpoints"))
        .map_err(|e| run_dir_error(format!("cannot create: {e}")))?;
    // Writable? Find out now, not after the first epoch.
    write_bytes(&out.join(".write-test"), b"")
        .map_err(TrainError::from)
        .and_then(|_| {
            std::fs::remove_file(out.join(".write-test")).map_err(|e| TrainError::file(out, e))
        })
        .map_err(|e| run_dir_error(format!("is not writable: {e}")))?;
    remove_leftovers(out);
    Ok(plan)
}

/// The Tracker's directory of a run starting at `first_epoch`: from scratch, whatever is there
/// belongs to no committed epoch (an observation written before a kill, before its index) and
/// is removed; resuming, its `index.json` must be there (observations are written before each
/// epoch's checkpoint, so only a deletion loses it, and the epochs before the checkpoint cannot
/// be observed again).
fn prepare_track_dir(dir: &Path, first_epoch: usize) -> Result<()> {
    if first_epoch == 1 {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| TrainError::file(dir, format!("cannot clear: {e}")))?;
        }
        return Ok(());
    }
    if !dir.join("index.json").exists() {
        return Err(TrainError::RunDir {
            path: dir.to_path_buf(),
            message: format!(
                "has no index.json, but the run resumes after epoch {}: the observations of the epochs before cannot be made again (restore the track folder, or train again with --overwrite)",
                first_epoch - 1
            ),
        });
    }
    Ok(())
}

/// Whether `out` holds anything a training wrote after its `config.json`: a checkpoint
/// manifest, metrics, final weights or tracker observations.
fn holds_run_output(out: &Path) -> bool {
    let has_manifest = std::fs::read_dir(out.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".json"));
    has_manifest
        || out.join("metrics.jsonl").exists()
        || out.join(FINAL_WEIGHTS).exists()
        || out.join("track").join("index.json").exists()
}

/// Refuses to resume `out` (whose `config.json` holds `record`) with another config, or with
/// other tracking options, naming the first field that differs.
fn check_same_run(
    out: &Path,
    record: &RunRecord,
    config: &TrainConfig,
    track: Option<&TrackOptions>,
) -> Result<()> {
    if let Some((field, run, now)) = config_difference(&record.config, config)? {
        return Err(TrainError::ConfigMismatch {
            path: out.to_path_buf(),
            field,
            run,
            now,
        });
    }
    let now_track = track.map(TrackRecord::of);
    match (&record.track, &now_track) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(TrainError::RunDir {
            path: out.to_path_buf(),
            message: "was trained with --track: resume it with the same --track options, or its tracker index would miss the epochs trained now".into(),
        }),
        (None, Some(_)) => Err(TrainError::RunDir {
            path: out.to_path_buf(),
            message: "was trained without --track: resume it without --track (its earlier epochs were not observed), or start a new run".into(),
        }),
        (Some(run), Some(now)) => {
            let (run, now) = (to_json(run)?, to_json(now)?);
            match first_difference(&run, &now) {
                None => Ok(()),
                Some((field, run, now)) => Err(TrainError::ConfigMismatch {
                    path: out.to_path_buf(),
                    field: format!("track.{field}"),
                    run,
                    now,
                }),
            }
        }
    }
}

/// A config as a JSON value, to compare field by field.
fn to_json(value: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| TrainError::Failed(e.to_string()))
}

/// The first field where a run's config and the one asked for now differ, as
/// (dotted field, run's value, value now); `None` when they are the same.
fn config_difference(
    run: &TrainConfig,
    now: &TrainConfig,
) -> Result<Option<(String, String, String)>> {
    Ok(first_difference(&to_json(run)?, &to_json(now)?))
}

/// Removes what interrupted processes left in a run directory this process holds the lock of:
/// temporaries of dead processes (in the run, `checkpoints/`, each checkpoint folder and
/// `track/`), and checkpoint folders without a manifest (an interrupted save or prune; a
/// resumed run saves that epoch again).
fn remove_leftovers(out: &Path) {
    let checkpoints = out.join("checkpoints");
    let mut dirs = vec![out.to_path_buf(), checkpoints.clone(), out.join("track")];
    dirs.extend(
        std::fs::read_dir(&checkpoints)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir()),
    );
    for dir in dirs {
        for removed in remove_stale_temporaries(&dir) {
            log::info!("removed {}, left by an interrupted run", removed.display());
        }
    }
    for removed in crate::checkpoint::remove_unfinished(&checkpoints) {
        log::info!(
            "removed {}, an interrupted checkpoint without its manifest",
            removed.display()
        );
    }
}

/// Whether `out` holds a run of exactly `config` (its `config.json` says so), complete or
/// not: what an experiment resumes rather than trains again.
pub fn same_config_run(config: &TrainConfig, out: &Path) -> bool {
    read_json::<RunRecord>(&out.join("config.json"))
        .and_then(|record| config_difference(&record.config, config))
        .is_ok_and(|difference| difference.is_none())
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

impl Loop<'_> {
    fn run<M: Network>(self, mut model: M) -> Result<TrainSummary> {
        let Loop {
            init_guard,
            config,
            out,
            options,
            data,
            plan,
        } = self;
        force_initialisation(&model);
        drop(init_guard);
        let parameters = repsim_model::count_parameters(&model);
        let device = options.device.clone();
        let train_device = device.clone().autodiff();
        let mut optimizer = build_optimizer(&config.optimizer);
        let mut warnings = plan.warnings.clone();
        let (mut metrics, mut step, first_epoch, resumed_from) = match &plan.resume_from {
            Some(checkpoint) => {
                model = load_weights(model, &checkpoint.model_path())?;
                optimizer = load_optimizer(optimizer, &checkpoint.optimizer_path(), &device)?;
                let s = &checkpoint.state;
                (s.metrics.clone(), s.step, s.epoch + 1, Some(s.epoch))
            }
            None => (Vec::new(), 0, 1, None),
        };
        for w in &warnings {
            log::warn!("{w}");
        }
        let record = RunRecord {
            repsim_version: env!("CARGO_PKG_VERSION").to_string(),
            config: config.clone(),
            device: format!("{device:?}"),
            parameters,
            train_examples: data.train_len(),
            test_examples: data.test_len(),
            track: options.track.as_ref().map(TrackRecord::of),
            normalization: data.normalization(),
        };
        write_json(&out.join("config.json"), &record)?;
        write_metrics(out, &metrics)?;

        let mut tracker = match &options.track {
            Some(track) => {
                let probe = data
                    .test_batches(track.probe_count, &device)
                    .next()
                    .ok_or_else(|| TrainError::BadConfig("the test split is empty".into()))??;
                let mut tracker_config = track.tracker.clone().with_unit(track.epochs.unit());
                tracker_config.dir = out.join("track");
                prepare_track_dir(&tracker_config.dir, first_epoch)?;
                let mut tracker = Tracker::new(tracker_config, probe.inputs)?;
                // What the resumed checkpoint holds: its epoch, or its step count.
                tracker.forget_after(match track.epochs.unit() {
                    TimeUnit::Epoch => first_epoch - 1,
                    TimeUnit::Step => step,
                })?;
                if first_epoch == 1 && track.epochs.contains(0, config.epochs) {
                    tracker.observe(0, &model)?;
                }
                Some((tracker, track.epochs.clone()))
            }
            None => None,
        };

        let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
        let eval_loss = CrossEntropyLossConfig::new().init(&device);
        let steps_per_epoch = steps_per_epoch(data.train_len(), config.batch_size);
        let last_epoch = options
            .stop_after
            .unwrap_or(config.epochs)
            .min(config.epochs);
        for epoch in first_epoch..=last_epoch {
            let started = Instant::now();
            train_device.seed(crate::datasets::epoch_seed(config.seed, epoch, 0x4445_5649));
            let progress =
                EpochProgress::new(options.progress, epoch, config.epochs, steps_per_epoch);
            let batches = data.train_batches(config.seed, epoch, config.batch_size, &train_device);
            let mut pending = Pending {
                losses: Vec::new(),
                correct: Vec::new(),
            };
            let (mut loss_sum, mut correct_sum, mut seen, mut targets_seen) =
                (0.0, 0.0, 0usize, 0usize);
            let mut step_in_epoch = 0usize;
            let mut lr = config.lr;
            for batch in batches {
                let Batch { inputs, targets } = batch?;
                let n = inputs.len();
                let m = targets.dims()[0];
                lr = config
                    .schedule
                    .lr_at(step, steps_per_epoch, config.epochs, config.lr);
                let logits = model.logits(inputs)?;
                let loss = loss_fn.forward(logits.clone(), targets.clone());
                let correct = logits
                    .detach()
                    .argmax(1)
                    .reshape([m])
                    .equal(targets)
                    .float()
                    .sum();
                pending.losses.push(loss.clone().detach());
                pending.correct.push(correct);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(lr, model, grads);
                step += 1;
                step_in_epoch += 1;
                // Mid-epoch observations (`steps=K`): written before the epoch's checkpoint, so
                // a process killed before it resumes from the previous checkpoint, forgets them
                // and observes them again.
                if let Some((tracker, when)) = tracker.as_mut() {
                    if when.at_step(step) {
                        tracker.observe(step, &model)?;
                    }
                }
                seen += n;
                targets_seen += m;
                if pending.losses.len() == SYNC_EVERY {
                    let (l, c) = read_pending(&mut pending, epoch, step_in_epoch, SYNC_EVERY)?;
                    loss_sum += l;
                    correct_sum += c;
                    let rate = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    progress.update(
                        step_in_epoch,
                        loss_sum / step_in_epoch as f64,
                        correct_sum / targets_seen as f64,
                        rate,
                    );
                }
            }
            let left = pending.losses.len();
            let (l, c) = read_pending(&mut pending, epoch, step_in_epoch, left)?;
            loss_sum += l;
            correct_sum += c;
            let train_seconds = started.elapsed().as_secs_f64();

            progress.phase("evaluating");
            let eval = model.valid();
            let (test_loss, test_accuracy) = evaluate(&eval, data, &eval_loss, &device)?;
            // A divergence in the epoch's last steps shows only here: never save it.
            check_finite(&eval, epoch, test_loss)?;
            let lm = matches!(data, RunData::Text(_));
            metrics.push(EpochMetrics {
                epoch,
                train_loss: loss_sum / step_in_epoch.max(1) as f64,
                train_accuracy: correct_sum / targets_seen.max(1) as f64,
                test_loss,
                test_accuracy,
                test_perplexity: lm.then(|| test_loss.exp()),
                lr,
                examples_per_second: seen as f64 / train_seconds.max(1e-9),
                seconds: 0.0,
            });

            // The observation is part of the epoch's commit: it is written before the
            // checkpoint's manifest, so a process killed in between resumes from the previous
            // checkpoint, trains this epoch again and observes it again.
            if let Some((tracker, when)) = tracker.as_mut() {
                if when.contains(epoch, config.epochs) {
                    progress.phase("tracking");
                    tracker.observe(epoch, &model)?;
                } else if when.unit() == TimeUnit::Step
                    && epoch == config.epochs
                    && !when.at_step(step)
                {
                    // The trained model, when the last step is not a multiple of K.
                    progress.phase("tracking");
                    tracker.observe(step, &model)?;
                }
            }
            if let Some(last) = metrics.last_mut() {
                last.seconds = started.elapsed().as_secs_f64();
            }

            progress.phase("checkpoint");
            let state = CheckpointState {
                epoch,
                step,
                metrics: metrics.clone(),
            };
            let checkpoints = out.join("checkpoints");
            save_checkpoint(&checkpoints, &state, |dir| {
                save_weights(&eval, &dir.join(MODEL))?;
                save_optimizer(&optimizer, &dir.join(OPTIMIZER))
            })?;
            prune(&checkpoints, options.keep_last, &options.keep_epochs)?;
            write_metrics(out, &metrics)?;
            progress.finish();
            if let (true, Some(last)) = (options.progress != ProgressMode::Silent, metrics.last()) {
                log_epoch_line(last, config.epochs);
            }
        }
        // The final weights are a copy of the last checkpoint's (byte for byte: that is how
        // `completed_run` tells them from a truncated file).
        let final_weights = if last_epoch == config.epochs {
            let path = out.join(FINAL_WEIGHTS);
            let last = checkpoint_dir(&out.join("checkpoints"), last_epoch).join(MODEL);
            write_via(&path, |temporary| {
                std::fs::copy(&last, temporary)
                    .map(|_| ())
                    .map_err(|e| TrainError::file(&last, format!("cannot copy: {e}")))
            })?;
            Some(path)
        } else {
            None
        };
        warnings.extend(tracker.iter().flat_map(|(t, _)| t.warnings().to_vec()));
        Ok(TrainSummary {
            run_dir: out.to_path_buf(),
            metrics,
            resumed_from,
            final_weights,
            parameters,
            warnings,
        })
    }
}

/// The metrics of a finished run of exactly `config` in `out` (its `config.json` matches, every
/// epoch's metrics are there, and its final weights are the newest checkpoint's weights byte
/// for byte, so a truncated `model.bpk` is not taken for a finished run), for reusing trained
/// weights; `None` when there is no such run.
pub fn completed_run(config: &TrainConfig, out: &Path) -> Option<Vec<EpochMetrics>> {
    if !same_config_run(config, out) {
        return None;
    }
    let weights = out.join(FINAL_WEIGHTS);
    if !crate::checkpoint::matches_newest(&out.join("checkpoints"), MODEL, &weights) {
        return None;
    }
    let metrics = read_metrics(out).ok()?;
    (metrics.len() == config.epochs).then_some(metrics)
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
fn evaluate<M: Network>(
    eval: &M,
    data: &RunData,
    loss_fn: &burn::nn::loss::CrossEntropyLoss,
    device: &Device,
) -> Result<(f64, f64)> {
    let mut losses = Vec::new();
    let mut corrects = Vec::new();
    let mut total = 0usize;
    for batch in data.test_batches(500, device) {
        let Batch { inputs, targets } = batch?;
        let m = targets.dims()[0];
        let logits = eval.logits(inputs)?;
        losses.push(
            loss_fn
                .forward(logits.clone(), targets.clone())
                .mul_scalar(m as f64),
        );
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

/// Rewrites `metrics.jsonl` (atomically: a kill never leaves half a line).
fn write_metrics(out: &Path, metrics: &[EpochMetrics]) -> Result<()> {
    let mut text = String::new();
    for m in metrics {
        text.push_str(&serde_json::to_string(m).map_err(|e| TrainError::Failed(e.to_string()))?);
        text.push('\n');
    }
    write_bytes(&out.join("metrics.jsonl"), text.as_bytes())?;
    Ok(())
}

/// Reads a run's `metrics.jsonl`.
pub fn read_metrics(run_dir: &Path) -> Result<Vec<EpochMetrics>> {
    let path = run_dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::file(&path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| TrainError::file(&path, format!("line {}: {e}", i + 1)))
        })
        .collect()
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

    #[test]
    fn track_epochs_parse() {
        assert_eq!(
            TrackEpochs::parse("every-epoch").unwrap(),
            TrackEpochs::Every
        );
        let these = TrackEpochs::parse("0,1,4").unwrap();
        assert!(these.contains(4, 9) && these.contains(9, 9) && !these.contains(5, 9));
        assert!(TrackEpochs::parse("1,x").is_err());
    }
}
