//! A run directory: its record (`config.json`: the config, where it ran, what the Tracker
//! observes, the images' normalisation), its lock, the checks that an existing directory is the
//! same run before resuming it, the cleanup of what interrupted processes left, and its
//! metrics file. The training loop ([`crate::trainer`]) writes into a directory prepared here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{newest_complete, MODEL};
use crate::config::{first_difference, TrainConfig};
use crate::durable::{read_json, remove_stale_temporaries, write_bytes};
use crate::error::{Result, TrainError};
use crate::metrics::EpochMetrics;
use crate::run_options::{RunOptions, TrackEpochs, TrackOptions};

/// The final weights' file name in a run directory.
pub const FINAL_WEIGHTS: &str = "model.bpk";

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
    /// Training examples per epoch (the training split times its repeats).
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
    /// The measures of its convergence tables: each a name, or `NAME:KEY=VALUE...` when its
    /// parameters are not the defaults.
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
            measures: track.tracker.measures.iter().map(measure_text).collect(),
        }
    }
}

/// A measure as the record spells it: its name when its parameters are the defaults (as every
/// record has spelt those), else its full spelling (`svcca:dims=20`), so that resuming with
/// other parameters is refused like any other change.
fn measure_text(measure: &repsim_similarity::Measure) -> String {
    match repsim_similarity::Measure::from_name(measure.name()) {
        Ok(default) if default == *measure => measure.name().to_string(),
        _ => measure.spec(),
    }
}

/// `.RUN.lock` beside the run directory ([`repsim_durable::DirLock`]: an advisory lock, or a
/// lease where the file system has none), naming the process training into it: a second
/// process is refused while the first lives, on this machine, in another PID namespace or on
/// another machine sharing the directory; a lock left by a killed process is taken over.
/// Removed when the guard drops.
pub(crate) struct RunLock {
    _lock: repsim_durable::DirLock,
}

impl RunLock {
    /// Takes the lock of `out`'s canonical directory: a run reached through a symbolic link
    /// (or `..`) and the same run by its own path share one lock.
    pub(crate) fn acquire(out: &Path) -> Result<Self> {
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
pub(crate) struct Plan {
    /// The newest complete checkpoint, when resuming.
    pub(crate) resume_from: Option<crate::checkpoint::Checkpoint>,
    /// Checkpoints skipped on the way (damaged ones).
    pub(crate) warnings: Vec<String>,
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map_or(false, |mut d| d.next().is_none())
}

/// Prepares `out` for `config`: refuses what it cannot be, finds the checkpoint to resume
/// from, checks it is writable, and removes what interrupted processes left.
pub(crate) fn prepare_run_dir(
    config: &TrainConfig,
    out: &Path,
    options: &RunOptions,
) -> Result<Plan> {
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
pub(crate) fn prepare_track_dir(dir: &Path, first_epoch: usize) -> Result<()> {
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

/// Rewrites `metrics.jsonl` (atomically: a kill never leaves half a line).
pub(crate) fn write_metrics(out: &Path, metrics: &[EpochMetrics]) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use repsim_similarity::Measure;

    #[test]
    fn a_measure_with_other_parameters_is_recorded_with_them() {
        assert_eq!(measure_text(&Measure::svcca()), "svcca");
        assert_eq!(
            measure_text(&"svcca:dims=20".parse().unwrap()),
            "svcca:dims=20"
        );
        assert_eq!(measure_text(&Measure::LINEAR_CKA), "linear_cka");
    }
}
